/* The sliding-window hybrid attention of one (sequence, head), float32,
 * linear in the sequence length, forward and backward: exact softmax
 * attention over the last `window` positions and a kind's causal linear
 * attention over everything before them, in one normalisation
 * (docs/conversion.md, "Sliding-window hybrid").
 *
 * Inputs per row: q_i, k_j (dqk floats) for the softmax part with logit
 * s_ij = scale q_i . k_j; the kind's features fq_i, fk_j (m floats) as the
 * kind computes them, stabilised; lam_i, the log of the factors the kind's
 * stabilisers divided out of fq_i and of the keys' features (so that
 * exp(lam_i) fq_i . fk_j is the product of the kind's features without
 * stabiliser; 0 for kinds without one); v_j (dv floats); a per-head
 * log-weight beta of the linear part; the kind's decay g and eps.  With
 * window w, W_i = {j : i - w < j <= i} and L_i = {j : j <= i - w}:
 *
 *   e_ij = exp(s_ij)                                       j in W_i
 *   e_ij = exp(beta + lam_i) g^(i-w-j) fq_i . fk_j         j in L_i
 *   y_i  = sum_j e_ij v_j / (sum_j e_ij + [L_i not empty] exp(beta + lam_i) eps)
 *
 * (the decay counts from the window's edge: the linear part of query i is
 * the kind's own attention sums of position i - w, weighted by query i's
 * features).  w = 0 is the kind itself: y_i = num_i / (den_i + eps).
 *
 * Exact and safe.  Numerator and denominator are both multiplied by
 * exp(-M_i), M_i = max( max_{W_i} s_ij, beta + lam_i + ln(D_i + eps) ) with
 * D_i = sum_{L_i} g^(i-w-j) fq_i . fk_j (the features are non-negative for
 * every kind this serves).  The factor cancels exactly; afterwards every
 * window term is <= 1, the linear part's total rho_i (D_i + eps) with
 * rho_i = exp(beta + lam_i - M_i) is <= 1 and one of them equals 1, so the
 * denominator lies in [1, w + 1]: nothing overflows or underflows to a zero
 * denominator whatever the logits and lam.  In the backward pass M_i is a
 * constant (it cancels) and so is lam_i (exp(lam_i) times the stabilised
 * features does not depend on the stabiliser: the kinds treat it as a
 * constant inside their features too), so the gradients are exact.
 *
 * How.  The linear part is dec_linear_causal.h's chunked kernel on the
 * queries shifted by w rows (query i against keys j <= i - w), giving num
 * and den sums; the window part is banded: blocks of KX_WIN_ROWS query rows
 * against their at most KX_WIN_ROWS + w - 1 keys through BLAS, masked to
 * the band.  No T x T matrix: time O(T (m dv + (KX_WIN_ROWS + w) (dqk + dv)))
 * and memory O(T dv + KX_WIN_ROWS (KX_WIN_ROWS + w)).
 *
 * Recurrent decoding keeps, per head, the kind's state (S, z) of every
 * token that has left the window (dec_linear_causal.h's carry) and a buffer
 * of the tokens still in it (kx_win_decode): a token leaving the window is
 * folded into the state by the kernel's carry, exactly as the parallel form
 * counts it.
 *
 * Single-threaded (single-thread BLAS calls), like the kernel: the kinds
 * run one call per (batch, head) in parallel (kx_win_heads below). */
#ifndef KX_DEC_WINDOW_H
#define KX_DEC_WINDOW_H

#include <stddef.h>

#include "experiments/model/dec_attn.h"
#include "experiments/model/dec_linear_causal.h"

/* Query rows per block of the banded softmax part. */
#define KX_WIN_ROWS 32
/* Decoding: new tokens per forward call of the hybrid (the kernel's chunk:
 * a prefill runs in pieces as efficient as the parallel form's), and the
 * rows of the buffer beyond the window (it is compacted when full, once
 * every KX_WIN_SUB decoded tokens). */
#define KX_WIN_SUB 32

typedef struct {
  kx_lin_causal lin; /* the kind's kernel: T = query rows, m, dv, strides,
                        decay, eps, chunk, and in decoding the carried state
                        (lin.normalise is not used: the hybrid always normalises) */
  size_t window;     /* w (0: the linear kind alone) */
  size_t dqk, ld_qk; /* width and row stride of q and k */
  float scale;       /* s_ij = scale q_i . k_j */
  size_t past;       /* rows of k, fk, v before query row 0 (<= window):
                        decoding's window tokens of earlier calls; 0 otherwise */
} kx_win_causal;

/* Per row, saved by forward for backward and the weights: the denominator
 * (after the shift), the shift M_i and log(rho_i) (-inf without a linear
 * part). */
enum { KX_WIN_DEN, KX_WIN_SHIFT, KX_WIN_COEF, KX_WIN_STATS };

/* Scratch of forward alone, and of any of the calls below. */
size_t kx_win_forward_scratch_floats(const kx_win_causal *p);
size_t kx_win_scratch_floats(const kx_win_causal *p);

/* q, fq (T rows), k, fk, v (past + T rows), lam (T; NULL: 0) -> o (T, dv)
 * and stats (T, KX_WIN_STATS) overwritten. */
void kx_win_forward(const kx_win_causal *p, const float *q, const float *k, const float *fq, const float *fk,
                    const float *v, const float *lam, float beta, float *o, float *stats, float *scratch);

/* The backward pass (past = 0, no state) in two halves, because the kinds'
 * feature maps sit between them: the linear part's dfq, dfk (T, m) and dv
 * (T, dv) OVERWRITTEN; then the window part's dq, dk (T, dqk) and dv
 * ACCUMULATED (+=) and *dbeta += the beta gradient.  o, stats: forward's. */
void kx_win_backward_linear(const kx_win_causal *p, const float *fq, const float *fk, const float *v,
                            const float *o, const float *stats, const float *dout, float *dfq, float *dfk, float *dv,
                            float *scratch);
void kx_win_backward_window(const kx_win_causal *p, const float *q, const float *k, const float *v, const float *o,
                            const float *stats, const float *dout, float *dq, float *dk, float *dv, float *dbeta,
                            float *scratch);

/* The effective attention weights A (T, T) (past = 0): a_ij = e_ij
 * exp(-M_i) / den_i as above (zero above the diagonal), the weight y_i
 * gives v_j.  Quadratic: attention KL and maps only. */
void kx_win_weights(const kx_win_causal *p, const float *q, const float *k, const float *fq, const float *fk,
                    const float *stats, float *A);

/* The rows' gradient for attention transfer on the rows (dec_transfer.h),
 * past = 0: for a loss with dA_ij = dL/da_ij (T, T) of the rows above,
 * c_i = sum_{j<=i} dA_ij a_ij and, for j in L_i,
 *   dS_ij = rho_i g^(i-w-j) (dA_ij - c_i) / den_i,
 *   dfq_i = sum_j dS_ij fk_j,   dfk_j = sum_i dS_ij fq_i   (OVERWRITTEN, T x m),
 *   dbeta += sum_i [ sum_{j in L_i} (dA_ij - c_i) a_ij - c_i rho_i eps / den_i ]
 * (rho_i, den_i after the shift, as the stats hold them; the shift and lam
 * constant, as in the training step's backward).  The window's rows depend
 * on q and k only, which transfer does not train: no gradient for them.
 * Quadratic, like kx_win_weights; scratch kx_win_rows_scratch_floats(T). */
size_t kx_win_rows_scratch_floats(size_t T);
void kx_win_rows_backward(const kx_win_causal *p, const float *q, const float *k, const float *fq, const float *fk,
                          const float *stats, const float *dA, float *dfq, float *dfk, float *dbeta, float *scratch);

/* Decoding buffer of one head: window + KX_WIN_SUB rows of k, v and fk. */
size_t kx_win_buffer_floats(const kx_win_causal *p);

/* Recurrent decoding of one head: the T new rows (positions pos .. pos+T-1,
 * contiguous rows: q, k (T, dqk), fq, fk (T, m), v (T, dv)) continue the
 * sequence whose window tokens are in `buf` (fill: its used rows, kept by
 * the caller between calls, 0 at the start) and whose older tokens are in
 * p->lin.state; o and stats as forward; p->past is ignored. */
void kx_win_decode(const kx_win_causal *p, size_t pos, const float *q, const float *k, const float *fq,
                   const float *fk, const float *v, const float *lam, float beta, float *o, float *stats, float *buf,
                   size_t *fill, float *scratch);

/* ---- every (batch, head) of one attention block ---- */

/* What the kinds hand over: their tensors as (B, H, T, width) arrays, their
 * kernel per head, and where the per-head work lives. */
typedef struct {
  const kx_attn_ctx *c;
  /* The kind's kernel of head h for T rows (m, dv, strides with o in
   * (B, T, C) columns of the head, decay, eps). */
  kx_lin_causal (*kernel)(const void *kind, const kx_dec_config *cfg, size_t T, size_t h);
  const void *kind;
  float scale;                      /* logit scale for q as stored */
  const float *q, *k, *v, *fq, *fk; /* (B,H,T,d) and (B,H,T,m), contiguous */
  const float *lam;                 /* (B,H,T) or NULL */
  const float *beta;                /* (H): the tensor win_beta */
  float *o;                         /* (B,T,C): head h in columns h d .. */
  float *stats;                     /* (B,H,T,KX_WIN_STATS) */
  float *scratch;                   /* kx_win_heads_scratch_floats */
  /* Decoding (c->state set): the kind's per-head states (m dv + m floats
   * each, as its plain form keeps them) and the window's part
   * (kx_win_state_floats). */
  float *state, *win_state;
} kx_win_heads;

/* Floats of the per-head forward scratch kept in the kinds' acts, and of
 * the backward scratch, for B sequences of T rows. */
size_t kx_win_heads_act_floats(const kx_win_heads *w, size_t B, size_t T);
size_t kx_win_heads_scratch_floats(const kx_win_heads *w, size_t B, size_t T);
/* Floats of the window's decoding state of one block (beside the kind's). */
size_t kx_win_state_floats(const kx_dec_config *cfg, size_t m);

/* The forward pass of every (b, h) (training/evaluation, or decoding). */
void kx_win_heads_forward(const kx_win_heads *w);
/* Backward halves over every (b, h): dfq, dfk, dv (B,H,T,.) overwritten;
 * then dq, dk, dv accumulated and dbeta (H) += (a fixed summation order:
 * the same bits on any thread count). */
void kx_win_heads_backward_linear(const kx_win_heads *w, const float *dout, float *dfq, float *dfk, float *dv);
void kx_win_heads_backward_window(const kx_win_heads *w, const float *dout, float *dq, float *dk, float *dv,
                                  float *dbeta);
/* attn_weights of sequence b, head h. */
void kx_win_heads_weights(const kx_win_heads *w, size_t b, size_t h, float *A);
/* kx_win_rows_backward of sequence b, head h: dfq, dfk (T, m) of that
 * (b, h), *dbeta (head h's) +=. */
void kx_win_heads_rows_backward(const kx_win_heads *w, size_t b, size_t h, const float *dA, float *dfq, float *dfk,
                                float *dbeta, float *scratch);

/* Declares the hybrid's tensor of block `layer` when cfg->window > 0:
 * win_beta (H), zero at start (exp(0) = 1: the exact combination), no
 * weight decay; *n counts it. */
int kx_win_declare(const kx_dec_config *cfg, size_t layer, kx_param_table *tab, size_t *n);

#endif
