/*
 * Two-channel EM kernels on rows of bins stored structure-of-arrays, so that compilers
 * vectorise them across bins (the stereo case is what nearly every user runs). This
 * header is what their callers see: the table of kernels, the tile and its scratch, the
 * status bits. The kernels themselves are _stereo_impl.h, compiled per instruction set
 * by _stereo_isa.h into the module norbert._core._stereo, which picks one at import.
 *
 * A "row" is one frame of a tile of n <= nb bins, nb = NORBERT_STEREO_TILE, a constant of
 * the kernels (so their offsets compile to immediates). Arrays are [component][nb] doubles:
 *   X  (4, nb)     x0.re, x0.im, x1.re, x1.im            (already multiplied by scale)
 *   P  (J, ps)     PSDs v_j; rows ps apart, so the passes can read and write the PSD
 *                  storage in place when it is laid out (frames, J, bins) (ps = bins)
 *   R  (J, 4, nb)  R_j[0,0], Re R_j[0,1], Im R_j[0,1], R_j[1,1]   (R_j is Hermitian)
 *   Rn (J, 4, nb)  running sums of y_j y_j^H, same components
 *   W  (J, nb)     running sums of the PSDs
 *   Y  (J, 4, nb)  source images y_j (filter rows)
 * Every lane (bin) is computed with the same IEEE operations in the same order whatever
 * its position, vector width or instruction set, so results do not depend on threads,
 * tiling or the CPU. Build with -ffp-contract=off: a fused multiply-add would change the
 * bits between builds.
 */
#ifndef NORBERT_STEREO_H
#define NORBERT_STEREO_H

#include <stddef.h>

#define NORBERT_STEREO_TILE 64

/* What the kernels report: Status bits, 1 << Status (_common.pxd), OR-ed over rows and
 * threads and mapped back by worst_status. _stereo.pyx checks these against Status. */
#define NORBERT_NOT_FINITE_BIT (1 << 2) /* Status.NOT_FINITE: NaN or inf met */
#define NORBERT_NEGATIVE_BIT (1 << 4)   /* Status.NEGATIVE: a negative spectrogram value */

/* A tile's scratch, in rows of NORBERT_STEREO_TILE doubles: each pass lays out the areas
 * it uses one after another, in this order (_stats.pyx, _filter.pyx). */
enum norbert_stereo_rows {
    NORBERT_ROWS_X = 4,    /* x, scaled */
    NORBERT_ROWS_P = 1,    /* per source: PSDs in double, when not read in place */
    NORBERT_ROWS_V = 2,    /* per source: spectrograms of one or two channels */
    NORBERT_ROWS_R = 4,    /* per source: R_j, or given images */
    NORBERT_ROWS_RN = 4,   /* per source: running sums of y y^H */
    NORBERT_ROWS_W = 1,    /* per source: running sums of the PSDs */
    NORBERT_ROWS_S = 8,    /* the solve's Cxx and z, or the soft mask's denominators */
    NORBERT_ROWS_POUT = 1, /* per source: the new PSDs */
    NORBERT_ROWS_Y = 4     /* per source: source images */
};

/* Doubles of scratch one thread needs for J sources: the largest of the passes' layouts. */
static inline ptrdiff_t norbert_stereo_scratch(ptrdiff_t J)
{
    ptrdiff_t fixed = NORBERT_ROWS_X + NORBERT_ROWS_S;
    ptrdiff_t stats = J * (NORBERT_ROWS_P + NORBERT_ROWS_V + NORBERT_ROWS_R + NORBERT_ROWS_RN
                           + NORBERT_ROWS_W + NORBERT_ROWS_POUT);  /* any statistics pass */
    ptrdiff_t filter = J * (NORBERT_ROWS_P + NORBERT_ROWS_R + NORBERT_ROWS_Y);  /* MODEL */
    ptrdiff_t softmask = J * (NORBERT_ROWS_V + NORBERT_ROWS_Y);     /* the soft-mask filter */
    ptrdiff_t rows = stats > filter ? stats : filter;
    rows = rows > softmask ? rows : softmask;
    return (ptrdiff_t)NORBERT_STEREO_TILE * (fixed + rows);
}

/* Asks for the next frame's rows while this frame's are computed: a tile touches short
 * pieces of rows a whole frame apart, which hardware prefetchers do not follow. Into the
 * L2 cache (locality 1), not L1: a tile's own rows nearly fill L1, and rows fetched into
 * it a frame early pushed them out (softmask 9 %, wiener(iterations=3) 4-7 % slower on
 * one thread, AMD EPYC with AVX-512, in paired runs). */
#ifndef NORBERT_PF_LOC
#define NORBERT_PF_LOC 1
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

/* The kernels of one instruction set. Callers get the table in use from
 * norbert._core._stereo (stereo_ops()) and call its members like functions. They work
 * on the first n lanes of rows NORBERT_STEREO_TILE doubles long; their int results are
 * Status bits. */
typedef struct norbert_stereo_ops {
    const char *isa; /* "avx512", "avx2" or "base" */
    /* z = Cxx^-1 x for every lane, Cxx = sum_j P_j R_j + sqrt_eps I; z into S (8, nb) */
    int (*solve)(ptrdiff_t n, ptrdiff_t J, const double *X, const double *P, ptrdiff_t ps,
                 const double *R, double sqrt_eps, double *S);
    /* the filter's images y_j = P_j R_j z, z from solve's S, into Y */
    void (*model_images)(ptrdiff_t n, ptrdiff_t J, const double *P, ptrdiff_t ps,
                         const double *R, const double *S, double *Y);
    /* the statistics of those images: new PSDs into Pout (J, nb), sums added to W, Rn */
    void (*model_stats)(ptrdiff_t n, ptrdiff_t J, const double *P, ptrdiff_t ps,
                        const double *R, const double *S, double *Pout, double *W,
                        double *Rn);
    /* the soft-mask estimate y_j,c = v_j,c / (eps + sum_k v_k,c) x_c, into Y; V (Cv, J, nb),
     * S scratch (2, nb); checks v and x */
    int (*softmask_images)(ptrdiff_t n, ptrdiff_t J, ptrdiff_t Cv, const double *X,
                           const double *V, double eps, double *S, double *Y);
    /* the statistics of the same estimate */
    int (*softmask_stats)(ptrdiff_t n, ptrdiff_t J, ptrdiff_t Cv, const double *X,
                          const double *V, double eps, double *S, double *Pout, double *W,
                          double *Rn);
    /* the statistics of given images Y */
    void (*given_stats)(ptrdiff_t n, ptrdiff_t J, const double *Y, double *Pout, double *W,
                        double *Rn);
    /* Row copies between the callers' layouts and the tiles, per precision: _d for
     * complex128 / float64 data, _f for complex64 / float32. */
    /* x row (n, 2) complex -> X, times scale */
    void (*load_x_d)(ptrdiff_t n, const double *x, double scale, double *X);
    void (*load_x_f)(ptrdiff_t n, const float *x, double scale, double *X);
    /* y row (n, 2, J) complex -> Y (J, 4, nb), times scale */
    void (*load_y_d)(ptrdiff_t n, ptrdiff_t J, const double *y, double scale, double *Y);
    void (*load_y_f)(ptrdiff_t n, ptrdiff_t J, const float *y, double scale, double *Y);
    /* Y -> y row, times s; streamed past the caches when y is 16-byte aligned */
    void (*store_y_d)(ptrdiff_t n, ptrdiff_t J, const double *Y, double s, double *y);
    void (*store_y_f)(ptrdiff_t n, ptrdiff_t J, const double *Y, double s, float *y);
    /* J rows of PSDs (rows ps apart, bins es apart) <-> D (J, nb) doubles */
    void (*rows_in_d)(ptrdiff_t n, ptrdiff_t J, const double *P, ptrdiff_t ps, ptrdiff_t es,
                      double *D);
    void (*rows_in_f)(ptrdiff_t n, ptrdiff_t J, const float *P, ptrdiff_t ps, ptrdiff_t es,
                      double *D);
    void (*rows_out_d)(ptrdiff_t n, ptrdiff_t J, const double *D, double *P, ptrdiff_t ps,
                       ptrdiff_t es);
    void (*rows_out_f)(ptrdiff_t n, ptrdiff_t J, const double *D, float *P, ptrdiff_t ps,
                       ptrdiff_t es);
} norbert_stereo_ops;

#endif /* NORBERT_STEREO_H */
