#include "experiments/model/dec_infer.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "core/kx_seed.h"
#include "experiments/model/dec_layers.h"
#include "experiments/model/dec_sample.h"

/* Prefill chunk: at most ctx tokens (the parallel forward's domain) and at
 * most KX_DEC_INFER_CHUNK, which bounds softmax's T x T activations. */
static size_t chunk_of(const kx_decoder *m, size_t capacity) {
  size_t c = capacity < m->cfg.ctx ? capacity : m->cfg.ctx;
  return c < KX_DEC_INFER_CHUNK ? c : KX_DEC_INFER_CHUNK;
}

/* Work floats for `chunk` tokens (layout of kx_dec_infer). */
static size_t rope_half(const kx_decoder *m) {
  size_t half = m->cfg.rotary_dims / 2;
  return half ? half : 1;
}

static size_t work_floats(const kx_decoder *m, size_t chunk) {
  size_t C = m->cfg.width, acts = 0;
  for (size_t l = 0; l < m->cfg.layers; l++) {
    size_t a = m->li[l].attn->act_floats(&m->cfg, 1, chunk);
    acts = a > acts ? a : acts;
  }
  size_t ffn = kx_dec_llama(&m->cfg) ? 3 * kx_dec_ffn_hidden(&m->cfg) : 8 * C;
  return 5 * chunk * C + ffn * chunk + 2 * chunk + chunk * m->cfg.vocab + acts + 2 * chunk * rope_half(m);
}

/* Decoding state of block l for `capacity` tokens (0 without recurrent decoding). */
static size_t block_state(const kx_decoder *m, size_t l, size_t capacity) {
  const kx_attn_kind *k = m->li[l].attn;
  return k->state_floats ? k->state_floats(&m->cfg, capacity) : 0;
}

size_t kx_dec_infer_bytes(const kx_decoder *m, size_t capacity, size_t *state_bytes) {
  size_t st = 0;
  for (size_t l = 0; l < m->cfg.layers; l++) st += block_state(m, l, capacity);
  if (state_bytes) *state_bytes = st * sizeof(float);
  return (st + work_floats(m, chunk_of(m, capacity))) * sizeof(float);
}

size_t kx_dec_max_positions(const kx_decoder *m) {
  size_t maxpos = SIZE_MAX;
  for (size_t l = 0; l < m->cfg.layers; l++) {
    const kx_attn_kind *k = m->li[l].attn;
    size_t p = k->state_floats && k->max_positions ? k->max_positions(&m->cfg) : 0;
    maxpos = p < maxpos ? p : maxpos;
  }
  return maxpos;
}

size_t kx_dec_infer_available_bytes(void) {
  FILE *f = fopen("/proc/meminfo", "r");
  if (!f) return 0;
  char line[256];
  size_t kib = 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "MemAvailable: %zu kB", &kib) == 1) break;
  fclose(f);
  return kib * 1024;
}

void kx_dec_infer_free(kx_dec_infer *s) {
  free(s->state);
  free(s->state_at);
  free(s->inv_freq);
  free(s->x);
  memset(s, 0, sizeof *s);
}

int kx_dec_infer_check(const kx_decoder *m, size_t capacity) {
  const kx_attn_kind *k = KX_DEC_KIND_LACKING(m, state_floats);
  if (!k) k = KX_DEC_KIND_LACKING(m, max_positions);
  if (k) return kx_fail(KX_EINVAL, "attention kind '%s' has no recurrent decoding", k->name);
  if (capacity == 0) return kx_fail(KX_EINVAL, "recurrent decoding needs room for at least one token");
  /* the kind that bounds the positions names the limit */
  size_t maxpos = kx_dec_max_positions(m);
  k = m->attn;
  for (size_t l = 0; l < m->cfg.layers; l++)
    if (m->li[l].attn->max_positions(&m->cfg) == maxpos) k = m->li[l].attn;
  if (capacity > maxpos)
    return kx_fail(KX_EINVAL,
                   "attention kind '%s' defines only %zu positions (the training context: its features or weights depend "
                   "on the absolute position), but %zu tokens were asked for; use at most %zu tokens (prompt + "
                   "length), or a kind without the limit (softmax, performer, retnet, dijiang, ...)",
                   k->name, maxpos, capacity, maxpos);
  /* The state grows at most linearly in capacity: overflow shows as a
   * smaller product. */
  if (capacity > SIZE_MAX / 64 / (m->cfg.width * m->cfg.layers + 1))
    return kx_fail(KX_ENOMEM, "decoding %zu tokens would need more memory than can be addressed", capacity);
  /* the caller keeps the token ids too (prompt and output) */
  size_t state_bytes, bytes = kx_dec_infer_bytes(m, capacity, &state_bytes) + capacity * sizeof(int),
                      avail = kx_dec_infer_available_bytes();
  char label[KX_DEC_LABEL_MAX];
  kx_dec_config_label(&m->cfg, label, sizeof label);
  if (avail && bytes > avail)
    return kx_fail(KX_ENOMEM,
                   "decoding %zu tokens with '%s' needs %.1f MiB (%.1f MiB of state or KV cache, %.1f MiB of token "
                   "ids) but only %.1f MiB of memory is available; ask for fewer tokens",
                   capacity, label, bytes / 1048576.0, state_bytes / 1048576.0,
                   capacity * sizeof(int) / 1048576.0, avail / 1048576.0);
  return 0;
}

int kx_dec_infer_create(kx_dec_infer *s, kx_decoder *m, size_t capacity) {
  memset(s, 0, sizeof *s);
  int rc = kx_dec_infer_check(m, capacity);
  if (rc) return rc;
  s->m = m;
  s->capacity = capacity;
  s->chunk = chunk_of(m, capacity);
  size_t half = rope_half(m), C = m->cfg.width, T = s->chunk, L = m->cfg.layers;
  s->state_at = kx_calloc(L + 1, sizeof *s->state_at);
  if (!s->state_at) return KX_ENOMEM;
  for (size_t l = 0; l < L; l++) s->state_at[l + 1] = s->state_at[l] + block_state(m, l, capacity);
  s->state_floats = s->state_at[L];
  s->state = kx_calloc(s->state_floats, sizeof(float));
  s->inv_freq = kx_calloc(half, sizeof(double));
  s->x = kx_calloc(work_floats(m, T), sizeof(float));
  if (!s->state || !s->inv_freq || !s->x) {
    kx_dec_infer_free(s);
    return KX_ENOMEM;
  }
  s->ln1 = s->x + T * C;
  s->attn_y = s->ln1 + T * C;
  s->ln2 = s->attn_y + T * C;
  s->mlp_y = s->ln2 + T * C;
  /* llama: fc, fc3 and the gate, F each; else fc and GELU, 4C each */
  size_t F = kx_dec_llama(&m->cfg) ? kx_dec_ffn_hidden(&m->cfg) : 4 * C;
  s->fc = s->mlp_y + T * C;
  s->gelu = s->fc + T * F;
  s->mean = s->gelu + T * F + (kx_dec_llama(&m->cfg) ? T * F : 0);
  s->rstd = s->mean + T;
  s->logits = s->rstd + T;
  s->rope_cos = s->logits + T * m->cfg.vocab;
  s->rope_sin = s->rope_cos + T * half;
  s->acts = s->rope_sin + T * half;
  for (size_t i = 0; i < m->cfg.rotary_dims / 2; i++)
    s->inv_freq[i] = pow(m->cfg.rope_base, -2.0 * (double)i / (double)m->cfg.rotary_dims);
  return 0;
}

/* The llama blocks of feed_chunk (the model's llama_forward), from s->x to
 * the logits. */
static void llama_chunk(kx_dec_infer *s, size_t T) {
  kx_decoder *m = s->m;
  const kx_dec_config *cfg = &m->cfg;
  size_t C = cfg->width, F = kx_dec_ffn_hidden(cfg);
  float eps = (float)cfg->ln_eps, *fc3 = s->gelu + T * F;
  for (size_t l = 0; l < cfg->layers; l++) {
    const kx_dec_layer_index *li = &m->li[l];
    kx_attn_ctx c = {cfg, 1, T, s->rope_cos, s->rope_sin, s->pos, s->capacity, s->state + s->state_at[l]};
    kx_rmsnorm_forward(s->ln1, s->rstd, s->x, kx_dec_param(m, li->ln1_w), T, C, eps);
    li->attn->forward(&c, kx_dec_attn_p(m, l), s->ln1, s->attn_y, s->acts);
    for (size_t i = 0; i < T * C; i++) s->x[i] += s->attn_y[i];
    kx_rmsnorm_forward(s->ln2, s->rstd, s->x, kx_dec_param(m, li->ln2_w), T, C, eps);
    kx_matmul_forward(s->fc, s->ln2, kx_dec_param(m, li->fc_w), NULL, T, C, F);
    kx_matmul_forward(fc3, s->ln2, kx_dec_param(m, li->fc3_w), NULL, T, C, F);
    kx_swiglu_forward(s->gelu, s->fc, fc3, T * F);
    kx_matmul_forward(s->mlp_y, s->gelu, kx_dec_param(m, li->fcproj_w), NULL, T, F, C);
    for (size_t i = 0; i < T * C; i++) s->x[i] += s->mlp_y[i];
  }
  kx_rmsnorm_forward(s->ln1, s->rstd, s->x, kx_dec_param(m, m->lnf_w), T, C, eps);
  kx_matmul_forward(s->logits, s->ln1, kx_dec_param(m, m->unembed), NULL, T, C, cfg->vocab);
}

/* One chunk of T <= s->chunk tokens through every block, as kx_dec_forward
 * with the attention continuing from s->state. */
static void feed_chunk(kx_dec_infer *s, const int *tokens, size_t T) {
  kx_decoder *m = s->m;
  const kx_dec_config *cfg = &m->cfg;
  size_t C = cfg->width, half = rope_half(m);
  float eps = (float)cfg->ln_eps;
  /* Rotary rows of positions pos .. pos+T-1, the model's formula
   * (kx_dec_create) for any position: memory stays O(chunk). */
  for (size_t t = 0; t < T; t++)
    for (size_t i = 0; i < cfg->rotary_dims / 2; i++) {
      double angle = (double)(s->pos + t) * s->inv_freq[i];
      s->rope_cos[t * half + i] = (float)cos(angle);
      s->rope_sin[t * half + i] = (float)sin(angle);
    }
  kx_embed_forward(s->x, tokens, kx_dec_param(m, m->embed), T, C);
  if (kx_dec_llama(cfg)) {
    llama_chunk(s, T);
    s->pos += T;
    return;
  }
  for (size_t l = 0; l < cfg->layers; l++) {
    const kx_dec_layer_index *li = &m->li[l];
    kx_attn_ctx c = {cfg, 1, T, s->rope_cos, s->rope_sin, s->pos, s->capacity, s->state + s->state_at[l]};
    kx_layernorm_forward(s->ln1, s->mean, s->rstd, s->x, kx_dec_param(m, li->ln1_w), kx_dec_param(m, li->ln1_b), T,
                         C, eps);
    li->attn->forward(&c, kx_dec_attn_p(m, l), s->ln1, s->attn_y, s->acts);
    kx_layernorm_forward(s->ln2, s->mean, s->rstd, s->x, kx_dec_param(m, li->ln2_w), kx_dec_param(m, li->ln2_b), T,
                         C, eps);
    kx_matmul_forward(s->fc, s->ln2, kx_dec_param(m, li->fc_w), kx_dec_param(m, li->fc_b), T, C, 4 * C);
    kx_gelu_forward(s->gelu, s->fc, 4 * T * C);
    kx_matmul_forward(s->mlp_y, s->gelu, kx_dec_param(m, li->fcproj_w), kx_dec_param(m, li->fcproj_b), T, 4 * C,
                      C);
    for (size_t i = 0; i < T * C; i++) s->x[i] += s->attn_y[i] + s->mlp_y[i]; /* parallel residual */
  }
  kx_layernorm_forward(s->ln1, s->mean, s->rstd, s->x, kx_dec_param(m, m->lnf_w), kx_dec_param(m, m->lnf_b), T, C,
                       eps);
  kx_matmul_forward(s->logits, s->ln1, kx_dec_param(m, m->unembed), NULL, T, C, cfg->vocab);
  s->pos += T;
}

int kx_dec_infer_feed(kx_dec_infer *s, const int *tokens, size_t n, float *all_logits) {
  size_t V = s->m->cfg.vocab;
  if (n == 0) return kx_fail(KX_EINVAL, "nothing to feed");
  if (n > s->capacity - s->pos)
    return kx_fail(KX_EINVAL, "%zu more tokens do not fit the decoding state (%zu of %zu used)", n, s->pos,
                   s->capacity);
  for (size_t i = 0; i < n; i++)
    if (tokens[i] < 0 || (size_t)tokens[i] >= V)
      return kx_fail(KX_EINVAL, "token id %d out of range [0, %zu) at position %zu", tokens[i], V, s->pos + i);
  for (size_t done = 0; done < n;) {
    size_t T = n - done < s->chunk ? n - done : s->chunk;
    feed_chunk(s, tokens + done, T);
    if (all_logits) memcpy(all_logits + done * V, s->logits, T * V * sizeof(float));
    s->last_logits = s->logits + (T - 1) * V;
    done += T;
  }
  return 0;
}

int kx_dec_infer_generate(kx_decoder *m, const int *prompt, size_t n, size_t length, double temperature,
                          size_t top_k, uint64_t seed, int *out) {
  if (n == 0) return kx_fail(KX_EINVAL, "the prompt must have at least one token");
  kx_dec_infer s;
  /* The last generated token is never fed back. */
  int rc = kx_dec_infer_create(&s, m, n + (length ? length - 1 : 0));
  if (rc) return rc;
  rc = kx_dec_infer_feed(&s, prompt, n, NULL);
  for (size_t i = 0; i < length && !rc; i++) {
    double u = (double)(kx_seed_derive(seed, i) >> 11) * 0x1.0p-53;
    if ((rc = kx_dec_logits_finite(s.last_logits, m->cfg.vocab, i))) break;
    out[i] = kx_dec_pick(s.last_logits, m->cfg.vocab, temperature, top_k, u);
    if (i + 1 < length) rc = kx_dec_infer_feed(&s, out + i, 1, NULL);
  }
  kx_dec_infer_free(&s);
  return rc;
}
