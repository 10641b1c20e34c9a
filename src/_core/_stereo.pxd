# Vectorised two-channel row kernels (C: _stereo.h, _stereo_impl.h), compiled per
# instruction set into this module; one table of them is picked at import. Private: not
# part of the public API.

cimport cython
from cython cimport floating

from norbert._core._common cimport complex_t
# the kernels use _linalg's 2x2 solve, which is C: its code must come before theirs
from norbert._core._linalg cimport ldl_2x2

cdef extern from "_stereo.h" nogil:
    const Py_ssize_t STEREO_TILE "NORBERT_STEREO_TILE"
    # rows of a tile's scratch areas, in the order the passes lay them out
    enum:
        ROWS_X "NORBERT_ROWS_X"
        ROWS_P "NORBERT_ROWS_P"
        ROWS_V "NORBERT_ROWS_V"
        ROWS_R "NORBERT_ROWS_R"
        ROWS_RN "NORBERT_ROWS_RN"
        ROWS_W "NORBERT_ROWS_W"
        ROWS_S "NORBERT_ROWS_S"
        ROWS_POUT "NORBERT_ROWS_POUT"
        ROWS_Y "NORBERT_ROWS_Y"
    const int NOT_FINITE_BIT "NORBERT_NOT_FINITE_BIT"
    const int NEGATIVE_BIT "NORBERT_NEGATIVE_BIT"
    void prefetch "norbert_prefetch"(const void* p, Py_ssize_t nbytes, int write)

    # the table of kernels (see _stereo.h): n lanes of rows STEREO_TILE long; their int
    # results are Status bits
    ctypedef struct stereo_ops_t "norbert_stereo_ops":
        const char* isa
        int (*solve)(Py_ssize_t n, Py_ssize_t J, const double* X, const double* P,
                     Py_ssize_t ps, const double* R, double sqrt_eps,
                     double* S) noexcept nogil
        void (*model_images)(Py_ssize_t n, Py_ssize_t J, const double* P, Py_ssize_t ps,
                             const double* R, const double* S, double* Y) noexcept nogil
        void (*model_stats)(Py_ssize_t n, Py_ssize_t J, const double* P, Py_ssize_t ps,
                            const double* R, const double* S, double* Pout, double* W,
                            double* Rn) noexcept nogil
        int (*softmask_images)(Py_ssize_t n, Py_ssize_t J, Py_ssize_t Cv, const double* X,
                               const double* V, double eps, double* S,
                               double* Y) noexcept nogil
        int (*softmask_stats)(Py_ssize_t n, Py_ssize_t J, Py_ssize_t Cv, const double* X,
                              const double* V, double eps, double* S, double* Pout,
                              double* W, double* Rn) noexcept nogil
        void (*given_stats)(Py_ssize_t n, Py_ssize_t J, const double* Y, double* Pout,
                            double* W, double* Rn) noexcept nogil
        void (*load_x_d)(Py_ssize_t n, const double* x, double scale, double* X) noexcept nogil
        void (*load_x_f)(Py_ssize_t n, const float* x, double scale, double* X) noexcept nogil
        void (*load_y_d)(Py_ssize_t n, Py_ssize_t J, const double* y, double scale,
                         double* Y) noexcept nogil
        void (*load_y_f)(Py_ssize_t n, Py_ssize_t J, const float* y, double scale,
                         double* Y) noexcept nogil
        void (*store_y_d)(Py_ssize_t n, Py_ssize_t J, const double* Y, double s,
                          double* y) noexcept nogil
        void (*store_y_f)(Py_ssize_t n, Py_ssize_t J, const double* Y, double s,
                          float* y) noexcept nogil
        void (*rows_in_d)(Py_ssize_t n, Py_ssize_t J, const double* P, Py_ssize_t ps,
                          Py_ssize_t es, double* D) noexcept nogil
        void (*rows_in_f)(Py_ssize_t n, Py_ssize_t J, const float* P, Py_ssize_t ps,
                          Py_ssize_t es, double* D) noexcept nogil
        void (*rows_out_d)(Py_ssize_t n, Py_ssize_t J, const double* D, double* P,
                           Py_ssize_t ps, Py_ssize_t es) noexcept nogil
        void (*rows_out_f)(Py_ssize_t n, Py_ssize_t J, const double* D, float* P,
                           Py_ssize_t ps, Py_ssize_t es) noexcept nogil


# The table picked at import (_stereo.pyx): the best instruction set the CPU has, or the
# one NORBERT_ISA caps it to. Fetch it once per range of bins.
cdef const stereo_ops_t* stereo_ops() noexcept nogil


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
cdef inline void load_x(const stereo_ops_t* ops, Py_ssize_t n, const complex_t* x,
                        double scale, double* X) noexcept nogil:
    if complex_t is cython.doublecomplex:
        ops.load_x_d(n, <const double*>x, scale, X)
    else:
        ops.load_x_f(n, <const float*>x, scale, X)


cdef inline void load_y(const stereo_ops_t* ops, Py_ssize_t n, Py_ssize_t J,
                        const complex_t* y, double scale, double* Y) noexcept nogil:
    if complex_t is cython.doublecomplex:
        ops.load_y_d(n, J, <const double*>y, scale, Y)
    else:
        ops.load_y_f(n, J, <const float*>y, scale, Y)


cdef inline void store_y(const stereo_ops_t* ops, Py_ssize_t n, Py_ssize_t J,
                         const double* Y, double s, complex_t* y) noexcept nogil:
    if complex_t is cython.doublecomplex:
        ops.store_y_d(n, J, Y, s, <double*>y)
    else:
        ops.store_y_f(n, J, Y, s, <float*>y)


cdef inline void rows_in(const stereo_ops_t* ops, Py_ssize_t n, Py_ssize_t J,
                         const floating* P, Py_ssize_t ps, Py_ssize_t es,
                         double* D) noexcept nogil:
    if floating is double:
        ops.rows_in_d(n, J, P, ps, es, D)
    else:
        ops.rows_in_f(n, J, P, ps, es, D)


cdef inline void rows_out(const stereo_ops_t* ops, Py_ssize_t n, Py_ssize_t J,
                          const double* D, floating* P, Py_ssize_t ps,
                          Py_ssize_t es) noexcept nogil:
    if floating is double:
        ops.rows_out_d(n, J, D, P, ps, es)
    else:
        ops.rows_out_f(n, J, D, P, ps, es)


# A tile row of PSD storage: P points at P[t, g0, 0]; rows Pjs apart, bins Pes apart.
cdef inline void prefetch_psd(const floating* P, Py_ssize_t n, Py_ssize_t J, Py_ssize_t Pjs,
                              Py_ssize_t Pes, int write) noexcept nogil:
    cdef Py_ssize_t j
    if Pes == 1:
        for j in range(J):
            prefetch(P + j * Pjs, n * sizeof(floating), write)
    else:
        prefetch(P, n * Pes * sizeof(floating), write)


cdef inline const double* psd_rows(const stereo_ops_t* ops, const floating* P, Py_ssize_t n,
                                   Py_ssize_t J, Py_ssize_t Pjs, Py_ssize_t Pes, bint direct,
                                   double* Pin) noexcept nogil:
    """The PSD rows the kernels read: in place when `direct` (double rows of bins), else
    converted / gathered into Pin (J, STEREO_TILE)."""
    if direct:
        return <const double*>P
    rows_in(ops, n, J, P, Pjs, Pes, Pin)
    return Pin
