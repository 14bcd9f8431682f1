#include "experiments/model/dec_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "core/kx_seed.h"
#include "experiments/model/dec_layers.h"

int kx_dec_create(kx_decoder *m, const kx_dec_config *cfg) {
  memset(m, 0, sizeof *m);
  int rc = kx_dec_config_check(cfg);
  if (rc) return rc;
  m->cfg = *cfg;
  m->attn = kx_dec_attn_find(cfg->attn_kind);
  size_t C = cfg->width, L = cfg->layers, V = cfg->vocab;
  kx_param_table *t = &m->tab;
  m->li = kx_calloc(L, sizeof *m->li);
  m->attn_p = kx_calloc(L * KX_ATTN_MAX_TENSORS, sizeof(float *));
  m->attn_dp = kx_calloc(L * KX_ATTN_MAX_TENSORS, sizeof(float *));
  if (!m->li || !m->attn_p || !m->attn_dp) goto fail;
  int llama = kx_dec_llama(cfg);
  size_t F = kx_dec_ffn_hidden(cfg);
  if ((rc = kx_ptable_add(t, "embed", V, C, 1, KX_INIT_SMALL, &m->embed))) goto fail;
  for (size_t l = 0; l < L; l++) {
    kx_dec_layer_index *li = &m->li[l];
    char nm[48];
    li->ln1_b = li->ln2_b = li->fc_b = li->fcproj_b = li->fc3_w = SIZE_MAX;
#define ADD(field, suffix, rows, cols, decay, init)                          \
  snprintf(nm, sizeof nm, "layer%zu/%s", l, suffix);                        \
  if ((rc = kx_ptable_add(t, nm, rows, cols, decay, init, &li->field))) goto fail;
    ADD(ln1_w, "ln1_w", C, 0, 0, KX_INIT_ONE)
    if (!llama) {
      ADD(ln1_b, "ln1_b", C, 0, 0, KX_INIT_ZERO)
    }
    li->attn = kx_dec_attn_find(kx_dec_config_layer_kind(cfg, l));
    li->attn_first = t->n;
    if ((rc = li->attn->declare(cfg, l, t, &li->attn_n))) goto fail;
    if (li->attn_n > KX_ATTN_MAX_TENSORS) {
      rc = kx_fail(KX_EINVAL, "attention kind '%s' declares more than %d tensors", li->attn->name,
                   KX_ATTN_MAX_TENSORS);
      goto fail;
    }
    ADD(ln2_w, "ln2_w", C, 0, 0, KX_INIT_ONE)
    if (llama) {
      ADD(fc_w, "fc_w", F, C, 1, KX_INIT_SMALL)
      ADD(fc3_w, "fc3_w", F, C, 1, KX_INIT_SMALL)
      ADD(fcproj_w, "fcproj_w", C, F, 1, KX_INIT_WANG)
    } else {
      ADD(ln2_b, "ln2_b", C, 0, 0, KX_INIT_ZERO)
      ADD(fc_w, "fc_w", 4 * C, C, 1, KX_INIT_SMALL)
      ADD(fc_b, "fc_b", 4 * C, 0, 0, KX_INIT_ZERO)
      ADD(fcproj_w, "fcproj_w", C, 4 * C, 1, KX_INIT_WANG)
      ADD(fcproj_b, "fcproj_b", C, 0, 0, KX_INIT_ZERO)
    }
#undef ADD
  }
  m->lnf_b = SIZE_MAX;
  if ((rc = kx_ptable_add(t, "lnf_w", C, 0, 0, KX_INIT_ONE, &m->lnf_w))) goto fail;
  if (!llama && (rc = kx_ptable_add(t, "lnf_b", C, 0, 0, KX_INIT_ZERO, &m->lnf_b))) goto fail;
  m->unembed = m->embed;
  if (!cfg->tied && (rc = kx_ptable_add(t, "unembed", V, C, 1, KX_INIT_SMALL, &m->unembed))) goto fail;
  m->params = kx_calloc(t->total, sizeof(float));
  m->grads = kx_calloc(t->total, sizeof(float));
  size_t half = cfg->rotary_dims / 2;
  m->rope_cos = kx_calloc(cfg->ctx * (half ? half : 1), sizeof(float));
  m->rope_sin = kx_calloc(cfg->ctx * (half ? half : 1), sizeof(float));
  if (!m->params || !m->grads || !m->rope_cos || !m->rope_sin) goto fail;
  for (size_t l = 0; l < L; l++)
    for (size_t i = 0; i < m->li[l].attn_n; i++) {
      /* an empty slot (llama's missing biases) is a NULL tensor */
      int empty = m->tab.t[m->li[l].attn_first + i].size == 0;
      m->attn_p[l * KX_ATTN_MAX_TENSORS + i] = empty ? NULL : kx_dec_param(m, m->li[l].attn_first + i);
      m->attn_dp[l * KX_ATTN_MAX_TENSORS + i] = empty ? NULL : kx_dec_grad(m, m->li[l].attn_first + i);
    }
  /* Angles in double, rounded once, so the table is the float nearest to
   * the exact rotation whatever T is. */
  for (size_t pos = 0; pos < cfg->ctx; pos++)
    for (size_t i = 0; i < half; i++) {
      double inv_freq = pow(cfg->rope_base, -2.0 * (double)i / (double)cfg->rotary_dims);
      m->rope_cos[pos * half + i] = (float)cos((double)pos * inv_freq);
      m->rope_sin[pos * half + i] = (float)sin((double)pos * inv_freq);
    }
  return 0;
fail:
  if (!rc) rc = KX_ENOMEM;
  kx_dec_free(m);
  return rc;
}

void kx_dec_free(kx_decoder *m) {
  free(m->li);
  free(m->attn_p);
  free(m->attn_dp);
  free(m->params);
  free(m->grads);
  free(m->rope_cos);
  free(m->rope_sin);
  free(m->acts);
  free(m->blk);
  free(m->tokens);
  free(m->targets);
  free(m->scratch);
  kx_ptable_free(&m->tab);
  memset(m, 0, sizeof *m);
}

int kx_dec_init_params(kx_decoder *m, uint64_t seed) {
  int rc = kx_ptable_init(&m->tab, m->params, m->cfg.width, m->cfg.layers, seed);
  /* The kinds' own streams start past the table's (one per tensor). */
  for (size_t l = 0; l < m->cfg.layers && !rc; l++)
    if (m->li[l].attn->init)
      rc = m->li[l].attn->init(&m->cfg, l, kx_dec_attn_p(m, l), kx_seed_derive(seed, m->tab.n + l));
  return rc;
}

const kx_attn_kind *kx_dec_kind_lacking(const kx_decoder *m, size_t hook_offset) {
  for (size_t l = 0; l < m->cfg.layers; l++) {
    void (*hook)(void);
    memcpy(&hook, (const char *)m->li[l].attn + hook_offset, sizeof hook);
    if (!hook) return m->li[l].attn;
  }
  return NULL;
}

/* Lays out the activation buffer for (B,T); one allocation for everything. */
static int ensure_acts(kx_decoder *m, size_t B, size_t T) {
  size_t N = B * T;
  if (m->acts && m->B == B && m->T == T) return 0;
  const kx_dec_config *c = &m->cfg;
  size_t C = c->width, L = c->layers, V = c->vocab, F = kx_dec_ffn_hidden(c), llama = kx_dec_llama(c);
  /* a hybrid's blocks differ only in the attention's share */
  size_t per_block = N * C /* x */ + N * C + 2 * N + N * C + N * C + 2 * N + 2 * N * F + N * C +
                     llama * (N * F + N * C);
  size_t total = L * per_block + N * C + N * C + 2 * N + 2 * N * V + N, as = 0;
  for (size_t l = 0; l < L; l++) {
    const kx_attn_kind *k = m->li[l].attn;
    size_t s = k->scratch_floats(c, B, T);
    total += k->act_floats(c, B, T);
    as = s > as ? s : as;
  }
  size_t scratch = N * C + N * C + (llama ? 3 * N * F : 8 * N * C) + N * V + as;
  if (!m->acts || total > m->cap_acts || N > m->cap_tokens || scratch > m->cap_scratch) {
    size_t ca = total > m->cap_acts ? total : m->cap_acts, cn = N > m->cap_tokens ? N : m->cap_tokens;
    size_t cs = scratch > m->cap_scratch ? scratch : m->cap_scratch;
    free(m->acts);
    free(m->blk);
    free(m->tokens);
    free(m->targets);
    free(m->scratch);
    m->acts = kx_malloc(ca * sizeof(float));
    m->blk = kx_calloc(L, sizeof *m->blk);
    m->tokens = kx_malloc(cn * sizeof(int));
    m->targets = kx_malloc(cn * sizeof(int));
    m->scratch = kx_malloc(cs * sizeof(float));
    if (!m->acts || !m->blk || !m->tokens || !m->targets || !m->scratch) {
      free(m->acts);
      m->acts = NULL;
      m->cap_acts = m->cap_tokens = m->cap_scratch = 0;
      return KX_ENOMEM;
    }
    m->cap_acts = ca, m->cap_tokens = cn, m->cap_scratch = cs;
  } else {
    memset(m->blk, 0, L * sizeof *m->blk);
  }
  m->scratch_floats = scratch;
  float *p = m->acts;
  for (size_t l = 0; l < L; l++) {
    kx_dec_block_acts *a = &m->blk[l];
    a->x = p, p += N * C;
    a->ln1 = p, p += N * C;
    a->ln1_mean = p, p += N;
    a->ln1_rstd = p, p += N;
    a->attn_acts = p, p += m->li[l].attn->act_floats(c, B, T);
    a->attn_y = p, p += N * C;
    a->ln2 = p, p += N * C;
    a->ln2_mean = p, p += N;
    a->ln2_rstd = p, p += N;
    a->fc = p, p += N * F;
    a->gelu = p, p += N * F;
    a->mlp_y = p, p += N * C;
    a->fc3 = a->xmid = NULL;
    if (llama) a->fc3 = p, p += N * F, a->xmid = p, p += N * C;
  }
  m->x_final = p, p += N * C;
  m->lnf = p, p += N * C;
  m->lnf_mean = p, p += N;
  m->lnf_rstd = p, p += N;
  m->logits = p, p += N * V;
  m->probs = p, p += N * V;
  m->losses = p, p += N;
  m->B = B;
  m->T = T;
  return 0;
}

static kx_attn_ctx attn_ctx(const kx_decoder *m) {
  kx_attn_ctx c = {&m->cfg, m->B, m->T, m->rope_cos, m->rope_sin, 0, 0, NULL};
  return c;
}

/* The llama blocks (dec_config.h) and the final RMSNorm, from blk[0].x. */
static void llama_forward(kx_decoder *m, const kx_attn_ctx *ac) {
  const kx_dec_config *c = &m->cfg;
  size_t N = m->B * m->T, C = c->width, F = kx_dec_ffn_hidden(c);
  float eps = (float)c->ln_eps;
  for (size_t l = 0; l < c->layers; l++) {
    kx_dec_block_acts *a = &m->blk[l];
    const kx_dec_layer_index *li = &m->li[l];
    float *xout = l + 1 < c->layers ? m->blk[l + 1].x : m->x_final;
    kx_rmsnorm_forward(a->ln1, a->ln1_rstd, a->x, kx_dec_param(m, li->ln1_w), N, C, eps);
    li->attn->forward(ac, kx_dec_attn_p(m, l), a->ln1, a->attn_y, a->attn_acts);
#pragma omp parallel for schedule(static) if (N * C >= 16384)
    for (size_t i = 0; i < N * C; i++) a->xmid[i] = a->x[i] + a->attn_y[i];
    kx_rmsnorm_forward(a->ln2, a->ln2_rstd, a->xmid, kx_dec_param(m, li->ln2_w), N, C, eps);
    kx_matmul_forward(a->fc, a->ln2, kx_dec_param(m, li->fc_w), NULL, N, C, F);
    kx_matmul_forward(a->fc3, a->ln2, kx_dec_param(m, li->fc3_w), NULL, N, C, F);
    kx_swiglu_forward(a->gelu, a->fc, a->fc3, N * F);
    kx_matmul_forward(a->mlp_y, a->gelu, kx_dec_param(m, li->fcproj_w), NULL, N, F, C);
#pragma omp parallel for schedule(static) if (N * C >= 16384)
    for (size_t i = 0; i < N * C; i++) xout[i] = a->xmid[i] + a->mlp_y[i];
  }
  kx_rmsnorm_forward(m->lnf, m->lnf_rstd, m->x_final, kx_dec_param(m, m->lnf_w), N, C, eps);
}

/* Gradients of the llama blocks and the final RMSNorm from dln = d lnf;
 * leaves d blk[0].x in dres. */
static void llama_backward(kx_decoder *m, const kx_attn_ctx *ac, float *dres, float *dln, float *work,
                           float *attn_scratch) {
  const kx_dec_config *c = &m->cfg;
  size_t N = m->B * m->T, C = c->width, F = kx_dec_ffn_hidden(c);
  float *dg = work, *dfc = dg + N * F, *dfc3 = dfc + N * F;
  kx_rmsnorm_backward(dres, kx_dec_grad(m, m->lnf_w), dln, m->x_final, kx_dec_param(m, m->lnf_w), m->lnf_rstd, N, C);
  for (size_t l = c->layers; l-- > 0;) {
    kx_dec_block_acts *a = &m->blk[l];
    const kx_dec_layer_index *li = &m->li[l];
    /* x_out = xmid + ffn(RMS2 xmid), xmid = x + attn(RMS1 x): dres is d
     * x_out, then d xmid, then d x. */
    memset(dg, 0, N * F * sizeof(float));
    kx_matmul_backward(dg, kx_dec_grad(m, li->fcproj_w), NULL, dres, a->gelu, kx_dec_param(m, li->fcproj_w), N, F, C);
    memset(dfc, 0, 2 * N * F * sizeof(float));
    kx_swiglu_backward(dfc, dfc3, a->fc, a->fc3, dg, N * F);
    memset(dln, 0, N * C * sizeof(float));
    kx_matmul_backward(dln, kx_dec_grad(m, li->fc_w), NULL, dfc, a->ln2, kx_dec_param(m, li->fc_w), N, C, F);
    kx_matmul_backward(dln, kx_dec_grad(m, li->fc3_w), NULL, dfc3, a->ln2, kx_dec_param(m, li->fc3_w), N, C, F);
    kx_rmsnorm_backward(dres, kx_dec_grad(m, li->ln2_w), dln, a->xmid, kx_dec_param(m, li->ln2_w), a->ln2_rstd, N, C);
    memset(dln, 0, N * C * sizeof(float));
    li->attn->backward(ac, kx_dec_attn_p(m, l), kx_dec_attn_dp(m, l), a->ln1, dres, a->attn_acts, dln, attn_scratch);
    kx_rmsnorm_backward(dres, kx_dec_grad(m, li->ln1_w), dln, a->x, kx_dec_param(m, li->ln1_w), a->ln1_rstd, N, C);
  }
}

int kx_dec_forward(kx_decoder *m, const int *tokens, const int *targets, size_t B, size_t T, double *loss) {
  const kx_dec_config *c = &m->cfg;
  if (B == 0 || T == 0 || T > c->ctx)
    return kx_fail(KX_EINVAL, "batch %zu x %zu does not fit the model (context %zu)", B, T, c->ctx);
  size_t N = B * T, C = c->width, V = c->vocab;
  for (size_t n = 0; n < N; n++)
    if (tokens[n] < 0 || (size_t)tokens[n] >= V || (targets && (targets[n] < 0 || (size_t)targets[n] >= V)))
      return kx_fail(KX_EINVAL, "token id out of range [0, %zu) at position %zu", V, n);
  int rc = ensure_acts(m, B, T);
  if (rc) return rc;
  memcpy(m->tokens, tokens, N * sizeof(int));
  m->have_targets = targets != NULL;
  if (targets) memcpy(m->targets, targets, N * sizeof(int));
  kx_attn_ctx ac = attn_ctx(m);
  float eps = (float)c->ln_eps;

  kx_embed_forward(m->blk[0].x, tokens, kx_dec_param(m, m->embed), N, C);
  if (kx_dec_llama(c)) {
    llama_forward(m, &ac);
  } else {
  for (size_t l = 0; l < c->layers; l++) {
    kx_dec_block_acts *a = &m->blk[l];
    const kx_dec_layer_index *li = &m->li[l];
    float *xout = l + 1 < c->layers ? m->blk[l + 1].x : m->x_final;
    kx_layernorm_forward(a->ln1, a->ln1_mean, a->ln1_rstd, a->x, kx_dec_param(m, li->ln1_w),
                         kx_dec_param(m, li->ln1_b), N, C, eps);
    li->attn->forward(&ac, kx_dec_attn_p(m, l), a->ln1, a->attn_y, a->attn_acts);
    kx_layernorm_forward(a->ln2, a->ln2_mean, a->ln2_rstd, a->x, kx_dec_param(m, li->ln2_w),
                         kx_dec_param(m, li->ln2_b), N, C, eps);
    kx_matmul_forward(a->fc, a->ln2, kx_dec_param(m, li->fc_w), kx_dec_param(m, li->fc_b), N, C, 4 * C);
    kx_gelu_forward(a->gelu, a->fc, 4 * N * C);
    kx_matmul_forward(a->mlp_y, a->gelu, kx_dec_param(m, li->fcproj_w), kx_dec_param(m, li->fcproj_b), N,
                      4 * C, C);
    /* Parallel residual (Pythia): both branches read the same x. */
#pragma omp parallel for schedule(static) if (N * C >= 16384)
    for (size_t i = 0; i < N * C; i++) xout[i] = a->x[i] + a->attn_y[i] + a->mlp_y[i];
  }
  kx_layernorm_forward(m->lnf, m->lnf_mean, m->lnf_rstd, m->x_final, kx_dec_param(m, m->lnf_w),
                       kx_dec_param(m, m->lnf_b), N, C, eps);
  }
  kx_matmul_forward(m->logits, m->lnf, kx_dec_param(m, m->unembed), NULL, N, C, V);
  if (targets) {
    m->loss = kx_crossentropy_forward(m->losses, m->probs, m->logits, targets, N, V);
    if (!isfinite(m->loss)) return kx_fail(KX_ENUM, "the loss is not finite (%g)", m->loss);
    if (loss) *loss = m->loss;
  }
  return 0;
}

/* Shapes: see the layer functions.  Buffers in m->scratch: dres (N,C) the
 * gradient of the residual stream, dln (N,C), dg (N,4C) and dfc (N,4C) for
 * the MLP, dlogits (N,V), then the attention kind's scratch. */
int kx_dec_backward(kx_decoder *m) {
  if (!m->acts || !m->have_targets)
    return kx_fail(KX_EINVAL, "backward needs a preceding forward with targets");
  const kx_dec_config *c = &m->cfg;
  size_t N = m->B * m->T, C = c->width, V = c->vocab;
  kx_attn_ctx ac = attn_ctx(m);
  memset(m->grads, 0, m->tab.total * sizeof(float));
  float *dres = m->scratch, *dln = dres + N * C, *dg = dln + N * C, *dfc = dg + 4 * N * C;
  float *dlogits = dln + N * C + (kx_dec_llama(c) ? 3 * N * kx_dec_ffn_hidden(c) : 8 * N * C);
  float *attn_scratch = dlogits + N * V;
  memset(dres, 0, N * C * sizeof(float));
  memset(dlogits, 0, N * V * sizeof(float));
  kx_crossentropy_backward(dlogits, m->probs, m->targets, N, V, 1.0f / (float)N);
  memset(dln, 0, N * C * sizeof(float));
  kx_matmul_backward(dln, kx_dec_grad(m, m->unembed), NULL, dlogits, m->lnf, kx_dec_param(m, m->unembed), N,
                     C, V);
  if (kx_dec_llama(c)) {
    llama_backward(m, &ac, dres, dln, dln + N * C, attn_scratch);
    kx_embed_backward(kx_dec_grad(m, m->embed), dres, m->tokens, N, C, V);
    return 0;
  }
  kx_layernorm_backward(dres, kx_dec_grad(m, m->lnf_w), kx_dec_grad(m, m->lnf_b), dln, m->x_final,
                        kx_dec_param(m, m->lnf_w), m->lnf_mean, m->lnf_rstd, N, C);
  for (size_t l = c->layers; l-- > 0;) {
    kx_dec_block_acts *a = &m->blk[l];
    const kx_dec_layer_index *li = &m->li[l];
    /* x_out = x + attn(LN1 x) + mlp(LN2 x): dres (= d x_out) is the output
     * gradient of both branches and, unchanged, part of d x.  Both branches
     * read it before either LayerNorm backward adds into it in place. */
    memset(dln, 0, N * C * sizeof(float));
    li->attn->backward(&ac, kx_dec_attn_p(m, l), kx_dec_attn_dp(m, l), a->ln1, dres, a->attn_acts, dln,
                      attn_scratch);
    memset(dg, 0, 4 * N * C * sizeof(float));
    kx_matmul_backward(dg, kx_dec_grad(m, li->fcproj_w), kx_dec_grad(m, li->fcproj_b), dres, a->gelu,
                       kx_dec_param(m, li->fcproj_w), N, 4 * C, C);
    kx_layernorm_backward(dres, kx_dec_grad(m, li->ln1_w), kx_dec_grad(m, li->ln1_b), dln, a->x,
                          kx_dec_param(m, li->ln1_w), a->ln1_mean, a->ln1_rstd, N, C);
    memset(dfc, 0, 4 * N * C * sizeof(float));
    kx_gelu_backward(dfc, a->fc, dg, 4 * N * C);
    memset(dln, 0, N * C * sizeof(float));
    kx_matmul_backward(dln, kx_dec_grad(m, li->fc_w), kx_dec_grad(m, li->fc_b), dfc, a->ln2,
                       kx_dec_param(m, li->fc_w), N, C, 4 * C);
    kx_layernorm_backward(dres, kx_dec_grad(m, li->ln2_w), kx_dec_grad(m, li->ln2_b), dln, a->x,
                          kx_dec_param(m, li->ln2_w), a->ln2_mean, a->ln2_rstd, N, C);
  }
  kx_embed_backward(kx_dec_grad(m, m->embed), dres, m->tokens, N, C, V);
  return 0;
}

/* Checks n = positions x width values of one activation; `layer` -1: after
 * the blocks. */
static int check_part(const float *x, size_t width, size_t positions, size_t T, long layer, const char *what) {
  for (size_t i = 0; i < positions * width; i++) {
    if (isfinite(x[i])) continue;
    char where[48] = "";
    snprintf(where, sizeof where, layer >= 0 ? "block %ld's " : "the ", layer);
    return kx_fail(KX_ENUM, "the model computes %g in %s%s at position %zu (parameters beyond what float32 "
                   "arithmetic can carry)", (double)x[i], where, what, i / width % T);
  }
  return 0;
}

/* A LayerNorm whose variance overflowed has rstd 0 and outputs its bias,
 * finite but blind to its input. */
static int check_norm(const float *mean, const float *rstd, size_t N, size_t T, long layer, const char *what) {
  for (size_t n = 0; n < N; n++) {
    if ((!mean || isfinite(mean[n])) && isfinite(rstd[n]) && rstd[n] > 0) continue;
    char where[48];
    snprintf(where, sizeof where, layer >= 0 ? "block %ld's " : "the ", layer);
    return kx_fail(KX_ENUM, "the variance in %s%s overflows at position %zu (parameters beyond what float32 "
                   "arithmetic can carry)", where, what, n % T);
  }
  return 0;
}

int kx_dec_check_norms(const kx_decoder *m) {
  if (!m->acts) return 0;
  size_t N = m->B * m->T, T = m->T;
  int rc = 0, rms = kx_dec_llama(&m->cfg); /* RMSNorm keeps no mean */
  for (size_t l = 0; !rc && l < m->cfg.layers; l++) {
    rc = check_norm(rms ? NULL : m->blk[l].ln1_mean, m->blk[l].ln1_rstd, N, T, (long)l, "first LayerNorm");
    if (!rc) rc = check_norm(rms ? NULL : m->blk[l].ln2_mean, m->blk[l].ln2_rstd, N, T, (long)l, "second LayerNorm");
  }
  return rc ? rc : check_norm(rms ? NULL : m->lnf_mean, m->lnf_rstd, N, T, -1, "final LayerNorm");
}

int kx_dec_check_finite(const kx_decoder *m) {
  if (!m->acts) return 0;
  size_t N = m->B * m->T, C = m->cfg.width, T = m->T;
  int rc = kx_dec_check_norms(m);
  for (size_t l = 0; !rc && l < m->cfg.layers; l++) {
    const kx_dec_block_acts *a = &m->blk[l];
    long b = (long)l;
    rc = check_part(a->x, C, N, T, b, "input");
    if (!rc) rc = check_part(a->ln1, C, N, T, b, "first LayerNorm");
    if (!rc) rc = check_part(a->attn_y, C, N, T, b, "attention output");
    if (!rc) rc = check_part(a->ln2, C, N, T, b, "second LayerNorm");
    size_t F = kx_dec_ffn_hidden(&m->cfg);
    if (!rc) rc = check_part(a->fc, F, N, T, b, "MLP hidden layer");
    if (!rc && a->fc3) rc = check_part(a->fc3, F, N, T, b, "MLP gate");
    if (!rc) rc = check_part(a->gelu, F, N, T, b, "MLP activation");
    if (!rc) rc = check_part(a->mlp_y, C, N, T, b, "MLP output");
  }
  if (!rc) rc = check_part(m->x_final, C, N, T, -1, "residual stream after the last block");
  if (!rc) rc = check_part(m->lnf, C, N, T, -1, "final LayerNorm");
  if (!rc) rc = check_part(m->logits, m->cfg.vocab, N, T, -1, "logits");
  return rc;
}

const char *kx_dec_largest_param(const kx_decoder *m, double *magnitude) {
  const char *name = m->tab.n ? m->tab.t[0].name : "";
  double best = -1.0;
  for (size_t k = 0; k < m->tab.n; k++) {
    const float *p = m->params + m->tab.t[k].offset;
    for (size_t j = 0; j < m->tab.t[k].size; j++)
      if (fabs((double)p[j]) > best) best = fabs((double)p[j]), name = m->tab.t[k].name;
  }
  *magnitude = best < 0 ? 0.0 : best;
  return name;
}
