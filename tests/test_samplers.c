/* Tests of samplers/: the sequences (published points, net properties,
 * discrepancy rates, randomisation), the scalar inverse CDFs and the
 * transforms (directions, radii, orthogonal blocks, DCT matrices).
 * Every tolerance is derived in a comment from the maths it checks. */
#include <check.h>
#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "samplers/sequence.h"
#include "samplers/transforms.h"
#include "tests/test_support.h"

/* Check's ck_assert_* report every passing assertion to the parent process
 * (one write per call), which dominates the run time in inner loops; REQUIRE
 * only calls into Check when the condition fails. */
#define REQUIRE(cond, ...)                  \
  do {                                      \
    if (!(cond)) ck_abort_msg(__VA_ARGS__); \
  } while (0)

static double *draw(const char *spec, size_t dim, uint64_t seed, size_t n) {
  kx_sequence *q = kx_sequence_alloc(spec, dim, seed);
  REQUIRE(q != NULL, "alloc %s dim %zu: %s", spec, dim, kx_error_message());
  double *x = malloc(n * dim * sizeof *x);
  REQUIRE(x != NULL, "out of memory");
  REQUIRE(kx_sequence_fill(q, n, x) == 0, "fill %s: %s", spec, kx_error_message());
  kx_sequence_free(q);
  return x;
}

/* ---------------------------------------------------------------- Sobol' */

START_TEST(test_sobol_published_2d) {
  /* The first 8 points of the 2-D Sobol' sequence (Gray-code order), exact
   * dyadic rationals, so compared exactly. */
  static const double want[8][2] = {{0, 0},         {.5, .5},       {.75, .25},   {.25, .75},
                                    {.375, .375},   {.875, .875},   {.625, .125}, {.125, .625}};
  double *x = draw("sobol", 2, 0, 8);
  for (int i = 0; i < 8; i++)
    for (int j = 0; j < 2; j++) ck_assert_double_eq(x[i * 2 + j], want[i][j]);
  free(x);
}
END_TEST

START_TEST(test_sobol_published_3d) {
  /* Known first points of the 3-D Joe-Kuo Sobol' sequence (third coordinate
   * from polynomial x^2+x+1, m = 1, 3). */
  static const double third[8] = {0, .5, .25, .75, .625, .125, .875, .375};
  double *x = draw("sobol", 3, 0, 8);
  for (int i = 0; i < 8; i++) ck_assert_double_eq(x[i * 3 + 2], third[i]);
  free(x);
}
END_TEST

/* Independent Sobol' coordinate: the integer form of the Joe-Kuo recurrence
 *   m_k = 2 a_1 m_{k-1} ^ 4 a_2 m_{k-2} ^ ... ^ 2^{s-1} a_{s-1} m_{k-s+1} ^ 2^s m_{k-s} ^ m_{k-s}
 * (the library uses the shifted form on v_k = m_k 2^-k), and the point in
 * natural order x_g = XOR of v_k over the set bits of g, taken at
 * g = gray(n) = n ^ (n >> 1) (the library walks the Gray code by updates). */
static double independent_sobol(unsigned s, unsigned a, const unsigned *minit, uint64_t n) {
  uint64_t m[33];
  for (unsigned k = 1; k <= 32; k++) {
    if (k <= s) {
      m[k] = minit[k - 1];
      continue;
    }
    uint64_t v = (m[k - s] << s) ^ m[k - s];
    for (unsigned i = 1; i < s; i++)
      if ((a >> (s - 1 - i)) & 1) v ^= m[k - i] << i;
    m[k] = v;
  }
  uint64_t g = n ^ (n >> 1), word = 0;
  for (unsigned k = 1; k <= 32; k++)
    if ((g >> (k - 1)) & 1) word ^= m[k] << (32 - k);
  return (double)word / 4294967296.0;
}

START_TEST(test_sobol_high_dimension_recurrence) {
  /* Dimension 21201 (the last of the table) and dimension 5, recomputed here
   * from the Joe-Kuo lines typed in as literals:
   *   5      3  2      1 1 1
   *   21201 18 131059  1 1 7 11 15 7 37 239 337 245 1557 3681 7357 9639 27367 26869 114603 86317
   * Both computations are exact in 32-bit integers, so equality is exact. */
  static const unsigned m5[] = {1, 1, 1};
  static const unsigned m21201[] = {1, 1, 7, 11, 15, 7, 37, 239, 337, 245, 1557, 3681, 7357, 9639,
                                   27367, 26869, 114603, 86317};
  const size_t dim = 21201, n = 300;
  kx_sequence *q = kx_sequence_alloc("sobol", dim, 0);
  ck_assert_ptr_nonnull(q);
  double *x = malloc(dim * sizeof *x);
  for (uint64_t i = 0; i < n; i++) {
    REQUIRE(kx_sequence_next(q, x) == 0, "next: %s", kx_error_message());
    REQUIRE(x[4] == independent_sobol(3, 2, m5, i), "dim 5 point %d: %.17g", (int)i, x[4]);
    REQUIRE(x[dim - 1] == independent_sobol(18, 131059, m21201, i), "dim 21201 point %d: %.17g vs %.17g",
            (int)i, x[dim - 1], independent_sobol(18, 131059, m21201, i));
  }
  kx_sequence_free(q);
  free(x);
}
END_TEST

/* Opens the Joe-Kuo text table of the source tree: $KX_SOURCE_ROOT (set by
 * tests/meson.build) or, when run by hand from the build directory, the path
 * relative to this file's compile-time name. */
static FILE *open_direction_table(void) {
  const char *root = getenv("KX_SOURCE_ROOT");
  char path[4096];
  if (root) snprintf(path, sizeof path, "%s/data/sobol_directions_joe_kuo_6_21201.txt", root);
  else snprintf(path, sizeof path, "%.*s/../data/sobol_directions_joe_kuo_6_21201.txt",
                (int)(strrchr(__FILE__, '/') ? strrchr(__FILE__, '/') - __FILE__ : 1),
                strrchr(__FILE__, '/') ? __FILE__ : ".");
  FILE *fp = fopen(path, "r");
  ck_assert_msg(fp != NULL, "cannot open %s (set KX_SOURCE_ROOT)", path);
  return fp;
}

START_TEST(test_sobol_table_matches_file) {
  /* The compiled-in table must equal the text file in every dimension:
   * points of the 21201-dimensional sequence against the independent
   * recurrence run on each line as read here.  Points 0..32 use v_1..v_6;
   * point 2^k (Gray code 2^k + 2^(k-1)) uses v_k and v_(k+1), so k up to 31
   * reaches every direction number: all initial m_i (degree <= 18) and the
   * recurrence beyond them.  Reaching 2^k needs the direct skip. */
  enum { DIM = 21201 };
  static unsigned s_of[DIM], a_of[DIM], m_of[DIM][18];
  FILE *fp = open_direction_table();
  char line[4096];
  ck_assert(fgets(line, sizeof line, fp) != NULL); /* header */
  s_of[0] = 0;
  for (int d = 2; d <= DIM; d++) {
    ck_assert(fgets(line, sizeof line, fp) != NULL);
    char *p = line, *end;
    REQUIRE(strtol(p, &end, 10) == d, "line for dimension %d", d);
    s_of[d - 1] = (unsigned)strtoul(p = end, &end, 10);
    a_of[d - 1] = (unsigned)strtoul(p = end, &end, 10);
    for (unsigned k = 0; k < s_of[d - 1]; k++) m_of[d - 1][k] = (unsigned)strtoul(p = end, &end, 10);
  }
  fclose(fp);
  static const unsigned ones[32] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  kx_sequence *q = kx_sequence_alloc("sobol", DIM, 0);
  ck_assert_ptr_nonnull(q);
  double *x = malloc(DIM * sizeof *x);
  uint64_t index = 0;
  for (uint64_t target = 0; target <= ((uint64_t)1 << 31); target = target < 32 ? target + 1 : target * 2) {
    REQUIRE(kx_sequence_skip(q, target - index) == 0, "skip");
    REQUIRE(kx_sequence_next(q, x) == 0, "next");
    index = target + 1;
    for (int j = 0; j < DIM; j++) {
      /* dimension 1 (van der Corput) has every m_k = 1: pass all 32 as initial */
      double want = j == 0 ? independent_sobol(32, 0, ones, target) : independent_sobol(s_of[j], a_of[j], m_of[j], target);
      REQUIRE(x[j] == want, "dimension %d point %llu: %.17g vs %.17g", j + 1, (unsigned long long)target, x[j], want);
    }
  }
  kx_sequence_free(q);
  free(x);
}
END_TEST

/* Checks that, in coordinate j of n = 2^K points with row stride `stride`,
 * every prefix of 2^k points (k <= K) has exactly one point in each interval
 * [i 2^-k, (i+1) 2^-k): the (0,k,1)-net property of every 1-D projection of
 * a Sobol' sequence, kept by digital shifts and linear matrix scrambles. */
static void assert_1d_net(const double *x, size_t stride, size_t j, int K, const char *what) {
  static unsigned char hits[1 << 12];
  for (int k = 0; k <= K; k++) {
    size_t cells = (size_t)1 << k;
    memset(hits, 0, cells);
    for (size_t i = 0; i < cells; i++) {
      size_t cell = (size_t)(x[i * stride + j] * (double)cells);
      REQUIRE(cell < cells && !hits[cell]++, "%s: coordinate %zu, first 2^%d points: cell %zu hit twice",
                    what, j + 1, k, cell);
    }
  }
}

START_TEST(test_sobol_net_1d) {
  const char *variants[] = {"sobol", "sobol-shift", "sobol-lms"};
  const int K = 12;
  const size_t n = (size_t)1 << K, s = 64;
  for (int v = 0; v < 3; v++) {
    double *x = draw(variants[v], s, 11, n);
    for (size_t j = 0; j < s; j++) assert_1d_net(x, s, j, K, variants[v]);
    free(x);
  }
  /* the last dimensions of the table, point by point to keep memory small */
  const size_t dim = 21201, last = 4;
  for (int v = 0; v < 3; v++) {
    kx_sequence *q = kx_sequence_alloc(variants[v], dim, 5);
    double *point = malloc(dim * sizeof *point), *tail = malloc(n * last * sizeof *tail);
    for (size_t i = 0; i < n; i++) {
      REQUIRE(kx_sequence_next(q, point) == 0, "next: %s", kx_error_message());
      memcpy(tail + i * last, point + dim - last, last * sizeof *point);
    }
    for (size_t j = 0; j < last; j++) assert_1d_net(tail, last, j, K, variants[v]);
    kx_sequence_free(q);
    free(point);
    free(tail);
  }
}
END_TEST

START_TEST(test_sobol_net_2d) {
  /* The first two Sobol' dimensions form a (0,m,2)-net for every m: each
   * elementary box [i 2^-a, (i+1) 2^-a) x [k 2^-b, (k+1) 2^-b) with a + b = m
   * holds exactly one of the first 2^m points.  Linear matrix scrambling and
   * digital shifts keep t = 0. */
  const char *variants[] = {"sobol", "sobol-lms"};
  const int M = 10;
  static unsigned char hits[1 << 10];
  for (int v = 0; v < 2; v++) {
    double *x = draw(variants[v], 2, 3, (size_t)1 << M);
    for (int m = 0; m <= M; m++)
      for (int a = 0; a <= m; a++) {
        int b = m - a;
        size_t n = (size_t)1 << m;
        memset(hits, 0, n);
        for (size_t i = 0; i < n; i++) {
          size_t cell = ((size_t)(x[2 * i] * (double)(1 << a)) << b) | (size_t)(x[2 * i + 1] * (double)(1 << b));
          REQUIRE(!hits[cell]++, "%s: box %d,%d of 2^%d points hit twice", variants[v], a, b, m);
        }
      }
    free(x);
  }
}
END_TEST

/* ------------------------------------------------------- discrepancy rate */

/* Hickernell's centred L2 discrepancy, squared, in closed form:
 *   CD^2 = (13/12)^s - 2/n sum_i prod_k (1 + |z_ik|/2 - z_ik^2/2)
 *          + 1/n^2 sum_ij prod_k (1 + |z_ik|/2 + |z_jk|/2 - |x_ik - x_jk|/2),
 * z = x - 1/2.  O(n^2 s). */
static double centred_l2_sq(const double *x, size_t n, size_t s) {
  double t1 = pow(13.0 / 12.0, (double)s), t2 = 0, t3 = 0;
  for (size_t i = 0; i < n; i++) {
    double p = 1;
    for (size_t k = 0; k < s; k++) {
      double z = fabs(x[i * s + k] - 0.5);
      p *= 1 + 0.5 * z - 0.5 * z * z;
    }
    t2 += p;
    for (size_t j = 0; j <= i; j++) { /* symmetric: off-diagonal pairs twice */
      double r = 1;
      for (size_t k = 0; k < s; k++) {
        double a = x[i * s + k], b = x[j * s + k];
        r *= 1 + 0.5 * fabs(a - 0.5) + 0.5 * fabs(b - 0.5) - 0.5 * fabs(a - b);
      }
      t3 += j < i ? 2 * r : r;
    }
  }
  double dn = (double)n;
  return t1 - 2.0 * t2 / dn + t3 / (dn * dn);
}

/* Least-squares slope of log D against log n over n = 2^6..2^12. */
static double discrepancy_slope(const double *x, size_t s, double *d_last) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  int count = 0;
  for (int k = 6; k <= 12; k++) {
    double lx = log((double)((size_t)1 << k));
    double ly = 0.5 * log(centred_l2_sq(x, (size_t)1 << k, s));
    sx += lx, sy += ly, sxx += lx * lx, sxy += lx * ly, count++;
    if (k == 12) *d_last = exp(ly);
  }
  return (count * sxy - sx * sy) / (count * sxx - sx * sx);
}

START_TEST(test_discrepancy_rate) {
  /* For iid uniform points E[CD^2] = ((5/4)^s - (13/12)^s)/n exactly (kernel
   * diagonal mean 5/4 per coordinate, double integral 13/12), so MC decays
   * like n^-1/2.  A (t,m,s)-net or Halton set has D = O((log n)^{s-1}/n);
   * the local slope of that bound is -1 + (s-1)/ln n, but the L2 mean of the
   * error grows much more slowly than this worst case, and over n = 64..4096
   * in s <= 5 the fitted slopes are -0.81 .. -0.99 (measured; MC gives
   * -0.45 .. -0.57).  A slope below -0.75 is therefore clearly steeper than
   * MC's -1/2; an off-by-one in the direction numbers or a broken scramble
   * pushes it towards -1/2.  At n = 4096 D must also beat MC's expected D by
   * a factor 4 (measured factor 7..40). */
  const char *seqs[] = {"sobol", "sobol-lms", "halton", "halton-perm"};
  const size_t n = 4096;
  for (size_t s = 2; s <= 5; s++) {
    double expected_mc = sqrt((pow(1.25, (double)s) - pow(13.0 / 12.0, (double)s)) / (double)n);
    double *mc = draw("mc", s, 1, n);
    double d_mc = sqrt(centred_l2_sq(mc, n, s));
    free(mc);
    /* one MC sample: within a factor 3 of its expectation */
    ck_assert_msg(d_mc > expected_mc / 3 && d_mc < 3 * expected_mc, "MC D %g vs expected %g", d_mc, expected_mc);
    for (int v = 0; v < 4; v++) {
      double *x = draw(seqs[v], s, 2, n), d_last;
      double slope = discrepancy_slope(x, s, &d_last);
      free(x);
      ck_assert_msg(slope < -0.75, "%s s=%zu: discrepancy slope %.3f not steeper than -0.75", seqs[v], s, slope);
      ck_assert_msg(d_last < expected_mc / 4 && d_last < d_mc, "%s s=%zu: D(4096) = %g vs MC %g (expected %g)",
                    seqs[v], s, d_last, d_mc, expected_mc);
    }
  }
}
END_TEST

/* ---------------------------------------------------------- randomisation */

START_TEST(test_scrambled_marginal_uniform) {
  /* Over R seeds, a fixed coordinate of a fixed point of a randomised
   * sequence must be U(0,1): its mean has standard error sqrt(1/12/R), so we
   * allow 4 standard errors (0.026 at R = 2000); and a 10-bin histogram must
   * pass a chi-square test with 9 degrees of freedom at 33.7 (p = 1e-4).
   * Point 0 is the hard case: unscrambled it is the origin, and a
   * permutation that fixed the digit 0 would leave it near 0. */
  const char *seqs[] = {"sobol-shift", "sobol-lms", "halton-perm", "mc"};
  enum { R = 2000, S = 5, POINTS = 6 };
  const double se = sqrt(1.0 / 12.0 / (double)R);
  static double u[POINTS][S][R];
  for (int v = 0; v < 4; v++) {
    for (uint64_t seed = 0; seed < R; seed++) {
      double *x = draw(seqs[v], S, seed * 7919 + 1, POINTS);
      for (size_t p = 0; p < POINTS; p++)
        for (size_t j = 0; j < S; j++) u[p][j][seed] = x[p * S + j];
      free(x);
    }
    for (size_t p = 0; p < POINTS; p++)
      for (size_t j = 0; j < S; j++) {
        double sum = 0, bins[10] = {0};
        for (size_t r = 0; r < R; r++) {
          REQUIRE(u[p][j][r] > 0 && u[p][j][r] < 1, "%s gave %g", seqs[v], u[p][j][r]);
          sum += u[p][j][r];
          bins[(int)(u[p][j][r] * 10)]++;
        }
        double mean = sum / (double)R, chi2 = 0, e = (double)R / 10;
        for (int b = 0; b < 10; b++) chi2 += (bins[b] - e) * (bins[b] - e) / e;
        ck_assert_msg(fabs(mean - 0.5) < 4 * se, "%s point %zu coord %zu: mean %g", seqs[v], p, j + 1, mean);
        ck_assert_msg(chi2 < 33.7, "%s point %zu coord %zu: chi2 %g", seqs[v], p, j + 1, chi2);
      }
  }
}
END_TEST

START_TEST(test_seeds) {
  /* Same seed: identical points; different seed: different points (the
   * chance that two 32-bit shifts coincide is 2^-32 per coordinate);
   * unscrambled ones ignore the seed.  Also the scramble of dimension j does
   * not depend on the total dimension (prefix property). */
  const char *seqs[] = {"sobol-shift", "sobol-lms", "halton-perm", "mc", "sobol", "halton"};
  const size_t n = 64, s = 3;
  for (int v = 0; v < 6; v++) {
    double *a = draw(seqs[v], s, 42, n), *b = draw(seqs[v], s, 42, n), *c = draw(seqs[v], s, 43, n);
    ck_assert_mem_eq(a, b, n * s * sizeof *a);
    int randomised = kx_sequence_lookup(seqs[v])->randomised;
    ck_assert_int_eq(memcmp(a, c, n * s * sizeof *a) != 0, randomised);
    if (v < 3) {
      double *wide = draw(seqs[v], s + 2, 42, n);
      for (size_t i = 0; i < n; i++) ck_assert_mem_eq(a + i * s, wide + i * (s + 2), s * sizeof *a);
      free(wide);
    }
    free(a), free(b), free(c);
  }
}
END_TEST

START_TEST(test_skip) {
  /* skip(k) then next gives points k, k+1, ... exactly as drawing them all
   * (Sobol' and Halton jump directly, the GSL ones draw and discard); two
   * skips add up */
  const char *seqs[] = {"sobol-lms", "sobol", "halton-perm", "halton", "gsl-niederreiter"};
  for (int v = 0; v < 5; v++) {
    double *all = draw(seqs[v], 4, 9, 80), x[4];
    kx_sequence *q = kx_sequence_alloc(seqs[v], 4, 9);
    ck_assert_int_eq(kx_sequence_skip(q, 33), 0);
    for (int i = 33; i < 40; i++) {
      ck_assert_int_eq(kx_sequence_next(q, x), 0);
      ck_assert_mem_eq(x, all + i * 4, sizeof x);
    }
    ck_assert_int_eq(kx_sequence_skip(q, 24), 0);
    ck_assert_int_eq(kx_sequence_next(q, x), 0);
    ck_assert_mem_eq(x, all + 64 * 4, sizeof x);
    ck_assert_uint_eq(kx_sequence_dim(q), 4);
    ck_assert_str_eq(kx_sequence_get_type(q)->name, seqs[v]);
    kx_sequence_free(q);
    free(all);
  }
}
END_TEST

/* ----------------------------------------------------------------- Halton */

START_TEST(test_halton_first_points) {
  /* radical inverses: base 2: 0, 1/2, 1/4, 3/4, 1/8, 5/8, 3/8;
   * base 3: 0, 1/3, 2/3, 1/9, 4/9, 7/9, 2/9; base 11 (5th prime): n/11.
   * Each is a sum of at most 3 terms with relative rounding 2^-53 each, so
   * 1e-15 absolute is ample. */
  static const double b2[7] = {0, .5, .25, .75, .125, .625, .375};
  static const double b3[7] = {0, 1. / 3, 2. / 3, 1. / 9, 4. / 9, 7. / 9, 2. / 9};
  double *x = draw("halton", 5, 0, 7);
  for (int i = 0; i < 7; i++) {
    ck_assert_double_eq_tol(x[i * 5], b2[i], 1e-15);
    ck_assert_double_eq_tol(x[i * 5 + 1], b3[i], 1e-15);
    ck_assert_double_eq_tol(x[i * 5 + 4], i / 11.0, 1e-15);
  }
  free(x);
  /* Halton works beyond GSL's 1229: prime 2000 is 17389 */
  x = draw("halton", 2000, 0, 3);
  ck_assert_double_eq_tol(x[2000 + 1999], 1.0 / 17389, 1e-18);
  ck_assert_double_eq_tol(x[2 * 2000 + 1999], 2.0 / 17389, 1e-18);
  free(x);
}
END_TEST

START_TEST(test_halton_perm_stratified) {
  /* A digit permutation is a bijection of each digit, so in base b the first
   * b^k points still put exactly one point in each b-adic interval of length
   * b^-k (checked in bases 2, 3, 5 for the first 2^10, 3^6, 5^4 points). */
  const size_t s = 3, n = 1024;
  static const int base[3] = {2, 3, 5}, kmax[3] = {10, 6, 4};
  double *x = draw("halton-perm", s, 77, n);
  static unsigned char hits[1024];
  for (size_t j = 0; j < s; j++) {
    size_t cells = 1;
    for (int k = 0; k <= kmax[j]; k++, cells *= (size_t)base[j]) {
      memset(hits, 0, cells);
      for (size_t i = 0; i < cells; i++) {
        size_t c = (size_t)(x[i * s + j] * (double)cells);
        REQUIRE(c < cells && !hits[c]++, "base %d: first %zu points not stratified", base[j], cells);
      }
    }
  }
  free(x);
}
END_TEST

/* ------------------------------------------------------------ bad input */

static void assert_refused(const char *spec, size_t dim, const char *needle) {
  kx_error_clear();
  kx_sequence *q = kx_sequence_alloc(spec, dim, 0);
  ck_assert_msg(q == NULL, "%s dim %zu was accepted", spec, dim);
  ck_assert_msg(strstr(kx_error_message(), needle) != NULL, "message '%s' lacks '%s'", kx_error_message(), needle);
}

START_TEST(test_bad_input) {
  assert_refused("sobol", 0, "at least 1");
  assert_refused("mc", 0, "at least 1");
  assert_refused("sobol", 21202, "21201");
  assert_refused("sobol-lms", 21202, "21201");
  assert_refused("gsl-sobol", 41, "40");
  assert_refused("gsl-niederreiter", 13, "12");
  assert_refused("gsl-halton", 1230, "1229");
  assert_refused("gsl-reversehalton", 1230, "1229");
  assert_refused("halton-perm", 1230, "1229");
  assert_refused("no-such-sampler", 2, "no-such-sampler");
  assert_refused(NULL, 2, "unknown");
  /* at the limits they work */
  kx_sequence *q = kx_sequence_alloc("gsl-sobol", 40, 0);
  ck_assert_ptr_nonnull(q);
  kx_sequence_free(q);
  q = kx_sequence_alloc("gsl-niederreiter", 12, 0);
  ck_assert_ptr_nonnull(q);
  kx_sequence_free(q);
  /* the transforms propagate the refusal */
  double dirs[8], radii[2];
  kx_error_clear();
  ck_assert_int_ne(kx_sphere_directions("no-such-sampler", 4, 2, 0, dirs, NULL, NULL), 0);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "no-such-sampler"));
  /* d = 40 plus the radius coordinate is 41 > gsl-sobol's 40 */
  double *big = malloc(40 * 2 * sizeof *big);
  ck_assert_int_ne(kx_sphere_directions("gsl-sobol", 40, 2, 0, big, radii, "sequence"), 0);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "40"));
  free(big);
  ck_assert_int_ne(kx_sphere_directions("sobol-lms", 0, 2, 0, dirs, NULL, NULL), 0);
  ck_assert_int_ne(kx_sphere_directions("sobol-lms", 4, 2, 0, dirs, radii, "bogus"), 0);
}
END_TEST

/* ------------------------------------------------------ scalar inverses */

START_TEST(test_chi_inv_round_trip) {
  /* F_chi_d(r) = P_chisq(r^2, d).  Inverting then applying the CDF must give
   * t back relative to min(t, 1-t), the side on which each branch works.
   * GSL's chisq inverses polish with Newton steps; the round trip measured
   * 4e-14 relative at worst over this grid.  1e-10 allows for r^2 rounding
   * amplified by the density (relative error in P ~ d * eps for d ~ 1e3)
   * and still catches the wrong branch: Pinv near t = 1 - 1e-13 keeps only
   * ~3 digits of 1 - t. */
  static const double ds[] = {1, 2, 3, 16, 64, 128, 1024};
  static const double ts[] = {1e-14, 1e-9, 1e-4, 0.1, 0.5, 0.7, 0.9999, 1 - 1e-9, 1 - 1e-13};
  for (size_t a = 0; a < sizeof ds / sizeof *ds; a++)
    for (size_t b = 0; b < sizeof ts / sizeof *ts; b++) {
      double d = ds[a], t = ts[b], r = kx_chi_inv(t, d);
      ck_assert_msg(isfinite(r) && r > 0, "chi_inv(%g, %g) = %g", t, d, r);
      double back = t <= 0.5 ? gsl_cdf_chisq_P(r * r, d) : gsl_cdf_chisq_Q(r * r, d);
      double want = t <= 0.5 ? t : 1 - t;
      ck_assert_msg(fabs(back - want) <= 1e-10 * want, "d=%g t=%.17g: round trip %.17g vs %.17g", d, t, back, want);
    }
  /* monotone, and the median of chi_1024 is near sqrt(1024) = 32 */
  ck_assert(kx_chi_inv(0.3, 10) < kx_chi_inv(0.31, 10));
  ck_assert_double_eq_tol(kx_chi_inv(0.5, 1024), 32.0, 0.05);
  /* exact 0 and 1 are clamped into the open interval, never infinite */
  ck_assert(isfinite(kx_chi_inv(0, 8)) && isfinite(kx_chi_inv(1, 8)));
  ck_assert(isfinite(kx_normal_inv(0)) && isfinite(kx_normal_inv(1)));
  ck_assert_double_eq_tol(kx_normal_inv(0.975), 1.959963984540054, 1e-12);
  ck_assert_double_eq(kx_normal_inv(0.3), -kx_normal_inv(0.7));
}
END_TEST

START_TEST(test_open_unit) {
  static const double in[] = {0, -0.0, -1, 1, 2, 1 - 0x1p-54, 0x1p-70, 0.5, 1e-300, -1e300};
  for (size_t i = 0; i < sizeof in / sizeof *in; i++) {
    double u = kx_open_unit(in[i]);
    ck_assert_msg(u > 0 && u < 1, "open_unit(%g) = %g", in[i], u);
  }
  ck_assert(kx_open_unit(NAN) > 0 && kx_open_unit(NAN) < 1);
  ck_assert_double_eq(kx_open_unit(0.25), 0.25);
  /* every generator stays in [0,1); the randomised ones in (0,1) */
  for (const kx_sequence_type *const *t = kx_sequence_types; *t; t++) {
    double *x = draw((*t)->name, 4, 1, 1024);
    for (size_t i = 0; i < 4096; i++) {
      REQUIRE(x[i] >= 0 && x[i] < 1, "%s gave %g", (*t)->name, x[i]);
      if ((*t)->randomised) REQUIRE(x[i] > 0, "%s gave 0", (*t)->name);
    }
    free(x);
  }
}
END_TEST

/* ------------------------------------------------------------ transforms */

START_TEST(test_sphere_directions) {
  /* Unit norm to round-off (d terms, relative error ~ d eps < 1e-13).  The
   * mean of m iid uniform directions has E|mean|^2 = 1/m; a QMC set is more
   * balanced, so |mean| < 3/sqrt(m) holds with a large margin for every
   * scheme, and fails for directions biased towards a corner or an axis. */
  const char *seqs[] = {"sobol-lms", "sobol", "halton", "halton-perm", "mc"};
  const size_t d = 16, m = 2048;
  double *dirs = malloc(m * d * sizeof *dirs), *radii = malloc(m * sizeof *radii);
  for (int v = 0; v < 5; v++) {
    ck_assert_int_eq(kx_sphere_directions(seqs[v], d, m, 3, dirs, radii, "sequence"), 0);
    double mean[16] = {0}, r2 = 0;
    for (size_t i = 0; i < m; i++) {
      double n2 = 0;
      for (size_t k = 0; k < d; k++) n2 += dirs[i * d + k] * dirs[i * d + k], mean[k] += dirs[i * d + k] / (double)m;
      REQUIRE(fabs(n2 - 1.0) < 1e-13, "%s: |v|^2 = %.17g", seqs[v], n2);
      REQUIRE(radii[i] > 0 && isfinite(radii[i]), "%s: radius %g", seqs[v], radii[i]);
      r2 += radii[i] * radii[i] / (double)m;
    }
    double mn = 0;
    for (size_t k = 0; k < d; k++) mn += mean[k] * mean[k];
    ck_assert_msg(sqrt(mn) < 3 / sqrt((double)m), "%s: |mean direction| = %g", seqs[v], sqrt(mn));
    /* E r^2 = d for chi_d; sd of the MC mean is sqrt(2d/m) = 0.125: 5 sd */
    ck_assert_msg(fabs(r2 - (double)d) < 5 * sqrt(2.0 * (double)d / (double)m), "%s: mean r^2 = %g", seqs[v], r2);
  }
  /* Plain Sobol' in d = 2: the origin (point 0) and (1/2,1/2) (point 1,
   * g = 0) are skipped, so the first direction comes from (3/4,1/4):
   * g = (z, -z), v = (1,-1)/sqrt 2 (to round-off of one division). */
  ck_assert_int_eq(kx_sphere_directions("sobol", 2, 2, 0, dirs, NULL, NULL), 0);
  ck_assert_double_eq_tol(dirs[0], M_SQRT1_2, 1e-15);
  ck_assert_double_eq_tol(dirs[1], -M_SQRT1_2, 1e-15);
  ck_assert_double_eq_tol(dirs[2], -M_SQRT1_2, 1e-15);
  /* stratified radii are a permutation of F^-1((i+1/2)/m) */
  ck_assert_int_eq(kx_sphere_directions("sobol-lms", d, m, 3, dirs, radii, "stratified"), 0);
  int *seen = calloc(m, sizeof *seen), in_order = 1;
  for (size_t i = 0; i < m; i++) {
    double t = gsl_cdf_chisq_P(radii[i] * radii[i], (double)d);
    size_t k = (size_t)(t * (double)m);
    REQUIRE(k < m && !seen[k]++, "stratified radius %zu (quantile %g) repeats a stratum", i, t);
    REQUIRE(radii[i] == kx_chi_inv(((double)k + 0.5) / (double)m, (double)d), "radius %zu off its stratum", i);
    if (k != i) in_order = 0;
  }
  ck_assert_msg(!in_order, "stratified radii were not shuffled");
  free(seen);
  free(dirs);
  free(radii);
}
END_TEST

START_TEST(test_orthogonal_blocks) {
  /* Rows within a block are orthonormal: Householder QR gives Q orthogonal to
   * O(d eps) = 16 * 2.2e-16; 1e-13 leaves a margin of ~30. */
  const size_t d = 16, m = 40; /* blocks of 16, 16, 8 rows */
  double *w = malloc(m * d * sizeof *w), *w2 = malloc(m * d * sizeof *w2);
  ck_assert_int_eq(kx_orthogonal_blocks(d, m, 5, w), 0);
  for (size_t b = 0; b < m; b += d)
    for (size_t i = b; i < m && i < b + d; i++)
      for (size_t j = b; j < m && j < b + d; j++) {
        double dot = 0;
        for (size_t k = 0; k < d; k++) dot += w[i * d + k] * w[j * d + k];
        REQUIRE(fabs(dot - (i == j)) < 1e-13, "rows %zu, %zu: dot %.17g", i, j, dot);
      }
  /* rows of different blocks are independent, so not orthogonal */
  double cross = 0;
  for (size_t k = 0; k < d; k++) cross += w[k] * w[d * d + k];
  ck_assert(fabs(cross) > 1e-6);
  ck_assert_int_eq(kx_orthogonal_blocks(d, m, 5, w2), 0);
  ck_assert_mem_eq(w, w2, m * d * sizeof *w);
  ck_assert_int_eq(kx_orthogonal_blocks(d, m, 6, w2), 0);
  ck_assert(memcmp(w, w2, m * d * sizeof *w) != 0);
  free(w), free(w2);

  /* Haar: every entry of Q has mean 0 and variance 1/d.  Without the
   * sign(diag R) correction Householder QR makes Q_00 = a_00 / R_00 with a
   * sign tied to a_00, so the diagonal is strongly biased.  With N = 4000
   * blocks of d = 4 the standard error of the mean of Q_ii is
   * sqrt(1/(d N)) = 0.0079; we allow 4 of them. */
  const size_t dd = 4, N = 4000;
  double *q = malloc(N * dd * dd * sizeof *q);
  ck_assert_int_eq(kx_orthogonal_blocks(dd, N * dd, 9, q), 0);
  for (size_t i = 0; i < dd; i++) {
    double mean = 0, sq = 0;
    for (size_t b = 0; b < N; b++) {
      double v = q[(b * dd + i) * dd + i];
      mean += v / (double)N, sq += v * v / (double)N;
    }
    ck_assert_msg(fabs(mean) < 4 * sqrt(1.0 / (double)(dd * N)), "mean Q_%zu%zu = %g", i, i, mean);
    /* E Q_ii^2 = 1/4; its sd is < 1/4, SE < 0.004: allow 0.02 */
    ck_assert_double_eq_tol(sq, 1.0 / (double)dd, 0.02);
  }
  free(q);
}
END_TEST

int main(void) {
  Suite *s = kx_test_suite("samplers");
  TCase *tc = kx_test_case(s, "core");
  tcase_set_timeout(tc, 600);
  kx_test_add(tc, (const TTest *const[]){test_sobol_published_2d, test_sobol_published_3d,
                                         test_sobol_high_dimension_recurrence, test_sobol_table_matches_file,
                                         test_sobol_net_1d, test_sobol_net_2d, test_discrepancy_rate,
                                         test_scrambled_marginal_uniform, test_seeds, test_skip,
                                         test_halton_first_points, test_halton_perm_stratified, test_bad_input,
                                         test_chi_inv_round_trip, test_open_unit, test_sphere_directions,
                                         test_orthogonal_blocks, NULL});
  return kx_test_run(s);
}
