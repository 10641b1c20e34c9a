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

One and two channels filter point by point with the offline EM's own code (_filter.pxd's
model_point), and R is finalize_covariance's within an ulp, so forget = 1 and L >= T give
wiener(iterations=1). From three channels a thread runs its bins in tiles of TILE bins with
the bins in the innermost, vector loops (_online_tile.h: the same operations per lane as the
point code's LDL^H; the scalar code was 5 % of the hop per 6-channel frame).

Layout: one frame is (F, C) for x, (F, {1, C}, J) for v, (F, J) for P; the stream's state is
Rnum (F, J, C, C, 2) and weight (F, J) in double (float32 sums over 10^4 frames lose 3-4
digits, and with forget close to 1 the sums are that long), and a ring of L + 1 frames of x
and P: frame t lives in slot t % (L + 1) until it is filtered. OnlineWiener keeps the sums of
3+ channels tile by tile instead, as the tile kernels read them (private process_tiled and
filter_tiled): the C API's layout costs a copy of each tile's sums in and out per call.

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
# the tile kernels use _linalg's pivot guard, which is C: its code must come before theirs
from norbert._core._linalg cimport PIVOT_TOL  # no-cython-lint (used by the header)
from norbert._core._mask cimport phase_point
from norbert._core._stats cimport point_stats

cdef extern from "_online_isa.h" nogil:
    const Py_ssize_t TILE "NORBERT_ONLINE_TILE"
    ctypedef struct tile_t "norbert_online_tile":
        double* X
        double* V
        double* Y
        double* P
        double* W
        double* Rs
        double* F
        double* Xf
        double* Pf
        double* den
        double* M
    Py_ssize_t tile_rows "norbert_online_tile_rows"(Py_ssize_t C, Py_ssize_t Cv, Py_ssize_t J,
                                                    Py_ssize_t* rows)
    void tile_at "norbert_online_tile_at"(Py_ssize_t C, Py_ssize_t Cv, Py_ssize_t J,
                                          double* base, tile_t* t)
    # the tile kernels of one instruction set (see _online_tile.h)
    ctypedef struct online_ops_t "norbert_online_ops":
        const char* isa
        void (*softmask)(Py_ssize_t C, Py_ssize_t Cv, Py_ssize_t J, const double* X,
                         const double* V, double eps, double* den, double* M,
                         double* Y) noexcept nogil
        void (*stats)(Py_ssize_t C, Py_ssize_t J, const double* Y, double forget, double* P,
                      double* W, double* Rs) noexcept nogil
        int (*filter)(Py_ssize_t C, Py_ssize_t J, const double* X, const double* P,
                      const double* Rs, const double* W, double eps, double sqrt_eps,
                      double* work, double* Y) noexcept nogil
    const online_ops_t* online_pick "norbert_online_pick"()
    void prefetch "norbert_online_prefetch"(const void* p, Py_ssize_t nbytes)

# the best instruction set the CPU has (or the one NORBERT_ISA caps it to), picked once
cdef const online_ops_t* _ops = online_pick()

# From this many channels a thread runs the bins of a range tile by tile (_online_tile.h);
# one and two channels have closed-form solves, as cheap per point as a tile's lane.
cdef Py_ssize_t TILE_CHANNELS = 3

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


cdef int _check_values(const complex_t* x, Py_ssize_t nx, const floating* v,
                       Py_ssize_t nv) noexcept nogil:
    """NaN, inf or negative v anywhere in a block, found before the state is touched."""
    cdef Py_ssize_t k
    cdef double re, im, vk
    for k in range(nx):
        re = x[k].real
        im = x[k].imag
        if re - re != 0.0 or im - im != 0.0:
            return Status.NOT_FINITE
    for k in range(nv):
        vk = v[k]
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


cdef Py_ssize_t online_work_size(Py_ssize_t C, Py_ssize_t J) noexcept nogil:
    """Doubles of per-thread scratch the online kernels need for C channels and J sources.

    Not inline, as _common.work_size: an extension built against an older norbert asks the
    installed one, so a changed scratch layout cannot turn into SMALL_WORK.
    """
    # per point: R of one bin (J C C 2), y (C J 2), the solve's matrix and right-hand side
    cdef Py_ssize_t point = 2 * J * C * C + 2 * C * J + 2 * C * C + 2 * C + 8
    if C < TILE_CHANNELS:
        return point
    # a tile, sized for spectrograms with a channel axis (Cv = C)
    return tile_rows(C, C, J, NULL) * TILE + 8


# bins per tile, for tests that size problems past it
TILE_BINS = TILE


def isa():
    """The instruction set of the tile kernels this process runs ("base", "avx2", "avx512")."""
    return _ops.isa.decode()


cdef inline void _rows_in_x(const complex_t* x, Py_ssize_t n, Py_ssize_t C, double scale,
                            double* X) noexcept nogil:
    """n bins of x (bins, C) into rows (C, 2) of a tile, times scale; lanes past n zeroed."""
    cdef Py_ssize_t c, i
    for c in range(C):
        for i in range(n):
            X[2 * c * TILE + i] = x[i * C + c].real * scale
            X[(2 * c + 1) * TILE + i] = x[i * C + c].imag * scale
        for i in range(n, TILE):
            X[2 * c * TILE + i] = 0.0
            X[(2 * c + 1) * TILE + i] = 0.0


cdef inline void _rows_in(const floating* a, Py_ssize_t n, Py_ssize_t K,
                          double* D) noexcept nogil:
    """n bins of a (bins, K) into rows (K,) of a tile; lanes past n zeroed."""
    cdef Py_ssize_t k, i
    for k in range(K):
        for i in range(n):
            D[k * TILE + i] = a[i * K + k]
        for i in range(n, TILE):
            D[k * TILE + i] = 0.0


cdef inline void _rows_out(const double* D, Py_ssize_t n, Py_ssize_t K,
                           floating* a) noexcept nogil:
    """Rows (K,) of a tile out to n bins of a (bins, K), in a's precision."""
    cdef Py_ssize_t k, i
    for i in range(n):
        for k in range(K):
            a[i * K + k] = <floating>D[k * TILE + i]


cdef inline void _state_in(const double* Rn, const double* wf, Py_ssize_t n, Py_ssize_t C,
                           Py_ssize_t J, double* Rs, double* W) noexcept nogil:
    """The sums of n bins (Rnum's upper triangles, weight) into a tile; lanes past n zeroed."""
    cdef Py_ssize_t i, j, c, d, k, r, NP = C * (C + 1) // 2
    cdef const double* Rf
    for i in range(TILE):
        if i < n:
            Rf = Rn + i * J * C * C * 2
            for j in range(J):
                W[j * TILE + i] = wf[i * J + j]
                k = 0
                for c in range(C):
                    for d in range(c, C):
                        r = (j * NP + k) * 2
                        Rs[r * TILE + i] = Rf[((j * C + c) * C + d) * 2]
                        Rs[(r + 1) * TILE + i] = Rf[((j * C + c) * C + d) * 2 + 1]
                        k = k + 1
        else:
            for j in range(J):
                W[j * TILE + i] = 0.0
            for r in range(2 * J * NP):
                Rs[r * TILE + i] = 0.0


cdef inline void _state_out(const double* Rs, const double* W, Py_ssize_t n, Py_ssize_t C,
                            Py_ssize_t J, double* Rn, double* wf) noexcept nogil:
    """A tile's sums back to n bins of Rnum (upper triangles) and weight."""
    cdef Py_ssize_t i, j, c, d, k, r, NP = C * (C + 1) // 2
    cdef double* Rf
    for i in range(n):
        Rf = Rn + i * J * C * C * 2
        for j in range(J):
            wf[i * J + j] = W[j * TILE + i]
            k = 0
            for c in range(C):
                for d in range(c, C):
                    r = (j * NP + k) * 2
                    Rf[((j * C + c) * C + d) * 2] = Rs[r * TILE + i]
                    Rf[((j * C + c) * C + d) * 2 + 1] = Rs[(r + 1) * TILE + i]
                    k = k + 1


cdef inline void _rows_out_y(const double* Y, Py_ssize_t n, Py_ssize_t C, Py_ssize_t J,
                             double out_scale, complex_t* y) noexcept nogil:
    """A tile's images (C, J, 2) out to n bins of y (bins, C, J), times out_scale."""
    cdef Py_ssize_t i, k
    for i in range(n):
        for k in range(C * J):
            y[i * C * J + k].real = Y[2 * k * TILE + i] * out_scale
            y[i * C * J + k].imag = Y[(2 * k + 1) * TILE + i] * out_scale


cdef inline void _estimate_tile(
    int mode, Py_ssize_t n, Py_ssize_t C, Py_ssize_t Cv, Py_ssize_t J,
    const complex_t* x, const floating* v, double scale, double eps, tile_t* s,
) noexcept nogil:
    """The initial estimate of n bins of a frame into s.Y, with x * scale in s.X.

    The inputs were checked (_check_values): no status comes out.
    """
    cdef Py_ssize_t i, k
    _rows_in_x(x, n, C, scale, s.X)
    if mode == Estimate.SOFTMASK:
        _rows_in(v, n, Cv * J, s.V)
        _ops.softmask(C, Cv, J, s.X, s.V, eps, s.den, s.M, s.Y)
        return
    # the phase estimate needs hypot (no vector form): per bin, through s.F as scratch
    for i in range(TILE):
        if i < n:
            phase_point(C, Cv, J, v + i * Cv * J, x + i * C, scale, s.F)
            for k in range(2 * C * J):
                s.Y[k * TILE + i] = s.F[k]
        else:
            for k in range(2 * C * J):
                s.Y[k * TILE + i] = 0.0


cdef int _process_tiles(
    Py_ssize_t f0, Py_ssize_t f1, int mode,
    const complex_t[:, :, ::1] x, const floating[:, :, :, ::1] v,
    double scale, double eps, double sqrt_eps, double forget, double out_scale,
    Py_ssize_t frames_in, Py_ssize_t frames_out,
    complex_t[:, :, ::1] x_ring, floating[:, :, ::1] P_ring,
    double* Rn, double* wf,                  # the sums as Rnum (F, J, C, C, 2), weight (F, J)
    double* Rt, double* Wt,                  # or tile by tile (NULL: Rn, wf), f0 % TILE = 0
    complex_t[:, :, :, ::1] y_out, double* work,
) noexcept nogil:
    """_process_bins tile by tile: a tile's sums stay in its scratch for the whole block.

    Sums laid out tile by tile (Rt (tiles, J, NP, 2, TILE), Wt (tiles, J, TILE), as the
    tile kernels read them) are used in place; otherwise they are copied in and out.
    """
    cdef Py_ssize_t C = x.shape[2], Cv = v.shape[2], J = v.shape[3], NP = C * (C + 1) // 2
    cdef Py_ssize_t L1 = x_ring.shape[0], i, g0, n, c, t, s, slot, out_slot
    cdef double* Rs
    cdef double* W
    cdef tile_t a
    cdef int bits = 0
    tile_at(C, Cv, J, work, &a)
    g0 = f0
    while g0 < f1:
        n = f1 - g0 if f1 - g0 < TILE else TILE
        if Rt != NULL:
            Rs = Rt + (g0 // TILE) * 2 * J * NP * TILE
            W = Wt + (g0 // TILE) * J * TILE
        else:
            Rs = a.Rs
            W = a.W
            _state_in(Rn + g0 * J * C * C * 2, wf + g0 * J, n, C, J, Rs, W)
        for i in range(x.shape[0]):
            t = frames_in + i
            slot = t % L1
            s = t - (L1 - 1)             # the frame that frame t completes
            out_slot = s % L1 if s >= 0 else 0
            _estimate_tile(mode, n, C, Cv, J, &x[i, g0, 0], &v[i, g0, 0, 0], scale, eps, &a)
            _ops.stats(C, J, a.Y, forget, a.P, W, Rs)
            _rows_out(a.P, n, J, &P_ring[slot, g0, 0])
            for c in range(n * C):
                (&x_ring[slot, g0, 0])[c] = (&x[i, g0, 0])[c]
            if s >= frames_out:
                _rows_in_x(&x_ring[out_slot, g0, 0], n, C, scale, a.Xf)
                _rows_in(&P_ring[out_slot, g0, 0], n, J, a.Pf)
                if L1 > 1 and g0 + n < f1:
                    prefetch(&x_ring[out_slot, g0 + n, 0], TILE * C * sizeof(complex_t))
                    prefetch(&P_ring[out_slot, g0 + n, 0], TILE * J * sizeof(floating))
                if _ops.filter(C, J, a.Xf, a.Pf, Rs, W, eps, sqrt_eps, a.F, a.Y):
                    bits |= 1 << Status.NOT_FINITE
                _rows_out_y(a.Y, n, C, J, out_scale, &y_out[s - frames_out, g0, 0, 0])
        if Rt == NULL:
            _state_out(Rs, W, n, C, J, Rn + g0 * J * C * C * 2, wf + g0 * J)
        g0 += TILE
    return bits


cdef int _accumulate_tiles(
    Py_ssize_t f0, Py_ssize_t f1, int mode,
    const complex_t[:, ::1] x, const floating[:, :, ::1] v,
    double scale, double eps, double forget,
    floating[:, ::1] P_out, double[:, :, :, :, ::1] Rnum, double[:, ::1] weight, double* work,
) noexcept nogil:
    """_accumulate_bins tile by tile."""
    cdef Py_ssize_t C = x.shape[1], Cv = v.shape[1], J = Rnum.shape[1], g0, n
    cdef tile_t a
    tile_at(C, Cv, J, work, &a)
    g0 = f0
    while g0 < f1:
        n = f1 - g0 if f1 - g0 < TILE else TILE
        _state_in(&Rnum[g0, 0, 0, 0, 0], &weight[g0, 0], n, C, J, a.Rs, a.W)
        _estimate_tile(mode, n, C, Cv, J, &x[g0, 0], &v[g0, 0, 0], scale, eps, &a)
        _ops.stats(C, J, a.Y, forget, a.P, a.W, a.Rs)
        _rows_out(a.P, n, J, &P_out[g0, 0])
        _state_out(a.Rs, a.W, n, C, J, &Rnum[g0, 0, 0, 0, 0], &weight[g0, 0])
        g0 += TILE
    return 0


cdef int _filter_tiles(
    Py_ssize_t f0, Py_ssize_t f1,
    const complex_t[:, ::1] x, const floating[:, ::1] P,
    const double* Rn, const double* wf,      # as _process_tiles
    const double* Rt, const double* Wt,
    double scale, double eps, double sqrt_eps, double out_scale,
    complex_t[:, :, ::1] y_out, double* work,
) noexcept nogil:
    """_filter_bins tile by tile; returns status bits."""
    cdef Py_ssize_t C = x.shape[1], J = P.shape[1], NP = C * (C + 1) // 2, g0, n
    cdef const double* Rs
    cdef const double* W
    cdef tile_t a
    cdef int bits = 0
    tile_at(C, 1, J, work, &a)
    g0 = f0
    while g0 < f1:
        n = f1 - g0 if f1 - g0 < TILE else TILE
        if Rt != NULL:
            Rs = Rt + (g0 // TILE) * 2 * J * NP * TILE
            W = Wt + (g0 // TILE) * J * TILE
        else:
            _state_in(Rn + g0 * J * C * C * 2, wf + g0 * J, n, C, J, a.Rs, a.W)
            Rs = a.Rs
            W = a.W
        _rows_in_x(&x[g0, 0], n, C, scale, a.Xf)
        _rows_in(&P[g0, 0], n, J, a.Pf)
        if _ops.filter(C, J, a.Xf, a.Pf, Rs, W, eps, sqrt_eps, a.F, a.Y):
            bits |= 1 << Status.NOT_FINITE
        _rows_out_y(a.Y, n, C, J, out_scale, &y_out[g0, 0, 0])
        g0 += TILE
    return bits


cdef int _process_range(
    Py_ssize_t f0, Py_ssize_t f1, int mode,
    const complex_t[:, :, ::1] x, const floating[:, :, :, ::1] v,
    double scale, double eps, double sqrt_eps, double forget, double out_scale,
    Py_ssize_t frames_in, Py_ssize_t frames_out,
    complex_t[:, :, ::1] x_ring, floating[:, :, ::1] P_ring,
    double[:, :, :, :, ::1] Rnum, double[:, ::1] weight,
    complex_t[:, :, :, ::1] y_out, double* work,
) noexcept nogil:
    """Bins f0 .. f1 of a block: point by point for one or two channels, else tile by tile."""
    if x.shape[2] >= TILE_CHANNELS:
        return _process_tiles(f0, f1, mode, x, v, scale, eps, sqrt_eps, forget, out_scale,
                              frames_in, frames_out, x_ring, P_ring, &Rnum[0, 0, 0, 0, 0],
                              &weight[0, 0], NULL, NULL, y_out, work)
    return _process_bins(f0, f1, mode, x, v, scale, eps, sqrt_eps, forget, out_scale,
                         frames_in, frames_out, x_ring, P_ring, Rnum, weight, y_out, work)


cdef int _accumulate_range(
    Py_ssize_t f0, Py_ssize_t f1, int mode,
    const complex_t[:, ::1] x, const floating[:, :, ::1] v,
    double scale, double eps, double sqrt_eps, double forget,
    floating[:, ::1] P_out, double[:, :, :, :, ::1] Rnum, double[:, ::1] weight, double* work,
) noexcept nogil:
    if x.shape[1] >= TILE_CHANNELS:
        return _accumulate_tiles(f0, f1, mode, x, v, scale, eps, forget, P_out, Rnum, weight,
                                 work)
    return _accumulate_bins(f0, f1, mode, x, v, scale, eps, sqrt_eps, forget, P_out, Rnum,
                            weight, work)


cdef int _filter_range(
    Py_ssize_t f0, Py_ssize_t f1,
    const complex_t[:, ::1] x, const floating[:, ::1] P,
    const double[:, :, :, :, ::1] Rnum, const double[:, ::1] weight,
    double scale, double eps, double sqrt_eps, double out_scale,
    complex_t[:, :, ::1] y_out, double* work,
) noexcept nogil:
    if x.shape[1] >= TILE_CHANNELS:
        return _filter_tiles(f0, f1, x, P, &Rnum[0, 0, 0, 0, 0], &weight[0, 0], NULL, NULL,
                             scale, eps, sqrt_eps, out_scale, y_out, work)
    return _filter_bins(f0, f1, x, P, Rnum, weight, scale, eps, sqrt_eps, out_scale, y_out,
                        work)


cdef int _check_block(
    int mode, const complex_t[:, :, ::1] x, const floating[:, :, :, ::1] v, Py_ssize_t J,
    Py_ssize_t frames_in, Py_ssize_t frames_out,
    complex_t[:, :, ::1] x_ring, floating[:, :, ::1] P_ring,
    complex_t[:, :, :, ::1] y_out, double[:, ::1] work,
) noexcept nogil:
    """A block's shapes, scratch and values, all checked before the state changes."""
    cdef Py_ssize_t n = x.shape[0], F = x.shape[1], C = x.shape[2]
    cdef Py_ssize_t L = x_ring.shape[0] - 1, m
    if mode != Estimate.SOFTMASK and mode != Estimate.PHASE:
        return Status.BAD_MODE
    m = frames_in + n - L - frames_out
    if m < 0:
        m = 0
    if (L < 0 or v.shape[0] != n or v.shape[1] != F or v.shape[3] != J
            or (v.shape[2] != 1 and v.shape[2] != C)
            or x_ring.shape[1] != F or x_ring.shape[2] != C
            or P_ring.shape[0] != L + 1 or P_ring.shape[1] != F or P_ring.shape[2] != J
            or y_out.shape[0] != m or y_out.shape[1] != F or y_out.shape[2] != C
            or y_out.shape[3] != J
            or frames_out > frames_in or frames_in - frames_out > L or frames_out < 0):
        return Status.BAD_SHAPE
    if work.shape[0] < 1 or work.shape[1] < online_work_size(C, J):
        return Status.SMALL_WORK
    # a refused block leaves the stream as it was
    if n == 0 or F == 0:
        return Status.OK
    return _check_values(&x[0, 0, 0], n * F * C, &v[0, 0, 0, 0], n * F * v.shape[2] * J)


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
    cdef Py_ssize_t k, f0, f1
    cdef int nt, flags = 0, st
    cdef double sqrt_eps = sqrt(eps)
    if (Rnum.shape[0] != F or Rnum.shape[2] != C or Rnum.shape[3] != C
            or weight.shape[0] != F or weight.shape[1] != J):
        return Status.BAD_SHAPE
    st = _check_block(mode, x, v, J, frames_in, frames_out, x_ring, P_ring, y_out, work)
    if st != Status.OK or n == 0 or F == 0:
        return st
    nt = _threads(n * F, F, C, J, n_threads, work.shape[0])
    if nt == 1:
        flags = _process_range(0, F, mode, x, v, scale, eps, sqrt_eps, forget, out_scale,
                               frames_in, frames_out, x_ring, P_ring, Rnum, weight, y_out,
                               &work[0, 0])
    else:
        for k in prange(nt, schedule="static", chunksize=1, num_threads=nt):
            f0 = k * F // nt
            f1 = (k + 1) * F // nt
            flags |= _process_range(f0, f1, mode, x, v, scale, eps, sqrt_eps, forget,
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
    cdef int nt, flags = 0, st
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
    # as online_process_kernel: a refused frame leaves the sums as they were
    st = _check_values(&x[0, 0], F * C, &v[0, 0, 0], F * Cv * J)
    if st != Status.OK:
        return st
    nt = _threads(F, F, C, J, n_threads, work.shape[0])
    if nt == 1:
        flags = _accumulate_range(0, F, mode, x, v, scale, eps, sqrt_eps, forget, P_out, Rnum,
                                  weight, &work[0, 0])
    else:
        for k in prange(nt, schedule="static", chunksize=1, num_threads=nt):
            f0 = k * F // nt
            f1 = (k + 1) * F // nt
            flags |= _accumulate_range(f0, f1, mode, x, v, scale, eps, sqrt_eps, forget,
                                       P_out, Rnum, weight, &work[threadid(), 0])
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
        flags = _filter_range(0, F, x, P, Rnum, weight, scale, eps, sqrt_eps, out_scale, y_out,
                              &work[0, 0])
    else:
        for k in prange(nt, schedule="static", chunksize=1, num_threads=nt):
            f0 = k * F // nt
            f1 = (k + 1) * F // nt
            flags |= _filter_range(f0, f1, x, P, Rnum, weight, scale, eps, sqrt_eps,
                                   out_scale, y_out, &work[threadid(), 0])
    return worst_status(flags)


cdef int _process_tiled_kernel(
    int mode,
    const complex_t[:, :, ::1] x,            # IN    (n, F, C)      as online_process_kernel
    const floating[:, :, :, ::1] v,          # IN    (n, F, {1, C}, J)
    double scale, double eps, double forget, double out_scale,
    Py_ssize_t frames_in, Py_ssize_t frames_out,
    complex_t[:, :, ::1] x_ring,             # INOUT (L + 1, F, C)
    floating[:, :, ::1] P_ring,              # INOUT (L + 1, F, J)
    double[:, :, :, :, ::1] Rt,              # INOUT (tiles, J, NP, 2, TILE)  the sums, by tile
    double[:, :, ::1] Wt,                    # INOUT (tiles, J, TILE)
    complex_t[:, :, :, ::1] y_out,           # OUT   (m, F, C, J)
    double[:, ::1] work,
    int n_threads,
) noexcept nogil:
    """online_process_kernel on sums laid out as the tile kernels read them (3+ channels).

    OnlineWiener's own layout: Rnum's layout costs a copy of every tile's sums in and out
    per call, a third of a frame's time at 6 channels. Threads own whole tiles.
    """
    cdef Py_ssize_t n = x.shape[0], F = x.shape[1], C = x.shape[2], J = v.shape[3]
    cdef Py_ssize_t tiles = (F + TILE - 1) // TILE, k, f0, f1
    cdef int nt, flags = 0, st
    cdef double sqrt_eps = sqrt(eps)
    if (C < TILE_CHANNELS or Rt.shape[0] != tiles or Rt.shape[1] != J
            or Rt.shape[2] != C * (C + 1) // 2 or Rt.shape[3] != 2 or Rt.shape[4] != TILE
            or Wt.shape[0] != tiles or Wt.shape[1] != J or Wt.shape[2] != TILE):
        return Status.BAD_SHAPE
    st = _check_block(mode, x, v, J, frames_in, frames_out, x_ring, P_ring, y_out, work)
    if st != Status.OK or n == 0 or F == 0:
        return st
    nt = _threads(n * F, F, C, J, n_threads, work.shape[0])
    if nt == 1:
        flags = _process_tiles(0, F, mode, x, v, scale, eps, sqrt_eps, forget, out_scale,
                               frames_in, frames_out, x_ring, P_ring, NULL, NULL,
                               &Rt[0, 0, 0, 0, 0], &Wt[0, 0, 0], y_out, &work[0, 0])
    else:
        for k in prange(nt, schedule="static", chunksize=1, num_threads=nt):
            f0 = k * tiles // nt * TILE
            f1 = (k + 1) * tiles // nt * TILE
            flags |= _process_tiles(f0, f1 if f1 < F else F, mode, x, v, scale, eps, sqrt_eps,
                                    forget, out_scale, frames_in, frames_out, x_ring, P_ring,
                                    NULL, NULL, &Rt[0, 0, 0, 0, 0], &Wt[0, 0, 0], y_out,
                                    &work[threadid(), 0])
    note_pass(nt, nt > 1)
    return worst_status(flags)


cdef int _filter_tiled_kernel(
    const complex_t[:, ::1] x,               # IN  (F, C)   as online_filter_kernel
    const floating[:, ::1] P,                # IN  (F, J)
    const double[:, :, :, :, ::1] Rt,        # IN  (tiles, J, NP, 2, TILE)
    const double[:, :, ::1] Wt,              # IN  (tiles, J, TILE)
    double scale, double eps, double out_scale,
    complex_t[:, :, ::1] y_out,              # OUT (F, C, J)
    double[:, ::1] work,
    int n_threads,
) noexcept nogil:
    """online_filter_kernel on sums laid out tile by tile (see _process_tiled_kernel)."""
    cdef Py_ssize_t F = x.shape[0], C = x.shape[1], J = P.shape[1]
    cdef Py_ssize_t tiles = (F + TILE - 1) // TILE, k, f0, f1
    cdef double sqrt_eps = sqrt(eps)
    cdef int nt, flags = 0
    if (C < TILE_CHANNELS or P.shape[0] != F or Rt.shape[0] != tiles or Rt.shape[1] != J
            or Rt.shape[2] != C * (C + 1) // 2 or Rt.shape[3] != 2 or Rt.shape[4] != TILE
            or Wt.shape[0] != tiles or Wt.shape[1] != J or Wt.shape[2] != TILE
            or y_out.shape[0] != F or y_out.shape[1] != C or y_out.shape[2] != J):
        return Status.BAD_SHAPE
    if work.shape[0] < 1 or work.shape[1] < online_work_size(C, J):
        return Status.SMALL_WORK
    if F == 0:
        return Status.OK
    nt = _threads(F, F, C, J, n_threads, work.shape[0])
    if nt == 1:
        flags = _filter_tiles(0, F, x, P, NULL, NULL, &Rt[0, 0, 0, 0, 0], &Wt[0, 0, 0], scale,
                              eps, sqrt_eps, out_scale, y_out, &work[0, 0])
    else:
        for k in prange(nt, schedule="static", chunksize=1, num_threads=nt):
            f0 = k * tiles // nt * TILE
            f1 = (k + 1) * tiles // nt * TILE
            flags |= _filter_tiles(f0, f1 if f1 < F else F, x, P, NULL, NULL,
                                   &Rt[0, 0, 0, 0, 0], &Wt[0, 0, 0], scale, eps, sqrt_eps,
                                   out_scale, y_out, &work[threadid(), 0])
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


def process_tiled(int mode, const complex_t[:, :, ::1] x not None,
                  const floating[:, :, :, ::1] v not None,
                  double scale, double eps, double forget, double out_scale,
                  Py_ssize_t frames_in, Py_ssize_t frames_out,
                  complex_t[:, :, ::1] x_ring not None, floating[:, :, ::1] P_ring not None,
                  double[:, :, :, :, ::1] Rnum not None, double[:, :, ::1] weight not None,
                  complex_t[:, :, :, ::1] y_out not None, double[:, ::1] work not None,
                  int n_threads):
    """process with the sums laid out tile by tile (tiled_state gives their shapes)."""
    cdef int status
    with nogil:
        status = _process_tiled_kernel(mode, x, v, scale, eps, forget, out_scale, frames_in,
                                       frames_out, x_ring, P_ring, Rnum, weight, y_out, work,
                                       n_threads)
    return status


def filter_tiled(const complex_t[:, ::1] x not None, const floating[:, ::1] P not None,
                 const double[:, :, :, :, ::1] Rnum not None,
                 const double[:, :, ::1] weight not None,
                 double scale, double eps, double out_scale,
                 complex_t[:, :, ::1] y_out not None, double[:, ::1] work not None,
                 int n_threads):
    """filter_frame with the sums laid out tile by tile."""
    cdef int status
    with nogil:
        status = _filter_tiled_kernel(x, P, Rnum, weight, scale, eps, out_scale, y_out, work,
                                      n_threads)
    return status


def tiled_state(Py_ssize_t nb_bins, Py_ssize_t nb_channels, Py_ssize_t nb_sources):
    """Shapes of the tile-by-tile sums (Rnum, weight) of a stream, or None below 3 channels."""
    cdef Py_ssize_t tiles = (nb_bins + TILE - 1) // TILE
    if nb_channels < TILE_CHANNELS:
        return None
    return ((tiles, nb_sources, nb_channels * (nb_channels + 1) // 2, 2, TILE),
            (tiles, nb_sources, TILE))
