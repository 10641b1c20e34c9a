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
