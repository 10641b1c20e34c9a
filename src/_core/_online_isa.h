/*
 * The online filter's tile kernels (_online_tile.h) compiled once per instruction set, and
 * the choice among them. Included by _online.pyx only, which calls norbert_online_pick()
 * once, at import.
 *
 * As _stereo_isa.h does for two channels: GCC on x86-64 builds the kernels for AVX-512,
 * AVX2 and the baseline, with the same IEEE operations in every lane and no fused
 * multiply-adds, so all three give the same bits; other compilers build the baseline.
 * NORBERT_ISA=base or avx2 in the environment caps the choice, as for the stereo kernels.
 */
#ifndef NORBERT_ONLINE_ISA_H
#define NORBERT_ONLINE_ISA_H

#include "_isa.h"

/* GCC's unroll-and-jam (-O3) fuses two iterations of the product y = R z's loop over
 * channels around the loop over bins, which then stays scalar: keep the bins innermost. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("no-loop-unroll-and-jam")
#endif

#define NORBERT_ISA_IMPL "_online_tile.h"
#include "_isa_variants.h"
#undef NORBERT_ISA_IMPL

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

/* The table of the variant norbert_isa_level() picks (_isa.h). */
static const norbert_online_ops *norbert_online_pick(void)
{
    switch (norbert_isa_level()) {
#if NORBERT_DISPATCH
    case 2:
        return &norbert_online_table_avx512;
    case 1:
        return &norbert_online_table_avx2;
#endif
    default:
        return &norbert_online_table_base;
    }
}

#endif /* NORBERT_ONLINE_ISA_H */
