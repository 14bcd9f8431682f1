#include "experiments/model/dec_linear_causal.h"

#include <math.h>
#include <string.h>

#include <cblas.h>

static size_t chunk_of(const kx_lin_causal *p) {
  size_t c = p->chunk ? p->chunk : KX_LIN_CAUSAL_CHUNK;
  return c < p->T ? c : (p->T ? p->T : 1);
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

/* Workspace of one sweep with row widths ka (a, b) and dc (c, out). */
static size_t sweep_floats(size_t chunk, size_t ka, size_t dc) {
  return chunk * chunk + (chunk + 1) + ka * dc + ka + chunk * ka;
}

/* The one primitive behind forward and backward.
 *   causal  (reverse = 0): out_x = sum_{y<=x} g^(x-y) (a_x . b_y) c_y
 *   anti-causal (reverse = 1): out_x = sum_{y>=x} g^(y-x) (a_x . b_y) c_y
 * a, b (T, ka); c, out (T, dc); out overwritten.  With rowsum != NULL, also
 * rowsum_x = the same sum without c (sum of the weighted scores), from the
 * masked chunk scores and a running sum z of weighted b rows beside the
 * state.  Chunks [s, e) have fixed
 * boundaries (multiples of `chunk`) and are visited forwards or backwards.
 * The running state carries every row outside the chunk on the visited
 * side, weighted to the chunk's near edge:
 *   causal:      state = sum_{y<s}  g^(s-y)     b_y^T c_y, row x gets g^(x-s)
 *   anti-causal: state = sum_{y>=e} g^(y-e+1)   b_y^T c_y, row x gets g^(e-1-x). */
static void sweep(int reverse, size_t T, size_t ka, size_t dc, float g, size_t chunk, const float *a,
                  size_t lda, const float *b, size_t ldb, const float *c, size_t ldc, float *out, size_t ldo,
                  float *rowsum, float *ws, float *carry) {
  float *S = ws, *pw = S + chunk * chunk, *state = pw + chunk + 1, *z = state + ka * dc, *tmp = z + ka;
  int decays = g != 1.0f;
  if (carry) memcpy(state, carry, (ka * dc + ka) * sizeof(float)); /* S then z, as in ws */
  for (size_t k = 0; k <= chunk; k++) pw[k] = (float)pow((double)g, (double)k);
  size_t n_chunks = (T + chunk - 1) / chunk;
  for (size_t it = 0; it < n_chunks; it++) {
    size_t ci = reverse ? n_chunks - 1 - it : it;
    size_t s = ci * chunk, e = s + chunk < T ? s + chunk : T, n = e - s;
    /* Inside the chunk: masked, decayed scores, then scores @ c. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)ka, 1.0f, a + s * lda, (int)lda,
                b + s * ldb, (int)ldb, 0.0f, S, (int)n);
    for (size_t x = 0; x < n; x++) {
      float *Sx = S + x * n;
      if (!reverse) {
        for (size_t y = 0; y <= x; y++) Sx[y] *= pw[x - y];
        for (size_t y = x + 1; y < n; y++) Sx[y] = 0.0f;
      } else {
        for (size_t y = 0; y < x; y++) Sx[y] = 0.0f;
        for (size_t y = x; y < n; y++) Sx[y] *= pw[y - x];
      }
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)dc, (int)n, 1.0f, S, (int)n,
                c + s * ldc, (int)ldc, 0.0f, out + s * ldo, (int)ldo);
    if (rowsum)
      for (size_t x = 0; x < n; x++) {
        float sum = 0.0f;
        for (size_t y = 0; y < n; y++) sum += S[x * n + y];
        rowsum[s + x] = sum;
      }
    /* The past (or future) through the state. */
    if (it > 0 || carry) {
      const float *as = a + s * lda;
      size_t ld = lda;
      if (decays) {
        for (size_t x = 0; x < n; x++) {
          float w = pw[reverse ? n - 1 - x : x];
          for (size_t k = 0; k < ka; k++) tmp[x * ka + k] = w * as[x * lda + k];
        }
        as = tmp, ld = ka;
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)dc, (int)ka, 1.0f, as, (int)ld, state,
                  (int)dc, 1.0f, out + s * ldo, (int)ldo);
      if (rowsum)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)ka, 1.0f, as, (int)ld, z, 1, 1.0f, rowsum + s, 1);
    }
    if (it + 1 == n_chunks && !carry) break;
    /* state <- g^n state + sum over the chunk of weighted b_y^T c_y. */
    const float *bs = b + s * ldb;
    size_t ld = ldb;
    if (decays) {
      for (size_t y = 0; y < n; y++) {
        float w = pw[reverse ? y + 1 : n - y];
        for (size_t k = 0; k < ka; k++) tmp[y * ka + k] = w * bs[y * ldb + k];
      }
      bs = tmp, ld = ka;
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)ka, (int)dc, (int)n, 1.0f, bs, (int)ld, c + s * ldc,
                (int)ldc, it == 0 && !carry ? 0.0f : pw[n], state, (int)dc);
    if (rowsum) {
      /* set, not scaled by 0, at the start: the workspace may hold anything,
       * and a NaN or inf left there times 0 is NaN */
      if (it == 0 && !carry) memset(z, 0, ka * sizeof *z);
      else
        for (size_t k = 0; k < ka; k++) z[k] *= pw[n];
      for (size_t y = 0; y < n; y++)
        for (size_t k = 0; k < ka; k++) z[k] += bs[y * ld + k];
    }
  }
  if (carry) memcpy(carry, state, (ka * dc + ka) * sizeof(float));
}

size_t kx_lin_causal_forward_scratch_floats(const kx_lin_causal *p) {
  return sweep_floats(chunk_of(p), p->m, p->dv);
}

size_t kx_lin_causal_scratch_floats(const kx_lin_causal *p) {
  size_t ch = chunk_of(p), w = p->dv + 1;
  return 2 * p->T * w + sweep_floats(ch, max_sz(p->m, w), max_sz(p->m, w));
}

void kx_lin_causal_sums(const kx_lin_causal *p, const float *fq, const float *fk, const float *v, float *num,
                        float *den, float *scratch) {
  if (!p->T) return;
  sweep(0, p->T, p->m, p->dv, p->decay, chunk_of(p), fq, p->ld_f, fk, p->ld_f, v, p->ld_v, num, p->ld_o, den,
        scratch, p->state);
}

void kx_lin_causal_forward(const kx_lin_causal *p, const float *fq, const float *fk, const float *v,
                           float *o, float *den, float *scratch) {
  size_t T = p->T;
  if (!T) return;
  kx_lin_causal_sums(p, fq, fk, v, o, p->normalise ? den : NULL, scratch);
  if (!p->normalise) return;
  for (size_t t = 0; t < T; t++) {
    float r = 1.0f / (den[t] + p->eps);
    for (size_t k = 0; k < p->dv; k++) o[t * p->ld_o + k] *= r;
  }
}

void kx_lin_causal_backward(const kx_lin_causal *p, const float *fq, const float *fk, const float *v,
                            const float *o, const float *den, const float *dout, float *dfq, float *dfk,
                            float *dv, float *scratch) {
  size_t T = p->T, m = p->m, d = p->dv, ch = chunk_of(p);
  float g = p->decay;
  if (!T) return;
  if (!p->normalise) {
    float *ws = scratch;
    sweep(0, T, d, m, g, ch, dout, p->ld_o, v, p->ld_v, fk, p->ld_f, dfq, p->ld_f, NULL, ws, NULL);
    sweep(1, T, d, m, g, ch, v, p->ld_v, dout, p->ld_o, fq, p->ld_f, dfk, p->ld_f, NULL, ws, NULL);
    sweep(1, T, m, d, g, ch, fk, p->ld_f, fq, p->ld_f, dout, p->ld_o, dv, p->ld_v, NULL, ws, NULL);
    return;
  }
  /* dnum and dden side by side (gn) */
  size_t w = d + 1;
  float *gn = scratch + T * w;
  for (size_t t = 0; t < T; t++) {
    const float *go = dout + t * p->ld_o, *ot = o + t * p->ld_o;
    float r = 1.0f / (den[t] + p->eps), dot = 0.0f;
    for (size_t k = 0; k < d; k++) {
      gn[t * w + k] = go[k] * r;
      dot += go[k] * ot[k];
    }
    gn[t * w + d] = -dot * r;
  }
  kx_lin_causal_backward_sums(p, fq, fk, v, gn, dfq, dfk, dv, scratch);
}

void kx_lin_causal_backward_sums(const kx_lin_causal *p, const float *fq, const float *fk, const float *v,
                                 const float *gn, float *dfq, float *dfk, float *dv, float *scratch) {
  size_t T = p->T, m = p->m, d = p->dv, ch = chunk_of(p), w = d + 1;
  float g = p->decay;
  if (!T) return;
  /* against v with a column of ones (vx): dnum_i . v_j + dden_i = gn_i . vx_j */
  float *vx = scratch, *ws = vx + 2 * T * w;
  for (size_t t = 0; t < T; t++) {
    memcpy(vx + t * w, v + t * p->ld_v, d * sizeof(float));
    vx[t * w + d] = 1.0f;
  }
  sweep(0, T, w, m, g, ch, gn, w, vx, w, fk, p->ld_f, dfq, p->ld_f, NULL, ws, NULL);
  sweep(1, T, w, m, g, ch, vx, w, gn, w, fq, p->ld_f, dfk, p->ld_f, NULL, ws, NULL);
  sweep(1, T, m, d, g, ch, fk, p->ld_f, fq, p->ld_f, gn, w, dv, p->ld_v, NULL, ws, NULL);
}

void kx_lin_causal_scores(const kx_lin_causal *p, const float *fq, const float *fk, float *S) {
  size_t T = p->T;
  if (!T) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)T, (int)p->m, 1.0f, fq, (int)p->ld_f, fk,
              (int)p->ld_f, 0.0f, S, (int)T);
  for (size_t i = 0; i < T; i++) {
    float *Si = S + i * T;
    double w = 1.0;
    for (size_t j = i + 1; j-- > 0;) {
      Si[j] = (float)(w * Si[j]);
      w *= p->decay;
    }
    for (size_t j = i + 1; j < T; j++) Si[j] = 0.0f;
  }
}

void kx_lin_causal_weights(const kx_lin_causal *p, const float *fq, const float *fk, float *A) {
  size_t T = p->T;
  kx_lin_causal_scores(p, fq, fk, A);
  for (size_t i = 0; i < T; i++) {
    float *Ai = A + i * T;
    double sum = 0.0;
    for (size_t j = 0; j <= i; j++) sum += p->normalise ? Ai[j] : fabsf(Ai[j]);
    double denom = p->normalise ? sum + p->eps : sum;
    if (denom == 0.0) continue;
    for (size_t j = 0; j <= i; j++) Ai[j] = (float)((p->normalise ? Ai[j] : fabsf(Ai[j])) / denom);
  }
}

/* Flops of sweep() as it runs (multiply-add = 2): per chunk of n rows the
 * in-chunk scores 2 n^2 ka, their decay weights on the kept triangle
 * n (n + 1) / 2, the product with c 2 n^2 dc and, with rowsum, the row sums
 * n^2; the state's product 2 n ka dc (not on the first chunk visited
 * without carry) and the state update 2 n ka dc + ka dc (not after the
 * last without carry), each with n ka decay weights and with rowsum the z
 * terms 2 n ka and n ka + ka. */
static double sweep_flops(size_t T, size_t chunk, size_t ka, size_t dc, float g, int rowsum, int carry) {
  const double a = (double)ka, c = (double)dc, decays = g != 1.0f;
  const size_t n_chunks = (T + chunk - 1) / chunk;
  double f = 0;
  for (size_t it = 0; it < n_chunks; it++) {
    const double n = (double)(T - it * chunk < chunk ? T - it * chunk : chunk);
    f += 2 * n * n * (a + c) + n * (n + 1) / 2 + (rowsum ? n * n : 0);
    if (it > 0 || carry) f += 2 * n * a * c + decays * n * a + (rowsum ? 2 * n * a : 0);
    if (it + 1 < n_chunks || carry) f += 2 * n * a * c + a * c + decays * n * a + (rowsum ? n * a + a : 0);
  }
  return f;
}

double kx_lin_causal_flops(const kx_lin_causal *p, int backward) {
  const size_t ch = chunk_of(p), T = p->T, m = p->m, d = p->dv, w = d + 1;
  const double rows = (double)T;
  if (!T) return 0;
  if (!backward) /* normalising: eps, reciprocal and d products per row */
    return sweep_flops(T, ch, m, d, p->decay, p->normalise, p->state != NULL) +
           (p->normalise ? rows * (2.0 + (double)d) : 0);
  if (!p->normalise) return 2 * sweep_flops(T, ch, d, m, p->decay, 0, 0) + sweep_flops(T, ch, m, d, p->decay, 0, 0);
  /* dnum, dden: reciprocal, d products, a d-term dot product, one product per row */
  return 2 * sweep_flops(T, ch, w, m, p->decay, 0, 0) + sweep_flops(T, ch, m, d, p->decay, 0, 0) +
         rows * (3.0 * (double)d + 2);
}
