/* Vectorised exponential and logarithm for the hot loops of the feature
 * maps and attention: glibc's vector math library (libmvec) reached through
 * `#pragma omp simd`, with the widest SIMD the CPU offers picked once per
 * process (AVX-512, AVX2, else SSE).
 *
 * Accuracy: libmvec documents at most 4 ulps for exp and log against the
 * exact result (glibc manual, "Errors in Math Functions"); the test
 * vexp_agrees_with_libm checks exp against libm's exp over every input the
 * maps can produce, down to the subnormal results and up to the overflow
 * limit.  Inputs far below the underflow limit and -inf (zero feature
 * weights) give libm's +0 without libmvec's scalar fallback, which would
 * otherwise take them one lane at a time (vexp.c; tested down to -inf).
 * The result of an element depends only on its own input and on the
 * CPU, never on n or on its position in the array, so batched callers stay
 * bit-identical whatever the batch size. */
#ifndef KX_VEXP_H
#define KX_VEXP_H

#include <stddef.h>

/* y_i = exp(x_i - shift).  y may be x. */
void kx_vexp_shift(size_t n, const double *x, double shift, double *y);
/* y_i = exp(x_i).  y may be x. */
void kx_vexp(size_t n, const double *x, double *y);
/* y_i = log(x_i).  y may be x. */
void kx_vlog(size_t n, const double *x, double *y);
/* float versions for the decoder's float32 kernels. */
void kx_vexpf(size_t n, const float *x, float *y);

#endif
