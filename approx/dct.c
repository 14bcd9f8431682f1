/* Orthonormal DCT-I..IV through FFTW r2r plans (see dct.h for the matrices).
 *
 * FFTW's unnormalised kinds, for length n (FFTW manual, "1d Real-even DFTs"):
 *   REDFT10 (II):  Y_k = 2 sum_j X_j cos(pi (2j+1) k / (2n))
 *   REDFT01 (III): Y_k = X_0 + 2 sum_{j>=1} X_j cos(pi j (2k+1) / (2n))
 *   REDFT11 (IV):  Y_k = 2 sum_j X_j cos(pi (2j+1)(2k+1) / (4n))
 *   REDFT00 (I):   Y_k = X_0 + (-1)^k X_{n-1} + 2 sum_{j=1}^{n-2} X_j cos(pi j k / (n-1))
 * Each orthonormal transform is y_k = out_k * Y_k(in .* x), with
 *   II:  in = 1;                      out_0 = 1/(2 sqrt d), out_k = 1/sqrt(2d)
 *   III: in_0 = sqrt 2, in_j = 1;     out = 1/sqrt(2d)
 *   IV:  in = 1;                      out = 1/sqrt(2d)
 *   I:   in_0 = in_{d-1} = sqrt 2;    out = 1/sqrt(2(d-1)), end points times a
 *        further 1/sqrt 2
 * (for DCT-I: the end-point inputs enter FFTW's sum once instead of twice,
 * so sqrt 2 = 2 w makes them weight w = 1/sqrt 2 relative to the interior,
 * and the outputs carry the same w; this symmetric weighting is what makes
 * the matrix orthogonal).  The scalings cost 2d multiplications, nothing
 * beside the O(d log d) transform.
 *
 * The float variant (kx_dctf) uses the same kinds through fftwf; its
 * scalings are a common factor and the end-point factors (dct.h). */
#include "approx/dct.h"

#include <cblas.h>
#include <fftw3.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "approx/dct_simd.h"
#include "core/kx_error.h"

struct kx_dct {
  int type;
  size_t d;
  fftw_plan plan;   /* NULL for d = 1 (identity) */
  fftw_plan batch;  /* KX_DCT_BATCH rows of kx_dct_batch_ld(d); NULL for d = 1 or the dense route */
  double *dense;    /* d x d unnormalised matrix T (row k = output k) for the dense route, or NULL */
  double *folded;   /* DCT-I of even d on the dense route: T's even rows, then its odd rows, on the
                       first d/2 columns (2 x d/2 x d/2), or NULL */
  double *simd_tw;  /* the batch kernels' cosines (dct_simd.h) for the SIMD route, or NULL */
  double *in_scale; /* d factors applied before FFTW */
  double *out_scale;
  double *simd_in, *simd_out; /* the SIMD route's factors, or NULL */
};

/* FFTW's planner (and plan destruction) share global state; every call
 * into them from this library goes through this lock. */
static pthread_mutex_t planner_lock = PTHREAD_MUTEX_INITIALIZER;

/* The two halves of a workspace start on 64-byte boundaries relative to
 * the base, so both have the base's alignment: FFTW's new-array execute
 * requires the alignment the plan was made with. */
static size_t work_stride(size_t d) { return (d + 7) & ~(size_t)7; }

/* Workspaces start on a 64-byte boundary: a cache line, and the width of
 * an AVX-512 register, so the SIMD kernels' full-width loads and stores of
 * interleaved rows never straddle two lines.  fftw_malloc promises only
 * FFTW's own SIMD alignment (32 bytes with Debian's FFTW), which left the
 * base at 32 mod 64 or not depending on the caller's heap, and the WDCF
 * maps up to a fifth slower when it was (docs/library.md, "Cost of a call"). */
#define KX_DCT_WORK_ALIGN 64

static double *work_alloc(size_t doubles, const char *what, size_t d) {
  const size_t bytes = (doubles * sizeof(double) + KX_DCT_WORK_ALIGN - 1) & ~(size_t)(KX_DCT_WORK_ALIGN - 1);
  double *w = aligned_alloc(KX_DCT_WORK_ALIGN, bytes);
  if (!w) kx_fail(KX_ENOMEM, "out of memory for a DCT %s of length %zu", what, d);
  return w;
}

double *kx_dct_work_alloc(size_t d) { return work_alloc(2 * work_stride(d ? d : 1), "workspace", d); }

void kx_dct_work_free(double *work) { free(work); }

static fftw_r2r_kind fftw_kind(int type) {
  switch (type) {
    case 1: return FFTW_REDFT00;
    case 2: return FFTW_REDFT10;
    case 3: return FFTW_REDFT01;
    default: return FFTW_REDFT11;
  }
}

size_t kx_dct_batch_ld(size_t d) { return work_stride(d ? d : 1); }

/* The in and out halves, then the SIMD kernels' scratch. */
static size_t batch_work_doubles(size_t d) {
  return 2 * KX_DCT_BATCH * kx_dct_batch_ld(d) + kx_dct_simd_scratch(d ? d : 1);
}

double *kx_dct_batch_work_alloc(size_t d) { return work_alloc(batch_work_doubles(d), "batch workspace", d); }

/* A d x d GEMM row costs 2 d^2 flops and runs ~8x more flops per second
 * than FFTW's small transforms (measured at d = 64, 128: DCT-II through
 * FFTW 0.12 / 0.32 us per vector, 9.8x / 17x fewer flops than the GEMM's
 * 0.17 / 0.62 us; DCT-I 0.27 / 7.7 us with 4x / 1x fewer), so the dense
 * route wins when FFTW saves less than that factor. */
#define KX_DCT_DENSE_FLOP_RATIO 8.0

/* The batch route: FFTW's plan over KX_DCT_BATCH rows, or the matrix T
 * itself when that is cheaper (decided by FFTW's operation count). */
static int plan_batch(kx_dct *p) {
  const size_t d = p->d, ld = kx_dct_batch_ld(d);
  double adds, muls, fmas;
  fftw_flops(p->plan, &adds, &muls, &fmas);
  const double fftw_ops = adds + muls + 2 * fmas, gemm_ops = 2.0 * (double)d * (double)d;
  double *work = kx_dct_batch_work_alloc(d);
  if (!work) return KX_ENOMEM;
  memset(work, 0, batch_work_doubles(d) * sizeof *work);
  if (gemm_ops <= KX_DCT_DENSE_FLOP_RATIO * fftw_ops) {
    /* T e_j through the one-vector plan: the same unnormalised sums. */
    p->dense = kx_malloc(d * d * sizeof *p->dense);
    if (!p->dense) {
      kx_dct_work_free(work);
      return KX_ENOMEM;
    }
    double *in = work, *out = work + work_stride(d);
    for (size_t j = 0; j < d; j++) {
      memset(in, 0, d * sizeof *in);
      in[j] = 1.0;
      fftw_execute_r2r(p->plan, in, out);
      for (size_t k = 0; k < d; k++) p->dense[k * d + j] = out[k];
    }
    kx_dct_work_free(work);
    if (p->type == 1 && d % 2 == 0) {
      /* T_{k, d-1-j} = (-1)^k T_kj: even outputs see x_j + x_{d-1-j}, odd
       * ones x_j - x_{d-1-j}, so two half-size products do the work of one
       * full one at half the flops (a DCT-I of length 2^k has no power-of-two
       * fast transform: its FFT has length 2(d - 1)). */
      const size_t h = d / 2;
      if (!(p->folded = kx_malloc(2 * h * h * sizeof *p->folded))) return KX_ENOMEM;
      for (size_t k = 0; k < d; k++)
        for (size_t j = 0; j < h; j++) p->folded[(k % 2) * h * h + (k / 2) * h + j] = p->dense[k * d + j];
    }
    return 0;
  }
  int n[1] = {(int)d};
  fftw_r2r_kind kind[1] = {fftw_kind(p->type)};
  pthread_mutex_lock(&planner_lock);
  p->batch = fftw_plan_many_r2r(1, n, KX_DCT_BATCH, work, NULL, 1, (int)ld,
                                work + KX_DCT_BATCH * ld, NULL, 1, (int)ld, kind, FFTW_ESTIMATE);
  pthread_mutex_unlock(&planner_lock);
  kx_dct_work_free(work);
  if (!p->batch)
    return kx_fail(KX_ENUM, "FFTW could not plan a batch of DCT-%d of length %zu", p->type, d);
  return 0;
}

/* The SIMD route: orthonormal y = out .* S(in .* x), S the plain cosine
 * sums of dct_simd.h and C the matrices of dct.h:
 *   II:  C = diag(s) S,  s_0 = sqrt(1/d), s_k = sqrt(2/d)  -> in = 1, out = s
 *   III: C = S diag(s)                                    -> in = s, out = 1
 *   IV:  C = sqrt(2/d) S                                  -> in = 1, out = sqrt(2/d) */
static int plan_simd_dct1(kx_dct *p);

static int plan_simd(kx_dct *p) {
  const size_t d = p->d;
  if (p->type == 1) return plan_simd_dct1(p);
  p->simd_tw = kx_malloc(2 * d * sizeof *p->simd_tw);
  p->simd_in = kx_malloc(d * sizeof *p->simd_in);
  p->simd_out = kx_malloc(d * sizeof *p->simd_out);
  if (!p->simd_tw || !p->simd_in || !p->simd_out) return KX_ENOMEM;
  kx_dct_simd_twiddles(d, p->simd_tw);
  const double s0 = sqrt(1.0 / (double)d), s = sqrt(2.0 / (double)d);
  for (size_t k = 0; k < d; k++) {
    p->simd_in[k] = p->type == 3 ? s : 1.0;
    p->simd_out[k] = p->type == 3 ? 1.0 : s;
  }
  if (p->type == 2) p->simd_out[0] = s0;
  if (p->type == 3) p->simd_in[0] = s0;
  return 0;
}

/* DCT-I on the SIMD route: the folded matrix (dct_simd.h) taken from the
 * one-vector plan's own sums (T e_j, as the dense route builds T), and
 * FFTW's in and out factors. */
static int plan_simd_dct1(kx_dct *p) {
  const size_t d = p->d, h = d / 2;
  p->simd_tw = kx_malloc(2 * h * h * sizeof *p->simd_tw);
  p->simd_in = kx_malloc(d * sizeof *p->simd_in);
  p->simd_out = kx_malloc(d * sizeof *p->simd_out);
  double *work = kx_dct_work_alloc(d);
  if (!p->simd_tw || !p->simd_in || !p->simd_out || !work) {
    kx_dct_work_free(work);
    return KX_ENOMEM;
  }
  memcpy(p->simd_in, p->in_scale, d * sizeof *p->simd_in);
  memcpy(p->simd_out, p->out_scale, d * sizeof *p->simd_out);
  double *in = work, *out = work + work_stride(d);
  for (size_t j = 0; j < h; j++) {
    memset(in, 0, d * sizeof *in);
    in[j] = 1.0;
    fftw_execute_r2r(p->plan, in, out);
    for (size_t k = 0; k < d; k++) p->simd_tw[(k % 2) * h * h + (k / 2) * h + j] = out[k];
  }
  kx_dct_work_free(work);
  return 0;
}

const double *kx_dct_in_scale(const kx_dct *p) { return p->simd_in ? p->simd_in : p->in_scale; }
const double *kx_dct_out_scale(const kx_dct *p) { return p->simd_out ? p->simd_out : p->out_scale; }
int kx_dct_batch_is_dense(const kx_dct *p) { return p->dense != NULL; }
int kx_dct_batch_is_simd(const kx_dct *p) { return p->simd_tw != NULL; }

void kx_dct_batch_layout(const kx_dct *p, size_t *row_stride, size_t *elem_stride) {
  *row_stride = p->simd_tw ? 1 : kx_dct_batch_ld(p->d);
  *elem_stride = p->simd_tw ? KX_DCT_BATCH : 1;
}

double kx_dct_batch_flops(const kx_dct *p) {
  const double d = (double)p->d;
  if (p->simd_tw) return kx_dct_simd_flops(p->type, p->d);
  if (p->folded) return d * d + d;
  if (p->dense) return 2.0 * d * d;
  if (!p->plan) return 0;
  double adds, muls, fmas;
  fftw_flops(p->plan, &adds, &muls, &fmas);
  return adds + muls + 2 * fmas;
}

void kx_dct_execute_batch(const kx_dct *p, double *work) {
  const size_t d = p->d, ld = kx_dct_batch_ld(d);
  double *in = work, *out = work + KX_DCT_BATCH * ld;
  if (p->simd_tw) {
    kx_dct_simd_run(p->type, d, p->simd_tw, in, out, out + KX_DCT_BATCH * ld);
  } else if (p->batch) {
    fftw_execute_r2r(p->batch, in, out);
  } else if (p->folded) {
    const size_t h = d / 2;
    double *u = out + KX_DCT_BATCH * ld, *w = u + KX_DCT_BATCH * h, *e = w + KX_DCT_BATCH * h,
           *o = e + KX_DCT_BATCH * h;
    for (size_t r = 0; r < KX_DCT_BATCH; r++)
      for (size_t j = 0; j < h; j++) {
        const double a = in[r * ld + j], b = in[r * ld + d - 1 - j];
        u[r * h + j] = a + b;
        w[r * h + j] = a - b;
      }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, KX_DCT_BATCH, (int)h, (int)h, 1.0, u, (int)h,
                p->folded, (int)h, 0.0, e, (int)h);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, KX_DCT_BATCH, (int)h, (int)h, 1.0, w, (int)h,
                p->folded + h * h, (int)h, 0.0, o, (int)h);
    for (size_t r = 0; r < KX_DCT_BATCH; r++)
      for (size_t k = 0; k < h; k++) out[r * ld + 2 * k] = e[r * h + k], out[r * ld + 2 * k + 1] = o[r * h + k];
  } else if (p->dense) {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, KX_DCT_BATCH, (int)d, (int)d, 1.0, in,
                (int)ld, p->dense, (int)d, 0.0, out, (int)ld);
  } else {
    for (size_t r = 0; r < KX_DCT_BATCH; r++) out[r * ld] = in[r * ld]; /* d = 1 */
  }
}

/* The (type, length) pairs a plan exists for, double or float. */
static int check_plan_args(int type, size_t d) {
  if (type < 1 || type > 4) return kx_fail(KX_EINVAL, "DCT type must be 1..4 (I..IV), got %d", type);
  if (d == 0) return kx_fail(KX_EINVAL, "DCT length must be at least 1");
  if (type == 1 && d < 2)
    return kx_fail(KX_EINVAL, "DCT-I needs length d >= 2 (it is defined on d - 1 intervals), got d = %zu", d);
  if (d > (size_t)INT_MAX / 2) return kx_fail(KX_ERANGE, "DCT length %zu is beyond FFTW's int range", d);
  return 0;
}

kx_dct *kx_dct_create(int type, size_t d) {
  if (check_plan_args(type, d)) return NULL;
  kx_dct *p = kx_calloc(1, sizeof *p);
  if (!p) return NULL;
  p->type = type;
  p->d = d;
  p->in_scale = kx_malloc(d * sizeof *p->in_scale);
  p->out_scale = kx_malloc(d * sizeof *p->out_scale);
  if (!p->in_scale || !p->out_scale) {
    kx_dct_free(p);
    return NULL;
  }
  const double dd = (double)d;
  for (size_t k = 0; k < d; k++) {
    p->in_scale[k] = 1.0;
    p->out_scale[k] = 1.0 / sqrt(2.0 * dd);
  }
  switch (type) {
    case 1:
      for (size_t k = 0; k < d; k++) p->out_scale[k] = 1.0 / sqrt(2.0 * (dd - 1.0));
      p->in_scale[0] = p->in_scale[d - 1] = M_SQRT2;
      p->out_scale[0] *= M_SQRT1_2;
      p->out_scale[d - 1] *= M_SQRT1_2;
      break;
    case 2: p->out_scale[0] = 0.5 / sqrt(dd); break;
    case 3: p->in_scale[0] = M_SQRT2; break;
    default: break;
  }
  if (d == 1) {
    /* II, III and IV of length 1 are the identity; FFTW is not needed. */
    p->in_scale[0] = p->out_scale[0] = 1.0;
    return p;
  }
  double *work = kx_dct_work_alloc(d);
  if (!work) {
    kx_dct_free(p);
    return NULL;
  }
  memset(work, 0, 2 * work_stride(d) * sizeof *work);
  pthread_mutex_lock(&planner_lock);
  p->plan = fftw_plan_r2r_1d((int)d, work, work + work_stride(d), fftw_kind(type), FFTW_ESTIMATE);
  pthread_mutex_unlock(&planner_lock);
  kx_dct_work_free(work);
  if (!p->plan) {
    kx_fail(KX_ENUM, "FFTW could not plan a DCT-%d of length %zu", type, d);
    kx_dct_free(p);
    return NULL;
  }
  if (kx_dct_simd_supported(type, d) ? plan_simd(p) : plan_batch(p)) {
    kx_dct_free(p);
    return NULL;
  }
  return p;
}

void kx_dct_free(kx_dct *p) {
  if (!p) return;
  if (p->plan) {
    pthread_mutex_lock(&planner_lock);
    fftw_destroy_plan(p->plan);
    if (p->batch) fftw_destroy_plan(p->batch);
    pthread_mutex_unlock(&planner_lock);
  }
  free(p->dense);
  free(p->folded);
  free(p->simd_tw);
  free(p->simd_in);
  free(p->simd_out);
  free(p->in_scale);
  free(p->out_scale);
  free(p);
}

int kx_dct_apply(const kx_dct *p, const double *x, double *y, double *work) {
  const size_t d = p->d;
  double *own = NULL;
  if (!work) {
    own = work = kx_dct_work_alloc(d);
    if (!work) return KX_ENOMEM;
  }
  double *in = work, *out = work + work_stride(d);
  for (size_t j = 0; j < d; j++) in[j] = p->in_scale[j] * x[j];
  if (p->plan) fftw_execute_r2r(p->plan, in, out);
  else out[0] = in[0];
  /* x has been fully read into `in`, so y may alias x. */
  for (size_t k = 0; k < d; k++) y[k] = p->out_scale[k] * out[k];
  kx_dct_work_free(own);
  return 0;
}

/* cos(pi * num / den) with num reduced modulo 2 den first, so large integer
 * angles keep full relative accuracy. */
static double cos_pi_ratio(uint64_t num, uint64_t den) {
  return cos(M_PI * (double)(num % (2 * den)) / (double)den);
}

int kx_dct_matrix(int type, size_t d, double *c) {
  if (type < 1 || type > 4) return kx_fail(KX_EINVAL, "DCT type must be 1..4, got %d", type);
  if (d == 0 || (type == 1 && d < 2))
    return kx_fail(KX_EINVAL, "DCT-%d needs d >= %d, got %zu", type, type == 1 ? 2 : 1, d);
  for (size_t i = 0; i < d; i++)
    for (size_t j = 0; j < d; j++) {
      double v;
      switch (type) {
      case 1: { /* orthonormal DCT-I: sqrt(2/(d-1)) w_i w_j cos(pi i j/(d-1)), w = 1/sqrt 2 at the ends */
        double wi = (i == 0 || i == d - 1) ? M_SQRT1_2 : 1.0;
        double wj = (j == 0 || j == d - 1) ? M_SQRT1_2 : 1.0;
        v = sqrt(2.0 / (double)(d - 1)) * wi * wj * cos_pi_ratio((uint64_t)i * j, d - 1);
        break;
      }
      case 2:
      case 3: { /* III is the transpose of II */
        size_t k = type == 2 ? i : j, n = type == 2 ? j : i;
        double sk = k == 0 ? sqrt(1.0 / (double)d) : sqrt(2.0 / (double)d);
        v = sk * cos_pi_ratio((uint64_t)(2 * n + 1) * k, 2 * (uint64_t)d);
        break;
      }
      default: /* IV */
        v = sqrt(2.0 / (double)d) * cos_pi_ratio((uint64_t)(2 * i + 1) * (2 * j + 1), 4 * (uint64_t)d);
      }
      c[i * d + j] = v;
    }
  return 0;
}

/* ---- single precision ---------------------------------------------------- */

struct kx_dctf {
  int type;
  size_t d;
  fftwf_plan plan; /* in place, unaligned; NULL for d = 1 (identity) */
  float *matrix;   /* C (d, d) */
  float scale;     /* 1/sqrt(2d), or 1/sqrt(2(d-1)) for DCT-I */
  /* the batched route (dct_simd.h) for II-IV at power-of-two d, a multiple
   * of 16: twiddles, in and out factors (as plan_simd's, in float), ones */
  float *simd_tw, *simd_in, *simd_out, *ones;
};

void kx_dctf_free(kx_dctf *p) {
  if (!p) return;
  pthread_mutex_lock(&planner_lock);
  if (p->plan) fftwf_destroy_plan(p->plan);
  pthread_mutex_unlock(&planner_lock);
  free(p->matrix);
  free(p->simd_tw), free(p->simd_in), free(p->simd_out), free(p->ones);
  free(p);
}

/* The batched route's factors, as plan_simd's rounded to float. */
static int plan_simd_f(kx_dctf *p) {
  const size_t d = p->d;
  double *tw = kx_malloc(2 * d * sizeof *tw);
  p->simd_tw = kx_malloc(2 * d * sizeof *p->simd_tw);
  p->simd_in = kx_malloc(d * sizeof *p->simd_in);
  p->simd_out = kx_malloc(d * sizeof *p->simd_out);
  p->ones = kx_malloc(d * sizeof *p->ones);
  if (!tw || !p->simd_tw || !p->simd_in || !p->simd_out || !p->ones) {
    free(tw);
    return KX_ENOMEM;
  }
  kx_dct_simd_twiddles(d, tw);
  for (size_t k = 0; k < 2 * d; k++) p->simd_tw[k] = (float)tw[k];
  free(tw);
  const double s0 = sqrt(1.0 / (double)d), s = sqrt(2.0 / (double)d);
  for (size_t k = 0; k < d; k++) {
    p->simd_in[k] = (float)(p->type == 3 ? (k ? s : s0) : 1.0);
    p->simd_out[k] = (float)(p->type == 3 ? 1.0 : p->type == 2 && !k ? s0 : s);
    p->ones[k] = 1.0f;
  }
  return 0;
}

kx_dctf *kx_dctf_create(int type, size_t d) {
  if (check_plan_args(type, d)) return NULL;
  kx_dctf *p = kx_calloc(1, sizeof *p);
  double *c = kx_malloc(d * d * sizeof *c);
  if (p) p->matrix = kx_malloc(d * d * sizeof *p->matrix);
  if (!p || !c || !p->matrix || kx_dct_matrix(type, d, c)) {
    free(c);
    kx_dctf_free(p);
    return NULL;
  }
  p->type = type;
  p->d = d;
  p->scale = 1.0f / sqrtf(2.0f * (float)(type == 1 ? d - 1 : d));
  for (size_t i = 0; i < d * d; i++) p->matrix[i] = (float)c[i];
  free(c);
  if (d == 1) return p;
  float *buf = fftwf_malloc(d * sizeof *buf);
  if (!buf) {
    kx_fail(KX_ENOMEM, "out of memory planning a float DCT of length %zu", d);
    kx_dctf_free(p);
    return NULL;
  }
  pthread_mutex_lock(&planner_lock);
  p->plan = fftwf_plan_r2r_1d((int)d, buf, buf, fftw_kind(type), FFTW_ESTIMATE | FFTW_UNALIGNED);
  pthread_mutex_unlock(&planner_lock);
  fftwf_free(buf);
  if (p->plan && type >= 2 && kx_dct_simd_supported(type, d) && kx_dct_simd_tiles_f(d) && plan_simd_f(p)) {
    kx_fail(KX_ENOMEM, "out of memory planning a float DCT of length %zu", d);
    kx_dctf_free(p);
    return NULL;
  }
  if (p->plan) return p;
  kx_fail(KX_ENUM, "FFTW could not plan a float DCT-%d of length %zu", type, d);
  kx_dctf_free(p);
  return NULL;
}

/* The plans kx_dctf_shared has made, kept for the life of the process. */
typedef struct shared_dctf {
  kx_dctf *plan;
  struct shared_dctf *next;
} shared_dctf;
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static shared_dctf *shared_plans;

const kx_dctf *kx_dctf_shared(int type, size_t d) {
  pthread_mutex_lock(&shared_lock);
  shared_dctf *s = shared_plans;
  while (s && (s->plan->type != type || s->plan->d != d)) s = s->next;
  if (!s && (s = kx_malloc(sizeof *s))) {
    if ((s->plan = kx_dctf_create(type, d))) {
      s->next = shared_plans;
      shared_plans = s;
    } else {
      free(s);
      s = NULL;
    }
  }
  pthread_mutex_unlock(&shared_lock);
  return s ? s->plan : NULL;
}

const float *kx_dctf_matrix(const kx_dctf *p) { return p->matrix; }

/* One row: FFTW's unnormalised sum between the end-point factors of dct.h,
 * all in float. */
static void dctf_row(const kx_dctf *p, const float *x, float *y) {
  const size_t d = p->d;
  memcpy(y, x, d * sizeof *y);
  if (!p->plan) return;
  if (p->type == 1 || p->type == 3) y[0] *= (float)M_SQRT2;
  if (p->type == 1) y[d - 1] *= (float)M_SQRT2;
  fftwf_execute_r2r(p->plan, y, y);
  for (size_t k = 0; k < d; k++) y[k] *= p->scale;
  if (p->type == 1 || p->type == 2) y[0] *= (float)M_SQRT1_2;
  if (p->type == 1) y[d - 1] *= (float)M_SQRT1_2;
}

int kx_dctf_is_batched(const kx_dctf *p) { return p->simd_tw != NULL; }

/* KX_DCT_BATCH rows at a time through the batched kernels, the last batch
 * zero-padded: every row gets the same operations wherever it sits, so
 * the result does not depend on the call's size or the thread count. */
static void dctf_rows_batched(const kx_dctf *p, size_t rows, const float *in, float *out) {
  enum { NB = KX_DCT_BATCH };
  const size_t d = p->d, n_batches = (rows + NB - 1) / NB;
  const size_t block = NB * d, bytes = (6 * block * sizeof(float) + 63) & ~(size_t)63;
  const int variant = kx_dct_simd_best_variant();
  int failed = 0;
#pragma omp parallel if (rows * d >= 65536)
  {
    float *il = aligned_alloc(64, bytes), *ol = il ? il + block : NULL, *tmp = il ? ol + block : NULL;
#pragma omp for schedule(static)
    for (size_t b = 0; b < n_batches; b++) {
      if (!il) {
#pragma omp atomic write
        failed = 1;
        continue;
      }
      const size_t r0 = b * NB, n = rows - r0 < NB ? rows - r0 : NB;
      if (n == NB) {
        kx_dct_simd_gather_f(d, p->simd_in, in + r0 * d, il);
      } else {
        for (size_t r = 0; r < NB; r++)
          for (size_t j = 0; j < d; j++) il[j * NB + r] = r < n ? p->simd_in[j] * in[(r0 + r) * d + j] : 0.0f;
      }
      kx_dct_simd_run_f(variant, p->type, d, p->simd_tw, il, ol, tmp);
      if (n == NB) {
        kx_dct_simd_scatter_f(d, p->simd_out, p->ones, ol, out + r0 * d, d);
      } else {
        for (size_t r = 0; r < n; r++)
          for (size_t i = 0; i < d; i++) out[(r0 + r) * d + i] = p->ones[i] * (p->simd_out[i] * ol[i * NB + r]);
      }
    }
    free(il);
  }
  /* out of memory for a few KiB of workspace: the per-row path, which needs none */
  if (failed)
    for (size_t r = 0; r < rows; r++) dctf_row(p, in + r * d, out + r * d);
}

void kx_dctf_rows(const kx_dctf *p, size_t rows, const float *in, float *out) {
  const size_t d = p->d;
  if (p->simd_tw) return dctf_rows_batched(p, rows, in, out);
#pragma omp parallel for schedule(static) if (rows * d >= 65536)
  for (size_t r = 0; r < rows; r++) dctf_row(p, in + r * d, out + r * d);
}
