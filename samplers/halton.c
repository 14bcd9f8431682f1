/* Halton sequences: coordinate j of point n is the radical inverse of n in
 * the j-th prime base b_j (2, 3, 5, ...), i.e. the base-b digits of n
 * mirrored about the radix point.  Point 0 is the origin.
 *
 *   halton       plain radical inverse; any dimension up to 2^20 (the first
 *                2^20 primes come from a sieve).
 *   halton-perm  every digit position k of every dimension j gets its own
 *                uniformly random permutation sigma_jk of {0..b_j-1}, applied
 *                to all K_j positions with b_j^K_j >= 2^53 (double
 *                precision), including the leading zeros of n.  Because
 *                sigma_jk(a) is a uniform digit for any fixed a, and the
 *                positions are independent, every point is uniform on the
 *                b^-K grid; half a grid step (< 2^-53) is added so no
 *                coordinate is 0.  The permutations are unrestricted: one
 *                that fixed 0 would leave the leading zeros at 0 and bias
 *                small coordinates.  The tables take sum_j b_j K_j 16-bit
 *                entries (about 0.6 MB for s = 129, 57 MB at the limit
 *                s = 1229, the primes below 10^4). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "samplers/sequence_impl.h"

#define HALTON_MAX_DIM ((size_t)1 << 20)
#define HALTON_PERM_MAX_DIM 1229
/* Points are indexed below 2^53 so that b^K >= 2^53 covers every digit. */
#define HALTON_MAX_INDEX ((uint64_t)1 << 53)

typedef struct {
  uint64_t index;
  uint32_t *base;     /* b_j */
  uint32_t *ndigits;  /* K_j (halton-perm) */
  size_t *perm_start; /* offset of sigma_j0 in perm (halton-perm) */
  uint16_t *perm;     /* sigma_jk(a) = perm[perm_start[j] + k * b_j + a] */
  /* halton-perm: tail[perm_start-like offset tail_start[j] + k] = the Horner
   * value after digits K_j - 1 .. k when all of them are 0, the leading
   * zeros every index below b_j^k has, so a point's expansion starts at
   * its own digits (the same operations, so the same bits) */
  size_t *tail_start;
  double *tail;
} halton_state;

static size_t halton_state_size(size_t dim) {
  (void)dim; /* the tables are allocated by init (their size depends on the primes) */
  return sizeof(halton_state);
}

/* The first `count` primes by a sieve of Eratosthenes up to Rosser's bound
 * p_n < n (ln n + ln ln n) (n >= 6). */
static int first_primes(size_t count, uint32_t *out) {
  size_t limit = 15;
  if (count >= 6) {
    double n = (double)count;
    limit = (size_t)(n * (log(n) + log(log(n)))) + 1;
  }
  unsigned char *composite = kx_calloc(limit + 1, 1);
  if (!composite) return KX_ENOMEM;
  size_t found = 0;
  for (size_t i = 2; i <= limit && found < count; i++) {
    if (composite[i]) continue;
    out[found++] = (uint32_t)i;
    for (size_t k = i * i; k <= limit; k += i) composite[k] = 1;
  }
  free(composite);
  if (found < count) return kx_fail(KX_ENUM, "prime sieve found only %zu of %zu primes", found, count);
  return 0;
}

static void halton_release(void *vs) {
  halton_state *st = vs;
  free(st->base);
  free(st->ndigits);
  free(st->perm_start);
  free(st->perm);
  free(st->tail_start);
  free(st->tail);
  memset(st, 0, sizeof *st);
}

static int halton_init_common(halton_state *st, size_t dim) {
  st->index = 0;
  st->base = kx_malloc(dim * sizeof *st->base);
  if (!st->base) return KX_ENOMEM;
  int rc = first_primes(dim, st->base);
  if (rc) halton_release(st);
  return rc;
}

static int halton_init(void *vs, size_t dim, uint64_t seed) {
  (void)seed; /* deterministic */
  return halton_init_common(vs, dim);
}

static int halton_perm_init(void *vs, size_t dim, uint64_t seed) {
  halton_state *st = vs;
  int rc = halton_init_common(st, dim);
  if (rc) return rc;
  st->ndigits = kx_malloc(dim * sizeof *st->ndigits);
  st->perm_start = kx_malloc(dim * sizeof *st->perm_start);
  st->tail_start = kx_malloc(dim * sizeof *st->tail_start);
  if (!st->ndigits || !st->perm_start || !st->tail_start) {
    halton_release(st);
    return KX_ENOMEM;
  }
  size_t total = 0, tails = 0;
  for (size_t j = 0; j < dim; j++) {
    uint32_t b = st->base[j], k = 0;
    for (double reach = 1; reach < 0x1p53; reach *= b) k++;
    st->ndigits[j] = k;
    st->perm_start[j] = total;
    total += (size_t)k * b;
    st->tail_start[j] = tails;
    tails += (size_t)k + 1;
  }
  st->perm = kx_malloc(total * sizeof *st->perm);
  st->tail = kx_malloc(tails * sizeof *st->tail);
  if (!st->perm || !st->tail) {
    halton_release(st);
    return KX_ENOMEM;
  }
  for (size_t j = 0; j < dim; j++) {
    /* one stream per dimension keeps the scramble of dimension j
     * independent of the total dimension */
    kx_splitmix rng = kx_splitmix_stream(seed, KX_STREAM_HALTON_PERM, j);
    uint32_t b = st->base[j];
    for (uint32_t k = 0; k < st->ndigits[j]; k++) {
      uint16_t *sigma = st->perm + st->perm_start[j] + (size_t)k * b;
      for (uint32_t a = 0; a < b; a++) sigma[a] = (uint16_t)a;
      for (uint32_t a = b - 1; a > 0; a--) { /* Fisher-Yates: uniform over all b! */
        uint32_t r = (uint32_t)kx_splitmix_below(&rng, (uint64_t)a + 1);
        uint16_t t = sigma[a];
        sigma[a] = sigma[r];
        sigma[r] = t;
      }
    }
    /* the expansion of halton_perm_next over zero digits, from the deepest */
    const uint16_t *perm = st->perm + st->perm_start[j];
    double *tail = st->tail + st->tail_start[j], fb = (double)b;
    tail[st->ndigits[j]] = 0.5;
    for (uint32_t k = st->ndigits[j]; k-- > 0;) tail[k] = ((double)perm[(size_t)k * b] + tail[k + 1]) / fb;
  }
  return 0;
}

static int halton_check_index(const halton_state *st) {
  if (st->index >= HALTON_MAX_INDEX)
    return kx_fail(KX_ERANGE, "Halton sequence exhausted: at most 2^53 points");
  return 0;
}

static int halton_next(void *vs, size_t dim, double *x) {
  halton_state *st = vs;
  int rc = halton_check_index(st);
  if (rc) return rc;
  for (size_t j = 0; j < dim; j++) {
    uint64_t n = st->index, b = st->base[j];
    uint32_t digit[64], k = 0;
    for (; n; n /= b) digit[k++] = (uint32_t)(n % b);
    /* Horner from the deepest digit with a true division per step: each
     * step is correctly rounded, so base 2 is exact and others are within
     * a few ulps (multiplying by a rounded 1/b would add an error per step) */
    double r = 0;
    while (k-- > 0) r = ((double)digit[k] + r) / (double)b;
    x[j] = r;
  }
  st->index++;
  return 0;
}

static int halton_perm_next(void *vs, size_t dim, double *x) {
  halton_state *st = vs;
  int rc = halton_check_index(st);
  if (rc) return rc;
  uint32_t digit[64];
  for (size_t j = 0; j < dim; j++) {
    uint64_t n = st->index, b = st->base[j];
    uint32_t k = 0;
    for (; n; n /= b) digit[k++] = (uint32_t)(n % b);
    const uint16_t *perm = st->perm + st->perm_start[j];
    /* Horner from the deepest digit, starting from half a grid step so
     * the result is never 0: r = sum_k sigma_k(a_k) b^-(k+1) + b^-K / 2;
     * the K - k leading zeros' part is the precomputed tail */
    double r = st->tail[st->tail_start[j] + k], fb = (double)b;
    while (k-- > 0) r = ((double)perm[(size_t)k * b + digit[k]] + r) / fb;
    x[j] = r < 1.0 ? r : 1.0 - 0x1p-53; /* rounding of an all-(b-1) point */
  }
  st->index++;
  return 0;
}

static int halton_skip(void *vs, size_t dim, uint64_t n) {
  (void)dim;
  halton_state *st = vs;
  if (n > HALTON_MAX_INDEX - st->index) return kx_fail(KX_ERANGE, "Halton sequence: cannot skip past 2^53 points");
  st->index += n;
  return 0;
}

const kx_sequence_type kx_sequence_halton = {
    "halton", "Halton (radical inverse in the first s primes), starts at the origin",
    HALTON_MAX_DIM, 0, halton_state_size, halton_init, halton_next, halton_release, halton_skip};

const kx_sequence_type kx_sequence_halton_perm = {
    "halton-perm", "Halton with independent random digit permutations (all 53-bit digit positions)",
    HALTON_PERM_MAX_DIM, 1, halton_state_size, halton_perm_init, halton_perm_next, halton_release, halton_skip};
