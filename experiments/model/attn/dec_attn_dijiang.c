/* DiJiang in the paper's form (Eq. 12 WDCF features, Eq. 4 normalised
 * linear attention) with the gating and decay of the released code, as
 * docs/methods.md#dijiang-paper-form describes it (WDCF features with a learnable
 * D and the gating and decay of the released code):
 *
 *   x~     = x / d^(1/4)                    (targets exp(q.k / sqrt d))
 *   l(x)_i = t_i (C x~)_i - |x~|^2 / 2      C the orthonormal DCT-II (FFTW)
 *   phi(x) = D_h (.) exp(l(x) - c(x)) / sqrt(d)        (m = d features)
 *   o_i    = sum_{j<=i} g_h^(i-j) phi(q_i).phi(k_j) v_j / (sum_{j<=i} g_h^(i-j) phi(q_i).phi(k_j) + eps)
 *   y      = proj( SiLU(x Wg^T) (.) GroupNorm_H(o) )   (dec_gate.h)
 *
 * with eps = 1e-6 and g_h the released code's decay (kx_gated_decay_dijiang).
 * t_i = F^-1_chi_d((pi(i) + 1/2) / d): the stratified grid of radii, in a
 * random order pi drawn from the layer's seed (the order decides which
 * frequency gets which radius), one vector per layer shared by its heads.
 * D (one row of d weights per head, learnable, initialised to 1) multiplies
 * both sides, so every score is a sum of D_i^2 times positive terms and the
 * denominator stays positive whatever D learns.
 *
 * Stabiliser c(x): for queries the row maximum of l(q), a per-query factor
 * that cancels between numerator and denominator (up to eps), treated as a
 * constant in the backward pass; for keys c = 0 (a per-key factor would not
 * cancel): l(k)_i <= max_i t_i^2 / 2 (= 49 at d = 64), so key features stay
 * below e^49 and scores below float's range for d <= 64.  The paper drops
 * |x|^2/2 "since x is normalized"; it is kept here because the decoder's
 * q, k are not normalised, and without it exp(t_i y_i) is unbounded.
 * q and k are taken after the teacher's rotary.
 *
 * Tensors of block l: qkv_w, qkv_b, proj_w, proj_b as the softmax kind,
 *   gate_w (C, C)  new, N(0, 2/(5C)) (kx_gate_init);
 *   feat_t (d)     the radii t in feature order: frozen in fine-tuning,
 *                  trained only by attention transfer;
 *   feat_d (H, d)  learnable D, initialised to 1, no weight decay.
 *
 * The DCT of every q and k row (and the transposed DCT, the DCT-III, in the
 * backward pass) is approx/dct.h's float variant; which path (its FFTW plan
 * or one sgemm against its matrix) is faster at the decoder's d is measured
 * by test_decoder_variants (docs/attention-kinds.md#the-dct-of-dijiang). */
#include <math.h>
#include <stdlib.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "approx/dct.h"
#include "core/kx_error.h"
#include "core/kx_rng.h"
#include "core/kx_seed.h"
#include "experiments/model/dec_attn.h"
#include "experiments/model/attn/dec_attn_gated.h"
#include "experiments/model/attn/dec_attn_rows.h"
#include "experiments/model/dec_fastmath.h"
#include "experiments/model/dec_window.h"
#include "experiments/model/attn/dec_gate.h"
#include "experiments/model/dec_layers.h"
#include "samplers/transforms.h"

enum { FEAT_T = KX_GATED_N, FEAT_D, N_TENSORS };
enum { STREAM_GATE = 1, STREAM_RADII = 2 };

/* The path of the DCTs (see the file comment): 1 one sgemm, 0 FFTW. */
static const int dct_by_matrix = 1;

/* out (R, d) = rows of in transformed by the orthonormal DCT of `type`
 * (2: C x, 3: C^T x).  The plan was made and checked by init (or, for a
 * loaded model, is made here once): a failure could only be memory for
 * that one-time plan. */
static void dct_rows(int type, size_t d, size_t R, const float *in, float *out) {
  const kx_dctf *plan = kx_dctf_shared(type, d);
  if (!plan) abort();
  if (dct_by_matrix) kx_matmul_forward(out, in, kx_dctf_matrix(plan), NULL, R, d, d);
  else kx_dctf_rows(plan, R, in, out);
}

static size_t head_dim(const kx_dec_config *cfg) { return cfg->width / cfg->heads; }

/* Saved per side: e = exp(l - c) / sqrt(d) (B,H,T,d), f = D e; then the
 * stabiliser c of every row (B,H,T). */
static size_t aux_floats(const kx_dec_config *cfg, size_t B, size_t T) {
  return B * T * cfg->width + B * cfg->heads * T;
}

static void map_forward(const kx_attn_ctx *c, float *const *p, int is_query, const float *x, float *f,
                        float *aux) {
  size_t d = head_dim(c->cfg), H = c->cfg->heads, T = c->T, R = c->B * H * T;
  float *y = f, *e = aux, *row_shift = aux + R * d; /* C x lands in f, then each row is replaced by its features */
  float s = 1.0f / sqrtf(sqrtf((float)d)), inv_sqrt_m = 1.0f / sqrtf((float)d);
  const float *t = p[FEAT_T];
  dct_rows(2, d, R, x, y);
#pragma omp parallel for schedule(static) if (R * d >= 65536)
  for (size_t r = 0; r < R; r++) {
    const float *xr = x + r * d, *D = p[FEAT_D] + ((r / T) % H) * d;
    float *yr = y + r * d, *er = e + r * d, *fr = f + r * d; /* yr == fr: read before written */
    float norm2 = 0.0f;
    for (size_t i = 0; i < d; i++) norm2 += xr[i] * xr[i];
    float half = 0.5f * s * s * norm2, mx = -INFINITY;
    for (size_t i = 0; i < d; i++) {
      yr[i] *= s;
      er[i] = t[i] * yr[i] - half;
      mx = er[i] > mx ? er[i] : mx;
    }
    float shift = is_query ? mx : 0.0f;
    row_shift[r] = shift;
    for (size_t i = 0; i < d; i++) {
      er[i] = kx_expf(er[i] - shift) * inv_sqrt_m;
      fr[i] = D[i] * er[i];
    }
  }
}

/* dl = df (.) f ; dD_h += sum_rows df (.) e ;
 * dx = s C^T (t (.) dl) - s^2 x sum_i dl_i.  t is frozen: its gradient
 * stays zero (it would otherwise count in the gradient-norm clipping). */
static void map_backward(const kx_attn_ctx *c, float *const *p, float *const *dp, int is_query, const float *x,
                         const float *f, const float *aux, const float *df, float *dx, float *scratch) {
  (void)is_query;
  size_t d = head_dim(c->cfg), H = c->cfg->heads, T = c->T, B = c->B, R = B * H * T;
  const float *e = aux, *t = p[FEAT_T];
  float s = 1.0f / sqrtf(sqrtf((float)d));
  float *dty = scratch; /* t (.) dl, the input of the transposed DCT */
  /* dD in a fixed order: head h sums its rows (b, t) in order. */
#pragma omp parallel for schedule(static)
  for (size_t h = 0; h < H; h++) {
    float *dD = dp[FEAT_D] + h * d;
    for (size_t b = 0; b < B; b++)
      for (size_t tt = 0; tt < T; tt++) {
        size_t r = (b * H + h) * T + tt;
        for (size_t i = 0; i < d; i++) {
          dD[i] += df[r * d + i] * e[r * d + i];
          dty[r * d + i] = t[i] * df[r * d + i] * f[r * d + i];
        }
      }
  }
  dct_rows(3, d, R, dty, dx);
#pragma omp parallel for schedule(static) if (R * d >= 65536)
  for (size_t r = 0; r < R; r++) {
    float sum_dl = 0.0f;
    for (size_t i = 0; i < d; i++) sum_dl += df[r * d + i] * f[r * d + i];
    for (size_t i = 0; i < d; i++) dx[r * d + i] = s * dx[r * d + i] - s * s * x[r * d + i] * sum_dl;
  }
}

static size_t weights_scratch_floats(const kx_dec_config *cfg, size_t T);

/* The sliding window's lam: the queries' stabiliser (the keys have none). */
static void log_scale(const kx_attn_ctx *c, int is_query, const float *aux, float *lam) {
  size_t R = c->B * c->cfg->heads * c->T;
  const float *row_shift = aux + R * head_dim(c->cfg);
  if (is_query)
    for (size_t r = 0; r < R; r++) lam[r] += row_shift[r];
}

static kx_gated_map map(const kx_dec_config *cfg) {
  (void)cfg;
  kx_gated_map g = {.decay = kx_gated_decay_dijiang, .normalise = 1, .eps = 1e-6f, .q_scale = 1.0f,
                    .aux_floats = aux_floats, .map_forward = map_forward, .map_backward = map_backward,
                    .weights_scratch_floats = weights_scratch_floats, .n_tensors = N_TENSORS,
                    .log_scale = log_scale};
  return g;
}

KX_GATED_KIND_HOOKS(map)

static int declare(const kx_dec_config *cfg, size_t layer, kx_param_table *tab, size_t *n) {
  size_t d = head_dim(cfg);
  const kx_gated_tensor feat[] = {{"feat_t", d, 0, 1}, {"feat_d", cfg->heads, d, 0}};
  return kx_gated_declare(cfg, layer, tab, feat, N_TENSORS - KX_GATED_N, n);
}

static int init(const kx_dec_config *cfg, size_t layer, float *const *p, uint64_t seed) {
  (void)layer;
  size_t d = head_dim(cfg);
  int rc = kx_gate_init(p[KX_GATED_GATE_W], cfg->width, kx_seed_derive(seed, STREAM_GATE));
  if (rc) return rc;
  /* Plan the DCTs now, where a failure can be reported. */
  if (!kx_dctf_shared(2, d) || !kx_dctf_shared(3, d))
    return kx_fail_context(KX_ENOMEM, "planning the DiJiang DCT: ");
  size_t *perm = malloc(d * sizeof *perm);
  gsl_rng *r = kx_rng_alloc(kx_seed_derive(seed, STREAM_RADII));
  if (!perm || !r) {
    free(perm);
    gsl_rng_free(r);
    return kx_fail(KX_ENOMEM, "out of memory for the DiJiang radii");
  }
  for (size_t i = 0; i < d; i++) perm[i] = i;
  gsl_ran_shuffle(r, perm, d, sizeof *perm);
  for (size_t i = 0; i < d; i++) p[FEAT_T][i] = (float)kx_chi_inv(((double)perm[i] + 0.5) / (double)d, (double)d);
  for (size_t i = 0; i < cfg->heads * d; i++) p[FEAT_D][i] = 1.0f;
  free(perm);
  gsl_rng_free(r);
  return 0;
}

/* Attention rows, for attention transfer on the teacher's rows
 * (dec_transfer.h) and for attn_weights (attention KL, Figure 3).  The row
 * of query i in head h is the normalised, decayed weight each key j <= i
 * gets in the attention sum:
 *   a_ij = g_h^(i-j) phi(q_i).phi(k_j) / (sum_{j'<=i} g_h^(i-j') phi(q_i).phi(k_j') + eps),
 * so that o_i = sum_j a_ij v_j exactly (kx_lin_causal_weights).  GroupNorm
 * and the SiLU gate act on o_i afterwards, per token, and are not part of
 * the rows.  With q and k the teacher's, the rows depend on the map's D
 * (feat_d, per head) and radii t (feat_t, per layer): transfer on the rows
 * trains both (t only there: fine-tuning keeps it fixed), and the gate
 * (zero gradient, no weight decay in transfer) keeps its initialisation
 * until fine-tuning.  Quadratic in T, as the rows are: used only by
 * attention transfer, on training windows of the context length.
 *
 * Gradient: dfq, dfk from the rows (dec_attn_rows.h); with f = D (.) e,
 * e = exp(l - c) / sqrt(d), l_i = t_i y_i - |x~|^2 / 2, y = C x~, and the
 * stabiliser c held constant (it cancels from the rows up to eps):
 *   dD_h += sum_rows df (.) e,   dt += sum_rows (df (.) f) (.) y,
 * over the query rows and the key rows of (b, h).  y is recomputed from the
 * saved q, k (one DCT of T rows).  Scratch: the rows' | dfq, dfk, y (T, d). */
static size_t weights_scratch_floats(const kx_dec_config *cfg, size_t T) {
  return kx_attn_rows_scratch_floats(T) + 3 * T * head_dim(cfg);
}

/* dD += df (.) e and dt += (df (.) f) (.) s C x over T rows of one side. */
static void map_params_backward(size_t T, size_t d, const float *x, const float *f, const float *e, const float *df,
                                float *y, float *dD, float *dt) {
  float s = 1.0f / sqrtf(sqrtf((float)d));
  dct_rows(2, d, T, x, y);
  for (size_t r = 0; r < T; r++)
    for (size_t i = 0; i < d; i++) {
      dD[i] += df[r * d + i] * e[r * d + i];
      dt[i] += df[r * d + i] * f[r * d + i] * s * y[r * d + i];
    }
}

static void attn_weights_backward(const kx_attn_ctx *c, float *const *p, float *const *dp, const float *acts,
                                  size_t b, size_t h, const float *dA, float *scratch) {
  kx_gated_map g = map(c->cfg);
  size_t T = c->T, d = head_dim(c->cfg), off = (b * c->cfg->heads + h) * T * d, dqk, dv;
  const float *fq, *fk, *eq, *ek, *q, *k, *v;
  int scaled;
  kx_gated_features(&g, c, acts, &fq, &fk, &eq, &ek);
  kx_gated_qkv_view(&g, c, acts, &q, &k, &v, &dqk, &dv, &scaled);
  float *dfq = scratch + kx_attn_rows_scratch_floats(T), *dfk = dfq + T * d, *y = dfk + T * d;
  float *dD = dp[FEAT_D] + h * d, *dt = dp[FEAT_T];
  kx_gated_rows_backward(&g, c, p, dp, acts, b, h, dA, dfq, dfk, scratch);
  map_params_backward(T, d, q + off, fq + off, eq + off, dfq, y, dD, dt);
  map_params_backward(T, d, k + off, fk + off, ek + off, dfk, y, dD, dt);
}

/* feat_t (frozen in fine-tuning) and feat_d for the row target; the gate
 * is listed for the output target (kx_transfer_opts.match_outputs), which
 * reaches it and feat_d; the row target leaves it at zero gradient. */
static const char *const transfer_tensors[] = {"feat_d", "feat_t", "gate_w", NULL};

const kx_attn_kind kx_attn_dijiang = {
    .name = "dijiang",
    .summary = "DiJiang paper form: WDCF features (DCT, chi radii, learnable D), normalised, decay, GroupNorm+SiLU gate",
    KX_GATED_KIND_ENTRIES,
    .attn_weights_backward = attn_weights_backward,
    .transfer_tensors = transfer_tensors,
    .window = 1,
};
