/* Causal linear attention of one (batch, head), float32, in linear time and
 * memory in the sequence length T, forward and backward.
 *
 * With feature rows fq_i, fk_j (m floats) and value rows v_j (dv floats),
 * a per-head decay g in (0, 1] (1 = no decay):
 *   s_ij   = g^(i-j) (fq_i . fk_j)          for j <= i (0 above),
 *   num_i  = sum_{j<=i} s_ij v_j,  den_i = sum_{j<=i} s_ij,
 *   o_i    = num_i / (den_i + eps)  (normalised)   or   o_i = num_i.
 *
 * How.  The sequence is cut into chunks of `chunk` rows.  Inside a chunk the
 * masked product (chunk x chunk scores, decay weights, mask) goes through
 * BLAS; across chunks a running m x dv state S = sum_{j<start} g^(start-j)
 * fk_j^T v_j carries the past (the recurrent form S_n = g S_{n-1} +
 * fk_n^T v_n, a chunk at a time).  The denominator is the same computation
 * without v (row sums of the masked chunk scores, a running sum of fk
 * beside the state).  The backward pass is three such
 * sweeps, two of them anti-causal (a reverse running state from the end):
 *   with dnum_i = dout_i / (den_i + eps), dden_i = -(dout_i . o_i)/(den_i + eps)
 *   (normalised; otherwise dnum = dout, dden = 0),
 *   dfq_i = sum_{j<=i} g^(i-j) (dnum_i . v_j + dden_i) fk_j
 *   dfk_j = sum_{i>=j} g^(i-j) (dnum_i . v_j + dden_i) fq_i
 *   dv_j  = sum_{i>=j} g^(i-j) (fq_i . fk_j) dnum_i.
 * No T x T matrix is ever formed; scratch is O(chunk^2 + m dv) for the
 * forward pass, plus 2 T (dv + 1) for the backward pass.  The decay g is a constant here (no gradient).
 *
 * The quadratic (masked T x T) forms at the end are for tests and for the
 * attention-weights hook (Figure 3, attention KL), never for training.
 *
 * Single-threaded (single-thread BLAS calls): the attention kinds run one
 * call per (batch, head) in parallel, each with its own scratch. */
#ifndef KX_DEC_LINEAR_CAUSAL_H
#define KX_DEC_LINEAR_CAUSAL_H

#include <stddef.h>

typedef struct {
  size_t T;        /* sequence length */
  size_t m;        /* features per row of fq, fk */
  size_t dv;       /* value (and output) width */
  size_t ld_f;     /* row stride of fq, fk, dfq, dfk (>= m) */
  size_t ld_v;     /* row stride of v and dv (>= dv) */
  size_t ld_o;     /* row stride of o and dout (>= dv) */
  float decay;     /* g in (0, 1]; 1 = none */
  int normalise;   /* 1: o = num / (den + eps); 0: o = num */
  float eps;       /* added to den (normalised only); e.g. 1e-6 */
  size_t chunk;    /* rows per chunk; 0 = KX_LIN_CAUSAL_CHUNK */
  /* Forward only, optional: the recurrent state of the rows before these
   * T (m dv floats S = sum_{j<0} g^(-j) fk_j^T v_j, then m floats z, the
   * same sum of fk_j), read at the start and left for the next call
   * (recurrent decoding: S <- g S + fk^T v per row).  NULL: none. */
  float *state;
} kx_lin_causal;

/* 32: against 16, 48, 64 and 96 it was fastest at T = 128 and 4096, m = dv
 * = 64, forward and backward (`kapprox bench-attention --chunk C`): a
 * smaller chunk wastes less on the masked half, a larger one pays less BLAS
 * packing per flop. */
#define KX_LIN_CAUSAL_CHUNK 32

/* Floats of scratch that forward and backward need for `p` (the larger of
 * the two; the same buffer may serve both, it holds nothing between calls),
 * and the smaller amount the forward pass alone needs (no T-sized part). */
size_t kx_lin_causal_scratch_floats(const kx_lin_causal *p);
size_t kx_lin_causal_forward_scratch_floats(const kx_lin_causal *p);

/* fq, fk (T, m), v (T, dv) -> o (T, dv) overwritten.  Normalised: den (T)
 * overwritten with den_i (saved for backward).  Not normalised: den is not
 * touched and may be NULL. */
void kx_lin_causal_forward(const kx_lin_causal *p, const float *fq, const float *fk, const float *v,
                           float *o, float *den, float *scratch);

/* The unnormalised sums of the forward pass: num (T, dv) overwritten with
 * num_i and den (T) with den_i, whatever p->normalise says (the sliding-window
 * hybrid, dec_window.h, combines them with its softmax part).  Uses and
 * updates p->state as the forward pass does. */
void kx_lin_causal_sums(const kx_lin_causal *p, const float *fq, const float *fk, const float *v, float *num,
                        float *den, float *scratch);

/* From dout (T, dv) and the forward's o and den (both unused when not
 * normalised; may be NULL then): dfq, dfk (T, m) and dv (T, dv) are
 * OVERWRITTEN (not accumulated); dout is not modified. */
void kx_lin_causal_backward(const kx_lin_causal *p, const float *fq, const float *fk, const float *v,
                            const float *o, const float *den, const float *dout, float *dfq, float *dfk,
                            float *dv, float *scratch);

/* The backward pass of kx_lin_causal_sums: from gn (T, dv + 1) holding per
 * row the gradients [dnum_i (dv floats), dden_i] of the loss with respect
 * to num_i and den_i, dfq, dfk (T, m) and dv (T, dv) are OVERWRITTEN.
 * scratch: kx_lin_causal_scratch_floats(p) floats (its second T (dv + 1)
 * are not used, so gn may live there). */
void kx_lin_causal_backward_sums(const kx_lin_causal *p, const float *fq, const float *fk, const float *v,
                                 const float *gn, float *dfq, float *dfk, float *dv, float *scratch);

/* Floating-point operations of the chunked forward (backward = 0) or
 * backward (1) pass for `p` as this file computes them (masked-out halves
 * of the in-chunk products included): the benchmark's GFLOP/s. */
double kx_lin_causal_flops(const kx_lin_causal *p, int backward);

/* Quadratic forms (O(T^2); tests and the attention-weights hook).
 * Scores S (T, T), row-major, overwritten: s_ij as above, 0 above the
 * diagonal. */
void kx_lin_causal_scores(const kx_lin_causal *p, const float *fq, const float *fk, float *S);

/* Effective attention weights A (T, T) overwritten, each row a distribution
 * over j <= i: normalised, a_ij = s_ij / (den_i + eps) (the weight o_i
 * really gives v_j); not normalised, a_ij = |s_ij| / sum_j' |s_ij'| (the
 * convention of kx_attn_kind.attn_weights).  A row of zeros stays zero. */
void kx_lin_causal_weights(const kx_lin_causal *p, const float *fq, const float *fk, float *A);

#endif
