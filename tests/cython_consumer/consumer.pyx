# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""A downstream extension that uses norbert's public C API (tests/test_cimport.py builds it).

It is written the way a user's code would be: it cimports only names documented in
norbert/_core/__init__.pxd, allocates every array and scratch buffer itself with the GIL
held, calls the kernels inside ``with nogil`` loops (over TF points for hermitian_solve,
over blocks of frames for the EM passes) and turns their integer Status into exceptions.
No numpy headers: the kernels take typed memoryviews.

Cython picks a fused kernel's specialisation by matching the arguments' memoryview types
exactly, layout included: P is declared strided (`[:, :, :]`) as in _stats.pxd, not `::1`.
"""

from cython cimport floating

from norbert._core cimport (
    Estimate,
    Status,
    apply_filter_kernel,
    complex_t,
    filter_kernel,
    finalize_covariance_kernel,
    hermitian_solve,
    mix_model_kernel,
    online_accumulate_kernel,
    online_filter_kernel,
    online_work_size,
    stats_kernel,
    work_size,
)

import numpy as np

# upstream's slope for softmask(logit=...); unused here (logit < 0 turns compression off)
cdef double SLOPE = 15.0


def solve_batch(double[:, :, :, ::1] A not None, double[:, :, ::1] b not None):
    """A[i] z = b[i] for a batch of TF points, in place: A (N, n, n, 2), b (N, n, 2).

    Returns the int statuses (0 ok, 1 zero matrix, -1 NaN/inf), one per point.
    """
    cdef Py_ssize_t i, N = A.shape[0], n = A.shape[1]
    if b.shape[0] != N or b.shape[1] != n or A.shape[2] != n:
        raise ValueError("A must be (N, n, n, 2) and b (N, n, 2)")
    status = np.empty(N, dtype=np.intc)
    cdef int[::1] st = status
    with nogil:
        for i in range(N):
            st[i] = hermitian_solve(n, &A[i, 0, 0, 0], &b[i, 0, 0])
    return status


def _work(Py_ssize_t n_threads, Py_ssize_t C, Py_ssize_t J):
    # scratch as the .pxd asks for it: one row of work_size(C, J) doubles per thread
    return np.empty((max(1, n_threads), work_size(C, J)), dtype=np.float64)


def _check(int status, str where):
    if status != Status.OK:
        raise RuntimeError(f"{where} returned Status {status}")


def expectation_maximization(
    const complex_t[:, :, ::1] x not None,         # (frames, bins, C)
    const complex_t[:, :, :, ::1] y0 not None,     # (frames, bins, C, J) initial estimate
    floating[:, :, :] P not None,                  # OUT (frames, bins, J)  PSDs
    complex_t[:, :, :, ::1] y_out not None,        # OUT (frames, bins, C, J)
    int iterations,
    double eps,
    Py_ssize_t frames_per_block=3,
    int n_threads=1,
):
    """norbert.expectation_maximization from the public kernels, streaming over frames.

    Returns R as (bins, J, C, C, 2) doubles (the kernels' layout).
    """
    cdef Py_ssize_t T = x.shape[0], F = x.shape[1], C = x.shape[2], J = y0.shape[3]
    cdef Py_ssize_t t0, t1, it
    cdef int status = Status.OK
    cdef double no_logit = -1.0
    # the caller (here: this function, with the GIL) allocates every array
    Rnum_a = np.zeros((F, J, C, C, 2))
    weight_a = np.zeros((F, J))
    R_a = np.zeros((F, J, C, C, 2))
    cdef double[:, :, :, :, ::1] Rnum = Rnum_a
    cdef double[:, ::1] weight = weight_a
    cdef double[:, :, :, :, ::1] R = R_a
    cdef double[:, ::1] work = _work(n_threads, C, J)
    # arrays a mode does not read may be empty
    cdef const floating[:, :, :, ::1] no_v = np.empty(
        (0, 0, 0, 0), np.float32 if floating is float else np.float64)
    if iterations < 1:
        raise ValueError("iterations must be >= 1")
    with nogil:
        for it in range(iterations):
            # statistics pass: y0 the first time, the filter of (P, R) afterwards
            Rnum[...] = 0.0
            weight[...] = 0.0
            t0 = 0
            while t0 < T and status == Status.OK:
                t1 = min(t0 + frames_per_block, T)
                status = stats_kernel(
                    Estimate.GIVEN if it == 0 else Estimate.MODEL,
                    x[t0:t1], no_v, y0[t0:t1], P[t0:t1], R,
                    1.0, eps, no_logit, SLOPE, Rnum, weight, work, n_threads,
                )
                t0 = t1
            if status != Status.OK:
                break
            status = finalize_covariance_kernel(Rnum, weight, eps, R)
            if status != Status.OK:
                break
        # filter pass: y = v_j R_j Cxx^-1 x, written once
        t0 = 0
        while t0 < T and status == Status.OK:
            t1 = min(t0 + frames_per_block, T)
            status = filter_kernel(
                Estimate.MODEL, x[t0:t1], no_v, P[t0:t1], R,
                1.0, eps, no_logit, SLOPE, 1.0, y_out[t0:t1], work, n_threads,
            )
            t0 = t1
    _check(status, "expectation_maximization")
    return R_a


def local_gaussian_model(
    const complex_t[:, :, :, ::1] y_j not None,    # (frames, bins, C, 1)
    floating[:, :, :] P not None,                  # OUT (frames, bins, 1)
    double eps,
    Py_ssize_t frames_per_block=3,
):
    """norbert.get_local_gaussian_model; returns R as (bins, 1, C, C, 2) doubles."""
    cdef Py_ssize_t T = y_j.shape[0], F = y_j.shape[1], C = y_j.shape[2], t0, t1
    cdef int status = Status.OK
    Rnum_a = np.zeros((F, 1, C, C, 2))
    R_a = np.empty((F, 1, C, C, 2))
    cdef double[:, :, :, :, ::1] Rnum = Rnum_a
    cdef double[:, :, :, :, ::1] R = R_a
    cdef double[:, ::1] weight = np.zeros((F, 1))
    cdef double[:, ::1] work = _work(1, C, 1)
    cdef const floating[:, :, :, ::1] no_v = np.empty(
        (0, 0, 0, 0), np.float32 if floating is float else np.float64)
    # GIVEN reads only x's shape and y_in: the source itself stands in for the mixture
    cdef const complex_t[:, :, ::1] x = y_j[:, :, :, 0].copy()
    with nogil:
        t0 = 0
        while t0 < T and status == Status.OK:
            t1 = min(t0 + frames_per_block, T)
            status = stats_kernel(Estimate.GIVEN, x[t0:t1], no_v, y_j[t0:t1], P[t0:t1], R,
                                  1.0, eps, -1.0, SLOPE, Rnum, weight, work, 1)
            t0 = t1
        if status == Status.OK:
            status = finalize_covariance_kernel(Rnum, weight, eps, R)
    _check(status, "local_gaussian_model")
    return R_a


def mix_model(const floating[:, :, ::1] v not None, const complex_t[:, :, :, ::1] R not None,
              complex_t[:, :, :, ::1] Cxx_out not None):
    """norbert.get_mix_model into a caller-allocated Cxx_out (frames, bins, C, C)."""
    cdef int status
    with nogil:
        status = mix_model_kernel(v, R, Cxx_out, 1)
    _check(status, "mix_model")


def apply_filter(const complex_t[:, :, ::1] x not None, const complex_t[:, :, :, ::1] W not None,
                 complex_t[:, :, ::1] y_out not None):
    """norbert.apply_filter into a caller-allocated y_out (frames, bins, C)."""
    cdef int status
    with nogil:
        status = apply_filter_kernel(x, W, y_out, 1)
    _check(status, "apply_filter")


def bad_shape_status():
    """The Status a kernel returns for mismatched shapes (no exception, no crash)."""
    cdef double[:, :, :, :, ::1] Rnum = np.zeros((2, 1, 1, 1, 2))
    cdef double[:, ::1] weight = np.zeros((3, 1))
    cdef double[:, :, :, :, ::1] R = np.zeros((2, 1, 1, 1, 2))
    cdef int status
    with nogil:
        status = finalize_covariance_kernel(Rnum, weight, 0.0, R)
    return status


def online_stream(const complex_t[:, :, ::1] x not None, const floating[:, :, :, ::1] v not None,
                  floating[:, :, ::1] P_ring not None, complex_t[:, :, :, ::1] y not None,
                  Py_ssize_t lookahead, double forget, double eps):
    """norbert.OnlineWiener(use_softmask=True) over a track, as an audio callback runs it.

    Frame by frame with no GIL: accumulate frame t, filter frame t - lookahead, and at the
    end the frames still held. P_ring (lookahead + 1, bins, J) keeps the held frames' PSDs
    (x is all there, so it needs no ring); y (frames, bins, C, J) receives every frame.
    """
    cdef Py_ssize_t T = x.shape[0], F = x.shape[1], C = x.shape[2], J = y.shape[3]
    cdef Py_ssize_t t, s, L1 = lookahead + 1
    cdef double[:, :, :, :, ::1] Rnum = np.zeros((F, J, C, C, 2))
    cdef double[:, ::1] weight = np.zeros((F, J))
    cdef double[:, ::1] work = np.empty((1, online_work_size(C, J)))
    cdef int status = Status.OK
    with nogil:
        for t in range(T):
            status = online_accumulate_kernel(Estimate.SOFTMASK, x[t], v[t], 1.0, eps, forget,
                                              P_ring[t % L1], Rnum, weight, work, 1)
            if status != Status.OK:
                break
            s = t - lookahead
            if s >= 0:
                status = online_filter_kernel(x[s], P_ring[s % L1], Rnum, weight, 1.0, eps,
                                              1.0, y[s], work, 1)
                if status != Status.OK:
                    break
        s = T - lookahead if T > lookahead else 0
        while status == Status.OK and s < T:
            status = online_filter_kernel(x[s], P_ring[s % L1], Rnum, weight, 1.0, eps, 1.0,
                                          y[s], work, 1)
            s += 1
    _check(status, "online_stream")
