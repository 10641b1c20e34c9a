# Vectorised two-channel row kernels (C, _stereo.h). Private: not part of the public API.

cdef extern from "_stereo.h" nogil:
    const Py_ssize_t STEREO_TILE "NORBERT_STEREO_TILE"
    Py_ssize_t stereo_scratch "norbert_stereo_scratch"(Py_ssize_t J)
    int stereo_solve "norbert_stereo_solve"(
        Py_ssize_t n, Py_ssize_t nb, Py_ssize_t J, const double* X, const double* P,
        const double* R, double sqrt_eps, double* S)
    void stereo_images "norbert_stereo_images"(
        Py_ssize_t n, Py_ssize_t nb, Py_ssize_t J, const double* P, const double* R,
        const double* S, double* Y, double* Pout, double* W, double* Rn)
    int stereo_softmask_stats "norbert_stereo_softmask_stats"(
        Py_ssize_t n, Py_ssize_t nb, Py_ssize_t J, Py_ssize_t Cv, const double* X,
        const double* V, double eps, double* S, double* Pout, double* W, double* Rn)


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
