/* The pieces under kapprox sweep: the journal (checksums, torn and damaged
 * lines, locking), the grid fingerprint and its explanation, shard specs,
 * and the statistics of the summary (t intervals, convergence slopes)
 * against values worked out by hand. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/sweep/journal.h"
#include "experiments/eval/metrics.h"
#include "experiments/eval/summary.h"
#include "experiments/sweep/sweep.h"
#include "experiments/sweep/sweep_commit.h"
#include "experiments/qk/synthetic.h"
#include "approx/fmap.h"
#include "tests/test_support.h"


static void append_raw(const char *path, const char *text) {
  FILE *fp = fopen(path, "a");
  ck_assert_ptr_nonnull(fp);
  fputs(text, fp);
  fclose(fp);
}

START_TEST(crc32_check_value) {
  /* the standard check value of CRC-32/ISO-HDLC */
  ck_assert_uint_eq(kx_crc32("123456789", 9), 0xCBF43926u);
  ck_assert_uint_eq(kx_crc32("", 0), 0u);
}
END_TEST

static void write_journal(const char *path, int n) {
  kx_journal j;
  kx_journal_contents c;
  ck_assert_int_eq(kx_journal_open(&j, path, 1, &c), 0);
  ck_assert_ptr_null(c.header);
  ck_assert_int_eq(kx_journal_start(&j, "test header\nrecords:\n"), 0);
  for (int i = 0; i < n; i++) {
    char rec[64];
    snprintf(rec, sizeof rec, "%d,record number %d", i, i);
    ck_assert_int_eq(kx_journal_append(&j, rec), 0);
  }
  kx_journal_contents_free(&c);
  kx_journal_close(&j);
}

START_TEST(journal_round_trip_and_torn_tail) {
  const char *p = kx_test_path("a.journal");
  write_journal(p, 5);
  kx_journal_contents c;
  ck_assert_int_eq(kx_journal_read(p, &c), 0);
  ck_assert_str_eq(c.header, "test header\nrecords:\n");
  ck_assert_int_eq(c.n, 5);
  ck_assert_int_eq(c.dropped, 0);
  ck_assert_str_eq(c.records[3], "3,record number 3");
  kx_journal_contents_free(&c);
  /* a power loss mid-write: a line without its checksum and newline */
  append_raw(p, "5,record num");
  ck_assert_int_eq(kx_journal_read(p, &c), 0);
  ck_assert_int_eq(c.n, 5);
  ck_assert_int_eq(c.dropped, 1);
  kx_journal_contents_free(&c);
  /* repair drops it for good, and appending afterwards starts a clean line */
  kx_journal j;
  ck_assert_int_eq(kx_journal_open(&j, p, 0, &c), 0);
  ck_assert_int_eq(kx_journal_repair(&j, &c), 0);
  ck_assert_int_eq(kx_journal_append(&j, "5,record number 5"), 0);
  kx_journal_contents_free(&c);
  kx_journal_close(&j);
  ck_assert_int_eq(kx_journal_read(p, &c), 0);
  ck_assert_int_eq(c.n, 6);
  ck_assert_int_eq(c.dropped, 0);
  ck_assert_str_eq(c.records[5], "5,record number 5");
  kx_journal_contents_free(&c);
}
END_TEST

START_TEST(journal_damaged_line_is_dropped) {
  const char *p = kx_test_path("b.journal");
  write_journal(p, 4);
  /* flip one byte inside record 1: its checksum no longer matches */
  FILE *fp = fopen(p, "r+");
  ck_assert_ptr_nonnull(fp);
  char buf[512];
  size_t len = fread(buf, 1, sizeof buf - 1, fp);
  buf[len] = '\0';
  char *hit = strstr(buf, "record number 1");
  ck_assert_ptr_nonnull(hit);
  fseek(fp, (long)(hit - buf), SEEK_SET);
  fputc('R', fp);
  fclose(fp);
  kx_journal_contents c;
  ck_assert_int_eq(kx_journal_read(p, &c), 0);
  ck_assert_int_eq(c.n, 3);
  ck_assert_int_eq(c.dropped, 1);
  ck_assert_str_eq(c.records[1], "2,record number 2");
  kx_journal_contents_free(&c);
}
END_TEST


/* NUL bytes (found by fuzzing): text used as C strings would be cut short,
 * so a record with a NUL is damaged (dropped, even with a matching CRC)
 * and a header with one is reported as damaged, not read. */
START_TEST(journal_nul_bytes) {
  const char *p = kx_test_path("nul.journal");
  static const char rec[] = "1,a\0b";
  char line[64];
  int n = snprintf(line, sizeof line, "\t%08x\n", (unsigned)kx_crc32(rec, sizeof rec - 1));
  FILE *fp = fopen(p, "w");
  ck_assert_ptr_nonnull(fp);
  fputs("test header\nrecords:\n0,fine\t", fp);
  fprintf(fp, "%08x\n", (unsigned)kx_crc32("0,fine", 6));
  fwrite(rec, 1, sizeof rec - 1, fp);
  fwrite(line, 1, (size_t)n, fp);
  fclose(fp);
  kx_journal_contents c;
  ck_assert_int_eq(kx_journal_read(p, &c), 0);
  ck_assert_int_eq(c.n, 1);
  ck_assert_int_eq(c.dropped, 1);
  ck_assert_int_eq(c.damaged_header, 0);
  kx_journal_contents_free(&c);
  fp = fopen(p, "w");
  fwrite("test\0header\nrecords:\n", 1, 21, fp);
  fclose(fp);
  ck_assert_int_eq(kx_journal_read(p, &c), 0);
  ck_assert_ptr_null(c.header);
  ck_assert_int_eq(c.damaged_header, 1);
  kx_journal_contents_free(&c);
}
END_TEST

START_TEST(journal_is_locked_while_open) {
  const char *p = kx_test_path("c.journal");
  write_journal(p, 1);
  kx_journal j;
  kx_journal_contents c;
  ck_assert_int_eq(kx_journal_open(&j, p, 0, &c), 0);
  kx_journal_contents_free(&c);
  /* flock is per open file description: a second open, even in this
   * process, is refused */
  kx_journal j2;
  ck_assert_int_ne(kx_journal_open(&j2, p, 0, &c), 0);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "in use by another running sweep"));
  kx_journal_close(&j);
  ck_assert_int_eq(kx_journal_open(&j2, p, 0, &c), 0);
  kx_journal_contents_free(&c);
  kx_journal_close(&j2);
}
END_TEST

START_TEST(shard_specs) {
  size_t i, n;
  ck_assert_int_eq(kx_parse_shard("1/1", &i, &n), 0);
  ck_assert_int_eq(i, 1);
  ck_assert_int_eq(n, 1);
  ck_assert_int_eq(kx_parse_shard("7/8", &i, &n), 0);
  ck_assert_int_eq(i, 7);
  ck_assert_int_eq(n, 8);
  const char *bad[] = {"3/2", "0/0", "0/4", "x", "1/", "/2", "1/2/3", "-1/2", "", "a/b", "1.5/2"};
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
    ck_assert_msg(kx_parse_shard(bad[k], &i, &n) != 0, "'%s' accepted", bad[k]);
}
END_TEST

/* A grid's fingerprint and spec, from the real grid code. */
static void small_grid(kx_sweep *g) {
  kx_sweep_defaults(g);
  kx_spec *s = &g->grid;
  ck_assert_int_eq(kx_split_list("prf", "schemes", &s->schemes, &s->n_schemes), 0);
  s->m[0] = 8;
  s->m[1] = 16;
  s->n_m = 2;
  s->seeds[0] = 0;
  s->seeds[1] = 1;
  s->n_seeds = 2;
  s->norms[0] = (kx_norm_spec){1, 1};
  s->n_norms = 1;
  ck_assert_int_eq(kx_sweep_prepare(g), 0);
}

START_TEST(header_round_trip_and_spec_diff) {
  kx_sweep g;
  small_grid(&g);
  char *h = kx_sweep_header(g.fingerprint, 4, 2, 3, g.spec);
  ck_assert_ptr_nonnull(h);
  uint64_t fp;
  size_t np, si, sn;
  char *spec;
  ck_assert_int_eq(kx_sweep_parse_header(h, &fp, &np, &si, &sn, &spec), 0);
  ck_assert_uint_eq(fp, g.fingerprint);
  ck_assert_int_eq(np, 4);
  ck_assert_int_eq(si, 2);
  ck_assert_int_eq(sn, 3);
  ck_assert_str_eq(spec, g.spec);
  free(spec);
  /* every single-byte change of the header is refused (checksum, or a
   * field that no longer parses), never accepted with other values */
  size_t len = strlen(h) - strlen("records:\n");
  for (size_t at = 0; at < len; at++) {
    char *bad = strdup(h);
    bad[at] = bad[at] == '7' ? '8' : '7';
    spec = NULL;
    ck_assert_msg(kx_sweep_parse_header(bad, &fp, &np, &si, &sn, &spec) != 0, "byte %zu changed: accepted", at);
    free(spec);
    free(bad);
  }
  free(h);
  /* impossible shard fields, even with a correct checksum */
  const size_t shards[][3] = {{0, 0, 4}, {1, 0, 4}, {0, 4, 4}, {5, 4, 4}, {1, 5, 4}, {1, 1, 0}};
  for (size_t k = 0; k < sizeof shards / sizeof shards[0]; k++) {
    h = kx_sweep_header(g.fingerprint, shards[k][2], shards[k][0], shards[k][1], g.spec);
    spec = NULL;
    ck_assert_msg(kx_sweep_parse_header(h, &fp, &np, &si, &sn, &spec) != 0, "shard %zu/%zu of %zu accepted",
                  shards[k][0], shards[k][1], shards[k][2]);
    free(spec);
    free(h);
  }
  /* a fingerprint that is not the spec's */
  h = kx_sweep_header(g.fingerprint ^ 1, 4, 1, 1, g.spec);
  ck_assert_int_ne(kx_sweep_parse_header(h, &fp, &np, &si, &sn, &spec), 0);
  free(h);
  kx_sweep_free(&g);
  kx_spec_free(&g.grid);
  ck_assert_int_ne(kx_sweep_parse_header("something else\nrecords:\n", &fp, &np, &si, &sn, &spec), 0);
  char diff[256];
  kx_sweep_spec_diff("kernel=softmax;m=8,16;seeds=0,1", "A", "kernel=softmax;m=8,32;seeds=0,1", "B", diff,
                     sizeof diff);
  ck_assert_str_eq(diff, "m is '8,16' in A but '8,32' in B");
  ck_assert_int_eq(kx_sweep_record_point("17,synthetic:norm=1,-1"), 17);
  ck_assert_int_eq(kx_sweep_record_point("x,1"), -1);
  ck_assert_int_eq(kx_sweep_record_point("12"), -1);
}
END_TEST

static void add(kx_results *r, const char *scheme, size_t m, uint64_t seed, int head, double value) {
  kx_result_row w = {.layer = 0, .head = head, .m = m, .seed = seed, .metric = KX_METRIC_KERNEL_REL_FRO,
                     .value = value, .q_norm = 1, .k_norm = 1};
  snprintf(w.input, sizeof w.input, "in");
  snprintf(w.kernel, sizeof w.kernel, "softmax");
  snprintf(w.scheme, sizeof w.scheme, "%s", scheme);
  ck_assert_int_eq(kx_results_add(r, &w), 0);
}

START_TEST(summary_t_interval) {
  kx_results r = {0};
  /* per seed the two heads average to 1, 2, 3 */
  add(&r, "prf", 64, 2, 0, 3.5);
  add(&r, "prf", 64, 0, 0, 0.5);
  add(&r, "prf", 64, 1, 1, 2.0);
  add(&r, "prf", 64, 0, 1, 1.5);
  add(&r, "prf", 64, 1, 0, 2.0);
  add(&r, "prf", 64, 2, 1, 2.5);
  kx_summary_row *S;
  size_t n;
  ck_assert_int_eq(kx_summarise(&r, &S, &n), 0);
  ck_assert_int_eq(n, 1);
  ck_assert_int_eq(S[0].n_seeds, 3);
  ck_assert_double_eq_tol(S[0].mean, 2.0, 1e-15);
  /* sample sd 1, se = 1/sqrt(3); t(0.975, 2) = 4.302652729911275 */
  ck_assert_double_eq_tol(S[0].se, 1 / sqrt(3.0), 1e-15);
  ck_assert_double_eq_tol(S[0].ci_hi, 2.0 + 4.302652729911275 / sqrt(3.0), 1e-9);
  ck_assert_double_eq_tol(S[0].ci_lo, 2.0 - 4.302652729911275 / sqrt(3.0), 1e-9);
  free(S);
  kx_results_free(&r);
}
END_TEST

START_TEST(slopes_of_power_laws) {
  kx_results r = {0};
  /* exact power laws: error = 3 m^-1/2 (and 5 m^-1), seeds identical */
  for (size_t m = 8; m <= 1024; m *= 2)
    for (uint64_t s = 0; s < 3; s++) {
      add(&r, "mc", m, s, 0, 3 / sqrt((double)m));
      add(&r, "qmc", m, s, 0, 5 / (double)m);
    }
  kx_slope_row *L;
  size_t n;
  ck_assert_int_eq(kx_fit_slopes(&r, &L, &n), 0);
  ck_assert_int_eq(n, 2);
  ck_assert_str_eq(L[0].scheme, "mc"); /* first-appearance order */
  ck_assert_double_eq_tol(L[0].slope, -0.5, 1e-12);
  ck_assert_double_eq_tol(L[0].intercept, log(3.0), 1e-12);
  ck_assert_double_le(L[0].slope_se, 1e-12);
  ck_assert_int_eq(L[0].n_m, 8);
  ck_assert_int_eq(L[0].n_obs, 24);
  ck_assert_double_eq_tol(L[1].slope, -1.0, 1e-12);
  free(L);
  /* one m value: no slope */
  kx_results one = {0};
  for (uint64_t s = 0; s < 3; s++) add(&one, "mc", 64, s, 0, 0.1 + 0.01 * (double)s);
  ck_assert_int_eq(kx_fit_slopes(&one, &L, &n), 0);
  ck_assert(isnan(L[0].slope));
  free(L);
  kx_results_free(&one);
  kx_results_free(&r);
}
END_TEST


/* Fitted weights at input norms where the features overflow a double
 * (d = 8, |q| = |k| = 10: feature/kernel ratios up to e^100 and more).  The
 * fit minimises (1/P) sum_p (Khat_p/K_p - 1)^2 + ridge/m |beta - 1|^2 over
 * beta >= 0; beta = 0 is feasible with objective 1 + ridge, so at the
 * solver's optimum the data term alone is at most 1 + ridge.  With every
 * (q, k) pair as calibration set the data term is computable here, in the
 * log domain, from the fitted map itself. */
START_TEST(weight_fit_at_large_norms) {
  const size_t n = 24, d = 8;
  double q[24 * 8], k[24 * 8], v[24 * 8];
  kx_norm_spec norm = {10, 10};
  ck_assert_int_eq(kx_synthetic_qkv(n, d, d, norm, 3, q, k, v), 0);
  const char *schemes[] = {"wdcf", "wdcf-norm", "wpff-sobol"};
  const size_t ms[] = {8, 64, 256};
  for (size_t si = 0; si < 3; si++)
    for (size_t mi = 0; mi < 3; mi++)
      for (uint64_t seed = 0; seed < 3; seed++) {
        kx_fmap_options o;
        kx_fmap_default_options(&o);
        o.calib_q = q;
        o.calib_k = k;
        o.n_calib_q = o.n_calib_k = n;
        o.calib_all_pairs = 1;
        size_t m = ms[mi];
        kx_fmap *f = kx_fmap_create(schemes[si], d, m, seed, &o);
        ck_assert_msg(f != NULL, "%s m=%zu seed=%d: %s", schemes[si], m, (int)seed, kx_error_message());
        double *lq = malloc(n * m * sizeof *lq), *lk = malloc(n * m * sizeof *lk);
        ck_assert_int_eq(kx_fmap_apply_log(f, n, q, lq), 0);
        ck_assert_int_eq(kx_fmap_apply_log(f, n, k, lk), 0);
        double data = 0;
        for (size_t a = 0; a < n; a++)
          for (size_t b = 0; b < n; b++) {
            double top = -INFINITY, s = 0, dot = 0;
            for (size_t i = 0; i < m; i++)
              if (lq[a * m + i] + lk[b * m + i] > top) top = lq[a * m + i] + lk[b * m + i];
            for (size_t i = 0; i < m && top > -INFINITY; i++) s += exp(lq[a * m + i] + lk[b * m + i] - top);
            for (size_t j = 0; j < d; j++) dot += q[a * d + j] * k[b * d + j];
            double log_ratio = top > -INFINITY ? top + log(s) - dot : -INFINITY;
            double r = exp(log_ratio) - 1;
            data += r * r;
          }
        data /= (double)(n * n);
        /* 1e-3 is the default ridge; 1e-9 covers the solver's stopping
         * tolerance (KKT violation 1e-9 relative) */
        ck_assert_msg(data <= 1 + 1e-3 + 1e-9, "%s m=%zu seed=%d: calibration error %g > 1 + ridge",
                      schemes[si], m, (int)seed, data);
        free(lq);
        free(lk);
        kx_fmap_free(f);
      }
}
END_TEST

/* A kill at any moment while a group of files is replaced leaves, after
 * the recovery the next run does, every file old or every file new, never
 * a mix.  The child replaces three files (each of them large enough that
 * writing takes a while) and is killed after a growing delay. */
static void fill(const char *path, char c, size_t n) {
  FILE *fp = fopen(path, "w");
  ck_assert_ptr_nonnull(fp);
  for (size_t i = 0; i < n; i++) fputc(c, fp);
  fclose(fp);
}

static char first_byte(const char *path) {
  FILE *fp = fopen(path, "r");
  ck_assert_ptr_nonnull(fp);
  int c = fgetc(fp);
  fclose(fp);
  return (char)c;
}

START_TEST(commit_group_all_old_or_all_new) {
  char out[520], p1[520], p2[520];
  snprintf(out, sizeof out, "%s", kx_test_path("grp.csv"));
  snprintf(p1, sizeof p1, "%s", kx_test_path("grp.summary.csv"));
  snprintf(p2, sizeof p2, "%s", kx_test_path("grp.slopes.csv"));
  const char *paths[] = {out, p1, p2};
  size_t saw_old = 0, saw_new = 0;
  /* Kill delays from 0 up in 1.5 ms steps; on a loaded machine the writer
   * may need longer than 40 steps to reach its commit, so the delays keep
   * growing (by half each round after the 40th, up to about 10 s) until
   * both outcomes have been seen. */
  useconds_t delay = 0;
  for (int round = 0; round < 40 || ((!saw_old || !saw_new) && delay < 10000000u); round++) {
    delay = round < 40 ? (useconds_t)(round * 1500) : delay + delay / 2;
    for (size_t i = 0; i < 3; i++) fill(paths[i], 'o', 10);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
      kx_commit_group g;
      if (kx_commit_open(&g, out, paths, 3)) _exit(2);
      for (size_t i = 0; i < 3; i++)
        for (size_t k = 0; k < 200000; k++) fputc('n', g.fp[i]);
      _exit(kx_commit_finish(&g) ? 2 : 0);
    }
    usleep(delay);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    int repaired;
    ck_assert_int_eq(kx_commit_recover(out, paths, 3, &repaired), 0);
    char c0 = first_byte(paths[0]);
    for (size_t i = 1; i < 3; i++) ck_assert_msg(first_byte(paths[i]) == c0, "round %d: a mix of old and new", round);
    saw_old += c0 == 'o';
    saw_new += c0 == 'n';
    char fresh[540];
    for (size_t i = 0; i < 3; i++) {
      snprintf(fresh, sizeof fresh, "%s.new", paths[i]);
      ck_assert_msg(access(fresh, F_OK) != 0, "round %d: %s left behind", round, fresh);
    }
  }
  /* the delays must have covered both outcomes for the test to say anything */
  ck_assert_uint_gt(saw_old, 0);
  ck_assert_uint_gt(saw_new, 0);
}
END_TEST

int main(void) {
  if (kx_test_tmpdir("sweep")) return 1;
  Suite *s = kx_test_suite("sweep");
  TCase *tc = kx_test_case(s, "sweep");
  kx_test_add(tc, (const TTest *const[]){crc32_check_value, journal_round_trip_and_torn_tail,
                                         journal_damaged_line_is_dropped, journal_nul_bytes,
                                         journal_is_locked_while_open, shard_specs,
                                         header_round_trip_and_spec_diff, summary_t_interval,
                                         slopes_of_power_laws, weight_fit_at_large_norms,
                                         commit_group_all_old_or_all_new, NULL});
  int status = kx_test_run(s);
  if (kx_test_rmtree()) fprintf(stderr, "could not remove %s\n", kx_test_dir());
  return status;
}
