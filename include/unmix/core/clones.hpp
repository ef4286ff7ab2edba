#pragma once
// UNMIX_AVX2_CLONE before a function: GCC and Clang on x86-64 build it twice, for AVX2 and for the baseline,
// and the loader picks the one the processor runs (elsewhere: one plain build). For loops the compiler
// vectorizes by itself; the clones do the same operations (no fused multiply-adds), so the results match.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define UNMIX_AVX2_CLONE __attribute__((target_clones("avx2", "default")))
#else
#define UNMIX_AVX2_CLONE
#endif
