/* Fuzz harness of the decoder checkpoint loader
 * (experiments/model/dec_ckpt.c).
 *
 * Each input is loaded twice, as `sample` and `dump-qk` do (weights only)
 * and, when that succeeds, as `train --resume` does (with the optimizer).
 * A checkpoint the loader accepts must hold what every command assumes:
 * finite parameters and moments, and a vocabulary of Unicode scalar values
 * (no surrogates, nothing above U+10FFFF; token ids for a model of token
 * ids), strictly increasing, and a
 * sliding window within the context, on a kind that takes one.  The
 * loader's child process is turned off: libFuzzer needs the coverage and
 * the crash in its own process. */
#include "core/kx_error.h"
#include "core/kx_sandbox.h"
#include "experiments/model/dec_ckpt.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/fuzz_promise.h"

static const char harness[] = "fuzz_ckpt";
#define ACCEPTED "the loader accepted a checkpoint but "

__attribute__((noreturn)) static void broken_promise(const char *what) {
  kx_fuzz_broken_promise(harness, what);
}

static void check_loaded(const kx_decoder *m, const kx_dec_vocab *v) {
  if (v->V < 2 || !v->vocab) broken_promise(ACCEPTED "its vocabulary has fewer than 2 entries");
  for (size_t i = 0; i < v->V; i++) {
    uint32_t cp = v->vocab[i];
    if (!m->cfg.token_ids && (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)))
      broken_promise(ACCEPTED "its vocabulary holds a value that is not a Unicode scalar value");
    if (i && cp <= v->vocab[i - 1]) broken_promise(ACCEPTED "its vocabulary is not strictly increasing");
  }
  kx_fuzz_check_finite_f(harness, m->params, m->tab.total, ACCEPTED "a parameter is not finite");
  if (m->cfg.window > m->cfg.ctx || (m->cfg.window && !m->attn->window))
    broken_promise(ACCEPTED "its sliding window does not fit its context or its attention kind");
}

static int refused(void) { return kx_fuzz_refused(harness); }

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
  kx_fuzz_check_finite_f(harness, opt.m, opt.n, ACCEPTED "a first moment is not finite");
  kx_fuzz_check_finite_f(harness, opt.v, opt.n, ACCEPTED "a second moment is not finite");
  kx_adamw_free(&opt);
  kx_dec_free(&m);
  kx_dec_vocab_free(&v);
  return 0;
}
