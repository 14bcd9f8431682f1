#include "experiments/eval/runner.h"

#include <cblas.h>
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

static void evaluate_head(const kx_spec *s, const kx_head_reference *ref, head_points *hp, progress *pr) {
  const size_t per_head = s->n_schemes * s->n_m * s->n_seeds;
  int stop = 0;
#pragma omp parallel for schedule(dynamic, 1)
  for (size_t p = 0; p < per_head; p++) {
    if (stop) continue;
    size_t si = p / (s->n_m * s->n_seeds), mi = (p / s->n_seeds) % s->n_m, ki = p % s->n_seeds;
    int rc = kx_eval_point(&s->fmap, ref, s->schemes[si], s->m[mi], s->seeds[ki], hp->values + p * KX_N_METRICS);
    if (rc) {
      hp->status[p] = rc;
      snprintf(hp->messages[p], sizeof hp->messages[p], "%s", kx_error_message());
      if (!kx_point_failure(rc)) stop = 1;
    }
    count_point(pr);
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

static int run_head(const kx_spec *s, const kx_run_options *o, kx_heads *heads, size_t u, progress *pr,
                    kx_results *out) {
  const size_t per_head = s->n_schemes * s->n_m * s->n_seeds;
  head_points hp = {kx_malloc(per_head * KX_N_METRICS * sizeof *hp.values), kx_calloc(per_head, sizeof *hp.status),
                    kx_calloc(per_head, sizeof *hp.messages)};
  kx_loaded_head h;
  memset(&h, 0, sizeof h);
  int rc = hp.values && hp.status && hp.messages ? kx_heads_load(heads, u, &h) : KX_ENOMEM;
  if (!rc) {
    evaluate_head(s, &h.ref, &hp, pr);
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
  progress pr = {.total = heads.n_inputs * s->n_schemes * s->n_m * s->n_seeds, .t0 = kx_now_seconds(),
                 .draw = o->progress};
  for (size_t u = 0; u < heads.n_inputs && !rc; u++) rc = run_head(s, o, &heads, u, &pr, out);
  if (o->progress) fprintf(stderr, "\n");
  kx_heads_close(&heads);
  return rc;
}
