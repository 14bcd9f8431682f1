/* kapprox bench-inference: the cost of generating one token against the
 * context length, for every attention kind (Figure 4): per-token latency and
 * tokens/s of recurrent decoding (dec_infer.h), prefill time, and memory (the
 * allocator's count of the decoding state or KV cache, and the peak resident
 * set of the process during the point, VmHWM after resetting it). */
#include <getopt.h>
#include <malloc.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "core/kx_seed.h"
#include "experiments/commands/commands.h"
#include "experiments/model/dec_ckpt.h"
#include "experiments/model/dec_infer.h"
#include "experiments/model/dec_layers.h"

/* MAX_TRAINED_CTX: the largest --ctx of kapprox train (dec_config.c), the
 * most positions a cosformer or linformer model can define. */
enum { MAX_LENGTHS = 32, MAX_KINDS = 16, MIN_STEPS = 16, WARMUP = 4, MAX_TRAINED_CTX = 8192 };

typedef struct {
  const char *kind;
  size_t length, steps, ctx;
  double prefill_s, ms_per_token;
  size_t state_bytes, alloc_bytes, base_rss, peak_rss;
} point;

typedef struct {
  const char *checkpoint;
  size_t layers, heads, width, vocab;
  uint64_t seed;
} model_spec;

static void usage(FILE *out) {
  fprintf(out,
          "usage: kapprox bench-inference [options]\n\n"
          "Times token-by-token generation against the context length: for each kind and\n"
          "length L, a prompt of L tokens is prefilled (parallel form, chunks of %d), then\n"
          "tokens are fed one at a time through the recurrent state (KV cache for softmax)\n"
          "for --seconds (after %d untimed steps; at least %d timed, at most L/16), so the\n"
          "context stays within L .. 1.07 L.  Writes one CSV row per (kind, length), prints the crossover\n"
          "lengths where a linear kind starts to beat softmax, and draws Figure 4.\n\n"
          "  --checkpoint FILE    time this trained model (default: a freshly initialised\n"
          "                       model of each kind; the weights do not change the cost)\n"
          "  --attention LIST     kinds, comma-separated (default: every kind)\n"
          "  --lengths LIST       context lengths [256,1024,4096,16384,65536]\n"
          "  --softmax-max N      longest length for softmax [16384]\n"
          "  --layers N --heads N --width N   model size [4, 4, 256 as kapprox train]\n"
          "  --seconds X          decoding time per point [2]\n"
          "  --threads N          OpenMP threads [1]: on a shared, loaded machine more\n"
          "                       threads wait for each other at every barrier\n"
          "  --seed N             weights and tokens [0]\n"
          "  --out FILE           CSV [inference.csv]\n"
          "  --figure BASE        Figure 4 as BASE.png and BASE.svg (gnuplot) [figure4]\n"
          "  --no-figure          only the CSV\n\n"
          "Lengths that would not fit in memory (MemAvailable) or that a kind does not\n"
          "define (cosformer, linformer beyond a checkpoint's context) are refused before\n"
          "anything runs.\n",
          KX_DEC_INFER_CHUNK, WARMUP, MIN_STEPS);
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

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

static int make_model(kx_decoder *m, const char *kind, const model_spec *ms, size_t ctx) {
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
  snprintf(c.attn_kind, sizeof c.attn_kind, "%s", kind);
  int rc = kx_dec_create(m, &c);
  if (!rc && (rc = kx_dec_init_params(m, ms->seed))) kx_dec_free(m);
  return rc;
}

/* Decoding steps at most (warm-up included). */
static size_t steps_for(size_t length) { return WARMUP + (length / 16 > MIN_STEPS ? length / 16 : MIN_STEPS); }

static int measure(kx_decoder *m, size_t L, double seconds, uint64_t seed, point *pt) {
  size_t cap_steps = steps_for(L), V = m->cfg.vocab;
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
  for (size_t w = 0; w < WARMUP && !rc; w++) rc = kx_dec_infer_feed(&s, tok + L + w, 1, NULL);
  t1 = now();
  size_t n = WARMUP;
  while (!rc && n < cap_steps) {
    rc = kx_dec_infer_feed(&s, tok + L + n, 1, NULL);
    n++;
    if (n >= WARMUP + MIN_STEPS && now() - t1 >= seconds) break;
  }
  double t2 = now();
  pt->length = L;
  pt->steps = n - WARMUP;
  pt->prefill_s = t_prefill;
  pt->ms_per_token = 1e3 * (t2 - t1) / (double)pt->steps;
  pt->alloc_bytes = kx_dec_infer_bytes(m, L + cap_steps, &pt->state_bytes);
  pt->peak_rss = rss_bytes("VmHWM");
  kx_dec_infer_free(&s);
  free(tok);
  return rc;
}

static int write_csv(const char *path, const point *pts, size_t n) {
  kx_atomic_file f;
  int rc = kx_atomic_open(&f, path);
  if (rc) return rc;
  fprintf(f.fp, "kind,length,decode_steps,prefill_s,prefill_tokens_per_s,ms_per_token,tokens_per_s,state_bytes,"
                "alloc_bytes,base_rss_bytes,peak_rss_bytes\n");
  for (size_t i = 0; i < n; i++) {
    const point *p = &pts[i];
    fprintf(f.fp, "%s,%zu,%zu,%.6g,%.6g,%.6g,%.6g,%zu,%zu,%zu,%zu\n", p->kind, p->length, p->steps, p->prefill_s,
            (double)p->length / p->prefill_s, p->ms_per_token, 1e3 / p->ms_per_token, p->state_bytes,
            p->alloc_bytes, p->base_rss, p->peak_rss);
  }
  return kx_atomic_commit(&f);
}

/* Figure 4: four panels against the length, one line per kind. */
static int figure(const char *csv, const char *base, const char *const *kinds, size_t nk) {
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
            "set title '(c) decoding throughput'\nset ylabel 'tokens/s'\n"
            "plot for [k in kinds] f using 2:(strcol(1) eq k ? $7 : NaN) skip 1 with linespoints title k\n"
            "set title '(d) prefill time of the prompt'\nset ylabel 's'\n"
            "plot for [k in kinds] f using 2:(strcol(1) eq k ? $4 : NaN) skip 1 with linespoints title k\n"
            "unset multiplot\n",
            fmt[f][1], base, fmt[f][0], list, csv);
    if (pclose(gp)) return kx_fail(KX_EIO, "gnuplot failed drawing %s.%s (use --no-figure to skip)", base, fmt[f][0]);
  }
  return 0;
}

/* Smallest measured length from which kind k beats softmax (and keeps doing
 * so at every longer measured length), for decoding (which = 0) or prefill. */
static void crossover(const point *pts, size_t n, const char *kind, int which) {
  size_t from = 0, compared = 0;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(pts[i].kind, kind)) continue;
    for (size_t j = 0; j < n; j++) {
      if (strcmp(pts[j].kind, "softmax") || pts[j].length != pts[i].length) continue;
      double a = which ? pts[i].prefill_s : pts[i].ms_per_token, b = which ? pts[j].prefill_s : pts[j].ms_per_token;
      compared++;
      if (a < b && !from) from = pts[i].length;
      if (a >= b) from = 0;
    }
  }
  if (!compared)
    printf("  %-14s %-8s no common length with softmax\n", kind, which ? "prefill" : "decoding");
  else if (from)
    printf("  %-14s %-8s faster than softmax from %zu tokens on\n", kind, which ? "prefill" : "decoding", from);
  else
    printf("  %-14s %-8s not faster than softmax at the longest common length\n", kind,
           which ? "prefill" : "decoding");
}

int cmd_bench_inference(int argc, char **argv) {
  const char *cmd = "bench-inference", *out = "inference.csv", *fig = "figure4", *kinds_arg = NULL;
  const char *kinds[MAX_KINDS];
  size_t lengths[MAX_LENGTHS], n_len = 5, nk = 0, softmax_max = 16384, kctx[MAX_KINDS];
  static const size_t default_lengths[] = {256, 1024, 4096, 16384, 65536};
  memcpy(lengths, default_lengths, sizeof default_lengths);
  model_spec ms = {NULL, 4, 4, 256, 64, 0};
  double seconds = 2.0;
  size_t threads = 1;
  int no_fig = 0;
  enum { O_CK = 256, O_ATTN, O_LEN, O_SMAX, O_LAYERS, O_HEADS, O_WIDTH, O_SEC, O_SEED, O_OUT, O_FIG, O_NOFIG, O_THREADS };
  static const struct option lo[] = {
      {"checkpoint", 1, 0, O_CK}, {"attention", 1, 0, O_ATTN}, {"lengths", 1, 0, O_LEN},
      {"softmax-max", 1, 0, O_SMAX}, {"layers", 1, 0, O_LAYERS}, {"heads", 1, 0, O_HEADS},
      {"width", 1, 0, O_WIDTH}, {"seconds", 1, 0, O_SEC}, {"seed", 1, 0, O_SEED},
      {"out", 1, 0, O_OUT}, {"figure", 1, 0, O_FIG}, {"no-figure", 0, 0, O_NOFIG}, {"threads", 1, 0, O_THREADS},
      {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
    int bad = 0;
    switch (c) {
      case O_CK: ms.checkpoint = optarg; break;
      case O_ATTN: kinds_arg = optarg; break;
      case O_LEN: bad = kx_parse_size_list(optarg, "--lengths", 1, (size_t)1 << 40, lengths, MAX_LENGTHS, &n_len); break;
      case O_SMAX: bad = kx_parse_size(optarg, "--softmax-max", 1, (size_t)1 << 40, &softmax_max); break;
      case O_LAYERS: bad = kx_parse_size(optarg, "--layers", 1, 64, &ms.layers); break;
      case O_HEADS: bad = kx_parse_size(optarg, "--heads", 1, 64, &ms.heads); break;
      case O_WIDTH: bad = kx_parse_size(optarg, "--width", 1, 4096, &ms.width); break;
      case O_SEC:
        bad = kx_parse_double(optarg, "--seconds", &seconds);
        if (!bad && !(seconds > 0 && seconds <= 3600)) bad = kx_fail(KX_EINVAL, "--seconds must be in (0, 3600]");
        break;
      case O_SEED: bad = kx_parse_u64(optarg, "--seed", &ms.seed); break;
      case O_OUT: out = optarg; break;
      case O_FIG: fig = optarg; break;
      case O_NOFIG: no_fig = 1; break;
      case O_THREADS: bad = kx_parse_size(optarg, "--threads", 1, 256, &threads); break;
      case 'h': usage(stdout); return 0;
      default: return kx_cli_option_error(cmd, c, argv);
    }
    if (bad) return kx_cli_value_error(cmd, NULL);
  }
  if (optind < argc) return kx_cli_extra_operand(cmd, argv[optind], NULL);
  /* Kinds: the list, or every kind with recurrent decoding; a checkpoint has one. */
  static char kbuf[256];
  snprintf(kbuf, sizeof kbuf, "%s", kinds_arg ? kinds_arg : kx_dec_attn_names());
  for (char *save = NULL, *t = strtok_r(kbuf, ", ", &save); t && nk < MAX_KINDS; t = strtok_r(NULL, ", ", &save)) {
    if (!kx_dec_attn_find(t)) {
      kx_cli_error(cmd, "unknown --attention '%s' (known: %s)", t, kx_dec_attn_names());
      return 2;
    }
    kinds[nk++] = t;
  }
  size_t max_len = 0;
  for (size_t i = 0; i < n_len; i++) max_len = lengths[i] > max_len ? lengths[i] : max_len;
  if (kx_check_output_path(out, "--out")) {
    kx_cli_error(cmd, "%s", kx_error_message());
    return 2;
  }
  kx_dec_threads_init();
  omp_set_num_threads((int)threads);
  if (ms.checkpoint) {
    kx_decoder m;
    if (make_model(&m, NULL, &ms, 0)) {
      kx_cli_error(cmd, "%s", kx_error_message());
      return 1;
    }
    static char kname[KX_DEC_NAME_MAX + 256];
    kx_dec_config_label(&m.cfg, kname, sizeof kname); /* a layer hybrid: "performer+sm0" */
    kinds[0] = kname;
    nk = 1;
    kx_dec_free(&m);
  }
  /* Every point is checked (positions, memory) before any runs. */
  point *pts = kx_calloc(nk * n_len, sizeof *pts);
  size_t np = 0;
  if (!pts) return 1;
  for (size_t k = 0; k < nk; k++) {
    /* A context of one prefill chunk, except for the kinds with
     * per-position weights (cosformer, linformer): built for the longest
     * length, so that every length is defined for them. */
    kx_decoder m;
    kctx[k] = KX_DEC_INFER_CHUNK;
    if (make_model(&m, kinds[k], &ms, kctx[k])) {
      kx_cli_error(cmd, "%s", kx_error_message());
      free(pts);
      return 1;
    }
    int bounded = kx_dec_max_positions(&m) != SIZE_MAX;
    if (!ms.checkpoint && bounded) {
      kx_dec_free(&m);
      /* As long as a model can be trained (kx_dec_config_check). */
      kctx[k] = max_len + steps_for(max_len) < MAX_TRAINED_CTX ? max_len + steps_for(max_len) : MAX_TRAINED_CTX;
      if (make_model(&m, kinds[k], &ms, kctx[k])) {
        kx_cli_error(cmd, "cannot build a %s model for %zu positions: %s", kinds[k], kctx[k], kx_error_message());
        free(pts);
        return 2;
      }
    }
    for (size_t i = 0; i < n_len; i++) {
      if (!strcmp(kinds[k], "softmax") && lengths[i] > softmax_max) continue;
      if (!ms.checkpoint && bounded && lengths[i] + steps_for(lengths[i]) > kctx[k]) {
        printf("note: %s skips length %zu: it defines only the %zu positions of a model's context, at most %d\n",
               kinds[k], lengths[i], kctx[k], MAX_TRAINED_CTX);
        continue;
      }
      if (kx_dec_infer_check(&m, lengths[i] + steps_for(lengths[i]))) {
        kx_cli_error(cmd, "length %zu: %s", lengths[i], kx_error_message());
        kx_dec_free(&m);
        free(pts);
        return 2;
      }
      pts[np].kind = kinds[k];
      pts[np].ctx = kctx[k];
      pts[np++].length = lengths[i];
    }
    kx_dec_free(&m);
  }
  if (!np) {
    kx_cli_error(cmd, "nothing to measure: every length exceeds --softmax-max %zu", softmax_max);
    free(pts);
    return 2;
  }
  printf("%-14s %8s %7s %11s %11s %12s %12s %12s\n", "kind", "length", "steps", "prefill_s", "ms/token",
         "tokens/s", "state_MiB", "peakRSS_MiB");
  int rc = 0;
  for (size_t i = 0; i < np && !rc; i++) {
    kx_decoder m;
    if ((rc = make_model(&m, pts[i].kind, &ms, pts[i].ctx))) break;
    rc = measure(&m, pts[i].length, seconds, ms.seed, &pts[i]);
    kx_dec_free(&m);
    if (!rc)
      printf("%-14s %8zu %7zu %11.4g %11.4g %12.5g %12.4g %12.4g\n", pts[i].kind, pts[i].length, pts[i].steps,
             pts[i].prefill_s, pts[i].ms_per_token, 1e3 / pts[i].ms_per_token, pts[i].state_bytes / 1048576.0,
             pts[i].peak_rss / 1048576.0);
    fflush(stdout);
  }
  if (!rc) rc = write_csv(out, pts, np);
  if (!rc && nk > 1) {
    printf("crossover lengths (measured points only):\n");
    for (size_t k = 0; k < nk; k++)
      if (strcmp(kinds[k], "softmax"))
        for (int w = 0; w < 2; w++) crossover(pts, np, kinds[k], w);
  }
  if (!rc && !no_fig) rc = figure(out, fig, kinds, nk);
  free(pts);
  if (rc) {
    kx_cli_error(cmd, "%s", kx_error_message());
    return 1;
  }
  return 0;
}
