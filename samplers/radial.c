/* Scalar inverse CDFs: where uniform points become normal coordinates and
 * chi radii.  Kept apart from the generators so every scheme shares one
 * guarded path to the tails. */
#include <gsl/gsl_cdf.h>
#include <math.h>

#include "samplers/transforms.h"

double kx_open_unit(double u) {
  /* 2^-60 keeps Phi^-1 finite (about -8.7) and is below any grid spacing a
   * sequence here produces; 1 - 2^-53 is the largest double below 1. */
  static const double lo = 0x1p-60, hi = 1.0 - 0x1p-53;
  if (!(u > lo)) return lo; /* also maps NaN to lo, never to an inverse CDF */
  if (u > hi) return hi;
  return u;
}

double kx_normal_inv(double u) {
  u = kx_open_unit(u);
  /* Q-form above 1/2: 1 - u is exact there and Qinv keeps the upper tail's digits. */
  return u <= 0.5 ? gsl_cdf_ugaussian_Pinv(u) : gsl_cdf_ugaussian_Qinv(1.0 - u);
}

double kx_chi_inv(double t, double d) {
  t = kx_open_unit(t);
  double x2 = t <= 0.5 ? gsl_cdf_chisq_Pinv(t, d) : gsl_cdf_chisq_Qinv(1.0 - t, d);
  return sqrt(x2 > 0 ? x2 : 0.0);
}
