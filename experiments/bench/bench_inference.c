#include "experiments/bench/bench_inference.h"

#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/kx_atomic.h"
#include "core/kx_error.h"
#include "core/kx_seed.h"
#include "experiments/model/dec_ckpt.h"
#include "experiments/model/dec_infer.h"

static double clock_s(clockid_t id) {
  struct timespec t;
  clock_gettime(id, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
static double now(void) { return clock_s(CLOCK_MONOTONIC); }
/* CPU time of the process (all its threads): on a machine shared with
 * other work it varies far less than the wall clock. */
static double cpu_now(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

/* Resets the process's peak resident set (Linux >= 4.0); -1 if not possible. */
static int reset_peak_rss(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (!f) return -1;
  int bad = fputs("5", f) < 0;
  return fclose(f) || bad ? -1 : 0;
}

/* VmHWM (peak) or VmRSS (now) of /proc/self/status, in bytes; 0 if unknown. */
static size_t rss_bytes(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256], fmt[32];
  snprintf(fmt, sizeof fmt, "%s: %%zu kB", field);
  size_t kib = 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, fmt, &kib) == 1) break;
  fclose(f);
  return kib * 1024;
}

int kx_bench_make_model(kx_decoder *m, const char *kind, const kx_bench_model *ms, size_t ctx) {
  if (ms->checkpoint) {
    kx_dec_vocab v;
    int rc = kx_dec_ckpt_load(ms->checkpoint, m, &v, NULL, NULL);
    if (!rc) kx_dec_vocab_free(&v);
    return rc;
  }
  kx_dec_config c;
  kx_dec_config_default(&c);
  c.vocab = ms->vocab;
  c.layers = ms->layers;
  c.heads = ms->heads;
  c.width = ms->width;
  c.ctx = ctx;
  int rc = kx_dec_config_set_attention(&c, kind);
  if (!rc) rc = kx_dec_create(m, &c);
  if (!rc && (rc = kx_dec_init_params(m, ms->seed))) kx_dec_free(m);
  return rc;
}

size_t kx_bench_decode_steps(size_t length) {
  return KX_BENCH_WARMUP + (length / 16 > KX_BENCH_MIN_STEPS ? length / 16 : KX_BENCH_MIN_STEPS);
}

size_t kx_bench_position_ctx(size_t max_length) {
  size_t n = max_length + kx_bench_decode_steps(max_length);
  return n < KX_BENCH_MAX_TRAINED_CTX ? n : KX_BENCH_MAX_TRAINED_CTX;
}

int kx_bench_measure(kx_decoder *m, size_t L, double seconds, uint64_t seed, kx_bench_point *pt) {
  size_t cap_steps = kx_bench_decode_steps(L), V = m->cfg.vocab;
  int *tok = kx_malloc((L + cap_steps) * sizeof(int));
  if (!tok) return KX_ENOMEM;
  for (size_t i = 0; i < L + cap_steps; i++) tok[i] = (int)(kx_seed_derive(seed, i) % V);
  /* Freed memory of earlier points back to the system, so that the peak
   * is this point's: model + state + work buffers (base_rss: the model). */
  malloc_trim(0);
  reset_peak_rss();
  pt->base_rss = rss_bytes("VmRSS");
  kx_dec_infer s;
  int rc = kx_dec_infer_create(&s, m, L + cap_steps);
  if (rc) {
    free(tok);
    return rc;
  }
  double t0 = now();
  rc = kx_dec_infer_feed(&s, tok, L, NULL);
  double t1 = now(), t_prefill = t1 - t0;
  /* Untimed warm-up steps (first-touch page faults, caches). */
  for (size_t w = 0; w < KX_BENCH_WARMUP && !rc; w++) rc = kx_dec_infer_feed(&s, tok + L + w, 1, NULL);
  t1 = now();
  double c1 = cpu_now();
  size_t n = KX_BENCH_WARMUP;
  while (!rc && n < cap_steps) {
    rc = kx_dec_infer_feed(&s, tok + L + n, 1, NULL);
    n++;
    if (n >= KX_BENCH_WARMUP + KX_BENCH_MIN_STEPS && now() - t1 >= seconds) break;
  }
  double t2 = now(), c2 = cpu_now();
  pt->length = L;
  pt->steps = n - KX_BENCH_WARMUP;
  pt->prefill_s = t_prefill;
  pt->ms_per_token = 1e3 * (t2 - t1) / (double)pt->steps;
  pt->cpu_ms_per_token = 1e3 * (c2 - c1) / (double)pt->steps;
  pt->alloc_bytes = kx_dec_infer_bytes(m, L + cap_steps, &pt->state_bytes);
  pt->peak_rss = rss_bytes("VmHWM");
  kx_dec_infer_free(&s);
  free(tok);
  return rc;
}

int kx_bench_generation(kx_decoder *m, size_t length, const int *tok, size_t n_tok, int repeats, double *tok_s) {
  double best = INFINITY;
  int rc = 0;
  for (int r = 0; !rc && r < repeats; r++) {
    kx_dec_infer s;
    if ((rc = kx_dec_infer_create(&s, m, length))) break;
    double t0 = now();
    for (size_t i = 0; !rc && i < length; i++) rc = kx_dec_infer_feed(&s, &tok[i % n_tok], 1, NULL);
    double t = now() - t0;
    kx_dec_infer_free(&s);
    if (t < best) best = t;
  }
  if (!rc) *tok_s = (double)length / best;
  return rc;
}

int kx_bench_write_csv(const char *path, const kx_bench_point *pts, size_t n) {
  kx_atomic_file f;
  int rc = kx_atomic_open(&f, path);
  if (rc) return rc;
  fprintf(f.fp, "kind,length,decode_steps,prefill_s,prefill_tokens_per_s,ms_per_token,tokens_per_s,state_bytes,"
                "alloc_bytes,base_rss_bytes,peak_rss_bytes,cpu_ms_per_token\n");
  for (size_t i = 0; i < n; i++) {
    const kx_bench_point *p = &pts[i];
    fprintf(f.fp, "%s,%zu,%zu,%.6g,%.6g,%.6g,%.6g,%zu,%zu,%zu,%zu,%.6g\n", p->kind, p->length, p->steps,
            p->prefill_s, (double)p->length / p->prefill_s, p->ms_per_token, 1e3 / p->ms_per_token, p->state_bytes,
            p->alloc_bytes, p->base_rss, p->peak_rss, p->cpu_ms_per_token);
  }
  return kx_atomic_commit(&f);
}

int kx_bench_figure4(const char *csv, const char *base, const char *const *kinds, size_t nk) {
  static const char *fmt[2][2] = {{"png", "pngcairo size 1400,1000 font ',11'"},
                                  {"svg", "svg size 1400,1000 font ',11'"}};
  char list[512] = "";
  for (size_t k = 0; k < nk; k++) {
    if (k) strncat(list, " ", sizeof list - strlen(list) - 1);
    strncat(list, kinds[k], sizeof list - strlen(list) - 1);
  }
  for (int f = 0; f < 2; f++) {
    FILE *gp = popen("gnuplot", "w");
    if (!gp) return kx_fail(KX_EIO, "cannot start gnuplot (use --no-figure to skip the figure)");
    fprintf(gp,
            "set terminal %s\nset output '%s.%s'\nset datafile separator ','\nset key top left font ',9'\n"
            "set logscale x 2\nset grid\nset xlabel 'context length (tokens)'\nkinds = '%s'\n"
            "f = '%s'\nset multiplot layout 2,2 title 'Figure 4: recurrent inference cost (as measured, see README)'\n"
            "set logscale y\nset title '(a) decoding state / KV cache (allocator count)'\nset ylabel 'MiB'\n"
            "plot for [k in kinds] f using 2:(strcol(1) eq k ? $8/1048576 : NaN) skip 1 with linespoints title k\n"
            "set title '(b) peak resident set of the process (model included)'\nset ylabel 'MiB'\n"
            "plot for [k in kinds] f using 2:(strcol(1) eq k ? $11/1048576 : NaN) skip 1 with linespoints title k\n"
            /* the linear kinds' throughputs run flat across the top and only softmax falls, at the
               right: a y range reaching 30x below the slowest point leaves the bottom left to the key */
            "set title '(c) decoding throughput'\nset ylabel 'tokens/s'\nset key bottom left\n"
            "stats f using 7 skip 1 nooutput\nset yrange [STATS_min / 30 : STATS_max * 2]\n"
            "plot for [k in kinds] f using 2:(strcol(1) eq k ? $7 : NaN) skip 1 with linespoints title k\n"
            "set key top left\nset autoscale y\nset title '(d) prefill time of the prompt'\nset ylabel 's'\n"
            "plot for [k in kinds] f using 2:(strcol(1) eq k ? $4 : NaN) skip 1 with linespoints title k\n"
            "unset multiplot\n",
            fmt[f][1], base, fmt[f][0], list, csv);
    if (pclose(gp)) return kx_fail(KX_EIO, "gnuplot failed drawing %s.%s (use --no-figure to skip)", base, fmt[f][0]);
  }
  return 0;
}

size_t kx_bench_crossover(const kx_bench_point *pts, size_t n, const char *kind, int which, size_t *compared) {
  size_t from = 0;
  *compared = 0;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(pts[i].kind, kind)) continue;
    for (size_t j = 0; j < n; j++) {
      if (strcmp(pts[j].kind, "softmax") || pts[j].length != pts[i].length) continue;
      double a = which ? pts[i].prefill_s : pts[i].ms_per_token, b = which ? pts[j].prefill_s : pts[j].ms_per_token;
      (*compared)++;
      if (a < b && !from) from = pts[i].length;
      if (a >= b) from = 0;
    }
  }
  return from;
}
