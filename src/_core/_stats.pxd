from cython cimport floating

from norbert._core._common cimport complex_t


cdef int stats_kernel(
    int mode,
    const complex_t[:, :, ::1] x,
    const floating[:, :, :, ::1] v,
    const complex_t[:, :, :, ::1] y_in,
    floating[:, :, :] P,
    const double[:, :, :, :, ::1] R,
    double scale, double eps, double logit, double slope,
    double[:, :, :, :, ::1] Rnum,
    double[:, ::1] weight,
    double[:, ::1] work,
    int n_threads,
) noexcept nogil

cdef int finalize_covariance_kernel(
    const double[:, :, :, :, ::1] Rnum,
    const double[:, ::1] weight,
    double eps,
    double[:, :, :, :, ::1] R_out,
) noexcept nogil


# The statistics of one TF point's source images y (C, J, 2) for any channel count: its
# PSDs into P, added to the bin's sums (upper triangle of y_j y_j^H), which are first
# multiplied by `forget` (1 offline, where it changes no bit; < 1 in the online filter).
cdef inline void point_stats(Py_ssize_t C, Py_ssize_t J, const double* y, floating* P,
                             double* wf, double* Rn, double forget) noexcept nogil:
    cdef Py_ssize_t j, c, d, k
    cdef double p, cr, ci, dr, di
    for j in range(J):
        p = 0.0
        for c in range(C):
            cr = y[(c * J + j) * 2]
            ci = y[(c * J + j) * 2 + 1]
            p = p + cr * cr + ci * ci
        p = p / C
        P[j] = <floating>p
        wf[j] = forget * wf[j] + p
        for c in range(C):
            cr = y[(c * J + j) * 2]
            ci = y[(c * J + j) * 2 + 1]
            for d in range(c, C):
                dr = y[(d * J + j) * 2]
                di = y[(d * J + j) * 2 + 1]
                k = (c * C + d) * 2
                Rn[k] = forget * Rn[k] + (cr * dr + ci * di)
                Rn[k + 1] = forget * Rn[k + 1] + (ci * dr - cr * di)
        Rn = Rn + 2 * C * C
