/* Markdown, CSV and LaTeX tables and gnuplot figures of kapprox reproduce
 * (repro_table.h). */
#include "experiments/reproduce/repro_table.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/kx_atomic.h"
#include "core/kx_error.h"


enum { MD, CSV, TEX };

static void tex_escaped(FILE *fp, const char *s) {
  static const struct {
    const char *utf8, *tex;
  } sym[] = {{"≤", "$\\le$"}, {"≥", "$\\ge$"}, {"±", "$\\pm$"}, {"α", "$\\alpha$"}};
  while (*s) {
    size_t k = 0, n = sizeof sym / sizeof sym[0];
    while (k < n && strncmp(s, sym[k].utf8, strlen(sym[k].utf8))) k++;
    if (k < n) {
      fputs(sym[k].tex, fp);
      s += strlen(sym[k].utf8);
      continue;
    }
    if (strchr("_%&#", *s)) fputc('\\', fp);
    fputc(*s++, fp);
  }
}

static void header(const kx_table *t, int k, FILE *fp) {
  if (k == MD) {
    fprintf(fp, "%s (%s): mean ± standard error over seeds; %s\n\n|", t->title, t->command, t->setup);
    for (size_t j = 0; j < t->n_keys; j++) fprintf(fp, "%s %s", j ? " |" : "", t->key_md[j]);
    for (size_t j = 0; j < t->n_cols; j++) fprintf(fp, " | %s", t->cols[j].head_md);
    fprintf(fp, " |\n|");
    for (size_t j = 0; j < t->n_keys; j++) fprintf(fp, "---|");
    for (size_t j = 0; j < t->n_cols; j++) fprintf(fp, "---:|");
    fprintf(fp, "\n");
  } else if (k == CSV) {
    for (size_t j = 0; j < t->n_keys; j++) fprintf(fp, "%s,", t->key_csv[j]);
    fprintf(fp, "seeds");
    for (size_t j = 0; j < t->n_cols; j++) {
      const kx_table_column *c = &t->cols[j];
      const char *suffix = t->err_csv && t->err_csv[j] ? t->err_csv[j] : "_se";
      if (c->no_se) fprintf(fp, ",%s", c->csv);
      else fprintf(fp, ",%s,%s%s", c->csv, c->csv, suffix);
    }
    fprintf(fp, "\n");
  } else {
    fprintf(fp, "%% %s: %s\n\\begin{table*}[t]\n\\centering\n\\small\n\\caption{%s}\n\\begin{tabular}{", t->command,
            t->setup, t->tex_caption);
    for (size_t j = 0; j < t->n_keys; j++) fputc('l', fp);
    for (size_t j = 0; j < t->n_cols; j++) fputc('r', fp);
    fprintf(fp, "}\n\\toprule\n");
    for (size_t j = 0; j < t->n_keys; j++) fprintf(fp, "%s%s", j ? " & " : "", t->key_md[j]);
    for (size_t j = 0; j < t->n_cols; j++) fprintf(fp, " & %s", t->cols[j].head_tex);
    fprintf(fp, " \\\\\n\\midrule\n");
  }
}

static void cell(const kx_table_column *c, int k, double mean, double se, const char *text, FILE *fp) {
  if (k == CSV) {
    if (c->no_se) fprintf(fp, ",%.6g", mean);
    else fprintf(fp, ",%.9g,%.9g", mean, se);
    return;
  }
  if (text) {
    fputs(k == TEX ? " & " : " | ", fp);
    if (k == TEX) tex_escaped(fp, text);
    else fputs(text, fp);
    return;
  }
  char buf[96];
  int dg = c->digits;
  if (isnan(mean)) snprintf(buf, sizeof buf, "n/a");
  else if (isnan(se)) snprintf(buf, sizeof buf, k == TEX ? "$%.*f$" : "%.*f", dg, mean);
  else snprintf(buf, sizeof buf, k == TEX ? "$%.*f \\pm %.*f$" : "%.*f ± %.*f", dg, mean, dg, se);
  fprintf(fp, k == TEX ? " & %s" : " | %s", buf);
}

static void body_row(const kx_table *t, int k, const kx_table_row *r, const char *const *text, FILE *fp) {
  for (size_t j = 0; j < t->n_keys; j++) {
    if (k == CSV) fprintf(fp, "%s,", r->key[j]);
    else if (k == MD) fprintf(fp, "%s %s", j ? " |" : "|", r->key[j]);
    else {
      if (j) fprintf(fp, " & ");
      tex_escaped(fp, r->key[j]);
    }
  }
  if (k == CSV) fprintf(fp, "%zu", r->n);
  for (size_t j = 0; j < t->n_cols; j++) cell(&t->cols[j], k, r->mean[j], r->se[j], text ? text[j] : NULL, fp);
  fprintf(fp, k == CSV ? "\n" : k == TEX ? " \\\\\n" : " |\n");
  if (k == TEX && r->rule_after) fprintf(fp, "\\midrule\n");
}

int kx_table_write(const kx_table *t, const kx_table_row *rows, size_t n_rows) {
  static const char *ext[3] = {"md", "csv", "tex"};
  if (t->n_keys > KX_TABLE_MAX_KEYS || t->n_cols > KX_TABLE_MAX_COLS)
    return kx_fail(KX_EINVAL, "a table of more than %d keys or %d columns", KX_TABLE_MAX_KEYS, KX_TABLE_MAX_COLS);
  int rc = 0;
  for (int k = MD; k <= TEX && !rc; k++) {
    char path[4096];
    snprintf(path, sizeof path, "%s.%s", t->stem, ext[k]);
    kx_atomic_file f;
    if ((rc = kx_atomic_open(&f, path))) break;
    header(t, k, f.fp);
    for (size_t i = 0; i < n_rows; i++) body_row(t, k, &rows[i], t->text ? t->text[i] : NULL, f.fp);
    if (k == TEX) fprintf(f.fp, "\\bottomrule\n\\end{tabular}\n\\end{table*}\n");
    if (k == MD && t->md_footnote) fprintf(f.fp, "\n%s\n", t->md_footnote);
    if (ferror(f.fp)) {
      kx_atomic_abort(&f);
      rc = kx_fail(KX_EIO, "writing '%s' failed", path);
    } else {
      rc = kx_atomic_commit(&f);
    }
  }
  return rc;
}

void kx_sb_add(kx_strbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int need = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (need < 0 || !b->p) return;
  if (b->len + (size_t)need + 1 > b->cap) {
    size_t cap = 2 * (b->len + (size_t)need + 1);
    char *p = realloc(b->p, cap);
    if (!p) {
      free(b->p);
      b->p = NULL;
      return;
    }
    b->p = p, b->cap = cap;
  }
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
  va_end(ap);
  b->len += (size_t)need;
}

/* ---------- figures ---------- */
