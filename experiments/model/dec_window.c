#include "experiments/model/dec_window.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cblas.h>

#include "experiments/model/dec_fastmath.h"

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }
static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

/* First query row with a linear part (its key i + past - w exists). */
static size_t linear_start(const kx_win_causal *p) { return p->window > p->past ? p->window - p->past : 0; }

/* The kernel of the linear part: queries from row linear_start on. */
static kx_lin_causal linear_kernel(const kx_win_causal *p) {
  kx_lin_causal lp = p->lin;
  size_t s0 = linear_start(p);
  lp.T = p->lin.T > s0 ? p->lin.T - s0 : 0;
  return lp;
}

/* Rows per block and the most keys a block sees. */
static size_t block_rows(const kx_win_causal *p) { return max_sz(min_sz(KX_WIN_ROWS, p->lin.T), 1); }
static size_t block_keys(const kx_win_causal *p) {
  return p->window ? min_sz(block_rows(p) + p->window - 1, p->past + p->lin.T) : 0;
}

/* Keys [lo, hi) of query rows [i0, i1) (key index = query index + past). */
static void block_range(const kx_win_causal *p, size_t i0, size_t i1, size_t *lo, size_t *hi) {
  size_t e = p->past + i0 + 1;
  *lo = e > p->window ? e - p->window : 0;
  *hi = p->past + i1;
}

size_t kx_win_forward_scratch_floats(const kx_win_causal *p) {
  kx_lin_causal lp = linear_kernel(p);
  size_t rb = block_rows(p);
  return p->lin.T + kx_lin_causal_forward_scratch_floats(&lp) + rb * block_keys(p) + rb * p->lin.dv + rb;
}

size_t kx_win_scratch_floats(const kx_win_causal *p) {
  kx_lin_causal lp = linear_kernel(p);
  size_t rb = block_rows(p), dv = p->lin.dv;
  size_t lin = lp.T * (dv + 1) + kx_lin_causal_scratch_floats(&lp);
  size_t win = 2 * rb * block_keys(p) + rb * dv + rb;
  return max_sz(kx_win_forward_scratch_floats(p), max_sz(lin, win));
}

/* S (nb, nk) = scale q[i0..i1) k[lo..hi)^T. */
static void block_logits(const kx_win_causal *p, const float *q, const float *k, size_t i0, size_t nb, size_t lo,
                         size_t nk, float *S) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nk, (int)p->dqk, p->scale, q + i0 * p->ld_qk,
              (int)p->ld_qk, k + lo * p->ld_qk, (int)p->ld_qk, 0.0f, S, (int)nk);
}

/* Row r of a block (query i): S_r <- exp(S_r - shift) on the window's keys,
 * 0 elsewhere; returns their sum.  Keys of the block start at lo. */
static float window_probs(const kx_win_causal *p, size_t i, size_t lo, size_t nk, float shift, float *Sr) {
  size_t e = p->past + i, first = e + 1 > p->window ? e + 1 - p->window : 0; /* keys first .. e */
  float sum = 0.0f;
  for (size_t j = 0; j < nk; j++) {
    size_t key = lo + j;
    Sr[j] = key >= first && key <= e ? kx_expf(Sr[j] - shift) : 0.0f;
    sum += Sr[j];
  }
  return sum;
}

static float window_max(const kx_win_causal *p, size_t i, size_t lo, const float *Sr) {
  size_t e = p->past + i, first = e + 1 > p->window ? e + 1 - p->window : 0;
  float mx = -INFINITY;
  for (size_t key = first; key <= e; key++) mx = Sr[key - lo] > mx ? Sr[key - lo] : mx;
  return mx;
}

void kx_win_forward(const kx_win_causal *p, const float *q, const float *k, const float *fq, const float *fk,
                    const float *v, const float *lam, float beta, float *o, float *stats, float *scratch) {
  size_t T = p->lin.T, dv = p->lin.dv, ld_o = p->lin.ld_o, s0 = linear_start(p), rb = block_rows(p);
  if (!T) return;
  kx_lin_causal lp = linear_kernel(p);
  float *dl = scratch, *ws = dl + T, *S = ws + kx_lin_causal_forward_scratch_floats(&lp);
  float *Nw = S + rb * block_keys(p), *Dw = Nw + rb * dv;
  /* The linear sums of the rows that have them (o rows s0.., dl). */
  if (lp.T) kx_lin_causal_sums(&lp, fq + s0 * p->lin.ld_f, fk, v, o + s0 * ld_o, dl + s0, ws);
  for (size_t i0 = 0; i0 < T; i0 += rb) {
    size_t i1 = min_sz(i0 + rb, T), nb = i1 - i0, lo, hi;
    block_range(p, i0, i1, &lo, &hi);
    size_t nk = p->window ? hi - lo : 0;
    if (nk) block_logits(p, q, k, i0, nb, lo, nk, S);
    for (size_t r = 0; r < nb; r++) {
      size_t i = i0 + r;
      float *st = stats + i * KX_WIN_STATS, *Sr = S + r * nk;
      float shift = nk ? window_max(p, i, lo, Sr) : -INFINITY, log_rho = -INFINITY;
      int linear = i >= s0;
      if (linear) {
        float base = beta + (lam ? lam[i] : 0.0f), l = base + logf(dl[i] + p->lin.eps);
        shift = l > shift ? l : shift;
        log_rho = base - shift;
      }
      Dw[r] = nk ? window_probs(p, i, lo, nk, shift, Sr) : 0.0f;
      st[KX_WIN_SHIFT] = shift;
      st[KX_WIN_COEF] = log_rho;
    }
    if (nk)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)dv, (int)nk, 1.0f, S, (int)nk,
                  v + lo * p->lin.ld_v, (int)p->lin.ld_v, 0.0f, Nw, (int)dv);
    else
      memset(Nw, 0, nb * dv * sizeof(float));
    for (size_t r = 0; r < nb; r++) {
      size_t i = i0 + r;
      float *st = stats + i * KX_WIN_STATS, *oi = o + i * ld_o, *nw = Nw + r * dv;
      if (i >= s0) {
        float rho = kx_expf(st[KX_WIN_COEF]), den = Dw[r] + rho * (dl[i] + p->lin.eps), inv = 1.0f / den;
        for (size_t c = 0; c < dv; c++) oi[c] = (nw[c] + rho * oi[c]) * inv;
        st[KX_WIN_DEN] = den;
      } else {
        float inv = 1.0f / Dw[r];
        for (size_t c = 0; c < dv; c++) oi[c] = nw[c] * inv;
        st[KX_WIN_DEN] = Dw[r];
      }
    }
  }
}

void kx_win_backward_linear(const kx_win_causal *p, const float *fq, const float *fk, const float *v,
                            const float *o, const float *stats, const float *dout, float *dfq, float *dfk, float *dv,
                            float *scratch) {
  size_t T = p->lin.T, d = p->lin.dv, m = p->lin.m, w1 = d + 1, s0 = linear_start(p);
  kx_lin_causal lp = linear_kernel(p);
  size_t nl = lp.T, ld_f = p->lin.ld_f, ld_v = p->lin.ld_v, ld_o = p->lin.ld_o;
  /* Rows without a linear part: query rows before s0, key rows from nl on. */
  for (size_t t = 0; t < T; t++) {
    if (t < s0) memset(dfq + t * ld_f, 0, m * sizeof(float));
    if (t >= nl) {
      memset(dfk + t * ld_f, 0, m * sizeof(float));
      memset(dv + t * ld_v, 0, d * sizeof(float));
    }
  }
  if (!nl) return;
  /* gn_i = rho_i [dout_i, -(dout_i . y_i)] / den_i: the gradients of the
   * linear sums num_i, den_i (y = (Nw + rho num) / (Dw + rho (den + eps))). */
  float *gn = scratch, *ks = gn + nl * w1;
  for (size_t r = 0; r < nl; r++) {
    size_t i = s0 + r;
    const float *st = stats + i * KX_WIN_STATS, *go = dout + i * ld_o, *oi = o + i * ld_o;
    float c = kx_expf(st[KX_WIN_COEF]) / st[KX_WIN_DEN], dot = 0.0f;
    for (size_t k = 0; k < d; k++) {
      gn[r * w1 + k] = go[k] * c;
      dot += go[k] * oi[k];
    }
    gn[r * w1 + d] = -dot * c;
  }
  kx_lin_causal_backward_sums(&lp, fq + s0 * ld_f, fk, v, gn, dfq + s0 * ld_f, dfk, dv, ks);
}

void kx_win_backward_window(const kx_win_causal *p, const float *q, const float *k, const float *v, const float *o,
                            const float *stats, const float *dout, float *dq, float *dk, float *dv, float *dbeta,
                            float *scratch) {
  size_t T = p->lin.T, d = p->lin.dv, rb = block_rows(p), ld_o = p->lin.ld_o, ld_v = p->lin.ld_v;
  size_t kmax = block_keys(p);
  if (!T || !p->window) return;
  float *P = scratch, *dS = P + rb * kmax, *G = dS + rb * kmax, *dden = G + rb * d;
  double db = 0.0;
  for (size_t i0 = 0; i0 < T; i0 += rb) {
    size_t i1 = min_sz(i0 + rb, T), nb = i1 - i0, lo, hi;
    block_range(p, i0, i1, &lo, &hi);
    size_t nk = hi - lo;
    block_logits(p, q, k, i0, nb, lo, nk, P);
    /* dnum_i = dout_i / den_i (G), dden_i = -(dout_i . y_i) / den_i */
    for (size_t r = 0; r < nb; r++) {
      size_t i = i0 + r;
      const float *st = stats + i * KX_WIN_STATS, *go = dout + i * ld_o, *oi = o + i * ld_o;
      float inv = 1.0f / st[KX_WIN_DEN], dot = 0.0f;
      for (size_t c = 0; c < d; c++) {
        G[r * d + c] = go[c] * inv;
        dot += go[c] * oi[c];
      }
      dden[r] = -dot * inv;
      window_probs(p, i, lo, nk, st[KX_WIN_SHIFT], P + r * nk);
    }
    /* dP = G v^T + dden; ds = P (.) dP (the logits' gradient before scale) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nk, (int)d, 1.0f, G, (int)d,
                v + lo * ld_v, (int)ld_v, 0.0f, dS, (int)nk);
    for (size_t r = 0; r < nb; r++) {
      float row = 0.0f;
      for (size_t j = 0; j < nk; j++) {
        dS[r * nk + j] = P[r * nk + j] * (dS[r * nk + j] + dden[r]);
        row += dS[r * nk + j];
      }
      /* raising beta by x is lowering every window logit of the row by x */
      if (stats[(i0 + r) * KX_WIN_STATS + KX_WIN_COEF] > -INFINITY) db -= row;
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nk, (int)d, (int)nb, 1.0f, P, (int)nk, G, (int)d, 1.0f,
                dv + lo * ld_v, (int)ld_v);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)p->dqk, (int)nk, p->scale, dS, (int)nk,
                k + lo * p->ld_qk, (int)p->ld_qk, 1.0f, dq + i0 * p->ld_qk, (int)p->ld_qk);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nk, (int)p->dqk, (int)nb, p->scale, dS, (int)nk,
                q + i0 * p->ld_qk, (int)p->ld_qk, 1.0f, dk + lo * p->ld_qk, (int)p->ld_qk);
  }
  *dbeta += (float)db;
}

void kx_win_weights(const kx_win_causal *p, const float *q, const float *k, const float *fq, const float *fk,
                    const float *stats, float *A) {
  size_t T = p->lin.T, w = p->window;
  if (!T) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)T, (int)p->lin.m, 1.0f, fq, (int)p->lin.ld_f,
              fk, (int)p->lin.ld_f, 0.0f, A, (int)T);
  for (size_t i = 0; i < T; i++) {
    const float *st = stats + i * KX_WIN_STATS;
    float *Ai = A + i * T, inv = 1.0f / st[KX_WIN_DEN];
    double rho = exp((double)st[KX_WIN_COEF]), g = 1.0; /* g^(i-w-j), as kx_lin_causal_scores builds it */
    for (size_t j = i + 1; j-- > 0;) {
      if (j + w > i) {
        float s = 0.0f;
        for (size_t c = 0; c < p->dqk; c++) s += q[i * p->ld_qk + c] * k[j * p->ld_qk + c];
        Ai[j] = kx_expf(p->scale * s - st[KX_WIN_SHIFT]) * inv;
      } else {
        Ai[j] = (float)(rho * g * Ai[j]) * inv;
        g *= p->lin.decay;
      }
    }
    for (size_t j = i + 1; j < T; j++) Ai[j] = 0.0f;
  }
}

size_t kx_win_rows_scratch_floats(size_t T) { return 2 * T * T; }

void kx_win_rows_backward(const kx_win_causal *p, const float *q, const float *k, const float *fq, const float *fk,
                          const float *stats, const float *dA, float *dfq, float *dfk, float *dbeta, float *scratch) {
  size_t T = p->lin.T, w = p->window;
  if (!T) return;
  float *A = scratch, *dS = A + T * T;
  kx_win_weights(p, q, k, fq, fk, stats, A);
  double db = 0.0;
  for (size_t i = 0; i < T; i++) {
    const float *st = stats + i * KX_WIN_STATS, *Ai = A + i * T, *dAi = dA + i * T;
    float *dSi = dS + i * T;
    memset(dSi, 0, T * sizeof(float));
    if (i < w || !(st[KX_WIN_COEF] > -INFINITY)) continue; /* no linear part: nothing of the map here */
    double c = 0.0, rho = exp((double)st[KX_WIN_COEF]), den = st[KX_WIN_DEN], g = 1.0;
    for (size_t j = 0; j <= i; j++) c += (double)dAi[j] * Ai[j];
    db -= c * rho * p->lin.eps / den;
    for (size_t j = i + 1 - w; j-- > 0;) { /* j = i - w down to 0, g = g^(i-w-j) */
      dSi[j] = (float)(rho * g * (dAi[j] - c) / den);
      db += (dAi[j] - c) * Ai[j];
      g *= p->lin.decay;
    }
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, (int)p->lin.m, (int)T, 1.0f, dS, (int)T, fk,
              (int)p->lin.ld_f, 0.0f, dfq, (int)p->lin.ld_f);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)T, (int)p->lin.m, (int)T, 1.0f, dS, (int)T, fq,
              (int)p->lin.ld_f, 0.0f, dfk, (int)p->lin.ld_f);
  *dbeta += (float)db;
}

size_t kx_win_buffer_floats(const kx_win_causal *p) {
  return (p->window + KX_WIN_SUB) * (p->dqk + p->lin.dv + p->lin.m);
}

void kx_win_decode(const kx_win_causal *p, size_t pos, const float *q, const float *k, const float *fq,
                   const float *fk, const float *v, const float *lam, float beta, float *o, float *stats, float *buf,
                   size_t *fill, float *scratch) {
  size_t T = p->lin.T, w = p->window, R = w + KX_WIN_SUB, dqk = p->dqk, dv = p->lin.dv, m = p->lin.m;
  float *kb = buf, *vb = kb + R * dqk, *fb = vb + R * dv;
  size_t end = *fill;
  for (size_t t0 = 0; t0 < T; t0 += KX_WIN_SUB) {
    size_t n = min_sz(KX_WIN_SUB, T - t0), past = min_sz(pos + t0, w);
    if (end + n > R) { /* keep the window's tokens, at the front */
      memmove(kb, kb + (end - past) * dqk, past * dqk * sizeof(float));
      memmove(vb, vb + (end - past) * dv, past * dv * sizeof(float));
      memmove(fb, fb + (end - past) * m, past * m * sizeof(float));
      end = past;
    }
    memcpy(kb + end * dqk, k + t0 * dqk, n * dqk * sizeof(float));
    memcpy(vb + end * dv, v + t0 * dv, n * dv * sizeof(float));
    memcpy(fb + end * m, fk + t0 * m, n * m * sizeof(float));
    kx_win_causal sp = *p;
    sp.lin.T = n, sp.lin.ld_f = m, sp.lin.ld_v = dv, sp.ld_qk = dqk, sp.past = past;
    size_t from = end - past;
    kx_win_forward(&sp, q + t0 * dqk, kb + from * dqk, fq + t0 * m, fb + from * m, vb + from * dv,
                   lam ? lam + t0 : NULL, beta, o + t0 * p->lin.ld_o, stats + t0 * KX_WIN_STATS, scratch);
    end += n;
  }
  *fill = end;
}

/* ---- every (batch, head) ---- */

static kx_win_causal head_problem(const kx_win_heads *w, size_t T, size_t h) {
  const kx_dec_config *cfg = w->c->cfg;
  size_t d = cfg->width / cfg->heads;
  kx_win_causal p = {w->kernel(w->kind, cfg, T, h), cfg->window, d, d, w->scale, 0};
  return p;
}

/* The forward scratch of T rows, in training or in decoding (which runs
 * the rows in pieces of KX_WIN_SUB behind up to a window of past rows):
 * one size for both, non-decreasing in T, so that the acts of a decoding
 * call of T rows fit in those allocated for more. */
static size_t head_forward_scratch(const kx_win_heads *w, size_t T) {
  kx_win_causal p = head_problem(w, T, 0), dp = p;
  dp.lin.T = min_sz(T, KX_WIN_SUB), dp.past = p.window;
  return max_sz(kx_win_forward_scratch_floats(&p), kx_win_forward_scratch_floats(&dp));
}

size_t kx_win_heads_act_floats(const kx_win_heads *w, size_t B, size_t T) {
  return B * w->c->cfg->heads * head_forward_scratch(w, T);
}

size_t kx_win_heads_scratch_floats(const kx_win_heads *w, size_t B, size_t T) {
  kx_win_causal p = head_problem(w, T, 0);
  size_t BH = B * w->c->cfg->heads;
  return BH * kx_win_scratch_floats(&p) + BH;
}

size_t kx_win_state_floats(const kx_dec_config *cfg, size_t m) {
  size_t d = cfg->width / cfg->heads;
  return 1 + cfg->heads * (cfg->window + KX_WIN_SUB) * (2 * d + m);
}

static int parallel_heads(size_t B, size_t H, size_t T, size_t d) { return B * H * T * d >= 16384; }

void kx_win_heads_forward(const kx_win_heads *w) {
  const kx_attn_ctx *c = w->c;
  const kx_dec_config *cfg = c->cfg;
  size_t B = c->B, T = c->T, H = cfg->heads, C = cfg->width, d = C / H;
  kx_win_causal p0 = head_problem(w, T, 0);
  size_t m = p0.lin.m, fs = head_forward_scratch(w, T), buf = kx_win_buffer_floats(&p0);
  /* Decoding: the buffers' fill (the same for every head), an integer
   * below 2^24, exact in a float. */
  float *fill = c->state ? w->win_state : NULL;
  size_t fill0 = fill ? (size_t)fill[0] : 0, fill1 = fill0;
#pragma omp parallel for schedule(dynamic, 1) if (parallel_heads(B, H, T, d))
  for (size_t bh = 0; bh < B * H; bh++) {
    size_t b = bh / H, h = bh % H, off = bh * T;
    kx_win_causal p = head_problem(w, T, h);
    const float *lam = w->lam ? w->lam + off : NULL;
    float *o = w->o + b * T * C + h * d, *st = w->stats + off * KX_WIN_STATS, *s = w->scratch + bh * fs;
    if (c->state) {
      size_t used = fill0;
      p.lin.state = w->state + bh * (m * d + m);
      kx_win_decode(&p, c->pos, w->q + off * d, w->k + off * d, w->fq + off * m, w->fk + off * m, w->v + off * d,
                    lam, w->beta[h], o, st, fill + 1 + bh * buf, &used, s);
      if (bh == 0) fill1 = used;
    } else {
      kx_win_forward(&p, w->q + off * d, w->k + off * d, w->fq + off * m, w->fk + off * m, w->v + off * d, lam,
                     w->beta[h], o, st, s);
    }
  }
  if (fill) fill[0] = (float)fill1;
}

void kx_win_heads_backward_linear(const kx_win_heads *w, const float *dout, float *dfq, float *dfk, float *dv) {
  const kx_attn_ctx *c = w->c;
  size_t B = c->B, T = c->T, H = c->cfg->heads, C = c->cfg->width, d = C / H;
  kx_win_causal p0 = head_problem(w, T, 0);
  size_t m = p0.lin.m, ws = kx_win_scratch_floats(&p0);
#pragma omp parallel for schedule(dynamic, 1) if (parallel_heads(B, H, T, d))
  for (size_t bh = 0; bh < B * H; bh++) {
    size_t b = bh / H, h = bh % H, off = bh * T;
    kx_win_causal p = head_problem(w, T, h);
    size_t col = b * T * C + h * d;
    kx_win_backward_linear(&p, w->fq + off * m, w->fk + off * m, w->v + off * d, w->o + col,
                           w->stats + off * KX_WIN_STATS, dout + col, dfq + off * m, dfk + off * m, dv + off * d,
                           w->scratch + bh * ws);
  }
}

void kx_win_heads_backward_window(const kx_win_heads *w, const float *dout, float *dq, float *dk, float *dv,
                                  float *dbeta) {
  const kx_attn_ctx *c = w->c;
  size_t B = c->B, T = c->T, H = c->cfg->heads, C = c->cfg->width, d = C / H;
  kx_win_causal p0 = head_problem(w, T, 0);
  size_t ws = kx_win_scratch_floats(&p0);
  float *part = w->scratch + B * H * ws; /* each head's beta gradient, summed below in a fixed order */
#pragma omp parallel for schedule(dynamic, 1) if (parallel_heads(B, H, T, d))
  for (size_t bh = 0; bh < B * H; bh++) {
    size_t b = bh / H, h = bh % H, off = bh * T;
    kx_win_causal p = head_problem(w, T, h);
    size_t col = b * T * C + h * d;
    part[bh] = 0.0f;
    kx_win_backward_window(&p, w->q + off * d, w->k + off * d, w->v + off * d, w->o + col,
                           w->stats + off * KX_WIN_STATS, dout + col, dq + off * d, dk + off * d, dv + off * d,
                           &part[bh], w->scratch + bh * ws);
  }
  for (size_t h = 0; h < H; h++)
    for (size_t b = 0; b < B; b++) dbeta[h] += part[b * H + h];
}

void kx_win_heads_weights(const kx_win_heads *w, size_t b, size_t h, float *A) {
  size_t T = w->c->T, H = w->c->cfg->heads, d = w->c->cfg->width / H, off = (b * H + h) * T;
  kx_win_causal p = head_problem(w, T, h);
  size_t m = p.lin.m;
  kx_win_weights(&p, w->q + off * d, w->k + off * d, w->fq + off * m, w->fk + off * m,
                 w->stats + off * KX_WIN_STATS, A);
}

void kx_win_heads_rows_backward(const kx_win_heads *w, size_t b, size_t h, const float *dA, float *dfq, float *dfk,
                                float *dbeta, float *scratch) {
  size_t T = w->c->T, H = w->c->cfg->heads, d = w->c->cfg->width / H, off = (b * H + h) * T;
  kx_win_causal p = head_problem(w, T, h);
  size_t m = p.lin.m;
  kx_win_rows_backward(&p, w->q + off * d, w->k + off * d, w->fq + off * m, w->fk + off * m,
                       w->stats + off * KX_WIN_STATS, dA, dfq, dfk, dbeta, scratch);
}

int kx_win_declare(const kx_dec_config *cfg, size_t layer, kx_param_table *tab, size_t *n) {
  if (!cfg->window) return 0;
  char name[48];
  snprintf(name, sizeof name, "layer%zu/win_beta", layer);
  int rc = kx_ptable_add(tab, name, cfg->heads, 0, 0, KX_INIT_ZERO, NULL);
  if (!rc) ++*n;
  return rc;
}
