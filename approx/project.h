/* The dense projection of the feature maps, out = x W^T, as a kernel whose
 * every output element is the plain sequential sum over j of x_j w_ij:
 * the same operations whatever rows surround it, so features do not depend
 * on the batch size, on a row's position in its batch or on the thread
 * count.  OpenBLAS's DGEMM does not promise that (measured: a row's
 * features change in the last bit with the contents of the next row), and
 * at the feature maps' shapes (a block of 64 rows, d <= 128) this kernel
 * runs at least as fast (bench-features prints both).
 *
 * Shapes: x rows x d (row-major), Wt d x mp (W transposed, columns padded
 * with zeros to mp = kx_project_width(m)), out rows x mp; rows a multiple
 * of KX_PROJECT_ROWS. */
#ifndef KX_PROJECT_H
#define KX_PROJECT_H

#include <stddef.h>

#define KX_PROJECT_ROWS 4

/* m rounded up to the kernel's column tile. */
size_t kx_project_width(size_t m);
/* Wt (d x kx_project_width(m)) from W (m x d). */
void kx_project_transpose(size_t m, size_t d, const double *W, double *Wt);
void kx_project(size_t rows, size_t d, size_t mp, const double *x, const double *Wt, double *out);

#endif
