/* Fuzz harness of the llama2.c tokenizer reader and of the encoder and
 * decoder on what it accepts (experiments/model/dec_tokenizer.c), as
 * `sample --tokenizer` uses them.
 *
 * The file does not state its number of tokens, so each input is offered
 * to models of 1 .. 300 and 512 tokens; at most one of them may accept it.
 * On an accepted tokenizer, encoding a few texts (ASCII, accented, a stray
 * byte, empty) gives ids below the vocabulary or a message, and decoding
 * any id after any other gives at most its piece's bytes. */
#include <stdlib.h>

#include "core/kx_error.h"
#include "experiments/model/dec_tokenizer.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/fuzz_promise.h"

static const char harness[] = "fuzz_tokenizer";
#define ACCEPTED "the reader accepted a tokenizer but "

__attribute__((noreturn)) static void broken_promise(const char *what) {
  kx_fuzz_broken_promise(harness, what);
}

static void check(const kx_tokenizer *t) {
  static const char *texts[] = {"Once upon a time", "h\xc3\xa9llo w\xc3\xb6rld", "a\xff" "b", ""};
  for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
    int *ids;
    size_t n;
    if (kx_tokenizer_encode(t, texts[k], k % 2, &ids, &n)) {
      kx_fuzz_refused(harness);
      continue;
    }
    for (size_t i = 0; i < n; i++)
      if (ids[i] < 0 || (size_t)ids[i] >= t->V) broken_promise(ACCEPTED "an encoded id is beyond the vocabulary");
    free(ids);
  }
  for (size_t id = 0; id < t->V; id++) {
    size_t len;
    const char *p = kx_tokenizer_decode(t, id % 3 ? 1 : 0, (int)id, &len);
    if (!p || len > t->len[id]) broken_promise(ACCEPTED "a decoded piece is longer than the token's");
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int accepted = 0;
  for (size_t V = 1; V <= 512; V = V == 300 ? 512 : V + 1) {
    kx_tokenizer t;
    if (kx_tokenizer_parse(data, size, V, &t)) {
      kx_error_clear();
      continue;
    }
    if (accepted++) broken_promise(ACCEPTED "for two vocabulary sizes");
    check(&t);
    kx_tokenizer_free(&t);
  }
  return 0;
}
