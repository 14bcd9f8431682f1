/* The table writer of kapprox reproduce (experiments/reproduce/repro_table):
 * a hand-made two-row table written as Markdown, CSV and LaTeX, compared
 * with the files its format description (repro_table.h) gives: keys first,
 * "mean ± se", the mean alone without an error, "n/a" without a mean, the
 * CSV's seeds and _se columns (none for a measurement), LaTeX escaping and
 * rules.  Also the summary statistics of runs (repro_runs.h). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/kx_error.h"
#include "experiments/reproduce/repro_runs.h"
#include "experiments/reproduce/repro_table.h"
#include "tests/test_support.h"

static void setup(void) { ck_assert_int_eq(kx_test_tmpdir("table"), 0); }

static void teardown(void) { kx_test_rmtree(); }

static char *slurp(const char *ext) {
  char p[128];
  snprintf(p, sizeof p, "%s/t.%s", kx_test_dir(), ext);
  FILE *f = fopen(p, "r");
  ck_assert_ptr_nonnull(f);
  char *buf = calloc(4096, 1);
  size_t n = fread(buf, 1, 4095, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

START_TEST(test_three_formats) {
  char stem[96];
  snprintf(stem, sizeof stem, "%s", kx_test_path("t"));
  const kx_table_column cols[2] = {{"loss", "loss (nats)", "loss", 2, 0}, {"tok/s", "tok/s", "tok_s", 0, 1}};
  kx_table t = {.stem = stem, .n_keys = 2, .key_md = {"model", "init"}, .key_csv = {"model", "init"},
                .cols = cols, .n_cols = 2, .title = "Table 9", .command = "a test", .setup = "tiny",
                .md_footnote = "Note.", .tex_caption = "Cap."};
  kx_table_row rows[2] = {
      {.key = {"my_teacher", "pre"}, .n = 1, .mean = {1.5, 1000.4}, .se = {NAN, NAN}, .rule_after = 1},
      {.key = {"b", "conv"}, .n = 3, .mean = {2.25, NAN}, .se = {0.125, NAN}},
  };
  ck_assert_int_eq(kx_table_write(&t, rows, 2), 0);
  char *md = slurp("md"), *csv = slurp("csv"), *tex = slurp("tex");
  ck_assert_str_eq(md,
                   "Table 9 (a test): mean ± standard error over seeds; tiny\n\n| model | init | loss | tok/s |\n|---|---|---:|---:|\n"
                   "| my_teacher | pre | 1.50 | 1000 |\n| b | conv | 2.25 ± 0.12 | n/a |\n\nNote.\n");
  ck_assert_str_eq(csv,
                   "model,init,seeds,loss,loss_se,tok_s\n"
                   "my_teacher,pre,1,1.5,nan,1000.4\nb,conv,3,2.25,0.125,nan\n");
  ck_assert_str_eq(tex,
                   "% a test: tiny\n\\begin{table*}[t]\n\\centering\n\\small\n\\caption{Cap.}\n"
                   "\\begin{tabular}{llrr}\n\\toprule\nmodel & init & loss (nats) & tok/s \\\\\n\\midrule\n"
                   "my\\_teacher & pre & $1.50$ & $1000$ \\\\\n\\midrule\n"
                   "b & conv & $2.25 \\pm 0.12$ & n/a \\\\\n"
                   "\\bottomrule\n\\end{tabular}\n\\end{table*}\n");
  free(md);
  free(csv);
  free(tex);
}
END_TEST

/* A cell's text replaces the numbers in Markdown and LaTeX (escaped
 * there: ≤ and _), not in the CSV; the table may name another suffix than
 * _se for a column's error. */
START_TEST(test_text_cells) {
  char stem[96];
  snprintf(stem, sizeof stem, "%s", kx_test_path("t"));
  const kx_table_column cols[2] = {{"tokens", "tokens", "tok", 0, 1}, {"c", "c", "c", 2, 0}};
  const char *err_csv[2] = {NULL, "_ci95"};
  kx_table t = {.stem = stem, .n_keys = 1, .key_md = {"model"}, .key_csv = {"model"}, .cols = cols, .n_cols = 2,
                .title = "T", .command = "cmd", .setup = "s", .tex_caption = "Cap.", .err_csv = err_csv};
  const char *text[1][KX_TABLE_MAX_COLS] = {{"≤ 5120 a_b"}};
  t.text = text;
  kx_table_row rows[1] = {{.key = {"a"}, .n = 2, .mean = {5120, 0.5}, .se = {NAN, 0.25}}};
  ck_assert_int_eq(kx_table_write(&t, rows, 1), 0);
  char *md = slurp("md"), *csv = slurp("csv"), *tex = slurp("tex");
  ck_assert_ptr_nonnull(strstr(md, "| a | ≤ 5120 a_b | 0.50 ± 0.25 |\n"));
  ck_assert_str_eq(csv, "model,seeds,tok,c,c_ci95\na,2,5120,0.5,0.25\n");
  ck_assert_ptr_nonnull(strstr(tex, "a & $\\le$ 5120 a\\_b & $0.50 \\pm 0.25$ \\\\\n"));
  free(md);
  free(csv);
  free(tex);
}
END_TEST

/* Too many columns is refused, and nothing is written. */
START_TEST(test_refused) {
  char stem[96];
  snprintf(stem, sizeof stem, "%s", kx_test_path("t"));
  kx_table_column cols[KX_TABLE_MAX_COLS + 1];
  memset(cols, 0, sizeof cols);
  kx_table t = {.stem = stem, .n_keys = 1, .cols = cols, .n_cols = KX_TABLE_MAX_COLS + 1};
  ck_assert_int_ne(kx_table_write(&t, NULL, 0), 0);
  char p[128];
  snprintf(p, sizeof p, "%s.md", stem);
  ck_assert_int_ne(access(p, F_OK), 0);
}
END_TEST

/* Mean and standard error s / sqrt(n) of 1, 2, 3 (s = 1): 2 and 1/sqrt(3);
 * one value has no error. */
START_TEST(test_summarise) {
  kx_repro_result r[3] = {{{1.0}}, {{2.0}}, {{3.0}}};
  double m, se;
  kx_repro_summarise(r, 3, KX_R_LOSS, &m, &se);
  ck_assert_double_eq_tol(m, 2.0, 1e-15);
  ck_assert_double_eq_tol(se, 1.0 / sqrt(3.0), 1e-15);
  kx_repro_summarise(r, 1, KX_R_LOSS, &m, &se);
  ck_assert_double_eq(m, 1.0);
  ck_assert(isnan(se));
}
END_TEST

int main(void) {
  Suite *s = kx_test_suite("repro_table");
  TCase *tc = kx_test_case(s, "repro_table");
  tcase_add_checked_fixture(tc, setup, teardown);
  kx_test_add(tc, (const TTest *const[]){test_three_formats, test_text_cells, test_refused, test_summarise,
                                         NULL});
  return kx_test_run(s);
}
