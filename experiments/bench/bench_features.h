/* Feature-map throughput (kapprox bench-features): each scheme's
 * kx_fmap_apply_log and kx_fmap_apply, and for the DCT maps the same map as
 * a dense OpenBLAS product with its materialised W, so the O(d log d) FFTW
 * path can be weighed against an O(m d) GEMM; and the decoder's float32 map.
 *
 * Only applying a map is timed, never creating it: fitted schemes are
 * created on random calibration data with a fixed seed and few pairs (the
 * values of D do not change the cost of applying the map).  Each figure is
 * the best of `reps` timed runs after one untimed warm-up run, on one batch
 * of random inputs (entries N(0, 1/d), |x| about 1). */
#ifndef KX_BENCH_FEATURES_H
#define KX_BENCH_FEATURES_H

#include <stddef.h>
#include <stdint.h>

/* The machine's measured DGEMM (single = 1: SGEMM) rate in GFLOP/s on
 * `threads` OpenMP threads: the peak the benchmarks report shares of. */
double kx_bench_gemm_peak(int single, int threads);

/* The inputs and work buffers of one benchmark, for dimensions up to max_d
 * and m up to max_d x max_mult. */
typedef struct {
  size_t batch, reps, calib_pairs;
  uint64_t seed;
  size_t n_calib;
  double *x, *out, *W, *cq, *ck;
  void *rng; /* gsl_rng */
} kx_bench_fmaps;

int kx_bench_fmaps_alloc(kx_bench_fmaps *b, size_t batch, size_t reps, size_t calib_pairs, uint64_t seed,
                         size_t max_d, size_t max_mult);
void kx_bench_fmaps_free(kx_bench_fmaps *b);

/* Draws the batch and the calibration data of dimension d: the same for
 * every scheme and m at this d. */
void kx_bench_fmaps_inputs(kx_bench_fmaps *b, size_t d);

typedef struct {
  double native_s, phi_s; /* best seconds of apply_log and of apply */
  double dense_s;         /* best seconds of the dense product; NaN: not timed */
  double max_diff;        /* largest |native - dense| */
  char dense_error[512];  /* why the dense path failed ("" if it did not) */
  double transform_s;     /* DCT maps: best seconds of the batch's transforms alone; NaN otherwise */
  double transform_flops; /* their flops per vector (kx_dct_batch_flops summed over the blocks) */
} kx_bench_fmap_times;

/* Times `scheme` at (d, m) on the inputs of kx_bench_fmaps_inputs(b, d);
 * the dense path too for a DCT map unless native_only.  Non-zero with a
 * message if the map cannot be made or applied; a failed dense path only
 * leaves its reason in dense_error. */
int kx_bench_fmap_time(kx_bench_fmaps *b, const char *scheme, size_t d, size_t m, int native_only,
                       kx_bench_fmap_times *t);

/* The decoder's float32 map as its performer, performer-prf and pff kinds
 * run it (kx_posfeat_forward, queries, alpha 1/2: the softmax kernel) on
 * `sequences` sequences of `tokens` tokens, one SGEMM each, on the OpenMP
 * threads; the inputs are the batch (at dimension d, seeded as above)
 * rounded to float and a prf matrix.  Best seconds of `reps` runs after a
 * warm-up. */
typedef struct {
  size_t tokens, sequences;
  float *x, *f, *W;
} kx_bench_float_map;

int kx_bench_float_map_alloc(kx_bench_float_map *fm, size_t batch, size_t max_d, size_t max_m);
void kx_bench_float_map_free(kx_bench_float_map *fm);
int kx_bench_float_map_time(kx_bench_float_map *fm, kx_bench_fmaps *b, size_t d, size_t m, double *best);

#endif
