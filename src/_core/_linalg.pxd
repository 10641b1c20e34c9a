# Small Hermitian solves for one time-frequency point, in double precision.
#
# Matrices are stored as interleaved (re, im) doubles, row-major: A[(i*n + k)*2 + 0/1].
# Every solver returns 0 on success, 1 when the matrix is exactly zero (z is set to 0:
# every source is silent there), and -1 when it met NaN or inf.
#
# Near-singular matrices (only possible with eps = 0 or huge dynamic range, since the EM
# adds sqrt(eps) I) are handled by a relative pivot guard: a pivot below
# PIVOT_TOL * max(diag(A)) is raised to that floor, i.e. diagonal loading applied only
# where the factorisation would otherwise break down.

from libc.math cimport INFINITY

# The 2x2 LDL^H is C, so that the two-channel kernels (_stereo_impl.h) vectorise this same
# definition across bins; solve_hermitian_2x2 below adds the checks of one TF point.
cdef extern from *:
    """
    #ifndef NORBERT_LINALG_C
    #define NORBERT_LINALG_C
    #define NORBERT_PIVOT_TOL 1e-13
    #if defined(__GNUC__) || defined(__clang__)
    #define NORBERT_ALWAYS_INLINE static inline __attribute__((always_inline))
    #elif defined(_MSC_VER)
    #define NORBERT_ALWAYS_INLINE static __forceinline
    #else
    #define NORBERT_ALWAYS_INLINE static inline
    #endif
    /* z = [[a, b], [conj(b), d]]^-1 x with b = br + i bi, as L D L^H with the pivot guard;
     * z (4,) interleaved. Branch-free (selects, not ifs), so a loop over bins vectorises
     * it. Where max(a, d) is not > 0 (Cxx = 0: every source silent; or NaN) z = 0.
     * Returns max(a, d). */
    NORBERT_ALWAYS_INLINE double norbert_ldl_2x2(double a, double d, double br, double bi,
                                                 double x0r, double x0i, double x1r,
                                                 double x1i, double *z)
    {
        double mx = a > d ? a : d;
        double tol = NORBERT_PIVOT_TOL * mx;
        double inv_a, inv_d2, lr, li, d2, u1r, u1i, z0r, z0i, z1r, z1i;
        a = a < tol ? tol : a;
        a = mx > 0.0 ? a : 1.0;              /* Cxx = 0: any pivot, z is zeroed below */
        inv_a = 1.0 / a;
        lr = br * inv_a;                     /* conj(L[1, 0]) = b / a */
        li = bi * inv_a;
        d2 = d - (br * lr + bi * li);        /* second pivot d - |b|^2 / a */
        d2 = d2 < tol ? tol : d2;
        d2 = mx > 0.0 ? d2 : 1.0;
        inv_d2 = 1.0 / d2;
        /* L u = x: u1 = x1 - conj(b / a) x0 */
        u1r = x1r - (lr * x0r + li * x0i);
        u1i = x1i - (lr * x0i - li * x0r);
        z1r = u1r * inv_d2;
        z1i = u1i * inv_d2;
        /* L^H z = D^-1 u: z0 = x0 / a - (b / a) z1 */
        z0r = x0r * inv_a - (lr * z1r - li * z1i);
        z0i = x0i * inv_a - (lr * z1i + li * z1r);
        z[0] = mx > 0.0 ? z0r : 0.0;
        z[1] = mx > 0.0 ? z0i : 0.0;
        z[2] = mx > 0.0 ? z1r : 0.0;
        z[3] = mx > 0.0 ? z1i : 0.0;
        return mx;
    }
    #endif
    """
    const double PIVOT_TOL "NORBERT_PIVOT_TOL"
    double ldl_2x2 "norbert_ldl_2x2"(double a, double d, double br, double bi, double x0r,
                                     double x0i, double x1r, double x1i,
                                     double* z) noexcept nogil


cdef inline int solve_hermitian_1x1(double a, double xr, double xi, double* z) noexcept nogil:
    """z = x / a for a real a >= 0."""
    if not (a < INFINITY):
        return -1
    if a <= 0.0:
        z[0] = 0.0
        z[1] = 0.0
        return 1
    z[0] = xr / a
    z[1] = xi / a
    return 0


cdef inline int solve_hermitian_2x2(
    double a, double d, double br, double bi,
    double x0r, double x0i, double x1r, double x1i, double* z,
) noexcept nogil:
    """z = [[a, b], [conj(b), d]]^-1 x in closed form, as the 2x2 LDL^H.

    Mathematically Cramer's rule; written as L D L^H so that a (nearly) singular Cxx,
    e.g. two sources with the same spatial image, still gives a solution of Cxx z = x
    when x lies in its range, instead of the adjugate's z = 0 over a floored determinant.
    """
    cdef double maxdiag = a if a > d else d
    if not (maxdiag < INFINITY and br - br == 0.0 and bi - bi == 0.0):
        return -1
    ldl_2x2(a, d, br, bi, x0r, x0i, x1r, x1i, z)      # z = 0 where maxdiag <= 0
    return 1 if maxdiag <= 0.0 else 0


cdef inline int solve_hermitian_ldl(Py_ssize_t n, double* A, double* b) noexcept nogil:
    """Solve A z = b in place (z overwrites b) by LDL^H without square roots.

    Only the lower triangle and the real diagonal of A are read; A is overwritten by L and D.
    """
    cdef Py_ssize_t i, k, m
    cdef double maxdiag = 0.0, tol, dk, sr, si, lr, li, kr, ki, ur, ui
    for k in range(n):
        dk = A[(k * n + k) * 2]
        if not (dk < INFINITY):
            return -1
        if dk > maxdiag:
            maxdiag = dk
    if maxdiag <= 0.0:
        for i in range(2 * n):
            b[i] = 0.0
        return 1
    tol = PIVOT_TOL * maxdiag
    for k in range(n):
        dk = A[(k * n + k) * 2]
        for m in range(k):
            kr = A[(k * n + m) * 2]
            ki = A[(k * n + m) * 2 + 1]
            dk = dk - (kr * kr + ki * ki) * A[(m * n + m) * 2]
        if dk < tol:
            dk = tol
        A[(k * n + k) * 2] = dk
        for i in range(k + 1, n):
            sr = A[(i * n + k) * 2]
            si = A[(i * n + k) * 2 + 1]
            for m in range(k):
                # L_im * d_m * conj(L_km)
                lr = A[(i * n + m) * 2]
                li = A[(i * n + m) * 2 + 1]
                kr = A[(k * n + m) * 2] * A[(m * n + m) * 2]
                ki = A[(k * n + m) * 2 + 1] * A[(m * n + m) * 2]
                sr = sr - (lr * kr + li * ki)
                si = si - (li * kr - lr * ki)
            A[(i * n + k) * 2] = sr / dk
            A[(i * n + k) * 2 + 1] = si / dk
    # forward: L u = b
    for i in range(n):
        ur = b[2 * i]
        ui = b[2 * i + 1]
        for k in range(i):
            lr = A[(i * n + k) * 2]
            li = A[(i * n + k) * 2 + 1]
            ur = ur - (lr * b[2 * k] - li * b[2 * k + 1])
            ui = ui - (lr * b[2 * k + 1] + li * b[2 * k])
        b[2 * i] = ur
        b[2 * i + 1] = ui
    # diagonal, then backward: L^H z = D^-1 u
    for i in range(n - 1, -1, -1):
        dk = A[(i * n + i) * 2]
        ur = b[2 * i] / dk
        ui = b[2 * i + 1] / dk
        for k in range(i + 1, n):
            # conj(L_ki) z_k
            lr = A[(k * n + i) * 2]
            li = A[(k * n + i) * 2 + 1]
            ur = ur - (lr * b[2 * k] + li * b[2 * k + 1])
            ui = ui - (lr * b[2 * k + 1] - li * b[2 * k])
        b[2 * i] = ur
        b[2 * i + 1] = ui
    return 0


cdef int hermitian_solve(Py_ssize_t n, double* A, double* b) noexcept nogil


# y_j = p_j R_j z for one source j: R_j (C, C, 2) row-major complex, z (C, 2), into the
# (C, J, 2) images y. The last step of the Wiener filter (model_point) and of the
# speech-distortion-weighted one (_steer.sdw_point), one source at a time.
cdef inline void source_image(Py_ssize_t C, Py_ssize_t J, Py_ssize_t j, double pj,
                              const double* Rj, const double* z, double* y) noexcept nogil:
    cdef Py_ssize_t c, d
    cdef double sr, si, zr, zi
    for c in range(C):
        sr = 0.0
        si = 0.0
        for d in range(C):
            zr = z[2 * d]
            zi = z[2 * d + 1]
            sr = sr + Rj[(c * C + d) * 2] * zr - Rj[(c * C + d) * 2 + 1] * zi
            si = si + Rj[(c * C + d) * 2] * zi + Rj[(c * C + d) * 2 + 1] * zr
        y[(c * J + j) * 2] = pj * sr
        y[(c * J + j) * 2 + 1] = pj * si
