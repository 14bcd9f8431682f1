/* libmvec through OpenMP SIMD (see vexp.h).  glibc's <math.h> declares the
 * vector variants only under -ffast-math, which would also license the
 * compiler to reorder every sum in this file; declaring them here keeps
 * IEEE semantics everywhere else. */
#include "approx/vexp.h"

#include <math.h>
#include <string.h>

#pragma omp declare simd notinbranch
extern double exp(double);
#pragma omp declare simd notinbranch
extern double log(double);
#pragma omp declare simd notinbranch
extern float expf(float);

/* One clone per SIMD width; the loader's resolver picks the widest the CPU
 * has, so one binary runs everywhere. */
#define KX_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

/* Elements go in fixed chunks of LANES, the tail through a padded chunk:
 * a plain `omp simd` loop would finish with a scalar epilogue calling
 * libm's exp, which rounds differently from libmvec, and the result of an
 * element would depend on its index modulo the vector width (measured). */
#define LANES 16

#define KX_VMAP(name, type, expr)                                      \
  KX_SIMD_CLONES void name(size_t n, const type *x, type *y) {         \
    size_t i = 0;                                                      \
    for (; i + LANES <= n; i += LANES) {                               \
      _Pragma("omp simd") for (size_t k = 0; k < LANES; k++) {         \
        const type v = x[i + k];                                       \
        y[i + k] = expr;                                               \
      }                                                                \
    }                                                                  \
    if (i < n) {                                                       \
      type buf[LANES] = {0};                                           \
      memcpy(buf, x + i, (n - i) * sizeof *x);                         \
      _Pragma("omp simd") for (size_t k = 0; k < LANES; k++) {         \
        const type v = buf[k];                                         \
        buf[k] = expr;                                                 \
      }                                                                \
      memcpy(y + i, buf, (n - i) * sizeof *y);                         \
    }                                                                  \
  }

KX_VMAP(kx_vexp, double, exp(v))
KX_VMAP(kx_vlog, double, log(v))
KX_VMAP(kx_vexpf, float, expf(v))

/* exp(x - shift): the subtraction rounds once, as in the scalar form. */
KX_SIMD_CLONES void kx_vexp_shift(size_t n, const double *x, double shift, double *y) {
  size_t i = 0;
  for (; i + LANES <= n; i += LANES) {
#pragma omp simd
    for (size_t k = 0; k < LANES; k++) y[i + k] = exp(x[i + k] - shift);
  }
  if (i < n) {
    double buf[LANES] = {0};
    for (size_t k = 0; k < n - i; k++) buf[k] = x[i + k] - shift;
#pragma omp simd
    for (size_t k = 0; k < LANES; k++) buf[k] = exp(buf[k]);
    memcpy(y + i, buf, (n - i) * sizeof *y);
  }
}
