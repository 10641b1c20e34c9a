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


# Takes the next item of a pass into frames [t0, t1) and bins [f0, f1) of range k, records
# the calling thread's first item (threads_used), and returns False when none is left.
cdef inline bint next_item(schedule* s, Py_ssize_t block_frames, Py_ssize_t width,
                           Py_ssize_t T, Py_ssize_t F, bint* joined, Py_ssize_t* k,
                           Py_ssize_t* t0, Py_ssize_t* t1, Py_ssize_t* f0,
                           Py_ssize_t* f1) noexcept nogil:
    cdef Py_ssize_t b = 0
    if not schedule_take(s, &b, k):
        return False
    if not joined[0]:
        schedule_joined(s)
        joined[0] = True
    t0[0] = b * block_frames
    t1[0] = T if t0[0] + block_frames > T else t0[0] + block_frames
    f0[0] = k[0] * width
    f1[0] = F if f0[0] + width > F else f0[0] + width
    return True
