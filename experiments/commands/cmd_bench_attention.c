/* kapprox bench-attention: the inference cost of exact softmax attention
 * against linear attention from features, as the context grows (the
 * paper's Figure 4 at one head's scale).  A program that prints figures,
 * not a test: time per forward pass, tokens per second and the working
 * memory each form needs. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <math.h>
#include <omp.h>

#include "approx/attention.h"
#include "approx/fmap.h"
#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/bench/bench_features.h"
#include "experiments/commands/commands.h"
#include "experiments/model/dec_linear_causal.h"
#include "experiments/qk/synthetic.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: kapprox bench-attention [options]\n\n"
          "Times one head's causal attention forward pass: exact softmax (O(n^2 d))\n"
          "against linear attention (feature map + prefix sums, O(n m d)), for growing n.\n\n"
          "  --tokens LIST   context lengths (default 256:16384)\n"
          "  --dim D         head dimension (default 64)\n"
          "  --m M           features (default 64)\n"
          "  --scheme NAME   feature map (default pff-sobol; fitted maps are not allowed)\n"
          "  --repeat R      best of R runs (default 3)\n"
          "  --heads H       heads of the float32 decoder kernel's batched row (default 4)\n"
          "  --chunk C       rows per chunk of the float32 kernel (default: its own, %d)\n"
          "  --out FILE.csv  also write the table as CSV\n",
          KX_LIN_CAUSAL_CHUNK);
}

/* The decoder's float32 kernel (dec_linear_causal: normalised, no decay)
 * on `heads` sequences of n rows, heads in parallel on `threads` OpenMP
 * threads as the decoder runs them (one head runs on one thread),
 * single-threaded BLAS.  Features exp(l - max_j l) of the map's
 * log features, head h reading the rows rotated by 131 h.  Best forward
 * and backward seconds of `repeat` runs after a warm-up. */
typedef struct {
  size_t heads;
  int threads;
  double fwd, bwd;
} float_kernel_row;

static int time_float_kernel(size_t n, size_t m, size_t dv, size_t chunk, size_t repeat, const double *lq, const double *lk,
                             const double *v, float_kernel_row *row) {
  const size_t H = row->heads;
  kx_lin_causal p = {n, m, dv, m, dv, dv, 1.0f, 1, 1e-6f, chunk, NULL};
  const size_t ks = kx_lin_causal_scratch_floats(&p), nf = n * m, nv = n * dv;
  float *buf = kx_malloc(H * (2 * nf + 4 * nv + n + 2 * nf + nv + ks) * sizeof *buf);
  if (!buf) return KX_ENOMEM;
  float *fq = buf, *fk = fq + H * nf, *vf = fk + H * nf, *o = vf + H * nv, *dout = o + H * nv;
  float *den = dout + H * nv, *dfq = den + H * n, *dfk = dfq + H * nf, *dvf = dfk + H * nf, *scr = dvf + H * nv;
  for (size_t h = 0; h < H; h++)
    for (size_t t = 0; t < n; t++) {
      const size_t src = (t + 131 * h) % n;
      double mq = -INFINITY, mk = -INFINITY;
      for (size_t j = 0; j < m; j++) {
        mq = lq[src * m + j] > mq ? lq[src * m + j] : mq;
        mk = lk[src * m + j] > mk ? lk[src * m + j] : mk;
      }
      for (size_t j = 0; j < m; j++) {
        fq[h * nf + t * m + j] = (float)exp(lq[src * m + j] - mq);
        fk[h * nf + t * m + j] = (float)exp(lk[src * m + j] - mk);
      }
      for (size_t k = 0; k < dv; k++) {
        vf[h * nv + t * dv + k] = (float)v[src * dv + k];
        dout[h * nv + t * dv + k] = (float)v[((src + 1) % n) * dv + k];
      }
    }
  const int omp_threads = omp_get_max_threads(), blas_threads = openblas_get_num_threads();
  omp_set_num_threads(row->threads);
  openblas_set_num_threads(1);
  row->fwd = row->bwd = INFINITY;
  for (size_t r = 0; r <= repeat; r++) { /* run 0 warms up */
    double t0 = kx_now_seconds();
#pragma omp parallel for schedule(dynamic, 1) if (H > 1)
    for (size_t h = 0; h < H; h++)
      kx_lin_causal_forward(&p, fq + h * nf, fk + h * nf, vf + h * nv, o + h * nv, den + h * n, scr + h * ks);
    double t1 = kx_now_seconds();
#pragma omp parallel for schedule(dynamic, 1) if (H > 1)
    for (size_t h = 0; h < H; h++)
      kx_lin_causal_backward(&p, fq + h * nf, fk + h * nf, vf + h * nv, o + h * nv, den + h * n, dout + h * nv,
                             dfq + h * nf, dfk + h * nf, dvf + h * nv, scr + h * ks);
    double t2 = kx_now_seconds();
    if (r && t1 - t0 < row->fwd) row->fwd = t1 - t0;
    if (r && t2 - t1 < row->bwd) row->bwd = t2 - t1;
  }
  omp_set_num_threads(omp_threads);
  openblas_set_num_threads(blas_threads);
  free(buf);
  return 0;
}

/* Rows one head on one thread and `heads` heads on all threads, each
 * against the SGEMM rate on as many threads. */
static void print_float_kernel(size_t m, size_t dv, size_t chunk, const size_t *ns, size_t n_ns, const float_kernel_row *rows,
                               size_t per_n, const double *speak) {
  kx_lin_causal p = {0, m, dv, m, dv, dv, 1.0f, 1, 1e-6f, chunk, NULL};
  printf("\nfloat32 decoder kernel (dec_linear_causal: normalised, no decay, chunk %zu), features of the same\n"
         "map given, single-threaded BLAS; GF/s counts the flops of its chunked form (kx_lin_causal_flops),\n"
         "%%peak is against the SGEMM rate (384^3) measured on as many threads: %.1f GFLOP/s on 1,\n"
         "%.1f on %d\n",
         chunk ? chunk : (size_t)KX_LIN_CAUSAL_CHUNK, speak[0], speak[1], rows[per_n - 1].threads);
  printf("%8s %6s %8s %10s %9s %6s %10s %9s %6s\n", "tokens", "heads", "threads", "fwd ms", "fwd GF/s", "%peak",
         "bwd ms", "bwd GF/s", "%peak");
  for (size_t t = 0; t < n_ns; t++)
    for (size_t i = 0; i < per_n; i++) {
      const float_kernel_row *r = &rows[t * per_n + i];
      p.T = ns[t];
      const double pk = speak[r->threads > 1], H = (double)r->heads;
      const double fgf = H * kx_lin_causal_flops(&p, 0) / r->fwd / 1e9, bgf = H * kx_lin_causal_flops(&p, 1) / r->bwd / 1e9;
      printf("%8zu %6zu %8d %10.3f %9.2f %6.1f %10.3f %9.2f %6.1f\n", ns[t], r->heads, r->threads, 1e3 * r->fwd, fgf,
             100 * fgf / pk, 1e3 * r->bwd, bgf, 100 * bgf / pk);
    }
}

int cmd_bench_attention(int argc, char **argv) {
  static const struct option opts[] = {{"tokens", required_argument, 0, 'n'},
                                       {"dim", required_argument, 0, 'd'},
                                       {"m", required_argument, 0, 'm'},
                                       {"scheme", required_argument, 0, 's'},
                                       {"repeat", required_argument, 0, 'r'},
                                       {"heads", required_argument, 0, 'H'},
                                       {"chunk", required_argument, 0, 'C'},
                                       {"out", required_argument, 0, 'o'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  size_t ns[64], n_ns = 0, d = 64, m = 64, repeat = 3, heads = 4, chunk = 0;
  const char *scheme = "pff-sobol", *out = NULL, *tokens = "256:16384";
  int c, rc = 0;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'h': usage(stdout); return 0;
    case 'n': tokens = optarg; break;
    case 'd': rc = kx_parse_size(optarg, "--dim", 1, 4096, &d); break;
    case 'm': rc = kx_parse_size(optarg, "--m", 1, 1u << 16, &m); break;
    case 's': scheme = optarg; break;
    case 'r': rc = kx_parse_size(optarg, "--repeat", 1, 1000, &repeat); break;
    case 'H': rc = kx_parse_size(optarg, "--heads", 1, 256, &heads); break;
    case 'C': rc = kx_parse_size(optarg, "--chunk", 1, 4096, &chunk); break;
    case 'o': out = optarg; break;
    default:
      kx_cli_error("bench-attention", "unknown or incomplete option '%s' (see --help)", argv[optind - 1]);
      return 2;
    }
    if (rc) break;
  }
  if (!rc) rc = kx_parse_size_list(tokens, "--tokens", 1, 1u << 20, ns, 64, &n_ns);
  if (rc) {
    kx_cli_error("bench-attention", "%s", kx_error_message());
    return 2;
  }
  kx_fmap *f = kx_fmap_create(scheme, d, m, 0, NULL);
  if (!f) {
    kx_cli_error("bench-attention", "%s", kx_error_message());
    return 2;
  }
  kx_atomic_file csv = {0};
  if (out && kx_atomic_open(&csv, out)) {
    kx_cli_error("bench-attention", "%s", kx_error_message());
    kx_fmap_free(f);
    return 1;
  }
  if (out) fprintf(csv.fp, "tokens,d,m,scheme,exact_ms,linear_ms,exact_tokens_per_s,linear_tokens_per_s,exact_bytes,linear_bytes\n");
  /* float32 kernel configurations: (heads, threads) */
  const int all_threads = omp_get_max_threads();
  const double peak = kx_bench_gemm_peak(0, all_threads);
  float_kernel_row configs[2] = {{1, 1, 0, 0}};
  size_t per_n = 1;
  if (heads > 1) configs[per_n++] = (float_kernel_row){heads, all_threads, 0, 0};
  float_kernel_row *frows = kx_malloc(n_ns * per_n * sizeof *frows);
  if (!frows) rc = KX_ENOMEM;
  printf("causal attention, one head, d = %zu, m = %zu (%s); best of %zu runs\n", d, m, scheme, repeat);
  printf("measured DGEMM peak (384^3, %d thread%s): %.1f GFLOP/s; linear GF/s counts 4 n m d (features\n"
         "of q and k) + 4 n m d (prefix sums and queries) flops, exact GF/s 4 n^2 d (causal: half)\n",
         all_threads, all_threads == 1 ? "" : "s", peak);
  printf("(kernel: kx_linear_attention alone, features excluded, 4 n m d flops)\n");
  printf("%8s %12s %12s %10s %9s %9s %6s %10s %9s %6s %14s %14s\n", "tokens", "exact ms", "linear ms",
         "speed-up", "exact GF/s", "lin GF/s", "%peak", "kernel ms", "kern GF/s", "%peak", "exact MiB",
         "linear MiB");
  for (size_t t = 0; t < n_ns && !rc; t++) {
    size_t n = ns[t];
    double *q = kx_malloc(n * d * sizeof *q), *k = kx_malloc(n * d * sizeof *k), *v = kx_malloc(n * d * sizeof *v);
    double *o = kx_malloc(n * d * sizeof *o), *lq = kx_malloc(n * m * sizeof *lq), *lk = kx_malloc(n * m * sizeof *lk);
    kx_norm_spec norm = {1, 1};
    if (!q || !k || !v || !o || !lq || !lk) rc = KX_ENOMEM;
    if (!rc) rc = kx_synthetic_qkv(n, d, d, norm, 1, q, k, v);
    double best_exact = 1e30, best_linear = 1e30, best_kernel = 1e30;
    for (size_t r = 0; r < repeat && !rc; r++) {
      double t0 = kx_now_seconds();
      rc = kx_softmax_attention(n, d, d, q, k, v, 1, o);
      double t1 = kx_now_seconds();
      if (!rc) rc = kx_fmap_apply_log(f, n, q, lq);
      if (!rc) rc = kx_fmap_apply_log(f, n, k, lk);
      double tf = kx_now_seconds();
      if (!rc) rc = kx_linear_attention(n, m, d, lq, lk, v, 1, o);
      double t2 = kx_now_seconds();
      if (t1 - t0 < best_exact) best_exact = t1 - t0;
      if (t2 - t1 < best_linear) best_linear = t2 - t1;
      if (t2 - tf < best_kernel) best_kernel = t2 - tf;
    }
    for (size_t i = 0; i < per_n && !rc; i++) {
      frows[t * per_n + i] = configs[i];
      rc = time_float_kernel(n, m, d, chunk, repeat, lq, lk, v, &frows[t * per_n + i]);
    }
    /* working memory beyond q, k, v, out: exact keeps one row of n weights
     * (a materialised attention matrix would be n^2); linear keeps log
     * features for q and k plus the m x d state */
    double exact_bytes = (double)n * 8, exact_matrix = (double)n * (double)n * 8;
    double linear_bytes = (2.0 * (double)n * (double)m + (double)m * (double)d + (double)m) * 8;
    if (!rc) {
      const double lin_gf = 8.0 * (double)n * (double)m * (double)d / best_linear / 1e9;
      const double exact_gf = 2.0 * (double)n * (double)n * (double)d / best_exact / 1e9;
      const double kernel_gf = 4.0 * (double)n * (double)m * (double)d / best_kernel / 1e9;
      printf("%8zu %12.3f %12.3f %9.1fx %9.2f %9.2f %6.1f %10.3f %9.2f %6.1f %14.3f %14.3f\n", n,
             1e3 * best_exact, 1e3 * best_linear, best_exact / best_linear, exact_gf, lin_gf,
             100 * lin_gf / peak, 1e3 * best_kernel, kernel_gf, 100 * kernel_gf / peak,
             exact_matrix / 1048576.0, linear_bytes / 1048576.0);
      fflush(stdout);
      if (out)
        fprintf(csv.fp, "%zu,%zu,%zu,%s,%.6f,%.6f,%.1f,%.1f,%.0f,%.0f\n", n, d, m, scheme, 1e3 * best_exact,
                1e3 * best_linear, n / best_exact, n / best_linear, exact_bytes, linear_bytes);
    }
    free(q), free(k), free(v), free(o), free(lq), free(lk);
  }
  printf("(exact MiB: the n x n attention matrix a naive implementation materialises;\n"
         " kx_softmax_attention itself streams rows with O(n) memory)\n");
  if (!rc) {
    double speak[2];
    speak[0] = kx_bench_gemm_peak(1, 1);
    speak[1] = all_threads > 1 ? kx_bench_gemm_peak(1, all_threads) : speak[0];
    print_float_kernel(m, d, chunk, ns, n_ns, frows, per_n, speak);
  }
  free(frows);
  kx_fmap_free(f);
  if (out) {
    if (rc) kx_atomic_abort(&csv);
    else rc = kx_atomic_commit(&csv);
  }
  if (rc) {
    kx_cli_error("bench-attention", "%s", kx_error_message());
    return 1;
  }
  return 0;
}
