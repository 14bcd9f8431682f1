/* Fuzz harness of the token file reader (kx_dec_tokens_parse in
 * experiments/model/dec_data.c), as `eval`, `finetune`, `dump-qk` and
 * `convert` read a token corpus for a model of token ids.
 *
 * A file the reader accepts must give every one of its uint16 ids, in
 * order, split between training and validation as documented, each below the
 * vocabulary (512, stories260K's), and a vocabulary of those ids. */
#include <stdlib.h>

#include "core/kx_error.h"
#include "experiments/model/dec_data.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/fuzz_promise.h"

static const char harness[] = "fuzz_tokens";
#define ACCEPTED "the reader accepted a token file but "
enum { V = 512 };

__attribute__((noreturn)) static void broken_promise(const char *what) {
  kx_fuzz_broken_promise(harness, what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kx_dec_data d;
  if (kx_dec_tokens_parse(data, size, V, "input", &d)) return kx_fuzz_refused(harness);
  if (d.n_train + d.n_val != size / 2 || size % 2) broken_promise(ACCEPTED "tokens are missing or added");
  if (d.vocab.V != V || !d.vocab.ids) broken_promise(ACCEPTED "its vocabulary is not the model's token ids");
  /* the documented split: pieces from each BOS, every 20th validation, or
   * the last 1/20 of the tokens with fewer than 20 pieces */
  size_t m = size / 2, pieces = 0, piece = 0, t = 0, v = 0;
  for (size_t i = 0; i < m; i++) pieces += (data[2 * i] | data[2 * i + 1] << 8) == 1 || i == 0;
  for (size_t i = 0; i < m; i++) {
    int id = data[2 * i] | data[2 * i + 1] << 8;
    piece += id == 1 || i == 0;
    int val = pieces >= KX_DEC_VAL_EVERY ? piece % KX_DEC_VAL_EVERY == 0 : i >= m - m / KX_DEC_VAL_EVERY;
    if (val ? v >= d.n_val || d.val[v++] != id : t >= d.n_train || d.train[t++] != id)
      broken_promise(ACCEPTED "its parts are not the file's ids in order");
  }
  for (size_t i = 0; i < d.n_train; i++)
    if (d.train[i] < 0 || d.train[i] >= V) broken_promise(ACCEPTED "an id is beyond the vocabulary");
  kx_dec_data_free(&d);
  return 0;
}
