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
