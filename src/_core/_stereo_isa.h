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

#include <stdlib.h>
#include <string.h>

#include "_stereo.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) \
    && !defined(NORBERT_NO_CLONES)
#define NORBERT_DISPATCH 1
#else
#define NORBERT_DISPATCH 0
#endif

/* the baseline first: it defines the row loops outside any target pragma */
#define NORBERT_ISA base
#include "_stereo_impl.h"
#undef NORBERT_ISA

#if NORBERT_DISPATCH
#pragma GCC push_options
#pragma GCC target("avx2")
#define NORBERT_ISA avx2
#include "_stereo_impl.h"
#undef NORBERT_ISA
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw,prefer-vector-width=512")
#define NORBERT_ISA avx512
#include "_stereo_impl.h"
#undef NORBERT_ISA
#pragma GCC pop_options
#endif

/* The best kernels the CPU runs, or lower ones if the environment variable NORBERT_ISA
 * says "base" or "avx2" (to check that every variant gives the same bits, and to rule a
 * variant out). */
static const norbert_stereo_ops *norbert_stereo_pick(void)
{
#if NORBERT_DISPATCH
    const char *want = getenv("NORBERT_ISA");
    int cap = 2;
    if (want && strcmp(want, "base") == 0)
        cap = 0;
    else if (want && strcmp(want, "avx2") == 0)
        cap = 1;
    if (cap >= 1 && __builtin_cpu_supports("avx2")) {
        if (cap >= 2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
            && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw"))
            return &norbert_stereo_table_avx512;
        return &norbert_stereo_table_avx2;
    }
#endif
    return &norbert_stereo_table_base;
}

#endif /* NORBERT_STEREO_ISA_H */
