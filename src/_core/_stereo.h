/*
 * Two-channel EM kernels on rows of bins stored structure-of-arrays, so that compilers
 * vectorise them across bins (the stereo case is what nearly every user runs).
 *
 * A "row" is one frame of a tile of n <= nb bins. Arrays are [component][nb] doubles:
 *   X  (4, nb)     x0.re, x0.im, x1.re, x1.im            (already multiplied by scale)
 *   P  (J, ps)     PSDs v_j; rows ps apart, so the passes can read and write the PSD
 *                  storage in place when it is laid out (frames, J, bins) (ps = bins)
 *   R  (J, 4, nb)  R_j[0,0], Re R_j[0,1], Im R_j[0,1], R_j[1,1]   (R_j is Hermitian)
 *   Rn (J, 4, nb)  running sums of y_j y_j^H, same components
 *   W  (J, nb)     running sums of the PSDs
 *   Y  (J, 4, nb)  source images y_j (filter rows)
 * Every lane (bin) is computed with the same IEEE operations in the same order whatever
 * its position, vector width or clone, so results do not depend on threads or tiling.
 * Build with -ffp-contract=off: a fused multiply-add would change the bits between builds.
 *
 * Return value: Status bits (see below).
 */
#ifndef NORBERT_STEREO_H
#define NORBERT_STEREO_H

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* The lanes' 2x2 solve is _linalg.pxd's (C there, so both use one definition). */
#ifndef NORBERT_PIVOT_TOL
#error "the 2x2 solve (_linalg.pxd's C) must come first: cimport norbert._core._linalg"
#endif

/* GCC on x86-64 builds the kernels three times, for AVX-512 (8 doubles per instruction),
 * AVX2 (4) and the baseline, and picks one per call from the CPU. (GCC 12's target_clones
 * attribute left the solve's main loop scalar; a target pragma around the included
 * kernels does not.) Every lane's arithmetic is the same IEEE operations in all of them,
 * without fused multiply-adds, so they give the same bits. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) \
    && !defined(NORBERT_NO_CLONES)
#define NORBERT_DISPATCH 1
#else
#define NORBERT_DISPATCH 0
#endif

/* non-temporal stores of the final output (SSE2: every x86-64) */
#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h> /* SSE2, and SSE's _mm_stream_ps */
#include <stdint.h>
#define NORBERT_HAVE_STREAM 1
#else
#define NORBERT_HAVE_STREAM 0
#endif

#define NORBERT_CAT2(a, b) a##b
#define NORBERT_CAT(a, b) NORBERT_CAT2(a, b)
#define NORBERT_FN(name) NORBERT_CAT(name, NORBERT_ISA)

#define NORBERT_STEREO_TILE 64

/* What the kernels report: Status bits, 1 << Status (_common.pxd), OR-ed over rows and
 * threads and mapped back by worst_status. */
#define NORBERT_NOT_FINITE_BIT (1 << 2) /* Status.NOT_FINITE: NaN or inf met */
#define NORBERT_NEGATIVE_BIT (1 << 4)   /* Status.NEGATIVE: a negative spectrogram value */

/* The rows a loop reads and writes never overlap: no need for run-time alias checks
 * (GCC gives up vectorising beyond ten of them). */
#if defined(__GNUC__) && !defined(__clang__)
#define NORBERT_IVDEP _Pragma("GCC ivdep")
#elif defined(__clang__)
#define NORBERT_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#else
#define NORBERT_IVDEP
#endif

/* Asks for the next frame's rows while this frame's are computed: a tile touches short
 * pieces of rows a whole frame apart, which hardware prefetchers do not follow. */
#ifndef NORBERT_PF_LOC
#define NORBERT_PF_LOC 3
#endif
static inline void norbert_prefetch(const void *p, ptrdiff_t bytes, int write)
{
#if defined(__GNUC__) && !defined(NORBERT_NO_PREFETCH)
    const char *c = (const char *)p;
    ptrdiff_t o;
    if (write)
        for (o = 0; o < bytes; o += 64)
            __builtin_prefetch(c + o, 1, NORBERT_PF_LOC);
    else
        for (o = 0; o < bytes; o += 64)
            __builtin_prefetch(c + o, 0, NORBERT_PF_LOC);
#else
    (void)p;
    (void)bytes;
    (void)write;
#endif
}

/* scratch doubles one tile needs (see the Cython driver for the split) */
static inline ptrdiff_t norbert_stereo_scratch(ptrdiff_t J)
{
    return (ptrdiff_t)NORBERT_STEREO_TILE * (12 + 17 * J) + 8;
}

#if NORBERT_DISPATCH
#pragma GCC push_options
#pragma GCC target("avx2")
#define NORBERT_ISA _avx2
#include "_stereo_impl.h"
#undef NORBERT_ISA
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw,prefer-vector-width=512")
#define NORBERT_ISA _avx512
#include "_stereo_impl.h"
#undef NORBERT_ISA
#pragma GCC pop_options
/* 0 baseline, 1 AVX2, 2 AVX-512: the best the CPU has, or less if the environment
 * variable NORBERT_ISA says "base" or "avx2" (to check that every variant gives the same
 * bits, and to rule a variant out). Read once per module; threads that race to fill the
 * cache all store the same value. */
static int norbert_isa(void)
{
    static int level = -1;
    int l = __atomic_load_n(&level, __ATOMIC_RELAXED);
    if (l < 0) {
        const char *want = getenv("NORBERT_ISA");
        l = 0;
        if (__builtin_cpu_supports("avx2"))
            l = 1;
        if (l == 1 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
            && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw"))
            l = 2;
        if (want && strcmp(want, "base") == 0)
            l = 0;
        else if (want && strcmp(want, "avx2") == 0 && l > 1)
            l = 1;
        __atomic_store_n(&level, l, __ATOMIC_RELAXED);
    }
    return l;
}
#endif
#define NORBERT_ISA _base
#include "_stereo_impl.h"
#undef NORBERT_ISA

#if NORBERT_DISPATCH
#define NORBERT_CALL(name, args)                                                             \
    (norbert_isa() == 2 ? name##_avx512 args                                                \
                        : norbert_isa() == 1 ? name##_avx2 args : name##_base args)
#else
#define NORBERT_CALL(name, args) (name##_base args)
#endif

/* z = Cxx^-1 x for every lane, Cxx = sum_j P_j R_j + sqrt_eps I; uses S (8, nb).
 * Returns NORBERT_NOT_FINITE_BIT if a NaN or inf was met. */
static inline int norbert_stereo_solve(ptrdiff_t n, ptrdiff_t nb, ptrdiff_t J, const double *X,
                                       const double *P, ptrdiff_t ps, const double *R,
                                       double sqrt_eps, double *S)
{
    return NORBERT_CALL(norbert_stereo_solve, (n, nb, J, X, P, ps, R, sqrt_eps, S));
}

/* y_j = P_j R_j z for every source; into Y (filter) or into the statistics (Pout, W, Rn). */
static inline void norbert_stereo_images(ptrdiff_t n, ptrdiff_t nb, ptrdiff_t J, const double *P,
                                         ptrdiff_t ps, const double *R, const double *S,
                                         double *Y, double *Pout, ptrdiff_t pos, double *W,
                                         double *Rn)
{
    NORBERT_CALL(norbert_stereo_images, (n, nb, J, P, ps, R, S, Y, Pout, pos, W, Rn));
}

/* Statistics of the soft-mask estimate; returns the Status bits of the checks of v, x. */
static inline int norbert_stereo_softmask_stats(ptrdiff_t n, ptrdiff_t nb, ptrdiff_t J,
                                                ptrdiff_t Cv, const double *X, const double *V,
                                                double eps, double *S, double *Pout,
                                                ptrdiff_t pos, double *W, double *Rn)
{
    return NORBERT_CALL(norbert_stereo_softmask_stats,
                        (n, nb, J, Cv, X, V, eps, S, Pout, pos, W, Rn));
}

/* The soft-mask estimate into Y (J, 4, nb); returns softmask_stats' Status bits. */
static inline int norbert_stereo_softmask_images(ptrdiff_t n, ptrdiff_t nb, ptrdiff_t J,
                                                 ptrdiff_t Cv, const double *X, const double *V,
                                                 double eps, double *S, double *Y)
{
    return NORBERT_CALL(norbert_stereo_softmask_images, (n, nb, J, Cv, X, V, eps, S, Y));
}

/* Statistics of given source images Y (J, 4, nb). */
static inline void norbert_stereo_given_stats(ptrdiff_t n, ptrdiff_t nb, ptrdiff_t J,
                                              const double *Y, double *Pout, ptrdiff_t pos,
                                              double *W, double *Rn)
{
    NORBERT_CALL(norbert_stereo_given_stats, (n, nb, J, Y, Pout, pos, W, Rn));
}

#define NORBERT_STEREO_COPY_CALLS(SUFFIX, T)                                                 \
static inline void norbert_stereo_load_y_##SUFFIX(ptrdiff_t n, ptrdiff_t nb, ptrdiff_t J,    \
                                                  const T *y, double scale, double *Y)      \
{                                                                                           \
    NORBERT_CALL(norbert_stereo_load_y_##SUFFIX, (n, nb, J, y, scale, Y));                  \
}                                                                                           \
static inline void norbert_stereo_load_x_##SUFFIX(ptrdiff_t n, ptrdiff_t nb, const T *x,    \
                                                  double scale, double *X)                  \
{                                                                                           \
    NORBERT_CALL(norbert_stereo_load_x_##SUFFIX, (n, nb, x, scale, X));                     \
}                                                                                           \
static inline void norbert_stereo_store_y_##SUFFIX(ptrdiff_t n, ptrdiff_t nb, ptrdiff_t J,   \
                                                   const double *Y, double s, T *y)         \
{                                                                                           \
    NORBERT_CALL(norbert_stereo_store_y_##SUFFIX, (n, nb, J, Y, s, y));                     \
}                                                                                           \
static inline void norbert_rows_in_##SUFFIX(ptrdiff_t n, ptrdiff_t nb, ptrdiff_t J,         \
                                            const T *P, ptrdiff_t ps, ptrdiff_t es,         \
                                            double *D)                                      \
{                                                                                           \
    NORBERT_CALL(norbert_rows_in_##SUFFIX, (n, nb, J, P, ps, es, D));                       \
}                                                                                           \
static inline void norbert_rows_out_##SUFFIX(ptrdiff_t n, ptrdiff_t nb, ptrdiff_t J,        \
                                             const double *D, T *P, ptrdiff_t ps,           \
                                             ptrdiff_t es)                                  \
{                                                                                           \
    NORBERT_CALL(norbert_rows_out_##SUFFIX, (n, nb, J, D, P, ps, es));                      \
}

NORBERT_STEREO_COPY_CALLS(d, double)
NORBERT_STEREO_COPY_CALLS(f, float)

/* The final pass's y rows: streamed past the caches when y is 16-byte aligned. */
static inline void norbert_stereo_write_y_d(ptrdiff_t n, ptrdiff_t nb, ptrdiff_t J,
                                            const double *Y, double s, double *y)
{
#if NORBERT_HAVE_STREAM
    if (((uintptr_t)y & 15) == 0) {
        NORBERT_CALL(norbert_stereo_stream_y_d, (n, nb, J, Y, s, y));
        return;
    }
#endif
    norbert_stereo_store_y_d(n, nb, J, Y, s, y);
}

static inline void norbert_stereo_write_y_f(ptrdiff_t n, ptrdiff_t nb, ptrdiff_t J,
                                            const double *Y, double s, float *y)
{
#if NORBERT_HAVE_STREAM
    if (((uintptr_t)y & 15) == 0 && J % 2 == 0) {
        NORBERT_CALL(norbert_stereo_stream_y_f, (n, nb, J, Y, s, y));
        return;
    }
#endif
    norbert_stereo_store_y_f(n, nb, J, Y, s, y);
}

#endif /* NORBERT_STEREO_H */
