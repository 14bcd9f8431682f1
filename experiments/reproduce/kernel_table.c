#include "experiments/reproduce/kernel_table.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "experiments/eval/metrics.h"
#include "experiments/eval/summary.h"
#include "experiments/qk/qk_file.h"

/* The head dimension of a Q/K file: that of its first selected layer. */
static int file_dim(const char *path, const int *layers, size_t n_layers, size_t *d) {
  kx_qk_file *f = kx_qk_open(path);
  if (!f) return KX_EIO;
  int rc = kx_fail(KX_EINVAL, "%s has none of the selected layers", path);
  for (size_t i = 0; i < kx_qk_n_layers(f); i++) {
    int sel = n_layers == 0;
    for (size_t k = 0; k < n_layers; k++) sel |= layers[k] == kx_qk_layer_index(f, i);
    if (!sel) continue;
    kx_qk_layer L;
    rc = kx_qk_layer_shape(f, i, &L);
    if (!rc) *d = L.d;
    kx_qk_layer_free(&L);
    break;
  }
  kx_qk_close(f);
  return rc;
}

static void cell(FILE *fp, const kx_summary_row *s, int best, int latex) {
  char buf[96];
  if (!s) snprintf(buf, sizeof buf, "n/a");
  else if (!s->n_seeds) snprintf(buf, sizeof buf, "failed");
  else if (s->n_failed) /* a mean over fewer seeds than the others says so */
    snprintf(buf, sizeof buf, latex ? "$%.3g$ (%zu of %zu seeds)" : "%.3g (%zu of %zu seeds)", s->mean, s->n_seeds,
             s->n_seeds + s->n_failed);
  else if (isnan(s->se)) snprintf(buf, sizeof buf, latex ? "$%.3g$" : "%.3g", s->mean);
  else snprintf(buf, sizeof buf, latex ? "$%.3g \\pm %.2g$" : "%.3g ± %.2g", s->mean, s->se);
  /* \boldmath: \textbf does not reach inside math mode */
  if (best && s) fprintf(fp, latex ? " & {\\boldmath%s}" : " | **%s**", buf);
  else fprintf(fp, latex ? " & %s" : " | %s", buf);
}

static void latex_escape(FILE *fp, const char *s) {
  for (; *s; s++) {
    if (strchr("_&%$#{}", *s)) fputc('\\', fp);
    fputc(*s, fp);
  }
}

static void write_table(FILE *fp, const kx_summary_row *S, size_t ns, char **schemes, size_t nsch,
                        const kx_kernel_group *g, size_t ng, int metric, size_t seeds, int latex,
                        const char *setup) {
  size_t ncol = 2 * ng;
  /* the best (smallest) mean of each column */
  double best[16];
  for (size_t c = 0; c < ncol; c++) {
    best[c] = INFINITY;
    for (size_t s = 0; s < nsch; s++) {
      const kx_summary_row *r = kx_summary_find(S, ns, g[c / 2].input, schemes[s], metric, (c % 2 ? 4 : 1) * g[c / 2].d);
      if (r && r->mean < best[c]) best[c] = r->mean;
    }
  }
  if (latex) {
    fprintf(fp, "%% kapprox reproduce kernel: %s\n\\begin{table}[t]\n\\centering\n\\caption{", setup);
    latex_escape(fp, kx_metrics[metric].name);
    fprintf(fp, " of each feature map at $m = d$ and $m = 4d$, mean $\\pm$ standard error over %zu seeds.}\n", seeds);
    fprintf(fp, "\\begin{tabular}{l");
    for (size_t c = 0; c < ncol; c++) fputc('c', fp);
    fprintf(fp, "}\n\\toprule\n");
    for (size_t k = 0; k < ng; k++) {
      fprintf(fp, " & \\multicolumn{2}{c}{");
      latex_escape(fp, g[k].label);
      fputc('}', fp);
    }
    fprintf(fp, " \\\\\nscheme");
    for (size_t k = 0; k < ng; k++) fprintf(fp, " & $m = %zu$ & $m = %zu$", g[k].d, 4 * g[k].d);
    fprintf(fp, " \\\\\n\\midrule\n");
  } else {
    fprintf(fp, "**%s** at m = d and m = 4d, mean ± standard error over %zu seeds (%s; best in bold)\n\n",
            kx_metrics[metric].name, seeds, setup);
    fprintf(fp, "| scheme");
    for (size_t k = 0; k < ng; k++) fprintf(fp, " | %s, m = d = %zu | %s, m = 4d = %zu", g[k].label, g[k].d, g[k].label, 4 * g[k].d);
    fprintf(fp, " |\n|---");
    for (size_t c = 0; c < ncol; c++) fprintf(fp, "|---:");
    fprintf(fp, "|\n");
  }
  for (size_t s = 0; s < nsch; s++) {
    if (latex) latex_escape(fp, schemes[s]);
    else fprintf(fp, "| %s", schemes[s]);
    for (size_t c = 0; c < ncol; c++) {
      const kx_summary_row *r = kx_summary_find(S, ns, g[c / 2].input, schemes[s], metric, (c % 2 ? 4 : 1) * g[c / 2].d);
      cell(fp, r, r && r->mean == best[c], latex);
    }
    fprintf(fp, latex ? " \\\\\n" : " |\n");
  }
  if (latex) fprintf(fp, "\\bottomrule\n\\end{tabular}\n\\end{table}\n");
}

int kx_kernel_groups(const kx_spec *spec, kx_kernel_group *groups, size_t *ng) {
  const kx_norm_spec norm = spec->norms[0];
  groups[0] = (kx_kernel_group){.d = spec->d};
  /* no '|' in headings: it would split a Markdown table cell */
  if (norm.lo == norm.hi) snprintf(groups[0].label, sizeof groups[0].label, "synthetic, norm %g", norm.lo);
  else snprintf(groups[0].label, sizeof groups[0].label, "synthetic, norms %g-%g", norm.lo, norm.hi);
  snprintf(groups[0].input, sizeof groups[0].input, "synthetic");
  *ng = 1;
  if (!spec->n_files) return 0;
  const char *input = spec->files[0];
  size_t d = 0;
  int rc = file_dim(input, spec->layers, spec->n_layers, &d);
  if (rc) return rc;
  groups[1] = (kx_kernel_group){.d = d};
  const char *base = strrchr(input, '/');
  snprintf(groups[1].label, sizeof groups[1].label, "%s", base ? base + 1 : input);
  snprintf(groups[1].input, sizeof groups[1].input, "%s", input);
  *ng = 2;
  return 0;
}

int kx_kernel_group_run(const kx_spec *spec, const kx_kernel_group *groups, size_t g, const kx_run_options *o,
                        kx_results *res) {
  kx_spec s = *spec;
  if (g == 0) s.n_files = 0;
  else s.n_norms = 0, s.n_files = 1;
  s.m[0] = groups[g].d;
  s.m[1] = 4 * groups[g].d;
  s.n_m = 2;
  return kx_spec_run(&s, o, res);
}

int kx_kernel_tables_print(FILE *fp, const kx_spec *s, const kx_results *res, const kx_kernel_group *groups,
                           size_t ng, const int *metrics, size_t n_metrics, int latex) {
  kx_summary_row *S = NULL;
  size_t ns = 0;
  int rc = kx_summarise(res, &S, &ns);
  if (rc) return rc;
  char setup[512];
  snprintf(setup, sizeof setup, "%s kernel; synthetic: %zu tokens, d = %zu, norm %g, data seed %llu%s%s",
           s->fmap.kernel == KX_KERNEL_GAUSS ? "Gaussian" : "softmax", s->tokens, s->d, s->norms[0].lo,
           (unsigned long long)s->data_seed, s->n_files ? "; file: " : "", s->n_files ? s->files[0] : "");
  for (size_t i = 0; i < n_metrics; i++) {
    if (i) fputc('\n', fp);
    write_table(fp, S, ns, s->schemes, s->n_schemes, groups, ng, metrics[i], s->n_seeds, latex, setup);
  }
  free(S);
  return 0;
}
