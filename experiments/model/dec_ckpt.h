/* Checkpoints of the decoder in HDF5 (layout in docs/file-formats.md,
 * "Decoder checkpoint"):
 *   /                   attrs format = "kapprox-decoder", format_version = 1
 *                       (2 for a layer or sliding-window hybrid, which
 *                       older readers refuse)
 *   /config             attrs vocab, ctx, layers, heads, width, rotary_dims
 *                       (uint64), rope_base, ln_eps (double), attention
 *                       (string), parallel_residual = 1, tied_embeddings = 0,
 *                       and for a layer hybrid softmax_layers (uint64 mask,
 *                       bit l = layer l keeps softmax; absent = 0), and for a
 *                       sliding window window (uint64, only when > 0, the
 *                       hybrid, dec_window.h; absent = 0)
 *   /vocab              uint32 (V): Unicode code point of each token id
 *   /param/<name>       float32, (rows, cols) or (rows,), names of the
 *                       parameter table (embed, layer<l>/ln1_w, ...)
 *   /optim              attrs of kx_dec_train_state (step, hyper-parameters,
 *                       seed, data hash, AdamW t)
 *   /optim/m/<name>, /optim/v/<name>   AdamW moments, as /param
 * Built in memory and published atomically (core/kx_h5.h, core/kx_atomic.h),
 * so a crash or a full disk never leaves a half-written checkpoint under the
 * final name.  Loading runs libhdf5 in a child process (core/kx_sandbox.h)
 * and refuses non-finite parameters or moments, negative second moments,
 * code points that are not Unicode characters, declared sizes the file
 * does not hold, and parameters with which the model computes inf or NaN
 * on a probe input. */
#ifndef KX_DEC_CKPT_H
#define KX_DEC_CKPT_H

#include <stdint.h>

#include "experiments/model/dec_adamw.h"
#include "experiments/model/dec_data.h"
#include "experiments/model/dec_model.h"

/* Training state needed to continue a run exactly. */
typedef struct {
  uint64_t step;     /* steps completed */
  uint64_t steps;    /* planned total (the schedule depends on it) */
  uint64_t warmup, batch, seed;
  double lr, lr_min, weight_decay, beta1, beta2, eps, clip;
  uint64_t data_hash; /* FNV-1a of the training text file */
  double elapsed;     /* seconds of training so far (for logs) */
} kx_dec_train_state;

/* opt and st may be NULL (a weights-only checkpoint has no /optim). */
int kx_dec_ckpt_save(const char *path, const kx_decoder *m, const kx_dec_vocab *vocab, const kx_adamw *opt,
                     const kx_dec_train_state *st);

/* Creates *m from the file's configuration and loads the parameters and
 * vocabulary; with opt/st non-NULL also the optimizer (error if the file
 * has none).  Missing, truncated, foreign or inconsistent files fail with a
 * message naming the file and the problem. */
int kx_dec_ckpt_load(const char *path, kx_decoder *m, kx_dec_vocab *vocab, kx_adamw *opt,
                     kx_dec_train_state *st);

/* The load's last check on its own: the model runs once on a probe input
 * (every token of the vocabulary in order) and every activation and logit
 * must be finite; KX_ENUM with a message otherwise.  kx_dec_ckpt_load
 * refuses such a file as damaged (KX_EINVAL). */
int kx_dec_ckpt_probe(kx_decoder *m);
/* The load without that check, for a file this process has just written
 * (weights only), whose caller runs kx_dec_ckpt_probe itself: a study in
 * which a model that computes non-finite values is a result, diverged,
 * not a damaged file. */
int kx_dec_ckpt_load_unprobed(const char *path, kx_decoder *m, kx_dec_vocab *vocab);

#endif
