# The steering options of the EM's filter (issue 18), one TF point at a time: the
# speech-distortion-weighted filter (mu != 1) and the per-bin sums behind the log-likelihood
# and the mixture consistency that a callback watches. Private: not part of the public API.
#
# The passes hand these functions the scratch that model_point (_filter.pxd) just used, so
# the log-likelihood of the mu = 1 filter costs no second solve: for C >= 3 the LDL^H
# pivots are still on the diagonal of its scratch, for C <= 2 the closed form's pivots are
# recomputed from the O(J) sums. Sums over frames go into one double per bin, in frame
# order (a bin range belongs to one thread at a time, _schedule.h), so they do not depend
# on the thread count; the facade adds the bins in order.

from cython cimport floating
from libc.math cimport log

from norbert._core._common cimport complex_t, Status
from norbert._core._filter cimport cxx_2x2, estimate_point
from norbert._core._linalg cimport (
    PIVOT_TOL, solve_hermitian_1x1, solve_hermitian_2x2, solve_hermitian_ldl, source_image,
)


# What a MODEL pass does beyond today's filter. A pass given NULL runs today's code.
ctypedef struct steer_t:
    double mu                 # 1: the Wiener filter; else the SDW filter (sdw_point)
    double* loglik            # (bins,) += log det Cxx + x^H Cxx^-1 x over frames, or NULL
    double* residual          # (bins,) += ||x - sum_j y_j||^2 over frames (with loglik)
    double* energy            # (bins,) += ||x||^2 over frames (with loglik)


cdef inline bint steer_weighted(const steer_t* s) noexcept nogil:
    """Whether a MODEL pass must take the per-source solves of the SDW filter."""
    return s != NULL and s.mu != 1.0


cdef inline bint steer_watched(const steer_t* s) noexcept nogil:
    """Whether a MODEL pass adds to the monitor sums."""
    return s != NULL and s.loglik != NULL


cdef inline const steer_t* steer_for(const steer_t* s, steer_t* local,
                                     Py_ssize_t offset) noexcept nogil:
    """s with its per-bin sums moved on to the bins from `offset` (an element of a batch:
    element e's bins are e * F ..); `local` holds the copy when one is needed."""
    if not steer_watched(s) or offset == 0:
        return s
    local[0] = s[0]
    local.loglik = s.loglik + offset
    local.residual = s.residual + offset
    local.energy = s.energy + offset
    return local


cdef inline const steer_t* fill_steer(steer_t* s, double mu, double[:, ::1] monitor,
                                      Py_ssize_t F, int* status):
    """s from a def wrapper's `mu` and `monitor` ((3, F) doubles or None), and the pointer
    its pass takes: s, or NULL when nothing goes beyond today's filter (mu = 1, no
    monitor). *status: a Status."""
    s.mu = mu
    s.loglik = NULL
    s.residual = NULL
    s.energy = NULL
    status[0] = Status.OK
    if monitor is not None:
        if monitor.shape[0] != 3 or monitor.shape[1] != F:
            status[0] = Status.BAD_SHAPE
            return NULL
        if F > 0:
            s.loglik = &monitor[0, 0]
            s.residual = &monitor[1, 0]
            s.energy = &monitor[2, 0]
    return s if steer_weighted(s) or steer_watched(s) else NULL


cdef inline int sdw_point(
    Py_ssize_t C, Py_ssize_t J,
    const floating* P,          # (J,)   PSDs v_j at this TF point
    const double* R,            # (J, C, C, 2) spatial covariances of this bin
    const complex_t* x,         # (C,)
    double scale, double sqrt_eps, double eps, double mu,
    double* y,                  # OUT (C, J, 2)
    double* work,               # scratch, >= 2*C*C + 2*C doubles (as model_point)
) noexcept nogil:
    """y_j = v_j R_j (v_j R_j + mu sum_{k != j} v_k R_k + reg I)^-1 x, one solve per source.

    reg = sqrt(eps), plus eps with one channel, as the mu = 1 filter. The other sources are
    summed apart and then weighted (not mu Cxx + (1 - mu) v_j R_j, which cancels digits
    where source j dominates and mu is large).
    """
    cdef Py_ssize_t c, d, j, k, CC2 = 2 * C * C, e
    cdef double orr, oi, reg = sqrt_eps + (eps if C == 1 else 0.0)
    cdef double* A = work
    cdef double* z = work + CC2
    cdef int st
    for j in range(J):
        # lower triangle of the weighted matrix
        for c in range(C):
            for d in range(c + 1):
                e = (c * C + d) * 2
                orr = 0.0
                oi = 0.0
                for k in range(J):
                    if k != j:
                        orr = orr + P[k] * R[CC2 * k + e]
                        oi = oi + P[k] * R[CC2 * k + e + 1]
                A[e] = P[j] * R[CC2 * j + e] + mu * orr + (reg if c == d else 0.0)
                A[e + 1] = P[j] * R[CC2 * j + e + 1] + mu * oi
            z[2 * c] = x[c].real * scale
            z[2 * c + 1] = x[c].imag * scale
        if C == 1:
            st = solve_hermitian_1x1(A[0], z[0], z[1], z)
        elif C == 2:
            # the upper off-diagonal entry is the conjugate of the lower one
            st = solve_hermitian_2x2(A[0], A[6], A[4], -A[5], z[0], z[1], z[2], z[3], z)
        else:
            st = solve_hermitian_ldl(C, A, z)
        if st < 0:
            return Status.NOT_FINITE
        for c in range(2 * C):
            if z[c] - z[c] != 0.0:
                return Status.NOT_FINITE
        source_image(C, J, j, P[j], R + CC2 * j, z, y)
    return Status.OK


cdef inline int steered_point(
    bint weighted, const steer_t* steer, int mode, Py_ssize_t C, Py_ssize_t Cv,
    Py_ssize_t J, const complex_t* x, const floating* v, const complex_t* y_in,
    const floating* P, const double* R, double scale, double eps, double sqrt_eps,
    double logit, double slope, double* y, double* work,
) noexcept nogil:
    """The estimate of one TF point (estimate_point), or, when `weighted` (a MODEL pass
    with mu != 1), the SDW filter's: the one dispatch of the statistics and filter passes."""
    if weighted:
        return sdw_point(C, J, P, R, x, scale, sqrt_eps, eps, steer.mu, y, work)
    return estimate_point(mode, C, Cv, J, x, v, y_in, P, R, scale, eps, sqrt_eps, logit, slope,
                          y, work)


cdef inline double _logdet_2x2(double a, double d, double br, double bi) noexcept nogil:
    """log of the product of the guarded 2x2 LDL^H pivots (as _linalg.pxd's ldl_2x2)."""
    cdef double mx = a if a > d else d, tol, d2
    if not (mx > 0.0):
        return 0.0              # Cxx = 0 (eps = 0, every source silent): the solve gives z = 0
    tol = PIVOT_TOL * mx
    a = tol if a < tol else a
    d2 = d - (br * br + bi * bi) / a
    d2 = tol if d2 < tol else d2
    # one log of the product: the pivots are >= 1e-13 max(a, d), far from under/overflow
    return log(a * d2)


cdef inline double cxx_loglik_terms(
    Py_ssize_t C, Py_ssize_t J, const floating* P, const double* R, const complex_t* x,
    double scale, double sqrt_eps, double eps, const double* work,
) noexcept nogil:
    """log det Cxx + Re(x^H z) at a point whose Cxx z = x model_point (or cxx_solve) solved.

    Reads z and, for C >= 3, the LDL^H pivots from that call's scratch `work`.
    """
    cdef Py_ssize_t c, j, CC2 = 2 * C * C
    cdef const double* z = work + CC2
    cdef double q = 0.0, ld = 0.0, a, dd, br, bi, p
    for c in range(C):
        q = q + x[c].real * scale * z[2 * c] + x[c].imag * scale * z[2 * c + 1]
    if C == 1:
        a = sqrt_eps + eps
        for j in range(J):
            a = a + P[j] * R[2 * j]
        ld = log(a) if a > 0.0 else 0.0
    elif C == 2:
        cxx_2x2(J, P, R, sqrt_eps, &a, &dd, &br, &bi)
        ld = _logdet_2x2(a, dd, br, bi)
    else:
        for c in range(C):
            p = work[(c * C + c) * 2]
            if not (p > 0.0):
                return 0.0 + q  # Cxx = 0: the solver left A as it was and z = 0
            ld = ld + log(p)
    return ld + q


cdef inline int cxx_solve(
    Py_ssize_t C, Py_ssize_t J, const floating* P, const double* R, const complex_t* x,
    double scale, double sqrt_eps, double eps, double* work,
) noexcept nogil:
    """z = Cxx^-1 x into model_point's scratch layout, for the log-likelihood of mu != 1."""
    cdef Py_ssize_t c, d, j, CC2 = 2 * C * C
    cdef double sr, si
    cdef double* A = work
    cdef double* z = work + CC2
    for c in range(C):
        for d in range(c + 1):
            sr = (sqrt_eps + (eps if C == 1 else 0.0)) if c == d else 0.0
            si = 0.0
            for j in range(J):
                sr = sr + P[j] * R[CC2 * j + (c * C + d) * 2]
                si = si + P[j] * R[CC2 * j + (c * C + d) * 2 + 1]
            A[(c * C + d) * 2] = sr
            A[(c * C + d) * 2 + 1] = si
        z[2 * c] = x[c].real * scale
        z[2 * c + 1] = x[c].imag * scale
    if C == 1:
        return solve_hermitian_1x1(A[0], z[0], z[1], z)
    if C == 2:
        return solve_hermitian_2x2(A[0], A[6], A[4], -A[5], z[0], z[1], z[2], z[3], z)
    return solve_hermitian_ldl(C, A, z)


cdef inline void monitor_point(
    const steer_t* s, Py_ssize_t f, Py_ssize_t C, Py_ssize_t J, const floating* P,
    const double* R, const complex_t* x, double scale, double sqrt_eps, double eps,
    const double* y, double* work,
) noexcept nogil:
    """Adds one filtered TF point to bin f's sums; y (C, J, 2) its images, work the scratch
    of the filter that made them (before the new PSDs overwrite P)."""
    cdef Py_ssize_t c, j
    cdef double xr, xi, rr, ri, res = 0.0, en = 0.0
    if s.mu != 1.0:
        # the SDW filter solved other matrices: the model's Cxx needs its own solve
        cxx_solve(C, J, P, R, x, scale, sqrt_eps, eps, work)
    s.loglik[f] = s.loglik[f] + cxx_loglik_terms(C, J, P, R, x, scale, sqrt_eps, eps, work)
    for c in range(C):
        xr = x[c].real * scale
        xi = x[c].imag * scale
        rr = xr
        ri = xi
        for j in range(J):
            rr = rr - y[(c * J + j) * 2]
            ri = ri - y[(c * J + j) * 2 + 1]
        res = res + (rr * rr + ri * ri)
        en = en + (xr * xr + xi * xi)
    s.residual[f] = s.residual[f] + res
    s.energy[f] = s.energy[f] + en


# The two-channel rows in C: restrict pointers and lane loops the compiler vectorises (the
# per-lane log stays scalar, in a loop of its own), so watching the vectorised filter does
# not cost a scalar pass over its tiles.
cdef extern from *:
    """
    #ifndef NORBERT_STEER_C
    #define NORBERT_STEER_C
    #include <math.h>
    #include <stddef.h>
    #include "_stereo.h"
    #define NORBERT_MONITOR_LANES NORBERT_STEREO_TILE
    static void norbert_monitor_stereo(ptrdiff_t n, ptrdiff_t nb, ptrdiff_t J,
                                       const double *restrict X, const double *restrict P,
                                       ptrdiff_t ps, const double *restrict Rs,
                                       const double *restrict S, double sqrt_eps,
                                       double tol_rel, double *restrict ll,
                                       double *restrict res, double *restrict en)
    {
        double a[NORBERT_MONITOR_LANES], e0r[NORBERT_MONITOR_LANES],
            e0i[NORBERT_MONITOR_LANES], e1r[NORBERT_MONITOR_LANES],
            e1i[NORBERT_MONITOR_LANES], q[NORBERT_MONITOR_LANES];
        const double *restrict x0r = X, *restrict x0i = X + nb, *restrict x1r = X + 2 * nb,
                     *restrict x1i = X + 3 * nb;
        const double *restrict d = S + nb, *restrict br = S + 2 * nb,
                     *restrict bi = S + 3 * nb;
        const double *restrict z0r = S + 4 * nb, *restrict z0i = S + 5 * nb,
                     *restrict z1r = S + 6 * nb, *restrict z1i = S + 7 * nb;
        ptrdiff_t i, j;
        for (i = 0; i < n; i++) {
            a[i] = sqrt_eps;
            e0r[i] = x0r[i];
            e0i[i] = x0i[i];
            e1r[i] = x1r[i];
            e1i[i] = x1i[i];
        }
        for (j = 0; j < J; j++) {
            /* a as the solve summed it; the images as its model_images / model_stats */
            const double *restrict p = P + j * ps, *restrict r00 = Rs + 4 * j * nb,
                         *restrict r01r = r00 + nb, *restrict r01i = r00 + 2 * nb,
                         *restrict r11 = r00 + 3 * nb;
            for (i = 0; i < n; i++) {
                double pj = p[i];
                a[i] = a[i] + pj * r00[i];
                e0r[i] -= pj * (r00[i] * z0r[i] + (r01r[i] * z1r[i] - r01i[i] * z1i[i]));
                e0i[i] -= pj * (r00[i] * z0i[i] + (r01r[i] * z1i[i] + r01i[i] * z1r[i]));
                e1r[i] -= pj * ((r01r[i] * z0r[i] + r01i[i] * z0i[i]) + r11[i] * z1r[i]);
                e1i[i] -= pj * ((r01r[i] * z0i[i] - r01i[i] * z0r[i]) + r11[i] * z1i[i]);
            }
        }
        for (i = 0; i < n; i++) {
            /* the guarded pivots of norbert_ldl_2x2; Cxx = 0 counts as det 1 (z = 0) */
            double ai = a[i], mx = ai > d[i] ? ai : d[i], tol = tol_rel * mx, d2;
            ai = ai < tol ? tol : ai;
            d2 = d[i] - (br[i] * br[i] + bi[i] * bi[i]) / ai;
            d2 = d2 < tol ? tol : d2;
            a[i] = mx > 0.0 ? ai * d2 : 1.0;
            q[i] = x0r[i] * z0r[i] + x0i[i] * z0i[i] + x1r[i] * z1r[i] + x1i[i] * z1i[i];
            res[i] = res[i] + (e0r[i] * e0r[i] + e0i[i] * e0i[i] + e1r[i] * e1r[i]
                               + e1i[i] * e1i[i]);
            en[i] = en[i] + (x0r[i] * x0r[i] + x0i[i] * x0i[i] + x1r[i] * x1r[i]
                             + x1i[i] * x1i[i]);
        }
        for (i = 0; i < n; i++)
            ll[i] = ll[i] + (log(a[i]) + q[i]);
    }
    #endif
    """
    void _monitor_stereo "norbert_monitor_stereo"(
        Py_ssize_t n, Py_ssize_t nb, Py_ssize_t J, const double* X, const double* P,
        Py_ssize_t ps, const double* Rs, const double* S, double sqrt_eps, double tol_rel,
        double* ll, double* res, double* en) noexcept nogil


cdef inline void monitor_stereo_rows(
    const steer_t* s, Py_ssize_t g0, Py_ssize_t n, Py_ssize_t nb, Py_ssize_t J,
    const double* X, const double* P, Py_ssize_t ps, const double* Rs, const double* S,
    double sqrt_eps,
) noexcept nogil:
    """monitor_point for a tile row of the two-channel path (mu = 1), after its solve.

    X (4, nb) the scaled x rows, P rows ps apart, Rs (J, 4, nb) the tile's R, S the solve's
    scratch: rows 1-3 still hold d, Re b, Im b of Cxx and rows 4-7 z (row 0, a, is reused
    for a flag by the solve, so a is summed again here).
    """
    _monitor_stereo(n, nb, J, X, P, ps, Rs, S, sqrt_eps, PIVOT_TOL, s.loglik + g0,
                    s.residual + g0, s.energy + g0)
