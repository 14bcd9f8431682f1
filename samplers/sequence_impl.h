/* Private to samplers/: the generator modules' type entries (collected into
 * kx_sequence_types by sequence.c) and the small counter-based random source
 * the scramblers draw from.  The scrambles use SplitMix64 rather than a GSL
 * rng because every (dimension, purpose) pair gets its own stream from
 * kx_seed_derive: the scramble of dimension j is then the same whatever the
 * total dimension s, so a d-dimensional point set is exactly the projection
 * of the (d+1)-dimensional one with the same seed. */
#ifndef KX_SEQUENCE_IMPL_H
#define KX_SEQUENCE_IMPL_H

#include <stdint.h>

#include "core/kx_seed.h"
#include "samplers/sequence.h"

extern const kx_sequence_type kx_sequence_mc;
extern const kx_sequence_type kx_sequence_sobol;
extern const kx_sequence_type kx_sequence_sobol_shift;
extern const kx_sequence_type kx_sequence_sobol_lms;
extern const kx_sequence_type kx_sequence_halton;
extern const kx_sequence_type kx_sequence_halton_perm;
extern const kx_sequence_type kx_sequence_gsl_sobol;
extern const kx_sequence_type kx_sequence_gsl_niederreiter;
extern const kx_sequence_type kx_sequence_gsl_halton;
extern const kx_sequence_type kx_sequence_gsl_reversehalton;

/* Stream identifiers for kx_seed_derive, one per purpose, so two scrambles
 * never share random bits. */
enum {
  KX_STREAM_SOBOL_SHIFT = 0x5301,
  KX_STREAM_SOBOL_MATRIX = 0x5302,
  KX_STREAM_HALTON_PERM = 0x4801
};

/* SplitMix64 generator state: 64 uniformly random bits per call. */
typedef struct {
  uint64_t s;
} kx_splitmix;

static inline kx_splitmix kx_splitmix_stream(uint64_t seed, uint64_t purpose, uint64_t index) {
  kx_splitmix r = {kx_seed_derive(kx_seed_derive(seed, purpose), index)};
  return r;
}

static inline uint64_t kx_splitmix_next(kx_splitmix *r) {
  r->s += 0x9e3779b97f4a7c15ULL;
  uint64_t z = r->s;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* Uniform integer in [0, n), n >= 1, without modulo bias (rejection from the
 * largest multiple of n below 2^64). */
static inline uint64_t kx_splitmix_below(kx_splitmix *r, uint64_t n) {
  uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t z;
  do z = kx_splitmix_next(r);
  while (z >= limit);
  return z % n;
}

#endif
