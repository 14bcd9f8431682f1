/* Attention transfer (stage 1 of Hedgehog / LoLCATs conversion): the
 * softmax teacher is frozen and, block by block, the student's attention
 * is run on the teacher's own LayerNorm output and trained to reproduce the
 * teacher's attention, updating only the kind's feature-map tensors
 * (kx_attn_kind.transfer_tensors), also those fixed during fine-tuning
 * (frozen in the table: a random projection that only transfer adapts).
 * Blocks are independent: each sees the teacher's input, never the
 * student's earlier blocks.  A layer hybrid's softmax blocks are the
 * teacher's own and take no part (the loss is the mean over the converted
 * blocks).
 *
 * Target: with the kind's attn_weights_backward hook, the cross-entropy of
 * the student's rows against the teacher's (reported as the mean row KL,
 * the same number up to the teacher's constant entropy):
 *   L = mean_{l,b,h,i} sum_{j<=i} a_ij log(a_ij / â_ij)  (Hedgehog);
 * without it, the mean squared difference of the attention branch outputs
 * (LoLCATs), which reaches only the listed tensors the table does not
 * freeze.  A sliding-window hybrid's rows are the hybrid's (dec_window.h),
 * and it also trains its weight win_beta.  AdamW (no weight decay), warm-up
 * then cosine, on batches of the training text drawn from the seed.  Which
 * kinds have what to train, and why: docs/conversion.md#attention-transfer. */
#ifndef KX_DEC_TRANSFER_H
#define KX_DEC_TRANSFER_H

#include <stddef.h>
#include <stdint.h>

#include "experiments/model/dec_data.h"
#include "experiments/model/dec_model.h"

typedef struct {
  uint64_t steps, batch, seed;
  double lr; /* peak; warm-up over steps/10, cosine to lr/10 */
  int match_outputs; /* 1: the output MSE even for a kind with row gradients
                        (to compare the two targets); 0: the kind's target */
  const char *dump;  /* test hook (NULL: none): after the steps, the loss
                        and unclipped gradient of the next batch, written
                        by kx_dec_dump_grads for tests/torch_reference.py */
} kx_transfer_opts;

typedef enum { KX_TRANSFER_KL, KX_TRANSFER_MSE } kx_transfer_target;

/* 1 if the kind has a feature map that attention transfer can train. */
int kx_dec_transfer_supported(const kx_attn_kind *kind);

/* Which target the student's kind gets; error if it has no transfer tensors. */
int kx_dec_transfer_target(const kx_attn_kind *kind, kx_transfer_target *target);

/* Called after every step with the step count and the mean loss. */
typedef void (*kx_transfer_callback)(uint64_t step, uint64_t steps, double loss, void *user);

/* Trains student's map tensors in place.  teacher: a softmax model of the
 * same sizes. */
int kx_dec_transfer(kx_decoder *teacher, kx_decoder *student, const kx_dec_data *data, const kx_transfer_opts *o,
                    kx_transfer_callback cb, void *user);

#endif
