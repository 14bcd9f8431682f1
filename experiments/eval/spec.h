/* One experiment, as every experiment command describes it: inputs x
 * schemes x m x seeds, with the kernel and feature-map options.  compare,
 * kernel-error, attn-fidelity, reproduce kernel and attn-maps run it in
 * memory (runner.h), sweep and merge through a journal (sweep.h); all of
 * them list its inputs and load its heads the same way (inputs.h) and
 * fill it from one option table (spec_options.h).
 *
 * Inputs are heads: one synthetic head per entry of norms, then the
 * selected layers and heads of each Q/K file, in that order. */
#ifndef KX_SPEC_H
#define KX_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "approx/fmap.h"
#include "experiments/qk/synthetic.h"
#include "samplers/sobol_table.h"

#define KX_SPEC_MAX 256      /* values of m, seeds, norms, layers, heads */
#define KX_SPEC_MAX_FILES 16 /* Q/K files */
/* Limits of every experiment command.  A PFF-type map draws each feature's
 * d direction coordinates and its radius from one point of the Sobol'
 * table, so d stays one below the table's dimensions. */
#define KX_SPEC_MAX_DIM (KX_SOBOL_MAX_DIM - 1)
#define KX_SPEC_MAX_TOKENS ((size_t)1 << 16)     /* synthetic tokens per head */
#define KX_SPEC_MAX_FILE_TOKENS ((size_t)1 << 20) /* first tokens of a file's head */
#define KX_SPEC_MAX_M ((size_t)1 << 20)
#define KX_SPEC_MAX_CALIB_PAIRS ((size_t)1 << 24)

/* Exit status of a run that finished every point it could but recorded
 * failed points (0 success, 1 runtime error, 2 usage error). */
#define KX_EXIT_SOME_FAILED 3

typedef struct {
  /* what to evaluate */
  char **schemes; /* owned: kx_spec_free */
  size_t n_schemes;
  size_t m[KX_SPEC_MAX];
  size_t n_m;
  uint64_t seeds[KX_SPEC_MAX];
  size_t n_seeds;
  kx_fmap_options fmap;  /* kernel, radii, calibration controls */
  /* synthetic inputs: one per norm */
  kx_norm_spec norms[KX_SPEC_MAX];
  size_t n_norms;
  size_t tokens, d;      /* synthetic shape */
  uint64_t data_seed;    /* synthetic Q/K/V, and V of files without v */
  /* Q/K file inputs: the selected layers and heads of each (counts 0 = all) */
  const char *files[KX_SPEC_MAX_FILES];
  size_t n_files;
  int layers[KX_SPEC_MAX], heads[KX_SPEC_MAX];
  size_t n_layers, n_heads;
  size_t max_tokens;     /* 0 = all tokens of a file's head */
  int causal;            /* -1: a file's attribute, synthetic_causal for synthetic heads */
  int synthetic_causal;  /* mask of synthetic heads when causal is -1 */
  int norm_labels;       /* synthetic inputs are labelled "synthetic:norm=X" (else "synthetic") */
} kx_spec;

/* One input head of a spec. */
typedef struct {
  char label[128];  /* the results' "input" column */
  int file;         /* index into files, -1 for synthetic */
  size_t norm;      /* synthetic: index into norms */
  size_t layer_pos; /* file: position of the layer in the file */
  int layer, head;  /* -1 for synthetic */
} kx_spec_input;

/* Synthetic input of norm 1, 256 tokens, d = 64; no schemes, m or seeds. */
void kx_spec_defaults(kx_spec *s);
void kx_spec_free(kx_spec *s);

/* "softmax" or "gauss". */
const char *kx_spec_kernel_name(const kx_spec *s);

/* A comma-separated list of registered schemes, or "all" for every
 * registered one; unknown and repeated names are refused.  Free with
 * kx_free_strings. */
int kx_spec_parse_schemes(const char *list, char ***items, size_t *n);

typedef enum {
  KX_SCHEMES_EVERY,             /* every registered scheme */
  KX_SCHEMES_KERNEL_ESTIMATORS, /* every scheme whose phi.phi targets the kernel */
  KX_SCHEMES_COMPARISON,        /* the paper's comparison: six of prf, orf, pff-mc, pff-sobol,
                                   wpff-sobol, wdcf, pff-halton (filled up with other estimators) */
} kx_scheme_set;
/* The default schemes of a command (free with kx_free_strings). */
int kx_spec_default_schemes(kx_scheme_set set, char ***items, size_t *n);

/* Whether the spec describes a grid that can run: schemes, m and seeds
 * given, known and listed once, some input, a synthetic shape of at least
 * one token and one dimension.  Errors say what is wrong (KX_EINVAL). */
int kx_spec_check(const kx_spec *s);

/* Lists the input heads (reading the files' shapes): newly allocated array
 * in input order, possibly empty.  A file that cannot be read, or lacks a selected layer or
 * head, is an error naming the file. */
int kx_spec_list_inputs(const kx_spec *s, kx_spec_input **inputs, size_t *n);

#endif
