# Vectorised two-channel row kernels (C, _stereo.h). Private: not part of the public API.

cimport cython
from cython cimport floating

from norbert._core._common cimport complex_t
# the kernels use _linalg's 2x2 solve, which is C: its code must come before theirs
from norbert._core._linalg cimport ldl_2x2

cdef extern from "_stereo.h" nogil:
    const Py_ssize_t STEREO_TILE "NORBERT_STEREO_TILE"
    Py_ssize_t stereo_scratch "norbert_stereo_scratch"(Py_ssize_t J)
    void prefetch "norbert_prefetch"(const void* p, Py_ssize_t nbytes, int write)
    int stereo_solve "norbert_stereo_solve"(
        Py_ssize_t n, Py_ssize_t nb, Py_ssize_t J, const double* X, const double* P,
        Py_ssize_t ps, const double* R, double sqrt_eps, double* S)
    void stereo_images "norbert_stereo_images"(
        Py_ssize_t n, Py_ssize_t nb, Py_ssize_t J, const double* P, Py_ssize_t ps,
        const double* R, const double* S, double* Y, double* Pout, Py_ssize_t pos,
        double* W, double* Rn)
    int stereo_softmask_stats "norbert_stereo_softmask_stats"(
        Py_ssize_t n, Py_ssize_t nb, Py_ssize_t J, Py_ssize_t Cv, const double* X,
        const double* V, double eps, double* S, double* Pout, Py_ssize_t pos, double* W,
        double* Rn)
    int stereo_softmask_images "norbert_stereo_softmask_images"(
        Py_ssize_t n, Py_ssize_t nb, Py_ssize_t J, Py_ssize_t Cv, const double* X,
        const double* V, double eps, double* S, double* Y)
    void stereo_given_stats "norbert_stereo_given_stats"(
        Py_ssize_t n, Py_ssize_t nb, Py_ssize_t J, const double* Y, double* Pout,
        Py_ssize_t pos, double* W, double* Rn)
    # row copies, per precision (see NORBERT_STEREO_COPIES)
    void load_y_d "norbert_stereo_load_y_d"(Py_ssize_t n, Py_ssize_t nb, Py_ssize_t J,
                                            const double* y, double scale, double* Y)
    void load_y_f "norbert_stereo_load_y_f"(Py_ssize_t n, Py_ssize_t nb, Py_ssize_t J,
                                            const float* y, double scale, double* Y)
    void load_x_d "norbert_stereo_load_x_d"(Py_ssize_t n, Py_ssize_t nb, const double* x,
                                            double scale, double* X)
    void load_x_f "norbert_stereo_load_x_f"(Py_ssize_t n, Py_ssize_t nb, const float* x,
                                            double scale, double* X)
    void store_y_d "norbert_stereo_write_y_d"(Py_ssize_t n, Py_ssize_t nb, Py_ssize_t J,
                                              const double* Y, double s, double* y)
    void store_y_f "norbert_stereo_write_y_f"(Py_ssize_t n, Py_ssize_t nb, Py_ssize_t J,
                                              const double* Y, double s, float* y)
    void rows_in_d "norbert_rows_in_d"(Py_ssize_t n, Py_ssize_t nb, Py_ssize_t J,
                                       const double* P, Py_ssize_t ps, Py_ssize_t es,
                                       double* D)
    void rows_in_f "norbert_rows_in_f"(Py_ssize_t n, Py_ssize_t nb, Py_ssize_t J,
                                       const float* P, Py_ssize_t ps, Py_ssize_t es,
                                       double* D)
    void rows_out_d "norbert_rows_out_d"(Py_ssize_t n, Py_ssize_t nb, Py_ssize_t J,
                                         const double* D, double* P, Py_ssize_t ps,
                                         Py_ssize_t es)
    void rows_out_f "norbert_rows_out_f"(Py_ssize_t n, Py_ssize_t nb, Py_ssize_t J,
                                         const double* D, float* P, Py_ssize_t ps,
                                         Py_ssize_t es)


# Copies between the (bins, J, 2, 2, 2) covariance layout and a tile's (J, 4, nb)
# structure-of-arrays; exact, so running sums keep their order (see _stereo.h).
cdef inline void tile_load(const double[:, :, :, :, ::1] R, Py_ssize_t g0, Py_ssize_t n,
                           Py_ssize_t nb, double* Rs) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef const double* Rf
    for i in range(n):
        for j in range(R.shape[1]):
            Rf = &R[g0 + i, j, 0, 0, 0]
            Rs[(4 * j) * nb + i] = Rf[0]
            Rs[(4 * j + 1) * nb + i] = Rf[2]
            Rs[(4 * j + 2) * nb + i] = Rf[3]
            Rs[(4 * j + 3) * nb + i] = Rf[6]


cdef inline void tile_store(const double* Rs, Py_ssize_t g0, Py_ssize_t n, Py_ssize_t nb,
                            double[:, :, :, :, ::1] R) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef double* Rf
    for i in range(n):
        for j in range(R.shape[1]):
            Rf = &R[g0 + i, j, 0, 0, 0]
            Rf[0] = Rs[(4 * j) * nb + i]
            Rf[2] = Rs[(4 * j + 1) * nb + i]
            Rf[3] = Rs[(4 * j + 2) * nb + i]
            Rf[6] = Rs[(4 * j + 3) * nb + i]


# Fused front ends of the row copies: x and y rows by complex precision, PSD rows by real
# precision. P's rows are ps elements apart and a row's bins es apart: (frames, J, bins)
# storage has es = 1 and is read in place, (frames, bins, J) storage is gathered.
cdef inline void load_x(Py_ssize_t n, Py_ssize_t nb, const complex_t* x, double scale,
                        double* X) noexcept nogil:
    if complex_t is cython.doublecomplex:
        load_x_d(n, nb, <const double*>x, scale, X)
    else:
        load_x_f(n, nb, <const float*>x, scale, X)


cdef inline void load_y(Py_ssize_t n, Py_ssize_t nb, Py_ssize_t J, const complex_t* y,
                        double scale, double* Y) noexcept nogil:
    if complex_t is cython.doublecomplex:
        load_y_d(n, nb, J, <const double*>y, scale, Y)
    else:
        load_y_f(n, nb, J, <const float*>y, scale, Y)


cdef inline void store_y(Py_ssize_t n, Py_ssize_t nb, Py_ssize_t J, const double* Y,
                         double s, complex_t* y) noexcept nogil:
    if complex_t is cython.doublecomplex:
        store_y_d(n, nb, J, Y, s, <double*>y)
    else:
        store_y_f(n, nb, J, Y, s, <float*>y)


cdef inline void rows_in(Py_ssize_t n, Py_ssize_t nb, Py_ssize_t J, const floating* P,
                         Py_ssize_t ps, Py_ssize_t es, double* D) noexcept nogil:
    if floating is double:
        rows_in_d(n, nb, J, P, ps, es, D)
    else:
        rows_in_f(n, nb, J, P, ps, es, D)


cdef inline void rows_out(Py_ssize_t n, Py_ssize_t nb, Py_ssize_t J, const double* D,
                          floating* P, Py_ssize_t ps, Py_ssize_t es) noexcept nogil:
    if floating is double:
        rows_out_d(n, nb, J, D, P, ps, es)
    else:
        rows_out_f(n, nb, J, D, P, ps, es)


# A tile row of PSD storage: P points at P[t, g0, 0]; rows Pjs apart, bins Pes apart.
cdef inline void prefetch_psd(const floating* P, Py_ssize_t n, Py_ssize_t J, Py_ssize_t Pjs,
                              Py_ssize_t Pes, int write) noexcept nogil:
    cdef Py_ssize_t j
    if Pes == 1:
        for j in range(J):
            prefetch(P + j * Pjs, n * sizeof(floating), write)
    else:
        prefetch(P, n * Pes * sizeof(floating), write)


cdef inline const double* psd_rows(const floating* P, Py_ssize_t n, Py_ssize_t nb,
                                   Py_ssize_t J, Py_ssize_t Pjs, Py_ssize_t Pes, bint direct,
                                   double* Pin) noexcept nogil:
    """The PSD rows the kernels read: in place when `direct` (double rows of bins), else
    converted / gathered into Pin (J, nb)."""
    if direct:
        return <const double*>P
    rows_in(n, nb, J, P, Pjs, Pes, Pin)
    return Pin
