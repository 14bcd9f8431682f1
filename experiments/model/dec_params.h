/* The parameter table: every trainable tensor of the decoder is a named
 * slice of one flat float buffer (gradients and AdamW moments use the same
 * offsets in their own flat buffers).  The table drives initialisation,
 * weight decay, checkpoints and gradient checks, so a new attention kind
 * only declares its tensors and everything else follows. */
#ifndef KX_DEC_PARAMS_H
#define KX_DEC_PARAMS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  KX_INIT_ZERO,  /* biases */
  KX_INIT_ONE,   /* LayerNorm gains */
  KX_INIT_SMALL, /* N(0, 2/(5C)): GPT-NeoX "small_init" */
  KX_INIT_WANG,  /* N(0, (2/(L sqrt C))^2): GPT-NeoX "wang_init", layers feeding the residual */
  KX_INIT_IDENTITY, /* ones on the diagonal (rows x cols), zero elsewhere */
  KX_INIT_KIND      /* left zero here: the attention kind's `init` hook fills it */
} kx_init_kind;

typedef struct {
  char name[48];   /* checkpoint dataset path below /param, e.g. "layer0/qkv_w" */
  size_t rows, cols; /* cols == 0: a vector of `rows` values */
  size_t offset, size;
  int decay;       /* 1: AdamW weight decay applies (matrices); 0: biases, LN */
  kx_init_kind init;
  int frozen;      /* 1: never updated by the optimizer (e.g. a fixed DCT or projection) */
} kx_tensor_info;

typedef struct {
  kx_tensor_info *t;
  size_t n, cap;
  size_t total; /* floats */
} kx_param_table;

/* Appends a tensor; returns its index through *index (may be NULL). */
int kx_ptable_add(kx_param_table *tab, const char *name, size_t rows, size_t cols, int decay,
                  kx_init_kind init, size_t *index);
void kx_ptable_free(kx_param_table *tab);
/* Marks tensor `index` as frozen (the optimizer skips it). */
void kx_ptable_freeze(kx_param_table *tab, size_t index);
/* Index of the tensor named `name`, or -1. */
long kx_ptable_find(const kx_param_table *tab, const char *name);

/* Fills `params` according to each tensor's init kind; tensor i draws from
 * its own stream kx_seed_derive(seed, i) so one tensor's values do not
 * depend on the others. */
int kx_ptable_init(const kx_param_table *tab, float *params, size_t width, size_t layers, uint64_t seed);

#endif
