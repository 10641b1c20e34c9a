"""Shared helpers of norbert's compiled core.

Every kernel splits the frequency bins into contiguous chunks, one per thread, and adds
frames in order inside each chunk, so sums over frames have the same order (and the same
bits) for any thread count. `n_chunks` decides how many chunks a call gets: never more than
the threads, and one for small work, where waking a thread team costs more than it saves.
"""


cdef Py_ssize_t n_chunks(Py_ssize_t n_items, int n_threads, Py_ssize_t min_items) noexcept nogil:
    cdef Py_ssize_t n = n_threads
    if min_items < 1:
        min_items = 1
    if n > n_items // min_items:
        n = n_items // min_items
    if n < 1:
        n = 1
    return n


cdef int worst_status(int flags) noexcept nogil:
    if flags & (1 << Status.BAD_SHAPE):
        return Status.BAD_SHAPE
    if flags & (1 << Status.SMALL_WORK):
        return Status.SMALL_WORK
    if flags & (1 << Status.BAD_MODE):
        return Status.BAD_MODE
    if flags & (1 << Status.NEGATIVE):
        return Status.NEGATIVE
    if flags & (1 << Status.NOT_FINITE):
        return Status.NOT_FINITE
    return Status.OK


def openmp_enabled():
    """Return True if the compiled core was built with OpenMP."""
    return bool(NORBERT_HAVE_OPENMP)


def max_threads():
    """Return OpenMP's current thread limit (honours OMP_NUM_THREADS and threadpoolctl)."""
    return omp_get_max_threads()


def scratch_size(Py_ssize_t nb_channels, Py_ssize_t nb_sources):
    """Doubles of scratch per thread the kernels need (the `work` argument's row length)."""
    return work_size(nb_channels, nb_sources)
