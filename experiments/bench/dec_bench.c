/* decoder_bench: milliseconds per training step (forward + backward +
 * clipping + AdamW) of the C decoder, tokens per second and the share of
 * time spent in cblas_sgemm, for given sizes.  Prints figures; not a test.
 *   decoder_bench [--layers N --heads N --width N --ctx N --batch N --vocab N
 *                  --steps N --warmup N --attention KIND]
 *   decoder_bench --kernel [--heads N --width N --ctx N --batch N --steps N --chunk N]
 *     times only the causal linear attention kernel of one layer
 *     (dec_linear_causal: B x H sequences of T rows, m = dv = head dim,
 *     normalised, forward + backward, heads in parallel as in the model).
 * Defaults: the `kapprox train` default configuration, vocab 63. */
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "core/kx_seed.h"
#include "experiments/model/dec_adamw.h"
#include "experiments/model/dec_layers.h"
#include "experiments/model/dec_linear_causal.h"
#include "experiments/model/dec_model.h"

/* Forward + backward of the linear kernel over B*H heads, as the block runs
 * it; prints mean and best milliseconds. */
static int bench_kernel(const kx_dec_config *cfg, size_t B, size_t steps, size_t warm, size_t chunk) {
  size_t H = cfg->heads, d = cfg->width / H, T = cfg->ctx, BH = B * H;
  kx_lin_causal p = {T, d, d, d, d, d, 1.0f, 1, 1e-6f, chunk, NULL};
  size_t ks = kx_lin_causal_scratch_floats(&p), n = BH * T * d;
  float *buf = malloc((8 * n + BH * T + BH * ks) * sizeof(float));
  if (!buf) {
    fprintf(stderr, "decoder_bench: error: out of memory\n");
    return 1;
  }
  float *fq = buf, *fk = fq + n, *v = fk + n, *o = v + n, *dout = o + n, *dfq = dout + n, *dfk = dfq + n;
  float *dv = dfk + n, *den = dv + n, *scr = den + BH * T;
  for (size_t i = 0; i < n; i++) {
    fq[i] = (float)(kx_mix64(i) >> 40) * 0x1.0p-24f + 0.01f;
    fk[i] = (float)(kx_mix64(i + n) >> 40) * 0x1.0p-24f + 0.01f;
    v[i] = (float)(kx_mix64(i + 2 * n) >> 40) * 0x1.0p-23f - 1.0f;
    dout[i] = (float)(kx_mix64(i + 3 * n) >> 40) * 0x1.0p-23f - 1.0f;
  }
  double total = 0, best = INFINITY;
  for (size_t s = 0; s < warm + steps; s++) {
    double t0 = kx_now_seconds();
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t bh = 0; bh < BH; bh++) {
      size_t off = bh * T * d;
      kx_lin_causal_forward(&p, fq + off, fk + off, v + off, o + off, den + bh * T, scr + bh * ks);
      kx_lin_causal_backward(&p, fq + off, fk + off, v + off, o + off, den + bh * T, dout + off, dfq + off,
                             dfk + off, dv + off, scr + bh * ks);
    }
    double t1 = kx_now_seconds();
    if (s >= warm) {
      total += t1 - t0;
      best = t1 - t0 < best ? t1 - t0 : best;
    }
  }
  printf("kernel: %zu x %zu heads, T %zu, m = dv = %zu, chunk %zu, %d OpenMP threads\n", B, H, T, d,
         chunk ? chunk : (size_t)KX_LIN_CAUSAL_CHUNK, omp_get_max_threads());
  printf("ms/forward+backward: mean %.2f, best %.2f over %zu runs\n", 1e3 * total / (double)steps, 1e3 * best,
         steps);
  free(buf);
  return 0;
}

int main(int argc, char **argv) {
  kx_init_library();
  kx_dec_config cfg;
  kx_dec_config_default(&cfg);
  cfg.vocab = 63;
  size_t B = 16, steps = 20, warm = 3, blas = 1, chunk = 0;
  int kernel = 0;
  static const struct option lo[] = {{"layers", 1, 0, 'l'}, {"heads", 1, 0, 'H'}, {"width", 1, 0, 'w'},
                                     {"ctx", 1, 0, 'c'},    {"batch", 1, 0, 'b'}, {"vocab", 1, 0, 'v'},
                                     {"steps", 1, 0, 's'},  {"warmup", 1, 0, 'W'}, {"help", 0, 0, 'h'},
                                     {"blas-threads", 1, 0, 'B'}, {"attention", 1, 0, 'a'},
                                     {"kernel", 0, 0, 'k'}, {"chunk", 1, 0, 'C'},
                                     {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    size_t v = 0;
    if (c == 'h' || c == '?') {
      fprintf(c == 'h' ? stdout : stderr,
              "usage: decoder_bench [--layers N --heads N --width N --ctx N --batch N --vocab N --steps N "
              "--warmup N] [--blas-threads N] [--attention KIND]\n"
              "       decoder_bench --kernel [--heads N --width N --ctx N --batch N --steps N --chunk N]\n"
              "  --attention KIND: attention kind (%s)\n"
              "  --kernel: time only the causal linear kernel of one layer (forward + backward)\n"
              "  --blas-threads N: measure the other threading scheme (OpenBLAS threads in the\n"
              "                    linear layers instead of OpenMP-split single-thread calls)\n",
              kx_dec_attn_names());
      return c == 'h' ? 0 : 2;
    }
    if (c == 'k') {
      kernel = 1;
      continue;
    }
    if (c == 'a') {
      if (!kx_dec_attn_find(optarg)) {
        fprintf(stderr, "decoder_bench: error: unknown --attention '%s' (known: %s)\n", optarg, kx_dec_attn_names());
        return 2;
      }
      snprintf(cfg.attn_kind, sizeof cfg.attn_kind, "%s", optarg);
      continue;
    }
    if (kx_parse_size(optarg, "value", 1, 1 << 20, &v)) {
      fprintf(stderr, "decoder_bench: error: %s\n", kx_error_message());
      return 2;
    }
    switch (c) {
      case 'l': cfg.layers = v; break;
      case 'H': cfg.heads = v; break;
      case 'w': cfg.width = v; break;
      case 'c': cfg.ctx = v; break;
      case 'b': B = v; break;
      case 'v': cfg.vocab = v; break;
      case 's': steps = v; break;
      case 'W': warm = v; break;
      case 'B': blas = v; break;
      case 'C': chunk = v; break;
    }
  }
  cfg.rotary_dims = (cfg.width / cfg.heads / 4) & ~(size_t)1;
  kx_dec_threads_init();
  if (kernel) return bench_kernel(&cfg, B, steps, warm, chunk);
  if (blas > 1) kx_dec_threads_blas((int)blas);
  kx_decoder m;
  kx_adamw opt;
  if (kx_dec_create(&m, &cfg) || kx_dec_init_params(&m, 1) ||
      kx_adamw_create(&opt, m.tab.total, 0.9, 0.95, 1e-8, 0.1)) {
    fprintf(stderr, "decoder_bench: error: %s\n", kx_error_message());
    return 1;
  }
  size_t T = cfg.ctx, N = B * T;
  int *x = malloc(N * sizeof(int)), *y = malloc(N * sizeof(int));
  for (size_t i = 0; i < N; i++) {
    x[i] = (int)(kx_mix64(i) % cfg.vocab);
    y[i] = (int)(kx_mix64(i + N) % cfg.vocab);
  }
  double t_fwd = 0, t_bwd = 0, t_opt = 0, total = 0, best = INFINITY;
  for (size_t s = 0; s < warm + steps; s++) {
    if (s == warm) kx_dec_matmul_reset();
    double loss, t0 = kx_now_seconds();
    if (kx_dec_forward(&m, x, y, B, T, &loss)) return 1;
    double t1 = kx_now_seconds();
    kx_dec_backward(&m);
    double t2 = kx_now_seconds();
    kx_grad_clip(m.grads, m.tab.total, 1.0);
    kx_adamw_step(&opt, &m.tab, m.params, m.grads, 1e-3);
    double t3 = kx_now_seconds();
    if (s >= warm) {
      t_fwd += t1 - t0, t_bwd += t2 - t1, t_opt += t3 - t2, total += t3 - t0;
      if (t3 - t0 < best) best = t3 - t0;
    }
  }
  size_t np = 0;
  for (size_t i = 0; i < m.tab.n; i++) np += m.tab.t[i].size;
  double ms = 1e3 * total / (double)steps;
  printf("config: attention %s, layers %zu, heads %zu, width %zu, ctx %zu, batch %zu, vocab %zu (%zu parameters), "
         "%d OpenMP threads, %s\n",
         cfg.attn_kind, cfg.layers, cfg.heads, cfg.width, cfg.ctx, B, cfg.vocab, np, omp_get_max_threads(),
         blas > 1 ? "OpenBLAS threads in the linear layers" : "single-thread OpenBLAS split by OpenMP");
  printf("ms/step: mean %.1f, best %.1f (forward %.1f, backward %.1f, clip+AdamW %.1f) over %zu steps\n", ms,
         1e3 * best, 1e3 * t_fwd / (double)steps, 1e3 * t_bwd / (double)steps, 1e3 * t_opt / (double)steps, steps);
  printf("tokens/s: %.0f (mean), %.0f (best step)\n", (double)N / (total / (double)steps), (double)N / best);
  printf("matmul share: %.1f%% of step time in cblas_sgemm\n", 100.0 * kx_dec_matmul_seconds() / total);
  kx_adamw_free(&opt);
  kx_dec_free(&m);
  free(x);
  free(y);
  return 0;
}
