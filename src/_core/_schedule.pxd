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
# pass over `n_elements` independent problems (a batch) has at most MAX_RANGES ranges (the
# caller keeps n_elements <= MAX_RANGES). Any width gives the same bits (bins are
# independent).
cdef inline Py_ssize_t range_bins(Py_ssize_t F, Py_ssize_t n_elements,
                                  Py_ssize_t least) noexcept nogil:
    cdef Py_ssize_t per_element = MAX_RANGES // n_elements if n_elements > 0 else MAX_RANGES
    cdef Py_ssize_t w
    if per_element < 1:
        per_element = 1
    w = (F + per_element - 1) // per_element
    if w < least:
        w = least
    return (w + 63) // 64 * 64


# Takes the next item of a pass: element e's frames [t0, t1) (counted from the first frame
# of the call: element e holds frames e * T .. e * T + T) and bins [f0, f1) (counted within
# the element) of range k (ranges are numbered element by element, `per_element` each).
# Records the calling thread's first item (threads_used); returns False when none is left.
cdef inline bint next_item(schedule* s, Py_ssize_t block_frames, Py_ssize_t width,
                           Py_ssize_t per_element, Py_ssize_t T, Py_ssize_t F,
                           bint* joined, Py_ssize_t* k, Py_ssize_t* e, Py_ssize_t* t0,
                           Py_ssize_t* t1, Py_ssize_t* f0, Py_ssize_t* f1) noexcept nogil:
    cdef Py_ssize_t b = 0, first
    if not schedule_take(s, &b, k):
        return False
    if not joined[0]:
        schedule_joined(s)
        joined[0] = True
    e[0] = k[0] // per_element
    first = e[0] * T
    t0[0] = first + b * block_frames
    t1[0] = first + T if b * block_frames + block_frames > T else t0[0] + block_frames
    f0[0] = (k[0] - e[0] * per_element) * width
    f1[0] = F if f0[0] + width > F else f0[0] + width
    return True
