/* Batched DCT-II, III and IV of power-of-two length on KX_DCT_BATCH
 * vectors at once, the vectors interleaved (value j of vector v at
 * [j * KX_DCT_BATCH + v]) so that each arithmetic instruction works on
 * several vectors.  The sums computed are the plain cosine sums
 *   II:  y_k = sum_j x_j cos(pi (2j+1) k / (2n))
 *   III: y_j = sum_k x_k cos(pi (2j+1) k / (2n))      (the transpose of II)
 *   IV:  y_k = sum_j x_j cos(pi (2j+1)(2k+1) / (4n))
 * (half of FFTW's REDFT10 / REDFT11; REDFT01 with x_0 doubled), by the
 * split of a length-n DCT-II into a DCT-II and a DCT-IV of length n/2 and
 * of a DCT-IV into a DCT-II of the same length (dct_simd_body.h):
 * 2 n log2 n flops for II and III, 2 n log2 n + 2 n for IV. */
#ifndef KX_DCT_SIMD_H
#define KX_DCT_SIMD_H

#include <stddef.h>

/* 1 if (type, n) has a kernel: type 2..4, n a power of two >= 2. */
int kx_dct_simd_supported(int type, size_t n);
/* The cosine factors every kernel of length up to n reads: 2 n doubles,
 * filled by kx_dct_simd_twiddles. */
void kx_dct_simd_twiddles(size_t n, double *tw);
/* Doubles of scratch a call of length n needs. */
size_t kx_dct_simd_scratch(size_t n);
/* y (n rows of KX_DCT_BATCH) = the sums above of x; x, y and tmp must not
 * overlap. */
void kx_dct_simd_run(int type, size_t n, const double *tw, const double *x, double *y, double *tmp);
/* Flops (additions and multiplications) of one vector's transform. */
double kx_dct_simd_flops(int type, size_t n);

#endif
