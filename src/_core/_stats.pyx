"""The EM statistics pass: PSDs and spatial-covariance sums over frames, per bin.

For every TF point of a block of frames, source images y_j come from one of the estimators
of _filter.pxd (given, soft mask, mixture phase, or the EM's filter), and

    P[t, f, j]        = mean_c |y_j[t, f, c]|^2                    (written)
    weight[f, j]     += P[t, f, j]                                  (accumulated)
    Rnum[f, j, c, d] += y_j[t, f, c] conj(y_j[t, f, d]),  c <= d    (accumulated)

In MODEL mode P holds the previous PSDs on entry and the new ones on exit: the filter and
the next statistics run in one pass, so y never needs to be stored between iterations.

Sums are kept in double (float32 sums over 10^4 frames lose 3-4 digits). Each thread owns a
contiguous range of bins and adds frames in order for every bin it owns, so the sums (and
everything after them) are bitwise identical for any thread count and any split of the
track into blocks of frames, as long as blocks are passed in order.

finalize_covariance turns the sums into R_j = Rnum_j / (eps + weight_j), Hermitian.
"""

import numpy as np

from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.math cimport sqrt, INFINITY

from norbert._core._common cimport (
    complex_t, Status, Estimate, pass_threads, worst_status, work_size, psd_scratch,
    block_frames_for, note_pass,
)
from norbert._core._schedule cimport (
    MAX_RANGES, schedule, schedule_init, schedule_free, schedule_done, next_item, range_bins,
)
from norbert._core._stereo cimport (
    STEREO_TILE, ROWS_X, ROWS_P, ROWS_V, ROWS_R, ROWS_RN, ROWS_W, ROWS_S, stereo_ops_t,
    stereo_ops, tile_load, tile_store, load_x, load_y, rows_in, rows_out, prefetch,
    prefetch_psd, psd_rows,
)
from norbert._core._steer cimport (
    steer_t, steer_for, steer_weighted, steer_watched, fill_steer, steered_point,
    monitor_point, monitor_stereo_rows,
)

# bins per dynamically scheduled range: two stereo tiles
cdef Py_ssize_t CHUNK_BINS = 128

# The most elements of a batch one call of a pass takes (each needs a range of its own).
MAX_ELEMENTS = MAX_RANGES


cdef inline void _stereo_stats(Py_ssize_t J, const double* y, floating* P, double* wf,
                               double* Rn) noexcept nogil:
    """The statistics of one stereo TF point (the generic loop below, unrolled)."""
    cdef Py_ssize_t j
    cdef double y0r, y0i, y1r, y1i, p0, p1
    for j in range(J):
        y0r = y[2 * j]
        y0i = y[2 * j + 1]
        y1r = y[2 * (J + j)]
        y1i = y[2 * (J + j) + 1]
        p0 = y0r * y0r + y0i * y0i
        p1 = y1r * y1r + y1i * y1i
        P[j] = <floating>((p0 + p1) * 0.5)
        wf[j] = wf[j] + (p0 + p1) * 0.5
        Rn[8 * j] += p0
        Rn[8 * j + 2] += y0r * y1r + y0i * y1i
        Rn[8 * j + 3] += y0i * y1r - y0r * y1i
        Rn[8 * j + 6] += p1


cdef int _stereo_stats_chunk(
    int mode, Py_ssize_t f0, Py_ssize_t f1,
    const complex_t[:, :, ::1] x, const floating[:, :, :, ::1] v,
    const complex_t[:, :, :, ::1] y_in, floating[:, :, :] P,
    const double[:, :, :, :, ::1] R, double scale, double eps, double sqrt_eps,
    double[:, :, :, :, ::1] Rnum, double[:, ::1] weight, double* work,
    const steer_t* steer,
) noexcept nogil:
    """_stats_chunk for two channels (MODEL, GIVEN, or SOFTMASK without logit), tile by tile.

    A tile of bins is copied to structure-of-arrays scratch (R, and the running sums Rnum
    and weight, exactly, so every bin still adds its frames in order), every frame of the
    block is processed by the vectorised rows of _stereo.h, and the sums are copied back.
    PSD storage laid out (frames, J, bins) is read in place (in double) and written by
    contiguous row copies; (frames, bins, J) storage is gathered and scattered.
    Returns Status bits.
    """
    cdef const stereo_ops_t* ops = stereo_ops()
    cdef Py_ssize_t nb = STEREO_TILE, J = P.shape[2], Cv = v.shape[2]
    cdef Py_ssize_t g0, n, i, j, t
    # the scratch areas, in _stereo.h's order (norbert_stereo_scratch sizes them)
    cdef double* X = work
    cdef double* Pin = X + ROWS_X * nb
    cdef double* V = Pin + ROWS_P * J * nb
    cdef double* Rs = V + ROWS_V * J * nb
    cdef double* Rns = Rs + ROWS_R * J * nb
    cdef double* Ws = Rns + ROWS_RN * J * nb
    cdef double* S = Ws + ROWS_W * J * nb
    cdef double* Pout = S + ROWS_S * nb
    cdef const double* Pt
    cdef Py_ssize_t Pjs = P.strides[2] // sizeof(floating), Pes = P.strides[1] // sizeof(floating)
    cdef Py_ssize_t ps = nb
    cdef bint direct = False
    cdef int bits = 0
    if floating is double:
        direct = Pes == 1
        if direct:
            ps = Pjs
    g0 = f0
    while g0 < f1:
        n = f1 - g0 if f1 - g0 < nb else nb
        if mode == Estimate.MODEL:
            tile_load(R, g0, n, nb, Rs)
        tile_load(Rnum, g0, n, nb, Rns)
        for i in range(n):
            for j in range(J):
                Ws[j * nb + i] = weight[g0 + i, j]
        for t in range(P.shape[0]):
            if mode == Estimate.GIVEN:
                # the images are an input: their statistics, nothing to solve
                if t + 1 < P.shape[0]:
                    prefetch(&y_in[t + 1, g0, 0, 0], n * 2 * J * sizeof(complex_t), 0)
                load_y(ops, n, J, &y_in[t, g0, 0, 0], scale, Rs)
                ops.given_stats(n, J, Rs, Pout, Ws, Rns)
                rows_out(ops, n, J, Pout, &P[t, g0, 0], Pjs, Pes)
                continue
            if t + 1 < P.shape[0]:
                prefetch(&x[t + 1, g0, 0], n * 2 * sizeof(complex_t), 0)
                if mode != Estimate.MODEL:
                    prefetch(&v[t + 1, g0, 0, 0], n * Cv * J * sizeof(floating), 0)
                else:
                    prefetch_psd(&P[t + 1, g0, 0], n, J, Pjs, Pes, 1)
            load_x(ops, n, &x[t, g0, 0], scale, X)
            if mode == Estimate.MODEL:
                Pt = psd_rows(ops, &P[t, g0, 0], n, J, Pjs, Pes, direct, Pin)
                bits |= ops.solve(n, J, X, Pt, ps, Rs, sqrt_eps, S)
                if steer_watched(steer):
                    monitor_stereo_rows(steer, g0, n, nb, J, X, Pt, ps, Rs, S, sqrt_eps)
                ops.model_stats(n, J, Pt, ps, Rs, S, Pout, Ws, Rns)
            else:
                # (bins, Cv, J) -> Cv * J rows of bins
                rows_in(ops, n, Cv * J, &v[t, g0, 0, 0], 1, Cv * J, V)
                bits |= ops.softmask_stats(n, J, Cv, X, V, eps, S, Pout, Ws, Rns)
            # the new PSDs replace the old ones only now: the images above read them
            rows_out(ops, n, J, Pout, &P[t, g0, 0], Pjs, Pes)
        tile_store(Rns, g0, n, nb, Rnum)
        for i in range(n):
            for j in range(J):
                weight[g0 + i, j] = Ws[j * nb + i]
        g0 += nb
    return bits


cdef int _stats_chunk(
    int mode, Py_ssize_t f0, Py_ssize_t f1,
    const complex_t[:, :, ::1] x, const floating[:, :, :, ::1] v,
    const complex_t[:, :, :, ::1] y_in, floating[:, :, :] P,
    const double[:, :, :, :, ::1] R,
    double scale, double eps, double sqrt_eps, double logit, double slope,
    double[:, :, :, :, ::1] Rnum, double[:, ::1] weight, double* work,
    const steer_t* steer,
) noexcept nogil:
    """The statistics of bins f0..f1 over the block's frames; returns a Status."""
    cdef Py_ssize_t t, f, j, C = x.shape[2], J = P.shape[2], Cv = v.shape[2]
    cdef bint use_v = mode == Estimate.SOFTMASK or mode == Estimate.PHASE
    cdef bint use_y = mode == Estimate.GIVEN
    cdef bint use_model = mode == Estimate.MODEL
    cdef const floating* vp = NULL
    cdef const complex_t* yp = NULL
    cdef const double* Rp = NULL
    cdef floating* Pp
    cdef double* y = work
    cdef double* Rn
    cdef double* wf
    # a TF point's PSDs, gathered / scattered when they are not contiguous
    cdef floating* Pg = <floating*>(work + psd_scratch(C, J))
    cdef floating* Pst
    cdef Py_ssize_t Pjs = P.strides[2] // sizeof(floating)
    cdef int st, bits = 0
    # the SDW filter (mu != 1) solves per source: the per-point path below, for any C
    cdef bint weighted = use_model and steer_weighted(steer)
    cdef bint watched = use_model and steer_watched(steer)
    if C == 2 and not weighted and (use_model or use_y
                                    or (mode == Estimate.SOFTMASK and logit < 0.0)):
        return worst_status(_stereo_stats_chunk(mode, f0, f1, x, v, y_in, P, R, scale, eps,
                                                sqrt_eps, Rnum, weight, work, steer))
    for t in range(P.shape[0]):
        for f in range(f0, f1):
            if use_v:
                vp = &v[t, f, 0, 0]
            if use_y:
                yp = &y_in[t, f, 0, 0]
            if use_model:
                Rp = &R[f, 0, 0, 0, 0]
            Pst = &P[t, f, 0]
            Pp = Pst
            if Pjs != 1:
                Pp = Pg
                if use_model:
                    for j in range(J):
                        Pg[j] = Pst[j * Pjs]
            st = steered_point(weighted, steer, mode, C, Cv, J, &x[t, f, 0], vp, yp, Pp, Rp,
                               scale, eps, sqrt_eps, logit, slope, y, work + 2 * C * J)
            if st != Status.OK:
                bits |= 1 << st
            elif watched:
                # before point_stats below replaces the PSDs this filter used
                monitor_point(steer, f, C, J, Pp, Rp, &x[t, f, 0], scale, sqrt_eps, eps, y,
                              work + 2 * C * J)
            wf = &weight[f, 0]
            Rn = &Rnum[f, 0, 0, 0, 0]
            if C == 2:
                _stereo_stats(J, y, Pp, wf, Rn)
            else:
                point_stats(C, J, y, Pp, wf, Rn, 1.0)
            if Pjs != 1:
                for j in range(J):
                    Pst[j * Pjs] = Pp[j]
    return worst_status(bits)


cdef int stats_kernel(
    int mode,
    const complex_t[:, :, ::1] x,            # IN    (frames, bins, C)
    const floating[:, :, :, ::1] v,          # IN    (frames, bins, {1, C}, J)  SOFTMASK / PHASE
    const complex_t[:, :, :, ::1] y_in,      # IN    (frames, bins, C, J)       GIVEN
    floating[:, :, :] P,                   # INOUT (frames, bins, J)          PSDs
    const double[:, :, :, :, ::1] R,         # IN    (bins, J, C, C, 2)         MODEL
    double scale, double eps, double logit, double slope,
    double[:, :, :, :, ::1] Rnum,            # INOUT (bins, J, C, C, 2)  upper triangle
    double[:, ::1] weight,                   # INOUT (bins, J)
    double[:, ::1] work,                     # scratch (>= threads, >= work_size(C, J))
    int n_threads,
) noexcept nogil:
    return stats_pass(mode, x, v, y_in, P, R, &scale, 1, eps, logit, slope, Rnum, weight,
                      work, n_threads, 0, 0)


cdef int stats_pass(
    int mode,
    const complex_t[:, :, ::1] x,            # (E * T, F, C): element e is frames e*T..e*T+T
    const floating[:, :, :, ::1] v,          # (E * T, F, {1, C}, J)
    const complex_t[:, :, :, ::1] y_in,      # (E * T, F, C, J)
    floating[:, :, :] P,                     # (E * T, F, J)
    const double[:, :, :, :, ::1] R,         # (E * F, J, C, C, 2): element e is bins e*F..
    const double* scales,                    # (E,): each element's mixture scale
    Py_ssize_t n_elements,                   # E independent problems (a batch), 1..MAX_RANGES
    double eps, double logit, double slope,
    double[:, :, :, :, ::1] Rnum,            # (E * F, J, C, C, 2)
    double[:, ::1] weight,                   # (E * F, J)
    double[:, ::1] work,
    int n_threads,
    Py_ssize_t block_frames,                 # frames per work item (<= 0: a default)
    Py_ssize_t max_lead,                     # see _schedule.h (0: no bound)
    const steer_t* steer=NULL,               # MODEL: mu and monitor sums (NULL: none)
) noexcept nogil:
    """stats_kernel over E problems of T frames in one parallel region (see _schedule.h).

    Each element's sums are its own: the items of element e read its frames and add to its
    bins of Rnum, so every element gets the bits a call on it alone gives.
    """
    cdef Py_ssize_t E = n_elements, F = x.shape[1], J = P.shape[2], C = x.shape[2]
    cdef Py_ssize_t T, nt, _w, e, b, t0, t1, nblk, width, per_element
    cdef int flags = 0
    cdef double sqrt_eps = sqrt(eps)
    cdef schedule s
    cdef steer_t local
    cdef const steer_t* sp
    if E < 1 or E > MAX_RANGES or P.shape[0] % E != 0:
        return Status.BAD_SHAPE
    T = P.shape[0] // E
    if (x.shape[0] != E * T or P.shape[1] != F or Rnum.shape[0] != E * F
            or Rnum.shape[1] != J or Rnum.shape[2] != C or Rnum.shape[3] != C
            or weight.shape[0] != E * F or weight.shape[1] != J):
        return Status.BAD_SHAPE
    if mode == Estimate.MODEL:
        if (R.shape[0] != E * F or R.shape[1] != J or R.shape[2] != C
                or R.shape[3] != C):
            return Status.BAD_SHAPE
    elif mode == Estimate.SOFTMASK or mode == Estimate.PHASE:
        if (v.shape[0] != E * T or v.shape[1] != F or v.shape[3] != J
                or (v.shape[2] != 1 and v.shape[2] != C)):
            return Status.BAD_SHAPE
    elif mode == Estimate.GIVEN:
        if (y_in.shape[0] != E * T or y_in.shape[1] != F or y_in.shape[2] != C
                or y_in.shape[3] != J):
            return Status.BAD_SHAPE
    else:
        return Status.BAD_MODE
    if P.strides[2] != sizeof(floating) and P.strides[1] != sizeof(floating):
        return Status.BAD_SHAPE              # P must have contiguous sources or bins
    if work.shape[1] < work_size(C, J) or work.shape[0] < 1:
        return Status.SMALL_WORK
    if T == 0 or F == 0 or C == 0 or J == 0:
        return Status.OK
    block_frames = block_frames_for(T, F, C, J, block_frames)
    nblk = (T + block_frames - 1) // block_frames
    nt = pass_threads(E * T, F, n_threads, work.shape[0])
    if nt == 1:
        # block by block: a block's rows stay in the caches across its tiles
        for e in range(E):
            sp = steer_for(steer, &local, e * F)
            for b in range(nblk):
                t0 = e * T + b * block_frames
                t1 = e * T + T if b * block_frames + block_frames > T else t0 + block_frames
                flags |= 1 << _stats_chunk(
                    mode, 0, F, x[t0:t1], v[t0:t1], y_in[t0:t1], P[t0:t1],
                    R[e * F:e * F + F], scales[e], eps, sqrt_eps, logit, slope,
                    Rnum[e * F:e * F + F], weight[e * F:e * F + F], &work[0, 0], sp)
        note_pass(1, False)
        return worst_status(flags)
    # One region for the pass: every bin's frames are summed in order by whichever thread
    # holds its range for that block, so the sums do not depend on the thread count.
    width = range_bins(F, E, CHUNK_BINS)
    per_element = (F + width - 1) // width
    schedule_init(&s, nblk, E * per_element, max_lead)
    for _w in prange(nt, schedule="static", chunksize=1, num_threads=nt):
        flags |= _stats_worker(&s, block_frames, width, per_element, T, mode, x, v, y_in, P,
                               R, scales, eps, sqrt_eps, logit, slope, Rnum, weight,
                               &work[threadid(), 0], steer)
    note_pass(s.threads_used, True)
    schedule_free(&s)
    return worst_status(flags)


cdef int _stats_worker(
    schedule* s, Py_ssize_t block_frames, Py_ssize_t width, Py_ssize_t per_element,
    Py_ssize_t T, int mode,
    const complex_t[:, :, ::1] x, const floating[:, :, :, ::1] v,
    const complex_t[:, :, :, ::1] y_in, floating[:, :, :] P,
    const double[:, :, :, :, ::1] R, const double* scales,
    double eps, double sqrt_eps, double logit, double slope,
    double[:, :, :, :, ::1] Rnum, double[:, ::1] weight, double* work,
    const steer_t* steer,
) noexcept nogil:
    """One thread's share of a pass: items until none is left; returns 1 << status flags."""
    cdef Py_ssize_t k = 0, e = 0, t0, t1, f0, f1, F = x.shape[1]
    cdef int flags = 0
    cdef bint joined = False
    cdef steer_t local                       # steer with element e's bins of the sums
    while next_item(s, block_frames, width, per_element, T, F, &joined, &k, &e, &t0, &t1,
                    &f0, &f1):
        flags |= 1 << _stats_chunk(mode, f0, f1, x[t0:t1], v[t0:t1], y_in[t0:t1], P[t0:t1],
                                   R[e * F:e * F + F], scales[e], eps, sqrt_eps, logit, slope,
                                   Rnum[e * F:e * F + F], weight[e * F:e * F + F], work,
                                   steer_for(steer, &local, e * F))
        schedule_done(s, k)
    return flags


def accumulate(int mode, const complex_t[:, :, ::1] x not None,
               const floating[:, :, :, ::1] v not None,
               const complex_t[:, :, :, ::1] y_in not None,
               floating[:, :, :] P not None,
               const double[:, :, :, :, ::1] R not None,
               scale, double eps, double logit, double slope,
               double[:, :, :, :, ::1] Rnum not None, double[:, ::1] weight not None,
               double[:, ::1] work not None, int n_threads,
               Py_ssize_t block_frames=0, Py_ssize_t max_lead=0, double mu=1.0,
               double[:, ::1] monitor=None):
    """Python entry of stats_pass; returns its Status.

    scale: a float (one problem), or one per element of a batch of len(scale) problems.
    MODEL passes only: `mu` != 1 takes the SDW filter; `monitor` (3, bins of every
    element) doubles, when given, receives the per-bin sums of log det Cxx + x^H Cxx^-1 x,
    ||x - sum_j y_j||^2 and ||x||^2 over the frames (added to what it holds).
    """
    cdef int status
    cdef const double[::1] scales = np.ascontiguousarray(scale, dtype=np.float64).reshape(-1)
    cdef steer_t steer
    cdef const steer_t* sp
    if scales.shape[0] < 1:
        return Status.BAD_SHAPE
    sp = fill_steer(&steer, mu, monitor, P.shape[1] * scales.shape[0], &status)
    if status != Status.OK:
        return status
    with nogil:
        status = stats_pass(mode, x, v, y_in, P, R, &scales[0], scales.shape[0], eps, logit,
                            slope, Rnum, weight, work, n_threads, block_frames, max_lead, sp)
    return status


cdef int finalize_covariance_kernel(
    const double[:, :, :, :, ::1] Rnum,      # IN  (bins, J, C, C, 2)  upper triangle
    const double[:, ::1] weight,             # IN  (bins, J)
    double eps,
    double[:, :, :, :, ::1] R_out,           # OUT (bins, J, C, C, 2)  full Hermitian
) noexcept nogil:
    cdef Py_ssize_t f, j, c, d, C = Rnum.shape[2]
    cdef double w, re, im
    cdef int status = Status.OK
    if (R_out.shape[0] != Rnum.shape[0] or R_out.shape[1] != Rnum.shape[1]
            or R_out.shape[2] != C or R_out.shape[3] != C or weight.shape[0] != Rnum.shape[0]
            or weight.shape[1] != Rnum.shape[1]):
        return Status.BAD_SHAPE
    for f in range(Rnum.shape[0]):
        for j in range(Rnum.shape[1]):
            w = eps + weight[f, j]
            if not (w < INFINITY):
                status = Status.NOT_FINITE
            for c in range(C):
                for d in range(c, C):
                    # a source silent over the whole bin (and eps = 0) has R = 0, not 0/0
                    re = Rnum[f, j, c, d, 0] / w if w > 0.0 else 0.0
                    im = Rnum[f, j, c, d, 1] / w if w > 0.0 else 0.0
                    if re - re != 0.0 or im - im != 0.0:
                        status = Status.NOT_FINITE
                    R_out[f, j, c, d, 0] = re
                    R_out[f, j, c, d, 1] = im
                    R_out[f, j, d, c, 0] = re
                    R_out[f, j, d, c, 1] = -im
    return status


def finalize_covariance(const double[:, :, :, :, ::1] Rnum not None,
                        const double[:, ::1] weight not None, double eps,
                        double[:, :, :, :, ::1] R_out not None):
    """R = Rnum / (eps + weight), Hermitian; returns a Status."""
    cdef int status
    with nogil:
        status = finalize_covariance_kernel(Rnum, weight, eps, R_out)
    return status
