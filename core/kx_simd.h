/* One clone of a function per SIMD width (AVX-512, AVX2, baseline): the
 * loader's resolver picks the widest the CPU has, so one binary runs
 * everywhere.  clang 14 names the resolver of an exported function
 * "NAME.ifunc", which other translation units cannot link to (clang 15
 * names it NAME): with it (the fuzzing builds) only the baseline is
 * compiled. */
#ifndef KX_SIMD_H
#define KX_SIMD_H

#if defined(__clang__) && __clang_major__ < 15
#define KX_SIMD_CLONES
#else
#define KX_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif

#endif
