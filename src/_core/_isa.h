/*
 * Which instruction-set variant of the compiled kernels runs: the one choice behind
 * _stereo_isa.h (two channels) and _online_isa.h (the online filter's tiles).
 *
 * GCC on x86-64 builds those kernels for AVX-512, AVX2 and the baseline (NORBERT_DISPATCH);
 * other compilers and architectures build the baseline only. NORBERT_ISA=base or avx2 in
 * the environment caps the choice, to check that every variant gives the same bits and to
 * rule a variant out.
 */
#ifndef NORBERT_ISA_LEVEL_H
#define NORBERT_ISA_LEVEL_H

#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) \
    && !defined(NORBERT_NO_CLONES)
#define NORBERT_DISPATCH 1
#else
#define NORBERT_DISPATCH 0
#endif

/* 2: AVX-512, 1: AVX2, 0: the baseline; the best the CPU runs, within the cap. */
static int norbert_isa_level(void)
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
            return 2;
        return 1;
    }
#endif
    return 0;
}

#endif /* NORBERT_ISA_LEVEL_H */
