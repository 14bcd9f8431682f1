/* Performer (FAVOR+) causal linear attention: the teacher's block with
 * softmax replaced by positive random features of the softmax kernel,
 *   phi(x) = exp(W x~ - |x~|^2 / 2 - c) / sqrt(m),  x~ = x / d^(1/4),
 * m = d features per head, W fixed (frozen tensor layer<l>/feat_w, one per
 * layer, shared by its heads), o_i = sum_j (phi(q_i).phi(k_j)) v_j /
 * (sum_j phi(q_i).phi(k_j) + 1e-6) over j <= i.  Stabiliser c: see
 * dec_features.h.  Two kinds:
 *   performer      ORF rows (orthonormal blocks, chi_d radii: FAVOR+);
 *   performer-prf  PRF rows (iid N(0, I_d), Eq. 5).
 *   performer-redraw  ORF rows, one matrix per head, redrawn during
 *                  training every PERFORMER_REDRAW_EVERY steps (FAVOR+'s
 *                  feature redrawing; feat_w is then (H d, d)).
 * performer and performer-prf draw their features once (at init/convert)
 * and keep them.  performer-redraw's draws are kx_posfeat_redraw's: a pure
 * function of (run seed, layer, head, redraw index); evaluation, sampling,
 * dump-qk and recurrent inference use the draw stored in the checkpoint,
 * the one of the last training step.
 *
 * Attention transfer (convert --transfer-steps) trains the projection W
 * (feat_w) of performer and performer-prf on the teacher's attention rows;
 * fine-tuning then keeps it fixed, as it keeps a drawn one.  A d x d W is
 * as expressive as a learnable d x d map in front of fixed features (W A
 * for any A), so no extra tensor is needed.  performer-redraw has no
 * transfer: its first redraw would discard the trained matrix.
 *
 * Redraw interval.  FAVOR+'s reference code redraws every 1000 steps, which
 * never happens in our 156-step fine-tuning budget.  16 steps gives 10 draws
 * per budget (redraws before steps 16, 32, ..., 144), after the warm-up
 * (7 steps), and is comparable to the memory of AdamW's second moment
 * (beta2 = 0.95: 1/(1 - beta2) = 20 steps), so the optimiser follows each
 * draw for about one of its horizons before the next one. */
#include "experiments/model/attn/dec_features.h"
#include "experiments/model/attn/dec_linear_attn.h"

#define PERFORMER_REDRAW_EVERY 16
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

static const kx_posfeat_spec orf = {"orf", 0.5f, 0}, prf = {"prf", 0.5f, 0},
                             orf_redrawn = {"orf", 0.5f, PERFORMER_REDRAW_EVERY};
static const kx_lin_fmap orf_map = KX_POSFEAT_FMAP(&orf), prf_map = KX_POSFEAT_FMAP(&prf),
                         orf_redrawn_map = KX_POSFEAT_FMAP(&orf_redrawn);

static const char *const transfer_tensors[] = {"feat_w", NULL};

KX_LIN_ATTN_KIND_TRANSFER(kx_attn_performer, "performer",
                          "FAVOR+ causal linear attention, fixed ORF features (m = d), per-head stabiliser", orf_map,
                          transfer_tensors);
KX_LIN_ATTN_KIND_TRANSFER(kx_attn_performer_prf, "performer-prf",
                          "FAVOR+ causal linear attention, fixed iid Gaussian (PRF) features (m = d)", prf_map,
                          transfer_tensors);
KX_LIN_ATTN_KIND(kx_attn_performer_redraw, "performer-redraw",
                 "FAVOR+ causal linear attention, ORF features per head redrawn every "
                 STRINGIFY(PERFORMER_REDRAW_EVERY) " training steps",
                 orf_redrawn_map);
