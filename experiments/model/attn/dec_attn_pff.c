/* PFF (the paper's Eq. 9) causal linear attention: positive fixed features
 * of the Gaussian kernel,
 *   phi(x) = exp(W x~ - |x~|^2 - c) / sqrt(m),  x~ = x / d^(1/4),
 * rows w_i = r_i v_i with directions v_i from scrambled Sobol' points
 * (linear matrix scramble + digital shift) mapped to the sphere and radii
 * r_i = F^-1_chi_d of one more coordinate (samplers/), m = d per head, fixed
 * (frozen tensor layer<l>/feat_w, one per layer, shared by its heads).  As
 * docs/methods.md#notation-and-scaling notes, the query factor cancels and
 * attention is proportional to exp(q.k/sqrt d - |k|^2 / (2 sqrt d)) in
 * expectation.  Normalised, eps 1e-6; stabiliser c as in dec_features.h.
 * Attention transfer trains W (feat_w) on the teacher's rows, as for
 * performer; fine-tuning keeps it fixed. */
#include "experiments/model/attn/dec_features.h"
#include "experiments/model/attn/dec_linear_attn.h"

static const kx_posfeat_spec pff = {"pff-sobol", 1.0f, 0};
static const kx_lin_fmap pff_map = KX_POSFEAT_FMAP(&pff);

static const char *const transfer_tensors[] = {"feat_w", NULL};

KX_LIN_ATTN_KIND_TRANSFER(kx_attn_pff, "pff",
                          "PFF causal linear attention (Eq. 9: scrambled Sobol' directions, chi_d radii, m = d)",
                          pff_map, transfer_tensors);
