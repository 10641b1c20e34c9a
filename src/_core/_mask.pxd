# Initial estimates at one TF point: ratio masks and "magnitude with the mixture's phase".
#
# Both write y as (nb_channels, nb_sources) interleaved (re, im) doubles: y[(c*J + j)*2].
# They return 0, or a Status code when v is negative or v / x are not finite, so callers can
# refuse bad input without a separate pass over it.

from cython cimport floating
from libc.math cimport exp, hypot, INFINITY

from norbert._core._common cimport complex_t, Status


cdef inline int softmask_point(
    Py_ssize_t C, Py_ssize_t Cv, Py_ssize_t J,
    const floating* v,          # (Cv, J) at this TF point
    const complex_t* x,         # (C,)
    double scale, double eps, double logit, double slope,
    double* y,                  # OUT (C, J, 2)
) noexcept nogil:
    cdef Py_ssize_t c, j
    cdef const floating* vc
    cdef double total, denom, m, xr, xi, vj
    cdef int status = Status.OK
    for c in range(C):
        vc = v + (c if Cv > 1 else 0) * J
        total = 0.0
        for j in range(J):
            vj = vc[j]
            if not (vj >= 0.0 and vj < INFINITY):
                status = Status.NEGATIVE if vj < 0.0 else Status.NOT_FINITE
            total = total + vj
        denom = eps + total
        xr = x[c].real * scale
        xi = x[c].imag * scale
        if xr - xr != 0.0 or xi - xi != 0.0:
            status = Status.NOT_FINITE
        for j in range(J):
            # 0/0 (every source silent and eps = 0) is a zero mask, not NaN
            m = vc[j] / denom if denom > 0.0 else 0.0
            if logit >= 0.0:
                m = 1.0 / (1.0 + exp(-slope * (m - logit)))
            y[(c * J + j) * 2] = m * xr
            y[(c * J + j) * 2 + 1] = m * xi
    return status


cdef inline int phase_point(
    Py_ssize_t C, Py_ssize_t Cv, Py_ssize_t J,
    const floating* v, const complex_t* x, double scale,
    double* y,                  # OUT (C, J, 2)
) noexcept nogil:
    cdef Py_ssize_t c, j
    cdef const floating* vc
    cdef double xr, xi, mag, pr, pi, vj
    cdef int status = Status.OK
    for c in range(C):
        vc = v + (c if Cv > 1 else 0) * J
        xr = x[c].real
        xi = x[c].imag
        mag = hypot(xr, xi)
        if not (mag < INFINITY):
            status = Status.NOT_FINITE
        # exp(i angle(0)) is 1, as numpy's angle gives 0 there
        pr = xr / mag if mag > 0.0 else 1.0
        pi = xi / mag if mag > 0.0 else 0.0
        for j in range(J):
            vj = vc[j]
            if not (vj >= 0.0 and vj < INFINITY):
                status = Status.NEGATIVE if vj < 0.0 else Status.NOT_FINITE
            y[(c * J + j) * 2] = vj * scale * pr
            y[(c * J + j) * 2 + 1] = vj * scale * pi
    return status
