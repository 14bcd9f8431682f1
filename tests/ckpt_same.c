/* ckpt_same A.h5 B.h5: exit 0 if the two training checkpoints hold the same
 * model configuration, parameters, AdamW moments and step count, bit for
 * bit; 1 (naming the first difference) if not; 2 if one cannot be read.
 * The wall time a checkpoint records is not compared: it is a measurement.
 * Used by tests/mpi_train.sh. */
#include <stdio.h>
#include <string.h>

#include "core/kx_error.h"
#include "experiments/model/dec_adamw.h"
#include "experiments/model/dec_ckpt.h"

static int differ(const char *what, const float *a, const float *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (memcmp(&a[i], &b[i], sizeof a[i])) {
      printf("%s differ first at %zu: %.9g against %.9g\n", what, i, a[i], b[i]);
      return 1;
    }
  return 0;
}

int main(int argc, char **argv) {
  kx_init_library();
  if (argc != 3) {
    fprintf(stderr, "usage: ckpt_same A.h5 B.h5\n");
    return 2;
  }
  kx_decoder m[2];
  kx_dec_vocab v[2];
  kx_adamw o[2] = {{0}};
  kx_dec_train_state s[2];
  for (int k = 0; k < 2; k++)
    if (kx_dec_ckpt_load(argv[1 + k], &m[k], &v[k], &o[k], &s[k])) {
      fprintf(stderr, "ckpt_same: %s\n", kx_error_message());
      return 2;
    }
  char la[KX_DEC_LABEL_MAX], lb[KX_DEC_LABEL_MAX];
  kx_dec_config_label(&m[0].cfg, la, sizeof la);
  kx_dec_config_label(&m[1].cfg, lb, sizeof lb);
  int d = 0;
  if (strcmp(la, lb) || m[0].tab.total != m[1].tab.total) {
    printf("models differ: %s (%zu parameters) against %s (%zu)\n", la, m[0].tab.total, lb, m[1].tab.total);
    d = 1;
  } else if (s[0].step != s[1].step || o[0].t != o[1].t) {
    printf("steps differ: %llu against %llu\n", (unsigned long long)s[0].step, (unsigned long long)s[1].step);
    d = 1;
  } else {
    d = differ("parameters", m[0].params, m[1].params, m[0].tab.total) ||
        differ("AdamW first moments", o[0].m, o[1].m, o[0].n) ||
        differ("AdamW second moments", o[0].v, o[1].v, o[0].n);
  }
  for (int k = 0; k < 2; k++) {
    kx_dec_free(&m[k]);
    kx_dec_vocab_free(&v[k]);
    kx_adamw_free(&o[k]);
  }
  return d;
}
