/* Sobol' sequences from the Joe–Kuo new-joe-kuo-6.21201 direction numbers
 * (compiled in, see sobol_table.h), 32-bit digits, Gray-code order (Antonov
 * and Saleev): point n differs from point n-1 by one XOR with the direction
 * number of the lowest set bit of n, so each point costs O(s).
 *
 * Variants:
 *   sobol        the plain sequence; starts with the origin.
 *   sobol-shift  digital shift: every coordinate XORed with a random 32-bit
 *                word per dimension.
 *   sobol-lms    Matousek's linear matrix scramble: the generator matrix C_j
 *                of each dimension is replaced by L_j C_j, L_j a random
 *                lower-triangular binary matrix with unit diagonal (so the
 *                net property is kept), followed by a digital shift.
 * Randomised outputs are (y + 1/2) 2^-32, y the scrambled 32-bit word: the
 * random shift makes y uniform on {0..2^32-1}, so the output is uniform on
 * the midpoints of the 2^-32 grid (mean exactly 1/2, never 0, never 1). */
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "samplers/sequence_impl.h"
#include "samplers/sobol_table.h"

#define BITS 32

typedef struct {
  uint64_t index; /* index of the next point */
  int randomised;
  uint32_t *x;     /* current point, 32-bit words (before the shift) */
  uint32_t *v;     /* direction numbers, v[j * BITS + k] for bit k+1 (MSB first) */
  uint32_t *shift; /* digital shift per dimension (0 when unscrambled) */
  uint32_t data[];
} sobol_state;

enum { PLAIN = 0, SHIFT = 1, LMS = 2 };

static size_t sobol_state_size(size_t dim) {
  return sizeof(sobol_state) + dim * (BITS + 2) * sizeof(uint32_t);
}

/* Direction numbers of dimension j + 1 (j 0-based), scaled so bit 31 is the
 * first binary digit: v_k = m_k 2^(32-k) from the initial m_k, then the
 * Sobol' recurrence of the primitive polynomial for k > degree. */
static void sobol_directions(size_t j, uint32_t *v) {
  if (j == 0) { /* van der Corput: all m_k = 1 */
    for (int k = 0; k < BITS; k++) v[k] = (uint32_t)1 << (BITS - 1 - k);
    return;
  }
  unsigned s = kx_sobol_degree[j];
  uint32_t a = kx_sobol_poly[j];
  const uint32_t *m = kx_sobol_m + kx_sobol_offset[j];
  for (unsigned k = 0; k < s && k < BITS; k++) v[k] = m[k] << (BITS - 1 - k);
  for (unsigned k = s; k < BITS; k++) {
    uint32_t w = v[k - s] ^ (v[k - s] >> s);
    for (unsigned l = 1; l < s; l++)
      if ((a >> (s - 1 - l)) & 1u) w ^= v[k - l];
    v[k] = w;
  }
}

/* Applies a random lower-triangular unit-diagonal matrix L (acting on digit
 * vectors, digit 1 = bit 31) to the 32 direction numbers of one dimension:
 * digit i of L*v is the parity of row i of L AND v.  Row i has its diagonal
 * bit and uniformly random bits at the more significant digits. */
static void sobol_scramble_matrix(uint32_t *v, kx_splitmix *rng) {
  uint32_t row[BITS];
  for (int i = 0; i < BITS; i++) {
    uint32_t diag = (uint32_t)1 << (BITS - 1 - i);
    uint32_t above = i == 0 ? 0 : ~(uint32_t)((((uint64_t)1) << (BITS - i)) - 1);
    row[i] = diag | ((uint32_t)kx_splitmix_next(rng) & above);
  }
  for (int k = 0; k < BITS; k++) {
    uint32_t out = 0;
    for (int i = 0; i < BITS; i++)
      out |= (uint32_t)(__builtin_parity(row[i] & v[k]) & 1) << (BITS - 1 - i);
    v[k] = out;
  }
}

static int sobol_init_variant(void *vs, size_t dim, uint64_t seed, int variant) {
  sobol_state *st = vs;
  st->index = 0;
  st->randomised = variant != PLAIN;
  st->x = st->data;
  st->shift = st->x + dim;
  st->v = st->shift + dim;
  for (size_t j = 0; j < dim; j++) {
    uint32_t *v = st->v + j * BITS;
    sobol_directions(j, v);
    if (variant == LMS) {
      kx_splitmix rng = kx_splitmix_stream(seed, KX_STREAM_SOBOL_MATRIX, j);
      sobol_scramble_matrix(v, &rng);
    }
    if (variant != PLAIN) {
      kx_splitmix rng = kx_splitmix_stream(seed, KX_STREAM_SOBOL_SHIFT, j);
      st->shift[j] = (uint32_t)(kx_splitmix_next(&rng) >> 32);
    }
  }
  return 0;
}

static int sobol_init(void *st, size_t dim, uint64_t seed) {
  (void)seed; /* the plain sequence is deterministic */
  return sobol_init_variant(st, dim, 0, PLAIN);
}
static int sobol_shift_init(void *st, size_t dim, uint64_t seed) { return sobol_init_variant(st, dim, seed, SHIFT); }
static int sobol_lms_init(void *st, size_t dim, uint64_t seed) { return sobol_init_variant(st, dim, seed, LMS); }

static int sobol_next(void *vs, size_t dim, double *x) {
  sobol_state *st = vs;
  uint64_t n = st->index;
  if (n >= ((uint64_t)1 << BITS))
    return kx_fail(KX_ERANGE, "Sobol' sequence exhausted: at most 2^32 points with 32-bit digits");
  if (n > 0) {
    /* Gray code: gray(n) ^ gray(n-1) is the lowest set bit of n */
    int c = __builtin_ctzll(n);
    const uint32_t *v = st->v + c;
    for (size_t j = 0; j < dim; j++) st->x[j] ^= v[j * BITS];
  }
  static const double scale = 0x1p-32;
  if (st->randomised)
    for (size_t j = 0; j < dim; j++) x[j] = ((double)(st->x[j] ^ st->shift[j]) + 0.5) * scale;
  else
    for (size_t j = 0; j < dim; j++) x[j] = (double)st->x[j] * scale;
  st->index = n + 1;
  return 0;
}

/* Jumps to point index + n: the Gray-code state of index g is the XOR of
 * the direction numbers at the set bits of gray(g) = g ^ (g >> 1). */
static int sobol_skip(void *vs, size_t dim, uint64_t n) {
  sobol_state *st = vs;
  if (n > ((uint64_t)1 << BITS) - st->index)
    return kx_fail(KX_ERANGE, "Sobol' sequence: cannot skip past 2^32 points");
  uint64_t g = st->index + n;
  st->index = g;
  if (g == 0) return 0;
  /* the state holds point g - 1 (the last one returned); next() adds the
   * step to point g */
  uint64_t gray = (g - 1) ^ ((g - 1) >> 1);
  for (size_t j = 0; j < dim; j++) {
    const uint32_t *v = st->v + j * BITS;
    uint32_t w = 0;
    for (int k = 0; k < BITS; k++)
      if ((gray >> k) & 1) w ^= v[k];
    st->x[j] = w;
  }
  return 0;
}

/* The three differ only in the scramble their init draws. */
#define SOBOL_TYPE(name, description, randomised, init) \
  {name, description, KX_SOBOL_MAX_DIM, randomised, sobol_state_size, init, sobol_next, NULL, sobol_skip}

const kx_sequence_type kx_sequence_sobol =
    SOBOL_TYPE("sobol", "Sobol' (Joe-Kuo 6.21201), unscrambled, starts at the origin", 0, sobol_init);
const kx_sequence_type kx_sequence_sobol_shift =
    SOBOL_TYPE("sobol-shift", "Sobol' with a random digital shift", 1, sobol_shift_init);
const kx_sequence_type kx_sequence_sobol_lms =
    SOBOL_TYPE("sobol-lms", "Sobol' with a random linear matrix scramble and digital shift", 1, sobol_lms_init);
