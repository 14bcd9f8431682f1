/* Branch-free float exp and normal CDF that the compiler can vectorise
 * (glibc's expf/erff are scalar calls without -ffast-math, and GELU alone
 * took a third of a training step through them). */
#ifndef KX_DEC_FASTMATH_H
#define KX_DEC_FASTMATH_H

#include <stdint.h>
#include <string.h>

/* Floating-point operations never trap in the decoder (no FP exceptions are
 * enabled), and saying so lets GCC if-convert the clamps and selects below
 * and vectorise the loops that call them: without it every exponential of
 * the feature maps and every GELU was a scalar call (the float32 map ran at
 * a third of PyTorch's rate).  It applies to every function after this
 * point of each file that includes this header -- the files that use these
 * functions.  Elementwise code keeps its bits (reductions are not
 * reordered without -fassociative-math). */
#pragma GCC optimize("no-trapping-math")

/* e^x for float x, relative error below 3 ulp (tested); x is clamped to
 * [-87.3, 88.3] (results stay normal: no overflow, no denormal; above
 * 88.38 the 2^n below would be 2^128, which is inf), and NaN gives NaN (a
 * diverging model's NaN must reach its loss).
 * Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, then a degree-7 Taylor
 * polynomial (remainder r^8/8! < 6e-9 relative) and 2^n by exponent bits. */
static inline float kx_expf(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
  /* round to nearest by the 1.5*2^23 trick: roundf is a libm call on
   * baseline x86-64 and would stop vectorisation */
  float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - n * 0.693145751953125f; /* ln2 high part: exact product */
  r -= n * 1.428606765330187045e-6f;    /* ln2 low part */
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  /* 2^n from the low bits of 1.5*2^23 + 127 + n, where n + 127 is in
   * [1, 255]: integer operations on the bits, so a NaN n (a NaN x) is no
   * float-to-int conversion (undefined) but scale 0, and p (NaN) * 0 is NaN */
  float biased = n + (12582912.0f + 127.0f);
  uint32_t bits;
  memcpy(&bits, &biased, sizeof bits);
  bits = (bits & 0xFFu) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

/* Phi(x), the standard normal CDF, as erfc(-x/sqrt 2)/2 with the Chebyshev
 * fit of erfc of Numerical Recipes (erfcc: fractional error < 1.2e-7 for
 * every argument), so Phi is accurate relative to itself in the left tail
 * too, where GELU = x Phi(x) is small. */
static inline float kx_normal_cdf(float x) {
  float z = x < 0.0f ? -x : x;
  z *= 0.70710678118654752f;
  float t = 1.0f / (1.0f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  float half_erfc = 0.5f * t * kx_expf(p - z * z);
  return x < 0.0f ? half_erfc : 1.0f - half_erfc;
}

#endif
