/* The head iterator: loads the input heads of a spec (synthetic or a Q/K
 * file's layer and head) as q, k, v and their exact reference, for every
 * runner (in memory, sweep, attention maps).  A file stays open and its
 * current head cached between consecutive heads of the same file. */
#ifndef KX_INPUTS_H
#define KX_INPUTS_H

#include <stddef.h>
#include <stdint.h>

#include "experiments/eval/metrics.h"
#include "experiments/qk/qk_file.h"
#include "experiments/eval/spec.h"

typedef struct {
  const kx_spec *spec;
  kx_spec_input *inputs; /* owned */
  size_t n_inputs;
  /* the open file and the heads last read from it (layer.head_first ...) */
  kx_qk_file *file;
  int file_index;
  size_t layer_pos;
  kx_qk_layer layer;
  int have_layer;
  size_t head_bytes; /* q, k and v of one head of this file, as read (0: none read yet) */
} kx_heads;

/* One loaded head: q, k (n x d, scaled so q.k is the logit), v (n x dv)
 * and the exact kernel, attention and outputs of ref. */
typedef struct {
  double *q, *k, *v;
  kx_head_reference ref;
} kx_loaded_head;

/* Lists the spec's inputs (kx_spec_list_inputs); the spec must outlive it. */
int kx_heads_open(kx_heads *it, const kx_spec *s);
/* The same over inputs already listed (copied), without reading the files' shapes again. */
int kx_heads_open_listed(kx_heads *it, const kx_spec *s, const kx_spec_input *inputs, size_t n);
void kx_heads_close(kx_heads *it);
/* Loads input u (0 <= u < n_inputs). */
int kx_heads_load(kx_heads *it, size_t u, kx_loaded_head *h);
void kx_loaded_head_free(kx_loaded_head *h);
/* The first input head of a spec (a spec of one head: attention maps). */
int kx_heads_load_first(const kx_spec *s, kx_loaded_head *h);

/* Copies head `head` of layer L (first max_tokens tokens, 0 = all) into q, k
 * (n x d, scaled so q.k is the logit) and v (n x dv; random from data_seed
 * when the file has no v).  q, k, v need room for L->tokens rows. */
int kx_head_from_layer(const kx_qk_layer *L, size_t head, size_t max_tokens, int scaled, uint64_t data_seed,
                       double *q, double *k, double *v, size_t *n, size_t *dv);

#endif
