/* DiJiang, every form of it (docs/dijiang-factors.md): the paper's (Eq. 12
 * WDCF features, Eq. 4 normalised linear attention), the authors' released
 * code's, and every mixture, from nine switches (dec_dijiang_form.h).  The
 * kinds `dijiang`, `dijiang-code` and `dijiang-released` are presets; a
 * model's form is its kind's preset with kx_dec_config.dijiang_flips
 * flipped.  For one q or k row x (after the teacher's rotary) of head h:
 *
 *   x~     = x / d^(1/4)    [prescale]  or x
 *   y      = C x~  (DCT-II) [dct2]      or C^T x~ (DCT-III)   C orthonormal
 *   l_i    = t_i y_i - |x~|^2 / 2 [sq]  or t_i y_i
 *   phi(x) = D_h (.) exp(l - c) / sqrt(d)            [exp]
 *            D_h (.) softmax_i(l)                    [softmax]
 *            (D_h: a learnable row per head [D], or 1)
 *   o_i    = sum_{j<=i} g_h^(i-j) phi(q_i).phi(k_j) v_j [/ (sum_{j<=i} g_h^(i-j) phi(q_i).phi(k_j) + eps)] [den]
 *   y      = proj( SiLU(x Wg^T) (.) GroupNorm(o) )          (dec_gate.h)
 *
 * with eps = 1e-6, g_h the released code's decay (kx_gated_decay_dijiang)
 * and GroupNorm per head without affine [gnhead] or of d groups over the
 * C channels with affine gn_w, gn_b [gnd].  t: the stratified chi_d radii
 * F^-1_chi_d((pi(i) + 1/2) / d) in a random order pi [chi] (the order
 * decides which frequency gets which radius), or signed normals
 * Phi^-1(u_i) [normal]; one vector per layer shared by its heads, drawn
 * from the layer's seed.  gate_w ~ N(0, 2/(5C)) [gatenormal] or
 * xavier_uniform with gain 2^-2.5 [gatexavier].
 *
 * Stabiliser c of the exp features: for queries the row maximum of l(q), a
 * per-query factor (it cancels in the ratio up to eps, and without the
 * denominator in the per-head GroupNorm up to its eps), a constant in the
 * backward pass; for keys none (a per-key factor would not cancel).  With
 * the |x~|^2 term, l(k)_i <= t_i^2 / 2 (C is orthonormal, so |x~|^2 >=
 * y_i^2), below e^49 at d = 64; without it exp(t_i y_i) has no bound and
 * may overflow: such a form can diverge, which training reports.  D
 * multiplies both sides, so every score is a sum of D_i^2 times positive
 * terms and a denominator stays positive.  The softmax features need no
 * stabiliser (they subtract their own row maximum) and are unchanged by
 * the |x~|^2 term, a per-row constant.
 *
 * Tensors of block l: qkv_w, qkv_b, proj_w, proj_b as the softmax kind,
 *   gate_w (C, C)  new (the gate switch);
 *   feat_t (d)     frozen: the scales t in feature order (kind dijiang), or
 *   feat_w (d, d)  frozen: W = diag(t) M, M = C or C^T, the scales folded
 *                  into the DCT as the released code stores its projection
 *                  (kinds dijiang-code, dijiang-released);
 *   feat_d (H, d)  [D] learnable D, initialised to 1, no weight decay;
 *   gn_w, gn_b (C) [gnd] the GroupNorm's affine part, 1 and 0, no weight
 *                  decay.
 *
 * The DCT of every q and k row (and its transpose in the backward pass) is
 * approx/dct.h's float variant: its batched kernels where it has them
 * (power-of-two d, a multiple of 16: the default d = 64), otherwise one
 * sgemm against its matrix, faster there than FFTW's per-row plans; both
 * timed by test_decoder_variants (docs/attention-kinds.md#the-dct-of-dijiang).  The
 * presets' operations run in the order of the two kinds they replaced, so
 * their checkpoints compute and train bit for bit as before. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "approx/dct.h"
#include "core/kx_error.h"
#include "core/kx_rng.h"
#include "core/kx_seed.h"
#include "experiments/model/attn/dec_attn_gated.h"
#include "experiments/model/attn/dec_attn_rows.h"
#include "experiments/model/attn/dec_gate.h"
#include "experiments/model/dec_attn.h"
#include "experiments/model/dec_dijiang_form.h"
#include "experiments/model/dec_fastmath.h"
#include "experiments/model/dec_layers.h"
#include "samplers/transforms.h"

/* The scales' tensor is always the first after the shared five. */
enum { SCALES = KX_GATED_N };
enum { STREAM_GATE = 1, STREAM_SCALES = 2 };
/* The released code's gate initialisation: xavier_uniform_, gain 2^-2.5. */
#define XAVIER_GAIN 0.17677669529663687 /* 2^-2.5 */


/* A form's switches, decoded, and where its tensors are. */
typedef struct {
  int softmax, normal, dct3, weights, square, prescale, normalise, gn_d, xavier; /* the factors */
  int matrix;                  /* scales in feat_w (else feat_t) */
  size_t d_at, gn_at, n;       /* tensor indices of feat_d, gn_w (0: none); tensors in all */
} form_t;

static form_t form_of(const kx_dec_config *cfg) {
  const kx_dijiang_preset *pr = kx_dijiang_preset_of(cfg->attn_kind);
  kx_dijiang_form f = pr ? pr->form ^ cfg->dijiang_flips : 0;
  form_t s = {kx_dj_released(f, KX_DJ_FEATURES),   kx_dj_released(f, KX_DJ_SCALES),
              kx_dj_released(f, KX_DJ_DCT),        !kx_dj_released(f, KX_DJ_WEIGHTS),
              !kx_dj_released(f, KX_DJ_SQUARE),    !kx_dj_released(f, KX_DJ_PRESCALE),
              !kx_dj_released(f, KX_DJ_NORMALISER), kx_dj_released(f, KX_DJ_GROUPNORM),
              kx_dj_released(f, KX_DJ_GATE),       pr && pr->matrix, 0, 0, 0};
  size_t next = SCALES + 1;
  s.d_at = s.weights ? next++ : 0;
  s.gn_at = s.gn_d ? next : 0;
  next += s.gn_d ? 2 : 0;
  s.n = next;
  return s;
}

static size_t head_dim(const kx_dec_config *cfg) { return cfg->width / cfg->heads; }

/* out (R, d) = rows of in transformed by the orthonormal DCT of `type`
 * (2: C x, 3: C^T x).  The plan was made and checked by init (or, for a
 * loaded model, is made here once): a failure could only be memory for
 * that one-time plan. */
static void dct_rows(int type, size_t d, size_t R, const float *in, float *out) {
  const kx_dctf *plan = kx_dctf_shared(type, d);
  if (!plan) abort();
  if (kx_dctf_is_batched(plan)) kx_dctf_rows(plan, R, in, out);
  else kx_matmul_forward(out, in, kx_dctf_matrix(plan), NULL, R, d, d);
}

/* The row's prescale s (1 without) and 1/sqrt(d). */
static float prescale(const form_t *s, size_t d) { return s->prescale ? 1.0f / sqrtf(sqrtf((float)d)) : 1.0f; }

/* Saved per side: with D, e (B,H,T,d), the features before D (f = D e);
 * with exp features, then the stabiliser c of every row (B,H,T) (the
 * sliding window's log_scale). */
static size_t aux_floats(const kx_dec_config *cfg, size_t B, size_t T) {
  form_t s = form_of(cfg);
  return (s.weights ? B * T * cfg->width : 0) + (s.softmax ? 0 : B * cfg->heads * T);
}

/* Where the row stabilisers are in a side's aux (exp features only). */
static float *row_shifts(const form_t *s, const kx_attn_ctx *c, const float *aux) {
  size_t R = c->B * c->cfg->heads * c->T;
  return (float *)aux + (s->weights ? R * head_dim(c->cfg) : 0);
}

static void map_forward(const kx_attn_ctx *c, float *const *p, int is_query, const float *x, float *f,
                        float *aux) {
  form_t s = form_of(c->cfg);
  size_t d = head_dim(c->cfg), H = c->cfg->heads, T = c->T, R = c->B * H * T;
  float sc = prescale(&s, d), inv_sqrt_m = 1.0f / sqrtf((float)d);
  const float *t = s.matrix ? NULL : p[SCALES];
  float *shifts = s.softmax ? NULL : row_shifts(&s, c, aux);
  /* the linear part lands in f; each row is then replaced by its features */
  if (s.matrix) kx_matmul_forward(f, x, p[SCALES], NULL, R, d, d);
  else dct_rows(s.dct3 ? 3 : 2, d, R, x, f);
#pragma omp parallel for schedule(static) if (R * d >= 65536)
  for (size_t r = 0; r < R; r++) {
    const float *xr = x + r * d, *D = s.weights ? p[s.d_at] + ((r / T) % H) * d : NULL;
    float *yr = f + r * d, *fr = f + r * d, *er = s.weights ? aux + r * d : fr; /* yr == fr: read before written */
    float half = 0.0f, mx = -INFINITY;
    if (s.square) {
      float norm2 = 0.0f;
      for (size_t i = 0; i < d; i++) norm2 += xr[i] * xr[i];
      half = 0.5f * sc * sc * norm2;
    }
    for (size_t i = 0; i < d; i++) {
      float z;
      if (t) {
        if (s.prescale) yr[i] *= sc;
        z = t[i] * yr[i];
      } else {
        z = s.prescale ? yr[i] * sc : yr[i];
      }
      er[i] = s.square ? z - half : z;
      mx = er[i] > mx ? er[i] : mx;
    }
    if (s.softmax) {
      float sum = 0.0f;
      for (size_t i = 0; i < d; i++) sum += er[i] = kx_expf(er[i] - mx);
      float inv = 1.0f / sum;
      for (size_t i = 0; i < d; i++) er[i] *= inv;
    } else {
      float shift = is_query ? mx : 0.0f;
      shifts[r] = shift;
      for (size_t i = 0; i < d; i++) er[i] = kx_expf(er[i] - shift) * inv_sqrt_m;
    }
    if (D)
      for (size_t i = 0; i < d; i++) fr[i] = D[i] * er[i];
  }
}

/* The gradient dl of row r's pre-feature values l from df, written to dl
 * (NULL: not written); returns sum_i dl_i (the |x~|^2 term's factor).
 * exp: f = D e, dl = df (.) f.  softmax: f = D e, e = softmax(l), de = D
 * (.) df, dl = e (.) (de - <e, de>). */
static float row_dl(const form_t *s, const float *D, const float *f, const float *e, const float *df, float *dl,
                    size_t d) {
  float sum = 0.0f;
  if (!s->softmax) {
    for (size_t i = 0; i < d; i++) {
      float v = df[i] * f[i];
      if (dl) dl[i] = v;
      sum += v;
    }
    return sum;
  }
  float dot = 0.0f;
  if (D) {
    for (size_t i = 0; i < d; i++) dot += e[i] * (D[i] * df[i]);
    for (size_t i = 0; i < d; i++) {
      float v = e[i] * (D[i] * df[i] - dot);
      if (dl) dl[i] = v;
      sum += v;
    }
  } else {
    for (size_t j = 0; j < d; j++) dot += f[j] * df[j];
    for (size_t j = 0; j < d; j++) {
      float v = f[j] * (df[j] - dot);
      if (dl) dl[j] = v;
      sum += v;
    }
  }
  return sum;
}

/* dD_h += sum_rows df (.) e, head h summing its rows (b, t) in order, so
 * the sums do not depend on the thread count. */
static void weights_backward(const kx_attn_ctx *c, float *dD, const float *e, const float *df) {
  size_t d = head_dim(c->cfg), H = c->cfg->heads, T = c->T, B = c->B;
#pragma omp parallel for schedule(static)
  for (size_t h = 0; h < H; h++)
    for (size_t b = 0; b < B; b++)
      for (size_t tt = 0; tt < T; tt++) {
        size_t r = (b * H + h) * T + tt;
        for (size_t i = 0; i < d; i++) dD[h * d + i] += df[r * d + i] * e[r * d + i];
      }
}

/* dx = s M^T (t (.) dl) - s^2 x sum_i dl_i [sq]   (vector scales), or
 * dx = s dl W - s^2 x sum_i dl_i [sq]                (matrix W = diag(t) M);
 * dD from df.  The scales are frozen: their gradient stays zero (it would
 * otherwise count in the gradient-norm clipping). */
static void map_backward(const kx_attn_ctx *c, float *const *p, float *const *dp, int is_query, const float *x,
                         const float *f, const float *aux, const float *df, float *dx, float *scratch) {
  (void)is_query;
  form_t s = form_of(c->cfg);
  size_t d = head_dim(c->cfg), H = c->cfg->heads, T = c->T, R = c->B * H * T;
  float sc = prescale(&s, d);
  const float *t = s.matrix ? NULL : p[SCALES];
  float *g = scratch; /* t (.) dl (vector scales) or dl (matrix): the input of the transposed linear part */
  if (s.weights) weights_backward(c, dp[s.d_at], aux, df);
#pragma omp parallel for schedule(static) if (R * d >= 65536)
  for (size_t r = 0; r < R; r++) {
    const float *D = s.weights ? p[s.d_at] + ((r / T) % H) * d : NULL, *e = s.weights ? aux + r * d : f + r * d;
    float *gr = g + r * d;
    const float *fr = f + r * d, *dfr = df + r * d;
    if (t && !s.softmax) {
      /* t df f: the paper form's order */
      for (size_t i = 0; i < d; i++) gr[i] = t[i] * dfr[i] * fr[i];
      continue;
    }
    row_dl(&s, D, fr, e, dfr, gr, d);
    if (t)
      for (size_t i = 0; i < d; i++) gr[i] *= t[i];
  }
  if (t) {
    dct_rows(s.dct3 ? 2 : 3, d, R, g, dx); /* M^T: C^T for M = C, C for M = C^T */
  } else {
    /* dx = g W: the product with the transposed matrix */
    float *Wt = malloc(d * d * sizeof *Wt);
    if (!Wt) abort(); /* d x d floats: cannot fail short of a broken machine */
    for (size_t j = 0; j < d; j++)
      for (size_t k = 0; k < d; k++) Wt[k * d + j] = p[SCALES][j * d + k];
    kx_matmul_forward(dx, g, Wt, NULL, R, d, d);
    free(Wt);
  }
  if (!s.prescale && !s.square) return;
#pragma omp parallel for schedule(static) if (R * d >= 65536)
  for (size_t r = 0; r < R; r++) {
    const float *D = s.weights ? p[s.d_at] + ((r / T) % H) * d : NULL, *e = s.weights ? aux + r * d : f + r * d;
    float sum_dl = s.square ? row_dl(&s, D, f + r * d, e, df + r * d, NULL, d) : 0.0f;
    for (size_t i = 0; i < d; i++)
      dx[r * d + i] = s.square ? sc * dx[r * d + i] - sc * sc * x[r * d + i] * sum_dl : sc * dx[r * d + i];
  }
}

static size_t weights_scratch_floats(const kx_dec_config *cfg, size_t T);

/* The sliding window's lam: the queries' stabiliser (keys have none; the
 * softmax features have no stabiliser to undo: their normalisation is part
 * of the form).  The window takes only the forms with the denominator
 * (kx_dec_config_check_window). */
static void log_scale(const kx_attn_ctx *c, int is_query, const float *aux, float *lam) {
  form_t s = form_of(c->cfg);
  if (s.softmax || !is_query) return;
  size_t R = c->B * c->cfg->heads * c->T;
  const float *shifts = row_shifts(&s, c, aux);
  for (size_t r = 0; r < R; r++) lam[r] += shifts[r];
}

static kx_gated_map map(const kx_dec_config *cfg) {
  form_t s = form_of(cfg);
  kx_gated_map g = {.decay = kx_gated_decay_dijiang, .normalise = s.normalise, .eps = s.normalise ? 1e-6f : 0.0f,
                    .q_scale = 1.0f, .aux_floats = aux_floats, .map_forward = map_forward,
                    .map_backward = map_backward, .weights_scratch_floats = weights_scratch_floats,
                    .n_tensors = s.n, .log_scale = log_scale, .gn_groups = s.gn_d ? head_dim(cfg) : 0,
                    .gn_affine = s.gn_at};
  return g;
}

KX_GATED_KIND_HOOKS(map)

static int declare(const kx_dec_config *cfg, size_t layer, kx_param_table *tab, size_t *n) {
  form_t s = form_of(cfg);
  size_t d = head_dim(cfg), k = 0;
  kx_gated_tensor extra[4];
  extra[k++] = s.matrix ? (kx_gated_tensor){"feat_w", d, d, 1} : (kx_gated_tensor){"feat_t", d, 0, 1};
  if (s.weights) extra[k++] = (kx_gated_tensor){"feat_d", cfg->heads, d, 0};
  if (s.gn_d) {
    extra[k++] = (kx_gated_tensor){"gn_w", cfg->width, 0, 0};
    extra[k++] = (kx_gated_tensor){"gn_b", cfg->width, 0, 0};
  }
  return kx_gated_declare(cfg, layer, tab, extra, k, n);
}

/* t: the stratified chi_d radii in a seeded random order, or signed
 * standard normals Phi^-1(u), u uniform on (0, 1). */
static int draw_scales(const form_t *s, size_t d, uint64_t seed, double *t) {
  gsl_rng *r = kx_rng_alloc(seed);
  size_t *perm = s->normal ? NULL : malloc(d * sizeof *perm);
  if (!r || (!s->normal && !perm)) {
    free(perm);
    gsl_rng_free(r);
    return kx_fail(KX_ENOMEM, "out of memory for the DiJiang scales");
  }
  if (s->normal) {
    for (size_t j = 0; j < d; j++) t[j] = kx_normal_inv(gsl_rng_uniform_pos(r));
  } else {
    for (size_t i = 0; i < d; i++) perm[i] = i;
    gsl_ran_shuffle(r, perm, d, sizeof *perm);
    for (size_t i = 0; i < d; i++) t[i] = kx_chi_inv(((double)perm[i] + 0.5) / (double)d, (double)d);
  }
  free(perm);
  gsl_rng_free(r);
  return 0;
}

static int init(const kx_dec_config *cfg, size_t layer, float *const *p, uint64_t seed) {
  (void)layer;
  form_t s = form_of(cfg);
  size_t d = head_dim(cfg), C = cfg->width;
  uint64_t gate_seed = kx_seed_derive(seed, STREAM_GATE);
  int rc = s.xavier ? kx_gate_init_xavier(p[KX_GATED_GATE_W], C, XAVIER_GAIN, gate_seed)
                    : kx_gate_init(p[KX_GATED_GATE_W], C, gate_seed);
  if (rc) return rc;
  /* Plan the DCTs now, where a failure can be reported. */
  if (!s.matrix && (!kx_dctf_shared(2, d) || !kx_dctf_shared(3, d)))
    return kx_fail_context(KX_ENOMEM, "planning the DiJiang DCT: ");
  double *t = malloc(d * sizeof *t), *M = s.matrix ? malloc(d * d * sizeof *M) : NULL;
  if (!t || (s.matrix && (!M || kx_dct_matrix(2, d, M)))) {
    free(t);
    free(M);
    return kx_fail(KX_ENOMEM, "out of memory for the DiJiang feature matrix");
  }
  rc = draw_scales(&s, d, kx_seed_derive(seed, STREAM_SCALES), t);
  for (size_t j = 0; !rc && j < d; j++) {
    if (!s.matrix) {
      p[SCALES][j] = (float)t[j];
      continue;
    }
    /* row j of diag(t) M: M = C^T (C's column j) or C (its row j) */
    for (size_t k = 0; k < d; k++) p[SCALES][j * d + k] = (float)(t[j] * (s.dct3 ? M[k * d + j] : M[j * d + k]));
  }
  if (s.weights)
    for (size_t i = 0; i < cfg->heads * d; i++) p[s.d_at][i] = 1.0f;
  if (s.gn_d)
    for (size_t i = 0; i < C; i++) p[s.gn_at][i] = 1.0f, p[s.gn_at + 1][i] = 0.0f;
  free(t);
  free(M);
  return rc;
}

/* Attention rows, for attention transfer on the teacher's rows
 * (dec_transfer.h) and for attn_weights (attention KL, Figure 3).  The row
 * of query i in head h is the weight each key j <= i gets in the attention
 * sum; with the denominator
 *   a_ij = g_h^(i-j) phi(q_i).phi(k_j) / (sum_{j'<=i} g_h^(i-j') phi(q_i).phi(k_j') + eps),
 * so that o_i = sum_j a_ij v_j exactly (kx_lin_causal_weights); without it
 * |s_ij| / sum_j' |s_ij'| (dec_attn.h's convention), which here is more
 * than a convention: every feature is positive and g_h > 0, so s_ij > 0,
 * o_i = Z_i sum_j a_ij v_j with Z_i = sum_j s_ij, and the GroupNorm removes
 * Z_i (a factor of the whole head: the released GroupNorm's groups of C/d =
 * H channels lie within one head when H divides d), up to its eps.  The
 * block's output then depends on the features only through these rows,
 * and the teacher's rows are a meaningful target.  GroupNorm and the SiLU
 * gate act per token after the sum and are not part of the rows.
 *
 * With q and k the teacher's, the rows depend on the map's parameters:
 * D (feat_d, per head, when the form has it) and the scales, the vector t
 * (feat_t) or the whole matrix W (feat_w).  Transfer on the rows trains
 * them (the scales only there: fine-tuning keeps them fixed); the gate
 * (zero gradient, no weight decay in transfer) keeps its initialisation
 * until fine-tuning.  Quadratic in T, as the rows are: used only by
 * attention transfer, on training windows of the context length.
 *
 * Gradient: dfq, dfk from the rows (dec_attn_rows.h); with f = D (.) e
 * and the stabiliser held constant (it cancels from the rows up to eps):
 * dD_h += sum_rows df (.) e, then dl through the features (row_dl), and
 *   vector:  dt += sum_rows dl (.) s y,   y = M x (M = C or C^T),
 *   matrix:  dW += s dl^T x   (z = s W x),
 * over the query rows and the key rows of (b, h).  y is recomputed from the
 * saved q, k (one DCT of T rows).  Scratch: the rows' | dfq, dfk, dl or y
 * (T, d). */
static size_t weights_scratch_floats(const kx_dec_config *cfg, size_t T) {
  return kx_attn_rows_scratch_floats(T) + 4 * T * head_dim(cfg);
}

/* The map's parameters' gradient from df over the T rows of one side of
 * head h (x, f, e: its q or k rows, features, features before D); y and dl
 * (T, d) are work space. */
static void map_params_backward(const form_t *s, float *const *p, float *const *dp, size_t h, size_t T, size_t d,
                                const float *x, const float *f, const float *e, const float *df, float *y, float *dl) {
  float sc = prescale(s, d);
  const float *D = s->weights ? p[s->d_at] + h * d : NULL;
  if (s->weights)
    for (size_t r = 0; r < T; r++)
      for (size_t i = 0; i < d; i++) dp[s->d_at][h * d + i] += df[r * d + i] * e[r * d + i];
  for (size_t r = 0; r < T; r++) row_dl(s, D, f + r * d, e + r * d, df + r * d, dl + r * d, d);
  if (s->matrix) { /* dW += (sc dl)^T x */
    if (s->prescale)
      for (size_t k = 0; k < T * d; k++) dl[k] *= sc;
    kx_matmul_backward(NULL, dp[SCALES], NULL, dl, x, p[SCALES], T, d, d);
    return;
  }
  dct_rows(s->dct3 ? 3 : 2, d, T, x, y);
  for (size_t r = 0; r < T; r++)
    for (size_t i = 0; i < d; i++) dp[SCALES][i] += dl[r * d + i] * sc * y[r * d + i];
}

static void attn_weights_backward(const kx_attn_ctx *c, float *const *p, float *const *dp, const float *acts,
                                  size_t b, size_t h, const float *dA, float *scratch) {
  form_t s = form_of(c->cfg);
  kx_gated_map g = map(c->cfg);
  size_t T = c->T, d = head_dim(c->cfg), off = (b * c->cfg->heads + h) * T * d, dqk, dv;
  const float *fq, *fk, *eq, *ek, *q, *k, *v;
  int scaled;
  kx_gated_features(&g, c, acts, &fq, &fk, &eq, &ek);
  kx_gated_qkv_view(&g, c, acts, &q, &k, &v, &dqk, &dv, &scaled);
  float *dfq = scratch + kx_attn_rows_scratch_floats(T), *dfk = dfq + T * d, *y = dfk + T * d, *dl = y + T * d;
  kx_gated_rows_backward(&g, c, p, dp, acts, b, h, dA, dfq, dfk, scratch);
  /* without D the features before D are the features */
  eq = s.weights ? eq + off : fq + off, ek = s.weights ? ek + off : fk + off;
  map_params_backward(&s, p, dp, h, T, d, q + off, fq + off, eq, dfq, y, dl);
  map_params_backward(&s, p, dp, h, T, d, k + off, fk + off, ek, dfk, y, dl);
}

/* What transfer trains: the scales (frozen in fine-tuning) and D for the
 * row target; the gate is listed for the output target
 * (kx_transfer_opts.match_outputs), which reaches it and D; the row target
 * leaves it at zero gradient.  The kinds that store the scales as a matrix
 * train all of it, as the released code's kind always has. */
static const char *const transfer_vector[] = {"feat_d", "feat_t", "gate_w", NULL};
static const char *const transfer_matrix[] = {"feat_w", "feat_d", NULL};

/* The presets: one implementation, three names (dec_dijiang_form.h). */
#define DIJIANG_KIND(NAME, SUMMARY, TRANSFER)                                                                   \
  {.name = NAME, .summary = SUMMARY, KX_GATED_KIND_ENTRIES, .attn_weights_backward = attn_weights_backward,    \
   .transfer_tensors = TRANSFER, .window = 1}

const kx_attn_kind kx_attn_dijiang = DIJIANG_KIND(
    "dijiang", "DiJiang paper form: WDCF features (DCT, chi radii, learnable D), normalised, decay, GroupNorm+SiLU gate",
    transfer_vector);
const kx_attn_kind kx_attn_dijiang_code = DIJIANG_KIND(
    "dijiang-code",
    "released DiJiang code: softmax of signed-normal-scaled DCT features, decay, no denominator, GroupNorm+SiLU gate",
    transfer_matrix);
const kx_attn_kind kx_attn_dijiang_released = DIJIANG_KIND(
    "dijiang-released", "dijiang-code with the released code's GroupNorm (d groups, affine) and xavier gate",
    transfer_matrix);
