#include "experiments/model/dec_dct_float.h"

#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "experiments/model/dec_layers.h"
#include "samplers/transforms.h"

/* One length: in-place unaligned plans for REDFT10 (C, up to the output
 * scaling) and REDFT01 (C^T, up to the input scaling), and C itself. */
typedef struct fdct_length {
  size_t d;
  fftwf_plan fwd, inv;
  float *matrix, *matrix_t; /* C and C^T (d, d) row-major */
  struct fdct_length *next;
} fdct_length;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static fdct_length *lengths;

static const fdct_length *get_length(size_t d) {
  pthread_mutex_lock(&lock);
  fdct_length *L = lengths;
  while (L && L->d != d) L = L->next;
  if (!L) {
    L = calloc(1, sizeof *L);
    float *buf = fftwf_malloc(d * sizeof *buf);
    double *c = malloc(d * d * sizeof *c);
    if (L) L->matrix = malloc(2 * d * d * sizeof *L->matrix);
    if (!L || !buf || !c || !L->matrix || kx_dct_matrix(2, d, c)) {
      kx_fail(KX_ENOMEM, "out of memory for a float DCT of length %zu", d);
      goto fail;
    }
    L->matrix_t = L->matrix + d * d;
    for (size_t i = 0; i < d; i++)
      for (size_t j = 0; j < d; j++) L->matrix[i * d + j] = L->matrix_t[j * d + i] = (float)c[i * d + j];
    if (d > 1) {
      unsigned flags = FFTW_ESTIMATE | FFTW_UNALIGNED;
      L->fwd = fftwf_plan_r2r_1d((int)d, buf, buf, FFTW_REDFT10, flags);
      L->inv = fftwf_plan_r2r_1d((int)d, buf, buf, FFTW_REDFT01, flags);
      if (!L->fwd || !L->inv) {
        kx_fail(KX_ENUM, "FFTW could not plan a float DCT of length %zu", d);
        goto fail;
      }
    }
    L->d = d;
    L->next = lengths;
    lengths = L;
    fftwf_free(buf);
    free(c);
    goto done;
  fail:
    if (L) {
      if (L->fwd) fftwf_destroy_plan(L->fwd);
      if (L->inv) fftwf_destroy_plan(L->inv);
      free(L->matrix);
      free(L);
    }
    L = NULL;
    fftwf_free(buf);
    free(c);
  }
done:
  pthread_mutex_unlock(&lock);
  return L;
}

/* FFTW's REDFT10 gives Y_k = 2 sum_j x_j cos(pi (2j+1) k / 2d): the
 * orthonormal row k is Y_k / (2 sqrt d) for k = 0 and Y_k / sqrt(2d) after.
 * REDFT01 gives Y_k = X_0 + 2 sum_{j>=1} X_j cos(pi j (2k+1) / 2d): with
 * X_0 = sqrt2 x_0 and the factor 1/sqrt(2d) it is C^T x. */
static void fftw_row(const fdct_length *L, int transpose, const float *x, float *y) {
  size_t d = L->d;
  float s = 1.0f / sqrtf(2.0f * (float)d);
  memcpy(y, x, d * sizeof *y);
  if (d == 1) return;
  if (transpose) {
    y[0] *= (float)M_SQRT2;
    fftwf_execute_r2r(L->inv, y, y);
    for (size_t k = 0; k < d; k++) y[k] *= s;
  } else {
    fftwf_execute_r2r(L->fwd, y, y);
    for (size_t k = 0; k < d; k++) y[k] *= s;
    y[0] *= (float)M_SQRT1_2;
  }
}

int kx_fdct_rows(kx_fdct_method method, int transpose, size_t d, size_t rows, const float *in, float *out) {
  const fdct_length *L = get_length(d);
  if (!L) return KX_ENOMEM;
  if (method == KX_FDCT_MATRIX) {
    /* out = in W^T with W = C (rows y = C x) or W = C^T (rows y = C^T x) */
    kx_matmul_forward(out, in, transpose ? L->matrix_t : L->matrix, NULL, rows, d, d);
    return 0;
  }
#pragma omp parallel for schedule(static) if (rows * d >= 65536)
  for (size_t r = 0; r < rows; r++) fftw_row(L, transpose, in + r * d, out + r * d);
  return 0;
}
