/* Register-tiled x W^T (project.h): KX_PROJECT_ROWS rows times a tile of
 * COLS columns accumulate in registers over j; the compiler vectorises the
 * column loop for the widest SIMD the CPU has (one clone per width). */
#include "approx/project.h"

#include <string.h>

#include "core/kx_simd.h"

#define COLS 16

size_t kx_project_width(size_t m) { return (m + COLS - 1) / COLS * COLS; }

void kx_project_transpose(size_t m, size_t d, const double *W, double *Wt) {
  const size_t mp = kx_project_width(m);
  memset(Wt, 0, d * mp * sizeof *Wt);
  for (size_t i = 0; i < m; i++)
    for (size_t j = 0; j < d; j++) Wt[j * mp + i] = W[i * d + j];
}

KX_SIMD_CLONES
void kx_project(size_t rows, size_t d, size_t mp, const double *x, const double *Wt, double *out) {
  for (size_t i0 = 0; i0 < mp; i0 += COLS)
    for (size_t r = 0; r < rows; r += KX_PROJECT_ROWS) {
      double acc[KX_PROJECT_ROWS][COLS] = {{0}};
      for (size_t j = 0; j < d; j++) {
        const double *w = Wt + j * mp + i0;
        for (size_t rr = 0; rr < KX_PROJECT_ROWS; rr++) {
          const double xv = x[(r + rr) * d + j];
#pragma omp simd
          for (size_t c = 0; c < COLS; c++) acc[rr][c] += xv * w[c];
        }
      }
      for (size_t rr = 0; rr < KX_PROJECT_ROWS; rr++)
        memcpy(out + (r + rr) * mp + i0, acc[rr], sizeof acc[rr]);
    }
}
