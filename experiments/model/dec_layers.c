#include "experiments/model/dec_layers.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/kx_cli.h"
#include "experiments/model/dec_fastmath.h"

/* Below this much work (floats touched, or multiply-adds for matmuls) a
 * parallel region costs more than it saves -- and far more when the other
 * core is busy, since a barrier then waits for a descheduled thread. */
#define PAR_MIN 16384
#define PAR_MIN_FLOPS 262144

static int blas_threads = 1;
void kx_dec_threads_init(void) {
  blas_threads = 1;
  openblas_set_num_threads(1);
}
void kx_dec_threads_blas(int n) {
  blas_threads = n > 1 ? n : 1;
  openblas_set_num_threads(blas_threads);
}

static double matmul_seconds;
double kx_dec_matmul_seconds(void) { return matmul_seconds; }
void kx_dec_matmul_reset(void) { matmul_seconds = 0.0; }

/* Contiguous share [*lo, *hi) of n items for part `id` of `nt`, rounded to
 * multiples of 8 so BLAS sub-blocks keep whole SIMD panels. */
static void share(size_t n, int id, int nt, size_t *lo, size_t *hi) {
  size_t blocks = (n + 7) / 8;
  size_t b0 = blocks * (size_t)id / (size_t)nt, b1 = blocks * (size_t)(id + 1) / (size_t)nt;
  *lo = b0 * 8 < n ? b0 * 8 : n;
  *hi = b1 * 8 < n ? b1 * 8 : n;
}

void kx_embed_forward(float *out, const int *tokens, const float *wte, size_t N, size_t C) {
  if (N * C < PAR_MIN) { /* no parallel region: see kx_rmsnorm_forward */
    for (size_t n = 0; n < N; n++) memcpy(out + n * C, wte + (size_t)tokens[n] * C, C * sizeof *out);
    return;
  }
#pragma omp parallel for schedule(static)
  for (size_t n = 0; n < N; n++) memcpy(out + n * C, wte + (size_t)tokens[n] * C, C * sizeof *out);
}

void kx_embed_backward(float *dwte, const float *dout, const int *tokens, size_t N, size_t C, size_t V) {
  (void)V;
  /* Threads own disjoint column ranges so the scatter needs no atomics and
   * each element is summed in token order whatever the thread count. */
#pragma omp parallel if (N * C >= PAR_MIN)
  {
    size_t lo, hi;
    share(C, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
    for (size_t n = 0; n < N; n++) {
      float *d = dwte + (size_t)tokens[n] * C;
      const float *g = dout + n * C;
      for (size_t c = lo; c < hi; c++) d[c] += g[c];
    }
  }
}

void kx_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                          const float *b, size_t N, size_t C, float eps) {
#pragma omp parallel for schedule(static) if (N * C >= PAR_MIN)
  for (size_t n = 0; n < N; n++) {
    const float *x = inp + n * C;
    float m = 0.0f;
#pragma omp simd reduction(+ : m)
    for (size_t c = 0; c < C; c++) m += x[c];
    m /= (float)C;
    float v = 0.0f;
#pragma omp simd reduction(+ : v)
    for (size_t c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
    v /= (float)C;
    float s = 1.0f / sqrtf(v + eps);
    float *o = out + n * C;
    for (size_t c = 0; c < C; c++) o[c] = (x[c] - m) * s * w[c] + b[c];
    mean[n] = m;
    rstd[n] = s;
  }
}

void kx_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                           const float *w, const float *mean, const float *rstd, size_t N, size_t C) {
#pragma omp parallel if (N * C >= PAR_MIN)
  {
    /* Row pass: input gradient, rows independent. */
#pragma omp for schedule(static)
    for (size_t n = 0; n < N; n++) {
      const float *x = inp + n * C, *g = dout + n * C;
      float m = mean[n], s = rstd[n];
      float sg = 0.0f, sgx = 0.0f;
#pragma omp simd reduction(+ : sg, sgx)
      for (size_t c = 0; c < C; c++) {
        float gw = g[c] * w[c];
        sg += gw;
        sgx += gw * (x[c] - m) * s;
      }
      sg /= (float)C;
      sgx /= (float)C;
      float *di = dinp + n * C;
      for (size_t c = 0; c < C; c++) di[c] += s * (g[c] * w[c] - sg - (x[c] - m) * s * sgx);
    }
    /* Column pass: parameter gradients, each column summed in row order. */
    size_t lo, hi;
    share(C, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
    for (size_t n = 0; n < N; n++) {
      const float *x = inp + n * C, *g = dout + n * C;
      float m = mean[n], s = rstd[n];
      for (size_t c = lo; c < hi; c++) {
        dw[c] += g[c] * (x[c] - m) * s;
        db[c] += g[c];
      }
    }
  }
}

static inline void rmsnorm_row(float *out, float *rstd, const float *inp, const float *w, size_t n, size_t C,
                               float eps) {
  const float *x = inp + n * C;
  float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
  for (size_t c = 0; c < C; c++) ss += x[c] * x[c];
  float s = 1.0f / sqrtf(ss / (float)C + eps);
  float *o = out + n * C;
  for (size_t c = 0; c < C; c++) o[c] = w[c] * (s * x[c]);
  rstd[n] = s;
}

void kx_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, size_t N, size_t C, float eps) {
  /* Below PAR_MIN no parallel region at all: even one that runs on one
   * thread allocates and frees its team, which at one token (recurrent
   * decoding) costs as much as the row. */
  if (N * C < PAR_MIN) {
    for (size_t n = 0; n < N; n++) rmsnorm_row(out, rstd, inp, w, n, C, eps);
    return;
  }
#pragma omp parallel for schedule(static)
  for (size_t n = 0; n < N; n++) rmsnorm_row(out, rstd, inp, w, n, C, eps);
}

void kx_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                         const float *rstd, size_t N, size_t C) {
#pragma omp parallel if (N * C >= PAR_MIN)
  {
    /* y = w * s x with s = (mean x^2 + eps)^(-1/2): dx = s (g w - xhat mean(g w xhat)), xhat = s x. */
#pragma omp for schedule(static)
    for (size_t n = 0; n < N; n++) {
      const float *x = inp + n * C, *g = dout + n * C;
      float s = rstd[n], sgx = 0.0f;
#pragma omp simd reduction(+ : sgx)
      for (size_t c = 0; c < C; c++) sgx += g[c] * w[c] * x[c] * s;
      sgx /= (float)C;
      float *di = dinp + n * C;
      for (size_t c = 0; c < C; c++) di[c] += s * (g[c] * w[c] - x[c] * s * sgx);
    }
    size_t lo, hi;
    share(C, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
    for (size_t n = 0; n < N; n++) {
      const float *x = inp + n * C, *g = dout + n * C;
      float s = rstd[n];
      for (size_t c = lo; c < hi; c++) dw[c] += g[c] * x[c] * s;
    }
  }
}

static inline float swiglu(float a, float b) { return a / (1.0f + expf(-a)) * b; }

void kx_swiglu_forward(float *out, const float *a, const float *b, size_t n) {
  if (n < PAR_MIN) { /* no parallel region: see kx_rmsnorm_forward */
    for (size_t i = 0; i < n; i++) out[i] = swiglu(a[i], b[i]);
    return;
  }
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++) out[i] = swiglu(a[i], b[i]);
}

void kx_swiglu_backward(float *da, float *db, const float *a, const float *b, const float *dout, size_t n) {
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++) {
    float sg = 1.0f / (1.0f + expf(-a[i]));
    da[i] += dout[i] * b[i] * sg * (1.0f + a[i] * (1.0f - sg));
    db[i] += dout[i] * a[i] * sg;
  }
}

/* How many BLAS calls a matmul is cut into: a fixed number, not one per
 * thread.  OpenBLAS rounds a row of a product differently depending on
 * where the row falls in its call (the last rows of M go through edge
 * kernels), so the bits of a training run would otherwise depend on the
 * thread count.  With the cut fixed, threads only choose who makes which
 * call.  Two: the cut two threads made before it was fixed, which every
 * measured table was run with; more threads than parts wait at the
 * matmuls (the machines this toolkit is measured on have two cores). */
#define MATMUL_PARTS 2
static int matmul_parts(size_t flops) { return blas_threads == 1 && flops >= PAR_MIN_FLOPS ? MATMUL_PARTS : 1; }

void kx_matmul_forward(float *out, const float *inp, const float *W, const float *bias, size_t N,
                       size_t C, size_t OC) {
  double t0 = kx_now_seconds();
  if (N == 1) {
    /* One row (recurrent decoding): a matrix-vector product.  SGEMM would
     * spend more time packing W into panels than multiplying, and a
     * parallel region would cost more than the product. */
    if (bias) memcpy(out, bias, OC * sizeof *out);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)OC, (int)C, 1.0f, W, (int)C, inp, 1, bias ? 1.0f : 0.0f, out, 1);
    matmul_seconds += kx_now_seconds() - t0;
    return;
  }
  int parts = matmul_parts(N * C * OC);
#pragma omp parallel for schedule(static) if (parts > 1)
  for (int part = 0; part < parts; part++) {
    size_t lo, hi;
    share(N, part, parts, &lo, &hi);
    if (hi > lo) {
      if (bias)
        for (size_t n = lo; n < hi; n++) memcpy(out + n * OC, bias, OC * sizeof *out);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(hi - lo), (int)OC, (int)C, 1.0f,
                  inp + lo * C, (int)C, W, (int)C, bias ? 1.0f : 0.0f, out + lo * OC, (int)OC);
    }
  }
  matmul_seconds += kx_now_seconds() - t0;
}

void kx_matmul_backward(float *dinp, float *dW, float *dbias, const float *dout, const float *inp,
                        const float *W, size_t N, size_t C, size_t OC) {
  double t0 = kx_now_seconds();
  int parts = matmul_parts(N * C * OC);
#pragma omp parallel for schedule(static) if (parts > 1)
  for (int part = 0; part < parts; part++) {
    size_t lo, hi;
    if (dinp) {
      share(N, part, parts, &lo, &hi);
      if (hi > lo)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(hi - lo), (int)C, (int)OC, 1.0f,
                    dout + lo * OC, (int)OC, W, (int)C, 1.0f, dinp + lo * C, (int)C);
    }
    /* dW: split the larger of its two dimensions so both parts get work
     * even for the narrow unembedding (OC = V). */
    if (OC >= C) {
      share(OC, part, parts, &lo, &hi);
      if (hi > lo)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(hi - lo), (int)C, (int)N, 1.0f,
                    dout + lo, (int)OC, inp, (int)C, 1.0f, dW + lo * C, (int)C);
    } else {
      share(C, part, parts, &lo, &hi);
      if (hi > lo)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)OC, (int)(hi - lo), (int)N, 1.0f,
                    dout, (int)OC, inp + lo, (int)C, 1.0f, dW + lo, (int)C);
    }
    if (dbias) {
      share(OC, part, parts, &lo, &hi);
      for (size_t n = 0; n < N; n++) {
        const float *g = dout + n * OC;
        for (size_t o = lo; o < hi; o++) dbias[o] += g[o];
      }
    }
  }
  matmul_seconds += kx_now_seconds() - t0;
}

#define KX_INV_SQRT_2PI 0.39894228040143267794f

/* The GELU kernels are compiled twice, for baseline x86-64 and for
 * AVX2+FMA, and the second is used when the CPU has it: they are pure
 * element-wise arithmetic, where 8-wide vectors roughly halve the time.
 * (target_clones would dispatch on CPU models, not features.) */
#define GELU_FWD_BODY                                                    \
  for (size_t i = 0; i < n; i++) out[i] = inp[i] * kx_normal_cdf(inp[i]);
#define GELU_BWD_BODY                                                    \
  for (size_t i = 0; i < n; i++) {                                       \
    float x = inp[i];                                                    \
    float pdf = KX_INV_SQRT_2PI * kx_expf(-0.5f * x * x);                \
    dinp[i] += dout[i] * (kx_normal_cdf(x) + x * pdf);                   \
  }

static void gelu_fwd_base(float *restrict out, const float *restrict inp, size_t n) { GELU_FWD_BODY }
static void gelu_bwd_base(float *restrict dinp, const float *restrict inp, const float *restrict dout, size_t n) {
  GELU_BWD_BODY
}
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) static void gelu_fwd_avx2(float *restrict out, const float *restrict inp,
                                                              size_t n) {
  GELU_FWD_BODY
}
__attribute__((target("avx2,fma"))) static void gelu_bwd_avx2(float *restrict dinp, const float *restrict inp,
                                                              const float *restrict dout, size_t n) {
  GELU_BWD_BODY
}
static int have_avx2(void) {
  static int cached = -1;
  if (cached < 0) {
    __builtin_cpu_init();
    cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }
  return cached;
}
static void gelu_fwd_chunk(float *out, const float *inp, size_t n) {
  if (have_avx2())
    gelu_fwd_avx2(out, inp, n);
  else
    gelu_fwd_base(out, inp, n);
}
static void gelu_bwd_chunk(float *dinp, const float *inp, const float *dout, size_t n) {
  if (have_avx2())
    gelu_bwd_avx2(dinp, inp, dout, n);
  else
    gelu_bwd_base(dinp, inp, dout, n);
}
#else
#define gelu_fwd_chunk gelu_fwd_base
#define gelu_bwd_chunk gelu_bwd_base
#endif

void kx_gelu_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel if (n >= PAR_MIN / 4)
  {
    size_t lo, hi;
    share(n, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
    gelu_fwd_chunk(out + lo, inp + lo, hi - lo);
  }
}

void kx_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
#pragma omp parallel if (n >= PAR_MIN / 4)
  {
    size_t lo, hi;
    share(n, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
    gelu_bwd_chunk(dinp + lo, inp + lo, dout + lo, hi - lo);
  }
}

void kx_rope_forward(float *x, const float *cos_t, const float *sin_t, size_t t, size_t r) {
  size_t h = r / 2;
  const float *c = cos_t + t * h, *s = sin_t + t * h;
  for (size_t i = 0; i < h; i++) {
    float a = x[i], b = x[i + h];
    x[i] = a * c[i] - b * s[i];
    x[i + h] = b * c[i] + a * s[i];
  }
}

void kx_rope_backward(float *dx, const float *cos_t, const float *sin_t, size_t t, size_t r) {
  size_t h = r / 2;
  const float *c = cos_t + t * h, *s = sin_t + t * h;
  for (size_t i = 0; i < h; i++) {
    float a = dx[i], b = dx[i + h];
    dx[i] = a * c[i] + b * s[i];
    dx[i + h] = b * c[i] - a * s[i];
  }
}

void kx_rope_pairs_forward(float *x, const float *cos_t, const float *sin_t, size_t t, size_t r) {
  size_t h = r / 2;
  const float *c = cos_t + t * h, *s = sin_t + t * h;
  for (size_t i = 0; i < h; i++) {
    float a = x[2 * i], b = x[2 * i + 1];
    x[2 * i] = a * c[i] - b * s[i];
    x[2 * i + 1] = a * s[i] + b * c[i];
  }
}

void kx_rope_pairs_backward(float *dx, const float *cos_t, const float *sin_t, size_t t, size_t r) {
  size_t h = r / 2;
  const float *c = cos_t + t * h, *s = sin_t + t * h;
  for (size_t i = 0; i < h; i++) {
    float a = dx[2 * i], b = dx[2 * i + 1];
    dx[2 * i] = a * c[i] + b * s[i];
    dx[2 * i + 1] = b * c[i] - a * s[i];
  }
}

double kx_crossentropy_forward(float *losses, float *probs, const float *logits, const int *targets,
                               size_t N, size_t V) {
#pragma omp parallel for schedule(static) if (N * V >= PAR_MIN / 4)
  for (size_t n = 0; n < N; n++) {
    const float *z = logits + n * V;
    float *p = probs + n * V;
    float mx = z[0];
    for (size_t v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
    float sum = 0.0f;
    for (size_t v = 0; v < V; v++) {
      p[v] = expf(z[v] - mx);
      sum += p[v];
    }
    float inv = 1.0f / sum;
    for (size_t v = 0; v < V; v++) p[v] *= inv;
    /* From the logits rather than -log(p[t]) so a tiny probability does not
     * round to 0 and give an infinite loss. */
    losses[n] = logf(sum) - (z[targets[n]] - mx);
  }
  double total = 0.0;
  for (size_t n = 0; n < N; n++) total += losses[n];
  return total / (double)N;
}

void kx_crossentropy_backward(float *dlogits, const float *probs, const int *targets, size_t N,
                              size_t V, float scale) {
#pragma omp parallel for schedule(static) if (N * V >= PAR_MIN)
  for (size_t n = 0; n < N; n++) {
    float *d = dlogits + n * V;
    const float *p = probs + n * V;
    for (size_t v = 0; v < V; v++) d[v] += p[v] * scale;
    d[targets[n]] -= scale;
  }
}
