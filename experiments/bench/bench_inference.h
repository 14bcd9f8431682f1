/* The cost of generating one token against the context length
 * (kapprox bench-inference, Figure 4): per-token latency of recurrent
 * decoding (dec_infer.h) in wall-clock and in CPU time, prefill time, and memory (the allocator's count
 * of the decoding state or KV cache, and the peak resident set of the
 * process during the point, VmHWM after resetting it). */
#ifndef KX_BENCH_INFERENCE_H
#define KX_BENCH_INFERENCE_H

#include <stddef.h>
#include <stdint.h>

#include "experiments/model/dec_model.h"

/* Decoding steps: KX_BENCH_WARMUP untimed, then at least KX_BENCH_MIN_STEPS
 * timed.  KX_BENCH_MAX_TRAINED_CTX: the largest --ctx of kapprox train
 * (dec_config.c), the most positions a cosformer or linformer model can
 * define. */
enum { KX_BENCH_MIN_STEPS = 16, KX_BENCH_WARMUP = 4, KX_BENCH_MAX_TRAINED_CTX = 8192 };

/* The model timed: a checkpoint, or a fresh one of these sizes. */
typedef struct {
  const char *checkpoint;
  size_t layers, heads, width, vocab;
  uint64_t seed;
} kx_bench_model;

typedef struct {
  const char *kind;
  size_t length, steps, ctx;
  double prefill_s, ms_per_token, cpu_ms_per_token; /* cpu: the process's CPU time */
  size_t state_bytes, alloc_bytes, base_rss, peak_rss;
} kx_bench_point;

/* The checkpoint's model (kind and ctx ignored), or a freshly initialised
 * model of `kind` ("KIND" or "KIND+wN", dec_config.h) with context ctx. */
int kx_bench_make_model(kx_decoder *m, const char *kind, const kx_bench_model *ms, size_t ctx);

/* Decoding steps at most for a prompt of `length` tokens (warm-up included). */
size_t kx_bench_decode_steps(size_t length);

/* The context of a fresh model of a kind with per-position weights
 * (cosformer, linformer): the longest length and its decoding steps, at
 * most what a model can be trained with (kx_dec_config_check). */
size_t kx_bench_position_ctx(size_t max_length);

/* Prefills L tokens, then feeds one token at a time for `seconds` (within
 * the step bounds above) and fills pt's measurements. */
int kx_bench_measure(kx_decoder *m, size_t L, double seconds, uint64_t seed, kx_bench_point *pt);

/* Generation speed as Table 1 measures it: `length` tokens fed one at a
 * time into a fresh decoding state (one token of prompt, then each token
 * as if generated: the context grows from 1 to length), all timed;
 * *tok_s = length / the fastest of `repeats` runs (another process can
 * only slow one down).  The tokens are tok[i % n_tok]. */
int kx_bench_generation(kx_decoder *m, size_t length, const int *tok, size_t n_tok, int repeats, double *tok_s);

/* One CSV row per point, written atomically. */
int kx_bench_write_csv(const char *path, const kx_bench_point *pts, size_t n);

/* Figure 4 as BASE.png and BASE.svg (gnuplot): four panels against the
 * length, one line per kind, from the CSV. */
int kx_bench_figure4(const char *csv, const char *base, const char *const *kinds, size_t nk);

/* The smallest measured length from which `kind` beats softmax and keeps
 * doing so at every longer measured length, for decoding (which = 0) or
 * prefill (1); 0 if none.  *compared: the number of common lengths. */
size_t kx_bench_crossover(const kx_bench_point *pts, size_t n, const char *kind, int which, size_t *compared);

#endif
