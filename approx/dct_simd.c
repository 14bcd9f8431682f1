/* The batched DCT kernels (dct_simd.h), built for the baseline instruction
 * set and for AVX2 and AVX-512F, one of which is chosen at run time. */
#include "approx/dct_simd.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "approx/dct.h"

#define KX_ISA base
#include "approx/dct_simd_body.h"
#undef KX_ISA

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define KX_DCT_SIMD_X86 1
#pragma GCC push_options
#pragma GCC target("avx2")
#define KX_ISA avx2
#include "approx/dct_simd_body.h"
#undef KX_ISA
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx512f")
#define KX_ISA avx512
#include "approx/dct_simd_body.h"
#undef KX_ISA
#pragma GCC pop_options
#endif

int kx_dct_simd_supported(int type, size_t n) {
  return type >= 2 && type <= 4 && n >= 2 && (n & (n - 1)) == 0;
}

void kx_dct_simd_twiddles(size_t n, double *tw) {
  tw[0] = 0;
  /* level h (a power of two <= n) at tw[h .. 2h): 2 cos(pi (2j+1) / (4h)) */
  for (size_t h = 1; h <= n; h *= 2)
    for (size_t j = 0; j < h; j++) tw[h + j] = 2.0 * cos(M_PI * (double)(2 * j + 1) / (double)(4 * h));
}

size_t kx_dct_simd_scratch(size_t n) { return 4 * n * KX_DCT_BATCH; }

void kx_dct_simd_run(int type, size_t n, const double *tw, const double *x, double *y, double *tmp) {
#ifdef KX_DCT_SIMD_X86
  if (__builtin_cpu_supports("avx512f")) {
    run_avx512(type, n, tw, x, y, tmp);
    return;
  }
  if (__builtin_cpu_supports("avx2")) {
    run_avx2(type, n, tw, x, y, tmp);
    return;
  }
#endif
  run_base(type, n, tw, x, y, tmp);
}

double kx_dct_simd_flops(int type, size_t n) {
  const double f = 2.0 * (double)n * log2((double)n);
  return type == 4 ? f + 2.0 * (double)n : f;
}
