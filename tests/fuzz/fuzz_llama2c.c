/* Fuzz harness of the llama2.c checkpoint reader
 * (experiments/model/dec_llama2c.c), as `kapprox import` calls it.
 *
 * A file the reader accepts must give a llama model whose configuration
 * passes the model's own check, whose parameters are all finite, and on
 * which the probe forward (every token, as the checkpoint loader runs it)
 * either computes finite values or stops with KX_ENUM (finite parameters
 * beyond what float32 arithmetic carries, which import then refuses). */
#include "core/kx_error.h"
#include "experiments/model/dec_ckpt.h"
#include "experiments/model/dec_llama2c.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/fuzz_promise.h"

static const char harness[] = "fuzz_llama2c";
#define ACCEPTED "the reader accepted a llama2.c file but "

__attribute__((noreturn)) static void broken_promise(const char *what) {
  kx_fuzz_broken_promise(harness, what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kx_decoder m;
  if (kx_llama2c_parse(data, size, 0, &m)) return kx_fuzz_refused(harness);
  if (!kx_dec_llama(&m.cfg) || !m.cfg.token_ids || kx_dec_config_check(&m.cfg))
    broken_promise(ACCEPTED "its model is not a valid llama configuration of token ids");
  kx_fuzz_check_finite_f(harness, m.params, m.tab.total, ACCEPTED "a parameter is not finite");
  int rc = kx_dec_ckpt_probe(&m);
  if (rc && rc != KX_ENUM) broken_promise(ACCEPTED "the probe forward failed otherwise than on a non-finite value");
  kx_error_clear();
  kx_dec_free(&m);
  return 0;
}
