/* Configuration of the small Pythia-like decoder.
 *
 * Architecture (fixed choices, mirrored by tests/torch_reference.py):
 *   - character-level token embedding (V x C), no position embedding;
 *   - L pre-LayerNorm blocks with Pythia's *parallel* residual
 *       x <- x + Attn(LN1(x)) + MLP(LN2(x));
 *   - attention is a replaceable part (dec_attn.h, `attn_kind`); the default
 *     "softmax" is multi-head causal softmax attention with GPT-NeoX rotary
 *     embedding on the first `rotary_dims` dimensions of each head; a layer
 *     hybrid keeps softmax in the layers of `softmax_layers` and has
 *     `attn_kind` in the others;
 *   - MLP: C -> 4C, exact (erf) GELU, 4C -> C, all linear layers with bias;
 *   - final LayerNorm and an *untied* unembedding (V x C, no bias);
 *   - mean cross-entropy over all B*T next-token predictions. */
#ifndef KX_DEC_CONFIG_H
#define KX_DEC_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define KX_DEC_NAME_MAX 32

typedef struct {
  size_t vocab;        /* V */
  size_t ctx;          /* maximum sequence length T */
  size_t layers;       /* L */
  size_t heads;        /* H */
  size_t width;        /* C; head dimension d = C / H */
  size_t rotary_dims;  /* per head, even, <= d (Pythia: d / 4) */
  double rope_base;    /* 10000 */
  double ln_eps;       /* 1e-5 */
  char attn_kind[KX_DEC_NAME_MAX]; /* name in the attention table */
  /* Layer hybrid: bit l set = layer l keeps softmax attention (a model
   * converted from softmax with some layers left as they were); 0 = every
   * layer has attn_kind.  Layers <= 64, so one word holds every layer. */
  uint64_t softmax_layers;
  size_t window;       /* sliding-window hybrid (dec_window.h) in the layers of
                          attn_kind: exact softmax over the last `window`
                          positions, the kind's linear attention before them;
                          0 = off (the kind alone) */
  /* A DiJiang kind's switches (dec_dijiang_form.h): bit f set = factor f
   * takes the other value than the kind's preset; 0 = the preset (and for
   * every other kind). */
  uint32_t dijiang_flips;
  /* The block's architecture around the attention (KX_ARCH_*); 0, the
   * Pythia-like block above, for every checkpoint without the attribute. */
  uint32_t arch;
  size_t kv_heads;     /* key/value heads (grouped-query attention, llama
                          only): query head h reads key/value head
                          h / (heads / kv_heads); 0 = heads */
  size_t ffn_hidden;   /* llama's SwiGLU hidden width; 0 = 4C (Pythia's MLP) */
  int tied;            /* llama only: the classifier is the token embedding */
  int token_ids;       /* 1: the vocabulary is token ids 0..V-1 of a tokenizer
                          kapprox does not hold (an imported model), not
                          Unicode code points */
} kx_dec_config;

/* The Llama block (llama2.c): RMSNorm (weight, no bias) before the
 * attention and the feed-forward, *sequential* residual
 *   x <- x + Attn(RMS1(x)); x <- x + W2(silu(W1 RMS2(x)) * W3 RMS2(x)),
 * no bias anywhere, rotary embedding on interleaved pairs (2i, 2i+1) of
 * the first rotary_dims dimensions of each head, final RMSNorm, classifier
 * separate or the embedding itself. */
enum { KX_ARCH_PYTHIA = 0, KX_ARCH_LLAMA = 1 };

static inline size_t kx_dec_kv_heads(const kx_dec_config *c) { return c->kv_heads ? c->kv_heads : c->heads; }
/* Rows of the fused projection qkv_w: C for q, then kv_heads * d for k and for v. */
static inline size_t kx_dec_qkv_rows(const kx_dec_config *c) {
  return c->width + 2 * kx_dec_kv_heads(c) * (c->width / c->heads);
}
static inline size_t kx_dec_ffn_hidden(const kx_dec_config *c) { return c->ffn_hidden ? c->ffn_hidden : 4 * c->width; }
static inline int kx_dec_llama(const kx_dec_config *c) { return c->arch == KX_ARCH_LLAMA; }

/* Defaults of `kapprox train`: 4 layers, 4 heads, width 256 (d = 64),
 * context 128, rotary on 25% of each head; vocab left 0 (set from data). */
void kx_dec_config_default(kx_dec_config *cfg);

/* Checks ranges and divisibility; message names the offending option. */
int kx_dec_config_check(const kx_dec_config *cfg);
/* Its last part: the attention kind is known and takes cfg->window (a kind
 * with the hybrid, a window within ctx).  Commands call it to refuse a bad
 * --window before reading or writing anything. */
int kx_dec_config_check_window(const kx_dec_config *cfg);

/* The value of a --window option: a whole number in [1, 8192]; message
 * otherwise (0 included: no window is written by omitting the option). */
int kx_dec_parse_window(const char *s, size_t *window);

/* Sets attn_kind, dijiang_flips and window from an attention spec "KIND",
 * "KIND+wN" (N >= 1, the sliding-window hybrid) or a DiJiang kind with
 * form switches first, "KIND+TOKEN+...[+wN]" (dec_dijiang_form.h;
 * "dijiang+softmax+noden+w16"); message if the kind is unknown, a token is
 * not a switch of it or N is malformed.  The combination itself is checked
 * by kx_dec_config_check. */
int kx_dec_config_set_attention(kx_dec_config *cfg, const char *spec);
/* Applies a --dijiang-form list ("softmax,noden") to cfg's DiJiang kind:
 * the listed factors take the listed values, the others keep theirs.
 * Refuses (message naming `what`) a bad list or a kind that is not a
 * DiJiang kind. */
int kx_dec_config_set_form(kx_dec_config *cfg, const char *list, const char *what);

/* Attention kind name of block `layer`: "softmax" for a kept layer, else
 * attn_kind. */
const char *kx_dec_config_layer_kind(const kx_dec_config *cfg, size_t layer);

/* The mask of `layers` layers that keeps softmax everywhere. */
uint64_t kx_dec_all_layers(size_t layers);

/* Parses a comma-separated list of layer indices ("0,3") into a mask;
 * refuses (message naming `what`) an empty item, a non-number, an index
 * >= layers and a repeated index.  Whether the mask leaves a layer to
 * convert is kx_dec_config_check's question. */
int kx_dec_parse_layers(const char *list, const char *what, size_t layers, uint64_t *mask);
/* "0,3" (ascending; "" for 0): for messages. */
void kx_dec_format_layers(uint64_t mask, char *buf, size_t cap);
/* "+sm0.3" ("" for 0): the part of a label that names the kept layers,
 * without commas so that it can be a CSV cell or a file name. */
void kx_dec_hybrid_suffix(uint64_t mask, char *buf, size_t cap);
/* The model's attention for labels (CSV, table rows, messages):
 * "performer", or "performer+sm0.3" for a hybrid that keeps softmax in
 * layers 0 and 3, with a DiJiang kind's form switches after the kind and
 * then "+wN" for a sliding window ("dijiang+softmax+w16+sm0", as
 * kx_dec_config_set_attention reads the part before "+sm"). */
void kx_dec_config_label(const kx_dec_config *cfg, char *buf, size_t cap);
/* Room for any label. */
#define KX_DEC_LABEL_MAX 448


#endif
