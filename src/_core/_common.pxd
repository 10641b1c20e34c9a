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

cdef Py_ssize_t n_chunks(Py_ssize_t n_items, int n_threads, Py_ssize_t min_items) noexcept nogil

# Threads for one pass over a block of T frames and F bins, given the scratch rows.
cdef int pass_threads(Py_ssize_t T, Py_ssize_t F, int n_threads,
                      Py_ssize_t work_rows) noexcept nogil

# Status bits: 1 << Status. Where a loop meets problems at several places (tile rows, TF
# points, threads) it ORs their bits together, without locks or order; worst_status maps
# the bits back to the one Status to report (the same for any split of the work).
cdef int worst_status(int bits) noexcept nogil

# Offset (doubles) of the gathered PSDs in a per-point path's scratch row.
cdef Py_ssize_t psd_scratch(Py_ssize_t C, Py_ssize_t J) noexcept nogil

# Doubles of per-thread scratch a kernel needs for C channels and J sources. Not inline:
# an extension built against an older norbert asks the installed one (see __init__.pxd).
cdef Py_ssize_t work_size(Py_ssize_t C, Py_ssize_t J) noexcept nogil

# Frames per work item of a pass: `block_frames` if positive, else about 8 MB of output.
cdef Py_ssize_t block_frames_for(Py_ssize_t T, Py_ssize_t F, Py_ssize_t C, Py_ssize_t J,
                                 Py_ssize_t block_frames) noexcept nogil

# Records how a pass ran (threads that computed, whether it opened a parallel region):
# pass_info() reports it, so tests can check that work really was shared.
cdef void note_pass(int threads, bint parallel) noexcept nogil
