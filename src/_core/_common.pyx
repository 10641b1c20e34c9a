"""Shared helpers of norbert's compiled core.

Kernels split the frequency bins into fixed ranges that threads take in any order; every
bin's frames are summed in order by the one thread that holds its range, so sums over
frames have the same order (and the same bits) for any thread count. `n_chunks` decides how
many threads a call gets: never more than the work supports, and one for small work, where
waking a thread team costs more than it saves.
"""


from cython.parallel cimport prange

# Only this module touches the OpenMP runtime (kernels use prange): keeping the guard out of
# the .pxd keeps it out of downstream builds.
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

cdef extern from "_stereo.h" nogil:
    # the two-channel passes' tiles: the largest of their scratch layouts
    Py_ssize_t stereo_scratch "norbert_stereo_scratch"(Py_ssize_t J)


cdef Py_ssize_t work_size(Py_ssize_t C, Py_ssize_t J) noexcept nogil:
    """Doubles of per-thread scratch the kernels need for C channels and J sources.

    Not inline: an extension built against an older norbert calls this one, so it
    allocates what the installed kernels need.
    """
    cdef Py_ssize_t generic = psd_scratch(C, J) + J + 8
    if C == 2 and stereo_scratch(J) > generic:
        return stereo_scratch(J)
    return generic


cdef Py_ssize_t psd_scratch(Py_ssize_t C, Py_ssize_t J) noexcept nogil:
    """Offset in a scratch row of the PSDs the per-point paths gather (after y and the solve)."""
    return 2 * C * J + 2 * C * C + 2 * C


cdef Py_ssize_t n_chunks(Py_ssize_t n_items, int n_threads, Py_ssize_t min_items) noexcept nogil:
    cdef Py_ssize_t n = n_threads
    if min_items < 1:
        min_items = 1
    if n > n_items // min_items:
        n = n_items // min_items
    if n < 1:
        n = 1
    return n


cdef int worst_status(int bits) noexcept nogil:
    # the caller's errors first, then the data's: negative values before non-finite ones
    if bits & (1 << Status.BAD_SHAPE):
        return Status.BAD_SHAPE
    if bits & (1 << Status.SMALL_WORK):
        return Status.SMALL_WORK
    if bits & (1 << Status.BAD_MODE):
        return Status.BAD_MODE
    if bits & (1 << Status.NEGATIVE):
        return Status.NEGATIVE
    if bits & (1 << Status.NOT_FINITE):
        return Status.NOT_FINITE
    return Status.OK


cdef int pass_threads(Py_ssize_t T, Py_ssize_t F, int n_threads,
                      Py_ssize_t work_rows) noexcept nogil:
    # at least 16 bins per thread, and one thread below 4096 TF points per block
    cdef Py_ssize_t nt = n_chunks(F, n_threads, 16)
    if T * F < 4096:
        nt = 1
    if nt > work_rows:
        nt = work_rows
    return <int>nt


cdef Py_ssize_t block_frames_for(Py_ssize_t T, Py_ssize_t F, Py_ssize_t C, Py_ssize_t J,
                                 Py_ssize_t block_frames) noexcept nogil:
    cdef Py_ssize_t per_frame = F * C * J * 16
    if block_frames <= 0:
        block_frames = (8 << 20) // per_frame if per_frame > 0 else T
    if block_frames < 1:
        block_frames = 1
    if block_frames > T:
        block_frames = T if T > 0 else 1
    return block_frames


# Written by whichever thread ends a pass; read by tests through pass_info(). Concurrent
# calls from several threads may interleave their records (they stay valid numbers).
cdef int _last_threads = 0
cdef long long _regions = 0


cdef void note_pass(int threads, bint parallel) noexcept nogil:
    global _last_threads, _regions
    _last_threads = threads
    if parallel:
        _regions += 1


def pass_info():
    """How the last pass ran, for tests: ``(threads, regions)``.

    Returns
    -------
    threads : int
        threads that computed part of the last pass (EM statistics or filter).
    regions : int
        parallel regions the passes have opened since the module was loaded.
    """
    return _last_threads, _regions


def openmp_enabled():
    """Return True if the compiled core was built with OpenMP."""
    return bool(NORBERT_HAVE_OPENMP)


def max_threads():
    """Return OpenMP's current thread limit (honours OMP_NUM_THREADS and threadpoolctl)."""
    return omp_get_max_threads()


def scratch_size(Py_ssize_t nb_channels, Py_ssize_t nb_sources):
    """Doubles of scratch per thread the kernels need (the `work` argument's row length)."""
    return work_size(nb_channels, nb_sources)


def touch_pages(unsigned char[::1] buf not None, Py_ssize_t page, int n_threads):
    """Write a zero byte into every page of a new buffer, threads sharing the pages.

    The operating system zero-fills a page at its first write; doing that for a whole
    output right after allocating it, on every thread, costs no more than faulting the
    pages in later, one at a time inside a pass - and on virtual machines that hand free
    memory back to the host, memory touched soon after the previous call freed it is
    still backed (touched a second later it may cost several times more). The buffer's
    contents are garbage before and after: only for arrays that will be overwritten.
    """
    cdef Py_ssize_t n = buf.shape[0], k, nk, nt
    if n == 0 or page < 1:
        return
    nk = (n + page - 1) // page
    nt = n_chunks(nk, n_threads, 256)
    with nogil:
        for k in prange(nk, schedule='static', num_threads=nt):
            buf[k * page] = 0
