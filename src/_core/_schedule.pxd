# Work sharing for one pass: (block of frames, range of bins) items handed to the threads
# of one parallel region (C, _schedule.h). Private: not part of the public API.

cdef extern from "_schedule.h" nogil:
    const Py_ssize_t MAX_RANGES "NORBERT_MAX_RANGES"
    ctypedef struct schedule "norbert_schedule":
        int threads_used
    void schedule_init "norbert_schedule_init"(schedule* s, Py_ssize_t n_blocks,
                                               Py_ssize_t n_ranges, Py_ssize_t max_lead)
    void schedule_free "norbert_schedule_free"(schedule* s)
    int schedule_take "norbert_schedule_take"(schedule* s, Py_ssize_t* b, Py_ssize_t* k)
    void schedule_done "norbert_schedule_done"(schedule* s, Py_ssize_t k)
    void schedule_joined "norbert_schedule_joined"(schedule* s)


# Bins per range: a multiple of the stereo tile, at least `least`, and wide enough that a
# pass has at most MAX_RANGES ranges. Any width gives the same bits (bins are independent).
cdef inline Py_ssize_t range_bins(Py_ssize_t F, Py_ssize_t least) noexcept nogil:
    cdef Py_ssize_t w = (F + MAX_RANGES - 1) // MAX_RANGES
    if w < least:
        w = least
    return (w + 63) // 64 * 64
