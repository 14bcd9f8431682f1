#include "experiments/plot/figures.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_atomic.h"
#include "core/kx_error.h"
#include "core/kx_fs.h"
#include "experiments/eval/attn_maps.h"
#include "experiments/eval/inputs.h"
#include "experiments/eval/metrics.h"
#include "experiments/eval/results.h"
#include "experiments/plot/gnuplot.h"
#include "samplers/sequence.h"

int kx_plot_prepare(kx_plot *c) {
  if (snprintf(c->datadir, sizeof c->datadir, "%s/data", c->outdir) >= (int)sizeof c->datadir)
    return kx_fail(KX_EINVAL, "path '%s' is too long", c->outdir);
  return kx_mkdir_p(c->datadir);
}

/* gnuplot string literal in double quotes */
static void gp_string(FILE *fp, const char *s) {
  fputc('"', fp);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') fputc('\\', fp);
    fputc(*s, fp);
  }
  fputc('"', fp);
}

/* One figure per format (experiments/plot/gnuplot.h: published atomically). */
static int render(const kx_plot *c, const char *script, const char *figure) {
  if (!c->render) return 0;
  const char *formats[2] = {c->png ? "png" : NULL, c->svg ? "svg" : NULL};
  for (int f = 0; f < 2; f++) {
    if (!formats[f]) continue;
    char vars[12288], path[4096], out[4352];
    snprintf(path, sizeof path, "%s/%s", c->scripts, script);
    snprintf(out, sizeof out, "%s/%s.%s", c->outdir, figure, formats[f]);
    int w = snprintf(vars, sizeof vars, "datadir='%s'; vars='%s/%s.vars'; scriptdir='%s'", c->datadir, c->datadir,
                     figure, c->scripts);
    if (w < 0 || (size_t)w >= sizeof vars) return kx_fail(KX_EINVAL, "output path too long");
    int rc = kx_gnuplot_figure(path, vars, formats[f], out);
    if (rc) return rc;
  }
  return 0;
}

static FILE *open_data(const kx_plot *c, const char *name, kx_atomic_file *f) {
  char path[4352];
  snprintf(path, sizeof path, "%s/%s", c->datadir, name);
  return kx_atomic_open(f, path) ? NULL : f->fp;
}

static int close_data(kx_atomic_file *f) {
  if (ferror(f->fp)) {
    kx_atomic_abort(f);
    return kx_fail(KX_EIO, "writing plot data failed");
  }
  return kx_atomic_commit(f);
}

/* The labels every error figure's variables end with, then the file is
 * published and the figure drawn. */
static int finish_vars(const kx_plot *c, kx_atomic_file *f, int metric, const char *title,
                       const char *script, const char *figure) {
  FILE *fp = f->fp;
  fprintf(fp, "ylabel_text = ");
  gp_string(fp, kx_metrics[metric].label);
  fprintf(fp, "\ntitle_text = ");
  gp_string(fp, title);
  fputc('\n', fp);
  int rc = close_data(f);
  return rc ? rc : render(c, script, figure);
}

/* Explicit y tics at 1, 2, 5 x 10^k: gnuplot's log axis labels only powers
 * of ten, which leaves a range narrower than a decade with one label or
 * none.  Wide ranges keep the powers of ten. */
static void write_log_ytics(FILE *fp, double lo, double hi) {
  if (!(lo > 0) || !(hi > lo)) return;
  int wide = hi / lo > 1e3;
  fprintf(fp, "set ytics (");
  int first = 1;
  for (int e = (int)floor(log10(lo)); e <= (int)ceil(log10(hi)); e++)
    for (int k = 0; k < 3; k++) {
      static const double mant[3] = {1, 2, 5};
      if (wide && k) continue;
      double v = mant[k] * pow(10.0, e);
      if (v < lo || v > hi) continue;
      fprintf(fp, "%s%.10g", first ? "" : ", ", v);
      first = 0;
    }
  fprintf(fp, ")\n");
}

/* ---- (a) error vs m ------------------------------------------------------ */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int kx_plot_err_vs_m(const kx_plot *c, const char *figure, const kx_summary_row *S, size_t ns,
                        const kx_slope_row *L, size_t nl, const char *input, int metric) {
  const char *schemes[64];
  size_t nsch = 0, m_lo = 0, m_hi = 0, seeds = 0;
  for (size_t i = 0; i < ns; i++) {
    if (S[i].metric != metric || strcmp(S[i].input, input)) continue;
    int seen = 0;
    for (size_t k = 0; k < nsch; k++) seen |= !strcmp(schemes[k], S[i].scheme);
    if (!seen && nsch < 64) schemes[nsch++] = S[i].scheme;
    if (!m_lo || S[i].m < m_lo) m_lo = S[i].m;
    if (S[i].m > m_hi) m_hi = S[i].m;
    if (S[i].n_seeds > seeds) seeds = S[i].n_seeds;
  }
  if (!nsch) return kx_fail(KX_EINVAL, "the results hold no %s rows for input '%s'", kx_metrics[metric].name, input);
  double first[64], ymin = INFINITY, ymax = 0;
  size_t nfirst = 0;
  int rc = 0;
  for (size_t k = 0; k < nsch && !rc; k++) {
    char name[96];
    snprintf(name, sizeof name, "%s-%zu.dat", figure, k + 1);
    kx_atomic_file f;
    FILE *fp = open_data(c, name, &f);
    if (!fp) return KX_EIO;
    fprintf(fp, "# %s, input %s, scheme %s\n# m mean ci95_lo ci95_hi se n_seeds\n", kx_metrics[metric].name, input,
            schemes[k]);
    for (size_t i = 0; i < ns; i++) {
      const kx_summary_row *s = &S[i];
      if (s->metric != metric || strcmp(s->input, input) || strcmp(s->scheme, schemes[k])) continue;
      if (!(s->mean > 0)) continue; /* a log axis cannot show 0 */
      /* a 95% interval reaching below 0 cannot be drawn on a log axis; clip it */
      double lo = isnan(s->ci_lo) ? s->mean : fmax(s->ci_lo, s->mean / 20);
      double hi = isnan(s->ci_hi) ? s->mean : s->ci_hi;
      fprintf(fp, "%zu %.8g %.8g %.8g %.6g %zu\n", s->m, s->mean, lo, hi, s->se, s->n_seeds);
      ymin = fmin(ymin, lo);
      ymax = fmax(ymax, hi);
      if (s->m == m_lo && nfirst < 64) first[nfirst++] = s->mean;
    }
    rc = close_data(&f);
  }
  if (rc) return rc;
  /* reference slopes start at the median error of the smallest m */
  qsort(first, nfirst, sizeof *first, cmp_double);
  double y0 = nfirst ? first[nfirst / 2] : 1.0;
  kx_atomic_file f;
  char vname[96];
  snprintf(vname, sizeof vname, "%s.vars", figure);
  FILE *fp = open_data(c, vname, &f);
  if (!fp) return KX_EIO;
  fprintf(fp, "# written by kapprox plot; read by err_vs_m.gp\nn = %zu\narray file[%zu]\narray label[%zu]\n", nsch,
          nsch, nsch);
  for (size_t k = 0; k < nsch; k++) {
    fprintf(fp, "file[%zu] = ", k + 1);
    char name[4400];
    snprintf(name, sizeof name, "%s/%s-%zu.dat", c->datadir, figure, k + 1);
    gp_string(fp, name);
    char label[160];
    const kx_slope_row *sl = NULL;
    for (size_t i = 0; i < nl; i++)
      if (L[i].metric == metric && !strcmp(L[i].input, input) && !strcmp(L[i].scheme, schemes[k])) sl = &L[i];
    if (sl && !isnan(sl->slope)) snprintf(label, sizeof label, "%s   slope %.2f ± %.2f", schemes[k], sl->slope, sl->slope_se);
    else snprintf(label, sizeof label, "%s", schemes[k]);
    fprintf(fp, "\nlabel[%zu] = ", k + 1);
    gp_string(fp, label);
    fputc('\n', fp);
  }
  /* the y range fits the data (the -1 reference line may leave it) */
  double ylo = isfinite(ymin) ? ymin / 1.6 : 1e-3, yhi = ymax > 0 ? ymax * 1.6 : 1.0;
  fprintf(fp, "xmin = %g\nxmax = %g\nymin = %.6g\nymax = %.6g\nref_half = %.8g\nref_one = %.8g\n",
          (double)m_lo / 1.4, (double)m_hi * 1.4, ylo, yhi, y0 * sqrt((double)m_lo), y0 * (double)m_lo);
  write_log_ytics(fp, ylo, yhi);
  /* a tick at every m of the grid: a log axis alone labels only decades */
  fprintf(fp, "set xtics (");
  size_t last = 0;
  for (size_t i = 0, first_tic = 1; i < ns; i++) {
    if (S[i].metric != metric || strcmp(S[i].input, input) || strcmp(S[i].scheme, schemes[0]) || S[i].m == last) continue;
    fprintf(fp, "%s%zu", first_tic ? "" : ", ", S[i].m);
    first_tic = 0;
    last = S[i].m;
  }
  fprintf(fp, ")\n");
  char title[512];
  snprintf(title, sizeof title, "%s vs number of features: %s (mean and 95%% interval over %zu seeds)",
           kx_metrics[metric].name, input, seeds);
  return finish_vars(c, &f, metric, title, "err_vs_m.gp", figure);
}

/* ---- (b) error vs norm ----------------------------------------------------- */

int kx_plot_err_vs_norm(const kx_plot *c, const kx_summary_row *S, size_t ns, int metric, size_t at_m,
                           int required) {
  static const char prefix[] = "synthetic:norm=";
  const char *schemes[64];
  size_t nsch = 0, m = at_m, n_norm_inputs = 0;
  const char *inputs[256];
  if (!m) {
    /* m = 4d for the default d = 64 when the sweep has it */
    size_t largest = 0;
    int has256 = 0;
    for (size_t i = 0; i < ns; i++) {
      has256 |= S[i].m == 256;
      if (S[i].m > largest) largest = S[i].m;
    }
    m = has256 ? 256 : largest;
  }
  for (size_t i = 0; i < ns; i++) {
    const kx_summary_row *s = &S[i];
    /* only fixed-norm synthetic inputs have one norm to put on the x axis */
    if (s->metric != metric || s->m != m || strncmp(s->input, prefix, sizeof prefix - 1) ||
        strchr(s->input + sizeof prefix - 1, ':'))
      continue;
    int seen = 0;
    for (size_t k = 0; k < nsch; k++) seen |= !strcmp(schemes[k], s->scheme);
    if (!seen && nsch < 64) schemes[nsch++] = s->scheme;
    seen = 0;
    for (size_t k = 0; k < n_norm_inputs; k++) seen |= !strcmp(inputs[k], s->input);
    if (!seen && n_norm_inputs < 256) inputs[n_norm_inputs++] = s->input;
  }
  if (n_norm_inputs < 2) {
    if (required)
      return kx_fail(KX_EINVAL, "err-vs-norm needs results at m = %zu for at least two synthetic norms "
                     "(run the sweep with e.g. --norms 0.5,1,1.5,2)", m);
    if (c->note)
      c->note(c->note_user, KX_PLOT_NOTE_SKIPPED, "skipping err-vs-norm: the results have fewer than two synthetic norms "
                            "(sweep with --norms 0.5,1,1.5,2)");
    return 0;
  }
  int rc = 0;
  size_t seeds = 0;
  double ymin = INFINITY, ymax = 0;
  for (size_t k = 0; k < nsch && !rc; k++) {
    char name[64];
    snprintf(name, sizeof name, "err-vs-norm-%zu.dat", k + 1);
    kx_atomic_file f;
    FILE *fp = open_data(c, name, &f);
    if (!fp) return KX_EIO;
    fprintf(fp, "# %s at m = %zu, scheme %s\n# norm mean ci95_lo ci95_hi se n_seeds\n", kx_metrics[metric].name, m,
            schemes[k]);
    /* summary rows come in input order; sort this scheme's points by norm */
    double pts[256][5];
    size_t np = 0;
    for (size_t i = 0; i < ns && np < 256; i++) {
      const kx_summary_row *s = &S[i];
      if (s->metric != metric || s->m != m || strcmp(s->scheme, schemes[k]) ||
          strncmp(s->input, prefix, sizeof prefix - 1) || strchr(s->input + sizeof prefix - 1, ':') || !(s->mean > 0))
        continue;
      double lo = isnan(s->ci_lo) ? s->mean : fmax(s->ci_lo, s->mean / 20);
      double hi = isnan(s->ci_hi) ? s->mean : s->ci_hi;
      double row[5] = {atof(s->input + sizeof prefix - 1), s->mean, lo, hi, s->se};
      ymin = fmin(ymin, lo);
      ymax = fmax(ymax, hi);
      memcpy(pts[np++], row, sizeof row);
      if (s->n_seeds > seeds) seeds = s->n_seeds;
    }
    qsort(pts, np, sizeof pts[0], cmp_double); /* first column is the key */
    for (size_t i = 0; i < np; i++)
      fprintf(fp, "%g %.8g %.8g %.8g %.6g\n", pts[i][0], pts[i][1], pts[i][2], pts[i][3], pts[i][4]);
    rc = close_data(&f);
  }
  if (rc) return rc;
  kx_atomic_file f;
  FILE *fp = open_data(c, "err-vs-norm.vars", &f);
  if (!fp) return KX_EIO;
  fprintf(fp, "# written by kapprox plot; read by err_vs_norm.gp\nn = %zu\narray file[%zu]\narray label[%zu]\n", nsch,
          nsch, nsch);
  for (size_t k = 0; k < nsch; k++) {
    char name[4400];
    snprintf(name, sizeof name, "%s/err-vs-norm-%zu.dat", c->datadir, k + 1);
    fprintf(fp, "file[%zu] = ", k + 1);
    gp_string(fp, name);
    fprintf(fp, "\nlabel[%zu] = ", k + 1);
    gp_string(fp, schemes[k]);
    fputc('\n', fp);
  }
  double ylo = isfinite(ymin) ? ymin / 1.6 : 1e-3, yhi = ymax > 0 ? ymax * 1.6 : 1.0;
  fprintf(fp, "ymin = %.6g\nymax = %.6g\n", ylo, yhi);
  write_log_ytics(fp, ylo, yhi);
  char title[256];
  snprintf(title, sizeof title, "%s vs input norm at m = %zu (synthetic, mean and 95%% interval over %zu seeds)",
           kx_metrics[metric].name, m, seeds);
  return finish_vars(c, &f, metric, title, "err_vs_norm.gp", "err-vs-norm");
}

/* ---- (c) attention maps ------------------------------------------------------ */

static double quantile_abs(const double *x, size_t n, double q) {
  double *t = malloc((n ? n : 1) * sizeof *t);
  if (!t) return 0;
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (!isnan(x[i])) t[k++] = fabs(x[i]);
  if (!k) {
    free(t);
    return 0;
  }
  qsort(t, k, sizeof *t, cmp_double);
  double v = t[(size_t)(q * (double)(k - 1))];
  free(t);
  return v;
}

int kx_plot_attn_maps(const kx_plot *c, const kx_spec *spec) {
  char **schemes = spec->schemes;
  const size_t nsch = spec->n_schemes, m = spec->m[0];
  const uint64_t seed = spec->seeds[0];
  const kx_fmap_options fo = spec->fmap;
  kx_loaded_head h;
  int rc = kx_heads_load_first(spec, &h);
  if (rc) return rc;
  size_t n = h.ref.n;
  double *exact = kx_malloc(n * n * sizeof *exact), *A = kx_malloc(n * n * sizeof *A);
  double cbmax = 0, dmax = 0;
  if (!exact || !A) rc = KX_ENOMEM;
  char path[4352];
  if (!rc) rc = kx_attention_map_exact(&h.ref, exact);
  if (!rc) {
    snprintf(path, sizeof path, "%s/map-exact.txt", c->datadir);
    rc = kx_matrix_write_text(path, n, n, exact);
    /* the colour scale ends at a high quantile, not the max: the first
     * causal rows (weight 1 on one key) would wash out everything else */
    cbmax = quantile_abs(exact, n * n, 0.995);
  }
  for (size_t s = 0; s < nsch && !rc; s++) {
    rc = kx_attention_map_approx(&h.ref, &fo, schemes[s], m, seed, A);
    if (rc) break;
    snprintf(path, sizeof path, "%s/map-%zu.txt", c->datadir, s + 1);
    rc = kx_matrix_write_text(path, n, n, A);
    for (size_t i = 0; i < n * n; i++) A[i] -= exact[i];
    double q = quantile_abs(A, n * n, 0.995);
    if (q > dmax) dmax = q;
    snprintf(path, sizeof path, "%s/mapdiff-%zu.txt", c->datadir, s + 1);
    if (!rc) rc = kx_matrix_write_text(path, n, n, A);
  }
  int causal = h.ref.causal;
  kx_loaded_head_free(&h);
  free(exact);
  free(A);
  if (rc) return rc;
  kx_atomic_file f;
  FILE *fp = open_data(c, "attn-maps.vars", &f);
  if (!fp) return KX_EIO;
  fprintf(fp, "# written by kapprox plot; read by attn_maps.gp\nn = %zu\nntok = %zu\narray label[%zu]\n", nsch, n, nsch);
  for (size_t s = 0; s < nsch; s++) {
    fprintf(fp, "label[%zu] = ", s + 1);
    char l[96];
    snprintf(l, sizeof l, "%s, m = %zu", schemes[s], m);
    gp_string(fp, l);
    fputc('\n', fp);
  }
  fprintf(fp, "causal = %d\ncbmax = %.6g\ndmax = %.6g\n", causal, cbmax > 0 ? cbmax : 1, dmax > 0 ? dmax : 1e-6);
  char title[512];
  if (spec->n_files)
    snprintf(title, sizeof title, "attention weights of %s layer %d head %d (%zu tokens, %s): exact, approximations "
             "(top), approximation - exact (bottom)", spec->files[0], spec->layers[0], spec->heads[0], n,
             causal ? "causal" : "non-causal");
  else
    snprintf(title, sizeof title, "attention weights, synthetic head (%zu tokens, d = %zu, |q| = |k| = %g, %s): exact, "
             "approximations (top), approximation - exact (bottom)", n, spec->d, spec->norms[0].lo,
             causal ? "causal" : "non-causal");
  fprintf(fp, "title_text = ");
  gp_string(fp, title);
  fputc('\n', fp);
  rc = close_data(&f);
  return rc ? rc : render(c, "attn_maps.gp", "attn-maps");
}

/* ---- (d) sampler points ------------------------------------------------------ */

int kx_plot_points(const kx_plot *c, char **samplers, size_t nsam, size_t n, size_t dim, size_t ci, size_t cj) {
  if (ci < 1 || cj < 1 || ci > dim || cj > dim || ci == cj)
    return kx_fail(KX_EINVAL, "--points-coords %zu,%zu: need two different coordinates in 1..%zu", ci, cj, dim);
  double *x = kx_malloc(n * dim * sizeof *x);
  if (!x) return KX_ENOMEM;
  int rc = 0;
  for (size_t s = 0; s < nsam && !rc; s++) {
    kx_sequence *q = kx_sequence_alloc(samplers[s], dim, 0);
    if (!q) {
      rc = KX_EINVAL;
      break;
    }
    rc = kx_sequence_fill(q, n, x);
    kx_sequence_free(q);
    if (rc) break;
    char name[64];
    snprintf(name, sizeof name, "points-%zu.dat", s + 1);
    kx_atomic_file f;
    FILE *fp = open_data(c, name, &f);
    if (!fp) {
      rc = KX_EIO;
      break;
    }
    fprintf(fp, "# %s, first %zu points, coordinates %zu and %zu of %zu, seed 0\n", samplers[s], n, ci, cj, dim);
    for (size_t i = 0; i < n; i++) fprintf(fp, "%.8f %.8f\n", x[i * dim + ci - 1], x[i * dim + cj - 1]);
    rc = close_data(&f);
  }
  free(x);
  if (rc) return rc;
  kx_atomic_file f;
  FILE *fp = open_data(c, "points.vars", &f);
  if (!fp) return KX_EIO;
  fprintf(fp, "# written by kapprox plot; read by points.gp\nn = %zu\narray label[%zu]\n", nsam, nsam);
  for (size_t s = 0; s < nsam; s++) {
    fprintf(fp, "label[%zu] = ", s + 1);
    gp_string(fp, samplers[s]);
    fputc('\n', fp);
  }
  char t[256];
  snprintf(t, sizeof t, "first %zu points of each sampler in [0,1)^%zu, coordinates %zu and %zu (seed 0)", n, dim, ci, cj);
  fprintf(fp, "title_text = ");
  gp_string(fp, t);
  fprintf(fp, "\nxlabel_text = \"coordinate u_%zu\"\nylabel_text = \"coordinate u_%zu\"\n", ci, cj);
  rc = close_data(&f);
  return rc ? rc : render(c, "points.gp", "points");
}

int kx_plot_results(const kx_plot *c, const char *results, const char *input, int metric, size_t at_m, int want_a,
                    int want_b, int norm_required) {
  kx_results res = {0};
  kx_summary_row *S = NULL;
  kx_slope_row *L = NULL;
  size_t ns = 0, nl = 0;
  int rc = kx_results_read_csv(results, &res);
  if (!rc && res.n == 0) rc = kx_fail(KX_EIO, "'%s' holds no rows", results);
  if (!rc) rc = kx_summarise(&res, &S, &ns);
  if (!rc) rc = kx_fit_slopes(&res, &L, &nl);
  if (!rc && want_a && input && !strcmp(input, "all")) {
    /* one figure per input, numbered in the order of the results */
    size_t k = 0;
    for (size_t i = 0; i < res.n && !rc; i++) {
      int seen = 0;
      for (size_t j = 0; j < i && !seen; j++) seen = !strcmp(res.rows[j].input, res.rows[i].input);
      if (seen) continue;
      char figure[32];
      snprintf(figure, sizeof figure, "err-vs-m-%zu", ++k);
      rc = kx_plot_err_vs_m(c, figure, S, ns, L, nl, res.rows[i].input, metric);
      if (!rc && c->note) {
        char note[4608];
        snprintf(note, sizeof note, "%s: %s", figure, res.rows[i].input);
        c->note(c->note_user, KX_PLOT_NOTE_FIGURE, note);
      }
    }
  } else if (!rc && want_a) {
    rc = kx_plot_err_vs_m(c, "err-vs-m", S, ns, L, nl, input ? input : res.rows[0].input, metric);
  }
  if (!rc && want_b) rc = kx_plot_err_vs_norm(c, S, ns, metric, at_m, norm_required);
  free(S);
  free(L);
  kx_results_free(&res);
  return rc;
}
