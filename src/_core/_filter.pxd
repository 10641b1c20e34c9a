# The EM's filter at one TF point, and the estimator switch shared by the statistics and
# filter passes (both inline, so every pass gets its own specialised copy).

from cython cimport floating

from norbert._core._common cimport complex_t, Status, Estimate
from norbert._core._linalg cimport (
    solve_hermitian_1x1, solve_hermitian_2x2, solve_hermitian_ldl, source_image,
)
from norbert._core._mask cimport softmask_point, phase_point


# The 2x2 mixture covariance sum_j v_j R_j + sqrt_eps I of one TF point as (a, d, b):
# diagonal a and d, off-diagonal b = br + i bi. For the filter (model_point) and for the
# log det of the log-likelihood (_steer.pxd), which must see the same bits.
cdef inline void cxx_2x2(Py_ssize_t J, const floating* P, const double* R, double sqrt_eps,
                         double* a, double* dd, double* br, double* bi) noexcept nogil:
    cdef Py_ssize_t j
    cdef double pj
    cdef const double* Rj
    a[0] = sqrt_eps
    dd[0] = sqrt_eps
    br[0] = 0.0
    bi[0] = 0.0
    for j in range(J):
        pj = P[j]
        Rj = R + 8 * j
        a[0] = a[0] + pj * Rj[0]
        br[0] = br[0] + pj * Rj[2]
        bi[0] = bi[0] + pj * Rj[3]
        dd[0] = dd[0] + pj * Rj[6]


cdef inline int model_point(
    Py_ssize_t C, Py_ssize_t J,
    const floating* P,          # (J,)   PSDs v_j at this TF point
    const double* R,            # (J, C, C, 2) spatial covariances of this bin
    const complex_t* x,         # (C,)
    double scale, double sqrt_eps, double eps,
    double* y,                  # OUT (C, J, 2): y_j = v_j R_j Cxx^-1 x
    double* work,               # scratch, >= 2*C*C + 2*C doubles
) noexcept nogil:
    cdef Py_ssize_t c, d, j, CC2 = 2 * C * C
    cdef double a, dd, br, bi, pj, sr, si
    cdef double* A = work
    cdef double* z = work + CC2
    cdef int st
    if C == 1:
        # upstream inverts 1 / (Cxx + eps): eps once more on top of sqrt(eps)
        a = sqrt_eps + eps
        for j in range(J):
            a = a + P[j] * R[2 * j]
        st = solve_hermitian_1x1(a, x[0].real * scale, x[0].imag * scale, z)
    elif C == 2:
        cxx_2x2(J, P, R, sqrt_eps, &a, &dd, &br, &bi)
        st = solve_hermitian_2x2(a, dd, br, bi,
                                 x[0].real * scale, x[0].imag * scale,
                                 x[1].real * scale, x[1].imag * scale, z)
    else:
        for c in range(C):
            for d in range(c + 1):
                sr = sqrt_eps if c == d else 0.0
                si = 0.0
                for j in range(J):
                    pj = P[j]
                    sr = sr + pj * R[CC2 * j + (c * C + d) * 2]
                    si = si + pj * R[CC2 * j + (c * C + d) * 2 + 1]
                A[(c * C + d) * 2] = sr
                A[(c * C + d) * 2 + 1] = si
            z[2 * c] = x[c].real * scale
            z[2 * c + 1] = x[c].imag * scale
        st = solve_hermitian_ldl(C, A, z)
    if st < 0:
        return Status.NOT_FINITE
    for c in range(2 * C):
        if z[c] - z[c] != 0.0:        # NaN / inf in x
            return Status.NOT_FINITE
    # y_j = v_j R_j z
    for j in range(J):
        source_image(C, J, j, P[j], R + CC2 * j, z, y)
    return Status.OK


cdef inline int estimate_point(
    int mode, Py_ssize_t C, Py_ssize_t Cv, Py_ssize_t J,
    const complex_t* x,         # (C,)       at (t, f)
    const floating* v,          # (Cv, J)    SOFTMASK / PHASE
    const complex_t* y_in,      # (C, J)     GIVEN
    const floating* P,          # (J,)       MODEL
    const double* R,            # (J, C, C, 2) of bin f, MODEL
    double scale, double eps, double sqrt_eps, double logit, double slope,
    double* y, double* work,
) noexcept nogil:
    """Source images at one TF point from the chosen estimator, as (C, J, 2) doubles in y.

    Pointers, not memoryviews: passing a memoryview to a function per TF point would cost
    atomic reference counting on a counter shared by every thread.
    """
    cdef Py_ssize_t k
    if mode == Estimate.MODEL:
        return model_point(C, J, P, R, x, scale, sqrt_eps, eps, y, work)
    if mode == Estimate.SOFTMASK:
        return softmask_point(C, Cv, J, v, x, scale, eps, logit, slope, y)
    if mode == Estimate.PHASE:
        return phase_point(C, Cv, J, v, x, scale, y)
    if mode == Estimate.GIVEN:
        for k in range(C * J):
            y[2 * k] = y_in[k].real * scale
            y[2 * k + 1] = y_in[k].imag * scale
        return Status.OK
    return Status.BAD_MODE


cdef int filter_kernel(
    int mode,
    const complex_t[:, :, ::1] x,
    const floating[:, :, :, ::1] v,
    const floating[:, :, :] P,
    const double[:, :, :, :, ::1] R,
    double scale, double eps, double logit, double slope, double out_scale,
    complex_t[:, :, :, ::1] y_out,
    double[:, ::1] work,
    int n_threads,
) noexcept nogil

cdef int mix_model_kernel(
    const floating[:, :, ::1] v,
    const complex_t[:, :, :, ::1] R,
    complex_t[:, :, :, ::1] Cxx_out,
    int n_threads,
) noexcept nogil

cdef int gain_kernel(
    const floating[:, ::1] v_j,
    const complex_t[:, :, ::1] R_j,
    const complex_t[:, :, :, ::1] inv_Cxx,
    complex_t[:, :, :, ::1] G_out,
    int n_threads,
) noexcept nogil

cdef int apply_filter_kernel(
    const complex_t[:, :, ::1] x,
    const complex_t[:, :, :, ::1] W,
    complex_t[:, :, ::1] y_out,
    int n_threads,
) noexcept nogil
