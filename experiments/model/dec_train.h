/* Training loop of the decoder (library side of `kapprox train`): data,
 * model, AdamW, schedule, clipping, evaluation, checkpoints and exact
 * resumption.  It never prints: progress goes to a callback. */
#ifndef KX_DEC_TRAIN_H
#define KX_DEC_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "experiments/model/dec_ckpt.h"
#include "experiments/model/dec_config.h"
#include "experiments/model/dec_data.h"
#include "experiments/model/dec_model.h"

/* Options.  Sizes left 0 and doubles left NaN mean "not given": a fresh
 * run uses the defaults (kx_dec_train_defaults documents them), a resumed
 * run takes the checkpoint's values and refuses different given ones. */
typedef struct {
  size_t ctx, layers, heads, width, rotary_dims;
  char attn_kind[KX_DEC_NAME_MAX]; /* "" = not given */
  size_t window;        /* sliding-window hybrid (0 = not given) */
  int llama;            /* 1: the llama architecture (dec_config.h); 0 not given */
  size_t kv_heads, ffn_hidden; /* llama's sizes (0 = not given: heads, 4C) */
  int tied;             /* llama: classifier shares the embedding */
  const char *dijiang_form; /* --dijiang-form list applied to a DiJiang kind's
                               preset (dec_dijiang_form.h); NULL = not given */
  const char *text;     /* NULL: KJV corpus in the cache directory */
  const char *out;      /* checkpoint to write (NULL: none) */
  const char *log;      /* CSV row per step (dec_train_log.h; NULL: none) */
  const char *resume;   /* checkpoint to continue from (NULL: fresh) */
  const char *init_from; /* fresh run starting from this checkpoint's parameters
                            and configuration (fine-tuning a converted model);
                            NULL: random initialisation */
  const kx_dec_vocab *vocab; /* a fresh random model's vocabulary (token ids: the
                            text is a token file); NULL: the text's characters */
  const char *dump_grads; /* test hook: write batch, loss and gradients here */
  uint64_t steps, warmup, batch, seed;
  int seed_given;
  double lr, lr_min, weight_decay, beta1, beta2, eps, clip;
  uint64_t stop_after;   /* 0: run to `steps`; else stop after this step */
  double max_minutes;    /* 0: no limit; stops early (checkpoint still written) */
  uint64_t eval_every;   /* validation loss every K steps (0: default) */
  uint64_t eval_batches; /* batches in each validation estimate */
  uint64_t save_every;   /* also write the checkpoint every K steps (0: end only) */
  int final_eval;        /* loss on the whole validation text at the end */
} kx_dec_train_opts;

/* Steps of a run that does not give them. */
#define KX_DEC_DEFAULT_STEPS 2500

/* Marks every option "not given". */
void kx_dec_train_opts_init(kx_dec_train_opts *o);

/* What the callback sees; `kind` says which event. */
typedef enum {
  KX_TRAIN_START,    /* data loaded: corpus, sizes, baselines */
  KX_TRAIN_STEP,     /* after each step */
  KX_TRAIN_FINAL     /* after the final validation */
} kx_train_event;

typedef struct {
  kx_train_event kind;
  /* START */
  const char *text_path;
  int corpus_generated;
  size_t vocab, n_train, n_val, n_params;
  const char *unit; /* what a prediction is: "char", or "token" on token data (kx_dec_unit) */
  double unigram, bigram; /* nats per unit on validation */
  const kx_dec_config *cfg;
  uint64_t batch, steps, start_step;
  /* STEP */
  uint64_t step; /* steps completed */
  double lr, train_loss, grad_norm;
  double val_loss; /* NaN unless evaluated at this step */
  double tokens_per_s, elapsed, eta;
  /* FINAL */
  double final_val_loss; /* whole validation text; NaN if skipped */
  int stopped_early;
  int dp_size;         /* processes of the data-parallel world (1: alone) */
  double dp_reduce_s;  /* seconds this run spent combining their gradients */
  double dp_wait_s;    /* of which waiting for the slowest rank to finish its share */
  /* STEP and FINAL: seconds of this run so far in the optimizer steps
   * (clipping and AdamW) and in the evaluations every eval_every steps */
  double optimizer_s, eval_s;
  double run_tokens_per_s; /* training tokens of this run / the wall time of its steps and evaluations */
} kx_train_report;

typedef void (*kx_train_callback)(const kx_train_report *r, void *user);

/* Data parallelism (core/kx_dp.h): started by mpirun, every process runs
 * kx_dec_train with the same options.  Each step's gradient is the tree of
 * leaves of dec_dp_tree.h (the batch cut into equal parts, each rank
 * computing its share, the same sum for every number of processes), and
 * every rank takes the same AdamW step, so 1, 2, 4 ... processes compute
 * bit-identical parameters; a run without mpirun sums the whole batch in
 * one pass and differs from them in the last bits.  Rank 0 alone claims
 * and writes the checkpoint and the log; the ranks check that they were
 * given the same options and files. */
/* Runs training; returns 0 or a kx_status with a message.  A step whose
 * loss or gradient is not finite stops training with KX_ENUM before the
 * update; the checkpoint on disk is then the last one written.  The
 * checkpoint `out` is claimed for the whole run (core/kx_lock.h): a run
 * whose `out` another process is writing is refused with KX_EBUSY. */
int kx_dec_train(const kx_dec_train_opts *o, kx_train_callback cb, void *user);

/* The state at step 0 of a fresh run of `o` on a text whose hash is
 * data_hash: its options with every default filled in, as kx_dec_train
 * records them in the checkpoint. */
void kx_dec_train_state_init(kx_dec_train_state *st, const kx_dec_train_opts *o, uint64_t data_hash);
/* 1 if a and b record the same training: every option and the text, all
 * but the step reached and the time taken. */
int kx_dec_train_same_run(const kx_dec_train_state *a, const kx_dec_train_state *b);


/* Test hook of the float64 references (tests/torch_reference.py): writes
 * /tokens, /targets (B, T) int32, the attribute loss and /grad/<name> (the
 * model's gradient buffer, as the checkpoint's /param) to `path`,
 * atomically.  Used by training (the dump_grads option) and attention
 * transfer (kx_transfer_opts.dump). */
int kx_dec_dump_grads(const char *path, kx_decoder *m, const int *x, const int *y, size_t B, size_t T,
                      double loss);

#endif
