# Shared types, status codes and the OpenMP guard of norbert's compiled core.

ctypedef fused complex_t:
    float complex
    double complex

cpdef enum Status:
    OK = 0
    BAD_SHAPE = 1        # a view's shape does not match the others
    NOT_FINITE = 2       # NaN or inf met (in the input, or by overflow)
    SMALL_WORK = 3       # scratch buffer too small for the channel/source counts
    NEGATIVE = 4         # a power spectrogram v has a negative entry
    BAD_MODE = 5         # unknown Estimate

# Estimators that produce source images y[c, j] at one TF point (see _stats.pyx).
cpdef enum Estimate:
    GIVEN = 0            # y is an input array
    SOFTMASK = 1         # y_j = v_j / (eps + sum_k v_k) * x     (optionally logit-compressed)
    PHASE = 2            # y_j = v_j * exp(i angle(x))
    MODEL = 3            # y_j = v_j R_j Cxx^-1 x                (the EM's filter)

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define NORBERT_HAVE_OPENMP 1
    #else
    #define NORBERT_HAVE_OPENMP 0
    static int omp_get_max_threads(void) { return 1; }
    #endif
    """
    int NORBERT_HAVE_OPENMP
    int omp_get_max_threads() noexcept nogil

cdef Py_ssize_t n_chunks(Py_ssize_t n_items, int n_threads, Py_ssize_t min_items) noexcept nogil

# Threads report their Status as bits (1 << status) OR-ed together; this picks the one to raise.
cdef int worst_status(int flags) noexcept nogil

# Doubles of per-thread scratch a kernel needs for C channels and J sources.
cdef inline Py_ssize_t work_size(Py_ssize_t C, Py_ssize_t J) noexcept nogil:
    cdef Py_ssize_t generic = 2 * C * J + 2 * C * C + 2 * C + 8
    cdef Py_ssize_t stereo = 64 * (12 + 17 * J) + 8      # _stereo.h: NORBERT_STEREO_TILE tiles
    if C == 2 and stereo > generic:
        return stereo
    return generic
