/* Batched DCT-I, II, III and IV of power-of-two length on KX_DCT_BATCH
 * vectors at once, the vectors interleaved (value j of vector v at
 * [j * KX_DCT_BATCH + v]) so that each arithmetic instruction works on
 * several vectors.  The sums computed are the plain cosine sums
 *   I:   y_k = x_0 + (-1)^k x_{n-1} + 2 sum_{0<j<n-1} x_j cos(pi j k / (n-1))
 *   II:  y_k = sum_j x_j cos(pi (2j+1) k / (2n))
 *   III: y_j = sum_k x_k cos(pi (2j+1) k / (2n))      (the transpose of II)
 *   IV:  y_k = sum_j x_j cos(pi (2j+1)(2k+1) / (4n))
 * (FFTW's REDFT00, half of REDFT10 / REDFT11; REDFT01 with x_0 doubled),
 * II-IV by the split of a length-n DCT-II into a DCT-II and a DCT-IV of
 * length n/2 and of a DCT-IV into a DCT-II of the same length, I by its
 * even/odd fold into two n/2 x n/2 products (dct_simd_body.h):
 * 2 n log2 n flops for II and III, 2 n log2 n + 2 n for IV, n^2 + n for I. */
#ifndef KX_DCT_SIMD_H
#define KX_DCT_SIMD_H

#include <stddef.h>

/* 1 if (type, n) has a kernel: type 2..4, n a power of two >= 2. */
int kx_dct_simd_supported(int type, size_t n);
/* The cosine factors every kernel of length up to n reads: 2 n doubles,
 * filled by kx_dct_simd_twiddles.  DCT-I reads instead its folded matrix:
 * n^2 / 2 doubles, the even rows of its sums, then the odd rows, on the
 * first n/2 columns (dct.c fills it). */
void kx_dct_simd_twiddles(size_t n, double *tw);
/* Doubles of scratch a call of length n needs. */
size_t kx_dct_simd_scratch(size_t n);
/* y (n rows of KX_DCT_BATCH) = the sums above of x; x, y and tmp must not
 * overlap and must be 64-byte aligned (as batch workspaces are, dct.h). */
void kx_dct_simd_run(int type, size_t n, const double *tw, const double *x, double *y, double *tmp);
/* The kernels' builds: every one gives the same bits (tested); run picks
 * the widest the CPU has. */
enum { KX_DCT_SIMD_BASE, KX_DCT_SIMD_AVX2, KX_DCT_SIMD_AVX512 };
/* 1 if this CPU runs `variant`. */
int kx_dct_simd_variant_runs(int variant);
/* kx_dct_simd_run through one chosen build (the CPU must run it). */
void kx_dct_simd_run_variant(int variant, int type, size_t n, const double *tw, const double *x, double *y,
                             double *tmp);

/* Between callers' row-major vectors and the interleaved layout, in
 * tiles of 8 x 8 (so for lengths a multiple of 8, kx_dct_simd_tiles),
 * always KX_DCT_BATCH vectors:
 *   gather:  in[j KX_DCT_BATCH + r] = scale_j (sign_j x[r d + j])
 *            (sign NULL: scale_j x[r d + j]), j < d;
 *   scatter: z[r ldz + i] = t_i (scale_i y[i KX_DCT_BATCH + r]), i < rows_out,
 *            then z[r ldz + i] += bias_i - c_r unless bias is NULL.
 * The operations are those of the plain loops, so the bits are too. */
int kx_dct_simd_tiles(size_t n);
void kx_dct_simd_gather(size_t d, const double *scale, const double *sign, const double *x, double *in);
void kx_dct_simd_scatter(size_t rows_out, const double *scale, const double *t, const double *bias, const double *c,
                         const double *y, double *z, size_t ldz);
/* The same kernels on floats (KX_DCT_BATCH float vectors interleaved;
 * twiddles or DCT-I matrix as floats), for the decoder's float32 rows:
 * run through one chosen build (kx_dct_simd_best_variant for this CPU),
 * gather and scatter as above without signs or shift, in tiles of
 * 16 x 16 (lengths a multiple of 16, kx_dct_simd_tiles_f). */
int kx_dct_simd_best_variant(void);
void kx_dct_simd_run_f(int variant, int type, size_t n, const float *tw, const float *x, float *y, float *tmp);
int kx_dct_simd_tiles_f(size_t n);
void kx_dct_simd_gather_f(size_t d, const float *scale, const float *x, float *in);
void kx_dct_simd_scatter_f(size_t rows_out, const float *scale, const float *t, const float *y, float *z, size_t ldz);
/* Flops (additions and multiplications) of one vector's transform. */
double kx_dct_simd_flops(int type, size_t n);

#endif
