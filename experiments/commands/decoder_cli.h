/* What the decoder commands share: loading a checkpoint, and kapprox
 * train's options and progress output for the commands that train (train,
 * finetune), each of which parses them in its own getopt loop (its own
 * options take codes from KX_TRAIN_O_END on) and runs kx_dec_train through
 * kx_train_cli_run. */
#ifndef KX_DECODER_CLI_H
#define KX_DECODER_CLI_H

#include "experiments/model/dec_data.h"
#include "experiments/model/dec_model.h"
#include "experiments/model/dec_train.h"

/* The decoder's threads set up, then the checkpoint at `path` loaded; 0, or
 * the exit status 1 after the message. */
int kx_cli_load_decoder(const char *cmd, const char *path, kx_decoder *m, kx_dec_vocab *v);

enum {
  KX_TRAIN_O_TEXT = 256, KX_TRAIN_O_OUT, KX_TRAIN_O_LOG, KX_TRAIN_O_RESUME, KX_TRAIN_O_LAYERS, KX_TRAIN_O_HEADS,
  KX_TRAIN_O_WIDTH, KX_TRAIN_O_CTX, KX_TRAIN_O_ROTARY, KX_TRAIN_O_ATTN, KX_TRAIN_O_STEPS, KX_TRAIN_O_BATCH,
  KX_TRAIN_O_LR, KX_TRAIN_O_LRMIN, KX_TRAIN_O_WARMUP, KX_TRAIN_O_WD, KX_TRAIN_O_B1, KX_TRAIN_O_B2, KX_TRAIN_O_CLIP,
  KX_TRAIN_O_SEED, KX_TRAIN_O_MAXMIN, KX_TRAIN_O_STOP, KX_TRAIN_O_EVERY, KX_TRAIN_O_EVALB, KX_TRAIN_O_SAVE,
  KX_TRAIN_O_NOFINAL, KX_TRAIN_O_QUIET, KX_TRAIN_O_DUMP, KX_TRAIN_O_HELP, KX_TRAIN_O_INIT_FROM, KX_TRAIN_O_WINDOW,
  KX_TRAIN_O_DJFORM, KX_TRAIN_O_ARCH, KX_TRAIN_O_KVHEADS, KX_TRAIN_O_FFN, KX_TRAIN_O_TIED,
  KX_TRAIN_O_END
};

/* struct option entries of train's options (--help = KX_TRAIN_O_HELP). */
#define KX_TRAIN_LONG_OPTIONS                                                                                        \
  {"text", 1, 0, KX_TRAIN_O_TEXT}, {"out", 1, 0, KX_TRAIN_O_OUT}, {"log", 1, 0, KX_TRAIN_O_LOG},                    \
      {"resume", 1, 0, KX_TRAIN_O_RESUME}, {"layers", 1, 0, KX_TRAIN_O_LAYERS}, {"heads", 1, 0, KX_TRAIN_O_HEADS}, \
      {"width", 1, 0, KX_TRAIN_O_WIDTH}, {"ctx", 1, 0, KX_TRAIN_O_CTX}, {"rotary", 1, 0, KX_TRAIN_O_ROTARY},      \
      {"attention", 1, 0, KX_TRAIN_O_ATTN}, {"steps", 1, 0, KX_TRAIN_O_STEPS}, {"batch", 1, 0, KX_TRAIN_O_BATCH}, \
      {"lr", 1, 0, KX_TRAIN_O_LR}, {"lr-min", 1, 0, KX_TRAIN_O_LRMIN}, {"warmup", 1, 0, KX_TRAIN_O_WARMUP},       \
      {"weight-decay", 1, 0, KX_TRAIN_O_WD}, {"beta1", 1, 0, KX_TRAIN_O_B1}, {"beta2", 1, 0, KX_TRAIN_O_B2},       \
      {"clip", 1, 0, KX_TRAIN_O_CLIP}, {"seed", 1, 0, KX_TRAIN_O_SEED}, {"max-minutes", 1, 0, KX_TRAIN_O_MAXMIN},  \
      {"stop-after", 1, 0, KX_TRAIN_O_STOP}, {"eval-every", 1, 0, KX_TRAIN_O_EVERY},                               \
      {"eval-batches", 1, 0, KX_TRAIN_O_EVALB}, {"save-every", 1, 0, KX_TRAIN_O_SAVE},                             \
      {"no-final-eval", 0, 0, KX_TRAIN_O_NOFINAL}, {"quiet", 0, 0, KX_TRAIN_O_QUIET},                              \
      {"dump-grads", 1, 0, KX_TRAIN_O_DUMP}, {"help", 0, 0, KX_TRAIN_O_HELP}, {"init-from", 1, 0, KX_TRAIN_O_INIT_FROM}, \
      {"window", 1, 0, KX_TRAIN_O_WINDOW}, {"dijiang-form", 1, 0, KX_TRAIN_O_DJFORM},                          \
      {"arch", 1, 0, KX_TRAIN_O_ARCH}, {"kv-heads", 1, 0, KX_TRAIN_O_KVHEADS}, {"ffn-hidden", 1, 0, KX_TRAIN_O_FFN}, \
      {"tied", 0, 0, KX_TRAIN_O_TIED}

typedef struct {
  kx_dec_train_opts o;
  int quiet;
  int steps_given, lr_given;
} kx_train_cli;

/* Every option "not given", --out decoder.h5; resets getopt (optind = 1,
 * opterr = 0) for the loop. */
void kx_train_cli_init(kx_train_cli *t);

/* getopt_long's code c (with ":h" as short options and opterr = 0): one of
 * train's options (but --help) is taken: returns 1 with *rc = 0, or the
 * exit status 2 after a message ("see kapprox CMD --help").  Anything else
 * is left to the command (returns 0). */
int kx_train_cli_option(const char *cmd, int c, const char *arg, kx_train_cli *t, int *rc);

/* Trains with train's progress output (stdout: data, model, baselines and
 * the final loss; stderr: the progress unless quiet); the exit status (2
 * for a --window or a --dijiang-form that a fresh model of the given kind
 * and context cannot take, before anything is read or written). */
int kx_train_cli_run(const char *cmd, const kx_train_cli *t);

#endif
