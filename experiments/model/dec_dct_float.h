/* The orthonormal DCT-II of length d (C of docs/methods.md#the-dct, rows c_i) and its
 * transpose, the DCT-III, on many float32 rows at once: the DiJiang feature
 * map's "C x" and, in the backward pass, "C^T g".
 *
 * Two interchangeable paths (tested equal to round-off):
 *   KX_FDCT_FFTW    FFTW single precision, REDFT10 / REDFT01 with the
 *                   scalings of approx/dct.c, O(d log d) per row;
 *   KX_FDCT_MATRIX  one sgemm against the d x d matrix, O(d^2) per row
 *                   but at BLAS speed.
 * The plans and matrices are made once per d for the process (under a
 * lock: FFTW's planner is not thread-safe; FFTW_ESTIMATE so the algorithm,
 * and every rounding, is the same run to run) and then used from any number
 * of threads. */
#ifndef KX_DEC_DCT_FLOAT_H
#define KX_DEC_DCT_FLOAT_H

#include <stddef.h>

typedef enum { KX_FDCT_FFTW, KX_FDCT_MATRIX } kx_fdct_method;

/* out (rows, d) = in (rows, d) C^T (transpose = 0: each row y = C x) or
 * in C (transpose = 1: y = C^T x).  in and out must not overlap.
 * Returns 0, or KX_ENOMEM / KX_ENUM (message set) if a plan cannot be made. */
int kx_fdct_rows(kx_fdct_method method, int transpose, size_t d, size_t rows, const float *in, float *out);

#endif
