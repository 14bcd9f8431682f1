/* kapprox sample: continue a prompt with a trained decoder. */
#include <getopt.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "core/kx_atomic.h"
#include "core/kx_h5.h"
#include "core/kx_seed.h"
#include "experiments/commands/commands.h"
#include "experiments/commands/decoder_cli.h"
#include "experiments/model/dec_ckpt.h"
#include "experiments/model/dec_infer.h"
#include "experiments/model/dec_layers.h"
#include "experiments/model/dec_sample.h"
#include "experiments/model/dec_tokenizer.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: kapprox sample [--checkpoint FILE] [options]\n\n"
          "Continues a prompt with a decoder trained by `kapprox train` and prints the\n"
          "prompt followed by the generated text.  The prompt is prefilled with the\n"
          "parallel form, then each token is one recurrent step: a KV cache for softmax,\n"
          "a fixed-size state per head for the linear kinds.  Kinds whose weights depend\n"
          "on the absolute position (cosformer, linformer) stop at the training context\n"
          "(prompt + length <= ctx); a length whose state would not fit in memory is\n"
          "refused up front.\n\n"
          "  --checkpoint FILE    checkpoint (default decoder.h5)\n"
          "  --prompt TEXT        text to continue (default: a newline, i.e. a new verse);\n"
          "                       every character must be in the model's vocabulary.  A\n"
          "                       model of token ids (kapprox import) takes ids, e.g.\n"
          "                       \"1,403,407\" (default 1, llama2.c's BOS), and prints ids\n"
          "  --tokenizer FILE     a model of token ids: its llama2.c tokenizer (tokenizer.bin);\n"
          "                       the prompt is then text, encoded as llama2.c's run.c does\n"
          "                       (BOS first), and the output is decoded text\n"
          "  --tokens-out FILE    a model of token ids: write --length tokens as a corpus\n"
          "                       (a token file of uint16 ids) instead of printing them:\n"
          "                       sequences from BOS, each ending where the model emits\n"
          "                       BOS or at the context, each drawn with its own seed\n"
          "  --logits FILE        also write the logits at every prompt position (HDF5,\n"
          "                       dataset logits, float32 (prompt tokens, vocabulary))\n"
          "  --length N           characters to generate [500]\n"
          "  --temperature X      softmax temperature; 0 = always the most likely [0.8]\n"
          "  --top-k N            sample only among the N most likely characters; 0 = all [0]\n"
          "  --seed N             seed of the sampling [0]\n");
}

/* The logits of the prompt's positions through the decoding path (prefill),
 * as an HDF5 file with one dataset. */
static int write_logits(const char *path, kx_decoder *m, const int *ids, size_t n) {
  kx_dec_infer s;
  size_t V = m->cfg.vocab;
  float *all = kx_malloc(n * V * sizeof(float));
  int rc = all ? kx_dec_infer_create(&s, m, n) : KX_ENOMEM;
  if (!rc) {
    rc = kx_dec_infer_feed(&s, ids, n, all);
    kx_dec_infer_free(&s);
  }
  if (!rc) {
    hid_t f = kx_h5_create_in_memory();
    hsize_t dims[2] = {n, V};
    hid_t sp = f < 0 ? -1 : H5Screate_simple(2, dims, NULL);
    hid_t d = sp < 0 ? -1 : H5Dcreate2(f, "logits", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0 || H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, all) < 0)
      rc = kx_fail(KX_EIO, "cannot write the logits to '%s'", path);
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    if (f >= 0 && rc) H5Fclose(f);
    if (f >= 0 && !rc) rc = kx_h5_publish(f, path);
  }
  free(all);
  return rc;
}

/* `length` tokens of sequences from BOS (id 1, llama2.c's), each cut where
 * the model emits BOS (a story ended) or where the context is full; BOS
 * before each.  Sequence j draws from kx_seed_derive(seed, j). */
static int write_corpus(const char *path, kx_decoder *m, size_t length, double temperature, size_t top_k,
                        uint64_t seed) {
  size_t room = m->cfg.ctx - 1;
  int *ids = kx_malloc((length ? length : 1) * sizeof(int)), *seq = kx_malloc(room * sizeof(int)), bos = 1;
  int rc = ids && seq ? 0 : KX_ENOMEM;
  size_t n = 0;
  for (uint64_t j = 0; !rc && n < length; j++) {
    size_t want = length - n - 1 < room ? length - n - 1 : room;
    ids[n++] = bos;
    if (!want) break;
    rc = kx_dec_infer_generate(m, &bos, 1, want, temperature, top_k, kx_seed_derive(seed, j), seq);
    for (size_t i = 0; !rc && i < want && seq[i] != bos; i++) ids[n++] = seq[i];
  }
  if (!rc) rc = kx_dec_tokens_write(path, ids, n);
  free(ids);
  free(seq);
  return rc;
}

int cmd_sample(int argc, char **argv) {
  const char *cmd = "sample", *ck = "decoder.h5", *prompt = NULL, *logits = NULL, *tokens_out = NULL, *tokenizer = NULL;
  size_t length = 500, top_k = 0;
  double temperature = 0.8;
  uint64_t seed = 0;
  static const struct option lo[] = {{"checkpoint", 1, 0, 'c'}, {"prompt", 1, 0, 'p'}, {"length", 1, 0, 'n'},
                                     {"temperature", 1, 0, 't'}, {"top-k", 1, 0, 'k'},  {"seed", 1, 0, 's'}, {"logits", 1, 0, 'L'}, {"tokens-out", 1, 0, 'T'}, {"tokenizer", 1, 0, 'z'},
                                     {"help", 0, 0, 'h'},       {0, 0, 0, 0}};
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
    int bad = 0;
    switch (c) {
      case 'c': ck = optarg; break;
      case 'p': prompt = optarg; break;
      case 'L': logits = optarg; break;
      case 'T': tokens_out = optarg; break;
      case 'z': tokenizer = optarg; break;
      case 'n': bad = kx_parse_size(optarg, "--length", 0, (size_t)1 << 40, &length); break;
      case 't':
        bad = kx_parse_double(optarg, "--temperature", &temperature);
        if (!bad && temperature < 0) bad = kx_fail(KX_EINVAL, "--temperature must be >= 0, got %s", optarg);
        break;
      case 'k': bad = kx_parse_size(optarg, "--top-k", 0, 1u << 20, &top_k); break;
      case 's': bad = kx_parse_u64(optarg, "--seed", &seed); break;
      case 'h': usage(stdout); return 0;
      default: return kx_cli_option_error(cmd, c, argv);
    }
    if (bad) return kx_cli_value_error(cmd, NULL);
  }
  if (optind < argc) return kx_cli_extra_operand(cmd, argv[optind], "give the checkpoint with --checkpoint");
  kx_decoder m;
  kx_dec_vocab v;
  if (kx_cli_load_decoder(cmd, ck, &m, &v)) return 1;
  int *ids = NULL, *out = NULL;
  size_t n = 0;
  int rc = 1;
  kx_tokenizer tok = {0};
  if (tokens_out) {
    if (!m.cfg.token_ids) {
      kx_cli_error(cmd, "--tokens-out writes token ids; '%s' is a character model (sample prints its text)", ck);
      rc = 2;
    } else if (kx_atomic_check(tokens_out)) {
      kx_cli_error(cmd, "%s", kx_error_message());
      rc = 2;
    } else if (write_corpus(tokens_out, &m, length, temperature, top_k, seed)) {
      kx_cli_error(cmd, "%s", kx_error_message());
    } else {
      printf("%zu tokens -> %s\n", length, tokens_out);
      rc = 0;
    }
    goto done;
  }
  if (tokenizer && !m.cfg.token_ids) {
    kx_cli_error(cmd, "--tokenizer is for a model of token ids; '%s' is a character model", ck);
    rc = 2;
    goto done;
  }
  if (tokenizer && kx_tokenizer_load(tokenizer, m.cfg.vocab, &tok)) {
    kx_cli_error(cmd, "%s", kx_error_message());
    goto done;
  }
  if (!prompt) prompt = m.cfg.token_ids && !tokenizer ? "1" : tokenizer ? "" : "\n";
  if (!*prompt && !tokenizer) {
    kx_cli_error(cmd, "--prompt must not be empty");
    rc = 2;
    goto done;
  }
  if (tokenizer ? kx_tokenizer_encode(&tok, prompt, 1, &ids, &n)
      : m.cfg.token_ids ? kx_dec_parse_ids(prompt, m.cfg.vocab, &ids, &n) : kx_dec_encode(&v, prompt, &ids, &n)) {
    kx_cli_error(cmd, "--prompt: %s", kx_error_message());
    rc = 2;
    goto done;
  }
  if (kx_dec_infer_check(&m, n + length)) {
    kx_cli_error(cmd, "%s", kx_error_message());
    rc = 2;
    goto done;
  }
  out = kx_malloc((length ? length : 1) * sizeof(int));
  if (!out || kx_dec_infer_generate(&m, ids, n, length, temperature, top_k, seed, out)) {
    kx_cli_error(cmd, "%s", kx_error_message());
    goto done;
  }
  if (logits && write_logits(logits, &m, ids, n)) {
    kx_cli_error(cmd, "%s", kx_error_message());
    goto done;
  }
  if (tokenizer) {
    for (size_t i = 1; i < n + length; i++) {
      size_t len;
      int prev = i <= n ? ids[i - 1] : out[i - 1 - n], id = i < n ? ids[i] : out[i - n];
      fwrite(kx_tokenizer_decode(&tok, prev, id, &len), 1, len, stdout);
    }
  } else if (m.cfg.token_ids) {
    for (size_t i = 0; i < n + length; i++) printf("%s%d", i ? " " : "", i < n ? ids[i] : out[i - n]);
  } else {
    fputs(prompt, stdout);
    char buf[8];
    for (size_t i = 0; i < length; i++) fwrite(buf, 1, kx_dec_decode(&v, out[i], buf), stdout);
  }
  fputc('\n', stdout);
  rc = 0;
done:
  kx_tokenizer_free(&tok);
  free(ids);
  free(out);
  kx_dec_free(&m);
  kx_dec_vocab_free(&v);
  return rc;
}
