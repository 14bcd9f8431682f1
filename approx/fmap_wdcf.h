/* Extra access to the DCT feature maps (wdcf, wdcf-norm, dcf, wdcf-code)
 * beyond the generic kx_fmap interface: their dense equivalent for
 * benchmarks and tests, and their parameters for independent checks. */
#ifndef KX_FMAP_WDCF_H
#define KX_FMAP_WDCF_H

#include "approx/dct_blocks.h"
#include "approx/fmap.h"

extern const kx_fmap_type kx_fmap_wdcf, kx_fmap_wdcf_norm, kx_fmap_dcf, kx_fmap_wdcf_code;

/* 1 if f is one of the DCT feature maps above. */
int kx_fmap_is_wdcf(const kx_fmap *f);

/* Writes the m x d matrix W (row-major) equivalent to the map's DCTs:
 *   wdcf, wdcf-norm, dcf:  log phi(x) = W x - norm_coef |x|^2 + log_weight
 *                          (exactly the generic dense path of fmap.c)
 *   wdcf-code:             log phi(x) = log_softmax(W x)
 * KX_EINVAL if f is not a DCT feature map. */
int kx_fmap_wdcf_dense(const kx_fmap *f, double *W);

/* The release of every DCT map: frees its blocks (f->state). */
void kx_fmap_wdcf_release(kx_fmap *f);

/* The map's block structure (types, signs, per-row multipliers t), or NULL
 * if f is not a DCT feature map. */
const kx_dct_blocks *kx_fmap_wdcf_blocks(const kx_fmap *f);

#endif
