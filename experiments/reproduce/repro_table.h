/* A results table of kapprox reproduce written three ways (Markdown, CSV,
 * LaTeX) from one description.
 *
 * A row has key cells (text: "performer", "converted") and value cells
 * (mean and standard error over seeds; NaN mean: "n/a", NaN error: the
 * mean alone; or a text of the table's for that cell).  The CSV has, per value column,
 * `name` and `name_se` (%.9g; another suffix than _se where the table
 * names one), or only `name` (%.6g) for a column without errors. */
#ifndef KX_REPRO_TABLE_H
#define KX_REPRO_TABLE_H

#include <stddef.h>

#define KX_TABLE_MAX_KEYS 4
#define KX_TABLE_MAX_COLS 24

typedef struct {
  const char *head_md, *head_tex, *csv;
  int digits; /* after the decimal point in Markdown and LaTeX */
  int no_se;  /* a measurement without an error: no _se column in the CSV */
} kx_table_column;

typedef struct {
  const char *key[KX_TABLE_MAX_KEYS];
  size_t n; /* seeds behind the row (the CSV's `seeds`) */
  double mean[KX_TABLE_MAX_COLS], se[KX_TABLE_MAX_COLS];
  int rule_after; /* LaTeX: \midrule after this row */
} kx_table_row;

typedef struct {
  const char *stem; /* writes stem.md, stem.csv, stem.tex */
  size_t n_keys;
  const char *key_md[KX_TABLE_MAX_KEYS], *key_csv[KX_TABLE_MAX_KEYS];
  const kx_table_column *cols;
  size_t n_cols;
  /* The Markdown's first paragraph: "<title> (<command>): mean ± standard
   * error over seeds; <setup>"; the LaTeX's first line "% <command>: <setup>". */
  const char *title, *command, *setup;
  const char *md_footnote; /* after the Markdown table (NULL: none) */
  const char *tex_caption;
  /* Per column, the CSV's suffix of its error column where the error is not
   * a standard error ("_ci95": the half-width of an interval); NULL (the
   * array or an entry): "_se". */
  const char *const *err_csv;
  /* Optional (NULL: none), one array a row: Markdown and LaTeX show
   * text[i][j] (when not NULL) in row i, column j instead of the numbers
   * ("≤ 79872", "not within the largest budget"); the CSV keeps the
   * numbers.  LaTeX gets it escaped (_ % & # and ≤ ≥ ± α). */
  const char *(*text)[KX_TABLE_MAX_COLS];
} kx_table;

/* Writes the three files atomically; message and non-zero on failure. */
int kx_table_write(const kx_table *t, const kx_table_row *rows, size_t n_rows);

/* A growing string, for a table's footnote: start with {malloc(n), 0, n};
 * after a failed allocation p is NULL (and further appends do nothing). */
typedef struct {
  char *p;
  size_t len, cap;
} kx_strbuf;
void kx_sb_add(kx_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
