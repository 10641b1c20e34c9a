/*
 * Includes the kernel header named by NORBERT_ISA_IMPL (defined by the includer, e.g.
 * "_stereo_impl.h") once per instruction set, NORBERT_ISA naming the set: the baseline
 * first, outside any target pragma, then, where NORBERT_DISPATCH (_isa.h), AVX2 and
 * AVX-512 under GCC target pragmas. The one home of those targets' flags, for
 * _stereo_isa.h and _online_isa.h. No include guard: each of them includes it once.
 */
#include "_isa.h"

#define NORBERT_ISA base
#include NORBERT_ISA_IMPL
#undef NORBERT_ISA

#if NORBERT_DISPATCH
#pragma GCC push_options
#pragma GCC target("avx2")
#define NORBERT_ISA avx2
#include NORBERT_ISA_IMPL
#undef NORBERT_ISA
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw,prefer-vector-width=512")
#define NORBERT_ISA avx512
#include NORBERT_ISA_IMPL
#undef NORBERT_ISA
#pragma GCC pop_options
#endif
