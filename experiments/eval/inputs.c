#include "experiments/eval/inputs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "core/kx_seed.h"

int kx_head_from_layer(const kx_qk_layer *L, size_t head, size_t max_tokens, int scaled, uint64_t data_seed,
                       double *q, double *k, double *v, size_t *n, size_t *dv) {
  if (head < L->head_first || head - L->head_first >= L->heads)
    return kx_fail(KX_EINVAL, "layer %d: head %zu was not loaded (heads %zu..%zu are)", L->index, head,
                   L->head_first, L->head_first + L->heads - 1);
  const size_t d = L->d, row = head - L->head_first; /* L holds a slice of the file's heads */
  *n = max_tokens && max_tokens < L->tokens ? max_tokens : L->tokens;
  *dv = L->v ? L->dv : d;
  /* kernels are evaluated on q~ = q / d^(1/4) so exp(q~.k~) is the softmax logit's exp */
  double scale = scaled ? 1.0 : pow((double)d, -0.25);
  for (size_t t = 0; t < *n * d; t++) {
    q[t] = scale * L->q[row * L->tokens * d + t];
    k[t] = scale * L->k[row * L->tokens * d + t];
  }
  if (L->v) {
    memcpy(v, L->v + row * L->tokens * *dv, *n * *dv * sizeof *v);
    return 0;
  }
  /* random values, the same for every scheme, from the data seed */
  kx_norm_spec unit = {1, 1};
  double *scratch = kx_malloc(2 * *n * *dv * sizeof *scratch);
  if (!scratch) return KX_ENOMEM;
  int rc = kx_synthetic_qkv(*n, *dv, *dv, unit, kx_seed_derive(data_seed, (uint64_t)L->index * 4096 + head),
                            scratch, scratch + *n * *dv, v);
  free(scratch);
  return rc;
}

int kx_heads_open(kx_heads *it, const kx_spec *s) {
  memset(it, 0, sizeof *it);
  it->spec = s;
  it->file_index = -1;
  return kx_spec_list_inputs(s, &it->inputs, &it->n_inputs);
}

int kx_heads_open_listed(kx_heads *it, const kx_spec *s, const kx_spec_input *inputs, size_t n) {
  memset(it, 0, sizeof *it);
  it->spec = s;
  it->file_index = -1;
  it->inputs = kx_malloc((n ? n : 1) * sizeof *it->inputs);
  if (!it->inputs) return KX_ENOMEM;
  memcpy(it->inputs, inputs, n * sizeof *inputs);
  it->n_inputs = n;
  return 0;
}

static void close_file(kx_heads *it) {
  if (it->have_layer) kx_qk_layer_free(&it->layer);
  if (it->file) kx_qk_close(it->file);
  it->have_layer = 0;
  it->file = NULL;
  it->file_index = -1;
}

void kx_heads_close(kx_heads *it) {
  close_file(it);
  free(it->inputs);
  it->inputs = NULL;
  it->n_inputs = 0;
}

void kx_loaded_head_free(kx_loaded_head *h) {
  kx_head_reference_free(&h->ref);
  free(h->q);
  free(h->k);
  free(h->v);
  h->q = h->k = h->v = NULL;
}

static int alloc_qkv(kx_loaded_head *h, size_t n, size_t d, size_t dv) {
  h->q = kx_malloc(n * d * sizeof *h->q);
  h->k = kx_malloc(n * d * sizeof *h->k);
  h->v = kx_malloc(n * dv * sizeof *h->v);
  return h->q && h->k && h->v ? 0 : KX_ENOMEM;
}

static int load_synthetic(const kx_spec *s, const kx_spec_input *in, kx_loaded_head *h) {
  const size_t n = s->tokens, d = s->d;
  int causal = s->causal >= 0 ? s->causal : s->synthetic_causal;
  int rc = alloc_qkv(h, n, d, d);
  if (!rc) rc = kx_synthetic_qkv(n, d, d, s->norms[in->norm], s->data_seed, h->q, h->k, h->v);
  if (!rc) rc = kx_head_reference_init(&h->ref, n, d, d, h->q, h->k, h->v, causal, s->fmap.kernel);
  return rc;
}

/* Heads read from a file in one go, at most this many bytes of them: each
 * read runs in a sandboxed process (core/kx_sandbox.h), whose start costs
 * about as much as evaluating a small head, and it runs alone while the
 * workers wait. */
#define KX_HEADS_READ_BYTES ((size_t)64 << 20)

/* How many of the inputs from u on are the next heads of u's layer in u's
 * file (u's head, its successor, ...), at most `cap`. */
static size_t heads_in_run(const kx_heads *it, size_t u, size_t cap) {
  const kx_spec_input *in = &it->inputs[u];
  size_t n = 1;
  while (n < cap && u + n < it->n_inputs) {
    const kx_spec_input *next = &it->inputs[u + n];
    if (next->file != in->file || next->layer_pos != in->layer_pos || next->head != in->head + (int)n) break;
    n++;
  }
  return n;
}

/* Only the input's head and the next heads of its layer the grid uses
 * (within KX_HEADS_READ_BYTES; one head while their size is unknown),
 * their first max_tokens tokens, leave the file (after the reader has
 * checked the sizes it declares). */
static int load_file_head(kx_heads *it, size_t u, const kx_spec_input *in, kx_loaded_head *h) {
  const kx_spec *s = it->spec;
  if (it->file_index != in->file) {
    close_file(it);
    it->file = kx_qk_open(s->files[in->file]);
    if (!it->file) return KX_EIO;
    it->file_index = in->file;
  }
  const kx_qk_layer *have = &it->layer;
  if (!it->have_layer || it->layer_pos != in->layer_pos || (size_t)in->head < have->head_first ||
      (size_t)in->head >= have->head_first + have->heads) {
    size_t cap = it->head_bytes ? KX_HEADS_READ_BYTES / it->head_bytes : 1;
    size_t count = heads_in_run(it, u, cap ? cap : 1);
    if (it->have_layer) kx_qk_layer_free(&it->layer);
    it->have_layer = 0;
    int rc = kx_qk_read_heads(it->file, in->layer_pos, (size_t)in->head, count, s->max_tokens, &it->layer);
    if (rc) return rc;
    it->have_layer = 1;
    it->layer_pos = in->layer_pos;
    it->head_bytes = it->layer.tokens * (2 * it->layer.d + it->layer.dv) * sizeof(double);
    if (!it->head_bytes) it->head_bytes = 1;
  }
  const kx_qk_layer *L = &it->layer;
  size_t n, dv;
  int rc = alloc_qkv(h, L->tokens, L->d, L->v ? L->dv : L->d);
  if (!rc) rc = kx_head_from_layer(L, (size_t)in->head, s->max_tokens, kx_qk_scaled(it->file), s->data_seed,
                                   h->q, h->k, h->v, &n, &dv);
  int causal = s->causal >= 0 ? s->causal : kx_qk_causal(it->file);
  if (!rc) rc = kx_head_reference_init(&h->ref, n, L->d, dv, h->q, h->k, h->v, causal, s->fmap.kernel);
  return rc;
}

int kx_heads_load(kx_heads *it, size_t u, kx_loaded_head *h) {
  memset(h, 0, sizeof *h);
  const kx_spec_input *in = &it->inputs[u];
  int rc = in->file < 0 ? load_synthetic(it->spec, in, h) : load_file_head(it, u, in, h);
  if (rc) kx_loaded_head_free(h);
  return rc;
}

int kx_heads_load_first(const kx_spec *s, kx_loaded_head *h) {
  kx_heads heads;
  memset(h, 0, sizeof *h);
  int rc = kx_heads_open(&heads, s);
  if (!rc && !heads.n_inputs) rc = kx_fail(KX_EINVAL, "the selected layer and head hold no head");
  if (!rc) rc = kx_heads_load(&heads, 0, h);
  kx_heads_close(&heads);
  return rc;
}
