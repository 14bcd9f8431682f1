/* Seeds.  Every random choice in the toolkit descends from one explicit
 * user seed through kx_seed_derive, so that e.g. the feature map of (scheme,
 * m, seed) is the same whatever else a run computes, and two streams never
 * share a seed by accident. */
#ifndef KX_SEED_H
#define KX_SEED_H

#include <stdint.h>

/* SplitMix64 finaliser: a bijective 64-bit mix. */
static inline uint64_t kx_mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* Child seed for stream `stream` of `parent` (streams are small constants or
 * indices chosen by the caller). */
static inline uint64_t kx_seed_derive(uint64_t parent, uint64_t stream) {
  return kx_mix64(kx_mix64(parent) ^ (stream * 0xd1b54a32d192ed03ULL));
}

/* GSL's mt19937 takes an unsigned long seed and treats 0 as 4357; map any
 * 64-bit seed to a non-zero value so distinct seeds stay distinct. */
static inline unsigned long kx_gsl_seed(uint64_t seed) {
  uint64_t s = kx_mix64(seed);
  return (unsigned long)(s ? s : 1);
}

#endif
