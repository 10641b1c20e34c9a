/*
 * Two-channel EM kernels on rows of bins stored structure-of-arrays, so that compilers
 * vectorise them across bins (the stereo case is what nearly every user runs).
 *
 * A "row" is one frame of a tile of n <= nb bins. Arrays are [component][nb] doubles:
 *   X  (4, nb)     x0.re, x0.im, x1.re, x1.im            (already multiplied by scale)
 *   P  (J, nb)     PSDs v_j
 *   R  (J, 4, nb)  R_j[0,0], Re R_j[0,1], Im R_j[0,1], R_j[1,1]   (R_j is Hermitian)
 *   Rn (J, 4, nb)  running sums of y_j y_j^H, same components
 *   W  (J, nb)     running sums of the PSDs
 *   Y  (J, 4, nb)  source images y_j (filter rows)
 * Every lane (bin) is computed with the same IEEE operations in the same order whatever
 * its position, vector width or clone, so results do not depend on threads or tiling.
 * Build with -ffp-contract=off: a fused multiply-add would change the bits between builds.
 *
 * Return value: bit flags, 1 = NaN/inf met, 2 = negative spectrogram value.
 */
#ifndef NORBERT_STEREO_H
#define NORBERT_STEREO_H

#include <math.h>
#include <stddef.h>

#ifndef NORBERT_PIVOT_TOL
#define NORBERT_PIVOT_TOL 1e-13
#endif

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && defined(__GLIBC__) && !defined(NORBERT_NO_CLONES)
/* one AVX2 clone (4 doubles per instruction) picked at load time, plus the baseline */
#define NORBERT_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define NORBERT_CLONES
#endif

#define NORBERT_STEREO_TILE 64

/* scratch doubles one tile needs (see the Cython driver for the split) */
static inline ptrdiff_t norbert_stereo_scratch(ptrdiff_t J)
{
    return (ptrdiff_t)NORBERT_STEREO_TILE * (12 + 17 * J) + 8;
}

/* Adds one lane's source images (y0, y1) to the statistics: PSD, its sum, sum of y y^H. */
static inline void norbert_stereo_accumulate(ptrdiff_t i, ptrdiff_t nb, double y0r, double y0i,
                                             double y1r, double y1i, double *restrict po,
                                             double *restrict w, double *restrict q)
{
    double p0 = y0r * y0r + y0i * y0i, p1 = y1r * y1r + y1i * y1i;
    double psd = (p0 + p1) * 0.5;
    po[i] = psd;
    w[i] = w[i] + psd;
    q[i] = q[i] + p0;
    q[nb + i] = q[nb + i] + (y0r * y1r + y0i * y1i);
    q[2 * nb + i] = q[2 * nb + i] + (y0i * y1r - y0r * y1i);
    q[3 * nb + i] = q[3 * nb + i] + p1;
}

/* z = Cxx^-1 x for every lane, Cxx = sum_j P_j R_j + sqrt_eps I; uses S (8, nb). */
NORBERT_CLONES
static int norbert_stereo_solve(ptrdiff_t n, ptrdiff_t nb, ptrdiff_t J,
                                const double *restrict X, const double *restrict P,
                                const double *restrict R, double sqrt_eps,
                                double *restrict S)
{
    double *restrict a = S, *restrict d = S + nb, *restrict br = S + 2 * nb,
           *restrict bi = S + 3 * nb;
    double *restrict z0r = S + 4 * nb, *restrict z0i = S + 5 * nb,
           *restrict z1r = S + 6 * nb, *restrict z1i = S + 7 * nb;
    const double *restrict x0r = X, *restrict x0i = X + nb, *restrict x1r = X + 2 * nb,
                 *restrict x1i = X + 3 * nb;
    ptrdiff_t i, j;
    int bad = 0;
    for (i = 0; i < n; i++) {
        a[i] = sqrt_eps;
        d[i] = sqrt_eps;
        br[i] = 0.0;
        bi[i] = 0.0;
    }
    for (j = 0; j < J; j++) {
        const double *restrict p = P + j * nb;
        const double *restrict r = R + 4 * j * nb;
        for (i = 0; i < n; i++) {
            a[i] = a[i] + p[i] * r[i];
            br[i] = br[i] + p[i] * r[nb + i];
            bi[i] = bi[i] + p[i] * r[2 * nb + i];
            d[i] = d[i] + p[i] * r[3 * nb + i];
        }
    }
    for (i = 0; i < n; i++) {
        /* the 2x2 LDL^H of _linalg.pxd's solve_hermitian_2x2, lane by lane */
        double ai = a[i], di = d[i], r = br[i], m = bi[i];
        double mx = ai > di ? ai : di;
        double tol = NORBERT_PIVOT_TOL * mx;
        double inv_a, inv_d2, lr, li, d2, u1r, u1i, v0r, v0i, v1r, v1i;
        ai = ai < tol ? tol : ai;
        ai = mx > 0.0 ? ai : 1.0;           /* Cxx = 0: any pivot, z is zeroed below */
        inv_a = 1.0 / ai;
        lr = r * inv_a;
        li = m * inv_a;
        d2 = di - (r * lr + m * li);
        d2 = d2 < tol ? tol : d2;
        d2 = mx > 0.0 ? d2 : 1.0;
        inv_d2 = 1.0 / d2;
        u1r = x1r[i] - (lr * x0r[i] + li * x0i[i]);
        u1i = x1i[i] - (lr * x0i[i] - li * x0r[i]);
        v1r = u1r * inv_d2;
        v1i = u1i * inv_d2;
        v0r = x0r[i] * inv_a - (lr * v1r - li * v1i);
        v0i = x0i[i] * inv_a - (lr * v1i + li * v1r);
        /* all sources silent (Cxx = 0): z = 0 */
        v0r = mx > 0.0 ? v0r : 0.0;
        v0i = mx > 0.0 ? v0i : 0.0;
        v1r = mx > 0.0 ? v1r : 0.0;
        v1i = mx > 0.0 ? v1i : 0.0;
        z0r[i] = v0r;
        z0i[i] = v0i;
        z1r[i] = v1r;
        z1i[i] = v1i;
        bad |= (v0r - v0r != 0.0) | (v0i - v0i != 0.0) | (v1r - v1r != 0.0)
               | (v1i - v1i != 0.0) | !(mx < HUGE_VAL) | (r - r != 0.0) | (m - m != 0.0);
    }
    return bad ? 1 : 0;
}

/* y_j = P_j R_j z for every source; into Y (filter) or into the statistics (Pout, W, Rn). */
NORBERT_CLONES
static void norbert_stereo_images(ptrdiff_t n, ptrdiff_t nb, ptrdiff_t J,
                                  const double *restrict P, const double *restrict R,
                                  const double *restrict S, double *restrict Y,
                                  double *restrict Pout, double *restrict W,
                                  double *restrict Rn)
{
    const double *restrict z0r = S + 4 * nb, *restrict z0i = S + 5 * nb,
                 *restrict z1r = S + 6 * nb, *restrict z1i = S + 7 * nb;
    ptrdiff_t i, j;
    for (j = 0; j < J; j++) {
        const double *restrict p = P + j * nb;
        const double *restrict r = R + 4 * j * nb;
        if (Y) {
            double *restrict y = Y + 4 * j * nb;
            for (i = 0; i < n; i++) {
                double pj = p[i], r00 = r[i], r01r = r[nb + i], r01i = r[2 * nb + i],
                       r11 = r[3 * nb + i];
                y[i] = pj * (r00 * z0r[i] + (r01r * z1r[i] - r01i * z1i[i]));
                y[nb + i] = pj * (r00 * z0i[i] + (r01r * z1i[i] + r01i * z1r[i]));
                y[2 * nb + i] = pj * ((r01r * z0r[i] + r01i * z0i[i]) + r11 * z1r[i]);
                y[3 * nb + i] = pj * ((r01r * z0i[i] - r01i * z0r[i]) + r11 * z1i[i]);
            }
        } else {
            double *restrict po = Pout + j * nb, *restrict w = W + j * nb;
            double *restrict q = Rn + 4 * j * nb;
            for (i = 0; i < n; i++) {
                double pj = p[i], r00 = r[i], r01r = r[nb + i], r01i = r[2 * nb + i],
                       r11 = r[3 * nb + i];
                double y0r = pj * (r00 * z0r[i] + (r01r * z1r[i] - r01i * z1i[i]));
                double y0i = pj * (r00 * z0i[i] + (r01r * z1i[i] + r01i * z1r[i]));
                double y1r = pj * ((r01r * z0r[i] + r01i * z0i[i]) + r11 * z1r[i]);
                double y1i = pj * ((r01r * z0i[i] - r01i * z0r[i]) + r11 * z1i[i]);
                norbert_stereo_accumulate(i, nb, y0r, y0i, y1r, y1i, po, w, q);
            }
        }
    }
}

/* Statistics of the soft-mask estimate y_j,c = v_j,c / (eps + sum_k v_k,c) x_c.
 * V (Cv, J, nb) with Cv = 1 (mono spectrograms) or 2; S: scratch (2, nb). */
NORBERT_CLONES
static int norbert_stereo_softmask_stats(ptrdiff_t n, ptrdiff_t nb, ptrdiff_t J,
                                         ptrdiff_t Cv, const double *restrict X,
                                         const double *restrict V, double eps,
                                         double *restrict S, double *restrict Pout,
                                         double *restrict W, double *restrict Rn)
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
    for (j = 0; j < J; j++) {
        const double *restrict v0 = V + j * nb, *restrict v1 = V1 + j * nb;
        double *restrict po = Pout + j * nb, *restrict w = W + j * nb;
        double *restrict q = Rn + 4 * j * nb;
        for (i = 0; i < n; i++) {
            /* 0/0 (every source silent and eps = 0) is a zero mask, not NaN */
            double m0 = den0[i] > 0.0 ? v0[i] / den0[i] : 0.0;
            double m1 = den1[i] > 0.0 ? v1[i] / den1[i] : 0.0;
            double y0r = m0 * x0r[i], y0i = m0 * x0i[i];
            double y1r = m1 * x1r[i], y1i = m1 * x1i[i];
            norbert_stereo_accumulate(i, nb, y0r, y0i, y1r, y1i, po, w, q);
        }
    }
    return (nonfinite ? 1 : 0) | (neg ? 2 : 0);
}

#endif /* NORBERT_STEREO_H */
