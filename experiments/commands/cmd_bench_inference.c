/* kapprox bench-inference: the cost of generating one token against the
 * context length, for every attention kind (Figure 4;
 * experiments/bench/bench_inference.h measures). */
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_atomic.h"
#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "core/kx_seed.h"
#include "experiments/bench/bench_inference.h"
#include "experiments/commands/commands.h"
#include "experiments/model/dec_infer.h"
#include "experiments/model/dec_layers.h"

enum { MAX_LENGTHS = 32, MAX_KINDS = 16, GEN_REPEATS = 3, GEN_CTX = 128 };
/* The sliding-window hybrid of the default list (docs/conversion.md). */
#define DEFAULT_HYBRID "dijiang+w16"

static void usage(FILE *out) {
  fprintf(out,
          "usage: kapprox bench-inference [options]\n\n"
          "Times token-by-token generation against the context length: for each kind and\n"
          "length L, a prompt of L tokens is prefilled (parallel form, chunks of %d), then\n"
          "tokens are fed one at a time through the recurrent state (KV cache for softmax)\n"
          "for --seconds (after %d untimed steps; at least %d timed, at most L/16), so the\n"
          "context stays within L .. 1.07 L; the wall clock and the process's CPU time per\n"
          "token (steadier on a shared machine) are both recorded.  Writes one CSV row per\n"
          "(kind, length), prints the crossover lengths where a linear kind starts to beat\n"
          "softmax, and draws Figure 4.\n\n"
          "  --checkpoint FILE    time this trained model (default: a freshly initialised\n"
          "                       model of each kind; the weights do not change the cost)\n"
          "  --attention LIST     kinds, comma-separated; KIND+wN is KIND's sliding-window\n"
          "                       hybrid with a window of N (default: every kind and\n"
          "                       %s)\n"
          "  --lengths LIST       context lengths [256,1024,4096,16384,65536]\n"
          "  --softmax-max N      longest length for softmax [16384]\n"
          "  --layers N --heads N --width N   model size [4, 4, 256 as kapprox train]\n"
          "  --seconds X          decoding time per point [2]\n"
          "  --threads N          OpenMP threads [1]: on a shared, loaded machine more\n"
          "                       threads wait for each other at every barrier\n"
          "  --seed N             weights and tokens [0]\n"
          "  --out FILE           CSV [inference.csv]\n"
          "  --figure BASE        Figure 4 as BASE.png and BASE.svg (gnuplot) [figure4]\n"
          "  --no-figure          only the CSV\n"
          "  --generate N         instead: tokens/s generating N tokens from a one-token\n"
          "                       prompt (context 1 .. N, all timed, the fastest of %d),\n"
          "                       as Table 1 measures, and each kind's speed-up over\n"
          "                       softmax; CSV kind,generate,tokens_per_s,speedup\n"
          "                       [--out generation.csv]\n\n"
          "Lengths that would not fit in memory (MemAvailable) or that a kind does not\n"
          "define (cosformer, linformer beyond a checkpoint's context) are refused before\n"
          "anything runs.\n",
          KX_DEC_INFER_CHUNK, KX_BENCH_WARMUP, KX_BENCH_MIN_STEPS, DEFAULT_HYBRID, GEN_REPEATS);
}

/* Where a linear kind starts to beat softmax, for decoding (which = 0) or prefill. */
static void print_crossover(const kx_bench_point *pts, size_t n, const char *kind, int which) {
  size_t compared, from = kx_bench_crossover(pts, n, kind, which, &compared);
  if (!compared)
    printf("  %-14s %-8s no common length with softmax\n", kind, which ? "prefill" : "decoding");
  else if (from)
    printf("  %-14s %-8s faster than softmax from %zu tokens on\n", kind, which ? "prefill" : "decoding", from);
  else
    printf("  %-14s %-8s not faster than softmax at the longest common length\n", kind,
           which ? "prefill" : "decoding");
}

/* --generate: Table 1's generation speed of each kind at the model size
 * (context GEN_CTX, or the length for the kinds with per-position
 * weights), every model built and checked before any is timed. */
static int run_generation(const char *cmd, const char *const *kinds, size_t nk, const kx_bench_model *ms,
                          size_t length, const char *out) {
  double tok_s[MAX_KINDS];
  size_t ctx[MAX_KINDS];
  for (size_t k = 0; k < nk; k++) {
    kx_decoder m;
    ctx[k] = GEN_CTX;
    if (kx_bench_make_model(&m, kinds[k], ms, ctx[k])) {
      kx_cli_error(cmd, "%s", kx_error_message());
      return 1;
    }
    if (!ms->checkpoint && kx_dec_max_positions(&m) != SIZE_MAX) { /* cosformer, linformer */
      kx_dec_free(&m);
      ctx[k] = length > GEN_CTX ? length : GEN_CTX;
      if (ctx[k] > KX_BENCH_MAX_TRAINED_CTX) {
        kx_cli_error(cmd, "%s defines at most %d positions (the longest trainable context); --generate %zu is "
                     "longer: leave %s out of --attention", kinds[k], KX_BENCH_MAX_TRAINED_CTX, length, kinds[k]);
        return 2;
      }
      if (kx_bench_make_model(&m, kinds[k], ms, ctx[k])) {
        kx_cli_error(cmd, "%s", kx_error_message());
        return 1;
      }
    }
    int bad = kx_dec_infer_check(&m, length);
    kx_dec_free(&m);
    if (bad) {
      kx_cli_error(cmd, "--generate %zu with %s: %s", length, kinds[k], kx_error_message());
      return 2;
    }
  }
  int *tok = kx_malloc(length * sizeof(int));
  if (!tok) {
    kx_cli_error(cmd, "out of memory");
    return 1;
  }
  kx_decoder probe;
  int rc = kx_bench_make_model(&probe, kinds[0], ms, ctx[0]);
  if (!rc) {
    for (size_t i = 0; i < length; i++) tok[i] = (int)(kx_seed_derive(ms->seed, i) % probe.cfg.vocab);
    kx_dec_free(&probe);
  }
  printf("%-16s %9s %12s %10s\n", "kind", "generate", "tokens/s", "speed-up");
  double softmax = NAN;
  for (size_t k = 0; !rc && k < nk; k++) {
    kx_decoder m;
    if ((rc = kx_bench_make_model(&m, kinds[k], ms, ctx[k]))) break;
    rc = kx_bench_generation(&m, length, tok, length, GEN_REPEATS, &tok_s[k]);
    kx_dec_free(&m);
    if (rc) break;
    if (!strcmp(kinds[k], "softmax")) softmax = tok_s[k];
    printf("%-16s %9zu %12.5g", kinds[k], length, tok_s[k]);
    if (isfinite(softmax)) printf(" %10.3f", tok_s[k] / softmax);
    printf("\n");
    fflush(stdout);
  }
  free(tok);
  kx_atomic_file f;
  if (!rc) rc = kx_atomic_open(&f, out);
  if (!rc) {
    fprintf(f.fp, "kind,generate,tokens_per_s,speedup\n");
    for (size_t k = 0; k < nk; k++) fprintf(f.fp, "%s,%zu,%.9g,%.9g\n", kinds[k], length, tok_s[k], tok_s[k] / softmax);
    rc = kx_atomic_commit(&f);
  }
  if (rc) {
    kx_cli_error(cmd, "%s", kx_error_message());
    return 1;
  }
  if (!isfinite(softmax)) printf("(no speed-up column: softmax is not in --attention)\n");
  return 0;
}

int cmd_bench_inference(int argc, char **argv) {
  const char *cmd = "bench-inference", *out = "inference.csv", *fig = "figure4", *kinds_arg = NULL;
  const char *kinds[MAX_KINDS];
  size_t lengths[MAX_LENGTHS], n_len = 5, nk = 0, softmax_max = 16384, kctx[MAX_KINDS];
  static const size_t default_lengths[] = {256, 1024, 4096, 16384, 65536};
  memcpy(lengths, default_lengths, sizeof default_lengths);
  kx_bench_model ms = {NULL, 4, 4, 256, 64, 0};
  double seconds = 2.0;
  size_t threads = 1;
  int no_fig = 0, out_given = 0;
  size_t generate = 0;
  enum { O_CK = 256, O_ATTN, O_LEN, O_SMAX, O_LAYERS, O_HEADS, O_WIDTH, O_SEC, O_SEED, O_OUT, O_FIG, O_NOFIG, O_THREADS,
         O_GEN };
  static const struct option lo[] = {
      {"checkpoint", 1, 0, O_CK}, {"attention", 1, 0, O_ATTN}, {"lengths", 1, 0, O_LEN},
      {"softmax-max", 1, 0, O_SMAX}, {"layers", 1, 0, O_LAYERS}, {"heads", 1, 0, O_HEADS},
      {"width", 1, 0, O_WIDTH}, {"seconds", 1, 0, O_SEC}, {"seed", 1, 0, O_SEED},
      {"out", 1, 0, O_OUT}, {"figure", 1, 0, O_FIG}, {"no-figure", 0, 0, O_NOFIG}, {"threads", 1, 0, O_THREADS},
      {"generate", 1, 0, O_GEN}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
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
      case O_OUT: out = optarg, out_given = 1; break;
      case O_FIG: fig = optarg; break;
      case O_NOFIG: no_fig = 1; break;
      case O_THREADS: bad = kx_parse_size(optarg, "--threads", 1, 256, &threads); break;
      case O_GEN: bad = kx_parse_size(optarg, "--generate", 1, (size_t)1 << 24, &generate); break;
      case 'h': usage(stdout); return 0;
      default: return kx_cli_option_error(cmd, c, argv);
    }
    if (bad) return kx_cli_value_error(cmd, NULL);
  }
  if (optind < argc) return kx_cli_extra_operand(cmd, argv[optind], NULL);
  /* Kinds: the list, or every kind with recurrent decoding and a hybrid; a
   * checkpoint has one. */
  static char kbuf[512];
  if (kinds_arg)
    snprintf(kbuf, sizeof kbuf, "%s", kinds_arg);
  else
    snprintf(kbuf, sizeof kbuf, "%s, %s", kx_dec_attn_names(), DEFAULT_HYBRID);
  for (char *save = NULL, *t = strtok_r(kbuf, ", ", &save); t && nk < MAX_KINDS; t = strtok_r(NULL, ", ", &save)) {
    kx_dec_config probe;
    kx_dec_config_default(&probe);
    probe.ctx = KX_BENCH_MAX_TRAINED_CTX;
    if (kx_dec_config_set_attention(&probe, t) || kx_dec_config_check_window(&probe))
      return kx_cli_value_error(cmd, "--attention");
    kinds[nk++] = t;
  }
  if (!nk) {
    kx_cli_error(cmd, "--attention '%s' names no attention kind (known: %s)", kinds_arg, kx_dec_attn_names());
    return 2;
  }
  if (generate && !out_given) out = "generation.csv";
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
    if (kx_bench_make_model(&m, NULL, &ms, 0)) {
      kx_cli_error(cmd, "%s", kx_error_message());
      return 1;
    }
    static char kname[KX_DEC_LABEL_MAX];
    kx_dec_config_label(&m.cfg, kname, sizeof kname); /* a hybrid: "performer+sm0", "dijiang+w16" */
    kinds[0] = kname;
    nk = 1;
    kx_dec_free(&m);
  }
  if (generate) return run_generation(cmd, kinds, nk, &ms, generate, out);
  /* Every point is checked (positions, memory) before any runs. */
  kx_bench_point *pts = kx_calloc(nk * n_len, sizeof *pts);
  size_t np = 0;
  if (!pts) return 1;
  for (size_t k = 0; k < nk; k++) {
    /* A context of one prefill chunk (or of a longer sliding window),
     * except for the kinds with per-position weights (cosformer,
     * linformer): built for the longest length, so that every length is
     * defined for them. */
    kx_decoder m;
    kx_dec_config probe;
    kx_dec_config_default(&probe);
    kctx[k] = KX_DEC_INFER_CHUNK; /* a checkpoint brings its own */
    if (!ms.checkpoint && !kx_dec_config_set_attention(&probe, kinds[k]) && probe.window > kctx[k])
      kctx[k] = probe.window;
    if (kx_bench_make_model(&m, kinds[k], &ms, kctx[k])) {
      kx_cli_error(cmd, "%s", kx_error_message());
      free(pts);
      return 1;
    }
    int bounded = kx_dec_max_positions(&m) != SIZE_MAX;
    if (!ms.checkpoint && bounded) {
      kx_dec_free(&m);
      kctx[k] = kx_bench_position_ctx(max_len);
      if (kx_bench_make_model(&m, kinds[k], &ms, kctx[k])) {
        kx_cli_error(cmd, "cannot build a %s model for %zu positions: %s", kinds[k], kctx[k], kx_error_message());
        free(pts);
        return 2;
      }
    }
    for (size_t i = 0; i < n_len; i++) {
      if (!strcmp(kinds[k], "softmax") && lengths[i] > softmax_max) continue;
      if (!ms.checkpoint && bounded && lengths[i] + kx_bench_decode_steps(lengths[i]) > kctx[k]) {
        printf("note: %s skips length %zu: it defines only the %zu positions of a model's context, at most %d\n",
               kinds[k], lengths[i], kctx[k], KX_BENCH_MAX_TRAINED_CTX);
        continue;
      }
      if (kx_dec_infer_check(&m, lengths[i] + kx_bench_decode_steps(lengths[i]))) {
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
  printf("%-14s %8s %7s %11s %11s %12s %12s %12s %12s\n", "kind", "length", "steps", "prefill_s", "ms/token",
         "tokens/s", "state_MiB", "peakRSS_MiB", "CPU_ms/token");
  int rc = 0;
  for (size_t i = 0; i < np && !rc; i++) {
    kx_decoder m;
    if ((rc = kx_bench_make_model(&m, pts[i].kind, &ms, pts[i].ctx))) break;
    rc = kx_bench_measure(&m, pts[i].length, seconds, ms.seed, &pts[i]);
    kx_dec_free(&m);
    if (!rc)
      printf("%-14s %8zu %7zu %11.4g %11.4g %12.5g %12.4g %12.4g %12.4g\n", pts[i].kind, pts[i].length,
             pts[i].steps, pts[i].prefill_s, pts[i].ms_per_token, 1e3 / pts[i].ms_per_token,
             pts[i].state_bytes / 1048576.0, pts[i].peak_rss / 1048576.0, pts[i].cpu_ms_per_token);
    fflush(stdout);
  }
  if (!rc) rc = kx_bench_write_csv(out, pts, np);
  if (!rc && nk > 1) {
    printf("crossover lengths (measured points only):\n");
    for (size_t k = 0; k < nk; k++)
      if (strcmp(kinds[k], "softmax"))
        for (int w = 0; w < 2; w++) print_crossover(pts, np, kinds[k], w);
  }
  if (!rc && !no_fig) rc = kx_bench_figure4(out, fig, kinds, nk);
  free(pts);
  if (rc) {
    kx_cli_error(cmd, "%s", kx_error_message());
    return 1;
  }
  return 0;
}
