# The online (causal) Wiener filter, one frame at a time (see _online.pyx for the maths).
#
# State of a stream, allocated by the caller and zeroed before its first frame:
#     Rnum    double (F, J, C, C, 2)  sums of y0 y0^H with forgetting, upper triangle
#     weight  double (F, J)           sums of the PSDs P with forgetting
# and, for online_process_kernel's lookahead, a ring of L + 1 frames (x_ring, P_ring).

from cython cimport floating

from norbert._core._common cimport complex_t


# Doubles of per-thread scratch the online kernels need for C channels and J sources. Not
# inline, as _common's work_size: an extension asks the installed norbert.
cdef Py_ssize_t online_work_size(Py_ssize_t C, Py_ssize_t J) noexcept nogil


cdef int online_accumulate_kernel(
    int mode,
    const complex_t[:, ::1] x,
    const floating[:, :, ::1] v,
    double scale, double eps, double forget,
    floating[:, ::1] P_out,
    double[:, :, :, :, ::1] Rnum,
    double[:, ::1] weight,
    double[:, ::1] work,
    int n_threads,
) noexcept nogil

cdef int online_filter_kernel(
    const complex_t[:, ::1] x,
    const floating[:, ::1] P,
    const double[:, :, :, :, ::1] Rnum,
    const double[:, ::1] weight,
    double scale, double eps, double out_scale,
    complex_t[:, :, ::1] y_out,
    double[:, ::1] work,
    int n_threads,
) noexcept nogil

cdef int online_process_kernel(
    int mode,
    const complex_t[:, :, ::1] x,
    const floating[:, :, :, ::1] v,
    double scale, double eps, double forget, double out_scale,
    Py_ssize_t frames_in, Py_ssize_t frames_out,
    complex_t[:, :, ::1] x_ring,
    floating[:, :, ::1] P_ring,
    double[:, :, :, :, ::1] Rnum,
    double[:, ::1] weight,
    complex_t[:, :, :, ::1] y_out,
    double[:, ::1] work,
    int n_threads,
) noexcept nogil
