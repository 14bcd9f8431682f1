/* The budget study of kapprox reproduce (budget.h). */
#include "experiments/reproduce/budget.h"

#include <errno.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_multifit_nlinear.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/kx_atomic.h"
#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "core/kx_fs.h"
#include "experiments/model/dec_attn.h"
#include "experiments/model/dec_dijiang_form.h"
#include "experiments/model/dec_transfer.h"
#include "experiments/plot/gnuplot.h"
#include "experiments/reproduce/repro_table.h"

#define PATH_CAP KX_REPRO_PATH_CAP
/* The weight of a run beyond its steps in the time-left estimate. */
#define RUN_OVERHEAD_STEPS KX_REPRO_RUN_OVERHEAD_STEPS
/* The thresholds of the "tokens to come within" columns (nats). */
static const double thresholds[2] = {0.1, 0.25};

/* ---------- budgets ---------- */

static int parse_budget(const char *item, const char *what, kx_budget *b) {
  const char *slash = strchr(item, '/');
  double num, den = 1.0;
  char head[64];
  if (strlen(item) >= sizeof head || strlen(item) >= sizeof b->text)
    return kx_fail(KX_EINVAL, "%s: '%s' is too long for a budget", what, item);
  snprintf(head, sizeof head, "%s", item);
  if (slash) head[slash - item] = '\0';
  if (kx_parse_double(head, what, &num) || (slash && kx_parse_double(slash + 1, what, &den)))
    return kx_fail(KX_EINVAL, "%s: '%s' is not a budget (a fraction of the pre-training steps: 0.25 or 1/4)", what,
                   item);
  if (den == 0) return kx_fail(KX_EINVAL, "%s: '%s' divides by zero", what, item);
  double v = num / den;
  if (!(v > 0) || !(v <= 100))
    return kx_fail(KX_EINVAL, "%s: budget '%s' must be > 0 and at most 100 (a fraction of the pre-training steps)",
                   what, item);
  b->value = v;
  snprintf(b->text, sizeof b->text, "%s", item);
  return 0;
}

int kx_budget_parse_list(const char *s, const char *what, kx_budget *out, size_t cap, size_t *n) {
  char **items = NULL;
  size_t count = 0;
  *n = 0;
  int rc = kx_split_list(s, what, &items, &count);
  if (!rc && count > cap) rc = kx_fail(KX_EINVAL, "%s: more than %zu budgets", what, cap);
  for (size_t i = 0; !rc && i < count; i++) {
    kx_budget b;
    if ((rc = parse_budget(items[i], what, &b))) break;
    size_t k = *n;
    for (size_t j = 0; j < *n; j++)
      if (out[j].value == b.value)
        rc = kx_fail(KX_EINVAL, "%s: budget '%s' is repeated ('%s' is the same budget)", what, b.text, out[j].text);
    if (rc) break;
    /* insertion: ascending */
    for (; k > 0 && out[k - 1].value > b.value; k--) out[k] = out[k - 1];
    out[k] = b;
    (*n)++;
  }
  kx_free_strings(items, count);
  return rc;
}

int kx_budget_steps(const kx_budget *b, size_t n, uint64_t pretrain_steps, uint64_t *steps) {
  for (size_t i = 0; i < n; i++) {
    kx_repro r = {.pretrain_steps = pretrain_steps};
    kx_repro_set_budget(&r, b[i].value);
    steps[i] = r.budget_steps;
    for (size_t j = 0; j < i; j++)
      if (steps[j] == steps[i])
        return kx_fail(KX_EINVAL,
                       "budgets %s and %s both give %llu fine-tuning step%s with a teacher of %llu pre-training "
                       "steps; give budgets further apart",
                       b[j].text, b[i].text, (unsigned long long)steps[i], steps[i] == 1 ? "" : "s",
                       (unsigned long long)pretrain_steps);
  }
  return 0;
}

/* ---------- variants ---------- */

static int set_transfer(kx_repro_variant *v, const char *value, const char *label) {
  (void)value;
  if (!kx_dec_transfer_supported(v->kind))
    return kx_fail(KX_EINVAL,
                   "'%s': %s has nothing trainable in its feature map, so attention transfer (+AT) has nothing to "
                   "train; +AT applies to %s",
                   label, v->kind->name, kx_dec_attn_transfer_names());
  v->transfer = 1;
  return 0;
}

/* "+w16": a sliding-window hybrid of 16 positions (checked against the
 * teacher's context once it is known). */
static int set_window(kx_repro_variant *v, const char *value, const char *label) {
  size_t w;
  if (kx_parse_size(value, "+w", 1, 8192, &w))
    return kx_fail(KX_EINVAL,
                   "'%s': +w%s: give the window's length in positions, a whole number from 1 to the teacher's "
                   "context (a window of 0 is the kind alone: leave +w out)",
                   label, value);
  v->window = w;
  return 0;
}

/* "+sm0.3": a layer hybrid keeping softmax in layers 0 and 3 (the list is
 * checked against the teacher's layers once it is known). */
static int set_softmax_layers(kx_repro_variant *v, const char *value, const char *label) {
  char list[64], what[128];
  snprintf(list, sizeof list, "%s", value);
  for (char *c = list; *c; c++)
    if (*c == '.') *c = ',';
  snprintf(what, sizeof what, "'%s': +sm", label);
  return kx_dec_parse_layers(list, what, 64, &v->softmax_layers);
}

/* Options a label may carry after its kind's name, in this order
 * ("hedgehog+w16+sm0.3+AT").  An option with a value runs to the next '+'.  An option
 * of kx_repro_variant (a hybrid of layers or a window, say) becomes a row
 * here; kx_budget_variant_parse then makes the label from the fields. */
static const struct {
  const char *prefix, *meaning;
  int takes_value;
  int (*apply)(kx_repro_variant *v, const char *value, const char *label);
} variant_options[] = {
    {"+w", "a sliding window of this many positions", 1, set_window},
    {"+sm", "softmax kept in these layers, dot-separated", 1, set_softmax_layers},
    {"+AT", "attention transfer first", 0, set_transfer},
};
#define N_VARIANT_OPTIONS (sizeof variant_options / sizeof variant_options[0])

/* The longest kind name that begins `label`. */
static const kx_attn_kind *kind_prefix(const char *label) {
  char **names = NULL;
  size_t n = 0, best = 0;
  const kx_attn_kind *k = NULL;
  if (kx_split_list(kx_dec_attn_names(), "attention kinds", &names, &n)) return NULL;
  for (size_t i = 0; i < n; i++) {
    const char *name = names[i] + strspn(names[i], " ");
    size_t len = strlen(name);
    if (len > best && !strncmp(label, name, len)) best = len, k = kx_dec_attn_find(name);
  }
  kx_free_strings(names, n);
  return k;
}

static void option_list(char *out, size_t cap) {
  int n = 0;
  for (size_t i = 0; i < N_VARIANT_OPTIONS && n >= 0 && (size_t)n < cap; i++)
    n += snprintf(out + n, cap - (size_t)n, "%s%s%s: %s", i ? "; " : "", variant_options[i].prefix,
                  variant_options[i].takes_value ? "<value>" : "", variant_options[i].meaning);
}

int kx_budget_variant_parse(const char *label, int scratch, kx_repro_variant *v) {
  const kx_attn_kind *k = kind_prefix(label);
  const char *rest = k ? label + strlen(k->name) : NULL;
  char known[512];
  option_list(known, sizeof known);
  memset(v, 0, sizeof *v);
  if (!k)
    return kx_fail(KX_EINVAL, "'%s' is not an attention kind (known: %s; a converted kind may add options: %s)",
                   label, kx_dec_attn_names(), known);
  v->kind = k;
  /* a DiJiang kind's form switches come first ("dijiang+softmax+noden+AT") */
  char switches[256] = "";
  for (int value; *rest == '+';) {
    size_t len = strcspn(rest + 1, "+");
    char token[64];
    snprintf(token, sizeof token, "%.*s", (int)(len < sizeof token ? len : sizeof token - 1), rest + 1);
    if (len >= sizeof token || kx_dijiang_token(token, &value) < 0) break;
    if (strlen(switches) + len + 2 >= sizeof switches) return kx_fail(KX_EINVAL, "'%s': too many switches", label);
    strcat(strcat(switches, switches[0] ? "," : ""), token);
    rest += 1 + len;
  }
  if (switches[0]) {
    kx_dec_config c;
    kx_dec_config_default(&c);
    snprintf(c.attn_kind, sizeof c.attn_kind, "%s", k->name);
    char what[360];
    snprintf(what, sizeof what, "'%s'", label);
    int rc = kx_dec_config_set_form(&c, switches, what);
    if (rc) return rc;
    v->dijiang_flips = c.dijiang_flips;
  }
  for (size_t i = 0; *rest && i < N_VARIANT_OPTIONS; i++) {
    size_t len = strlen(variant_options[i].prefix), vlen;
    if (strncmp(rest, variant_options[i].prefix, len)) continue;
    vlen = strcspn(rest + len, "+");
    if (!variant_options[i].takes_value != !vlen) continue; /* another option that begins alike */
    if (scratch)
      return kx_fail(KX_EINVAL, "'%s': a model trained from scratch takes no option (%s: %s)", label,
                     variant_options[i].prefix, variant_options[i].meaning);
    char value[64];
    if (vlen >= sizeof value) return kx_fail(KX_EINVAL, "'%s': the value of %s is too long", label, rest);
    memcpy(value, rest + len, vlen);
    value[vlen] = '\0';
    int rc = variant_options[i].apply(v, value, label);
    if (rc) return rc;
    rest += len + vlen;
  }
  if (*rest)
    return kx_fail(KX_EINVAL, "'%s': unknown option '%s' after the kind %s (known, in this order: %s%s)", label, rest,
                   k->name, kx_dijiang_preset_of(k->name) ? "the form switches of docs/dijiang-factors.md, e.g. "
                                                             "+softmax+noden; " : "", known);
  /* converted to softmax, the teacher is copied and fine-tuned like every
   * variant: the control that says how much the extra tokens alone buy */
  if (!scratch && !strcmp(k->name, "softmax") && (v->transfer || v->window || v->softmax_layers || v->dijiang_flips))
    return kx_fail(KX_EINVAL,
                   "'%s': softmax converted is the teacher itself, fine-tuned further (the control); it takes no "
                   "option",
                   label);
  if (scratch && v->dijiang_flips)
    return kx_fail(KX_EINVAL, "'%s': a model trained from scratch takes no option (the form switches)", label);
  uint64_t kept = v->softmax_layers;
  size_t window = v->window;
  uint32_t flips = v->dijiang_flips;
  kx_repro_variant_set(v, k, scratch, v->transfer);
  int rc = flips ? kx_repro_variant_form(v, flips) : 0;
  return !rc && (kept || window) ? kx_repro_variant_hybrid(v, window, kept) : rc;
}

static int add_variant(const char *label, int scratch, kx_repro_variant *v, size_t cap, size_t *n) {
  if (*n == cap) return kx_fail(KX_EINVAL, "more than %zu variants", cap);
  kx_repro_variant x;
  int rc = kx_budget_variant_parse(label, scratch, &x);
  if (rc) return kx_fail_context(rc, "%s: ", scratch ? "--scratch-kinds" : "--kinds");
  for (size_t i = 0; i < *n; i++)
    if (!strcmp(v[i].label, x.label))
      return kx_fail(KX_EINVAL, "%s: '%s' is listed twice", scratch ? "--scratch-kinds" : "--kinds", label);
  v[(*n)++] = x;
  return 0;
}

/* "all": every kind but the teacher's softmax, and +AT where it applies. */
static int add_all(kx_repro_variant *v, size_t cap, size_t *n) {
  char **names = NULL;
  size_t count = 0;
  int rc = kx_split_list(kx_dec_attn_names(), "attention kinds", &names, &count);
  for (size_t i = 0; !rc && i < count; i++) {
    const char *name = names[i] + strspn(names[i], " ");
    const kx_attn_kind *k = kx_dec_attn_find(name);
    if (!k || !strcmp(name, "softmax")) continue;
    rc = add_variant(name, 0, v, cap, n);
    if (!rc && kx_dec_transfer_supported(k)) {
      char at[96];
      snprintf(at, sizeof at, "%s+AT", name);
      rc = add_variant(at, 0, v, cap, n);
    }
  }
  kx_free_strings(names, count);
  return rc;
}

int kx_budget_variants(const char *kinds, const char *scratch_kinds, kx_repro_variant *v, size_t cap, size_t *n) {
  *n = 0;
  char **items = NULL;
  size_t count = 0;
  int rc = 0;
  if (!strcmp(kinds, "all")) rc = add_all(v, cap, n);
  else rc = kx_split_list(kinds, "--kinds", &items, &count);
  for (size_t i = 0; !rc && i < count; i++) rc = add_variant(items[i], 0, v, cap, n);
  kx_free_strings(items, count);
  items = NULL, count = 0;
  if (!rc && scratch_kinds) rc = kx_split_list(scratch_kinds, "--scratch-kinds", &items, &count);
  for (size_t i = 0; !rc && i < count; i++) rc = add_variant(items[i], 1, v, cap, n);
  kx_free_strings(items, count);
  if (!rc && (*n == 0 || v[0].scratch)) rc = kx_fail(KX_EINVAL, "--kinds: no attention kind to convert to");
  return rc;
}

/* ---------- the fit ---------- */

/* Tokens are scaled by their geometric mean t0 so that the three
 * parameters (c, A, alpha) of gap = c + A u^-alpha, u = tokens / t0, are of
 * like size; a = A t0^alpha. */
typedef struct {
  const double *u, *y;
  size_t n;
} fit_points;

static int power_f(const gsl_vector *p, void *data, gsl_vector *r) {
  const fit_points *d = data;
  double c = gsl_vector_get(p, 0), A = gsl_vector_get(p, 1), al = gsl_vector_get(p, 2);
  for (size_t i = 0; i < d->n; i++) gsl_vector_set(r, i, c + A * pow(d->u[i], -al) - d->y[i]);
  return GSL_SUCCESS;
}

static int power_df(const gsl_vector *p, void *data, gsl_matrix *J) {
  const fit_points *d = data;
  double A = gsl_vector_get(p, 1), al = gsl_vector_get(p, 2);
  for (size_t i = 0; i < d->n; i++) {
    double b = pow(d->u[i], -al);
    gsl_matrix_set(J, i, 0, 1.0);
    gsl_matrix_set(J, i, 1, b);
    gsl_matrix_set(J, i, 2, -A * b * log(d->u[i]));
  }
  return GSL_SUCCESS;
}

/* For a fixed alpha the model is linear in (c, A): their least squares
 * and its residual sum of squares. */
static double linear_part(const fit_points *d, double al, double *c, double *A) {
  double s1 = 0, sb = 0, sbb = 0, sy = 0, sby = 0;
  for (size_t i = 0; i < d->n; i++) {
    double b = pow(d->u[i], -al);
    s1 += 1, sb += b, sbb += b * b, sy += d->y[i], sby += b * d->y[i];
  }
  double det = s1 * sbb - sb * sb;
  if (!(fabs(det) > 0)) return INFINITY;
  *c = (sbb * sy - sb * sby) / det;
  *A = (s1 * sby - sb * sy) / det;
  double rss = 0;
  for (size_t i = 0; i < d->n; i++) {
    double e = *c + *A * pow(d->u[i], -al) - d->y[i];
    rss += e * e;
  }
  return rss;
}

static int fit_na(kx_budget_fit *f, const char *why) {
  f->ok = 0;
  f->why = why;
  f->c = f->a = f->alpha = f->c_hw = f->alpha_hw = NAN;
  return 0;
}

int kx_budget_fit_power(const double *tokens, const double *gap, size_t n, kx_budget_fit *f) {
  memset(f, 0, sizeof *f);
  f->n = n;
  fit_na(f, "fewer than 3 budgets: 3 parameters");
  double logsum = 0;
  for (size_t i = 0; i < n; i++) {
    size_t j = 0;
    while (j < i && tokens[j] != tokens[i]) j++;
    f->distinct += j == i;
    logsum += log(tokens[i]);
    if (!(tokens[i] > 0) || !isfinite(gap[i])) return fit_na(f, "a point without a finite gap or tokens");
  }
  if (f->distinct < 3) return 0;
  double t0 = exp(logsum / (double)n);
  double *u = kx_malloc(n * sizeof *u);
  if (!u) return KX_ENOMEM;
  for (size_t i = 0; i < n; i++) u[i] = tokens[i] / t0;
  fit_points d = {u, gap, n};
  /* start: the best of a grid of alpha from 0.01 to 5 (log-spaced) */
  double p0[3] = {0, 0, 0}, best = INFINITY;
  for (int k = 0; k <= 200; k++) {
    double al = 0.01 * pow(500.0, k / 200.0), c = 0, A = 0, rss = linear_part(&d, al, &c, &A);
    if (rss < best) best = rss, p0[0] = c, p0[1] = A, p0[2] = al;
  }
  gsl_multifit_nlinear_parameters params = gsl_multifit_nlinear_default_parameters();
  gsl_multifit_nlinear_workspace *w = gsl_multifit_nlinear_alloc(gsl_multifit_nlinear_trust, &params, n, 3);
  gsl_matrix *covar = gsl_matrix_alloc(3, 3);
  if (!w || !covar) {
    if (w) gsl_multifit_nlinear_free(w);
    if (covar) gsl_matrix_free(covar);
    free(u);
    return kx_fail(KX_ENOMEM, "out of memory for the fit");
  }
  gsl_multifit_nlinear_fdf fdf = {.f = power_f, .df = power_df, .fvv = NULL, .n = n, .p = 3, .params = &d};
  gsl_vector_view x0 = gsl_vector_view_array(p0, 3);
  int info = 0, st = gsl_multifit_nlinear_init(&x0.vector, &fdf, w);
  /* Levenberg-Marquardt never raises the cost, so its end point is used
   * whether it stopped on a tolerance or on the iteration limit (a flat
   * valley in alpha then shows as a wide interval) */
  if (!st) gsl_multifit_nlinear_driver(500, 1e-12, 1e-12, 0.0, NULL, NULL, &info, w);
  const gsl_vector *x = gsl_multifit_nlinear_position(w);
  const gsl_vector *r = gsl_multifit_nlinear_residual(w);
  double c = gsl_vector_get(x, 0), A = gsl_vector_get(x, 1), al = gsl_vector_get(x, 2), rss = 0, rcond = 0;
  for (size_t i = 0; i < n; i++) rss += gsl_vector_get(r, i) * gsl_vector_get(r, i);
  if (st || !isfinite(c) || !isfinite(A) || !isfinite(al) || !isfinite(rss)) {
    fit_na(f, "the fit did not converge");
  } else if (!(al > 0) || !(A > 0)) {
    fit_na(f, "no decreasing power law fits");
  } else if (gsl_multifit_nlinear_rcond(&rcond, w) || !(rcond > 1e-12)) {
    /* alpha -> 0 with A -> inf and c -> -inf: the limit of c + A u^-alpha is
     * a straight line in log tokens, which the points follow (or bend below) */
    fit_na(f, al < 1e-3 ? "the gap does not level off (best fit: alpha -> 0, a straight line in log tokens)"
                        : "the points do not determine c, a and alpha");
  } else {
    f->ok = 1;
    f->why = NULL;
    f->c = c, f->alpha = al, f->a = A * pow(t0, al), f->rss = rss;
    f->dof = n - 3;
    gsl_multifit_nlinear_covar(gsl_multifit_nlinear_jac(w), 0.0, covar);
    if (f->dof > 0) {
      double s2 = rss / (double)f->dof, tq = gsl_cdf_tdist_Pinv(0.975, (double)f->dof);
      f->c_hw = tq * sqrt(s2 * gsl_matrix_get(covar, 0, 0));
      f->alpha_hw = tq * sqrt(s2 * gsl_matrix_get(covar, 2, 2));
      f->levels_off = f->alpha - f->alpha_hw > 0;
    }
  }
  gsl_matrix_free(covar);
  gsl_multifit_nlinear_free(w);
  free(u);
  return 0;
}

/* ---------- tokens to a threshold ---------- */

int kx_budget_tokens_within(const double *tokens, const double *gap, size_t n, double threshold, double *at) {
  for (size_t i = 0; i < n; i++) {
    if (!(gap[i] <= threshold)) continue;
    if (i == 0) {
      *at = tokens[0];
      return KX_WITHIN_SMALLEST;
    }
    double f = (gap[i - 1] - threshold) / (gap[i - 1] - gap[i]);
    *at = exp(log(tokens[i - 1]) + f * (log(tokens[i]) - log(tokens[i - 1])));
    return KX_WITHIN_INTERPOLATED;
  }
  *at = INFINITY;
  return KX_WITHIN_NOT;
}

/* ---------- the output folder ---------- */

int kx_budget_check_outdir(const char *dir) {
  if (!dir || !*dir) return kx_fail(KX_EINVAL, "--outdir: empty directory name");
  if (strchr(dir, '\'')) return kx_fail(KX_EINVAL, "--outdir: '%s' has a quote, which gnuplot cannot take", dir);
  if (strlen(dir) > PATH_CAP - 256) return kx_fail(KX_EINVAL, "--outdir: '%s' is too long", dir);
  char path[PATH_CAP];
  snprintf(path, sizeof path, "%s", dir);
  for (;;) {
    struct stat st;
    if (stat(path, &st) == 0) {
      if (!S_ISDIR(st.st_mode))
        return strcmp(path, dir) ? kx_fail(KX_EINVAL, "--outdir: '%s' is not a directory, so '%s' cannot be made", path, dir)
                                 : kx_fail(KX_EINVAL, "--outdir: '%s' is not a directory", dir);
      if (access(path, W_OK | X_OK))
        return kx_fail(KX_EINVAL, "--outdir: no permission to create files in '%s'", path);
      return 0;
    }
    /* ENOTDIR: a file on the way, reported when the walk up reaches it */
    if (errno != ENOENT && errno != ENOTDIR) return kx_fail(KX_EINVAL, "--outdir: '%s': %s", path, strerror(errno));
    char *slash = strrchr(path, '/');
    while (slash && slash > path && slash[1] == '\0') *slash = '\0', slash = strrchr(path, '/');
    if (!slash) snprintf(path, sizeof path, ".");
    else if (slash == path) path[1] = '\0';
    else *slash = '\0';
  }
}

/* ---------- the study ---------- */

uint64_t kx_budget_planned_pretrain_steps(int quick) { return kx_repro_table2_pretrain_steps(quick); }

/* One variant at one budget: its seeds' gaps and their summary. */
typedef struct {
  double *gap; /* one per seed; NaN for a run that diverged */
  size_t n;
  size_t diverged; /* seeds whose run diverged: a result, left out of mean, se and fits */
  double mean, se; /* over the other seeds; NaN if every seed diverged */
} cell_t;

typedef struct {
  kx_budget_study *s;
  kx_repro rp;
  uint64_t steps[KX_BUDGET_MAX];
  double tokens[KX_BUDGET_MAX];
  double teacher_loss;
  cell_t *cells; /* [variant][budget] */
  kx_budget_fit *fits;
  kx_budget_fit *fits_beyond; /* the same fit of the gap beyond the continued teacher (with the control) */
} study;

static cell_t *cell_at(study *st, size_t v, size_t b) { return &st->cells[v * st->s->n_budgets + b]; }

static size_t seeds_at(const kx_budget_study *s, const kx_repro_variant *v, size_t b) {
  return v->scratch ? s->scratch_seeds : s->seeds[b];
}

static int run_cell(study *st, size_t v, size_t b) {
  kx_budget_study *s = st->s;
  const kx_repro_variant *var = &s->v[v];
  cell_t *c = cell_at(st, v, b);
  kx_repro_result res[KX_BUDGET_MAX_SEEDS];
  c->n = seeds_at(s, var, b);
  for (uint64_t k = 0; k < c->n; k++) {
    int fresh, rc;
    kx_repro_job_begin(s->pg, (double)(st->steps[b] + RUN_OVERHEAD_STEPS));
    if ((rc = kx_repro_run(&st->rp, var, k, &res[k], &fresh)))
      return kx_fail_context(rc, "%s, budget %s, seed %llu: ", var->label, s->budgets[b].text,
                             (unsigned long long)k);
    kx_repro_job_end(s->pg, fresh);
    c->gap[k] = res[k].f[KX_R_LOSS] - st->teacher_loss;
  }
  /* a diverged run (keep_diverged) has a NaN loss: counted, not averaged */
  c->diverged = c->n - kx_repro_summarise(res, c->n, KX_R_LOSS, &c->mean, &c->se);
  c->mean -= st->teacher_loss;
  return 0;
}

/* softmax "converted": the teacher copied and fine-tuned like the others */
static int is_control(const kx_repro_variant *v) { return !v->scratch && !strcmp(v->kind->name, "softmax"); }

static const kx_repro_variant *control_of(const kx_budget_study *s, size_t *at) {
  for (size_t v = 0; v < s->nv; v++)
    if (is_control(&s->v[v])) return *at = v, &s->v[v];
  return NULL;
}

static int fit_variant(study *st, size_t v, kx_budget_fit *f) {
  size_t n = 0, nb = st->s->n_budgets;
  double x[KX_BUDGET_MAX * KX_BUDGET_MAX_SEEDS], y[KX_BUDGET_MAX * KX_BUDGET_MAX_SEEDS];
  for (size_t b = 0; b < nb; b++) {
    const cell_t *c = cell_at(st, v, b);
    for (size_t k = 0; k < c->n; k++)
      if (isfinite(c->gap[k])) x[n] = st->tokens[b], y[n++] = c->gap[k];
  }
  return kx_budget_fit_power(x, y, n, f);
}

/* The fit of variant v's gap beyond the continued teacher: every seed's
 * loss minus the control's with the same seed (the same batches) at every
 * budget, so c is what the attention itself costs once fine-tuning has
 * done what it can (the control's own gain from the extra tokens taken
 * out).  Not fitted (n/a) without a control, for the control itself. */
static int fit_beyond(study *st, size_t v, kx_budget_fit *f) {
  size_t n = 0, nb = st->s->n_budgets, ci;
  double x[KX_BUDGET_MAX * KX_BUDGET_MAX_SEEDS], y[KX_BUDGET_MAX * KX_BUDGET_MAX_SEEDS];
  if (!control_of(st->s, &ci) || ci == v) return kx_budget_fit_power(NULL, NULL, 0, f);
  for (size_t b = 0; b < nb; b++) {
    const cell_t *c = cell_at(st, v, b), *k = cell_at(st, ci, b);
    for (size_t i = 0; i < c->n && i < k->n; i++)
      if (isfinite(c->gap[i] - k->gap[i])) x[n] = st->tokens[b], y[n++] = c->gap[i] - k->gap[i];
  }
  return kx_budget_fit_power(x, y, n, f);
}


static void init_label(const kx_repro_variant *v, char *model, size_t cap, const char **init) {
  /* the converted form's label ("hedgehog+AT"); scratch rows say so in init */
  snprintf(model, cap, "%s", v->scratch ? v->kind->name : v->label);
  *init = v->scratch ? "scratch" : is_control(v) ? "continued" : "converted";
}

/* Variant v's loss minus the control's at budget b, seed by seed over the
 * seeds both have (the same seed: the same batches), mean and standard
 * error of those differences; NaN without a control or a common seed. */
static void beyond_control(study *st, size_t v, size_t b, double *mean, double *se) {
  size_t ci;
  *mean = *se = NAN;
  if (!control_of(st->s, &ci) || ci == v) return;
  const cell_t *c = cell_at(st, v, b), *k = cell_at(st, ci, b);
  double d[KX_BUDGET_MAX_SEEDS], m = 0.0, ss = 0.0;
  size_t n = 0;
  for (size_t i = 0; i < c->n && i < k->n; i++) /* the seeds where neither run diverged */
    if (isfinite(c->gap[i] - k->gap[i])) d[n] = c->gap[i] - k->gap[i], m += d[n++];
  if (n == 0) return;
  m /= (double)n;
  for (size_t i = 0; i < n; i++) ss += (d[i] - m) * (d[i] - m);
  *mean = m;
  *se = n > 1 ? sqrt(ss / (double)(n - 1) / (double)n) : NAN;
}

/* The variants' order at budget b: converted rows by mean gap. */
static size_t order_at(study *st, size_t b, size_t *idx) {
  size_t n = 0;
  for (size_t v = 0; v < st->s->nv; v++) {
    if (st->s->v[v].scratch || is_control(&st->s->v[v])) continue;
    double m = cell_at(st, v, b)->mean;
    if (isnan(m)) continue; /* every seed diverged: no rank */
    size_t k = n++;
    for (; k > 0 && cell_at(st, idx[k - 1], b)->mean > m; k--) idx[k] = idx[k - 1];
    idx[k] = v;
  }
  return n;
}

static void setup_text(study *st, char *out, size_t cap) {
  const kx_dec_config *c = &st->rp.teacher.cfg;
  kx_budget_study *s = st->s;
  int n = snprintf(out, cap,
                   "teacher: %zu layers, %zu heads, width %zu, context %zu, %llu pre-training steps of batch %llu "
                   "(%llu tokens a step), validation loss %.4f nats on %zu windows; budgets (steps, seeds):",
                   c->layers, c->heads, c->width, c->ctx, (unsigned long long)st->rp.pretrain_steps,
                   (unsigned long long)st->rp.batch, (unsigned long long)(st->rp.batch * c->ctx), st->teacher_loss,
                   st->rp.eval_windows);
  for (size_t b = 0; b < s->n_budgets && n > 0 && (size_t)n < cap; b++)
    n += snprintf(out + n, cap - (size_t)n, "%s %s (%llu, %zu)", b ? "," : "", s->budgets[b].text,
                  (unsigned long long)st->steps[b], s->seeds[b]);
  if (n > 0 && (size_t)n < cap) n += snprintf(out + n, cap - (size_t)n, "; rows from scratch: %zu seed%s", s->scratch_seeds,
                                              s->scratch_seeds == 1 ? "" : "s");
  if (s->ft_lr > 0 && n > 0 && (size_t)n < cap)
    snprintf(out + n, cap - (size_t)n, "; fine-tuning peak learning rate %g (--lr)", s->ft_lr);
}

/* The variants whose fit (fits[v]) has no plateau to report, and why; the
 * control has no fit beyond itself. */
static void no_plateau(study *st, const kx_budget_fit *fits, const char *title, kx_strbuf *fn) {
  kx_budget_study *s = st->s;
  int any = 0;
  for (size_t v = 0; v < s->nv; v++) {
    const kx_budget_fit *f = &fits[v];
    int beyond = fits == st->fits_beyond;
    /* beyond the continued teacher a floor below 0 would make the new
     * attention better than softmax's own: the curve is still falling */
    int below = beyond && f->ok && f->levels_off && f->c < 0;
    if ((f->levels_off && !below) || (beyond && is_control(&s->v[v]))) continue;
    char model[sizeof s->v[v].label];
    const char *init;
    init_label(&s->v[v], model, sizeof model, &init);
    kx_sb_add(fn, "%s %s (%s): %s", any ? ";" : title, model, init,
              !f->ok        ? f->why
              : below       ? "c < 0, below the continued teacher: no floor is seen within these budgets, the gap "
                              "is still falling"
              : f->dof == 0 ? "as many points as parameters, no interval"
                            : "α's interval reaches 0, the gap is not seen to level off, so c is an extrapolation");
    any = 1;
  }
  if (any) kx_sb_add(fn, ".\n");
}

/* The runs that diverged, each with its stage and message. */
static void diverged_runs(study *st, kx_strbuf *fn) {
  kx_budget_study *s = st->s;
  const uint64_t budget_steps = st->rp.budget_steps; /* moved to each budget's run folders, then back */
  int any = 0;
  for (size_t v = 0; v < s->nv; v++)
    for (size_t b = 0; b < s->n_budgets; b++) {
      const cell_t *c = cell_at(st, v, b);
      for (size_t k = 0; k < c->n; k++) {
        if (isfinite(c->gap[k])) continue;
        char why[512];
        kx_repro_set_budget(&st->rp, s->budgets[b].value); /* kx_repro_diverged reads its run folder */
        kx_repro_diverged(&st->rp, &s->v[v], k, why, sizeof why);
        kx_sb_add(fn, "%s%s at %s, seed %zu: %s", any++ ? "; " : "\n\nDiverged runs (results, left out of the means, "
                                                             "standard errors, fits and ranks): ",
                  s->v[v].label, s->budgets[b].text, k, why[0] ? why : "no finite loss");
      }
    }
  st->rp.budget_steps = budget_steps;
  if (any) kx_sb_add(fn, ".");
}

static void footnote(study *st, kx_strbuf *fn) {
  kx_budget_study *s = st->s;
  kx_sb_add(fn,
         "gap: validation loss minus the teacher's (nats/%s), mean ± standard error over seeds; tokens = steps × "
         "batch × context of the budget (a +AT variant spends the first quarter of its steps on attention transfer "
         "at half the batch). Tokens to gap ≤ x: where the mean gap first comes within x nats of the teacher, "
         "linear in log tokens between the two budgets around the crossing; ≤ T: already within at the smallest "
         "budget. Fit: gap ≈ c + a·tokens^(−α) by least squares over every seed's point (GSL multifit_nlinear, "
         "Levenberg-Marquardt from the best of a grid over α); c (the gap fine-tuning would not close) and α ± the "
         "half-width of the 95 %% interval from the fit's covariance (residual variance, Student t with n − 3 "
         "degrees of freedom; n/a without a spare point); n/a: no fit (the reasons are listed below). "
         "Budget 1: a converted model has had twice the teacher's training compute (its pre-training, then as many "
         "steps of fine-tuning); budget b: 1 + b times. Rows from scratch: random initialisation, the same budgets, "
         "pre-training's learning rate.",
         kx_dec_unit(&st->rp.vocab));
  size_t ci;
  if (control_of(s, &ci))
    kx_sb_add(fn,
           " softmax continued: the control, the teacher itself fine-tuned with the same schedule, budgets and seeds "
           "(the same batches), so its gap is what the extra tokens buy with no change of attention. Beyond the "
           "continued teacher: a variant's validation loss minus the control's at the same budget, seed by seed, "
           "mean ± standard error of the differences: the cost of the variant's attention once both have had the "
           "same training. c and α beyond the continued teacher: the same fit to those differences, every seed's "
           "point (c: what the attention would still cost after unlimited fine-tuning, the extra tokens' own gain "
           "taken out).");
  kx_sb_add(fn, "\n\nRank order at each budget (converted variants, smallest mean gap first; ≈: the two means differ by "
                "less than twice their combined standard error):\n\n");
  size_t idx[KX_BUDGET_MAX_VARIANTS];
  for (size_t b = 0; b < s->n_budgets; b++) {
    size_t n = order_at(st, b, idx);
    kx_sb_add(fn, "- %s (%llu steps, %.0f tokens):", s->budgets[b].text, (unsigned long long)st->steps[b],
           st->tokens[b]);
    for (size_t i = 0; i < n; i++) {
      const cell_t *c = cell_at(st, idx[i], b);
      const char *sep = " ";
      if (i) {
        const cell_t *p = cell_at(st, idx[i - 1], b);
        double comb = sqrt(c->se * c->se + p->se * p->se);
        sep = isfinite(comb) && c->mean - p->mean < 2 * comb ? " ≈ " : " < ";
      }
      kx_sb_add(fn, "%s%s %.4f", sep, s->v[idx[i]].label, c->mean);
    }
    size_t ci;
    if (control_of(s, &ci)) kx_sb_add(fn, "; the teacher continued: %.4f", cell_at(st, ci, b)->mean);
    kx_sb_add(fn, "\n");
  }
  no_plateau(st, st->fits, "\nFits without a plateau to report:", fn);
  if (control_of(s, &ci)) no_plateau(st, st->fits_beyond, "\nFits beyond the continued teacher without a plateau:", fn);
  diverged_runs(st, fn);
}

/* Column j of the gap at budget b, then the thresholds, then the fit. */
static int write_tables(study *st) {
  kx_budget_study *s = st->s;
  size_t nb = s->n_budgets, nt = sizeof thresholds / sizeof thresholds[0], ci;
  size_t nx = control_of(s, &ci) ? nb : 0; /* the columns beyond the continued teacher */
  size_t o = nb + nx, nfx = nx ? 2 : 0, ncols = o + nt + 3 + nfx; /* nfx: the fit beyond the continued teacher */
  char heads[KX_TABLE_MAX_COLS][3][64];
  kx_table_column cols[KX_TABLE_MAX_COLS];
  if (ncols > KX_TABLE_MAX_COLS) return kx_fail(KX_EINVAL, "too many budgets for one table");
  memset(cols, 0, sizeof cols);
  for (size_t b = 0; b < nb; b++) {
    snprintf(heads[b][0], 64, "gap at %s (%llu steps)", s->budgets[b].text, (unsigned long long)st->steps[b]);
    snprintf(heads[b][1], 64, "gap %s", s->budgets[b].text);
    snprintf(heads[b][2], 64, "gap_b%llu", (unsigned long long)st->steps[b]);
    cols[b] = (kx_table_column){heads[b][0], heads[b][1], heads[b][2], 4, 0};
  }
  for (size_t b = 0; b < nx; b++) {
    size_t j = nb + b;
    snprintf(heads[j][0], 64, "beyond the continued teacher at %s", s->budgets[b].text);
    snprintf(heads[j][1], 64, "$-$cont. %s", s->budgets[b].text);
    snprintf(heads[j][2], 64, "beyond_continued_b%llu", (unsigned long long)st->steps[b]);
    cols[j] = (kx_table_column){heads[j][0], heads[j][1], heads[j][2], 4, 0};
  }
  for (size_t t = 0; t < nt; t++) {
    size_t j = o + t;
    snprintf(heads[j][0], 64, "tokens to gap ≤ %g", thresholds[t]);
    snprintf(heads[j][1], 64, "tokens to $\\le %g$", thresholds[t]);
    snprintf(heads[j][2], 64, "tokens_within_%g", thresholds[t]);
    cols[j] = (kx_table_column){heads[j][0], heads[j][1], heads[j][2], 0, 1};
  }
  cols[o + nt] = (kx_table_column){"c (± 95 % interval)", "$c$", "c", 3, 0};
  cols[o + nt + 1] = (kx_table_column){"α (± 95 % interval)", "$\\alpha$", "alpha", 3, 0};
  const char *err_csv[KX_TABLE_MAX_COLS] = {0};
  err_csv[o + nt] = err_csv[o + nt + 1] = "_ci95";
  cols[o + nt + 2] = (kx_table_column){"a", "$a$", "a", 0, 1};
  if (nfx) {
    cols[o + nt + 3] = (kx_table_column){"c beyond the continued teacher (± 95 %)", "$c$ $-$cont.", "c_beyond", 3, 0};
    cols[o + nt + 4] = (kx_table_column){"α beyond the continued teacher (± 95 %)", "$\\alpha$ $-$cont.",
                                         "alpha_beyond", 3, 0};
    err_csv[o + nt + 3] = err_csv[o + nt + 4] = "_ci95";
  }
  kx_table_row *rows = kx_calloc(s->nv, sizeof *rows);
  char (*text)[KX_TABLE_MAX_COLS][64] = kx_calloc(s->nv, sizeof *text);
  const char *(*cells)[KX_TABLE_MAX_COLS] = kx_calloc(s->nv, sizeof *cells);
  char (*model)[sizeof s->v[0].label] = kx_calloc(s->nv, sizeof *model);
  kx_strbuf fn = {malloc(4096), 0, 4096};
  int rc = rows && text && cells && model && fn.p ? 0 : KX_ENOMEM;
  for (size_t v = 0; !rc && v < s->nv; v++) {
    kx_table_row *r = &rows[v];
    const char *init;
    init_label(&s->v[v], model[v], sizeof model[v], &init);
    r->key[0] = model[v], r->key[1] = init;
    r->rule_after = v + 1 < s->nv && !s->v[v].scratch && s->v[v + 1].scratch;
    double mean[KX_BUDGET_MAX];
    for (size_t b = 0; b < nb; b++) {
      const cell_t *c = cell_at(st, v, b);
      r->mean[b] = mean[b] = c->mean, r->se[b] = c->se;
      r->n = r->n > c->n ? r->n : c->n;
      if (c->diverged && c->diverged == c->n) cells[v][b] = "diverged";
    }
    for (size_t b = 0; b < nx; b++) beyond_control(st, v, b, &r->mean[nb + b], &r->se[nb + b]);
    for (size_t t = 0; t < nt; t++) {
      size_t j = o + t;
      int how = kx_budget_tokens_within(st->tokens, mean, nb, thresholds[t], &r->mean[j]);
      if (how == KX_WITHIN_SMALLEST) snprintf(text[v][j], 64, "≤ %.0f", r->mean[j]);
      else if (how == KX_WITHIN_NOT) snprintf(text[v][j], 64, "not within the largest budget");
      else snprintf(text[v][j], 64, "%.0f", r->mean[j]);
      cells[v][j] = text[v][j];
    }
    const kx_budget_fit *f = &st->fits[v];
    r->mean[o + nt] = f->c, r->se[o + nt] = f->c_hw;
    r->mean[o + nt + 1] = f->alpha, r->se[o + nt + 1] = f->alpha_hw;
    r->mean[o + nt + 2] = f->a;
    if (f->ok) snprintf(text[v][o + nt + 2], 64, "%.3g", f->a), cells[v][o + nt + 2] = text[v][o + nt + 2];
    if (nfx) {
      const kx_budget_fit *g = &st->fits_beyond[v];
      r->mean[o + nt + 3] = g->c, r->se[o + nt + 3] = g->c_hw;
      r->mean[o + nt + 4] = g->alpha, r->se[o + nt + 4] = g->alpha_hw;
    }
  }
  char setup[2048], stem[PATH_CAP];
  if (!rc) {
    setup_text(st, setup, sizeof setup);
    footnote(st, &fn);
    if (!fn.p) rc = KX_ENOMEM;
  }
  if (!rc) {
    snprintf(stem, sizeof stem, "%s/budget", s->outdir);
    char caption[512];
    snprintf(caption, sizeof caption,
             "Gap to the softmax teacher (validation loss, nats/%s) after fine-tuning a converted model at several "
             "budgets, mean $\\pm$ standard error over seeds; tokens to come within 0.1 and 0.25 nats; fit $c + "
             "a\\,\\mathrm{tokens}^{-\\alpha}$ with 95\\%% intervals. At budget 1 a converted model has had "
             "twice the teacher's training compute.",
             kx_dec_unit(&st->rp.vocab));
    kx_table t = {.stem = stem, .n_keys = 2, .key_md = {"model", "init"}, .key_csv = {"model", "init"},
                  .cols = cols, .n_cols = ncols, .title = "Budget study", .command = "kapprox reproduce budget",
                  .setup = setup, .md_footnote = fn.p, .err_csv = err_csv, .text = cells,
                  .tex_caption = caption};
    rc = kx_table_write(&t, rows, s->nv);
  }
  /* the ranks, one column a budget (a variant whose every seed diverged there: n/a) */
  for (size_t b = 0; !rc && b < nb; b++) {
    size_t idx[KX_BUDGET_MAX_VARIANTS];
    const size_t nr = order_at(st, b, idx);
    for (size_t i = 0; i < nr; i++) {
      kx_table_row *r = &rows[idx[i]];
      r->mean[b] = (double)(i + 1), r->se[b] = NAN;
    }
    snprintf(heads[b][0], 64, "rank at %s (%llu steps)", s->budgets[b].text, (unsigned long long)st->steps[b]);
    snprintf(heads[b][1], 64, "rank %s", s->budgets[b].text);
    snprintf(heads[b][2], 64, "rank_b%llu", (unsigned long long)st->steps[b]);
    cols[b] = (kx_table_column){heads[b][0], heads[b][1], heads[b][2], 0, 1};
  }
  size_t k = 0;
  if (!rc) { /* the ranked rows, in the study's order (rows from scratch and the control have no rank) */
    for (size_t v = 0; v < s->nv; v++)
      if (!s->v[v].scratch && !is_control(&s->v[v])) rows[k] = rows[v], rows[k++].rule_after = 0;
    snprintf(stem, sizeof stem, "%s/budget_ranks", s->outdir);
    kx_table t = {.stem = stem, .n_keys = 2, .key_md = {"model", "init"}, .key_csv = {"model", "init"},
                  .cols = cols, .n_cols = nb, .title = "Budget study, rank order", .command = "kapprox reproduce budget",
                  .setup = setup,
                  .md_footnote = "rank 1: the smallest mean gap to the teacher among the converted variants at that "
                                 "budget (budget.md lists the gaps and which differences are within the seeds' spread).",
                  .tex_caption = "Rank of each converted variant by its mean gap to the teacher at each budget (1: "
                                 "closest)."};
    rc = kx_table_write(&t, rows, k);
  }
  free(fn.p);
  free(rows);
  free(text);
  free(cells);
  free(model);
  return rc;
}

static int figure(study *st) {
  kx_budget_study *s = st->s;
  char datadir[PATH_CAP], path[PATH_CAP + 64], scripts[PATH_CAP];
  snprintf(datadir, sizeof datadir, "%s/figdata", s->outdir);
  int rc = kx_mkdir_p(datadir);
  if (rc) return rc;
  for (size_t v = 0; v < s->nv && !rc; v++) {
    kx_atomic_file f;
    snprintf(path, sizeof path, "%s/budget-%zu.txt", datadir, v + 1);
    if ((rc = kx_atomic_open(&f, path))) break;
    fprintf(f.fp, "# tokens, mean gap to the teacher (nats), its standard error (0: one seed)\n");
    for (size_t b = 0; b < s->n_budgets; b++) {
      const cell_t *c = cell_at(st, v, b);
      if (isfinite(c->mean)) /* every seed diverged: no point */
        fprintf(f.fp, "%.0f %.9g %.9g\n", st->tokens[b], c->mean, isfinite(c->se) ? c->se : 0.0);
    }
    rc = kx_atomic_commit(&f);
  }
  kx_atomic_file f;
  snprintf(path, sizeof path, "%s/budget.vars", datadir);
  if (rc || (rc = kx_atomic_open(&f, path))) return rc;
  fprintf(f.fp,
          "# written by kapprox reproduce budget; read by budget_gap.gp\nn = %zu\ntmin = %.0f\ntmax = %.0f\n"
          "unit = \"%s\"\n",
          s->nv, st->tokens[0], st->tokens[s->n_budgets - 1], kx_dec_unit(&st->rp.vocab));
  fprintf(f.fp, "array label[%zu]\narray scratch[%zu]\narray fit_c[%zu]\narray fit_a[%zu]\narray fit_alpha[%zu]\n",
          s->nv, s->nv, s->nv, s->nv, s->nv);
  for (size_t v = 0; v < s->nv; v++) {
    const kx_budget_fit *fit = &st->fits[v];
    fprintf(f.fp, "label[%zu] = \"%s%s\"\nscratch[%zu] = %d\n", v + 1, s->v[v].scratch ? s->v[v].kind->name : s->v[v].label,
            s->v[v].scratch ? " (scratch)" : is_control(&s->v[v]) ? " (teacher continued)" : "", v + 1, s->v[v].scratch);
    /* NaN (gnuplot's): no fitted curve for the variant */
    if (fit->ok)
      fprintf(f.fp, "fit_c[%zu] = %.9g\nfit_a[%zu] = %.9g\nfit_alpha[%zu] = %.9g\n", v + 1, fit->c, v + 1, fit->a,
              v + 1, fit->alpha);
    else
      fprintf(f.fp, "fit_c[%zu] = NaN\nfit_a[%zu] = NaN\nfit_alpha[%zu] = NaN\n", v + 1, v + 1, v + 1);
  }
  if ((rc = kx_atomic_commit(&f)) || !s->figures) return rc;
  if ((rc = kx_plot_scripts(NULL, "budget_gap.gp", scripts, sizeof scripts))) return rc;
  snprintf(path, sizeof path, "%s/budget_gap", s->outdir);
  return kx_plot_run(scripts, "budget_gap.gp", datadir, path);
}

/* Every run, budget by budget (the plan pass's order too). */
static int run_cells(study *st) {
  kx_budget_study *s = st->s;
  int rc = 0;
  for (size_t b = 0; !rc && b < s->n_budgets; b++) {
    kx_repro_set_budget(&st->rp, s->budgets[b].value);
    for (size_t v = 0; !rc && v < s->nv; v++) rc = run_cell(st, v, b);
  }
  return rc;
}

static int run_study(study *st) {
  kx_budget_study *s = st->s;
  kx_repro *rp = &st->rp;
  kx_repro_shard *sh = rp->shard;
  kx_repro_shape shape;
  kx_repro_table2_setup(rp, s->quick, &shape);
  int rc = 0;
  if (sh) { /* the plan pass: every run of every shard */
    rc = kx_repro_teacher_plan(rp, &shape);
    if (!rc) rc = kx_budget_steps(s->budgets, s->n_budgets, rp->pretrain_steps, st->steps);
    if (!rc) rc = run_cells(st);
    if (!rc) rc = kx_repro_shard_checked(sh);
    kx_repro_progress_restart(s->pg);
    if (rc || sh->dry) return rc;
  }
  rc = kx_repro_teacher(rp, &shape);
  for (size_t v = 0; !rc && v < s->nv; v++) rc = kx_repro_variant_check(rp, &s->v[v]);
  if (!rc) rc = kx_budget_steps(s->budgets, s->n_budgets, rp->pretrain_steps, st->steps);
  for (size_t b = 0; !rc && b < s->n_budgets; b++) {
    kx_repro_set_budget(rp, s->budgets[b].value);
    for (size_t v = 0; !rc && v < s->nv; v++)
      if ((rc = kx_repro_budget_check(rp, &s->v[v]))) rc = kx_fail_context(rc, "budget %s: ", s->budgets[b].text);
  }
  if (!rc && sh) rc = kx_repro_shard_publish(sh);
  else if (!rc) rc = kx_repro_score(rp, &rp->teacher, &st->teacher_loss, NULL, NULL);
  if (rc) return rc;
  double runs = 0, steps = 0;
  for (size_t b = 0; b < s->n_budgets; b++) {
    st->tokens[b] = (double)st->steps[b] * (double)rp->batch * (double)rp->teacher.cfg.ctx;
    for (size_t v = 0; v < s->nv; v++) {
      size_t n = seeds_at(s, &s->v[v], b);
      runs += (double)n;
      steps += (double)n * (double)st->steps[b];
      s->pg->units_total += (double)n * (double)(st->steps[b] + RUN_OVERHEAD_STEPS);
    }
  }
  s->pg->jobs = (size_t)runs;
  kx_repro_say(s->pg, "%zu variants at %zu budgets: %.0f runs, %.0f training steps", s->nv, s->n_budgets, runs, steps);
  rc = run_cells(st);
  if (sh) {
    if (!rc) kx_repro_shard_report(sh, s->pg->quiet);
    return rc;
  }
  for (size_t v = 0; !rc && v < s->nv; v++) rc = fit_variant(st, v, &st->fits[v]);
  for (size_t v = 0; !rc && v < s->nv; v++) rc = fit_beyond(st, v, &st->fits_beyond[v]);
  if (!rc) rc = write_tables(st);
  if (!rc) {
    kx_repro_say(s->pg, "figure");
    rc = figure(st);
  }
  if (!rc) kx_repro_say(s->pg, "done: %s/budget.md, .csv, .tex; budget_ranks.*; figure budget_gap", s->outdir);
  return rc;
}

static int run_claimed(void *st) { return run_study(st); }

int kx_budget_study_run(kx_budget_study *s) {
  study st = {.s = s};
  kx_repro *rp = &st.rp;
  rp->dir = s->outdir;
  rp->text = s->text;
  rp->teacher_in = s->teacher_in;
  rp->ft_lr = s->ft_lr;
  rp->keep_diverged = 1; /* one run that diverges is a result, not the end of the study */
  rp->table = "the budget study";
  rp->pg = s->pg;
  size_t maxseeds = s->scratch_seeds;
  for (size_t b = 0; b < s->n_budgets; b++) maxseeds = s->seeds[b] > maxseeds ? s->seeds[b] : maxseeds;
  if (s->n_budgets == 0 || s->nv == 0) return kx_fail(KX_EINVAL, "no budget or no variant to run");
  if (maxseeds > KX_BUDGET_MAX_SEEDS) return kx_fail(KX_EINVAL, "more than %d seeds", KX_BUDGET_MAX_SEEDS);
  st.cells = kx_calloc(s->nv * s->n_budgets, sizeof *st.cells);
  st.fits = kx_calloc(s->nv, sizeof *st.fits);
  st.fits_beyond = kx_calloc(s->nv, sizeof *st.fits_beyond);
  double *gaps = kx_calloc(s->nv * s->n_budgets * (maxseeds ? maxseeds : 1), sizeof *gaps);
  if (!st.cells || !st.fits || !st.fits_beyond || !gaps) {
    free(st.cells), free(st.fits), free(st.fits_beyond), free(gaps);
    return KX_ENOMEM;
  }
  for (size_t i = 0; i < s->nv * s->n_budgets; i++) st.cells[i].gap = gaps + i * (maxseeds ? maxseeds : 1);
  kx_repro_shard sh = {.table = "budget", .root = s->outdir, .i = s->shard_i, .n = s->shard_n, .dry = s->dry_run};
  if (sh.n || sh.dry) rp->shard = &sh;
  int rc = kx_repro_claimed(s->outdir, rp->shard, run_claimed, &st);
  kx_repro_shard_free(&sh);
  kx_repro_free(rp);
  free(gaps);
  free(st.cells);
  free(st.fits);
  free(st.fits_beyond);
  return rc;
}
