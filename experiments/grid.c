#include "experiments/grid.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "core/kx_seed.h"
#include "experiments/metrics.h"
#include "experiments/qk_file.h"

void kx_grid_defaults(kx_grid *g) {
  memset(g, 0, sizeof *g);
  kx_fmap_default_options(&g->fmap);
  g->causal = -1;
  g->tokens = 256;
  g->d = 64;
  g->norm.lo = g->norm.hi = 1.0;
}

int kx_grid_eval_point(const kx_fmap_options *base, const kx_head_reference *ref,
                       const char *scheme, size_t m, uint64_t seed, double metrics[KX_N_METRICS]) {
  kx_fmap_options opt = *base;
  /* fitted weights are calibrated on the evaluated head itself */
  opt.calib_q = ref->q;
  opt.calib_k = ref->k;
  opt.n_calib_q = opt.n_calib_k = ref->n;
  int rc;
  kx_fmap *f = kx_fmap_create_status(scheme, ref->d, m, seed, &opt, &rc);
  if (f) rc = kx_evaluate_map(ref, f, metrics);
  kx_fmap_free(f);
  return rc;
}

int kx_grid_parse_schemes(const char *list, char ***items, size_t *n) {
  int rc = kx_split_list(list && !strcmp(list, "all") ? kx_fmap_names() : list, "--schemes", items, n);
  for (size_t i = 0; !rc && i < *n; i++) {
    if (!kx_fmap_lookup((*items)[i]))
      rc = kx_fail(KX_EINVAL, "unknown scheme '%s' (known: %s, or all)", (*items)[i], kx_fmap_names());
    for (size_t j = 0; !rc && j < i; j++)
      if (!strcmp((*items)[i], (*items)[j])) rc = kx_fail(KX_EINVAL, "scheme '%s' is listed twice", (*items)[i]);
  }
  if (rc) {
    kx_free_strings(*items, *n);
    *items = NULL;
    *n = 0;
  }
  return rc;
}

int kx_grid_point_failure(int status) { return status == KX_ENUM || status == KX_ERANGE; }

int kx_grid_head_from_layer(const kx_qk_layer *L, size_t head, size_t max_tokens, int scaled,
                            uint64_t data_seed, double *q, double *k, double *v, size_t *n,
                            size_t *dv) {
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

typedef struct {
  const char *input;
  int layer, head;
  kx_head_reference ref;
} head_job;

/* Evaluates every (scheme, m, seed) on one head; points run in parallel,
 * results land in fixed slots so the output order never depends on
 * scheduling. */
static int run_head(const kx_grid *g, head_job *h, kx_results *out, size_t *done, size_t total,
                    double t0) {
  const size_t per_head = g->n_schemes * g->n_m * g->n_seeds;
  double *values = kx_malloc(per_head * KX_N_METRICS * sizeof *values);
  int *status = kx_calloc(per_head, sizeof *status);
  char (*messages)[512] = kx_calloc(per_head, sizeof *messages);
  if (!values || !status || !messages) {
    free(values);
    free(status);
    free(messages);
    return KX_ENOMEM;
  }
  int stop = 0;
#pragma omp parallel for schedule(dynamic, 1)
  for (size_t p = 0; p < per_head; p++) {
    if (stop) continue;
    size_t s = p / (g->n_m * g->n_seeds), mi = (p / g->n_seeds) % g->n_m, si = p % g->n_seeds;
    int rc = kx_grid_eval_point(&g->fmap, &h->ref, g->schemes[s], g->m[mi], g->seeds[si],
                                values + p * KX_N_METRICS);
    if (rc) {
      status[p] = rc;
      snprintf(messages[p], sizeof messages[p], "%s", kx_error_message());
      if (!kx_grid_point_failure(rc)) stop = 1;
    }
#pragma omp critical(kx_grid_progress)
    {
      ++*done;
      if (g->progress && (*done % 8 == 0 || *done == total)) {
        double el = kx_now_seconds() - t0;
        double left = el / (double)*done * (double)(total - *done);
        fprintf(stderr, "\r  %zu/%zu points  %.1f/s  elapsed %.0fs  left ~%.0fs   ", *done, total,
                (double)*done / (el > 0 ? el : 1e-9), el, left);
        fflush(stderr);
      }
    }
  }
  int rc = 0;
  for (size_t p = 0; p < per_head && !rc; p++)
    if (status[p] && !kx_grid_point_failure(status[p])) rc = kx_fail(status[p], "%s", messages[p]);
  for (size_t p = 0; p < per_head && !rc; p++) {
    size_t s = p / (g->n_m * g->n_seeds), mi = (p / g->n_seeds) % g->n_m, si = p % g->n_seeds;
    const kx_fmap_type *type = kx_fmap_lookup(g->schemes[s]);
    for (int k = 0; k < KX_N_METRICS && !rc; k++) {
      double v = status[p] ? NAN : values[p * KX_N_METRICS + k];
      /* metric undefined for this scheme; a failed point keeps the rows it would have had */
      if (status[p] ? !kx_metric_defined(k, type->kernel_estimator) : isnan(v)) continue;
      if (g->metric_mask && !(g->metric_mask & (1u << k))) continue;
      kx_result_row row = {.layer = h->layer, .head = h->head, .m = g->m[mi], .seed = g->seeds[si],
                           .metric = k, .value = v, .q_norm = h->ref.q_norm, .k_norm = h->ref.k_norm};
      if (status[p]) kx_result_set_failure(&row, messages[p]);
      snprintf(row.input, sizeof row.input, "%s", h->input);
      snprintf(row.kernel, sizeof row.kernel, "%s", g->fmap.kernel == KX_KERNEL_GAUSS ? "gauss" : "softmax");
      snprintf(row.scheme, sizeof row.scheme, "%s", g->schemes[s]);
      rc = kx_results_add(out, &row);
    }
  }
  free(values);
  free(status);
  free(messages);
  return rc;
}

static int validate(const kx_grid *g) {
  if (!g->n_schemes) return kx_fail(KX_EINVAL, "no schemes given");
  if (!g->n_m) return kx_fail(KX_EINVAL, "no values of m given");
  if (!g->n_seeds) return kx_fail(KX_EINVAL, "no seeds given");
  for (size_t s = 0; s < g->n_schemes; s++)
    if (!kx_fmap_lookup(g->schemes[s]))
      return kx_fail(KX_EINVAL, "unknown scheme '%s' (known: %s)", g->schemes[s], kx_fmap_names());
  for (size_t i = 0; i < g->n_m; i++)
    if (g->m[i] == 0) return kx_fail(KX_EINVAL, "m must be at least 1");
  return 0;
}

static int selected(const int *list, size_t n, int v) {
  if (n == 0) return 1;
  for (size_t i = 0; i < n; i++)
    if (list[i] == v) return 1;
  return 0;
}

int kx_grid_run(const kx_grid *g, kx_results *out) {
  int rc = validate(g);
  if (rc) return rc;
  /* Points run in parallel; nested BLAS threads would only fight them. */
  openblas_set_num_threads(1);
  double t0 = kx_now_seconds();
  size_t done = 0;
  if (!g->qk_path) {
    if (g->tokens == 0 || g->d == 0) return kx_fail(KX_EINVAL, "synthetic data needs --tokens >= 1 and --dim >= 1");
    size_t n = g->tokens, d = g->d;
    double *q = kx_malloc(n * d * sizeof *q), *k = kx_malloc(n * d * sizeof *k), *v = kx_malloc(n * d * sizeof *v);
    if (!q || !k || !v) rc = KX_ENOMEM;
    if (!rc) rc = kx_synthetic_qkv(n, d, d, g->norm, g->data_seed, q, k, v);
    head_job h = {.input = "synthetic", .layer = -1, .head = -1};
    if (!rc) rc = kx_head_reference_init(&h.ref, n, d, d, q, k, v, g->causal > 0, g->fmap.kernel);
    if (!rc) rc = run_head(g, &h, out, &done, g->n_schemes * g->n_m * g->n_seeds, t0);
    kx_head_reference_free(&h.ref);
    free(q);
    free(k);
    free(v);
  } else {
    kx_qk_file *f = kx_qk_open(g->qk_path);
    if (!f) return KX_EIO;
    size_t total = 0;
    /* count selected heads first so progress can say how much is left */
    size_t layers_sel = 0;
    for (size_t i = 0; i < kx_qk_n_layers(f); i++) layers_sel += selected(g->layers, g->n_layers, kx_qk_layer_index(f, i));
    for (size_t i = 0; i < g->n_layers; i++) {
      int found = 0;
      for (size_t j = 0; j < kx_qk_n_layers(f); j++) found |= kx_qk_layer_index(f, j) == g->layers[i];
      if (!found) {
        rc = kx_fail(KX_EINVAL, "%s has no layer %d", g->qk_path, g->layers[i]);
        break;
      }
    }
    for (size_t i = 0; i < kx_qk_n_layers(f) && !rc; i++) {
      if (!selected(g->layers, g->n_layers, kx_qk_layer_index(f, i))) continue;
      kx_qk_layer L;
      if ((rc = kx_qk_layer_shape(f, i, &L))) break;
      if (total == 0) total = layers_sel * (g->n_heads ? g->n_heads : L.heads) * g->n_schemes * g->n_m * g->n_seeds;
      for (size_t hs = 0; hs < g->n_heads && !rc; hs++)
        if (g->heads[hs] < 0 || (size_t)g->heads[hs] >= L.heads)
          rc = kx_fail(KX_EINVAL, "%s layer %d has heads 0..%zu; head %d does not exist", g->qk_path,
                       L.index, L.heads - 1, g->heads[hs]);
      size_t n = g->max_tokens && g->max_tokens < L.tokens ? g->max_tokens : L.tokens, d = L.d;
      size_t dv = L.dv ? L.dv : d;
      int causal = g->causal >= 0 ? g->causal : kx_qk_causal(f);
      /* only the selected heads' first max_tokens tokens leave the file
       * (after the reader has checked the sizes they declare), in one read */
      size_t h_lo = L.heads, h_hi = 0;
      for (size_t hh = 0; hh < L.heads; hh++)
        if (selected(g->heads, g->n_heads, (int)hh)) h_lo = hh < h_lo ? hh : h_lo, h_hi = hh;
      kx_qk_layer H;
      memset(&H, 0, sizeof H);
      if (!rc && h_lo <= h_hi) rc = kx_qk_read_heads(f, i, h_lo, h_hi - h_lo + 1, g->max_tokens, &H);
      double *q = NULL, *k = NULL, *v = NULL;
      if (!rc) {
        q = kx_malloc(n * d * sizeof *q), k = kx_malloc(n * d * sizeof *k), v = kx_malloc(n * dv * sizeof *v);
        if (!q || !k || !v) rc = KX_ENOMEM;
      }
      for (size_t hh = h_lo; hh <= h_hi && hh < L.heads && !rc; hh++) {
        if (!selected(g->heads, g->n_heads, (int)hh)) continue;
        rc = kx_grid_head_from_layer(&H, hh, g->max_tokens, kx_qk_scaled(f), g->data_seed, q, k, v, &n, &dv);
        if (rc) break;
        head_job h = {.input = g->qk_path, .layer = L.index, .head = (int)hh};
        rc = kx_head_reference_init(&h.ref, n, d, dv, q, k, v, causal, g->fmap.kernel);
        if (!rc) rc = run_head(g, &h, out, &done, total, t0);
        kx_head_reference_free(&h.ref);
        if (rc) kx_fail_context(rc, "%s layer %d head %zu: ", g->qk_path, L.index, hh);
      }
      free(q);
      free(k);
      free(v);
      kx_qk_layer_free(&H);
      kx_qk_layer_free(&L);
    }
    kx_qk_close(f);
  }
  if (g->progress) fprintf(stderr, "\n");
  return rc;
}
