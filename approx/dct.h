/* Orthonormal discrete cosine transforms, types I-IV, of length d through
 * FFTW's real-to-real kinds (REDFT00/10/01/11), O(d log d) per vector.
 *
 * The matrices (rows = basis vectors, y = C x), all orthogonal:
 *   I:   C_kj = sqrt(2/(d-1)) w_k w_j cos(pi k j / (d-1)),  w_0 = w_{d-1} = 1/sqrt 2,
 *        other w = 1; d >= 2.  Symmetric and its own inverse.
 *   II:  C_kj = s_k cos(pi (2j+1) k / (2d)),  s_0 = sqrt(1/d), s_k = sqrt(2/d)
 *   III: the transpose of II (the inverse DCT-II)
 *   IV:  C_kj = sqrt(2/d) cos(pi (2k+1)(2j+1) / (4d)).  Symmetric, its own inverse.
 * FFTW computes the unnormalised sums (factor 2 on the interior terms); the
 * scalings that turn them into these matrices are in dct.c.  d = 1 is the
 * 1 x 1 identity for II, III and IV; DCT-I is refused for d < 2 (its
 * definition divides by d - 1).
 *
 * Cost: FFTW computes DCT-I of length d as a real DFT of length 2(d - 1),
 * the others through real DFTs of length d.  For d a power of two, d - 1
 * is odd and may be prime (d = 128: 127), where FFTW has only an O(d^2)
 * codelet: measured ~7 us per DCT-I against ~0.8 us for II-IV at d = 128
 * (~0.8 us against ~0.3-0.6 us at d = 64, where 63 = 7 * 9).
 *
 * Batches: besides the one-vector plan, every kx_dct holds a plan for
 * KX_DCT_BATCH vectors at once (fftw_plan_many_r2r), so a batch costs one
 * FFTW call per KX_DCT_BATCH vectors instead of one per vector; callers pad
 * the last batch, so every vector always goes through the same plan at the
 * same position and its result does not depend on the batch size or the
 * thread count.  Where FFTW's algorithm is slow for the length (measured:
 * DCT-I at d = 128, a length-254 real transform with the prime factor 127,
 * ~8 us per vector against ~0.6 us for a 128 x 128 DGEMM row), the batch
 * goes through a dense GEMM with the same unnormalised matrix instead (for
 * DCT-I of even length folded into two half-size GEMMs): the route is
 * chosen from FFTW's own operation count (fftw_flops), so it is the same
 * on every run.  All four types of power-of-two length d >= 2 take a
 * third route, the batched kernels of dct_simd.h (rows interleaved,
 * several rows per SIMD instruction), which beat both FFTW's batch plans
 * and the GEMM at the head dimensions (docs/performance.md); the route
 * depends only on (type, d).
 *
 * One kx_dct is one FFTW plan (plus its batch plan), made once (under a process-wide mutex, since
 * FFTW's planner is not thread-safe, with FFTW_ESTIMATE so the chosen
 * algorithm, and hence every rounding, is the same run to run) and then
 * executed any number of times from any number of threads at once through
 * the new-array interface, each thread on its own workspace.
 *
 * This module is the one place of the DCT in the toolkit: the DCT feature
 * maps (through dct_blocks.h), the explicit matrices, and the float variant
 * the decoder's DiJiang kinds use. */
#ifndef KX_DCT_H
#define KX_DCT_H

#include <stddef.h>

typedef struct kx_dct kx_dct;

/* NULL with a message for a type outside 1..4, d = 0, DCT-I with d < 2, or
 * d beyond FFTW's int range. */
kx_dct *kx_dct_create(int type, size_t d);
void kx_dct_free(kx_dct *p);

/* Workspace for one thread's calls on any plan of length d: 64-byte
 * aligned, with the layout the plans were made on.  Free with
 * kx_dct_work_free.  NULL with a message when out of memory. */
double *kx_dct_work_alloc(size_t d);
void kx_dct_work_free(double *work);

/* y = C x for d values.  x and y may be any (also unaligned, also the same)
 * memory; `work` must come from kx_dct_work_alloc(d) and must not be used by
 * another thread during the call.  work = NULL allocates a temporary one
 * (convenient, slower).  Returns 0 or KX_ENOMEM. */
int kx_dct_apply(const kx_dct *p, const double *x, double *y, double *work);

/* Vectors per batch call (rows of a batch workspace). */
#define KX_DCT_BATCH 32

/* Row stride, in doubles, of a batch workspace's halves (a multiple of 8,
 * so every row keeps the 64-byte alignment of the base). */
size_t kx_dct_batch_ld(size_t d);
/* Workspace for one thread's batch calls on plans of length d: two halves
 * `in` = work and `out` = work + KX_DCT_BATCH * kx_dct_batch_ld(d).  Free
 * with kx_dct_work_free.  NULL with a message when out of memory. */
double *kx_dct_batch_work_alloc(size_t d);
/* The orthonormal transform of KX_DCT_BATCH rows is
 *   y_k = out_scale_k * T(in_scale .* x)_k,
 * T the batch route's unnormalised transform (FFTW's kind, or the SIMD
 * route's cosine sums); callers fold these d-vectors into their own
 * gather and scatter loops.  They belong to the batch route only. */
const double *kx_dct_in_scale(const kx_dct *p);
const double *kx_dct_out_scale(const kx_dct *p);
/* out = T(in) for the KX_DCT_BATCH rows of a batch workspace (in is
 * clobbered).  Thread-safe on distinct workspaces. */
void kx_dct_execute_batch(const kx_dct *p, double *work);
/* 1 if the batches of p go through the dense GEMM route. */
int kx_dct_batch_is_dense(const kx_dct *p);
/* 1 if they go through the SIMD kernels (dct_simd.h). */
int kx_dct_batch_is_simd(const kx_dct *p);
/* Where value j of row r sits in each half of a batch workspace:
 * half[r * row_stride + j * elem_stride].  Rows one after the other for
 * FFTW and the GEMM; interleaved (row_stride 1, elem_stride KX_DCT_BATCH)
 * for the SIMD route, so that its instructions work on several rows. */
void kx_dct_batch_layout(const kx_dct *p, size_t *row_stride, size_t *elem_stride);
/* Flops of one row's transform on the batch route (the kernels' count,
 * 2 d^2 for the GEMM, FFTW's own count for its plans). */
double kx_dct_batch_flops(const kx_dct *p);

/* The explicit orthonormal d x d matrix of type 1..4 (row-major, rows =
 * basis vectors, the matrices above), the form the FFTW path must equal;
 * entries from the cosine formulas, each angle reduced before cos() so
 * large d keeps full accuracy.  Returns 0, or KX_EINVAL for a type outside
 * 1..4, d = 0, or DCT-I with d < 2. */
int kx_dct_matrix(int type, size_t d, double *c);

/* Single precision: the same matrices for float rows (the decoder's
 * features), through FFTW's fftwf kinds.  One kx_dctf is an in-place FFTW
 * plan plus the float matrix C itself, made once (under the planner lock,
 * FFTW_ESTIMATE, so every rounding is the same run to run) and then used
 * from any number of threads: the plan runs through the new-array
 * interface on unaligned rows.  The scalings are applied in float in the
 * order: end-point inputs times sqrt 2 (I, III), the transform, every
 * output times 1/sqrt(2d) (1/sqrt(2(d-1)) for I), end-point outputs times
 * 1/sqrt 2 (I, II).  NULL with a message as kx_dct_create. */
typedef struct kx_dctf kx_dctf;
kx_dctf *kx_dctf_create(int type, size_t d);
void kx_dctf_free(kx_dctf *p);
/* The plan of (type, d) made on first use and kept for the life of the
 * process, for callers that hold no state of their own (the decoder's
 * attention kinds); thread-safe.  NULL with a message on failure. */
const kx_dctf *kx_dctf_shared(int type, size_t d);
/* out (rows, d) = rows of in (rows, d) transformed, y = C x per row,
 * O(d log d) each; in and out must not overlap.  Types II-IV at
 * power-of-two d that is a multiple of 16 run through the batched kernels
 * of dct_simd.h (kx_dctf_is_batched), the rest through FFTW one row at a
 * time.  Rows are split over OpenMP threads for large inputs; each row's
 * result does not depend on the call's size or the thread count. */
void kx_dctf_rows(const kx_dctf *p, size_t rows, const float *in, float *out);
int kx_dctf_is_batched(const kx_dctf *p);
/* C as d x d floats (row-major, the float nearest each entry of
 * kx_dct_matrix): the same rows are one GEMM out = in C^T, the faster
 * route at small d through a caller's own GEMM. */
const float *kx_dctf_matrix(const kx_dctf *p);

#endif
