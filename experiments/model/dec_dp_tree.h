/* The gradient of one batch over the data-parallel world (core/kx_dp.h),
 * the same bits for every number of processes.
 *
 * The batch of B sequences is cut into L leaves (L the largest power of two
 * dividing B, at most KX_DP_LEAVES_MAX) of B/L sequences.  Rank r of N
 * computes the gradients of leaves [rL/N, (r+1)L/N) one by one and sums
 * them as a balanced binary tree while they come; the ranks exchange their
 * sums (MPI_Allgather) and every rank finishes the same tree, so the sum,
 * and everything computed from it, does not depend on N (1, 2, 4 ... L
 * processes, N a power of two dividing L).  A process alone without mpirun
 * sums the whole batch in one pass instead: that differs in the last bits.
 *
 * Use (every rank alike):
 *   kx_dp_tree_setup(&t, B, P);
 *   for each of this rank's t.mine leaves k (sequences (t.first + k) * B/L ..):
 *     write the leaf's gradient (P floats, whole) into kx_dp_tree_leaf(&t),
 *     then kx_dp_tree_push(&t, its loss);
 *   kx_dp_tree_reduce(&t, rc, flag, grads, &loss, &any_flag);
 * grads = the mean of the leaves' gradients, loss the mean of their losses. */
#ifndef KX_DEC_DP_TREE_H
#define KX_DEC_DP_TREE_H

#include <stddef.h>

#define KX_DP_LEAVES_MAX 64

typedef struct {
  size_t leaves, mine, first, P; /* leaves of the batch; this rank's count and first; floats a gradient */
  float *stack;        /* partial sums of the tree, (log2(mine) + 1) x P */
  size_t *count;       /* leaves in each stack entry */
  size_t depth, pushed;
  float *gathered;     /* every rank's sum, N x P */
  double *loss, *losses; /* this rank's leaves' losses + its flag; every rank's */
  double reduce_s, wait_s; /* combining gradients; the part of it spent waiting for the other ranks */
} kx_dp_tree;

/* Leaves of a batch of B sequences for this world, gradients of P floats.
 * KX_EINVAL without a message when the number of processes does not divide
 * the leaves (the caller says which batch and what to change: t->leaves is
 * set); KX_ENOMEM.  Not agreed between ranks: every rank gets the same
 * answer from the same B and P, but an allocation can fail on one only,
 * so follow it with kx_dp_agree. */
int kx_dp_tree_setup(kx_dp_tree *t, size_t B, size_t P);
void kx_dp_tree_free(kx_dp_tree *t);

/* Where this rank's next leaf's gradient goes (P floats, written whole). */
float *kx_dp_tree_leaf(kx_dp_tree *t);
/* The leaf written, with its loss: merged into the tree. */
void kx_dp_tree_push(kx_dp_tree *t, double loss);

/* After this rank's leaves (rc: its status; flag: anything nonzero to
 * report, e.g. a blind LayerNorm): every rank's status agreed, then on
 * success grads (P floats) = the mean gradient, *loss = the mean loss and
 * *any_flag = 1 if some rank's flag was nonzero.  Resets the tree for the
 * next batch. */
int kx_dp_tree_reduce(kx_dp_tree *t, int rc, int flag, float *grads, double *loss, int *any_flag);

#endif
