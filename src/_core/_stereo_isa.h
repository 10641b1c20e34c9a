/*
 * The two-channel kernels compiled once per instruction set, and the choice among them.
 * Included by _stereo.pyx only, which calls norbert_stereo_pick() once, at import.
 *
 * GCC on x86-64 builds the kernels three times, for AVX-512 (8 doubles per instruction),
 * AVX2 (4) and the baseline. (GCC 12's target_clones attribute left the solve's main loop
 * scalar; a target pragma around the included kernels does not.) Every lane's arithmetic
 * is the same IEEE operations in all of them, without fused multiply-adds, so they give
 * the same bits. Other compilers and architectures build the baseline only.
 */
#ifndef NORBERT_STEREO_ISA_H
#define NORBERT_STEREO_ISA_H

#include "_isa.h"
#include "_stereo.h"

/* the baseline first (_isa_variants.h): it defines the row loops outside any target pragma */
#define NORBERT_ISA_IMPL "_stereo_impl.h"
#include "_isa_variants.h"
#undef NORBERT_ISA_IMPL

/* The table of the variant norbert_isa_level() picks (_isa.h). */
static const norbert_stereo_ops *norbert_stereo_pick(void)
{
    switch (norbert_isa_level()) {
#if NORBERT_DISPATCH
    case 2:
        return &norbert_stereo_table_avx512;
    case 1:
        return &norbert_stereo_table_avx2;
#endif
    default:
        return &norbert_stereo_table_base;
    }
}

#endif /* NORBERT_STEREO_ISA_H */
