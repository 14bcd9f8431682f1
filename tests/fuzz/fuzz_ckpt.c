/* Fuzz harness of the decoder checkpoint loader
 * (experiments/decoder/dec_ckpt.c).
 *
 * Each input is loaded twice, as `sample` and `dump-qk` do (weights only)
 * and, when that succeeds, as `train --resume` does (with the optimizer).
 * A checkpoint the loader accepts must hold what every command assumes:
 * finite parameters and moments, and a vocabulary of Unicode scalar values
 * (no surrogates, nothing above U+10FFFF), strictly increasing.  The
 * loader's child process is turned off: libFuzzer needs the coverage and
 * the crash in its own process. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/kx_error.h"
#include "core/kx_sandbox.h"
#include "experiments/decoder/dec_ckpt.h"
#include "tests/fuzz/fuzz_input.h"

__attribute__((noreturn)) static void broken_promise(const char *what) {
  fprintf(stderr, "fuzz_ckpt: the loader accepted a checkpoint but %s\n", what);
  abort();
}

static void check_finite(const float *x, size_t n, const char *what) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) broken_promise(what);
}

static void check_loaded(const kx_decoder *m, const kx_dec_vocab *v) {
  if (v->V < 2 || !v->vocab) broken_promise("its vocabulary has fewer than 2 entries");
  for (size_t i = 0; i < v->V; i++) {
    uint32_t cp = v->vocab[i];
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      broken_promise("its vocabulary holds a value that is not a Unicode scalar value");
    if (i && cp <= v->vocab[i - 1]) broken_promise("its vocabulary is not strictly increasing");
  }
  check_finite(m->params, m->tab.total, "a parameter is not finite");
}

static int refused(void) {
  if (!kx_error_message()[0]) broken_promise("(refusing it) left no message");
  kx_error_clear();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kx_sandbox_set_isolation(0);
  const char *path = kx_fuzz_file(data, size);
  kx_decoder m;
  kx_dec_vocab v;
  if (kx_dec_ckpt_load(path, &m, &v, NULL, NULL)) return refused();
  check_loaded(&m, &v);
  kx_dec_free(&m);
  kx_dec_vocab_free(&v);

  kx_adamw opt;
  kx_dec_train_state st;
  if (kx_dec_ckpt_load(path, &m, &v, &opt, &st)) return refused();
  check_loaded(&m, &v);
  check_finite(opt.m, opt.n, "a first moment of the optimizer is not finite");
  check_finite(opt.v, opt.n, "a second moment of the optimizer is not finite");
  kx_adamw_free(&opt);
  kx_dec_free(&m);
  kx_dec_vocab_free(&v);
  return 0;
}
