/* DiJiang as the authors' released code computes it
 * (docs/methods.md#dijiang-released-code-form), as an attention kind:
 *
 *   phi(x)_j = softmax_j( (W x)_j ),   W = diag(t) C^T   (d x d, frozen),
 *   o_i = sum_{j<=i} g_h^(i-j) (phi(q_i) . phi(k_j)) v_j     (no denominator),
 *   y   = proj( SiLU(x Wg^T) (.) GroupNorm_H(o) ),
 *   g_h = 1 - exp( ln(1/32) + (ln(1/512) - ln(1/32)) h / (H - 1) )   (H = 1: 1 - 1/32)
 *
 * C is the orthonormal DCT-II, so (W x)_j = t_j (x C)_j with x a row vector
 * (the code's DCT-III of x); t_j = Phi^-1(u_j) are *signed* standard normal
 * scales, u_j uniform on (0,1) from the layer's seeded stream, one matrix
 * per layer shared by its heads; no 1/sqrt(d), no |x|^2 term.  q and k are
 * taken after the teacher's rotary (the code applies partial RoPE before
 * phi too).
 *
 * Decay: the released code keeps per-position trainable tables (initialised
 * to g_h^(n-m)); here the decay is the scalar g_h per head, fixed, because a
 * table of free (n, m) weights has no chunked linear-time form (the causal
 * kernel needs the geometric g^(i-j)).  This is the code's initialisation,
 * not trained.
 *
 * Tensors of block l: qkv_w, qkv_b, proj_w, proj_b as the softmax kind,
 *   gate_w (C, C)   new, N(0, 2/(5C)) (kx_gate_init),
 *   feat_w (d, d)   frozen: W above (stored so the reference and later runs
 *                   read it from the checkpoint instead of redrawing it).
 * feat_w's gradient is left zero (frozen) by the training step; attention
 * transfer trains it on the teacher's rows (attn_weights_backward below).
 *
 * Attention rows.  Without a denominator, attn_weights gives
 * |s_ij| / sum_j' |s_ij'| (dec_attn.h's convention).  Here that is no mere
 * convention: phi is a softmax (positive) and g_h > 0, so s_ij > 0 and the
 * row is s_ij / sum_j' s_ij', the normalised attention of the same
 * features; o_i = Z_i sum_j a_ij v_j with Z_i = sum_j s_ij > 0, and the
 * per-head GroupNorm removes Z_i (GroupNorm(Z u) = GroupNorm(u) up to its
 * eps, which becomes eps / Z_i^2).  The block's output therefore depends on
 * the features only through these rows, and the teacher's rows are a
 * meaningful transfer target. */
#include <math.h>
#include <stdlib.h>

#include <cblas.h>
#include <gsl/gsl_rng.h>

#include "approx/dct.h"
#include "core/kx_error.h"
#include "core/kx_rng.h"
#include "core/kx_seed.h"
#include "experiments/model/dec_attn.h"
#include "experiments/model/attn/dec_attn_gated.h"
#include "experiments/model/attn/dec_attn_rows.h"
#include "experiments/model/dec_fastmath.h"
#include "experiments/model/attn/dec_gate.h"
#include "experiments/model/dec_layers.h"
#include "samplers/transforms.h"

enum { FEAT_W = KX_GATED_N, N_TENSORS };
enum { STREAM_GATE = 1, STREAM_SCALES = 2 };

/* In place over R rows of d: z <- softmax(z). */
static void softmax_rows(float *z, size_t R, size_t d) {
#pragma omp parallel for schedule(static) if (R * d >= 65536)
  for (size_t r = 0; r < R; r++) {
    float *zr = z + r * d, mx = zr[0], sum = 0.0f;
    for (size_t j = 1; j < d; j++) mx = zr[j] > mx ? zr[j] : mx;
    for (size_t j = 0; j < d; j++) sum += zr[j] = kx_expf(zr[j] - mx);
    float inv = 1.0f / sum;
    for (size_t j = 0; j < d; j++) zr[j] *= inv;
  }
}

/* dz (R, d) = f (.) (df - <f, df>) per row. */
static void softmax_rows_backward(float *dz, const float *f, const float *df, size_t R, size_t d) {
#pragma omp parallel for schedule(static) if (R * d >= 65536)
  for (size_t r = 0; r < R; r++) {
    const float *fr = f + r * d, *dfr = df + r * d;
    float dot = 0.0f;
    for (size_t j = 0; j < d; j++) dot += fr[j] * dfr[j];
    for (size_t j = 0; j < d; j++) dz[r * d + j] = fr[j] * (dfr[j] - dot);
  }
}

static size_t head_dim(const kx_dec_config *cfg) { return cfg->width / cfg->heads; }

/* f (R, d) = row softmax of x (R, d) W^T, R = B H T rows. */
static void map_forward(const kx_attn_ctx *c, float *const *p, int is_query, const float *x, float *f,
                        float *aux) {
  (void)is_query, (void)aux;
  size_t d = head_dim(c->cfg), R = c->B * c->cfg->heads * c->T;
  kx_matmul_forward(f, x, p[FEAT_W], NULL, R, d, d);
  softmax_rows(f, R, d);
}

/* dz = f (.) (df - <f, df>) ; dx = dz W.  W is frozen: its gradient stays
 * zero (it would otherwise count in the gradient-norm clipping). */
static void map_backward(const kx_attn_ctx *c, float *const *p, float *const *dp, int is_query, const float *x,
                         const float *f, const float *aux, const float *df, float *dx, float *scratch) {
  (void)is_query, (void)aux, (void)dp, (void)x;
  size_t d = head_dim(c->cfg), R = c->B * c->cfg->heads * c->T;
  float *dz = scratch, *Wt = malloc(d * d * sizeof *Wt);
  if (!Wt) abort(); /* d x d floats: cannot fail short of a broken machine */
  for (size_t j = 0; j < d; j++)
    for (size_t k = 0; k < d; k++) Wt[k * d + j] = p[FEAT_W][j * d + k];
  softmax_rows_backward(dz, f, df, R, d);
  kx_matmul_forward(dx, dz, Wt, NULL, R, d, d); /* dz (W^T)^T = dz W */
  free(Wt);
}

static size_t weights_scratch_floats(const kx_dec_config *cfg, size_t T);

static kx_gated_map map(const kx_dec_config *cfg) {
  (void)cfg;
  kx_gated_map g = {.decay = kx_gated_decay_dijiang, .q_scale = 1.0f, .map_forward = map_forward,
                    .map_backward = map_backward, .weights_scratch_floats = weights_scratch_floats};
  return g;
}

KX_GATED_KIND_HOOKS(map)

static int declare(const kx_dec_config *cfg, size_t layer, kx_param_table *tab, size_t *n) {
  size_t d = head_dim(cfg);
  const kx_gated_tensor feat_w = {"feat_w", d, d, 1};
  return kx_gated_declare(cfg, layer, tab, &feat_w, N_TENSORS - KX_GATED_N, n);
}

static int init(const kx_dec_config *cfg, size_t layer, float *const *p, uint64_t seed) {
  (void)layer;
  size_t d = head_dim(cfg);
  int rc = kx_gate_init(p[KX_GATED_GATE_W], cfg->width, kx_seed_derive(seed, STREAM_GATE));
  if (rc) return rc;
  double *C = malloc(d * d * sizeof *C);
  gsl_rng *r = kx_rng_alloc(kx_seed_derive(seed, STREAM_SCALES));
  if (!C || !r || kx_dct_matrix(2, d, C)) {
    free(C);
    gsl_rng_free(r);
    return kx_fail(KX_ENOMEM, "out of memory for the DiJiang feature matrix");
  }
  for (size_t j = 0; j < d; j++) {
    double t = kx_normal_inv(gsl_rng_uniform_pos(r));
    for (size_t k = 0; k < d; k++) p[FEAT_W][j * d + k] = (float)(t * C[k * d + j]);
  }
  free(C);
  gsl_rng_free(r);
  return 0;
}

/* The rows' gradient with respect to the features (dec_attn_rows.h, the
 * unnormalised |s| form), then through the softmax to W: with z = x W^T,
 * dz = f (.) (df - <f, df>) per row and dW += dz^T x, over the query rows
 * and the key rows of (b, h).  Scratch: the rows' | dfq, dfk, dz (T, d). */
static size_t weights_scratch_floats(const kx_dec_config *cfg, size_t T) {
  return kx_attn_rows_scratch_floats(T) + 3 * T * head_dim(cfg);
}

static void attn_weights_backward(const kx_attn_ctx *c, float *const *p, float *const *dp, const float *acts,
                                  size_t b, size_t h, const float *dA, float *scratch) {
  (void)p;
  kx_gated_map g = map(c->cfg);
  size_t T = c->T, d = head_dim(c->cfg), off = (b * c->cfg->heads + h) * T * d, dqk, dv;
  const float *fq, *fk, *aq, *ak, *x[2], *v;
  int scaled;
  kx_gated_features(&g, c, acts, &fq, &fk, &aq, &ak);
  kx_gated_qkv_view(&g, c, acts, &x[0], &x[1], &v, &dqk, &dv, &scaled);
  kx_lin_causal kp = kx_gated_kernel(&g, c->cfg, T, h);
  float *df[2], *dz;
  df[0] = scratch + kx_attn_rows_scratch_floats(T);
  df[1] = df[0] + T * d;
  dz = df[1] + T * d;
  kx_attn_rows_backward(&kp, fq + off, fk + off, dA, df[0], df[1], scratch);
  const float *f[2] = {fq + off, fk + off};
  for (int side = 0; side < 2; side++) {
    softmax_rows_backward(dz, f[side], df[side], T, d);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, (int)d, (int)T, 1.0f, dz, (int)d, x[side] + off,
                (int)d, 1.0f, dp[FEAT_W], (int)d);
  }
}

static const char *const transfer_tensors[] = {"feat_w", NULL};

const kx_attn_kind kx_attn_dijiang_code = {
    .name = "dijiang-code",
    .summary = "released DiJiang code: softmax of signed-normal-scaled DCT features, decay, no denominator, GroupNorm+SiLU gate",
    KX_GATED_KIND_ENTRIES,
    .attn_weights_backward = attn_weights_backward,
    .transfer_tensors = transfer_tensors,
    .no_window = KX_GATED_NO_WINDOW,
};
