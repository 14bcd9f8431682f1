/* Performer (FAVOR+) causal linear attention: the teacher's block with
 * softmax replaced by positive random features of the softmax kernel,
 *   phi(x) = exp(W x~ - |x~|^2 / 2 - c) / sqrt(m),  x~ = x / d^(1/4),
 * m = d features per head, W fixed (frozen tensor layer<l>/feat_w, one per
 * layer, shared by its heads), o_i = sum_j (phi(q_i).phi(k_j)) v_j /
 * (sum_j phi(q_i).phi(k_j) + 1e-6) over j <= i.  Stabiliser c: see
 * dec_features.h.  Two kinds:
 *   performer      ORF rows (orthonormal blocks, chi_d radii: FAVOR+);
 *   performer-prf  PRF rows (iid N(0, I_d), Eq. 5).
 * Features are drawn once (at init/convert) and kept; no redrawing. */
#include "experiments/decoder/dec_features.h"
#include "experiments/decoder/dec_linear_attn.h"

static const kx_posfeat_spec orf = {"orf", 0.5f}, prf = {"prf", 0.5f};
static const kx_lin_fmap orf_map = KX_POSFEAT_FMAP(&orf), prf_map = KX_POSFEAT_FMAP(&prf);

KX_LIN_ATTN_KIND(kx_attn_performer, "performer",
                 "FAVOR+ causal linear attention, fixed ORF features (m = d), per-head stabiliser", orf_map);
KX_LIN_ATTN_KIND(kx_attn_performer_prf, "performer-prf",
                 "FAVOR+ causal linear attention, fixed iid Gaussian (PRF) features (m = d)", prf_map);
