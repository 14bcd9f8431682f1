/* The batched power-of-two DCT kernels of dct_simd.c, included once per
 * instruction set with KX_ISA naming the variant.  Every loop runs over
 * the KX_DCT_BATCH vectors of one row of an interleaved block (value j of
 * vector v at [j * KX_DCT_BATCH + v]), so the compiler puts vectors, not
 * frequencies, in the SIMD lanes; each lane does the same additions and
 * multiplications in the same order (no FMA is enabled), so every
 * variant gives the same bits. */
#define KX_CAT2(a, b) a##_##b
#define KX_CAT(a, b) KX_CAT2(a, b)
#define S2 KX_CAT(s2, KX_ISA)
#define S3 KX_CAT(s3, KX_ISA)
#define S4 KX_CAT(s4, KX_ISA)
#define BFLY KX_CAT(bfly, KX_ISA)
#define NB KX_DCT_BATCH

/* p = a + b, q = a - b on one row of the batch. */
static inline void BFLY(const double *a, const double *b, double *restrict p, double *restrict q) {
  for (size_t v = 0; v < NB; v++) {
    p[v] = a[v] + b[v];
    q[v] = a[v] - b[v];
  }
}

static void S4(size_t n, const double *tw, const double *restrict x, size_t xs, double *restrict y,
               size_t ys, double *restrict tmp);

/* y_{k ys} = sum_j x_j cos(pi (2j+1) k / (2n)); x contiguous rows. */
static void S2(size_t n, const double *tw, const double *restrict x, double *restrict y, size_t ys,
               double *restrict tmp) {
  if (n == 1) { /* the length-1 sum is the value itself */
    memcpy(y, x, NB * sizeof *y);
    return;
  }
  const size_t h = n / 2;
  double *restrict u = tmp, *restrict w = tmp + h * NB;
  for (size_t j = 0; j < h; j++) BFLY(x + j * NB, x + (n - 1 - j) * NB, u + j * NB, w + j * NB);
  S2(h, tw, u, y, 2 * ys, tmp + n * NB);
  S4(h, tw, w, NB, y + ys, 2 * ys, tmp + n * NB);
}

/* y_{k ys} = sum_j x_{j xs} cos(pi (2j+1)(2k+1) / (4n)), through the
 * DCT-II of x_j 2 cos(pi (2j+1) / (4n)): consecutive DCT-IV outputs sum to
 * its outputs (2 cos a cos b = cos(a+b) + cos(a-b)), so a running
 * difference recovers them. */
static void S4(size_t n, const double *tw, const double *restrict x, size_t xs, double *restrict y,
               size_t ys, double *restrict tmp) {
  const double *c = tw + n; /* 2 cos(pi (2j+1) / (4n)), j < n */
  double *restrict w = tmp;
  for (size_t j = 0; j < n; j++) {
    const double *a = x + j * xs;
    double *wj = w + j * NB;
    for (size_t v = 0; v < NB; v++) wj[v] = c[j] * a[v];
  }
  S2(n, tw, w, y, ys, tmp + n * NB);
  for (size_t v = 0; v < NB; v++) y[v] *= 0.5;
  for (size_t k = 1; k < n; k++) {
    const double *p = y + (k - 1) * ys;
    double *q = y + k * ys;
    for (size_t v = 0; v < NB; v++) q[v] = q[v] - p[v];
  }
}

/* The transpose of S2: y_j = sum_k x_{k xs} cos(pi (2j+1) k / (2n)),
 * y contiguous rows. */
static void S3(size_t n, const double *tw, const double *restrict x, size_t xs, double *restrict y,
               double *restrict tmp) {
  if (n == 1) return (void)memcpy(y, x, NB * sizeof *y);
  const size_t h = n / 2;
  double *restrict u = tmp, *restrict w = tmp + h * NB;
  S3(h, tw, x, 2 * xs, u, tmp + n * NB);
  S4(h, tw, x + xs, 2 * xs, w, NB, tmp + n * NB);
  for (size_t j = 0; j < h; j++) BFLY(u + j * NB, w + j * NB, y + j * NB, y + (n - 1 - j) * NB);
}

static void KX_CAT(run, KX_ISA)(int type, size_t n, const double *tw, const double *x, double *y,
                                double *tmp) {
  switch (type) {
    case 2: S2(n, tw, x, y, NB, tmp); break;
    case 3: S3(n, tw, x, NB, y, tmp); break;
    default: S4(n, tw, x, NB, y, NB, tmp); break;
  }
}

#undef S2
#undef S3
#undef S4
#undef BFLY
#undef NB
#undef KX_CAT
#undef KX_CAT2
