/* Running a spec in memory: every input head x scheme x m x seed, each
 * point one feature map evaluated by every metric, results collected as
 * rows.  compare, kernel-error, attn-fidelity and reproduce kernel are
 * this runner with different defaults and shown metrics; the sweep
 * (sweep.h) evaluates the same points one by one through a journal. */
#ifndef KX_RUNNER_H
#define KX_RUNNER_H

#include <stddef.h>
#include <stdint.h>

#include "approx/fmap.h"
#include "experiments/eval/metrics.h"
#include "experiments/eval/results.h"
#include "experiments/eval/spec.h"

/* The feature map of a point (scheme, m, seed) with the options `base`,
 * fitted weights calibrated on the head itself; NULL with *status and a
 * message on failure. */
kx_fmap *kx_point_map(const kx_fmap_options *base, const kx_head_reference *ref, const char *scheme, size_t m,
                      uint64_t seed, int *status);

/* One point on its own: builds the map (scheme, m, seed) with the options
 * `base`, calibrating fitted weights on the head itself, and evaluates
 * every metric.  Thread-safe; the sweep calls it per point. */
int kx_eval_point(const kx_fmap_options *base, const kx_head_reference *ref, const char *scheme, size_t m,
                  uint64_t seed, double metrics[KX_N_METRICS]);

/* kx_eval_point in a worker's workspace (kx_eval_workspace_new for this
 * head and an m at least this point's), computing only the metrics of
 * `mask` (0: all) and adding its times to `times` (may be NULL). */
int kx_eval_point_work(const kx_fmap_options *base, const kx_head_reference *ref, const char *scheme, size_t m,
                       uint64_t seed, unsigned mask, kx_eval_workspace *w, kx_eval_times *times,
                       double metrics[KX_N_METRICS]);

/* Whether an error of kx_eval_point sinks only its own point (a numerical
 * failure such as a weight fit that does not converge, recorded as a
 * failed point with NaN values) rather than the whole run (memory, files,
 * bad parameters). */
int kx_point_failure(int status);

/* Where a run's time went: the workers' times summed, and the flops of
 * its products counted as dense GEMMs (features 2 n m d per input matrix,
 * whatever the map's own algorithm; estimated kernel 2 n^2 m; outputs
 * 2 n^2 dv; per head the exact kernel 2 n^2 d and outputs 2 n^2 dv). */
typedef struct {
  kx_eval_times t;
  double load;  /* reading or drawing the heads, and their exact side (CPU) */
  double wall;  /* the whole run, wall clock */
  double flops;
  size_t points, heads;
} kx_eval_profile;

typedef struct {
  unsigned metric_mask;     /* bit i set: record (and compute) metric i (0 = all) */
  int progress;             /* draw progress on stderr */
  kx_eval_profile *profile; /* NULL: not timed */
} kx_run_options;

/* Lets blocks of up to 32 MB come from the heap and freed ones stay with the process (glibc's
 * mallopt) for the rest of a grid: every point builds maps whose
 * matrices are large enough for glibc to map and unmap them afresh,
 * which made every point first-touch new pages (measured: ~37 page
 * faults a point after the workspaces, at ~6 us each on this VM).
 * Process-wide; the grid runners call it before their points. */
void kx_eval_keep_freed_memory(void);

/* Runs the spec, appending one row per (head, scheme, m, seed, metric); a
 * failed point (kx_point_failure) gives rows with value NaN and the reason
 * in `failure`, and the other points still run. */
int kx_spec_run(const kx_spec *s, const kx_run_options *o, kx_results *out);

#endif
