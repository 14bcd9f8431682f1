/* The gradient of one batch over the data-parallel world: a tree of leaves
 * that does not depend on the number of processes (dec_dp_tree.h). */
#include "experiments/model/dec_dp_tree.h"

#include <stdlib.h>

#include "core/kx_dp.h"
#include "core/kx_error.h"
#include "core/kx_cli.h"

int kx_dp_tree_setup(kx_dp_tree *t, size_t B, size_t P) {
  size_t N = (size_t)kx_dp_size(), r = (size_t)kx_dp_rank();
  *t = (kx_dp_tree){0};
  t->leaves = 1;
  while (t->leaves < KX_DP_LEAVES_MAX && B % (2 * t->leaves) == 0) t->leaves *= 2;
  if (t->leaves % N) return KX_EINVAL;
  t->mine = t->leaves / N;
  t->first = r * t->mine;
  t->P = P;
  size_t depth = 1;
  while (((size_t)1 << (depth - 1)) < t->mine) depth++;
  t->stack = kx_malloc(depth * P * sizeof(float));
  t->count = kx_calloc(depth, sizeof(size_t));
  t->gathered = kx_malloc(N * P * sizeof(float));
  t->loss = kx_malloc((t->mine + 1) * sizeof(double));
  t->losses = kx_malloc(N * (t->mine + 1) * sizeof(double));
  return t->stack && t->count && t->gathered && t->loss && t->losses ? 0 : KX_ENOMEM;
}

void kx_dp_tree_free(kx_dp_tree *t) {
  free(t->stack), free(t->count), free(t->gathered), free(t->loss), free(t->losses);
  t->stack = t->gathered = NULL, t->count = NULL, t->loss = t->losses = NULL;
}

/* Pairwise sums in place: a[0] = the balanced binary tree's sum of n
 * vectors of P floats (n a power of two), the tree every N shares. */
static void tree_sum_f(float *a, size_t n, size_t P) {
  for (size_t w = 1; w < n; w *= 2)
    for (size_t i = 0; i + w < n; i += 2 * w) {
      float *x = a + i * P;
      const float *y = a + (i + w) * P;
#pragma omp parallel for schedule(static)
      for (size_t k = 0; k < P; k++) x[k] += y[k];
    }
}

float *kx_dp_tree_leaf(kx_dp_tree *t) { return t->stack + t->depth * t->P; }

void kx_dp_tree_push(kx_dp_tree *t, double loss) {
  t->loss[t->pushed++] = loss;
  /* merge equal subtrees: the tree of the leaves in order */
  t->count[t->depth++] = 1;
  while (t->depth >= 2 && t->count[t->depth - 1] == t->count[t->depth - 2]) {
    tree_sum_f(t->stack + (t->depth - 2) * t->P, 2, t->P);
    t->count[t->depth - 2] *= 2;
    t->depth--;
  }
}

int kx_dp_tree_reduce(kx_dp_tree *t, int rc, int flag, float *grads, double *loss, int *any_flag) {
  size_t P = t->P, N = (size_t)kx_dp_size();
  t->loss[t->mine] = flag;
  t->depth = t->pushed = 0;
  double t0 = kx_now_seconds();
  rc = kx_dp_agree(rc); /* returns when every rank has its sum: the wait for the slowest */
  t->wait_s += kx_now_seconds() - t0;
  if (rc) return rc;
  if ((rc = kx_dp_allgather_f(t->stack, P, t->gathered))) return rc;
  if ((rc = kx_dp_allgather_d(t->loss, t->mine + 1, t->losses))) return rc;
  /* the top of the tree; its last sum and the 1/L scale in one pass */
  tree_sum_f(t->gathered, N / 2, P);
  if (N > 1) tree_sum_f(t->gathered + N / 2 * P, N / 2, P);
  const float scale = (float)(1.0 / (double)t->leaves); /* a power of two: exact */
  const float *lo = t->gathered, *hi = N > 1 ? t->gathered + N / 2 * P : NULL;
  if (hi) {
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < P; k++) grads[k] = (lo[k] + hi[k]) * scale;
  } else {
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < P; k++) grads[k] = lo[k] * scale;
  }
  /* the losses in leaf order, then the same tree */
  double l[KX_DP_LEAVES_MAX];
  *any_flag = 0;
  for (size_t r = 0; r < N; r++) {
    for (size_t k = 0; k < t->mine; k++) l[r * t->mine + k] = t->losses[r * (t->mine + 1) + k];
    *any_flag |= t->losses[r * (t->mine + 1) + t->mine] != 0;
  }
  for (size_t w = 1; w < t->leaves; w *= 2)
    for (size_t i = 0; i + w < t->leaves; i += 2 * w) l[i] += l[i + w];
  *loss = l[0] / (double)t->leaves;
  t->reduce_s += kx_now_seconds() - t0;
  return 0;
}
