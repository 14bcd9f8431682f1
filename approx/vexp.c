/* libmvec through OpenMP SIMD (see vexp.h).  glibc's <math.h> declares the
 * vector variants only under -ffast-math, which would also license the
 * compiler to reorder every sum in this file; declaring them here keeps
 * IEEE semantics everywhere else. */
#include "approx/vexp.h"

#include <math.h>
#include <string.h>

#include "core/kx_simd.h"

#pragma omp declare simd notinbranch
extern double exp(double);
#pragma omp declare simd notinbranch
extern double log(double);
#pragma omp declare simd notinbranch
extern float expf(float);

/* One clone per SIMD width (core/kx_simd.h). */

/* Elements go in fixed chunks of LANES, the tail through a padded chunk:
 * a plain `omp simd` loop would finish with a scalar epilogue calling
 * libm's exp, which rounds differently from libmvec, and the result of an
 * element would depend on its index modulo the vector width (measured). */
#define LANES 16

/* libmvec hands every lane beyond |x| ~ 708 (expf: ~ 88) to the scalar
 * exp, one lane at a time, for the whole vector call; the log features
 * are full of such lanes: -inf from zero fitted weights, and the deep
 * underflow of max-shifted logits (measured: 5.8 % of a WDCF profile in
 * the scalar exp).  Below these bounds libm's exp is +0 (exp(-746) <
 * 2^-1076 and expf(-110) < 2^-158, under half the smallest subnormal),
 * so those lanes take exp(0) instead and are then replaced by the +0
 * libm would return: the same bits, without the scalar path.  NaN
 * compares false and still goes through exp. */
#define KX_EXP_ZERO_BELOW (-746.0)
#define KX_EXPF_ZERO_BELOW (-110.0f)

/* out[k] = fn(in[k]) for one chunk of LANES; out may be in.  Three loops
 * rather than one with selects around the call: gcc 12 if-converts no
 * loop with a call in it, and the baseline (SSE2) clone vectorises no
 * 64-bit mask arithmetic, either of which leaves the loop scalar
 * (measured: exp@plt per element). */
#define KX_EXP_CHUNK(type, fn, below, in, out)                                  \
  do {                                                                          \
    type arg_[LANES];                                                           \
    _Pragma("omp simd") for (size_t k = 0; k < LANES; k++) arg_[k] = (in)[k] < (below) ? 0 : (in)[k]; \
    _Pragma("omp simd") for (size_t k = 0; k < LANES; k++) arg_[k] = fn(arg_[k]); \
    _Pragma("omp simd") for (size_t k = 0; k < LANES; k++) (out)[k] = (in)[k] < (below) ? 0 : arg_[k]; \
  } while (0)

/* name(n, x, y): y = chunk(x) on whole chunks, the tail through a
 * zero-padded chunk. */
#define KX_CHUNKED(name, type, chunk)                          \
  KX_SIMD_CLONES void name(size_t n, const type *x, type *y) { \
    size_t i = 0;                                              \
    for (; i + LANES <= n; i += LANES) chunk(x + i, y + i);    \
    if (i < n) {                                               \
      type buf[LANES] = {0};                                   \
      memcpy(buf, x + i, (n - i) * sizeof *x);                 \
      chunk(buf, buf);                                         \
      memcpy(y + i, buf, (n - i) * sizeof *y);                 \
    }                                                          \
  }

#define EXP_CHUNK(in, out) KX_EXP_CHUNK(double, exp, KX_EXP_ZERO_BELOW, in, out)
#define EXPF_CHUNK(in, out) KX_EXP_CHUNK(float, expf, KX_EXPF_ZERO_BELOW, in, out)
#define LOG_CHUNK(in, out) _Pragma("omp simd") for (size_t k = 0; k < LANES; k++) (out)[k] = log((in)[k])

KX_CHUNKED(kx_vexp, double, EXP_CHUNK)
KX_CHUNKED(kx_vexpf, float, EXPF_CHUNK)
KX_CHUNKED(kx_vlog, double, LOG_CHUNK)

/* exp(x - shift): the subtraction rounds once, as in the scalar form. */
KX_SIMD_CLONES void kx_vexp_shift(size_t n, const double *x, double shift, double *y) {
  double diff[LANES] = {0};
  for (size_t i = 0; i < n; i += LANES) {
    const size_t len = n - i < LANES ? n - i : LANES;
    for (size_t k = 0; k < len; k++) diff[k] = x[i + k] - shift;
    if (len == LANES) {
      EXP_CHUNK(diff, y + i);
    } else {
      EXP_CHUNK(diff, diff);
      memcpy(y + i, diff, len * sizeof *y);
    }
  }
}
