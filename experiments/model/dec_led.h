/* Runs led by rank 0 of a data-parallel world (core/kx_dp.h).
 *
 * A command that does more than train (kapprox reproduce: conversions,
 * evaluations, tables, claims on shared folders) runs on rank 0 alone,
 * and the heavy parts inside it are data parallel over the whole world:
 * kx_dec_train_led runs lead(arg) on rank 0 while the other ranks serve.
 * Each training run (kx_dec_train) and each attention transfer
 * (kx_dec_transfer) on rank 0 first sends what it needs to the followers,
 * which meanwhile wait (asleep, kx_dp_bcast_idle) for the next job, do it
 * with rank 0 (without a callback; rank 0 alone writes), and wait again:
 *   - a training run: its options (paths, sizes, a vocabulary); the files
 *     it reads (text, checkpoints to resume or start from) are read by
 *     every rank, so they must be visible to every host, as the output
 *     folder of kapprox train is;
 *   - an attention transfer: its options, both models (configuration and
 *     parameters) and the training stream, sent whole, so nothing of it
 *     need be on a shared disk; every rank ends with the same student.
 * When lead(arg) returns, the followers are released and every rank
 * returns its value.  A job that fails fails on every rank (kx_dp_agree)
 * and rank 0 decides what follows.  With one process, lead(arg) alone. */
#ifndef KX_DEC_LED_H
#define KX_DEC_LED_H

#include "experiments/model/dec_data.h"
#include "experiments/model/dec_model.h"
#include "experiments/model/dec_train.h"
#include "experiments/model/dec_transfer.h"

int kx_dec_train_led(int (*lead)(void *arg), void *arg);

/* Called first by kx_dec_train and kx_dec_transfer (the latter after refusing
 * the gradient dump, which a follower never sees): on the leading rank 0,
 * sends the job to the followers (0 or an error, on rank 0 only: nothing
 * was sent); elsewhere, nothing. */
int kx_dec_lead_train(const kx_dec_train_opts *o);
int kx_dec_lead_transfer(const kx_decoder *teacher, const kx_decoder *student, const kx_dec_data *data,
                         const kx_transfer_opts *o);

#endif
