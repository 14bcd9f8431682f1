/* Weights D of the weighted maps (WPFF, WDCF), fitted to calibration pairs. */
#ifndef KX_WEIGHT_FIT_H
#define KX_WEIGHT_FIT_H

#include <stddef.h>
#include <stdint.h>

#include "approx/kernel.h"

/* A fit's data: calibration rows q (nq x d) and k (nk x d) and the map's
 * log features of them with unit weights, log phi_i = log(1/sqrt m) + ...
 * (the feature map computes them; the fit never sees the map). */
typedef struct {
  size_t m, d;
  kx_kernel kernel;
  const double *q, *k;
  size_t nq, nk;
  const double *log_phi_q, *log_phi_k; /* nq x m, nk x m */
  size_t n_pairs;  /* 0: max(4m, 2048) random pairs */
  int all_pairs;   /* every (q_a, k_b) once instead of random pairs */
  double ridge;
  uint64_t seed;   /* the map's seed: the random pairs derive from it */
} kx_weight_fit;

/* Fits beta_i = D_i^2 >= 0 so that sum_i beta_i phi_i(q) phi_i(k) matches
 * the kernel on P random calibration pairs (q_a, k_b), in relative terms:
 *   minimise (1/P) sum_p (sum_i beta_i A_pi - 1)^2 + (ridge/m) |beta - 1|^2,
 *   A_pi = phi_i(q_a) phi_i(k_b) / kappa(q_a, k_b)   (unit weights),
 * a non-negative least-squares problem on its normal equations, solved by
 * an active-set Cholesky start polished by projected coordinate descent.  The ridge term pulls towards the
 * unweighted map (beta = 1) so the fit stays defined when P is small or the
 * features are nearly collinear.  Writes log_weight (m entries),
 * log(D_i / sqrt m). */
int kx_fit_weights(const kx_weight_fit *fit, double *log_weight);

/* The solver alone, for tests: minimises 1/2 b'Gb - h'b over b >= 0 for a
 * symmetric positive definite n x n G, to a KKT violation (projected
 * gradient) below tol * max|h|.  b receives the result. */
int kx_nnls_gram(size_t n, const double *G, const double *h, double *b, size_t max_sweeps,
                 double tol, size_t *sweeps_used);

#endif
