/* The batched DCT kernels (dct_simd.h), built for the baseline instruction
 * set and for AVX2 and AVX-512F, one of which is chosen at run time. */
#include "approx/dct_simd.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "approx/dct.h"

/* Every variant must round as the others: no a * b + c fused into one FMA
 * where the instruction set has it. */
#pragma GCC optimize("fp-contract=off")

/* One build per instruction set and precision: KX_VW lanes of KX_REAL,
 * KX_QV vectors of lanes per row in DCT-I's product (the body clears the
 * parameters after itself). */
#define KX_REAL double
#define KX_MASK_INT long long
#define KX_ISA base
#define KX_VW 2
#define KX_QV 2
#include "approx/dct_simd_body.h"
#define KX_REAL float
#define KX_MASK_INT int
#define KX_ISA base_f
#define KX_VW 4
#define KX_QV 2
#include "approx/dct_simd_body.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define KX_DCT_SIMD_X86 1
#pragma GCC push_options
#pragma GCC target("avx2")
#define KX_REAL double
#define KX_MASK_INT long long
#define KX_ISA avx2
#define KX_VW 4
#define KX_QV 2
#include "approx/dct_simd_body.h"
#define KX_REAL float
#define KX_MASK_INT int
#define KX_ISA avx2_f
#define KX_VW 8
#define KX_QV 2
#include "approx/dct_simd_body.h"
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx512f")
#define KX_REAL double
#define KX_MASK_INT long long
#define KX_ISA avx512
#define KX_VW 8
#define KX_QV 4
#include "approx/dct_simd_body.h"
#define KX_REAL float
#define KX_MASK_INT int
#define KX_ISA avx512_f
#define KX_VW 16
#define KX_QV 2
#include "approx/dct_simd_body.h"
#pragma GCC pop_options
#endif

/* The builds' entry points, by variant (KX_DCT_SIMD_BASE, AVX2, AVX512). */
typedef struct {
  void (*run)(int, size_t, const double *, const double *, double *, double *);
  void (*gather)(size_t, const double *, const double *, const double *, double *);
  void (*scatter)(size_t, const double *, const double *, const double *, const double *, const double *, double *,
                  size_t);
  void (*run_f)(int, size_t, const float *, const float *, float *, float *);
  void (*gather_f)(size_t, const float *, const float *, const float *, float *);
  void (*scatter_f)(size_t, const float *, const float *, const float *, const float *, const float *, float *,
                    size_t);
} simd_build;

#define KX_BUILD(isa) {run_##isa, gather_##isa, scatter_##isa, run_##isa##_f, gather_##isa##_f, scatter_##isa##_f}
static const simd_build builds[] = {KX_BUILD(base),
#ifdef KX_DCT_SIMD_X86
                                    KX_BUILD(avx2), KX_BUILD(avx512)
#endif
};

int kx_dct_simd_supported(int type, size_t n) {
  return type >= 1 && type <= 4 && n >= 2 && (n & (n - 1)) == 0;
}

void kx_dct_simd_twiddles(size_t n, double *tw) {
  tw[0] = 0;
  /* level h (a power of two <= n) at tw[h .. 2h): 2 cos(pi (2j+1) / (4h)) */
  for (size_t h = 1; h <= n; h *= 2)
    for (size_t j = 0; j < h; j++) tw[h + j] = 2.0 * cos(M_PI * (double)(2 * j + 1) / (double)(4 * h));
}

size_t kx_dct_simd_scratch(size_t n) { return 4 * n * KX_DCT_BATCH; }

/* The widest variant this CPU runs, chosen once per call. */
static int best_variant(void) {
#ifdef KX_DCT_SIMD_X86
  if (__builtin_cpu_supports("avx512f")) return KX_DCT_SIMD_AVX512;
  if (__builtin_cpu_supports("avx2")) return KX_DCT_SIMD_AVX2;
#endif
  return KX_DCT_SIMD_BASE;
}

int kx_dct_simd_variant_runs(int variant) {
  switch (variant) {
    case KX_DCT_SIMD_BASE: return 1;
#ifdef KX_DCT_SIMD_X86
    case KX_DCT_SIMD_AVX2: return __builtin_cpu_supports("avx2");
    case KX_DCT_SIMD_AVX512: return __builtin_cpu_supports("avx512f");
#endif
    default: return 0;
  }
}

void kx_dct_simd_run_variant(int variant, int type, size_t n, const double *tw, const double *x, double *y,
                             double *tmp) {
  builds[variant].run(type, n, tw, x, y, tmp);
}

void kx_dct_simd_run(int type, size_t n, const double *tw, const double *x, double *y, double *tmp) {
  builds[best_variant()].run(type, n, tw, x, y, tmp);
}

int kx_dct_simd_tiles(size_t n) { return n % 8 == 0; }

void kx_dct_simd_gather(size_t d, const double *scale, const double *sign, const double *x, double *in) {
  builds[best_variant()].gather(d, scale, sign, x, in);
}

void kx_dct_simd_scatter(size_t rows_out, const double *scale, const double *t, const double *bias, const double *c,
                         const double *y, double *z, size_t ldz) {
  builds[best_variant()].scatter(rows_out, scale, t, bias, c, y, z, ldz);
}

double kx_dct_simd_flops(int type, size_t n) {
  if (type == 1) return (double)n * (double)n + (double)n;
  const double f = 2.0 * (double)n * log2((double)n);
  return type == 4 ? f + 2.0 * (double)n : f;
}

/* ---- single precision: the same kernels on floats ---- */

void kx_dct_simd_run_f(int variant, int type, size_t n, const float *tw, const float *x, float *y, float *tmp) {
  builds[variant].run_f(type, n, tw, x, y, tmp);
}

int kx_dct_simd_best_variant(void) { return best_variant(); }

int kx_dct_simd_tiles_f(size_t n) { return n % 16 == 0; }

void kx_dct_simd_gather_f(size_t d, const float *scale, const float *x, float *in) {
  builds[best_variant()].gather_f(d, scale, NULL, x, in);
}

void kx_dct_simd_scatter_f(size_t rows_out, const float *scale, const float *t, const float *y, float *z, size_t ldz) {
  builds[best_variant()].scatter_f(rows_out, scale, t, NULL, NULL, y, z, ldz);
}
