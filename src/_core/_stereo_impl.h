/*
 * The two-channel kernels behind norbert_stereo_ops (_stereo.h), in portable C. Not a
 * public header: _stereo_isa.h includes it once per instruction set, with NORBERT_ISA
 * naming the set (base, avx2, avx512), the baseline first.
 *
 * The row loops are defined at the first include only, outside any target pragma, and
 * are always inlined: each entry point compiles them for its own instruction set. The
 * entry points are defined at every include, named by NORBERT_FN (solve becomes
 * norbert_stereo_solve_avx2), and gathered in that set's table, norbert_stereo_table_avx2;
 * nothing else refers to them by name.
 */
#ifndef NORBERT_PIVOT_TOL
#error "the 2x2 solve (_linalg.pxd's C) must come first: cimport norbert._core._linalg"
#endif

#ifndef NORBERT_STEREO_ROWS_DEFINED
#define NORBERT_STEREO_ROWS_DEFINED

#include <math.h>
#include <stdint.h>

#include "_stereo.h"

/* non-temporal stores of the final output (SSE2: every x86-64) */
#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h> /* SSE2, and SSE's _mm_stream_ps */
#define NORBERT_HAVE_STREAM 1
#else
#define NORBERT_HAVE_STREAM 0
#endif

/* The rows a loop reads and writes never overlap: no need for run-time alias checks
 * (GCC gives up vectorising beyond ten of them). */
#if defined(__GNUC__) && !defined(__clang__)
#define NORBERT_IVDEP _Pragma("GCC ivdep")
#elif defined(__clang__)
#define NORBERT_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#else
#define NORBERT_IVDEP
#endif

/* Adds one lane's source images (y0, y1) to the statistics: PSD, its sum, sum of y y^H
 * (rows q0..q3 of the running sums as separate restrict pointers: with offsets of one
 * pointer the vectoriser cannot prove the rows apart). */
NORBERT_ALWAYS_INLINE void stereo_accumulate(ptrdiff_t i, double y0r, double y0i, double y1r,
                                             double y1i, double *restrict po,
                                             double *restrict w, double *restrict q0,
                                             double *restrict q1, double *restrict q2,
                                             double *restrict q3)
{
    double p0 = y0r * y0r + y0i * y0i, p1 = y1r * y1r + y1i * y1i;
    double psd = (p0 + p1) * 0.5;
    po[i] = psd;
    w[i] = w[i] + psd;
    q0[i] = q0[i] + p0;
    q1[i] = q1[i] + (y0r * y1r + y0i * y1i);
    q2[i] = q2[i] + (y0i * y1r - y0r * y1i);
    q3[i] = q3[i] + p1;
}

/* One source's images y = p R z over a row, added to the statistics. A function of its
 * own so that every row is a restrict parameter. */
NORBERT_ALWAYS_INLINE void stereo_stats_row(
    ptrdiff_t n, const double *restrict p, const double *restrict r00,
    const double *restrict r01r, const double *restrict r01i, const double *restrict r11,
    const double *restrict z0r, const double *restrict z0i, const double *restrict z1r,
    const double *restrict z1i, double *restrict po, double *restrict w, double *restrict q0,
    double *restrict q1, double *restrict q2, double *restrict q3)
{
    ptrdiff_t i;
    NORBERT_IVDEP
    for (i = 0; i < n; i++) {
        double pj = p[i];
        double y0r = pj * (r00[i] * z0r[i] + (r01r[i] * z1r[i] - r01i[i] * z1i[i]));
        double y0i = pj * (r00[i] * z0i[i] + (r01r[i] * z1i[i] + r01i[i] * z1r[i]));
        double y1r = pj * ((r01r[i] * z0r[i] + r01i[i] * z0i[i]) + r11[i] * z1r[i]);
        double y1i = pj * ((r01r[i] * z0i[i] - r01i[i] * z0r[i]) + r11[i] * z1i[i]);
        stereo_accumulate(i, y0r, y0i, y1r, y1i, po, w, q0, q1, q2, q3);
    }
}

/* Soft-mask images of one source over a row (m = v / den, 0 where den = 0), added to the
 * statistics; a function of its own for the reason above. */
NORBERT_ALWAYS_INLINE void stereo_mask_row(
    ptrdiff_t n, const double *restrict v0, const double *restrict v1,
    const double *restrict den0, const double *restrict den1, const double *restrict x0r,
    const double *restrict x0i, const double *restrict x1r, const double *restrict x1i,
    double *restrict po, double *restrict w, double *restrict q0, double *restrict q1,
    double *restrict q2, double *restrict q3)
{
    ptrdiff_t i;
    NORBERT_IVDEP
    for (i = 0; i < n; i++) {
        /* 0/0 (every source silent and eps = 0) is a zero mask, not NaN */
        double m0 = den0[i] > 0.0 ? v0[i] / den0[i] : 0.0;
        double m1 = den1[i] > 0.0 ? v1[i] / den1[i] : 0.0;
        double y0r = m0 * x0r[i], y0i = m0 * x0i[i];
        double y1r = m1 * x1r[i], y1i = m1 * x1i[i];
        stereo_accumulate(i, y0r, y0i, y1r, y1i, po, w, q0, q1, q2, q3);
    }
}

/* Soft-mask images of one source over a row, written out (the filter's soft mask). */
NORBERT_ALWAYS_INLINE void stereo_mask_image_row(
    ptrdiff_t n, const double *restrict v0, const double *restrict v1,
    const double *restrict den0, const double *restrict den1, const double *restrict x0r,
    const double *restrict x0i, const double *restrict x1r, const double *restrict x1i,
    double *restrict y0r, double *restrict y0i, double *restrict y1r, double *restrict y1i)
{
    ptrdiff_t i;
    NORBERT_IVDEP
    for (i = 0; i < n; i++) {
        double m0 = den0[i] > 0.0 ? v0[i] / den0[i] : 0.0;
        double m1 = den1[i] > 0.0 ? v1[i] / den1[i] : 0.0;
        y0r[i] = m0 * x0r[i];
        y0i[i] = m0 * x0i[i];
        y1r[i] = m1 * x1r[i];
        y1i[i] = m1 * x1i[i];
    }
}

/* Given images of one source over a row, added to the statistics. */
NORBERT_ALWAYS_INLINE void stereo_given_row(
    ptrdiff_t n, const double *restrict y0r, const double *restrict y0i,
    const double *restrict y1r, const double *restrict y1i, double *restrict po,
    double *restrict w, double *restrict q0, double *restrict q1, double *restrict q2,
    double *restrict q3)
{
    ptrdiff_t i;
    NORBERT_IVDEP
    for (i = 0; i < n; i++)
        stereo_accumulate(i, y0r[i], y0i[i], y1r[i], y1i[i], po, w, q0, q1, q2, q3);
}

/* Soft-mask denominators den_c = eps + sum_j v_j,c into S (2, nb), with the input checks.
 * V (Cv, J, nb) with Cv = 1 (mono spectrograms) or 2. Returns Status bits. */
NORBERT_ALWAYS_INLINE int stereo_mask_den(ptrdiff_t n, ptrdiff_t nb, ptrdiff_t J, ptrdiff_t Cv,
                                          const double *restrict X, const double *restrict V,
                                          double eps, double *restrict S)
{
    const double *restrict x0r = X, *restrict x0i = X + nb, *restrict x1r = X + 2 * nb,
                 *restrict x1i = X + 3 * nb;
    const double *restrict V1 = V + (Cv > 1 ? J * nb : 0);
    double *restrict den0 = S, *restrict den1 = S + nb;
    ptrdiff_t i, j;
    int neg = 0, nonfinite = 0;
    for (i = 0; i < n; i++) {
        den0[i] = 0.0;
        den1[i] = 0.0;
    }
    for (j = 0; j < J; j++) {
        const double *restrict v0 = V + j * nb, *restrict v1 = V1 + j * nb;
        for (i = 0; i < n; i++) {
            den0[i] = den0[i] + v0[i];
            den1[i] = den1[i] + v1[i];
            neg |= (!(v0[i] >= 0.0) & (v0[i] == v0[i])) | (!(v1[i] >= 0.0) & (v1[i] == v1[i]));
            nonfinite |= (!(v0[i] < HUGE_VAL) & !(v0[i] < 0.0))
                         | (!(v1[i] < HUGE_VAL) & !(v1[i] < 0.0));
        }
    }
    for (i = 0; i < n; i++) {
        den0[i] = eps + den0[i];
        den1[i] = eps + den1[i];
        nonfinite |= (x0r[i] - x0r[i] != 0.0) | (x0i[i] - x0i[i] != 0.0)
                     | (x1r[i] - x1r[i] != 0.0) | (x1i[i] - x1i[i] != 0.0);
    }
    return (nonfinite ? NORBERT_NOT_FINITE_BIT : 0) | (neg ? NORBERT_NEGATIVE_BIT : 0);
}

/* The final y rows with non-temporal stores, when y is 16-byte aligned: the output of a
 * final pass is far larger than any cache, so it is written without first reading its
 * lines in. Return 0, having written nothing, when they cannot. */
NORBERT_ALWAYS_INLINE int stereo_stream_y_d(ptrdiff_t n, ptrdiff_t nb, ptrdiff_t J,
                                            const double *restrict Y, double s,
                                            double *restrict y)
{
#if NORBERT_HAVE_STREAM
    ptrdiff_t i, j;
    if (((uintptr_t)y & 15) != 0)
        return 0;
    for (i = 0; i < n; i++) {
        double *restrict row = y + 4 * J * i;
        for (j = 0; j < J; j++) {
            _mm_stream_pd(row + 2 * j, _mm_set_pd(Y[(4 * j + 1) * nb + i] * s,
                                                  Y[(4 * j) * nb + i] * s));
            _mm_stream_pd(row + 2 * J + 2 * j, _mm_set_pd(Y[(4 * j + 3) * nb + i] * s,
                                                          Y[(4 * j + 2) * nb + i] * s));
        }
    }
    _mm_sfence(); /* order them before later ordinary accesses */
    return 1;
#else
    (void)n, (void)nb, (void)J, (void)Y, (void)s, (void)y;
    return 0;
#endif
}

/* The same for complex64 rows with an even J (16 bytes: two sources of one channel). */
NORBERT_ALWAYS_INLINE int stereo_stream_y_f(ptrdiff_t n, ptrdiff_t nb, ptrdiff_t J,
                                            const double *restrict Y, double s,
                                            float *restrict y)
{
#if NORBERT_HAVE_STREAM
    ptrdiff_t i, j, c;
    if (((uintptr_t)y & 15) != 0 || J % 2 != 0)
        return 0;
    for (i = 0; i < n; i++) {
        float *restrict row = y + 4 * J * i;
        for (c = 0; c < 2; c++)
            for (j = 0; j < J; j += 2) {
                const double *restrict a = Y + (4 * j + 2 * c) * nb + i;
                const double *restrict b = Y + (4 * (j + 1) + 2 * c) * nb + i;
                _mm_stream_ps(row + 2 * J * c + 2 * j,
                              _mm_set_ps((float)(b[nb] * s), (float)(b[0] * s),
                                         (float)(a[nb] * s), (float)(a[0] * s)));
            }
    }
    _mm_sfence();
    return 1;
#else
    (void)n, (void)nb, (void)J, (void)Y, (void)s, (void)y;
    return 0;
#endif
}

#define NORBERT_CAT2(a, b) a##b
#define NORBERT_CAT(a, b) NORBERT_CAT2(a, b)
#define NORBERT_STR2(a) #a
#define NORBERT_STR(a) NORBERT_STR2(a)

#endif /* NORBERT_STEREO_ROWS_DEFINED */

/* ---------------------------------------------------------------------------------------
 * The entry points, once per instruction set. */

#define NORBERT_FN(name) NORBERT_CAT(norbert_stereo_##name##_, NORBERT_ISA)

/* z = Cxx^-1 x for every lane, Cxx = sum_j P_j R_j + sqrt_eps I; uses S (8, nb). */
static int NORBERT_FN(solve)(ptrdiff_t n, ptrdiff_t J, const double *restrict X,
                             const double *restrict P, ptrdiff_t ps, const double *restrict R,
                             double sqrt_eps, double *restrict S)
{
    const ptrdiff_t nb = NORBERT_STEREO_TILE;
    double *restrict a = S, *restrict d = S + nb, *restrict br = S + 2 * nb,
           *restrict bi = S + 3 * nb;
    double *restrict z0r = S + 4 * nb, *restrict z0i = S + 5 * nb,
           *restrict z1r = S + 6 * nb, *restrict z1i = S + 7 * nb;
    const double *restrict x0r = X, *restrict x0i = X + nb, *restrict x1r = X + 2 * nb,
                 *restrict x1i = X + 3 * nb;
    ptrdiff_t i, j;
    long long bad = 0;
    for (i = 0; i < n; i++) {
        a[i] = sqrt_eps;
        d[i] = sqrt_eps;
        br[i] = 0.0;
        bi[i] = 0.0;
    }
    for (j = 0; j < J; j++) {
        const double *restrict p = P + j * ps;
        const double *restrict r = R + 4 * j * nb;
        for (i = 0; i < n; i++) {
            a[i] = a[i] + p[i] * r[i];
            br[i] = br[i] + p[i] * r[nb + i];
            bi[i] = bi[i] + p[i] * r[2 * nb + i];
            d[i] = d[i] + p[i] * r[3 * nb + i];
        }
    }
    for (i = 0; i < n; i++) {
        double z[4], r = br[i], m = bi[i];
        double mx = norbert_ldl_2x2(a[i], d[i], r, m, x0r[i], x0i[i], x1r[i], x1i[i], z);
        z0r[i] = z[0];
        z0i[i] = z[1];
        z1r[i] = z[2];
        z1i[i] = z[3];
        /* 0 if every value is finite, NaN otherwise; kept in a's row (no longer needed)
         * and tested below, so that this loop has no integer flags and vectorises */
        a[i] = (z[0] - z[0]) + (z[1] - z[1]) + (z[2] - z[2]) + (z[3] - z[3]) + (mx - mx)
               + (r - r) + (m - m);
    }
    for (i = 0; i < n; i++)
        bad |= !(a[i] == 0.0);
    return bad ? NORBERT_NOT_FINITE_BIT : 0;
}

/* The filter's images y_j = P_j R_j z for every source, z from solve's S, into Y. */
static void NORBERT_FN(model_images)(ptrdiff_t n, ptrdiff_t J, const double *restrict P,
                                     ptrdiff_t ps, const double *restrict R,
                                     const double *restrict S, double *restrict Y)
{
    const ptrdiff_t nb = NORBERT_STEREO_TILE;
    const double *restrict z0r = S + 4 * nb, *restrict z0i = S + 5 * nb,
                 *restrict z1r = S + 6 * nb, *restrict z1i = S + 7 * nb;
    ptrdiff_t i, j;
    for (j = 0; j < J; j++) {
        const double *restrict p = P + j * ps;
        const double *restrict r = R + 4 * j * nb;
        double *restrict y0 = Y + 4 * j * nb, *restrict y1 = y0 + nb, *restrict y2 = y1 + nb,
               *restrict y3 = y2 + nb;
        for (i = 0; i < n; i++) {
            double pj = p[i], r00 = r[i], r01r = r[nb + i], r01i = r[2 * nb + i],
                   r11 = r[3 * nb + i];
            y0[i] = pj * (r00 * z0r[i] + (r01r * z1r[i] - r01i * z1i[i]));
            y1[i] = pj * (r00 * z0i[i] + (r01r * z1i[i] + r01i * z1r[i]));
            y2[i] = pj * ((r01r * z0r[i] + r01i * z0i[i]) + r11 * z1r[i]);
            y3[i] = pj * ((r01r * z0i[i] - r01i * z0r[i]) + r11 * z1i[i]);
        }
    }
}

/* The statistics of those images, added to Pout (new PSDs), W and Rn. */
static void NORBERT_FN(model_stats)(ptrdiff_t n, ptrdiff_t J, const double *restrict P,
                                    ptrdiff_t ps, const double *restrict R,
                                    const double *restrict S, double *restrict Pout,
                                    double *restrict W, double *restrict Rn)
{
    const ptrdiff_t nb = NORBERT_STEREO_TILE;
    const double *restrict z0r = S + 4 * nb, *restrict z0i = S + 5 * nb,
                 *restrict z1r = S + 6 * nb, *restrict z1i = S + 7 * nb;
    ptrdiff_t j;
    for (j = 0; j < J; j++) {
        const double *restrict r = R + 4 * j * nb;
        double *restrict q0 = Rn + 4 * j * nb;
        stereo_stats_row(n, P + j * ps, r, r + nb, r + 2 * nb, r + 3 * nb, z0r, z0i, z1r, z1i,
                         Pout + j * nb, W + j * nb, q0, q0 + nb, q0 + 2 * nb, q0 + 3 * nb);
    }
}

/* Statistics of the soft-mask estimate y_j,c = v_j,c / (eps + sum_k v_k,c) x_c;
 * S: scratch (2, nb). Returns the Status bits of the input checks. */
static int NORBERT_FN(softmask_stats)(ptrdiff_t n, ptrdiff_t J, ptrdiff_t Cv,
                                      const double *restrict X, const double *restrict V,
                                      double eps, double *restrict S, double *restrict Pout,
                                      double *restrict W, double *restrict Rn)
{
    const ptrdiff_t nb = NORBERT_STEREO_TILE;
    const double *restrict V1 = V + (Cv > 1 ? J * nb : 0);
    ptrdiff_t j;
    int bits = stereo_mask_den(n, nb, J, Cv, X, V, eps, S);
    for (j = 0; j < J; j++) {
        double *restrict q0 = Rn + 4 * j * nb;
        stereo_mask_row(n, V + j * nb, V1 + j * nb, S, S + nb, X, X + nb, X + 2 * nb,
                        X + 3 * nb, Pout + j * nb, W + j * nb, q0, q0 + nb, q0 + 2 * nb,
                        q0 + 3 * nb);
    }
    return bits;
}

/* The soft-mask estimate itself, into Y (J, 4, nb) (softmask, and wiener's initial
 * estimate without iterations); same operations as softmask_stats' images. */
static int NORBERT_FN(softmask_images)(ptrdiff_t n, ptrdiff_t J, ptrdiff_t Cv,
                                       const double *restrict X, const double *restrict V,
                                       double eps, double *restrict S, double *restrict Y)
{
    const ptrdiff_t nb = NORBERT_STEREO_TILE;
    const double *restrict V1 = V + (Cv > 1 ? J * nb : 0);
    ptrdiff_t j;
    int bits = stereo_mask_den(n, nb, J, Cv, X, V, eps, S);
    for (j = 0; j < J; j++)
        stereo_mask_image_row(n, V + j * nb, V1 + j * nb, S, S + nb, X, X + nb, X + 2 * nb,
                              X + 3 * nb, Y + 4 * j * nb, Y + (4 * j + 1) * nb,
                              Y + (4 * j + 2) * nb, Y + (4 * j + 3) * nb);
    return bits;
}

/* Statistics of given source images Y (J, 4, nb) (expectation_maximization's initial
 * estimate). NaN or inf in Y reach the sums, which finalize_covariance checks. */
static void NORBERT_FN(given_stats)(ptrdiff_t n, ptrdiff_t J, const double *restrict Y,
                                    double *restrict Pout, double *restrict W,
                                    double *restrict Rn)
{
    const ptrdiff_t nb = NORBERT_STEREO_TILE;
    ptrdiff_t j;
    for (j = 0; j < J; j++) {
        const double *restrict y0r = Y + 4 * j * nb, *restrict y0i = y0r + nb,
                     *restrict y1r = y0i + nb, *restrict y1i = y1r + nb;
        double *restrict q0 = Rn + 4 * j * nb;
        stereo_given_row(n, y0r, y0i, y1r, y1i, Pout + j * nb, W + j * nb, q0, q0 + nb,
                         q0 + 2 * nb, q0 + 3 * nb);
    }
}

/* Rows of bins <-> a dense interleaved (n, K) block (spectrograms (bins, C, J), PSDs
 * (bins, J)), for a constant K: the compiler turns the fixed inner loop into vector
 * permutes, where a run-time stride leaves one scalar move per element (about a quarter
 * of softmask's time in a profile). Used inside NORBERT_STEREO_COPIES; a copy, so the
 * same bits. */
#define NORBERT_ROWS_IN_K(K)                                                                 \
    if (ps == 1 && es == (K) && J == (K)) {                                                  \
        NORBERT_IVDEP                                                                        \
        for (i = 0; i < n; i++)                                                              \
            for (j = 0; j < (K); j++)                                                        \
                D[j * nb + i] = (double)P[(K) * i + j];                                      \
        return;                                                                              \
    }
#define NORBERT_ROWS_OUT_K(K, T)                                                             \
    if (ps == 1 && es == (K) && J == (K)) {                                                  \
        NORBERT_IVDEP                                                                        \
        for (i = 0; i < n; i++)                                                              \
            for (j = 0; j < (K); j++)                                                        \
                P[(K) * i + j] = (T)D[j * nb + i];                                           \
        return;                                                                              \
    }

/* Row copies between the callers' interleaved layouts and the tiles, one set per precision
 * (T = double for complex128 data, float for complex64). Plain loops with restrict and
 * constant strides, so the compiler vectorises the (de)interleaving. */
#define NORBERT_STEREO_COPIES(SUFFIX, T)                                                      \
/* x row (n, 2) complex -> X (4, nb), times scale */                                         \
static void NORBERT_FN(load_x_##SUFFIX)(ptrdiff_t n, const T *restrict x, double scale,      \
                                        double *restrict X)                                  \
{                                                                                            \
    const ptrdiff_t nb = NORBERT_STEREO_TILE;                                                \
    ptrdiff_t i;                                                                             \
    for (i = 0; i < n; i++) {                                                                \
        X[i] = (double)x[4 * i] * scale;                                                     \
        X[nb + i] = (double)x[4 * i + 1] * scale;                                            \
        X[2 * nb + i] = (double)x[4 * i + 2] * scale;                                        \
        X[3 * nb + i] = (double)x[4 * i + 3] * scale;                                        \
    }                                                                                        \
}                                                                                            \
/* Y (J, 4, nb) -> y row (n, 2, J) complex, times s; streamed when it can be (see          \
 * stereo_stream_y_d), else J = 4 and 2 spelled out for speed */                             \
static void NORBERT_FN(store_y_##SUFFIX)(ptrdiff_t n, ptrdiff_t J, const double *restrict Y, \
                                         double s, T *restrict y)                            \
{                                                                                            \
    const ptrdiff_t nb = NORBERT_STEREO_TILE;                                                \
    ptrdiff_t i, j;                                                                          \
    if (stereo_stream_y_##SUFFIX(n, nb, J, Y, s, y))                                         \
        return;                                                                              \
    if (J == 4) {                                                                            \
        for (i = 0; i < n; i++)                                                              \
            for (j = 0; j < 4; j++) {                                                        \
                y[16 * i + 2 * j] = (T)(Y[(4 * j) * nb + i] * s);                            \
                y[16 * i + 2 * j + 1] = (T)(Y[(4 * j + 1) * nb + i] * s);                    \
                y[16 * i + 8 + 2 * j] = (T)(Y[(4 * j + 2) * nb + i] * s);                    \
                y[16 * i + 8 + 2 * j + 1] = (T)(Y[(4 * j + 3) * nb + i] * s);                \
            }                                                                                \
    } else if (J == 2) {                                                                     \
        for (i = 0; i < n; i++)                                                              \
            for (j = 0; j < 2; j++) {                                                        \
                y[8 * i + 2 * j] = (T)(Y[(4 * j) * nb + i] * s);                             \
                y[8 * i + 2 * j + 1] = (T)(Y[(4 * j + 1) * nb + i] * s);                     \
                y[8 * i + 4 + 2 * j] = (T)(Y[(4 * j + 2) * nb + i] * s);                     \
                y[8 * i + 4 + 2 * j + 1] = (T)(Y[(4 * j + 3) * nb + i] * s);                 \
            }                                                                                \
    } else {                                                                                 \
        for (i = 0; i < n; i++)                                                              \
            for (j = 0; j < J; j++) {                                                        \
                y[4 * J * i + 2 * j] = (T)(Y[(4 * j) * nb + i] * s);                         \
                y[4 * J * i + 2 * j + 1] = (T)(Y[(4 * j + 1) * nb + i] * s);                 \
                y[4 * J * i + 2 * J + 2 * j] = (T)(Y[(4 * j + 2) * nb + i] * s);             \
                y[4 * J * i + 2 * J + 2 * j + 1] = (T)(Y[(4 * j + 3) * nb + i] * s);         \
            }                                                                                \
    }                                                                                        \
}                                                                                            \
/* y row (n, 2, J) complex -> Y (J, 4, nb), times scale (the inverse of store_y) */          \
static void NORBERT_FN(load_y_##SUFFIX)(ptrdiff_t n, ptrdiff_t J, const T *restrict y,       \
                                        double scale, double *restrict Y)                    \
{                                                                                            \
    const ptrdiff_t nb = NORBERT_STEREO_TILE;                                                \
    ptrdiff_t i, j;                                                                          \
    for (j = 0; j < J; j++)                                                                  \
        for (i = 0; i < n; i++) {                                                            \
            Y[(4 * j) * nb + i] = (double)y[4 * J * i + 2 * j] * scale;                      \
            Y[(4 * j + 1) * nb + i] = (double)y[4 * J * i + 2 * j + 1] * scale;              \
            Y[(4 * j + 2) * nb + i] = (double)y[4 * J * i + 2 * J + 2 * j] * scale;          \
            Y[(4 * j + 3) * nb + i] = (double)y[4 * J * i + 2 * J + 2 * j + 1] * scale;      \
        }                                                                                    \
}                                                                                            \
/* J rows of PSDs (stride ps) <-> (J, nb) doubles, and the (n, J) interleaved layout */      \
static void NORBERT_FN(rows_in_##SUFFIX)(ptrdiff_t n, ptrdiff_t J, const T *restrict P,      \
                                         ptrdiff_t ps, ptrdiff_t es, double *restrict D)     \
{                                                                                            \
    const ptrdiff_t nb = NORBERT_STEREO_TILE;                                                \
    ptrdiff_t i, j;                                                                          \
    if (es == 1) {                                                                           \
        for (j = 0; j < J; j++)                                                              \
            for (i = 0; i < n; i++)                                                          \
                D[j * nb + i] = (double)P[j * ps + i];                                       \
        return;                                                                              \
    }                                                                                        \
    NORBERT_ROWS_IN_K(8)                                                                     \
    NORBERT_ROWS_IN_K(4)                                                                     \
    NORBERT_ROWS_IN_K(2)                                                                     \
    for (j = 0; j < J; j++)                                                                  \
        for (i = 0; i < n; i++)                                                              \
            D[j * nb + i] = (double)P[j * ps + i * es];                                      \
}                                                                                            \
static void NORBERT_FN(rows_out_##SUFFIX)(ptrdiff_t n, ptrdiff_t J, const double *restrict D, \
                                          T *restrict P, ptrdiff_t ps, ptrdiff_t es)         \
{                                                                                            \
    const ptrdiff_t nb = NORBERT_STEREO_TILE;                                                \
    ptrdiff_t i, j;                                                                          \
    if (es == 1) {                                                                           \
        for (j = 0; j < J; j++)                                                              \
            for (i = 0; i < n; i++)                                                          \
                P[j * ps + i] = (T)D[j * nb + i];                                            \
        return;                                                                              \
    }                                                                                        \
    NORBERT_ROWS_OUT_K(4, T)                                                                 \
    NORBERT_ROWS_OUT_K(2, T)                                                                 \
    for (j = 0; j < J; j++)                                                                  \
        for (i = 0; i < n; i++)                                                              \
            P[j * ps + i * es] = (T)D[j * nb + i];                                           \
}

NORBERT_STEREO_COPIES(d, double)
NORBERT_STEREO_COPIES(f, float)
#undef NORBERT_STEREO_COPIES
#undef NORBERT_ROWS_IN_K
#undef NORBERT_ROWS_OUT_K

static const norbert_stereo_ops NORBERT_FN(table) = {
    .isa = NORBERT_STR(NORBERT_ISA),
    .solve = NORBERT_FN(solve),
    .model_images = NORBERT_FN(model_images),
    .model_stats = NORBERT_FN(model_stats),
    .softmask_stats = NORBERT_FN(softmask_stats),
    .softmask_images = NORBERT_FN(softmask_images),
    .given_stats = NORBERT_FN(given_stats),
    .load_x_d = NORBERT_FN(load_x_d),
    .load_x_f = NORBERT_FN(load_x_f),
    .load_y_d = NORBERT_FN(load_y_d),
    .load_y_f = NORBERT_FN(load_y_f),
    .store_y_d = NORBERT_FN(store_y_d),
    .store_y_f = NORBERT_FN(store_y_f),
    .rows_in_d = NORBERT_FN(rows_in_d),
    .rows_in_f = NORBERT_FN(rows_in_f),
    .rows_out_d = NORBERT_FN(rows_out_d),
    .rows_out_f = NORBERT_FN(rows_out_f),
};

#undef NORBERT_FN
