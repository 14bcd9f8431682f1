/* The training log (`kapprox train --log FILE`): a CSV row per step,
 *   step,lr,train_loss,val_loss,grad_norm,tokens_per_s,elapsed_s
 * appended and flushed as soon as the step ends, so killing the process
 * loses at most the row being written.  A resumed run first cuts the log
 * back to the checkpoint's step (the rows after it are computed again,
 * bit-identically) and keeps appending: its log equals an uninterrupted
 * run's except in the two timing columns.  A device or FIFO receives the
 * rows as a stream. */
#ifndef KX_DEC_TRAIN_LOG_H
#define KX_DEC_TRAIN_LOG_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
  FILE *fp;
  char *path;
} kx_train_log;

/* Fresh run (resuming 0): replaces the file by the header line.  Resumed
 * run: keeps the header and the complete rows with step <= resume_step
 * (creating the file if missing) and refuses a file that is not a training
 * log.  Both rewrites are atomic, so a kill leaves the old or the new log. */
int kx_train_log_open(kx_train_log *log, const char *path, int resuming, uint64_t resume_step);

/* val_loss NaN: not evaluated at this step (empty field). */
int kx_train_log_row(kx_train_log *log, uint64_t step, double lr, double train_loss, double val_loss,
                     double grad_norm, double tokens_per_s, double elapsed_s);

int kx_train_log_close(kx_train_log *log);

#endif
