/* The batched power-of-two DCT kernels of dct_simd.c, included once per
 * instruction set and precision with KX_ISA naming the variant, KX_REAL
 * its element type (double or float), KX_VW its lanes and KX_QV the
 * vectors of lanes DCT-I's product accumulates per row.  Every loop runs
 * over the KX_DCT_BATCH vectors of one row of an interleaved block (value j of vector v at [j * KX_DCT_BATCH + v]), so
 * the compiler puts vectors, not frequencies, in the SIMD lanes; each lane
 * does the same additions and multiplications in the same order (no FMA
 * contraction, dct_simd.c), so every variant gives the same bits.
 *
 * Lengths up to LEAF run as straight-line code on KX_VW lanes at a time
 * with the whole sub-transform in registers: the same operations as the
 * in-memory recursion above them, without its loads and stores, which
 * bound a radix-2 pass (two loads and two stores per two operations). */
#define KX_CAT2(a, b) a##_##b
#define KX_CAT(a, b) KX_CAT2(a, b)
#define VD KX_CAT(vd, KX_ISA)
#define VDU KX_CAT(vdu, KX_ISA)
#define S2 KX_CAT(s2, KX_ISA)
#define S3 KX_CAT(s3, KX_ISA)
#define S4 KX_CAT(s4, KX_ISA)
#define BFLY KX_CAT(bfly, KX_ISA)
#define LEAF2 KX_CAT(leaf2, KX_ISA)
#define LEAF3 KX_CAT(leaf3, KX_ISA)
#define LEAF4 KX_CAT(leaf4, KX_ISA)
#define TRANSPOSE KX_CAT(transpose, KX_ISA)
#define NB KX_DCT_BATCH
#define VW KX_VW
#define INLINE static inline __attribute__((always_inline))

/* VW reals; VDU the same at the element's alignment, for callers' arrays. */
typedef KX_REAL VD __attribute__((vector_size(VW * sizeof(KX_REAL))));
typedef KX_REAL VDU __attribute__((vector_size(VW * sizeof(KX_REAL)), aligned(sizeof(KX_REAL))));

/* ---------- register codelets: x[n] -> y[n], n <= LEAF ---------- */

#define LEAF 16
/* r2: plain DCT-II sums, r4: DCT-IV sums through a DCT-II, r3: the
 * transpose of r2, each exactly as S2, S4 and S3 below compute them. */
#define R2(n) KX_CAT(r2_##n, KX_ISA)
#define R3(n) KX_CAT(r3_##n, KX_ISA)
#define R4(n) KX_CAT(r4_##n, KX_ISA)

INLINE void R2(1)(const KX_REAL *tw, const VD *x, VD *y) { (void)tw, y[0] = x[0]; }
INLINE void R3(1)(const KX_REAL *tw, const VD *x, VD *y) { (void)tw, y[0] = x[0]; }
INLINE void R4(1)(const KX_REAL *tw, const VD *x, VD *y) { y[0] = (tw[1] * x[0]) * (KX_REAL)0.5; }

#define KX_DCT_CODELETS(n, h)                                                                            \
  INLINE void R4(n)(const KX_REAL *tw, const VD *x, VD *y);                                              \
  INLINE void R2(n)(const KX_REAL *tw, const VD *x, VD *y) {                                             \
    VD u[h], w[h], e[h], o[h];                                                                          \
    _Pragma("GCC unroll 16") for (int j = 0; j < h; j++) u[j] = x[j] + x[n - 1 - j],                   \
                                                        w[j] = x[j] - x[n - 1 - j];                     \
    R2(h)(tw, u, e);                                                                                    \
    R4(h)(tw, w, o);                                                                                    \
    _Pragma("GCC unroll 16") for (int k = 0; k < h; k++) y[2 * k] = e[k], y[2 * k + 1] = o[k];        \
  }                                                                                                     \
  INLINE void R4(n)(const KX_REAL *tw, const VD *x, VD *y) {                                             \
    VD w[n];                                                                                            \
    _Pragma("GCC unroll 16") for (int j = 0; j < n; j++) w[j] = tw[n + j] * x[j];                      \
    R2(n)(tw, w, y);                                                                                    \
    y[0] = y[0] * (KX_REAL)0.5;                                                                                  \
    _Pragma("GCC unroll 16") for (int k = 1; k < n; k++) y[k] = y[k] - y[k - 1];                       \
  }                                                                                                     \
  INLINE void R3(n)(const KX_REAL *tw, const VD *x, VD *y) {                                             \
    VD ev[h], od[h], u[h], w[h];                                                                        \
    _Pragma("GCC unroll 16") for (int k = 0; k < h; k++) ev[k] = x[2 * k], od[k] = x[2 * k + 1];        \
    R3(h)(tw, ev, u);                                                                                   \
    R4(h)(tw, od, w);                                                                                   \
    _Pragma("GCC unroll 16") for (int j = 0; j < h; j++) y[j] = u[j] + w[j], y[n - 1 - j] = u[j] - w[j]; \
  }

KX_DCT_CODELETS(2, 1)
KX_DCT_CODELETS(4, 2)
KX_DCT_CODELETS(8, 4)
KX_DCT_CODELETS(16, 8)

/* One codelet over the batch, VW vectors at a time: input row j at
 * x + j xs, output row k at y + k ys (rows of NB, 64-byte aligned). */
#define KX_DCT_LEAF_LOOP(R, n)                                                                          \
  for (size_t v = 0; v < NB; v += VW) {                                                                 \
    VD a[n], b[n];                                                                                      \
    _Pragma("GCC unroll 16") for (int j = 0; j < n; j++) a[j] = *(const VD *)(x + j * xs + v);         \
    R(n)(tw, a, b);                                                                                     \
    _Pragma("GCC unroll 16") for (int k = 0; k < n; k++) * (VD *)(y + k * ys + v) = b[k];              \
  }

#define KX_DCT_LEAF(NAME, R)                                                                             \
  static void NAME(size_t n, const KX_REAL *tw, const KX_REAL *restrict x, size_t xs, KX_REAL *restrict y, \
                   size_t ys) {                                                                        \
    switch (n) {                                                                                        \
      case 1: KX_DCT_LEAF_LOOP(R, 1) break;                                                             \
      case 2: KX_DCT_LEAF_LOOP(R, 2) break;                                                             \
      case 4: KX_DCT_LEAF_LOOP(R, 4) break;                                                             \
      case 8: KX_DCT_LEAF_LOOP(R, 8) break;                                                             \
      default: KX_DCT_LEAF_LOOP(R, 16) break;                                                           \
    }                                                                                                   \
  }
KX_DCT_LEAF(LEAF2, R2)
KX_DCT_LEAF(LEAF3, R3)
KX_DCT_LEAF(LEAF4, R4)

/* ---------- the in-memory recursion above LEAF ---------- */

/* p = a + b, q = a - b on one row of the batch. */
INLINE void BFLY(const KX_REAL *a, const KX_REAL *b, KX_REAL *restrict p, KX_REAL *restrict q) {
  for (size_t v = 0; v < NB; v++) {
    p[v] = a[v] + b[v];
    q[v] = a[v] - b[v];
  }
}

static void S4(size_t n, const KX_REAL *tw, const KX_REAL *restrict x, size_t xs, KX_REAL *restrict y,
               size_t ys, KX_REAL *restrict tmp);

/* y_{k ys} = sum_j x_j cos(pi (2j+1) k / (2n)); x contiguous rows. */
static void S2(size_t n, const KX_REAL *tw, const KX_REAL *restrict x, KX_REAL *restrict y, size_t ys,
               KX_REAL *restrict tmp) {
  if (n <= LEAF) return LEAF2(n, tw, x, NB, y, ys);
  const size_t h = n / 2;
  KX_REAL *restrict u = tmp, *restrict w = tmp + h * NB;
  for (size_t j = 0; j < h; j++) BFLY(x + j * NB, x + (n - 1 - j) * NB, u + j * NB, w + j * NB);
  S2(h, tw, u, y, 2 * ys, tmp + n * NB);
  S4(h, tw, w, NB, y + ys, 2 * ys, tmp + n * NB);
}

/* y_{k ys} = sum_j x_{j xs} cos(pi (2j+1)(2k+1) / (4n)), through the
 * DCT-II of x_j 2 cos(pi (2j+1) / (4n)): consecutive DCT-IV outputs sum to
 * its outputs (2 cos a cos b = cos(a+b) + cos(a-b)), so a running
 * difference recovers them. */
static void S4(size_t n, const KX_REAL *tw, const KX_REAL *restrict x, size_t xs, KX_REAL *restrict y,
               size_t ys, KX_REAL *restrict tmp) {
  if (n <= LEAF) return LEAF4(n, tw, x, xs, y, ys);
  const KX_REAL *c = tw + n; /* 2 cos(pi (2j+1) / (4n)), j < n */
  KX_REAL *restrict w = tmp;
  for (size_t j = 0; j < n; j++) {
    const KX_REAL *a = x + j * xs;
    KX_REAL *wj = w + j * NB;
    for (size_t v = 0; v < NB; v++) wj[v] = c[j] * a[v];
  }
  S2(n, tw, w, y, ys, tmp + n * NB);
  for (size_t v = 0; v < NB; v++) y[v] *= (KX_REAL)0.5;
  for (size_t k = 1; k < n; k++) {
    const KX_REAL *p = y + (k - 1) * ys;
    KX_REAL *q = y + k * ys;
    for (size_t v = 0; v < NB; v++) q[v] = q[v] - p[v];
  }
}

/* The transpose of S2: y_j = sum_k x_{k xs} cos(pi (2j+1) k / (2n)),
 * y contiguous rows. */
static void S3(size_t n, const KX_REAL *tw, const KX_REAL *restrict x, size_t xs, KX_REAL *restrict y,
               KX_REAL *restrict tmp) {
  if (n <= LEAF) return LEAF3(n, tw, x, xs, y, NB);
  const size_t h = n / 2;
  KX_REAL *restrict u = tmp, *restrict w = tmp + h * NB;
  S3(h, tw, x, 2 * xs, u, tmp + n * NB);
  S4(h, tw, x + xs, 2 * xs, w, NB, tmp + n * NB);
  for (size_t j = 0; j < h; j++) BFLY(u + j * NB, w + j * NB, y + j * NB, y + (n - 1 - j) * NB);
}

/* DCT-I sums (FFTW's REDFT00: y_k = x_0 + (-1)^k x_{n-1} + 2 sum_{0<j<n-1}
 * x_j cos(pi j k / (n-1))) for even n through the fold T_{k,n-1-j} =
 * (-1)^k T_kj: the even outputs are an h x h product (h = n/2) with
 * x_j + x_{n-1-j}, the odd ones another with x_j - x_{n-1-j}; M holds the
 * two matrices (even rows, then odd rows, on the first h columns).  A
 * length-2^k DCT-I has no power-of-two fast transform (its FFT has length
 * 2(n-1)), so this is n^2 + n flops, half the plain product's, with
 * KB x QV vector accumulators per step over j. */
#define QV KX_QV
#define KB 4
static void KX_CAT(s1, KX_ISA)(size_t n, const KX_REAL *M, const KX_REAL *restrict x, KX_REAL *restrict y,
                               KX_REAL *restrict tmp) {
  const size_t h = n / 2;
  KX_REAL *restrict u = tmp, *restrict w = tmp + h * NB;
  for (size_t j = 0; j < h; j++) BFLY(x + j * NB, x + (n - 1 - j) * NB, u + j * NB, w + j * NB);
  for (size_t odd = 0; odd < 2; odd++) {
    const KX_REAL *Mh = M + odd * h * h, *in = odd ? w : u;
    for (size_t v = 0; v < NB; v += QV * VW) {
      size_t k = 0;
      for (; k + KB <= h; k += KB) {
        VD acc[KB][QV];
        _Pragma("GCC unroll 4") for (int a = 0; a < KB; a++)
          _Pragma("GCC unroll 4") for (int q = 0; q < QV; q++) acc[a][q] = (VD){0};
        for (size_t j = 0; j < h; j++) {
          VD xj[QV];
          _Pragma("GCC unroll 4") for (int q = 0; q < QV; q++) xj[q] = *(const VD *)(in + j * NB + v + q * VW);
          _Pragma("GCC unroll 4") for (int a = 0; a < KB; a++) {
            const KX_REAL c = Mh[(k + a) * h + j];
            _Pragma("GCC unroll 4") for (int q = 0; q < QV; q++) acc[a][q] = acc[a][q] + c * xj[q];
          }
        }
        _Pragma("GCC unroll 4") for (int a = 0; a < KB; a++)
          _Pragma("GCC unroll 4") for (int q = 0; q < QV; q++)
            *(VD *)(y + (2 * (k + a) + odd) * NB + v + q * VW) = acc[a][q];
      }
      for (; k < h; k++) {
        VD acc[QV];
        _Pragma("GCC unroll 4") for (int q = 0; q < QV; q++) acc[q] = (VD){0};
        for (size_t j = 0; j < h; j++) {
          const KX_REAL c = Mh[k * h + j];
          _Pragma("GCC unroll 4") for (int q = 0; q < QV; q++)
            acc[q] = acc[q] + c * *(const VD *)(in + j * NB + v + q * VW);
        }
        _Pragma("GCC unroll 4") for (int q = 0; q < QV; q++) *(VD *)(y + (2 * k + odd) * NB + v + q * VW) = acc[q];
      }
    }
  }
}
#undef QV
#undef KB

static void KX_CAT(run, KX_ISA)(int type, size_t n, const KX_REAL *tw, const KX_REAL *x, KX_REAL *y,
                                KX_REAL *tmp) {
  switch (type) {
    case 1: KX_CAT(s1, KX_ISA)(n, tw, x, y, tmp); break;
    case 2: S2(n, tw, x, y, NB, tmp); break;
    case 3: S3(n, tw, x, NB, y, tmp); break;
    default: S4(n, tw, x, NB, y, NB, tmp); break;
  }
}

/* ---------- between callers' rows and the interleaved layout ---------- */

/* r[0..VW) := its transpose, by swapping the off-diagonal b x b blocks of
 * every 2b x 2b block for b = VW/2, ..., 1. */
INLINE void TRANSPOSE(VD *r) {
#if KX_VW == 16
  typedef KX_MASK_INT vm __attribute__((vector_size(16 * sizeof(KX_MASK_INT))));
  static const vm lo[4] = {{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23}, {0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27}, {0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29}, {0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30}};
  static const vm hi[4] = {{8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31}, {4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31}, {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31}, {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}};
#elif KX_VW == 8
  typedef KX_MASK_INT vm __attribute__((vector_size(8 * sizeof(KX_MASK_INT))));
  static const vm lo[3] = {{0, 1, 2, 3, 8, 9, 10, 11}, {0, 1, 8, 9, 4, 5, 12, 13}, {0, 8, 2, 10, 4, 12, 6, 14}};
  static const vm hi[3] = {{4, 5, 6, 7, 12, 13, 14, 15}, {2, 3, 10, 11, 6, 7, 14, 15}, {1, 9, 3, 11, 5, 13, 7, 15}};
#elif KX_VW == 4
  typedef KX_MASK_INT vm __attribute__((vector_size(4 * sizeof(KX_MASK_INT))));
  static const vm lo[2] = {{0, 1, 4, 5}, {0, 4, 2, 6}};
  static const vm hi[2] = {{2, 3, 6, 7}, {1, 5, 3, 7}};
#elif KX_VW == 2
  typedef KX_MASK_INT vm __attribute__((vector_size(2 * sizeof(KX_MASK_INT))));
  static const vm lo[1] = {{0, 2}};
  static const vm hi[1] = {{1, 3}};
#endif
  int s = 0;
  _Pragma("GCC unroll 4") for (int b = VW / 2; b >= 1; b /= 2, s++)
    _Pragma("GCC unroll 16") for (int i = 0; i < VW; i++) if (!(i & b)) {
      const VD p = __builtin_shuffle(r[i], r[i + b], lo[s]), q = __builtin_shuffle(r[i], r[i + b], hi[s]);
      r[i] = p, r[i + b] = q;
    }
}

/* in[j NB + r] = scale_j (sign_j x[r d + j]) (sign NULL: scale_j x[r d + j])
 * for the NB rows of x; d a multiple of VW. */
static void KX_CAT(gather, KX_ISA)(size_t d, const KX_REAL *scale, const KX_REAL *sign, const KX_REAL *x,
                                   KX_REAL *restrict in) {
  for (size_t r = 0; r < NB; r += VW)
    for (size_t j = 0; j < d; j += VW) {
      VD t[VW];
      _Pragma("GCC unroll 16") for (int a = 0; a < VW; a++) t[a] = *(const VDU *)(x + (r + a) * d + j);
      TRANSPOSE(t);
      _Pragma("GCC unroll 16") for (int b = 0; b < VW; b++) {
        const VD v = sign ? sign[j + b] * t[b] : t[b];
        *(VD *)(in + (j + b) * NB + r) = scale[j + b] * v;
      }
    }
}

/* z[r ldz + i] = t_i (scale_i y[i NB + r]) (+ (bias_i - c_r) when bias is
 * given) for the NB rows and rows_out values i (a multiple of VW). */
static void KX_CAT(scatter, KX_ISA)(size_t rows_out, const KX_REAL *scale, const KX_REAL *t, const KX_REAL *bias,
                                    const KX_REAL *c, const KX_REAL *y, KX_REAL *z, size_t ldz) {
  for (size_t r = 0; r < NB; r += VW)
    for (size_t i = 0; i < rows_out; i += VW) {
      VD v[VW];
      _Pragma("GCC unroll 16") for (int a = 0; a < VW; a++) v[a] = t[i + a] * (scale[i + a] * *(const VD *)(y + (i + a) * NB + r));
      TRANSPOSE(v);
      if (bias) {
        const VD bv = *(const VDU *)(bias + i);
        _Pragma("GCC unroll 16") for (int b = 0; b < VW; b++) v[b] = v[b] + (bv - c[r + b]);
      }
      _Pragma("GCC unroll 16") for (int b = 0; b < VW; b++) *(VDU *)(z + (r + b) * ldz + i) = v[b];
    }
}

#undef VD
#undef VDU
#undef S2
#undef S3
#undef S4
#undef BFLY
#undef LEAF2
#undef LEAF3
#undef LEAF4
#undef TRANSPOSE
#undef NB
#undef VW
#undef INLINE
#undef LEAF
#undef R2
#undef R3
#undef R4
#undef KX_DCT_CODELETS
#undef KX_DCT_LEAF_LOOP
#undef KX_DCT_LEAF
#undef KX_CAT
#undef KX_CAT2
/* the includer's parameters, set again before the next include */
#undef KX_ISA
#undef KX_VW
#undef KX_QV
#undef KX_REAL
#undef KX_MASK_INT
