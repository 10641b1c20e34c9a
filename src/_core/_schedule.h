/*
 * Work sharing for one pass over a track: one parallel region, many small work items.
 *
 * A pass is cut into items (block of frames b, range of bins k). Items of one range must
 * run in block order (a bin's sums over frames are taken in frame order, so results do
 * not depend on the thread count); items of different ranges are independent. A batch of
 * independent problems (elements) numbers its ranges element by element (see next_item
 * in _schedule.pxd), so one region covers every element's bins and short elements still
 * give every thread work. Threads
 * take items from this table until none is left: a range is held by one thread at a
 * time, and a free range with the fewest blocks done is taken first, so the ranges
 * advance together through the track (frame blocks stay warm in the caches) and a
 * thread that the operating system deschedules holds up only the one range it holds
 * while the running threads carry the others.
 *
 * Why not one parallel region per block of frames: each region ends in a barrier, and on
 * a machine whose cores are busy with other processes a thread that is not running when
 * the barrier is reached costs the whole team a scheduler time slice. A track makes
 * hundreds of such regions per call, which made the default thread count slower than one
 * thread on a busy machine. One region per pass pays that at most once a pass.
 *
 * `max_lead` (> 0) bounds how many blocks a range may run ahead of the slowest one: the
 * final pass of `wiener` writes its output over the PSDs of later frames, and the driver
 * keeps the PSDs that the lead could reach in a separate array (see _drivers.py).
 *
 * The table is guarded by one OpenMP lock (portable to every OpenMP runtime); it is held
 * only to pick an item (a scan of at most NORBERT_MAX_RANGES counters), never while an
 * item is computed.
 */
#ifndef NORBERT_SCHEDULE_H
#define NORBERT_SCHEDULE_H

#include <stddef.h>

#ifdef _OPENMP
#include <omp.h>
#else
typedef int omp_lock_t;
static void omp_init_lock(omp_lock_t *l) { (void)l; }
static void omp_destroy_lock(omp_lock_t *l) { (void)l; }
static void omp_set_lock(omp_lock_t *l) { (void)l; }
static void omp_unset_lock(omp_lock_t *l) { (void)l; }
#endif

#if defined(_WIN32)
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#define norbert_yield() ((void)SwitchToThread())
#else
#include <sched.h>
#define norbert_yield() ((void)sched_yield())
#endif

/* Ranges of bins per pass: enough that every thread finds free ranges, few enough that a
 * scan stays cheap; the range width grows with the number of bins beyond it. */
#define NORBERT_MAX_RANGES 256

typedef struct {
    ptrdiff_t n_blocks, n_ranges, max_lead;
    ptrdiff_t next[NORBERT_MAX_RANGES]; /* the next block of each range */
    char busy[NORBERT_MAX_RANGES];      /* 1 while a thread computes an item of the range */
    int threads_used;                   /* threads that computed at least one item */
    omp_lock_t lock;
} norbert_schedule;

static void norbert_schedule_init(norbert_schedule *s, ptrdiff_t n_blocks, ptrdiff_t n_ranges,
                                  ptrdiff_t max_lead)
{
    ptrdiff_t k;
    s->n_blocks = n_blocks;
    s->n_ranges = n_ranges;
    s->max_lead = max_lead;
    s->threads_used = 0;
    for (k = 0; k < n_ranges; k++) {
        s->next[k] = 0;
        s->busy[k] = 0;
    }
    omp_init_lock(&s->lock);
}

static void norbert_schedule_free(norbert_schedule *s) { omp_destroy_lock(&s->lock); }

/* Marks the item of range k taken by the caller as done (call before taking the next). */
static void norbert_schedule_done(norbert_schedule *s, ptrdiff_t k)
{
    omp_set_lock(&s->lock);
    s->next[k] += 1;
    s->busy[k] = 0;
    omp_unset_lock(&s->lock);
}

/* Takes the next item into (*b, *k): returns 1, or 0 when the pass has nothing left that
 * this thread could take. Waits (yielding the core) while the only items left are behind
 * ranges other threads hold or beyond the lead bound: they become free soon. */
static int norbert_schedule_take(norbert_schedule *s, ptrdiff_t *b, ptrdiff_t *k)
{
    ptrdiff_t i, best, least, left;
    for (;;) {
        best = -1;
        least = s->n_blocks;
        left = 0;
        omp_set_lock(&s->lock);
        for (i = 0; i < s->n_ranges; i++)
            if (s->next[i] < least)
                least = s->next[i];
        for (i = 0; i < s->n_ranges; i++) {
            ptrdiff_t nx = s->next[i];
            if (nx >= s->n_blocks)
                continue;
            /* blocks someone could still take: all but the one its holder is computing */
            left += s->n_blocks - nx - s->busy[i];
            if (s->busy[i] || (s->max_lead > 0 && nx > least + s->max_lead))
                continue;
            if (best < 0 || nx < s->next[best])
                best = i;
        }
        if (best >= 0) {
            s->busy[best] = 1;
            *b = s->next[best];
            *k = best;
        }
        omp_unset_lock(&s->lock);
        if (best >= 0)
            return 1;
        if (left == 0)
            return 0;
        norbert_yield();
    }
}

/* Records that one more thread took part (for tests: `last_pass_threads`). */
static void norbert_schedule_joined(norbert_schedule *s)
{
    omp_set_lock(&s->lock);
    s->threads_used += 1;
    omp_unset_lock(&s->lock);
}

#endif /* NORBERT_SCHEDULE_H */
