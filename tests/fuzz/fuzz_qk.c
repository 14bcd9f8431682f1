/* Fuzz harness of the Q/K file loader (experiments/qk/qk_file.c).
 *
 * Beyond "does not crash", it checks what the loader promises for a file
 * it accepts: every layer it lists either reads with non-zero shapes and
 * finite values or fails with a message, and a partial read (one head, the
 * first tokens, as --heads and --max-tokens ask) agrees with the stored
 * shape.  The loader's child process is turned off: libFuzzer needs the
 * coverage and the crash in its own process. */
#include "core/kx_error.h"
#include "core/kx_sandbox.h"
#include "experiments/qk/qk_file.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/fuzz_promise.h"

static const char harness[] = "fuzz_qk";
#define ACCEPTED "the loader accepted a file but "

__attribute__((noreturn)) static void broken_promise(const char *what) {
  kx_fuzz_broken_promise(harness, what);
}

static void check_layer(const kx_qk_layer *l) {
  if (!l->heads || !l->tokens || !l->d || !l->q || !l->k)
    broken_promise(ACCEPTED "a layer has an empty shape");
  if ((l->v != NULL) != (l->dv != 0)) broken_promise(ACCEPTED "v and dv disagree");
  size_t qk = l->heads * l->tokens * l->d;
  kx_fuzz_check_finite(harness, l->q, qk, ACCEPTED "q holds a non-finite value");
  kx_fuzz_check_finite(harness, l->k, qk, ACCEPTED "k holds a non-finite value");
  if (l->v)
    kx_fuzz_check_finite(harness, l->v, l->heads * l->tokens * l->dv,
                         ACCEPTED "v holds a non-finite value");
}

static int refused(void) { return kx_fuzz_refused(harness); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kx_sandbox_set_isolation(0);
  const char *path = kx_fuzz_file(data, size);
  kx_qk_file *f = kx_qk_open(path);
  if (!f) return refused();
  size_t n = kx_qk_n_layers(f);
  if (n == 0) broken_promise(ACCEPTED "lists no layer");
  for (size_t i = 0; i < n; i++) {
    kx_qk_layer shape, l;
    if (kx_qk_layer_shape(f, i, &shape)) {
      refused();
      continue;
    }
    /* the last head, first 2 tokens: a hyperslab, not the whole dataset */
    if (shape.heads && !kx_qk_read_heads(f, i, shape.heads - 1, 1, 2, &l)) {
      if (l.heads != 1 || l.tokens != (shape.tokens < 2 ? shape.tokens : 2) || l.d != shape.d ||
          l.dv != shape.dv || l.head_first != shape.heads - 1)
        broken_promise(ACCEPTED "a partial read disagrees with the stored shape");
      check_layer(&l);
      kx_qk_layer_free(&l);
    } else {
      refused();
    }
    if (kx_qk_read_layer(f, i, &l)) {
      refused();
      continue;
    }
    if (l.heads != shape.heads || l.tokens != shape.tokens || l.d != shape.d || l.dv != shape.dv)
      broken_promise(ACCEPTED "a whole read disagrees with the stored shape");
    check_layer(&l);
    kx_qk_layer_free(&l);
  }
  kx_qk_close(f);
  return 0;
}
