#include "experiments/eval/runner.h"

#include <cblas.h>
#include <malloc.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/eval/inputs.h"

kx_fmap *kx_point_map(const kx_fmap_options *base, const kx_head_reference *ref, const char *scheme, size_t m,
                      uint64_t seed, int *status) {
  kx_fmap_options opt = *base;
  /* fitted weights are calibrated on the evaluated head itself */
  opt.calib_q = ref->q;
  opt.calib_k = ref->k;
  opt.n_calib_q = opt.n_calib_k = ref->n;
  return kx_fmap_create_status(scheme, ref->d, m, seed, &opt, status);
}

int kx_eval_point(const kx_fmap_options *base, const kx_head_reference *ref, const char *scheme, size_t m,
                  uint64_t seed, double metrics[KX_N_METRICS]) {
  int rc;
  kx_fmap *f = kx_point_map(base, ref, scheme, m, seed, &rc);
  if (f) rc = kx_evaluate_map(ref, f, metrics);
  kx_fmap_free(f);
  return rc;
}

int kx_eval_point_work(const kx_fmap_options *base, const kx_head_reference *ref, const char *scheme, size_t m,
                       uint64_t seed, unsigned mask, kx_eval_workspace *w, kx_eval_times *times,
                       double metrics[KX_N_METRICS]) {
  int rc;
  double t0 = times ? kx_thread_cpu_seconds() : 0;
  kx_fmap *f = kx_point_map(base, ref, scheme, m, seed, &rc);
  if (times) times->map_build += kx_thread_cpu_seconds() - t0;
  if (f) rc = kx_evaluate_map_work(ref, f, mask, w, times, metrics);
  kx_fmap_free(f);
  return rc;
}

void kx_eval_keep_freed_memory(void) {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

int kx_point_failure(int status) { return status == KX_ENUM || status == KX_ERANGE; }

/* The points of one head, evaluated in parallel into fixed slots so the
 * output order never depends on scheduling. */
typedef struct {
  double *values;        /* per point, KX_N_METRICS each */
  int *status;           /* per point */
  char (*messages)[512]; /* per failed point */
} head_points;

typedef struct {
  size_t done, total;
  double t0;
  int draw;
} progress;

static void count_point(progress *pr) {
#pragma omp critical(kx_runner_progress)
  {
    ++pr->done;
    if (pr->draw && (pr->done % 8 == 0 || pr->done == pr->total)) {
      double el = kx_now_seconds() - pr->t0;
      double left = el / (double)pr->done * (double)(pr->total - pr->done);
      fprintf(stderr, "\r  %zu/%zu points  %.1f/s  elapsed %.0fs  left ~%.0fs   ", pr->done, pr->total,
              (double)pr->done / (el > 0 ? el : 1e-9), el, left);
      fflush(stderr);
    }
  }
}

static size_t largest_m(const kx_spec *s) {
  size_t m = 0;
  for (size_t i = 0; i < s->n_m; i++)
    if (s->m[i] > m) m = s->m[i];
  return m;
}

/* A map without fitted weights depends only on (scheme, d, m, seed), not
 * on the head: the maps of a grid of many heads (a Q/K file) are built for
 * the first head and kept for the others (built per point they were most
 * of attn-fidelity's time on a file of 16 heads), within this budget of
 * their matrices' bytes; beyond it every point builds its own. */
#define KX_SHARED_MAPS_BYTES ((double)(256u << 20))

static int share_maps(const kx_spec *s, size_t n_heads, size_t d) {
  double bytes = 0;
  for (size_t si = 0; si < s->n_schemes; si++)
    if (!kx_fmap_lookup(s->schemes[si])->fitted_weights)
      for (size_t mi = 0; mi < s->n_m; mi++) bytes += 2.0 * 8 * (double)s->m[mi] * (double)d * (double)s->n_seeds;
  return n_heads > 1 && bytes <= KX_SHARED_MAPS_BYTES;
}

/* The map of point p: the shared one (built now if this is its first
 * head), else a new one the caller frees (*own). */
static kx_fmap *point_map(const kx_spec *s, const kx_head_reference *ref, size_t p, kx_fmap **shared, int *own,
                          int *rc) {
  size_t si = p / (s->n_m * s->n_seeds), mi = (p / s->n_seeds) % s->n_m, ki = p % s->n_seeds;
  *own = !shared || kx_fmap_lookup(s->schemes[si])->fitted_weights;
  if (!*own && shared[p] && shared[p]->d == ref->d) return shared[p];
  kx_fmap *f = kx_point_map(&s->fmap, ref, s->schemes[si], s->m[mi], s->seeds[ki], rc);
  if (!*own && f) {
    /* one thread owns point p within a head, and heads run one after another */
    kx_fmap_free(shared[p]);
    shared[p] = f;
  }
  return f;
}

/* Each worker evaluates its points in one workspace, allocated once. */
static void evaluate_head(const kx_spec *s, const kx_run_options *o, const kx_head_reference *ref, kx_fmap **shared,
                          head_points *hp, progress *pr) {
  const size_t per_head = s->n_schemes * s->n_m * s->n_seeds;
  int stop = 0;
  kx_eval_profile *prof = o->profile;
#pragma omp parallel
  {
    kx_eval_workspace *w = kx_eval_workspace_new(ref, largest_m(s));
    int wrc = w ? 0 : KX_ENOMEM;
    char wmsg[512];
    if (wrc) snprintf(wmsg, sizeof wmsg, "%s", kx_error_message());
    kx_eval_times t = {0};
    size_t points = 0;
#pragma omp for schedule(dynamic, 1)
    for (size_t p = 0; p < per_head; p++) {
      if (stop) continue;
      int rc = wrc, own = 1;
      if (!rc) {
        double t0 = prof ? kx_thread_cpu_seconds() : 0;
        kx_fmap *f = point_map(s, ref, p, shared, &own, &rc);
        if (prof) t.map_build += kx_thread_cpu_seconds() - t0;
        if (f) rc = kx_evaluate_map_work(ref, f, o->metric_mask, w, prof ? &t : NULL, hp->values + p * KX_N_METRICS);
        if (own) kx_fmap_free(f);
      }
      if (rc) {
        hp->status[p] = rc;
        snprintf(hp->messages[p], sizeof hp->messages[p], "%s", wrc ? wmsg : kx_error_message());
        if (!kx_point_failure(rc)) stop = 1;
      }
      points++;
      count_point(pr);
    }
    kx_eval_workspace_free(w);
    if (prof) {
#pragma omp critical(kx_runner_profile)
      {
        prof->t.map_build += t.map_build;
        prof->t.features += t.features;
        prof->t.kernel += t.kernel;
        prof->t.attention += t.attention;
        prof->t.metrics += t.metrics;
        prof->points += points;
      }
    }
  }
  if (prof) {
    const double n = (double)ref->n, d = (double)ref->d, dv = (double)ref->dv;
    const int attention = !o->metric_mask || (o->metric_mask & kx_metric_attention_mask());
    for (size_t mi = 0; mi < s->n_m; mi++) {
      const double m = (double)s->m[mi], per_point = 4 * n * m * d + 2 * n * n * m + (attention ? 2 * n * n * dv : 0);
      prof->flops += per_point * (double)(s->n_schemes * s->n_seeds);
    }
    prof->flops += 2 * n * n * (d + dv);
    prof->heads++;
  }
}

/* Appends the rows of one head's points: a failed point keeps the rows it
 * would have had, with value NaN and its reason. */
static int add_rows(const kx_spec *s, const kx_run_options *o, const kx_spec_input *in,
                    const kx_head_reference *ref, const head_points *hp, kx_results *out) {
  const size_t per_head = s->n_schemes * s->n_m * s->n_seeds;
  int rc = 0;
  for (size_t p = 0; p < per_head && !rc; p++)
    if (hp->status[p] && !kx_point_failure(hp->status[p])) rc = kx_fail(hp->status[p], "%s", hp->messages[p]);
  for (size_t p = 0; p < per_head && !rc; p++) {
    size_t si = p / (s->n_m * s->n_seeds), mi = (p / s->n_seeds) % s->n_m, ki = p % s->n_seeds;
    const kx_fmap_type *type = kx_fmap_lookup(s->schemes[si]);
    for (int k = 0; k < KX_N_METRICS && !rc; k++) {
      double v = hp->status[p] ? NAN : hp->values[p * KX_N_METRICS + k];
      /* metric undefined for this scheme */
      if (hp->status[p] ? !kx_metric_defined(k, type->kernel_estimator) : isnan(v)) continue;
      if (o->metric_mask && !(o->metric_mask & (1u << k))) continue;
      kx_result_row row = {.layer = in->layer, .head = in->head, .m = s->m[mi], .seed = s->seeds[ki],
                           .metric = k, .value = v, .q_norm = ref->q_norm, .k_norm = ref->k_norm};
      if (hp->status[p]) kx_result_set_failure(&row, hp->messages[p]);
      snprintf(row.input, sizeof row.input, "%s", in->label);
      snprintf(row.kernel, sizeof row.kernel, "%s", kx_spec_kernel_name(s));
      snprintf(row.scheme, sizeof row.scheme, "%s", s->schemes[si]);
      rc = kx_results_add(out, &row);
    }
  }
  return rc;
}

static int run_head(const kx_spec *s, const kx_run_options *o, kx_heads *heads, size_t u, kx_fmap **shared,
                    progress *pr, kx_results *out) {
  const size_t per_head = s->n_schemes * s->n_m * s->n_seeds;
  head_points hp = {kx_malloc(per_head * KX_N_METRICS * sizeof *hp.values), kx_calloc(per_head, sizeof *hp.status),
                    kx_calloc(per_head, sizeof *hp.messages)};
  kx_loaded_head h;
  memset(&h, 0, sizeof h);
  double t0 = kx_thread_cpu_seconds();
  int rc = hp.values && hp.status && hp.messages ? kx_heads_load(heads, u, &h) : KX_ENOMEM;
  if (o->profile) o->profile->load += kx_thread_cpu_seconds() - t0;
  if (!rc) {
    evaluate_head(s, o, &h.ref, heads->n_inputs > 1 && share_maps(s, heads->n_inputs, h.ref.d) ? shared : NULL, &hp,
                  pr);
    rc = add_rows(s, o, &heads->inputs[u], &h.ref, &hp, out);
  }
  const kx_spec_input *in = &heads->inputs[u];
  if (rc && in->file >= 0) kx_fail_context(rc, "%s layer %d head %d: ", in->label, in->layer, in->head);
  kx_loaded_head_free(&h);
  free(hp.values);
  free(hp.status);
  free(hp.messages);
  return rc;
}

int kx_spec_run(const kx_spec *s, const kx_run_options *o, kx_results *out) {
  int rc = kx_spec_check(s);
  if (rc) return rc;
  kx_heads heads;
  rc = kx_heads_open(&heads, s);
  if (!rc && !heads.n_inputs) rc = kx_fail(KX_EINVAL, "empty grid: the selected layers and heads hold no heads");
  /* Points run in parallel; nested BLAS threads would only fight them. */
  openblas_set_num_threads(1);
  kx_eval_keep_freed_memory();
  progress pr = {.total = heads.n_inputs * s->n_schemes * s->n_m * s->n_seeds, .t0 = kx_now_seconds(),
                 .draw = o->progress};
  const size_t per_head = s->n_schemes * s->n_m * s->n_seeds;
  kx_fmap **shared = rc ? NULL : kx_calloc(per_head, sizeof *shared);
  if (!rc && !shared) rc = KX_ENOMEM;
  double t0 = kx_now_seconds();
  for (size_t u = 0; u < heads.n_inputs && !rc; u++) rc = run_head(s, o, &heads, u, shared, &pr, out);
  for (size_t p = 0; shared && p < per_head; p++) kx_fmap_free(shared[p]);
  free(shared);
  if (o->profile) o->profile->wall += kx_now_seconds() - t0;
  if (o->progress) fprintf(stderr, "\n");
  kx_heads_close(&heads);
  return rc;
}
