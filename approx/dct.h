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
 * One kx_dct is one FFTW plan, made once (under a process-wide mutex, since
 * FFTW's planner is not thread-safe, with FFTW_ESTIMATE so the chosen
 * algorithm, and hence every rounding, is the same run to run) and then
 * executed any number of times from any number of threads at once through
 * the new-array interface, each thread on its own workspace. */
#ifndef KX_DCT_H
#define KX_DCT_H

#include <stddef.h>

typedef struct kx_dct kx_dct;

/* NULL with a message for a type outside 1..4, d = 0, DCT-I with d < 2, or
 * d beyond FFTW's int range. */
kx_dct *kx_dct_create(int type, size_t d);
void kx_dct_free(kx_dct *p);

/* Workspace for one thread's calls on any plan of length d: SIMD-aligned
 * (fftw_malloc) with the layout the plans were made on.  Free with
 * kx_dct_work_free.  NULL with a message when out of memory. */
double *kx_dct_work_alloc(size_t d);
void kx_dct_work_free(double *work);

/* y = C x for d values.  x and y may be any (also unaligned, also the same)
 * memory; `work` must come from kx_dct_work_alloc(d) and must not be used by
 * another thread during the call.  work = NULL allocates a temporary one
 * (convenient, slower).  Returns 0 or KX_ENOMEM. */
int kx_dct_apply(const kx_dct *p, const double *x, double *y, double *work);

#endif
