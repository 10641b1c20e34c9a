/*
 * The online filter's per-bin maths for three or more channels, NORBERT_ONLINE_TILE bins at
 * a time with the bins in the innermost loop, so that every loop is a vector loop. Not a
 * public header: _online_isa.h includes it once per instruction set, with NORBERT_ISA naming
 * the set (base, avx2, avx512), the baseline first.
 *
 * A tile's scratch is structure-of-arrays: row r of an area is NB = NORBERT_ONLINE_TILE
 * doubles, one per bin (lane), at area + r * NB. The rows are
 *     X  (C, 2)          x * scale of a frame, (re, im)
 *     V  (Cv, J)         its spectrograms
 *     Y  (C, J, 2)       source images: the initial estimate, then the filtered frame
 *     P  (J)             PSDs of the initial estimate
 *     W  (J)             the bin's sums of P with forgetting
 *     Rs (J, NP, 2)      the bin's sums of y0 y0^H with forgetting, upper triangle: pair k of
 *                        (c, d), c <= d, in row-major order, NP = C (C + 1) / 2
 * and the filter's own: R (J, NP, 2), A (C, C, 2) (Cxx, lower triangle, then L and D),
 * z (C, 2), and one row for max(diag(Cxx)).
 *
 * Each lane runs the same IEEE operations in the same order as the per-point code this
 * replaces (_stats.pxd's point_stats, _online.pyx's _filter_point, _filter.pxd's model_point,
 * _linalg.pxd's solve_hermitian_ldl), without fused multiply-adds (-ffp-contract=off), so a
 * bin's result does not depend on its lane, its tile, the thread or the instruction set.
 * Lanes past the end of the bins hold zeros, which compute to zeros without a flag.
 */
#ifndef NORBERT_PIVOT_TOL
#error "the pivot guard (_linalg.pxd's C) must come first: cimport norbert._core._linalg"
#endif

#ifndef NORBERT_ONLINE_SHARED
#define NORBERT_ONLINE_SHARED

#include <math.h>
#include <stddef.h>

/* Bins per tile: one AVX-512 vector of doubles, two AVX2 ones. A tile's scratch for 6
 * channels and 3 sources (about 400 rows) then stays in a 32 kB L1 cache. */
#define NORBERT_ONLINE_TILE 8

/* The rows of a tile never overlap: no run-time alias checks. */
#if defined(__GNUC__) && !defined(__clang__)
#define NORBERT_ONLINE_LANES _Pragma("GCC ivdep") _Pragma("GCC unroll 1") for (i = 0; i < NORBERT_ONLINE_TILE; i++)
#elif defined(__clang__)
#define NORBERT_ONLINE_LANES                                 \
    _Pragma("clang loop vectorize(assume_safety)") for (i = 0; i < NORBERT_ONLINE_TILE; i++)
#else
#define NORBERT_ONLINE_LANES for (i = 0; i < NORBERT_ONLINE_TILE; i++)
#endif

/* Asks for the cache lines of nbytes at p. The next tile's held frame (x and P of frame
 * t - L) was last touched L frames ago and has left L2 since; its lines are few per tile
 * and far between, which the hardware prefetchers do not follow. */
static inline void norbert_online_prefetch(const void *p, ptrdiff_t nbytes)
{
#if defined(__GNUC__) || defined(__clang__)
    ptrdiff_t off;
    for (off = 0; off < nbytes; off += 64)
        __builtin_prefetch((const char *)p + off, 0, 3);
#else
    (void)p;
    (void)nbytes;
#endif
}

/* A tile's scratch areas (see above), and beyond the kernels' own: F, the filter's R, A, z
 * and max rows; Xf (C, 2) and Pf (J), x * scale and P of the frame filtered; den (Cv) and
 * M (Cv, J), the soft mask's. */
typedef struct {
    double *X, *V, *Y, *P, *W, *Rs, *F, *Xf, *Pf, *den, *M;
} norbert_online_tile;

/* Rows of each area, in order; the total is the scratch a tile needs, in rows of NB. */
static ptrdiff_t norbert_online_tile_rows(ptrdiff_t C, ptrdiff_t Cv, ptrdiff_t J,
                                          ptrdiff_t *rows)
{
    ptrdiff_t NP = C * (C + 1) / 2, k, total = 0;
    ptrdiff_t r[11];
    r[0] = 2 * C;                                  /* X */
    r[1] = Cv * J;                                 /* V */
    r[2] = 2 * C * J;                              /* Y */
    r[3] = J;                                      /* P */
    r[4] = J;                                      /* W */
    r[5] = 2 * J * NP;                             /* Rs */
    r[6] = 2 * J * NP + 2 * C * C + 2 * C + 1;     /* F: R, A, z, max */
    r[7] = 2 * C;                                  /* Xf */
    r[8] = J;                                      /* Pf */
    r[9] = Cv;                                     /* den */
    r[10] = Cv * J;                                /* M */
    for (k = 0; k < 11; k++) {
        if (rows)
            rows[k] = r[k];
        total += r[k];
    }
    return total;
}

/* The areas of a tile whose scratch starts at base. */
static void norbert_online_tile_at(ptrdiff_t C, ptrdiff_t Cv, ptrdiff_t J, double *base,
                                   norbert_online_tile *t)
{
    ptrdiff_t r[11];
    double **area[11];
    ptrdiff_t k;
    area[0] = &t->X; area[1] = &t->V; area[2] = &t->Y; area[3] = &t->P; area[4] = &t->W;
    area[5] = &t->Rs; area[6] = &t->F; area[7] = &t->Xf; area[8] = &t->Pf;
    area[9] = &t->den; area[10] = &t->M;
    norbert_online_tile_rows(C, Cv, J, r);
    for (k = 0; k < 11; k++) {
        *area[k] = base;
        base += r[k] * NORBERT_ONLINE_TILE;
    }
}

typedef struct {
    const char *isa;
    /* Y = the soft mask of V on X (Cv = 1 or C), as _mask.pxd's softmask_point without
     * logit; den (Cv) and M (Cv, J) are scratch rows. */
    void (*softmask)(ptrdiff_t C, ptrdiff_t Cv, ptrdiff_t J, const double *X,
                     const double *V, double eps, double *den, double *M, double *Y);
    /* P = mean_c |Y_c|^2; W = forget W + P; Rs = forget Rs + Y Y^H (upper triangle). */
    void (*stats)(ptrdiff_t C, ptrdiff_t J, const double *Y, double forget, double *P,
                  double *W, double *Rs);
    /* Y = P_j R_j (sum_k P_k R_k + sqrt(eps) I)^-1 X with R_j = Rs_j / (eps + W_j);
     * work: the F rows. Returns 1 where a lane is not finite (NOT_FINITE), else 0. */
    int (*filter)(ptrdiff_t C, ptrdiff_t J, const double *X, const double *P,
                  const double *Rs, const double *W, double eps, double sqrt_eps,
                  double *work, double *Y);
} norbert_online_ops;

#define NORBERT_ONLINE_CAT2(a, b) a##b
#define NORBERT_ONLINE_CAT(a, b) NORBERT_ONLINE_CAT2(a, b)
#define NORBERT_ONLINE_STR2(a) #a
#define NORBERT_ONLINE_STR(a) NORBERT_ONLINE_STR2(a)

#endif /* NORBERT_ONLINE_SHARED */

#define NB NORBERT_ONLINE_TILE
#define ROW(area, r) ((area) + (r) * NB)
#define NORBERT_ONLINE_FN(name) NORBERT_ONLINE_CAT(norbert_online_##name##_, NORBERT_ISA)

static void NORBERT_ONLINE_FN(softmask)(ptrdiff_t C, ptrdiff_t Cv, ptrdiff_t J,
                                        const double *X, const double *V, double eps,
                                        double *den, double *M, double *Y)
{
    ptrdiff_t c, cv, j, i;
    for (cv = 0; cv < Cv; cv++) {
        double *dn = ROW(den, cv);
        NORBERT_ONLINE_LANES dn[i] = 0.0;
        for (j = 0; j < J; j++) {
            const double *vj = ROW(V, cv * J + j);
            NORBERT_ONLINE_LANES dn[i] = dn[i] + vj[i];
        }
        NORBERT_ONLINE_LANES dn[i] = eps + dn[i];
        for (j = 0; j < J; j++) {
            const double *vj = ROW(V, cv * J + j);
            double *m = ROW(M, cv * J + j);
            /* 0/0 (every source silent and eps = 0) is a zero mask, not NaN */
            NORBERT_ONLINE_LANES m[i] = dn[i] > 0.0 ? vj[i] / dn[i] : 0.0;
        }
    }
    for (c = 0; c < C; c++) {
        const double *xr = ROW(X, 2 * c), *xi = ROW(X, 2 * c + 1);
        cv = Cv > 1 ? c : 0;
        for (j = 0; j < J; j++) {
            const double *m = ROW(M, cv * J + j);
            double *yr = ROW(Y, (c * J + j) * 2), *yi = ROW(Y, (c * J + j) * 2 + 1);
            NORBERT_ONLINE_LANES {
                yr[i] = m[i] * xr[i];
                yi[i] = m[i] * xi[i];
            }
        }
    }
}

static void NORBERT_ONLINE_FN(stats)(ptrdiff_t C, ptrdiff_t J, const double *Y,
                                     double forget, double *P, double *W, double *Rs)
{
    ptrdiff_t NP = C * (C + 1) / 2, c, d, j, k, i;
    for (j = 0; j < J; j++) {
        double *pp = ROW(P, j), *w = ROW(W, j);
        double p[NB];
        NORBERT_ONLINE_LANES p[i] = 0.0;
        for (c = 0; c < C; c++) {
            const double *cr = ROW(Y, (c * J + j) * 2), *ci = ROW(Y, (c * J + j) * 2 + 1);
            NORBERT_ONLINE_LANES p[i] = (p[i] + cr[i] * cr[i]) + ci[i] * ci[i];
        }
        NORBERT_ONLINE_LANES {
            p[i] = p[i] / (double)C;
            pp[i] = p[i];
            w[i] = forget * w[i] + p[i];
        }
        k = 0;
        for (c = 0; c < C; c++) {
            const double *cr = ROW(Y, (c * J + j) * 2), *ci = ROW(Y, (c * J + j) * 2 + 1);
            for (d = c; d < C; d++, k++) {
                const double *dr = ROW(Y, (d * J + j) * 2), *di = ROW(Y, (d * J + j) * 2 + 1);
                double *qr = ROW(Rs, (j * NP + k) * 2), *qi = ROW(Rs, (j * NP + k) * 2 + 1);
                NORBERT_ONLINE_LANES {
                    qr[i] = forget * qr[i] + (cr[i] * dr[i] + ci[i] * di[i]);
                    qi[i] = forget * qi[i] + (ci[i] * dr[i] - cr[i] * di[i]);
                }
            }
        }
    }
}

/* Pair index of (c, d), c <= d, in the row-major upper triangle of a C x C matrix. */
static inline ptrdiff_t NORBERT_ONLINE_FN(pair)(ptrdiff_t C, ptrdiff_t c, ptrdiff_t d)
{
    return c * C - c * (c - 1) / 2 + (d - c);
}

static int NORBERT_ONLINE_FN(filter)(ptrdiff_t C, ptrdiff_t J, const double *X,
                                     const double *P, const double *Rs, const double *W,
                                     double eps, double sqrt_eps, double *work, double *Y)
{
    ptrdiff_t NP = C * (C + 1) / 2, c, d, j, k, m, i;
    double *R = work, *A = R + 2 * J * NP * NB, *z = A + 2 * C * C * NB, *mx = z + 2 * C * NB;
    double bad[NB];
    int bits = 0;
    /* R_j = Rs_j / (eps + W_j): one division per source (0 for a source silent so far) */
    for (j = 0; j < J; j++) {
        const double *w = ROW(W, j);
        double winv[NB];
        NORBERT_ONLINE_LANES {
            double s = eps + w[i];
            winv[i] = s > 0.0 ? 1.0 / s : 0.0;
        }
        for (k = 0; k < 2 * NP; k++) {
            const double *q = ROW(Rs, j * 2 * NP + k);
            double *r = ROW(R, j * 2 * NP + k);
            NORBERT_ONLINE_LANES r[i] = q[i] * winv[i];
        }
    }
    /* Cxx = sum_j P_j R_j + sqrt(eps) I, lower triangle: the entries on and below the
     * diagonal are conj of the stored upper ones (the diagonal's imaginary part is -0).
     * Sums run in local rows (sr, si, ...): they stay in registers, where a row of the
     * scratch would be stored and loaded again for every term. */
    for (c = 0; c < C; c++) {
        for (d = 0; d <= c; d++) {
            double sr[NB], si[NB];
            double diag = c == d ? sqrt_eps : 0.0;
            k = NORBERT_ONLINE_FN(pair)(C, d, c);
            NORBERT_ONLINE_LANES {
                sr[i] = diag;
                si[i] = 0.0;
            }
            for (j = 0; j < J; j++) {
                const double *p = ROW(P, j);
                const double *rr = ROW(R, (j * NP + k) * 2), *ri = ROW(R, (j * NP + k) * 2 + 1);
                NORBERT_ONLINE_LANES {
                    sr[i] = sr[i] + p[i] * rr[i];
                    si[i] = si[i] + p[i] * -ri[i];
                }
            }
            {
                double *ar = ROW(A, (c * C + d) * 2), *ai = ROW(A, (c * C + d) * 2 + 1);
                NORBERT_ONLINE_LANES {
                    ar[i] = sr[i];
                    ai[i] = si[i];
                }
            }
        }
    }
    /* LDL^H with the pivot guard, lane by lane as solve_hermitian_ldl: max(diag), NaN or
     * inf on the diagonal is NOT_FINITE, Cxx = 0 (max <= 0) gives z = 0 */
    NORBERT_ONLINE_LANES {
        mx[i] = 0.0;
        bad[i] = 0.0;
    }
    for (k = 0; k < C; k++) {
        const double *dk = ROW(A, (k * C + k) * 2);
        NORBERT_ONLINE_LANES {
            bad[i] = dk[i] < INFINITY ? bad[i] : 1.0;
            mx[i] = dk[i] > mx[i] ? dk[i] : mx[i];
        }
    }
    for (k = 0; k < C; k++) {
        double *dkp = ROW(A, (k * C + k) * 2);
        double dk[NB];
        NORBERT_ONLINE_LANES dk[i] = dkp[i];
        for (m = 0; m < k; m++) {
            const double *kr = ROW(A, (k * C + m) * 2), *ki = ROW(A, (k * C + m) * 2 + 1);
            const double *dm = ROW(A, (m * C + m) * 2);
            NORBERT_ONLINE_LANES dk[i] = dk[i] - (kr[i] * kr[i] + ki[i] * ki[i]) * dm[i];
        }
        NORBERT_ONLINE_LANES {
            double tol = NORBERT_PIVOT_TOL * mx[i];
            double piv = dk[i] < tol ? tol : dk[i];
            dk[i] = mx[i] > 0.0 ? piv : 1.0;   /* Cxx = 0: any pivot, z is zeroed below */
            dkp[i] = dk[i];
        }
        for (c = k + 1; c < C; c++) {
            double *lrp = ROW(A, (c * C + k) * 2), *lip = ROW(A, (c * C + k) * 2 + 1);
            double sr[NB], si[NB];
            NORBERT_ONLINE_LANES {
                sr[i] = lrp[i];
                si[i] = lip[i];
            }
            for (m = 0; m < k; m++) {
                const double *lr = ROW(A, (c * C + m) * 2), *li = ROW(A, (c * C + m) * 2 + 1);
                const double *kr = ROW(A, (k * C + m) * 2), *ki = ROW(A, (k * C + m) * 2 + 1);
                const double *dm = ROW(A, (m * C + m) * 2);
                NORBERT_ONLINE_LANES {
                    double ur = kr[i] * dm[i], ui = ki[i] * dm[i];
                    sr[i] = sr[i] - (lr[i] * ur + li[i] * ui);
                    si[i] = si[i] - (li[i] * ur - lr[i] * ui);
                }
            }
            NORBERT_ONLINE_LANES {
                lrp[i] = sr[i] / dk[i];
                lip[i] = si[i] / dk[i];
            }
        }
    }
    /* forward: L u = b, with b = x * scale */
    for (c = 0; c < C; c++) {
        const double *xr = ROW(X, 2 * c), *xi = ROW(X, 2 * c + 1);
        double ur[NB], ui[NB];
        NORBERT_ONLINE_LANES {
            ur[i] = xr[i];
            ui[i] = xi[i];
        }
        for (k = 0; k < c; k++) {
            const double *lr = ROW(A, (c * C + k) * 2), *li = ROW(A, (c * C + k) * 2 + 1);
            const double *br = ROW(z, 2 * k), *bi = ROW(z, 2 * k + 1);
            NORBERT_ONLINE_LANES {
                ur[i] = ur[i] - (lr[i] * br[i] - li[i] * bi[i]);
                ui[i] = ui[i] - (lr[i] * bi[i] + li[i] * br[i]);
            }
        }
        {
            double *zr = ROW(z, 2 * c), *zi = ROW(z, 2 * c + 1);
            NORBERT_ONLINE_LANES {
                zr[i] = ur[i];
                zi[i] = ui[i];
            }
        }
    }
    /* diagonal, then backward: L^H z = D^-1 u */
    for (c = C - 1; c >= 0; c--) {
        double *zr = ROW(z, 2 * c), *zi = ROW(z, 2 * c + 1);
        const double *dc = ROW(A, (c * C + c) * 2);
        double ur[NB], ui[NB];
        NORBERT_ONLINE_LANES {
            ur[i] = zr[i] / dc[i];
            ui[i] = zi[i] / dc[i];
        }
        for (k = c + 1; k < C; k++) {
            const double *lr = ROW(A, (k * C + c) * 2), *li = ROW(A, (k * C + c) * 2 + 1);
            const double *br = ROW(z, 2 * k), *bi = ROW(z, 2 * k + 1);
            NORBERT_ONLINE_LANES {
                ur[i] = ur[i] - (lr[i] * br[i] + li[i] * bi[i]);
                ui[i] = ui[i] - (lr[i] * bi[i] - li[i] * br[i]);
            }
        }
        /* Cxx = 0 gives z = 0; NaN or inf left in z (from x, or an overflow) is NOT_FINITE */
        NORBERT_ONLINE_LANES {
            zr[i] = mx[i] > 0.0 ? ur[i] : 0.0;
            zi[i] = mx[i] > 0.0 ? ui[i] : 0.0;
            bad[i] = zr[i] - zr[i] == 0.0 && zi[i] - zi[i] == 0.0 ? bad[i] : 1.0;
        }
    }
    for (i = 0; i < NB; i++)
        bits |= bad[i] != 0.0;
    /* y_j = P_j R_j z, R_j's entries below the diagonal (and on it) as conj of the upper */
    for (j = 0; j < J; j++) {
        const double *p = ROW(P, j);
        for (c = 0; c < C; c++) {
            double *yrp = ROW(Y, (c * J + j) * 2), *yip = ROW(Y, (c * J + j) * 2 + 1);
            double yr[NB], yi[NB];
            NORBERT_ONLINE_LANES {
                yr[i] = 0.0;
                yi[i] = 0.0;
            }
            for (d = 0; d < C; d++) {
                const double *zr = ROW(z, 2 * d), *zi = ROW(z, 2 * d + 1);
                const double *rr, *ri;
                double sign = d > c ? 1.0 : -1.0;
                k = d > c ? NORBERT_ONLINE_FN(pair)(C, c, d) : NORBERT_ONLINE_FN(pair)(C, d, c);
                rr = ROW(R, (j * NP + k) * 2);
                ri = ROW(R, (j * NP + k) * 2 + 1);
                NORBERT_ONLINE_LANES {
                    double im = sign * ri[i];
                    yr[i] = (yr[i] + rr[i] * zr[i]) - im * zi[i];
                    yi[i] = (yi[i] + rr[i] * zi[i]) + im * zr[i];
                }
            }
            NORBERT_ONLINE_LANES {
                yrp[i] = p[i] * yr[i];
                yip[i] = p[i] * yi[i];
            }
        }
    }
    return bits;
}

static const norbert_online_ops NORBERT_ONLINE_FN(table) = {
    .isa = NORBERT_ONLINE_STR(NORBERT_ISA),
    .softmask = NORBERT_ONLINE_FN(softmask),
    .stats = NORBERT_ONLINE_FN(stats),
    .filter = NORBERT_ONLINE_FN(filter),
};

#undef NORBERT_ONLINE_FN
#undef ROW
#undef NB
