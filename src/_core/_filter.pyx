"""The filter pass and the small per-TF-point products of the documented API.

filter_kernel writes source images for a block of frames from one of the estimators of
_filter.pxd; with Estimate.MODEL that is the EM's filter

    Cxx = sum_j v_j R_j + sqrt(eps) I,    z = Cxx^-1 x,    y_j = v_j R_j z,

which needs one Hermitian solve per TF point instead of one gain matrix per source.
Layouts: x (frames, bins, C), v (frames, bins, {1, C}, J), R (bins, J, C, C, 2) doubles and
y_out (frames, bins, C, J) are C-contiguous; P (frames, bins, J) needs only a contiguous last
axis, so `wiener` can keep it inside the output. Every TF point is independent: ranges of
bins go to threads in any order, with no reduction, and any thread count gives the same bits.
"""

cimport cython
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.math cimport sqrt, NAN

import numpy as np

from norbert._core._common cimport (
    complex_t, Status, Estimate, pass_threads, worst_status, work_size, psd_scratch,
    block_frames_for, note_pass,
)
from norbert._core._schedule cimport (
    MAX_RANGES, schedule, schedule_init, schedule_free, schedule_done, next_item, range_bins,
)
from norbert._core._stereo cimport (
    STEREO_TILE, ROWS_X, ROWS_P, ROWS_V, ROWS_R, ROWS_S, stereo_ops_t, stereo_ops, tile_load,
    load_x, store_y, rows_in, prefetch, prefetch_psd, psd_rows,
)
from norbert._core._steer cimport (
    steer_t, steer_for, steer_weighted, steer_watched, fill_steer, steered_point,
    monitor_point, monitor_stereo_rows,
)

# bins per dynamically scheduled range: two stereo tiles
cdef Py_ssize_t CHUNK_BINS = 128


# An output "split" layout: each TF point's (C, J) complex numbers stored as (C, 2, J)
# reals (real parts of the J sources, then their imaginary parts), i.e. the layout of
# open-unmix's (..., nb_channels, 2, nb_sources) tensors, in the same bytes: its users get
# their layout from the one write of the output, not from a second pass over it.
cdef inline void _store_split_tile(Py_ssize_t n, Py_ssize_t J, const double* Y, double s,
                                   complex_t* y) noexcept nogil:
    """A stereo tile's Y (J, 4, nb) -> n bins of (2, 2, J) reals, times s."""
    cdef Py_ssize_t nb = STEREO_TILE, i, j, k
    cdef double* yd
    cdef float* yf
    if complex_t is cython.doublecomplex:
        yd = <double*>y
        for i in range(n):
            for k in range(4):               # (channel, part) = row 4 j + k of Y
                for j in range(J):
                    yd[4 * J * i + k * J + j] = Y[(4 * j + k) * nb + i] * s
    else:
        yf = <float*>y
        for i in range(n):
            for k in range(4):
                for j in range(J):
                    yf[4 * J * i + k * J + j] = <float>(Y[(4 * j + k) * nb + i] * s)


cdef inline void _store_point(Py_ssize_t C, Py_ssize_t J, const double* y, double s,
                              bint split, complex_t* out) noexcept nogil:
    """One TF point's images y (C, J, 2) -> out, in the (C, J) complex or split layout."""
    cdef Py_ssize_t k, c, j
    cdef double* od
    cdef float* of
    if not split:
        for k in range(C * J):
            out[k].real = y[2 * k] * s
            out[k].imag = y[2 * k + 1] * s
    elif complex_t is cython.doublecomplex:
        od = <double*>out
        for c in range(C):
            for j in range(J):
                od[2 * J * c + j] = y[2 * (c * J + j)] * s
                od[2 * J * c + J + j] = y[2 * (c * J + j) + 1] * s
    else:
        of = <float*>out
        for c in range(C):
            for j in range(J):
                of[2 * J * c + j] = <float>(y[2 * (c * J + j)] * s)
                of[2 * J * c + J + j] = <float>(y[2 * (c * J + j) + 1] * s)


cdef int _stereo_filter_chunk(
    Py_ssize_t f0, Py_ssize_t f1,
    const complex_t[:, :, ::1] x, const floating[:, :, :] P,
    const double[:, :, :, :, ::1] R, double scale, double sqrt_eps, double out_scale,
    complex_t[:, :, :, ::1] y_out, double* work, const steer_t* steer, bint split,
) noexcept nogil:
    """The MODEL filter for two channels, tile by tile (see _stats._stereo_stats_chunk).

    Returns Status bits.
    """
    cdef const stereo_ops_t* ops = stereo_ops()
    cdef Py_ssize_t nb = STEREO_TILE, J = P.shape[2]
    cdef Py_ssize_t g0, n, t
    # the scratch areas, in _stereo.h's order (norbert_stereo_scratch sizes them)
    cdef double* X = work
    cdef double* Pin = X + ROWS_X * nb
    cdef double* Rs = Pin + ROWS_P * J * nb
    cdef double* S = Rs + ROWS_R * J * nb
    cdef double* Y = S + ROWS_S * nb
    cdef const double* Pt
    cdef Py_ssize_t Pjs = P.strides[2] // sizeof(floating), Pes = P.strides[1] // sizeof(floating)
    cdef Py_ssize_t ps = nb
    cdef bint direct = False
    cdef int bits = 0
    if floating is double:
        # PSD storage laid out (frames, J, bins) is read in place: no gather, no copy
        direct = Pes == 1
        if direct:
            ps = Pjs
    g0 = f0
    while g0 < f1:
        n = f1 - g0 if f1 - g0 < nb else nb
        tile_load(R, g0, n, nb, Rs)
        for t in range(P.shape[0]):
            if t + 1 < P.shape[0]:
                prefetch(&x[t + 1, g0, 0], n * 2 * sizeof(complex_t), 0)
                prefetch_psd(&P[t + 1, g0, 0], n, J, Pjs, Pes, 0)
                prefetch(&y_out[t + 1, g0, 0, 0], n * 2 * J * sizeof(complex_t), 1)
            load_x(ops, n, &x[t, g0, 0], scale, X)
            Pt = psd_rows(ops, &P[t, g0, 0], n, J, Pjs, Pes, direct, Pin)
            bits |= ops.solve(n, J, X, Pt, ps, Rs, sqrt_eps, S)
            if steer_watched(steer):
                monitor_stereo_rows(steer, g0, n, nb, J, X, Pt, ps, Rs, S, sqrt_eps)
            ops.model_images(n, J, Pt, ps, Rs, S, Y)
            if split:
                _store_split_tile(n, J, Y, out_scale, &y_out[t, g0, 0, 0])
            else:
                store_y(ops, n, J, Y, out_scale, &y_out[t, g0, 0, 0])
        g0 += nb
    return bits


cdef int _stereo_softmask_chunk(
    Py_ssize_t f0, Py_ssize_t f1, const complex_t[:, :, ::1] x,
    const floating[:, :, :, ::1] v, double scale, double eps, double out_scale,
    complex_t[:, :, :, ::1] y_out, double* work, bint split,
) noexcept nogil:
    """The soft mask (without logit) for two channels, tile by tile (see _stereo.h).

    Returns Status bits.
    """
    cdef const stereo_ops_t* ops = stereo_ops()
    cdef Py_ssize_t nb = STEREO_TILE, J = y_out.shape[3], Cv = v.shape[2]
    cdef Py_ssize_t g0, n, t
    # the scratch areas, in _stereo.h's order (norbert_stereo_scratch sizes them)
    cdef double* X = work
    cdef double* V = X + ROWS_X * nb
    cdef double* S = V + ROWS_V * J * nb
    cdef double* Y = S + ROWS_S * nb
    cdef int bits = 0
    g0 = f0
    while g0 < f1:
        n = f1 - g0 if f1 - g0 < nb else nb
        for t in range(y_out.shape[0]):
            if t + 1 < y_out.shape[0]:
                prefetch(&x[t + 1, g0, 0], n * 2 * sizeof(complex_t), 0)
                prefetch(&v[t + 1, g0, 0, 0], n * Cv * J * sizeof(floating), 0)
            load_x(ops, n, &x[t, g0, 0], scale, X)
            rows_in(ops, n, Cv * J, &v[t, g0, 0, 0], 1, Cv * J, V)
            bits |= ops.softmask_images(n, J, Cv, X, V, eps, S, Y)
            if split:
                _store_split_tile(n, J, Y, out_scale, &y_out[t, g0, 0, 0])
            else:
                store_y(ops, n, J, Y, out_scale, &y_out[t, g0, 0, 0])
        g0 += nb
    return bits


cdef int _filter_chunk(
    int mode, Py_ssize_t f0, Py_ssize_t f1,
    const complex_t[:, :, ::1] x, const floating[:, :, :, ::1] v,
    const floating[:, :, :] P, const double[:, :, :, :, ::1] R,
    double scale, double eps, double sqrt_eps, double logit, double slope, double out_scale,
    complex_t[:, :, :, ::1] y_out, double* work, const steer_t* steer, bint split,
) noexcept nogil:
    """The estimate at bins f0..f1 of the block's frames (split: see _store_point);
    returns a Status."""
    cdef Py_ssize_t t, f, k
    cdef Py_ssize_t C = y_out.shape[2], J = y_out.shape[3], Cv = v.shape[2]
    cdef bint use_v = mode == Estimate.SOFTMASK or mode == Estimate.PHASE
    cdef bint use_model = mode == Estimate.MODEL
    cdef const floating* vp = NULL
    cdef const floating* Pp = NULL
    cdef const double* Rp = NULL
    cdef double* y = work
    # a TF point's PSDs, gathered when they are not contiguous (see psd_scratch)
    cdef floating* Pg = <floating*>(work + psd_scratch(C, J))
    cdef Py_ssize_t Pjs = P.strides[2] // sizeof(floating)
    cdef int st, bits = 0
    # the SDW filter (mu != 1) solves per source: the per-point path below, for any C
    cdef bint weighted = use_model and steer_weighted(steer)
    cdef bint watched = use_model and steer_watched(steer)
    if C == 2 and use_model and not weighted:
        return worst_status(_stereo_filter_chunk(f0, f1, x, P, R, scale, sqrt_eps, out_scale,
                                                 y_out, work, steer, split))
    if C == 2 and mode == Estimate.SOFTMASK and logit < 0.0:
        return worst_status(_stereo_softmask_chunk(f0, f1, x, v, scale, eps, out_scale, y_out,
                                                   work, split))
    for t in range(y_out.shape[0]):
        for f in range(f0, f1):
            if use_v:
                vp = &v[t, f, 0, 0]
            if use_model:
                Pp = &P[t, f, 0]
                if Pjs != 1:
                    for k in range(J):
                        Pg[k] = Pp[k * Pjs]
                    Pp = Pg
                Rp = &R[f, 0, 0, 0, 0]
            st = steered_point(weighted, steer, mode, C, Cv, J, &x[t, f, 0], vp, NULL, Pp, Rp,
                               scale, eps, sqrt_eps, logit, slope, y, work + 2 * C * J)
            if st != Status.OK:
                bits |= 1 << st
            elif watched:
                monitor_point(steer, f, C, J, Pp, Rp, &x[t, f, 0], scale, sqrt_eps, eps, y,
                              work + 2 * C * J)
            _store_point(C, J, y, out_scale, split, &y_out[t, f, 0, 0])
    return worst_status(bits)


cdef int filter_kernel(
    int mode,
    const complex_t[:, :, ::1] x,            # IN  (frames, bins, C)
    const floating[:, :, :, ::1] v,          # IN  (frames, bins, {1, C}, J)  SOFTMASK / PHASE
    const floating[:, :, :] P,             # IN  (frames, bins, J)          MODEL
    const double[:, :, :, :, ::1] R,         # IN  (bins, J, C, C, 2)         MODEL
    double scale, double eps, double logit, double slope, double out_scale,
    complex_t[:, :, :, ::1] y_out,           # OUT (frames, bins, C, J)
    double[:, ::1] work,                     # scratch (>= threads, >= work_size(C, J))
    int n_threads,
) noexcept nogil:
    return filter_pass(mode, x, v, P, R, &scale, &out_scale, 1, eps, logit, slope, y_out,
                       work, n_threads, 0, 0, False, NULL)


cdef int filter_pass(
    int mode,
    const complex_t[:, :, ::1] x,            # (E * T, F, C): element e is frames e*T..e*T+T
    const floating[:, :, :, ::1] v,          # (E * T, F, {1, C}, J)
    const floating[:, :, :] P,               # (E * T, F, J)
    const double[:, :, :, :, ::1] R,         # (E * F, J, C, C, 2): element e is bins e*F..
    const double* scales,                    # (E,): each element's mixture scale
    const double* out_scales,                # (E,): each element's output scale
    Py_ssize_t n_elements,                   # E independent problems (a batch), 1..MAX_RANGES
    double eps, double logit, double slope,
    complex_t[:, :, :, ::1] y_out,           # (E * T, F, C, J)
    double[:, ::1] work,
    int n_threads,
    Py_ssize_t block_frames,                 # frames per work item (<= 0: a default)
    Py_ssize_t max_lead,                     # see _schedule.h (0: no bound)
    bint split,                              # y_out in the split layout (see _store_point)
    const steer_t* steer=NULL,               # MODEL: mu and monitor sums (NULL: none)
) noexcept nogil:
    """filter_kernel over E problems of T frames in one parallel region (see _schedule.h)."""
    cdef Py_ssize_t E = n_elements, F = y_out.shape[1], C = y_out.shape[2]
    cdef Py_ssize_t J = y_out.shape[3], T, nt, _w, e, b, t0, t1, nblk, width, per_element
    cdef int flags = 0
    cdef double sqrt_eps = sqrt(eps)
    cdef schedule s
    cdef steer_t local
    cdef const steer_t* sp
    if E < 1 or E > MAX_RANGES or y_out.shape[0] % E != 0:
        return Status.BAD_SHAPE
    T = y_out.shape[0] // E
    if x.shape[0] != E * T or x.shape[1] != F or x.shape[2] != C:
        return Status.BAD_SHAPE
    if mode == Estimate.MODEL:
        if (P.shape[0] != E * T or P.shape[1] != F or P.shape[2] != J or R.shape[0] != E * F
                or R.shape[1] != J or R.shape[2] != C or R.shape[3] != C):
            return Status.BAD_SHAPE
    elif mode == Estimate.SOFTMASK or mode == Estimate.PHASE:
        if (v.shape[0] != E * T or v.shape[1] != F or v.shape[3] != J
                or (v.shape[2] != 1 and v.shape[2] != C)):
            return Status.BAD_SHAPE
    else:
        return Status.BAD_MODE
    if (mode == Estimate.MODEL and P.strides[2] != sizeof(floating)
            and P.strides[1] != sizeof(floating)):
        return Status.BAD_SHAPE              # P must have contiguous sources or bins
    if work.shape[1] < work_size(C, J) or work.shape[0] < 1:
        return Status.SMALL_WORK
    if T == 0 or F == 0 or C == 0 or J == 0:
        return Status.OK
    block_frames = block_frames_for(T, F, C, J, block_frames)
    nblk = (T + block_frames - 1) // block_frames
    nt = pass_threads(E * T, F, n_threads, work.shape[0])
    if nt == 1:
        for e in range(E):
            sp = steer_for(steer, &local, e * F)
            for b in range(nblk):
                t0 = e * T + b * block_frames
                t1 = e * T + T if b * block_frames + block_frames > T else t0 + block_frames
                flags |= 1 << _filter_chunk(
                    mode, 0, F, x[t0:t1], v[t0:t1], P[t0:t1], R[e * F:e * F + F],
                    scales[e], eps, sqrt_eps, logit, slope, out_scales[e], y_out[t0:t1],
                    &work[0, 0], sp, split)
        note_pass(1, False)
        return worst_status(flags)
    # One region for the pass; every TF point is computed the same way whichever thread
    # takes it, so any thread count gives the same bits.
    width = range_bins(F, E, CHUNK_BINS)
    per_element = (F + width - 1) // width
    schedule_init(&s, nblk, E * per_element, max_lead)
    for _w in prange(nt, schedule="static", chunksize=1, num_threads=nt):
        flags |= _filter_worker(&s, block_frames, width, per_element, T, mode, x, v, P, R,
                                scales, out_scales, eps, sqrt_eps, logit, slope, y_out,
                                &work[threadid(), 0], steer, split)
    note_pass(s.threads_used, True)
    schedule_free(&s)
    return worst_status(flags)


cdef int _filter_worker(
    schedule* s, Py_ssize_t block_frames, Py_ssize_t width, Py_ssize_t per_element,
    Py_ssize_t T, int mode,
    const complex_t[:, :, ::1] x, const floating[:, :, :, ::1] v,
    const floating[:, :, :] P, const double[:, :, :, :, ::1] R,
    const double* scales, const double* out_scales,
    double eps, double sqrt_eps, double logit, double slope,
    complex_t[:, :, :, ::1] y_out, double* work, const steer_t* steer, bint split,
) noexcept nogil:
    """One thread's share of a pass: items until none is left; returns 1 << status flags."""
    cdef Py_ssize_t k = 0, e = 0, t0, t1, f0, f1, F = y_out.shape[1]
    cdef int flags = 0
    cdef bint joined = False
    cdef steer_t local                       # steer with element e's bins of the sums
    while next_item(s, block_frames, width, per_element, T, F, &joined, &k, &e, &t0, &t1,
                    &f0, &f1):
        flags |= 1 << _filter_chunk(mode, f0, f1, x[t0:t1], v[t0:t1], P[t0:t1],
                                    R[e * F:e * F + F], scales[e], eps, sqrt_eps, logit,
                                    slope, out_scales[e], y_out[t0:t1], work,
                                    steer_for(steer, &local, e * F), split)
        schedule_done(s, k)
    return flags


def apply_estimate(int mode, const complex_t[:, :, ::1] x not None,
                   const floating[:, :, :, ::1] v not None,
                   const floating[:, :, :] P not None,
                   const double[:, :, :, :, ::1] R not None,
                   scale, double eps, double logit, double slope, out_scale,
                   complex_t[:, :, :, ::1] y_out not None,
                   double[:, ::1] work not None, int n_threads,
                   Py_ssize_t block_frames=0, Py_ssize_t max_lead=0, bint split=False,
                   double mu=1.0, double[:, ::1] monitor=None):
    """Python entry of filter_pass; returns its Status.

    scale, out_scale: floats (one problem), or one per element of a batch of len(scale)
    problems. split: write y_out's points in the (C, 2, J) real layout (_store_point).
    `mu` and `monitor` (MODEL passes only) as in _stats.accumulate.
    """
    cdef int status
    cdef const double[::1] scales = np.ascontiguousarray(scale, dtype=np.float64).reshape(-1)
    cdef const double[::1] out_scales = np.ascontiguousarray(
        out_scale, dtype=np.float64).reshape(-1)
    cdef steer_t steer
    cdef const steer_t* sp
    if scales.shape[0] < 1 or out_scales.shape[0] != scales.shape[0]:
        return Status.BAD_SHAPE
    sp = fill_steer(&steer, mu, monitor, y_out.shape[1] * scales.shape[0], &status)
    if status != Status.OK:
        return status
    with nogil:
        status = filter_pass(mode, x, v, P, R, &scales[0], &out_scales[0], scales.shape[0],
                             eps, logit, slope, y_out, work, n_threads, block_frames,
                             max_lead, split, sp)
    return status


# ---------------------------------------------------------------------------------------
# The documented building blocks (get_mix_model, wiener_gain, apply_filter), in double.

cdef int _mix_model_chunk(Py_ssize_t f0, Py_ssize_t f1, const floating[:, :, ::1] v,
                          const complex_t[:, :, :, ::1] R,
                          complex_t[:, :, :, ::1] Cxx_out) noexcept nogil:
    cdef Py_ssize_t t, f, c, d, j
    cdef double sr, si, vj
    for t in range(v.shape[0]):
        for f in range(f0, f1):
            for c in range(R.shape[1]):
                for d in range(R.shape[2]):
                    sr = 0.0
                    si = 0.0
                    for j in range(v.shape[2]):
                        vj = v[t, f, j]
                        sr = sr + vj * R[f, c, d, j].real
                        si = si + vj * R[f, c, d, j].imag
                    Cxx_out[t, f, c, d].real = sr
                    Cxx_out[t, f, c, d].imag = si
    return Status.OK


cdef int mix_model_kernel(
    const floating[:, :, ::1] v,             # IN  (frames, bins, J)
    const complex_t[:, :, :, ::1] R,         # IN  (bins, C, C, J)
    complex_t[:, :, :, ::1] Cxx_out,         # OUT (frames, bins, C, C)
    int n_threads,
) noexcept nogil:
    cdef Py_ssize_t F = v.shape[1], nc, k
    if (R.shape[0] != F or R.shape[3] != v.shape[2] or Cxx_out.shape[0] != v.shape[0]
            or Cxx_out.shape[1] != F or Cxx_out.shape[2] != R.shape[1]
            or Cxx_out.shape[3] != R.shape[2]):
        return Status.BAD_SHAPE
    nc = pass_threads(v.shape[0], F, n_threads, F)
    if nc == 1:
        return _mix_model_chunk(0, F, v, R, Cxx_out)
    for k in prange(nc, schedule='static', num_threads=nc):
        _mix_model_chunk(k * F // nc, (k + 1) * F // nc, v, R, Cxx_out)
    return Status.OK


def mix_model(const floating[:, :, ::1] v not None, const complex_t[:, :, :, ::1] R not None,
              complex_t[:, :, :, ::1] Cxx_out not None, int n_threads):
    cdef int status
    with nogil:
        status = mix_model_kernel(v, R, Cxx_out, n_threads)
    return status


cdef int _gain_chunk(Py_ssize_t f0, Py_ssize_t f1, const floating[:, ::1] v_j,
                     const complex_t[:, :, ::1] R_j, const complex_t[:, :, :, ::1] inv_Cxx,
                     complex_t[:, :, :, ::1] G_out) noexcept nogil:
    cdef Py_ssize_t t, f, c, d, k, C = R_j.shape[1]
    cdef double sr, si, ar, ai, br, bi, vj
    for t in range(v_j.shape[0]):
        for f in range(f0, f1):
            vj = v_j[t, f]
            for c in range(C):
                for d in range(C):
                    sr = 0.0
                    si = 0.0
                    for k in range(C):
                        ar = R_j[f, c, k].real
                        ai = R_j[f, c, k].imag
                        br = inv_Cxx[t, f, k, d].real
                        bi = inv_Cxx[t, f, k, d].imag
                        sr = sr + ar * br - ai * bi
                        si = si + ar * bi + ai * br
                    G_out[t, f, c, d].real = vj * sr
                    G_out[t, f, c, d].imag = vj * si
    return Status.OK


cdef int gain_kernel(
    const floating[:, ::1] v_j,              # IN  (frames, bins)
    const complex_t[:, :, ::1] R_j,          # IN  (bins, C, C)
    const complex_t[:, :, :, ::1] inv_Cxx,   # IN  (frames, bins, C, C)
    complex_t[:, :, :, ::1] G_out,           # OUT (frames, bins, C, C): v_j R_j inv_Cxx
    int n_threads,
) noexcept nogil:
    cdef Py_ssize_t T = v_j.shape[0], F = v_j.shape[1], C = R_j.shape[1], nc, k
    if (R_j.shape[0] != F or R_j.shape[2] != C or inv_Cxx.shape[0] != T
            or inv_Cxx.shape[1] != F or inv_Cxx.shape[2] != C or inv_Cxx.shape[3] != C
            or G_out.shape[0] != T or G_out.shape[1] != F or G_out.shape[2] != C
            or G_out.shape[3] != C):
        return Status.BAD_SHAPE
    nc = pass_threads(T, F, n_threads, F)
    if nc == 1:
        return _gain_chunk(0, F, v_j, R_j, inv_Cxx, G_out)
    for k in prange(nc, schedule='static', num_threads=nc):
        _gain_chunk(k * F // nc, (k + 1) * F // nc, v_j, R_j, inv_Cxx, G_out)
    return Status.OK


def gain(const floating[:, ::1] v_j not None, const complex_t[:, :, ::1] R_j not None,
         const complex_t[:, :, :, ::1] inv_Cxx not None, complex_t[:, :, :, ::1] G_out not None,
         int n_threads):
    cdef int status
    with nogil:
        status = gain_kernel(v_j, R_j, inv_Cxx, G_out, n_threads)
    return status


cdef int _apply_chunk(Py_ssize_t f0, Py_ssize_t f1, const complex_t[:, :, ::1] x,
                      const complex_t[:, :, :, ::1] W, complex_t[:, :, ::1] y_out) noexcept nogil:
    cdef Py_ssize_t t, f, c, d, C = x.shape[2]
    cdef double sr, si, ar, ai, br, bi
    for t in range(x.shape[0]):
        for f in range(f0, f1):
            for c in range(C):
                sr = 0.0
                si = 0.0
                for d in range(C):
                    ar = W[t, f, c, d].real
                    ai = W[t, f, c, d].imag
                    br = x[t, f, d].real
                    bi = x[t, f, d].imag
                    sr = sr + ar * br - ai * bi
                    si = si + ar * bi + ai * br
                y_out[t, f, c].real = sr
                y_out[t, f, c].imag = si
    return Status.OK


cdef int apply_filter_kernel(
    const complex_t[:, :, ::1] x,            # IN  (frames, bins, C)
    const complex_t[:, :, :, ::1] W,         # IN  (frames, bins, C, C)
    complex_t[:, :, ::1] y_out,              # OUT (frames, bins, C): W x
    int n_threads,
) noexcept nogil:
    cdef Py_ssize_t T = x.shape[0], F = x.shape[1], C = x.shape[2], nc, k
    if (W.shape[0] != T or W.shape[1] != F or W.shape[2] != C or W.shape[3] != C
            or y_out.shape[0] != T or y_out.shape[1] != F or y_out.shape[2] != C):
        return Status.BAD_SHAPE
    nc = pass_threads(T, F, n_threads, F)
    if nc == 1:
        return _apply_chunk(0, F, x, W, y_out)
    for k in prange(nc, schedule='static', num_threads=nc):
        _apply_chunk(k * F // nc, (k + 1) * F // nc, x, W, y_out)
    return Status.OK


def apply(const complex_t[:, :, ::1] x not None, const complex_t[:, :, :, ::1] W not None,
          complex_t[:, :, ::1] y_out not None, int n_threads):
    cdef int status
    with nogil:
        status = apply_filter_kernel(x, W, y_out, n_threads)
    return status


cdef double _max_abs2_rows(const complex_t[:, :, ::1] x, Py_ssize_t t0,
                           Py_ssize_t t1) noexcept nogil:
    """max |x|^2 over frames t0..t1 (NaN if any entry there is NaN)."""
    cdef Py_ssize_t t, f, c
    cdef double m = 0.0, a, re, im
    cdef bint nan = False
    for t in range(t0, t1):
        for f in range(x.shape[1]):
            for c in range(x.shape[2]):
                re = x[t, f, c].real
                im = x[t, f, c].imag
                a = re * re + im * im
                if a > m:
                    m = a
                elif a != a:
                    nan = True
    return NAN if nan else m


def max_abs2(const complex_t[:, :, ::1] x not None, int n_threads=1):
    """max |x|^2 over the array (NaN if any entry is NaN), without a full-size temporary.

    Ranges of frames go to threads; a maximum does not depend on the order it is taken in.
    """
    cdef Py_ssize_t T = x.shape[0], nc, k
    cdef double m = 0.0
    cdef double[::1] part
    nc = pass_threads(T, x.shape[1], n_threads, T)
    if nc <= 1 or T < 2:
        with nogil:
            m = _max_abs2_rows(x, 0, T)
        return m
    part = np.zeros(nc)
    with nogil:
        for k in prange(nc, schedule='static', num_threads=nc):
            part[k] = _max_abs2_rows(x, k * T // nc, (k + 1) * T // nc)
    for k in range(nc):
        if part[k] != part[k]:
            return float('nan')
        if part[k] > m:
            m = part[k]
    return m


def max_abs2_elements(const complex_t[:, :, ::1] x not None, Py_ssize_t n_elements,
                      int n_threads=1):
    """max |x|^2 of each of `n_elements` equal runs of frames (x: (E * T, bins, C)).

    Returns an (E,) array (NaN for an element with a NaN). One parallel region for the
    whole batch: (element, range of frames) pieces go to the threads.
    """
    cdef Py_ssize_t E = n_elements, T, per, pieces, k, e, i
    cdef int nt
    cdef double[::1] part
    if E < 1 or x.shape[0] % E != 0:
        raise ValueError(f"{x.shape[0]} frames do not split into {E} elements")
    T = x.shape[0] // E
    result = np.zeros(E)
    if T == 0:
        return result
    per = 1 if E >= n_threads else pass_threads(T, x.shape[1], n_threads, T)
    pieces = E * per
    # the passes' rule for how many threads a call of E * T frames gets, at most one a piece
    nt = pass_threads(E * T, x.shape[1], n_threads, pieces)
    part = np.zeros(pieces)
    with nogil:
        for k in prange(pieces, schedule='static', num_threads=nt):
            e = k // per
            i = k - e * per
            part[k] = _max_abs2_rows(x, e * T + i * T // per, e * T + (i + 1) * T // per)
    return np.asarray(part).reshape(E, per).max(axis=1)
