/* Tests of the FFTW DCTs and of the DCT feature maps (wdcf, wdcf-norm, dcf,
 * wdcf-code) against explicit dense computations built here, in the test,
 * from the cosine formulas alone (not from kx_dct_matrix or the library's
 * transforms), so a wrong scaling or index in the library cannot hide. */
#include <check.h>
#include <float.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "approx/dct.h"
#include "approx/dct_simd.h"
#include "approx/fmap.h"
#include "approx/fmap_wdcf.h"
#include "core/kx_error.h"
#include "samplers/transforms.h"
#include "tests/test_support.h"

/* ---- independent reference ------------------------------------------- */

/* cos(pi a / b) with the integer a reduced modulo 2b first, so the angle
 * passed to cos() is below 2 pi and carries one rounding, not one
 * proportional to d. */
static double cos_pi_frac(size_t a, size_t b) {
  return cos(M_PI * (double)(a % (2 * b)) / (double)b);
}

/* Orthonormal DCT matrix of type 1..4 (rows = basis vectors), dct.h. */
static void ref_dct(int type, size_t d, double *C) {
  for (size_t k = 0; k < d; k++)
    for (size_t j = 0; j < d; j++) {
      double v;
      switch (type) {
        case 1: {
          size_t N = d - 1;
          double wk = (k == 0 || k == N) ? M_SQRT1_2 : 1.0;
          double wj = (j == 0 || j == N) ? M_SQRT1_2 : 1.0;
          v = sqrt(2.0 / (double)N) * wk * wj * cos_pi_frac(k * j, N);
          break;
        }
        case 2:
          v = (k ? sqrt(2.0 / (double)d) : sqrt(1.0 / (double)d)) *
              cos_pi_frac((2 * j + 1) * k, 2 * d);
          break;
        case 3:
          v = (j ? sqrt(2.0 / (double)d) : sqrt(1.0 / (double)d)) *
              cos_pi_frac((2 * k + 1) * j, 2 * d);
          break;
        default:
          v = sqrt(2.0 / (double)d) * cos_pi_frac((2 * k + 1) * (2 * j + 1), 4 * d);
      }
      C[k * d + j] = v;
    }
}

static double norm2(const double *x, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += x[i] * x[i];
  return sqrt(s);
}

/* Round-off allowance for comparing an FFTW DCT with the explicit product,
 * in max-norm, for input x:
 *  - the explicit sum of d terms C_kj x_j (recursive summation) has error
 *    <= ~d eps sum_j |C_kj x_j| <= d eps |x|_2 (rows have unit norm,
 *    Cauchy-Schwarz), the one rounding of each matrix entry included;
 *  - a fast transform's error grows like eps log2(d) |x|_2 (2-norm, hence
 *    also max-norm), with a small algorithm-dependent constant (4 here).
 * Measured against a long-double reference, FFTW's error is about
 * eps |x| for every type and d up to 1024, so this bound holds with a wide
 * margin, while a scaling or index error is of order |x| (a relative
 * scaling error of 1e-7 on one output fails it). */
static double dct_tol(size_t d, double xnorm) {
  return ((double)d + 4.0 * log2(2.0 * (double)d)) * DBL_EPSILON * xnorm;
}

static void random_vector(gsl_rng *rng, size_t n, double sd, double *x) {
  for (size_t i = 0; i < n; i++) x[i] = gsl_ran_gaussian(rng, sd);
}

static gsl_rng *test_rng(unsigned long seed) {
  gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(rng, seed);
  return rng;
}

static const size_t dct_lengths[] = {2, 3, 8, 64, 100, 128};
#define N_LENGTHS (sizeof dct_lengths / sizeof *dct_lengths)

/* ---- DCT ----------------------------------------------------------- */

START_TEST(dct_equals_explicit_matrix) {
  const int type = 1 + (_i % 4);
  const size_t d = dct_lengths[_i / 4];
  gsl_rng *rng = test_rng(11 + (unsigned long)_i);
  double *C = malloc(d * d * sizeof *C), *x = malloc(d * sizeof *x), *y = malloc(d * sizeof *y);
  ref_dct(type, d, C);
  kx_dct *p = kx_dct_create(type, d);
  ck_assert_msg(p, "%s", kx_error_message());
  double *work = kx_dct_work_alloc(d);
  for (int rep = 0; rep < 5; rep++) {
    random_vector(rng, d, 1.0 + rep, x);
    ck_assert_int_eq(kx_dct_apply(p, x, y, work), 0);
    double err = 0;
    for (size_t k = 0; k < d; k++) {
      double ref = 0;
      for (size_t j = 0; j < d; j++) ref += C[k * d + j] * x[j];
      if (fabs(y[k] - ref) > err) err = fabs(y[k] - ref);
    }
    ck_assert_msg(err <= dct_tol(d, norm2(x, d)), "DCT-%d d=%zu: max error %g > tol %g", type,
                  d, err, dct_tol(d, norm2(x, d)));
    /* Orthonormal: the 2-norm is preserved. */
    ck_assert_double_eq_tol(norm2(y, d), norm2(x, d), dct_tol(d, norm2(x, d)));
  }
  kx_dct_work_free(work);
  kx_dct_free(p);
  free(C);
  free(x);
  free(y);
  gsl_rng_free(rng);
}
END_TEST

/* The batch route (the SIMD kernels for every type at power-of-two d,
 * FFTW's many-plan or the GEMM otherwise) against the explicit product and
 * FFTW's one-vector r2r, for 32 rows at once, at every length the maps
 * meet in the tests and benchmarks.  The kernels' DCT-IV recovers each
 * output k as a running difference of k + 1 DCT-II outputs, so in the
 * worst case the errors of up to d of those add up: each is at most
 * ~2 log2(2d) eps |x| (one rounding per butterfly level on values of at most
 * |x|, plus the twiddle product), hence the extra 2 d log2(2d) eps |x|.
 * Measured with a long-double reference: <= 9.1 eps |x| up to d = 1024
 * (DCT-IV), so the bound holds with room, and an index or scaling error
 * (of order |x|) fails it.  The folded DCT-I (one rounding per input pair,
 * then a d/2-term sum per output, as the GEMM route) stays within the
 * dense product's own dct_tol. */
static double batch_tol(size_t d, double xnorm) {
  return dct_tol(d, xnorm) + 2.0 * (double)d * log2(2.0 * (double)d) * DBL_EPSILON * xnorm;
}

static const size_t batch_lengths[] = {2, 3, 4, 8, 16, 32, 64, 100, 128, 256, 512};
#define N_BATCH_LENGTHS (sizeof batch_lengths / sizeof *batch_lengths)

START_TEST(dct_batch_equals_explicit_and_fftw) {
  const int type = 1 + (_i % 4);
  const size_t d = batch_lengths[_i / 4], ld = kx_dct_batch_ld(d);
  gsl_rng *rng = test_rng(29 + (unsigned long)_i);
  double *C = malloc(d * d * sizeof *C), *x = malloc(KX_DCT_BATCH * d * sizeof *x);
  double *y = malloc(d * sizeof *y);
  ref_dct(type, d, C);
  kx_dct *p = kx_dct_create(type, d);
  ck_assert_msg(p, "%s", kx_error_message());
  /* the power-of-two lengths must take the SIMD route */
  ck_assert_int_eq(kx_dct_batch_is_simd(p), d >= 2 && !(d & (d - 1)));
  double *work = kx_dct_batch_work_alloc(d);
  const double *is = kx_dct_in_scale(p), *os = kx_dct_out_scale(p);
  size_t rs, es;
  kx_dct_batch_layout(p, &rs, &es);
  random_vector(rng, KX_DCT_BATCH * d, 1.0, x);
  for (size_t r = 0; r < KX_DCT_BATCH; r++)
    for (size_t j = 0; j < d; j++) work[r * rs + j * es] = is[j] * x[r * d + j];
  kx_dct_execute_batch(p, work);
  const double *out = work + KX_DCT_BATCH * ld;
  for (size_t r = 0; r < KX_DCT_BATCH; r++) {
    const double *xr = x + r * d, tol = batch_tol(d, norm2(xr, d));
    ck_assert_int_eq(kx_dct_apply(p, xr, y, NULL), 0); /* FFTW's r2r */
    for (size_t k = 0; k < d; k++) {
      double ref = 0;
      for (size_t j = 0; j < d; j++) ref += C[k * d + j] * xr[j];
      const double got = os[k] * out[r * rs + k * es];
      ck_assert_msg(fabs(got - ref) <= tol && fabs(got - y[k]) <= tol,
                    "DCT-%d d=%zu row %zu k %zu: %.17g, explicit %.17g, FFTW %.17g (tol %g)", type, d, r,
                    k, got, ref, y[k], tol);
    }
  }
  kx_dct_work_free(work);
  kx_dct_free(p);
  free(C), free(x), free(y);
  gsl_rng_free(rng);
}
END_TEST

/* The kernels' builds for each instruction set (dct_simd.h) give the
 * same bits, on every type and power-of-two length a map uses: the claim
 * that results do not depend on the machine rests on it. */
START_TEST(dct_simd_variants_agree) {
  static const size_t lengths[] = {2, 4, 8, 16, 32, 64, 128, 256, 512};
  gsl_rng *rng = test_rng(41);
  for (size_t l = 0; l < sizeof lengths / sizeof *lengths; l++) {
    const size_t n = lengths[l];
    /* II-IV read the twiddles, I a folded matrix of n^2 / 2 values (any will do here) */
    double *tw = malloc(2 * n * sizeof *tw), *M = malloc(n * n / 2 * sizeof *M), *x = kx_dct_batch_work_alloc(n);
    /* the kernels need the workspaces' 64-byte alignment (dct_simd.h) */
    double *y0 = kx_dct_batch_work_alloc(n), *y = kx_dct_batch_work_alloc(n), *tmp = kx_dct_batch_work_alloc(n);
    kx_dct_simd_twiddles(n, tw);
    random_vector(rng, n * KX_DCT_BATCH, 1.0, x);
    random_vector(rng, n * n / 2, 1.0, M);
    for (int type = 1; type <= 4; type++) {
      const double *t = type == 1 ? M : tw;
      kx_dct_simd_run_variant(KX_DCT_SIMD_BASE, type, n, t, x, y0, tmp);
      for (int v = KX_DCT_SIMD_AVX2; v <= KX_DCT_SIMD_AVX512; v++) {
        if (!kx_dct_simd_variant_runs(v)) continue;
        memset(y, 0, n * KX_DCT_BATCH * sizeof *y);
        kx_dct_simd_run_variant(v, type, n, t, x, y, tmp);
        ck_assert_msg(!memcmp(y, y0, n * KX_DCT_BATCH * sizeof *y), "DCT-%d n=%zu: build %d differs from the base",
                      type, n, v);
      }
    }
    free(tw), free(M);
    kx_dct_work_free(x), kx_dct_work_free(y0), kx_dct_work_free(y), kx_dct_work_free(tmp);
  }
  gsl_rng_free(rng);
}
END_TEST

/* The tiled transposes compute the plain loops' products, bit for bit,
 * with and without signs, into rows wider than the values written. */
START_TEST(dct_simd_tiles_equal_plain_loops) {
  const size_t d = 64, rows_out = 40, ldz = 100, nb = KX_DCT_BATCH;
  ck_assert(kx_dct_simd_tiles(d) && kx_dct_simd_tiles(rows_out) && !kx_dct_simd_tiles(12));
  gsl_rng *rng = test_rng(43);
  double *x = malloc(nb * d * sizeof *x), *scale = malloc(d * sizeof *scale), *sign = malloc(d * sizeof *sign);
  double *t = malloc(d * sizeof *t), *in = kx_dct_batch_work_alloc(d), *ref = malloc(nb * d * sizeof *ref);
  double *z = malloc(nb * ldz * sizeof *z), *zref = malloc(nb * ldz * sizeof *zref);
  random_vector(rng, nb * d, 1.0, x);
  random_vector(rng, d, 1.0, scale);
  random_vector(rng, d, 1.0, t);
  for (size_t j = 0; j < d; j++) sign[j] = gsl_rng_uniform(rng) < 0.5 ? -1.0 : 1.0;
  for (int signed_in = 0; signed_in < 2; signed_in++) {
    for (size_t r = 0; r < nb; r++)
      for (size_t j = 0; j < d; j++)
        ref[j * nb + r] = signed_in ? scale[j] * (sign[j] * x[r * d + j]) : scale[j] * x[r * d + j];
    kx_dct_simd_gather(d, scale, signed_in ? sign : NULL, x, in);
    ck_assert_mem_eq(in, ref, nb * d * sizeof *in);
  }
  double bias[40], c[KX_DCT_BATCH];
  random_vector(rng, rows_out, 3.0, bias);
  random_vector(rng, nb, 3.0, c);
  bias[5] = -INFINITY; /* a zero fitted weight */
  for (int shifted = 0; shifted < 2; shifted++) {
    for (size_t k = 0; k < nb * ldz; k++) z[k] = zref[k] = -1.0; /* beyond rows_out: untouched */
    for (size_t r = 0; r < nb; r++)
      for (size_t i = 0; i < rows_out; i++) {
        zref[r * ldz + i] = t[i] * (scale[i] * ref[i * nb + r]);
        if (shifted) zref[r * ldz + i] += bias[i] - c[r];
      }
    kx_dct_simd_scatter(rows_out, scale, t, shifted ? bias : NULL, c, ref, z, ldz);
    ck_assert_mem_eq(z, zref, nb * ldz * sizeof *z);
  }
  free(x), free(scale), free(sign), free(t), free(ref), free(z), free(zref);
  kx_dct_work_free(in);
  gsl_rng_free(rng);
}
END_TEST

/* Every workspace starts on a 64-byte boundary, whatever the heap holds
 * around it: the SIMD kernels' full-width rows must not straddle cache
 * lines (dct.c).  The small allocations kept alive in between move the
 * heap's next free address through every 16-byte offset mod 64, so an allocator
 * with a weaker promise (fftw_malloc's 32 bytes) fails here. */
START_TEST(dct_workspaces_are_64_byte_aligned) {
  static const size_t lengths[] = {1, 2, 63, 64, 100, 128};
  enum { SHIFTS = 48 };
  void *keep[SHIFTS];
  for (size_t s = 0; s < SHIFTS; s++) {
    keep[s] = malloc(8 * s + 8);
    ck_assert_ptr_nonnull(keep[s]);
    for (size_t i = 0; i < sizeof lengths / sizeof *lengths; i++) {
      double *a = kx_dct_work_alloc(lengths[i]), *b = kx_dct_batch_work_alloc(lengths[i]);
      ck_assert_ptr_nonnull(a);
      ck_assert_ptr_nonnull(b);
      ck_assert_msg((uintptr_t)a % 64 == 0 && (uintptr_t)b % 64 == 0,
                    "d = %zu after %zu small blocks: workspaces at %p and %p, not 64-byte aligned", lengths[i],
                    s + 1, (void *)a, (void *)b);
      kx_dct_work_free(a);
      kx_dct_work_free(b);
    }
  }
  for (size_t s = 0; s < SHIFTS; s++) free(keep[s]);
}
END_TEST

/* The explicit matrices (kx_dct_matrix) use the same
 * conventions as the FFTW path: the two branches must agree. */
START_TEST(dct_matches_kx_dct_matrix) {
  const size_t d = dct_lengths[_i];
  double *C = malloc(d * d * sizeof *C), *R = malloc(d * d * sizeof *R);
  for (int type = 1; type <= 4; type++) {
    ck_assert_int_eq(kx_dct_matrix(type, d, C), 0);
    ref_dct(type, d, R);
    for (size_t i = 0; i < d * d; i++) ck_assert_double_eq_tol(C[i], R[i], 4 * DBL_EPSILON);
  }
  free(C);
  free(R);
}
END_TEST

/* II and III are inverse to each other, I and IV are involutions; in
 * place (y aliasing x) and without a workspace. */
START_TEST(dct_inverses_in_place) {
  const size_t d = dct_lengths[_i];
  gsl_rng *rng = test_rng(5);
  double *x = malloc(d * sizeof *x), *y = malloc(d * sizeof *y);
  random_vector(rng, d, 1.0, x);
  const int pairs[4][2] = {{2, 3}, {3, 2}, {1, 1}, {4, 4}};
  for (int k = 0; k < 4; k++) {
    kx_dct *a = kx_dct_create(pairs[k][0], d), *b = kx_dct_create(pairs[k][1], d);
    ck_assert(a && b);
    memcpy(y, x, d * sizeof *y);
    ck_assert_int_eq(kx_dct_apply(a, y, y, NULL), 0);
    ck_assert_int_eq(kx_dct_apply(b, y, y, NULL), 0);
    for (size_t j = 0; j < d; j++) ck_assert_double_eq_tol(y[j], x[j], 2 * dct_tol(d, norm2(x, d)));
    kx_dct_free(a);
    kx_dct_free(b);
  }
  free(x);
  free(y);
  gsl_rng_free(rng);
}
END_TEST

START_TEST(dct_trivial_and_bad_lengths) {
  for (int type = 2; type <= 4; type++) {
    kx_dct *p = kx_dct_create(type, 1);
    ck_assert_msg(p, "%s", kx_error_message());
    double x = -2.5, y = 0;
    ck_assert_int_eq(kx_dct_apply(p, &x, &y, NULL), 0);
    ck_assert_double_eq(y, -2.5);
    kx_dct_free(p);
  }
  ck_assert_ptr_null(kx_dct_create(1, 1));
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "DCT-I"));
  ck_assert_ptr_null(kx_dct_create(2, 0));
  ck_assert_ptr_null(kx_dct_create(0, 8));
  ck_assert_ptr_null(kx_dct_create(5, 8));
  ck_assert_ptr_null(kx_dctf_create(1, 1));
  ck_assert_ptr_null(kx_dctf_create(5, 8));
  double c[16];
  ck_assert_int_ne(kx_dct_matrix(5, 4, c), 0);
  ck_assert_int_ne(kx_dct_matrix(1, 1, c), 0);
}
END_TEST

START_TEST(dct_matrix_is_orthonormal) {
  /* Orthonormal: C C^T = I.  Each entry is a sum of d products of values
   * with error ~eps, so the error is ~d eps < 1e-13 for d <= 200. */
  static const size_t ds[] = {2, 3, 8, 64, 127};
  for (int type = 1; type <= 4; type++)
    for (size_t a = 0; a < sizeof ds / sizeof *ds; a++) {
      size_t d = ds[a];
      double *c = malloc(d * d * sizeof *c);
      ck_assert_int_eq(kx_dct_matrix(type, d, c), 0);
      double worst = 0;
      for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++) {
          double dot = 0;
          for (size_t k = 0; k < d; k++) dot += c[i * d + k] * c[j * d + k];
          worst = fmax(worst, fabs(dot - (i == j)));
        }
      ck_assert_msg(worst < 1e-13, "DCT-%d d=%zu: C C^T - I up to %g", type, d, worst);
      free(c);
    }
  const size_t d = 12;
  double c2[144], c3[144];
  ck_assert_int_eq(kx_dct_matrix(2, d, c2), 0);
  ck_assert_int_eq(kx_dct_matrix(3, d, c3), 0);
  for (size_t i = 0; i < d; i++)
    for (size_t j = 0; j < d; j++) ck_assert_double_eq(c3[i * d + j], c2[j * d + i]);
  /* DCT-II row 0 is the constant 1/sqrt(d); row 1 starts at sqrt(2/d) cos(pi/2d) */
  for (size_t j = 0; j < d; j++) ck_assert_double_eq_tol(c2[j], 1 / sqrt((double)d), 1e-15);
  ck_assert_double_eq_tol(c2[d], sqrt(2.0 / d) * cos(M_PI / (2.0 * d)), 1e-15);
  double one;
  ck_assert_int_eq(kx_dct_matrix(2, 1, &one), 0);
  ck_assert_double_eq(one, 1.0);
}
END_TEST

/* Plans made and destroyed from two threads at once (the planner lock)
 * give the same transforms as plans made alone. */
START_TEST(dct_concurrent_planning) {
  const size_t d = 64;
  double x[64], ref[4][64];
  for (size_t j = 0; j < d; j++) x[j] = sin(0.3 * (double)j);
  for (int type = 1; type <= 4; type++) {
    kx_dct *p = kx_dct_create(type, d);
    kx_dct_apply(p, x, ref[type - 1], NULL);
    kx_dct_free(p);
  }
  int bad = 0;
#pragma omp parallel num_threads(2) reduction(+ : bad)
  {
    double y[64];
    for (int it = 0; it < 50; it++) {
      int type = 1 + it % 4;
      kx_dct *p = kx_dct_create(type, d);
      if (!p || kx_dct_apply(p, x, y, NULL) || memcmp(y, ref[type - 1], sizeof y)) bad++;
      kx_dct_free(p);
    }
  }
  ck_assert_int_eq(bad, 0);
}
END_TEST

/* ---- feature maps -------------------------------------------------- */

typedef struct {
  size_t n;
  double *q, *k;
} calib;

static calib make_calib(size_t d, unsigned long seed) {
  calib c = {64, malloc(64 * d * sizeof(double)), malloc(64 * d * sizeof(double))};
  gsl_rng *rng = test_rng(seed);
  /* entries N(0, 1/d): |x| about 1, where these kernels are well estimated */
  random_vector(rng, c.n * d, 1.0 / sqrt((double)d), c.q);
  random_vector(rng, c.n * d, 1.0 / sqrt((double)d), c.k);
  gsl_rng_free(rng);
  return c;
}

static kx_fmap *make_map(const char *scheme, size_t d, size_t m, uint64_t seed, kx_kernel kernel,
                         const calib *c) {
  kx_fmap_options o;
  kx_fmap_default_options(&o);
  o.kernel = kernel;
  o.radii = "stratified";
  o.calib_q = c->q;
  o.calib_k = c->k;
  o.n_calib_q = o.n_calib_k = c->n;
  o.n_calib_pairs = 512;
  kx_fmap *f = kx_fmap_create(scheme, d, m, seed, &o);
  ck_assert_msg(f, "%s d=%zu m=%zu: %s", scheme, d, m, kx_error_message());
  return f;
}

/* The dense W the map claims to be, rebuilt from its parameters (types,
 * signs, t) and the reference cosine matrices; also checks the block
 * structure (types in order, sign flips only after the distinct types, the
 * last block truncated). */
static void reference_W(const kx_fmap *f, const int *order, int sign_all, double *W) {
  const kx_dct_blocks *B = kx_fmap_wdcf_blocks(f);
  ck_assert_ptr_nonnull(B);
  const size_t d = f->d, m = f->m;
  ck_assert_uint_eq(B->n_blocks, (m + d - 1) / d);
  int types[4];
  size_t nt = 0;
  for (int k = 0; k < 4; k++)
    if (!(order[k] == 1 && d < 2)) types[nt++] = order[k];
  double *C = malloc(d * d * sizeof *C);
  size_t row = 0;
  for (size_t b = 0; b < B->n_blocks; b++) {
    const kx_dct_block *blk = &B->blocks[b];
    ck_assert_int_eq(blk->type, types[b % nt]);
    ck_assert_uint_eq(blk->offset, row);
    ck_assert_uint_eq(blk->rows, m - row < d ? m - row : d);
    ck_assert(b < nt && !sign_all ? blk->sign == NULL : blk->sign != NULL);
    ref_dct(blk->type, d, C);
    for (size_t i = 0; i < blk->rows; i++, row++)
      for (size_t j = 0; j < d; j++)
        W[row * d + j] = blk->t[i] * C[i * d + j] * (blk->sign ? blk->sign[j] : 1.0);
  }
  ck_assert_uint_eq(row, m);
  free(C);
}

/* max |t_i| over the map, for the round-off allowance of t_i (C x)_i. */
static double max_t(const kx_fmap *f) {
  const kx_dct_blocks *B = kx_fmap_wdcf_blocks(f);
  double mt = 0;
  for (size_t b = 0; b < B->n_blocks; b++)
    for (size_t i = 0; i < B->blocks[b].rows; i++)
      if (fabs(B->blocks[b].t[i]) > mt) mt = fabs(B->blocks[b].t[i]);
  return mt;
}

/* Checks kx_fmap_wdcf_dense and apply_log against the reference. */
static void check_map_against_dense(const kx_fmap *f, const int *order, int softmax, int sign_all) {
  const size_t d = f->d, m = f->m, n = 7;
  double *Wref = malloc(m * d * sizeof *Wref), *W = malloc(m * d * sizeof *W);
  double *x = malloc(n * d * sizeof *x), *lp = malloc(n * m * sizeof *lp);
  reference_W(f, order, sign_all, Wref);
  ck_assert_int_eq(kx_fmap_wdcf_dense(f, W), 0);
  const double tW = dct_tol(d, 1.0) * max_t(f);
  for (size_t i = 0; i < m * d; i++) ck_assert_double_eq_tol(W[i], Wref[i], tW);

  gsl_rng *rng = test_rng(99);
  random_vector(rng, n * d, 0.7, x);
  gsl_rng_free(rng);
  ck_assert_int_eq(kx_fmap_apply_log(f, n, x, lp), 0);
  double *z = malloc(m * sizeof *z);
  for (size_t r = 0; r < n; r++) {
    const double *xr = x + r * d;
    const double xn = norm2(xr, d);
    for (size_t i = 0; i < m; i++) {
      z[i] = 0;
      for (size_t j = 0; j < d; j++) z[i] += Wref[i * d + j] * xr[j];
    }
    if (softmax) {
      double mx = -INFINITY, s = 0;
      for (size_t i = 0; i < m; i++) mx = fmax(mx, z[i]);
      for (size_t i = 0; i < m; i++) s += exp(z[i] - mx);
      for (size_t i = 0; i < m; i++) z[i] -= mx + log(s);
    } else {
      for (size_t i = 0; i < m; i++) z[i] += f->log_weight[i] - f->norm_coef * xn * xn;
    }
    /* t (C x) carries the DCT error times |t|; the other terms are O(eps). */
    const double tol = 2 * dct_tol(d, xn) * max_t(f) + 64 * DBL_EPSILON * (1 + xn * xn + log((double)m));
    for (size_t i = 0; i < m; i++) {
      if (isinf(z[i])) { /* a zero fitted weight: log D = -inf on both sides */
        ck_assert(isinf(lp[r * m + i]) && lp[r * m + i] < 0);
        continue;
      }
      ck_assert_msg(fabs(lp[r * m + i] - z[i]) <= tol, "%s d=%zu m=%zu row %zu feature %zu: %.17g vs %.17g",
                    f->type->name, d, m, r, i, lp[r * m + i], z[i]);
    }
  }
  free(z);
  free(Wref);
  free(W);
  free(x);
  free(lp);
}

/* (d, m) cases: m < d, m = d, m > d with 2-3 blocks, > 4 blocks (sign
 * flips, truncated last block), d = 1 (no DCT-I) and d = 2. */
static const size_t map_cases[][2] = {{16, 5}, {16, 16}, {12, 30}, {8, 43}, {8, 64},
                                      {1, 5}, {2, 9}, {64, 64}};
#define N_MAP_CASES (sizeof map_cases / sizeof *map_cases)
static const int paper_order[4] = {2, 4, 3, 1}, code_order[4] = {3, 4, 2, 1};

START_TEST(maps_equal_dense_reference) {
  const size_t d = map_cases[_i][0], m = map_cases[_i][1];
  calib c = make_calib(d, 3);
  const char *schemes[] = {"wdcf", "wdcf-norm", "dcf"};
  for (int s = 0; s < 3; s++)
    for (int kernel = 0; kernel < 2; kernel++) {
      kx_fmap *f = make_map(schemes[s], d, m, 7, (kx_kernel)kernel, &c);
      /* the norm term: dropped by wdcf only, from the kernel otherwise */
      double want = s == 0 ? 0.0 : (kernel == KX_KERNEL_GAUSS ? 1.0 : 0.5);
      ck_assert_double_eq(f->norm_coef, want);
      if (s == 2)
        for (size_t i = 0; i < m; i++) ck_assert_double_eq(f->log_weight[i], -0.5 * log((double)m));
      check_map_against_dense(f, paper_order, 0, 0);
      kx_fmap_free(f);
    }
  /* dcf-signed: dcf with a sign flip on every block */
  kx_fmap *fs = make_map("dcf-signed", d, m, 7, KX_KERNEL_SOFTMAX, &c);
  ck_assert_double_eq(fs->norm_coef, 0.5);
  check_map_against_dense(fs, paper_order, 0, 1);
  kx_fmap_free(fs);
  kx_fmap *f = make_map("wdcf-code", d, m, 7, KX_KERNEL_SOFTMAX, &c);
  check_map_against_dense(f, code_order, 1, 0);
  kx_fmap_free(f);
  free(c.q);
  free(c.k);
}
END_TEST

/* Stratified radii: each block's t are exactly the chi_d inverse CDF on the
 * grid (i + 1/2)/rows_b, in some order. */
static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

START_TEST(stratified_radii_are_the_chi_grid) {
  calib c = make_calib(8, 4);
  kx_fmap *f = make_map("dcf", 8, 43, 2, KX_KERNEL_SOFTMAX, &c);
  const kx_dct_blocks *B = kx_fmap_wdcf_blocks(f);
  double t[8];
  for (size_t b = 0; b < B->n_blocks; b++) {
    const kx_dct_block *blk = &B->blocks[b];
    memcpy(t, blk->t, blk->rows * sizeof *t);
    qsort(t, blk->rows, sizeof *t, cmp_double);
    for (size_t i = 0; i < blk->rows; i++)
      ck_assert_double_eq(t[i], kx_chi_inv(((double)i + 0.5) / (double)blk->rows, 8.0));
  }
  kx_fmap_free(f);
  free(c.q);
  free(c.k);
}
END_TEST

/* Sequence radii (the default): for d a power of two, the chi_d CDF of each
 * full block's t hits every interval [j/d, (j+1)/d) exactly once. */
START_TEST(sequence_radii_are_stratified_per_block) {
  const size_t d = 16, m = 5 * 16;
  calib c = make_calib(d, 4);
  kx_fmap_options o;
  kx_fmap_default_options(&o);
  ck_assert_str_eq(o.radii, "sequence");
  kx_fmap *f = kx_fmap_create("dcf", d, m, 12, &o);
  ck_assert_ptr_nonnull(f);
  const kx_dct_blocks *B = kx_fmap_wdcf_blocks(f);
  for (size_t b = 0; b < B->n_blocks; b++) {
    int hits[16] = {0};
    for (size_t i = 0; i < d; i++) {
      double t = B->blocks[b].t[i];
      double u = gsl_cdf_chisq_P(t * t, (double)d);
      size_t j = (size_t)(u * (double)d);
      ck_assert_uint_lt(j, d);
      /* u within round-off of a stratum edge would make the test flaky */
      ck_assert(fabs(u * (double)d - floor(u * (double)d + 0.5)) > 1e-9);
      hits[j]++;
    }
    for (size_t j = 0; j < d; j++) ck_assert_int_eq(hits[j], 1);
  }
  /* another seed, other points */
  kx_fmap *g = kx_fmap_create("dcf", d, m, 13, &o);
  ck_assert(memcmp(kx_fmap_wdcf_blocks(g)->blocks[0].t, B->blocks[0].t, d * sizeof(double)) != 0);
  kx_fmap_free(g);
  kx_fmap_free(f);
  free(c.q);
  free(c.k);
}
END_TEST

START_TEST(code_rows_are_log_probabilities) {
  calib c = make_calib(16, 5);
  const size_t ms[] = {5, 16, 100};
  for (int k = 0; k < 3; k++) {
    kx_fmap *f = make_map("wdcf-code", 16, ms[k], 1, KX_KERNEL_SOFTMAX, &c);
    ck_assert_int_eq(f->type->kernel_estimator, 0);
    /* t_j are signed normals */
    const kx_dct_blocks *B = kx_fmap_wdcf_blocks(f);
    int neg = 0, pos = 0;
    for (size_t b = 0; b < B->n_blocks; b++)
      for (size_t i = 0; i < B->blocks[b].rows; i++) {
        neg += B->blocks[b].t[i] < 0;
        pos += B->blocks[b].t[i] > 0;
      }
    ck_assert(neg > 0 && pos > 0);
    double *lp = malloc(c.n * ms[k] * sizeof *lp);
    ck_assert_int_eq(kx_fmap_apply_log(f, c.n, c.q, lp), 0);
    for (size_t r = 0; r < c.n; r++) {
      double s = 0;
      for (size_t j = 0; j < ms[k]; j++) {
        ck_assert(lp[r * ms[k] + j] <= 0);
        s += exp(lp[r * ms[k] + j]);
      }
      ck_assert_double_eq_tol(log(s), 0.0, 1e-13);
    }
    free(lp);
    kx_fmap_free(f);
  }
  free(c.q);
  free(c.k);
}
END_TEST

static const char *all_schemes[] = {"wdcf", "wdcf-norm", "dcf", "dcf-signed", "wdcf-code"};
#define N_ALL_SCHEMES (sizeof all_schemes / sizeof *all_schemes)

START_TEST(seeds_decide_the_features) {
  const size_t d = 8, m = 43, n = 10;
  calib c = make_calib(d, 6);
  double *a = malloc(n * m * sizeof *a), *b = malloc(n * m * sizeof *b);
  for (size_t s = 0; s < N_ALL_SCHEMES; s++) {
    kx_fmap *f1 = make_map(all_schemes[s], d, m, 21, KX_KERNEL_SOFTMAX, &c);
    kx_fmap *f2 = make_map(all_schemes[s], d, m, 21, KX_KERNEL_SOFTMAX, &c);
    kx_fmap *f3 = make_map(all_schemes[s], d, m, 22, KX_KERNEL_SOFTMAX, &c);
    ck_assert_int_eq(kx_fmap_apply_log(f1, n, c.q, a), 0);
    ck_assert_int_eq(kx_fmap_apply_log(f2, n, c.q, b), 0);
    ck_assert_mem_eq(a, b, n * m * sizeof *a);
    ck_assert_int_eq(kx_fmap_apply_log(f3, n, c.q, b), 0);
    ck_assert_msg(memcmp(a, b, n * m * sizeof *a) != 0, "%s: seeds 21 and 22 agree", all_schemes[s]);
    kx_fmap_free(f1);
    kx_fmap_free(f2);
    kx_fmap_free(f3);
  }
  free(a);
  free(b);
  free(c.q);
  free(c.k);
}
END_TEST

/* One map applied from two OpenMP threads at once, each on a batch large
 * enough for the map's own parallel path, equals the serial row-by-row
 * result bit for bit. */
START_TEST(concurrent_application_is_identical) {
  const size_t d = 16, m = 80, n = 300;
  calib c = make_calib(d, 8);
  double *x = malloc(n * d * sizeof *x);
  gsl_rng *rng = test_rng(8);
  random_vector(rng, n * d, 0.3, x);
  gsl_rng_free(rng);
  double *serial = malloc(n * m * sizeof *serial);
  double *par[2] = {malloc(n * m * sizeof(double)), malloc(n * m * sizeof(double))};
  for (size_t s = 0; s < N_ALL_SCHEMES; s++) {
    kx_fmap *f = make_map(all_schemes[s], d, m, 3, KX_KERNEL_SOFTMAX, &c);
    for (size_t r = 0; r < n; r++) ck_assert_int_eq(kx_fmap_apply_log(f, 1, x + r * d, serial + r * m), 0);
    int rc[2] = {-1, -1};
#pragma omp parallel num_threads(2)
    {
#pragma omp for schedule(static, 1)
      for (int t = 0; t < 2; t++) rc[t] = kx_fmap_apply_log(f, n, x, par[t]);
    }
    for (int t = 0; t < 2; t++) {
      ck_assert_int_eq(rc[t], 0);
      ck_assert_mem_eq(par[t], serial, n * m * sizeof(double));
    }
    /* and the map's own parallel loop from the main thread */
    ck_assert_int_eq(kx_fmap_apply_log(f, n, x, par[0]), 0);
    ck_assert_mem_eq(par[0], serial, n * m * sizeof(double));
    kx_fmap_free(f);
  }
  free(x);
  free(serial);
  free(par[0]);
  free(par[1]);
  free(c.q);
  free(c.k);
}
END_TEST

START_TEST(bad_input_is_an_error) {
  calib c = make_calib(8, 9);
  kx_fmap_options o;
  kx_fmap_default_options(&o);
  o.calib_q = c.q;
  o.calib_k = c.k;
  o.n_calib_q = o.n_calib_k = c.n;
  for (size_t s = 0; s < N_ALL_SCHEMES; s++) {
    ck_assert_ptr_null(kx_fmap_create(all_schemes[s], 8, 0, 1, &o));
    ck_assert_ptr_null(kx_fmap_create(all_schemes[s], 0, 8, 1, &o));
    kx_fmap *f = kx_fmap_create(all_schemes[s], 8, 12, 1, &o);
    ck_assert_ptr_nonnull(f);
    double x[16], lp[24];
    for (int j = 0; j < 16; j++) x[j] = 0.1 * j;
    x[11] = NAN;
    kx_error_clear();
    ck_assert_int_ne(kx_fmap_apply_log(f, 2, x, lp), 0);
    ck_assert(strlen(kx_error_message()) > 0);
    x[11] = INFINITY;
    ck_assert_int_ne(kx_fmap_apply_log(f, 2, x, lp), 0);
    kx_fmap_free(f);
  }
  /* fitted schemes without calibration data */
  ck_assert_ptr_null(kx_fmap_create("wdcf", 8, 8, 1, NULL));
  ck_assert_ptr_null(kx_fmap_create("wdcf-norm", 8, 8, 1, NULL));
  /* the dense form exists only for the DCT maps */
  kx_fmap *prf = kx_fmap_create("prf", 4, 4, 1, NULL);
  double W[16];
  ck_assert_int_eq(kx_fmap_wdcf_dense(prf, W), KX_EINVAL);
  ck_assert_ptr_null(kx_fmap_wdcf_blocks(prf));
  kx_fmap_free(prf);
  free(c.q);
  free(c.k);
}
END_TEST

int main(void) {
  Suite *s = kx_test_suite("wdcf");
  TCase *tc = kx_test_case(s, "dct");
  tcase_add_loop_test(tc, dct_equals_explicit_matrix, 0, (int)(4 * N_LENGTHS));
  tcase_add_loop_test(tc, dct_inverses_in_place, 0, (int)N_LENGTHS);
  tcase_add_loop_test(tc, dct_batch_equals_explicit_and_fftw, 0, (int)(4 * N_BATCH_LENGTHS));
  tcase_add_loop_test(tc, dct_matches_kx_dct_matrix, 0, (int)N_LENGTHS);
  tcase_add_test(tc, dct_workspaces_are_64_byte_aligned);
  tcase_add_test(tc, dct_simd_variants_agree);
  tcase_add_test(tc, dct_simd_tiles_equal_plain_loops);
  kx_test_add(tc, (const TTest *const[]){dct_matrix_is_orthonormal, dct_trivial_and_bad_lengths,
                                         dct_concurrent_planning, NULL});
  tc = kx_test_case(s, "maps");
  tcase_add_loop_test(tc, maps_equal_dense_reference, 0, (int)N_MAP_CASES);
  kx_test_add(tc, (const TTest *const[]){stratified_radii_are_the_chi_grid,
                                         sequence_radii_are_stratified_per_block,
                                         code_rows_are_log_probabilities, seeds_decide_the_features,
                                         concurrent_application_is_identical, bad_input_is_an_error, NULL});
  return kx_test_run(s);
}
