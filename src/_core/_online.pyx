"""The online (causal) multichannel Wiener filter: one frame at a time, bounded lookahead.

Per bin f and source j, frames in order (DESIGN.md, "Online filter"):

    y0_j(t)    initial estimate: soft mask, or v_j exp(i angle(x)), on x(t) * scale
    P_j(t)     = mean_c |y0_j(t)_c|^2
    Rnum_j    <- forget * Rnum_j + y0_j(t) y0_j(t)^H        (upper triangle)
    weight_j  <- forget * weight_j + P_j(t)

Frame s is filtered once frame s + L (L = lookahead) has been accumulated, with
R_j = Rnum_j / (eps + weight_j) at that moment and the PSDs of its own initial estimate:

    Cxx = sum_k P_k(s) R_k + sqrt(eps) I   (one channel: + eps once more, as wiener),
    y_j(s) = out_scale * P_j(s) R_j Cxx^-1 x(s) * scale.

The point is filtered by the offline EM's own code (_filter.pxd's model_point), and R is
finalize_covariance's within an ulp, so forget = 1 and L >= T give wiener(iterations=1).

Layout: one frame is (F, C) for x, (F, {1, C}, J) for v, (F, J) for P; the stream's state is
Rnum (F, J, C, C, 2) and weight (F, J) in double (float32 sums over 10^4 frames lose 3-4
digits, and with forget close to 1 the sums are that long), and a ring of L + 1 frames of x
and P: frame t lives in slot t % (L + 1) until it is filtered.

Every bin's recursion is independent of the other bins, so a thread owns a contiguous range
of bins for a whole block of frames and runs their frames in order: the bits do not depend on
the thread count, nor on how the stream was cut into blocks.
"""

from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.math cimport sqrt, INFINITY

from norbert._core._common cimport (
    complex_t, Status, Estimate, n_chunks, worst_status, note_pass,
)
from norbert._core._filter cimport estimate_point, model_point
from norbert._core._online cimport online_work_size
from norbert._core._stats cimport point_stats

# A call with fewer points x channels x sources than this runs on one thread: waking a thread
# team costs more than it saves (see benchmarks/bench_online.py).
cdef Py_ssize_t MIN_PARALLEL_WORK = 1 << 16


def parallel_threshold(Py_ssize_t work=-1):
    """The points x channels x sources from which a call may use threads; set it if work >= 0.

    For benchmarks (benchmarks/bench_online.py measures whether threads help one frame).
    """
    global MIN_PARALLEL_WORK
    cdef Py_ssize_t old = MIN_PARALLEL_WORK
    if work >= 0:
        MIN_PARALLEL_WORK = work
    return old


cdef inline int _accumulate_point(
    int mode, Py_ssize_t C, Py_ssize_t Cv, Py_ssize_t J,
    const complex_t* x, const floating* v,
    double scale, double eps, double sqrt_eps, double forget,
    floating* P, double* wf, double* Rn, double* y,
) noexcept nogil:
    """Initial estimate of one TF point, its PSDs into P, and the forgetting sums of its bin."""
    cdef int st = estimate_point(mode, C, Cv, J, x, v, <const complex_t*>NULL,
                                 <const floating*>NULL, <const double*>NULL, scale, eps,
                                 sqrt_eps, -1.0, 15.0, y, <double*>NULL)
    point_stats(C, J, y, P, wf, Rn, forget)
    return st


cdef inline int _filter_point(
    Py_ssize_t C, Py_ssize_t J, const complex_t* x, const floating* P,
    const double* Rn, const double* wf,
    double scale, double eps, double sqrt_eps, double out_scale,
    complex_t* y_out, double* R, double* y, double* work,
) noexcept nogil:
    """y_j = P_j R_j Cxx^-1 x at one TF point, R from the bin's current sums."""
    cdef Py_ssize_t j, c, d, k, CC2 = 2 * C * C
    cdef double w, re, im
    cdef int st
    for j in range(J):
        # finalize_covariance's R (0 for a source silent over the bin so far), within an ulp:
        # one division per source, not one per entry, is a fifth of this function's time
        w = eps + wf[j]
        w = 1.0 / w if w > 0.0 else 0.0
        for c in range(C):
            for d in range(c, C):
                k = CC2 * j + (c * C + d) * 2
                re = Rn[k] * w
                im = Rn[k + 1] * w
                R[k] = re
                R[k + 1] = im
                k = CC2 * j + (d * C + c) * 2
                R[k] = re
                R[k + 1] = -im
    st = model_point(C, J, P, R, x, scale, sqrt_eps, eps, y, work)
    for k in range(C * J):
        y_out[k].real = y[2 * k] * out_scale
        y_out[k].imag = y[2 * k + 1] * out_scale
    return st


cdef int _check_frames(const complex_t[:, :, ::1] x, const floating[:, :, :, ::1] v) noexcept nogil:
    """NaN, inf or negative v anywhere in a block, found before the state is touched."""
    cdef Py_ssize_t k, nx = x.shape[0] * x.shape[1] * x.shape[2]
    cdef Py_ssize_t nv = v.shape[0] * v.shape[1] * v.shape[2] * v.shape[3]
    cdef const complex_t* xp
    cdef const floating* vp
    cdef double re, im, vk
    if nx > 0:
        xp = &x[0, 0, 0]
        for k in range(nx):
            re = xp[k].real
            im = xp[k].imag
            if re - re != 0.0 or im - im != 0.0:
                return Status.NOT_FINITE
    if nv > 0:
        vp = &v[0, 0, 0, 0]
        for k in range(nv):
            vk = vp[k]
            if not (vk >= 0.0 and vk < INFINITY):
                return Status.NEGATIVE if vk < 0.0 else Status.NOT_FINITE
    return Status.OK


cdef inline int _threads(Py_ssize_t points, Py_ssize_t F, Py_ssize_t C, Py_ssize_t J,
                         int n_threads, Py_ssize_t rows) noexcept nogil:
    cdef Py_ssize_t nt = n_chunks(F, n_threads, 64)
    if points * C * J < MIN_PARALLEL_WORK:
        nt = 1
    if nt > rows:
        nt = rows
    return <int>nt


cdef int _process_bins(
    Py_ssize_t f0, Py_ssize_t f1, int mode,
    const complex_t[:, :, ::1] x, const floating[:, :, :, ::1] v,
    double scale, double eps, double sqrt_eps, double forget, double out_scale,
    Py_ssize_t frames_in, Py_ssize_t frames_out,
    complex_t[:, :, ::1] x_ring, floating[:, :, ::1] P_ring,
    double[:, :, :, :, ::1] Rnum, double[:, ::1] weight,
    complex_t[:, :, :, ::1] y_out, double* work,
) noexcept nogil:
    """Bins f0 .. f1 of every frame of a block, frames in order; returns 1 << status flags."""
    cdef Py_ssize_t C = x.shape[2], Cv = v.shape[2], J = Rnum.shape[1]
    cdef Py_ssize_t L1 = x_ring.shape[0], i, f, c, t, s, slot, out_slot
    cdef double* y = work
    cdef double* R = y + 2 * C * J
    cdef double* scratch = R + 2 * J * C * C
    cdef int flags = 0
    for i in range(x.shape[0]):
        t = frames_in + i
        slot = t % L1
        s = t - (L1 - 1)                 # the frame that frame t completes
        out_slot = s % L1 if s >= 0 else 0
        for f in range(f0, f1):
            for c in range(C):
                x_ring[slot, f, c] = x[i, f, c]
            flags |= 1 << _accumulate_point(mode, C, Cv, J, &x[i, f, 0], &v[i, f, 0, 0],
                                            scale, eps, sqrt_eps, forget, &P_ring[slot, f, 0],
                                            &weight[f, 0], &Rnum[f, 0, 0, 0, 0], y)
            if s >= frames_out:
                flags |= 1 << _filter_point(C, J, &x_ring[out_slot, f, 0],
                                            &P_ring[out_slot, f, 0], &Rnum[f, 0, 0, 0, 0],
                                            &weight[f, 0], scale, eps, sqrt_eps, out_scale,
                                            &y_out[s - frames_out, f, 0, 0], R, y, scratch)
    return flags


cdef int _accumulate_bins(
    Py_ssize_t f0, Py_ssize_t f1, int mode,
    const complex_t[:, ::1] x, const floating[:, :, ::1] v,
    double scale, double eps, double sqrt_eps, double forget,
    floating[:, ::1] P_out, double[:, :, :, :, ::1] Rnum, double[:, ::1] weight, double* work,
) noexcept nogil:
    """Bins f0 .. f1 of one frame into the sums; returns 1 << status flags."""
    cdef Py_ssize_t f, C = x.shape[1], Cv = v.shape[1], J = Rnum.shape[1]
    cdef int flags = 0
    for f in range(f0, f1):
        flags |= 1 << _accumulate_point(mode, C, Cv, J, &x[f, 0], &v[f, 0, 0], scale, eps,
                                        sqrt_eps, forget, &P_out[f, 0], &weight[f, 0],
                                        &Rnum[f, 0, 0, 0, 0], work)
    return flags


cdef int _filter_bins(
    Py_ssize_t f0, Py_ssize_t f1,
    const complex_t[:, ::1] x, const floating[:, ::1] P,
    const double[:, :, :, :, ::1] Rnum, const double[:, ::1] weight,
    double scale, double eps, double sqrt_eps, double out_scale,
    complex_t[:, :, ::1] y_out, double* work,
) noexcept nogil:
    """Bins f0 .. f1 of one frame filtered with the current sums; returns 1 << status flags."""
    cdef Py_ssize_t f, C = x.shape[1], J = Rnum.shape[1]
    cdef double* y = work
    cdef double* R = y + 2 * C * J
    cdef int flags = 0
    for f in range(f0, f1):
        flags |= 1 << _filter_point(C, J, &x[f, 0], &P[f, 0], &Rnum[f, 0, 0, 0, 0],
                                    &weight[f, 0], scale, eps, sqrt_eps, out_scale,
                                    &y_out[f, 0, 0], R, y, R + 2 * J * C * C)
    return flags


cdef int online_process_kernel(
    int mode,                                # Estimate.SOFTMASK or Estimate.PHASE
    const complex_t[:, :, ::1] x,            # IN    (n, F, C)      the next n frames
    const floating[:, :, :, ::1] v,          # IN    (n, F, {1, C}, J)
    double scale, double eps, double forget, double out_scale,
    Py_ssize_t frames_in,                    # frames accumulated before this call
    Py_ssize_t frames_out,                   # frames returned before this call
    complex_t[:, :, ::1] x_ring,             # INOUT (L + 1, F, C)
    floating[:, :, ::1] P_ring,              # INOUT (L + 1, F, J)
    double[:, :, :, :, ::1] Rnum,            # INOUT (F, J, C, C, 2)
    double[:, ::1] weight,                   # INOUT (F, J)
    complex_t[:, :, :, ::1] y_out,           # OUT   (m, F, C, J)
    double[:, ::1] work,                     # scratch (threads, >= online_work_size(C, J))
    int n_threads,
) noexcept nogil:
    cdef Py_ssize_t n = x.shape[0], F = x.shape[1], C = x.shape[2], J = Rnum.shape[1]
    cdef Py_ssize_t L = x_ring.shape[0] - 1, m, k, f0, f1
    cdef int nt, flags = 0, st
    cdef double sqrt_eps = sqrt(eps)
    if mode != Estimate.SOFTMASK and mode != Estimate.PHASE:
        return Status.BAD_MODE
    m = frames_in + n - L - frames_out
    if m < 0:
        m = 0
    if (L < 0 or v.shape[0] != n or v.shape[1] != F or v.shape[3] != J
            or (v.shape[2] != 1 and v.shape[2] != C)
            or x_ring.shape[1] != F or x_ring.shape[2] != C
            or P_ring.shape[0] != L + 1 or P_ring.shape[1] != F or P_ring.shape[2] != J
            or Rnum.shape[0] != F or Rnum.shape[2] != C or Rnum.shape[3] != C
            or weight.shape[0] != F or weight.shape[1] != J
            or y_out.shape[0] != m or y_out.shape[1] != F or y_out.shape[2] != C
            or y_out.shape[3] != J
            or frames_out > frames_in or frames_in - frames_out > L or frames_out < 0):
        return Status.BAD_SHAPE
    if work.shape[0] < 1 or work.shape[1] < online_work_size(C, J):
        return Status.SMALL_WORK
    # every input is checked before the state changes: a refused block leaves the stream as it was
    st = _check_frames(x, v)
    if st != Status.OK:
        return st
    if n == 0 or F == 0:
        return Status.OK
    nt = _threads(n * F, F, C, J, n_threads, work.shape[0])
    if nt == 1:
        flags = _process_bins(0, F, mode, x, v, scale, eps, sqrt_eps, forget, out_scale,
                              frames_in, frames_out, x_ring, P_ring, Rnum, weight, y_out,
                              &work[0, 0])
    else:
        for k in prange(nt, schedule="static", chunksize=1, num_threads=nt):
            f0 = k * F // nt
            f1 = (k + 1) * F // nt
            flags |= _process_bins(f0, f1, mode, x, v, scale, eps, sqrt_eps, forget,
                                   out_scale, frames_in, frames_out, x_ring, P_ring, Rnum,
                                   weight, y_out, &work[threadid(), 0])
    note_pass(nt, nt > 1)
    return worst_status(flags)


cdef int online_accumulate_kernel(
    int mode,                                # Estimate.SOFTMASK or Estimate.PHASE
    const complex_t[:, ::1] x,               # IN    (F, C)         one frame
    const floating[:, :, ::1] v,             # IN    (F, {1, C}, J)
    double scale, double eps, double forget,
    floating[:, ::1] P_out,                  # OUT   (F, J)         PSDs of the initial estimate
    double[:, :, :, :, ::1] Rnum,            # INOUT (F, J, C, C, 2)
    double[:, ::1] weight,                   # INOUT (F, J)
    double[:, ::1] work,                     # scratch (threads, >= online_work_size(C, J))
    int n_threads,
) noexcept nogil:
    cdef Py_ssize_t F = x.shape[0], C = x.shape[1], J = Rnum.shape[1], Cv = v.shape[1]
    cdef Py_ssize_t k, f0, f1
    cdef double sqrt_eps = sqrt(eps)
    cdef int nt, flags = 0
    if mode != Estimate.SOFTMASK and mode != Estimate.PHASE:
        return Status.BAD_MODE
    if (v.shape[0] != F or v.shape[2] != J or (Cv != 1 and Cv != C)
            or P_out.shape[0] != F or P_out.shape[1] != J
            or Rnum.shape[0] != F or Rnum.shape[2] != C or Rnum.shape[3] != C
            or weight.shape[0] != F or weight.shape[1] != J):
        return Status.BAD_SHAPE
    if work.shape[0] < 1 or work.shape[1] < online_work_size(C, J):
        return Status.SMALL_WORK
    if F == 0:
        return Status.OK
    nt = _threads(F, F, C, J, n_threads, work.shape[0])
    if nt == 1:
        flags = _accumulate_bins(0, F, mode, x, v, scale, eps, sqrt_eps, forget, P_out, Rnum,
                                 weight, &work[0, 0])
    else:
        for k in prange(nt, schedule="static", chunksize=1, num_threads=nt):
            f0 = k * F // nt
            f1 = (k + 1) * F // nt
            flags |= _accumulate_bins(f0, f1, mode, x, v, scale, eps, sqrt_eps, forget, P_out,
                                      Rnum, weight, &work[threadid(), 0])
    return worst_status(flags)


cdef int online_filter_kernel(
    const complex_t[:, ::1] x,               # IN  (F, C)         the frame to filter
    const floating[:, ::1] P,                # IN  (F, J)         its initial estimate's PSDs
    const double[:, :, :, :, ::1] Rnum,      # IN  (F, J, C, C, 2)
    const double[:, ::1] weight,             # IN  (F, J)
    double scale, double eps, double out_scale,
    complex_t[:, :, ::1] y_out,              # OUT (F, C, J)
    double[:, ::1] work,                     # scratch (threads, >= online_work_size(C, J))
    int n_threads,
) noexcept nogil:
    cdef Py_ssize_t F = x.shape[0], C = x.shape[1], J = Rnum.shape[1]
    cdef Py_ssize_t k, f0, f1
    cdef double sqrt_eps = sqrt(eps)
    cdef int nt, flags = 0
    if (P.shape[0] != F or P.shape[1] != J or Rnum.shape[0] != F or Rnum.shape[2] != C
            or Rnum.shape[3] != C or weight.shape[0] != F or weight.shape[1] != J
            or y_out.shape[0] != F or y_out.shape[1] != C or y_out.shape[2] != J):
        return Status.BAD_SHAPE
    if work.shape[0] < 1 or work.shape[1] < online_work_size(C, J):
        return Status.SMALL_WORK
    if F == 0:
        return Status.OK
    nt = _threads(F, F, C, J, n_threads, work.shape[0])
    if nt == 1:
        flags = _filter_bins(0, F, x, P, Rnum, weight, scale, eps, sqrt_eps, out_scale, y_out,
                             &work[0, 0])
    else:
        for k in prange(nt, schedule="static", chunksize=1, num_threads=nt):
            f0 = k * F // nt
            f1 = (k + 1) * F // nt
            flags |= _filter_bins(f0, f1, x, P, Rnum, weight, scale, eps, sqrt_eps, out_scale,
                                  y_out, &work[threadid(), 0])
    return worst_status(flags)


def process(int mode, const complex_t[:, :, ::1] x not None,
            const floating[:, :, :, ::1] v not None,
            double scale, double eps, double forget, double out_scale,
            Py_ssize_t frames_in, Py_ssize_t frames_out,
            complex_t[:, :, ::1] x_ring not None, floating[:, :, ::1] P_ring not None,
            double[:, :, :, :, ::1] Rnum not None, double[:, ::1] weight not None,
            complex_t[:, :, :, ::1] y_out not None, double[:, ::1] work not None,
            int n_threads):
    """Python entry of online_process_kernel; returns its Status."""
    cdef int status
    with nogil:
        status = online_process_kernel(mode, x, v, scale, eps, forget, out_scale, frames_in,
                                       frames_out, x_ring, P_ring, Rnum, weight, y_out, work,
                                       n_threads)
    return status


def accumulate_frame(int mode, const complex_t[:, ::1] x not None,
                     const floating[:, :, ::1] v not None,
                     double scale, double eps, double forget,
                     floating[:, ::1] P_out not None, double[:, :, :, :, ::1] Rnum not None,
                     double[:, ::1] weight not None, double[:, ::1] work not None,
                     int n_threads):
    """Python entry of online_accumulate_kernel; returns its Status."""
    cdef int status
    with nogil:
        status = online_accumulate_kernel(mode, x, v, scale, eps, forget, P_out, Rnum, weight,
                                          work, n_threads)
    return status


def filter_frame(const complex_t[:, ::1] x not None, const floating[:, ::1] P not None,
                 const double[:, :, :, :, ::1] Rnum not None,
                 const double[:, ::1] weight not None,
                 double scale, double eps, double out_scale,
                 complex_t[:, :, ::1] y_out not None, double[:, ::1] work not None,
                 int n_threads):
    """Python entry of online_filter_kernel; returns its Status."""
    cdef int status
    with nogil:
        status = online_filter_kernel(x, P, Rnum, weight, scale, eps, out_scale, y_out, work,
                                      n_threads)
    return status


def work_columns(Py_ssize_t nb_channels, Py_ssize_t nb_sources):
    """online_work_size(nb_channels, nb_sources): columns of the kernels' scratch."""
    return online_work_size(nb_channels, nb_sources)
