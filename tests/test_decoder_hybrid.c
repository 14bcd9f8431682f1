/* Layer hybrids: a converted model that keeps softmax attention in some
 * layers (kx_dec_config.softmax_layers).
 *
 *   - the layer list: parsing, the refusals (index out of range, repeated,
 *     not a number, every layer kept, a softmax model) and the label;
 *   - the kept layers are the teacher's: their tensors are copied and,
 *     while every earlier block is softmax too, their activations equal
 *     the teacher's bit for bit (same code on the same input);
 *   - the attention KL counts the softmax layers (exact zeros while their
 *     input is the teacher's);
 *   - recurrent decoding equals the parallel forward for a hybrid of every
 *     kind with recurrent decoding (each block keeps its kind's state);
 *   - attention transfer trains only the converted layers' maps;
 *   - dump-qk's single scaling flag when the kinds disagree;
 *   - checkpoints: the mask survives a round trip (format version 2),
 *     checkpoints without it load as before, a damaged mask is refused. */
#include <check.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/kx_error.h"
#include "experiments/model/dec_attn_eval.h"
#include "experiments/model/dec_ckpt.h"
#include "experiments/model/dec_convert.h"
#include "experiments/model/dec_infer.h"
#include "experiments/model/dec_layers.h"
#include "experiments/model/dec_model.h"
#include "experiments/model/dec_sample.h"
#include "experiments/model/dec_transfer.h"

#define NV 11
enum { NCTX = 48 };
static const double U = 5.96e-8; /* 2^-24 */

static void teacher_of(kx_decoder *m, size_t layers, uint64_t seed) {
  kx_dec_config c;
  kx_dec_config_default(&c);
  c.vocab = NV;
  c.ctx = NCTX;
  c.layers = layers;
  c.heads = 2;
  c.width = 16;
  c.rotary_dims = 4;
  ck_assert_int_eq(kx_dec_create(m, &c), 0);
  ck_assert_int_eq(kx_dec_init_params(m, seed), 0);
  /* q/k weights x3: attention rows far from uniform, so that a wrong
   * layer kind shows */
  for (size_t l = 0; l < layers; l++) {
    char name[48];
    snprintf(name, sizeof name, "layer%zu/qkv_w", l);
    float *w = kx_dec_param(m, (size_t)kx_ptable_find(&m->tab, name));
    for (size_t k = 0; k < 2 * c.width * c.width; k++) w[k] *= 3.0f;
  }
}

static void tokens_of(int *tok, size_t n, uint64_t seed) {
  uint64_t s = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    tok[i] = (int)((s >> 33) % NV);
  }
}

START_TEST(test_layer_list) {
  uint64_t m = 0;
  ck_assert_int_eq(kx_dec_parse_layers("0,3", "--softmax-layers", 4, &m), 0);
  ck_assert_uint_eq(m, 9);
  ck_assert_int_eq(kx_dec_parse_layers("2", "--softmax-layers", 4, &m), 0);
  ck_assert_uint_eq(m, 4);
  ck_assert_int_eq(kx_dec_parse_layers("63,0", "--x", 64, &m), 0);
  ck_assert_uint_eq(m, ((uint64_t)1 << 63) | 1);
  static const struct {
    const char *list, *needle;
  } bad[] = {{"4", "layer 4 does not exist; the model has 4 layers (0 to 3)"},
             {"1,1", "layer 1 is listed twice"},
             {"x", "'x' is not a layer index"},
             {"1.5", "'1.5' is not a layer index"},
             {"-1", "'-1' is not a layer index"},
             {"0,,1", "empty item"},
             {"", "empty list"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    m = 77;
    ck_assert_int_ne(kx_dec_parse_layers(bad[i].list, "--softmax-layers", 4, &m), 0);
    ck_assert_msg(strstr(kx_error_message(), bad[i].needle), "'%s': %s", bad[i].list, kx_error_message());
    ck_assert_msg(strstr(kx_error_message(), "--softmax-layers"), "%s", kx_error_message());
    ck_assert_uint_eq(m, 77); /* untouched on error */
  }
  char buf[256];
  kx_dec_format_layers(9, buf, sizeof buf);
  ck_assert_str_eq(buf, "0,3");
  kx_dec_format_layers(0, buf, sizeof buf);
  ck_assert_str_eq(buf, "");
  /* the configuration's refusals */
  kx_dec_config c;
  kx_dec_config_default(&c);
  c.vocab = NV;
  snprintf(c.attn_kind, sizeof c.attn_kind, "performer");
  c.softmax_layers = 5;
  ck_assert_int_eq(kx_dec_config_check(&c), 0);
  kx_dec_config_label(&c, buf, sizeof buf);
  ck_assert_str_eq(buf, "performer+sm0.2");
  ck_assert_str_eq(kx_dec_config_layer_kind(&c, 0), "softmax");
  ck_assert_str_eq(kx_dec_config_layer_kind(&c, 1), "performer");
  c.softmax_layers = 15; /* every one of the 4 layers */
  ck_assert_int_ne(kx_dec_config_check(&c), 0);
  ck_assert_msg(strstr(kx_error_message(), "every layer"), "%s", kx_error_message());
  c.softmax_layers = 16;
  ck_assert_int_ne(kx_dec_config_check(&c), 0);
  ck_assert_msg(strstr(kx_error_message(), "only 4 layers"), "%s", kx_error_message());
  c.softmax_layers = 1;
  snprintf(c.attn_kind, sizeof c.attn_kind, "softmax");
  ck_assert_int_ne(kx_dec_config_check(&c), 0);
  ck_assert_msg(strstr(kx_error_message(), "softmax model"), "%s", kx_error_message());
  c.softmax_layers = 0;
  kx_dec_config_label(&c, buf, sizeof buf);
  ck_assert_str_eq(buf, "softmax");
  kx_error_clear();
}
END_TEST

/* Every layer but the last kept softmax: blocks 0 .. L-2 see exactly the
 * teacher's input and run the teacher's code on the teacher's tensors, so
 * every activation up to the last block's input is equal to the bit; the
 * last block's attention is the kind's and differs. */
static const char *const kinds[] = {"performer", "cosformer", "retnet",   "dijiang",
                                    "dijiang-code", "linformer", "hedgehog", "performer-redraw"};
enum { N_KINDS = sizeof kinds / sizeof kinds[0] };

START_TEST(test_kept_layers_are_the_teachers) {
  const char *kind = kinds[_i];
  enum { L = 3, B = 2, T = 40 };
  kx_decoder t, h;
  teacher_of(&t, L, 3);
  ck_assert_int_eq(kx_dec_convert_hybrid(&t, kind, 3, 5, &h), 0);
  ck_assert_ptr_eq(h.li[0].attn, kx_dec_attn_find("softmax"));
  ck_assert_ptr_eq(h.li[2].attn, kx_dec_attn_find(kind));
  for (size_t i = 0; i < h.tab.n; i++)
    if (!strncmp(h.tab.t[i].name, "layer0/", 7) || !strncmp(h.tab.t[i].name, "layer1/", 7)) {
      long s = kx_dec_convert_source(&t, &h.tab.t[i]);
      ck_assert_msg(s >= 0, "%s: kept-layer tensor %s is not the teacher's", kind, h.tab.t[i].name);
    }
  int x[B * T], y[B * T];
  tokens_of(x, B * T, 1);
  tokens_of(y, B * T, 2);
  double lt, lh;
  ck_assert_int_eq(kx_dec_forward(&t, x, y, B, T, &lt), 0);
  ck_assert_int_eq(kx_dec_forward(&h, x, y, B, T, &lh), 0);
  size_t NC = (size_t)B * T * t.cfg.width;
  for (size_t l = 0; l < L - 1; l++) {
    ck_assert_msg(!memcmp(t.blk[l].attn_y, h.blk[l].attn_y, NC * sizeof(float)), "%s: block %zu attention", kind, l);
    ck_assert_msg(!memcmp(t.blk[l + 1].x, h.blk[l + 1].x, NC * sizeof(float)), "%s: block %zu output", kind, l);
  }
  double diff = 0;
  for (size_t k = 0; k < NC; k++) diff = fmax(diff, fabs(t.blk[L - 1].attn_y[k] - h.blk[L - 1].attn_y[k]));
  ck_assert_msg(diff > 1e-3, "%s: the converted layer computes the teacher's attention (diff %g)", kind, diff);
  ck_assert(lt != lh);
  /* the gradients exist for every tensor and are finite */
  ck_assert_int_eq(kx_dec_backward(&h), 0);
  for (size_t i = 0; i < h.tab.total; i++) ck_assert(isfinite(h.grads[i]));
  kx_dec_free(&t);
  kx_dec_free(&h);
}
END_TEST

/* The attention KL through each block's own kind: with layers 0 and 1 kept,
 * their rows are the teacher's (same input, same code), each term
 * a log(a/a) is exactly 0, and the mean is the last layer's KL over L. */
START_TEST(test_kl_counts_softmax_layers) {
  enum { L = 3 };
  kx_decoder t, h;
  teacher_of(&t, L, 4);
  ck_assert_int_eq(kx_dec_convert_hybrid(&t, "performer", 3, 5, &h), 0);
  int x[NCTX];
  tokens_of(x, NCTX, 3);
  double kl;
  ck_assert_int_eq(kx_dec_attn_kl(&t, &h, x, NCTX, 1, &kl), 0);
  ck_assert_int_eq(kx_dec_forward(&t, x, NULL, 1, NCTX, NULL), 0);
  ck_assert_int_eq(kx_dec_forward(&h, x, NULL, 1, NCTX, NULL), 0);
  float *A = malloc(NCTX * NCTX * sizeof(float)), *S = malloc(NCTX * NCTX * sizeof(float));
  kx_attn_ctx ct = {&t.cfg, 1, NCTX, t.rope_cos, t.rope_sin, 0, 0, NULL};
  kx_attn_ctx ch = {&h.cfg, 1, NCTX, h.rope_cos, h.rope_sin, 0, 0, NULL};
  double sum = 0.0;
  for (size_t l = 0; l < L; l++)
    for (size_t hd = 0; hd < t.cfg.heads; hd++) {
      t.li[l].attn->attn_weights(&ct, t.attn_p + l * 16, t.blk[l].attn_acts, 0, hd, A);
      h.li[l].attn->attn_weights(&ch, h.attn_p + l * 16, h.blk[l].attn_acts, 0, hd, S);
      double layer = 0.0;
      for (size_t i = 0; i < NCTX; i++)
        for (size_t j = 0; j <= i; j++) {
          double a = A[i * NCTX + j], s = S[i * NCTX + j];
          if (a > 0) layer += a * (log(a) - log(s > KX_ATTN_KL_FLOOR ? s : KX_ATTN_KL_FLOOR));
        }
      if (l < L - 1) ck_assert_msg(layer == 0.0, "kept layer %zu head %zu: KL %g", l, hd, layer);
      sum += layer;
    }
  double want = sum / (double)(L * t.cfg.heads * NCTX);
  ck_assert_msg(want > 0.0, "the converted layer has the teacher's rows");
  /* the same sums in the same order: equal up to the summation's last bits */
  ck_assert_msg(fabs(kl - want) <= 1e-12 * want, "KL %.17g, by hand %.17g", kl, want);
  free(A);
  free(S);
  kx_dec_free(&t);
  kx_dec_free(&h);
}
END_TEST

/* Recurrent decoding of a hybrid (layer 1 of 3 kept softmax: a KV cache
 * between two recurrent states) against its parallel forward.  Tolerance
 * as tests/test_decoder_infer.c: 2 (L + 1) (T + 4C) u (1 + max |logit|),
 * the worst-case difference of two summation orders. */
static const char *const recurrent_kinds[] = {"performer", "performer-prf", "pff",       "cosformer",
                                              "retnet",    "dijiang",       "dijiang-code", "linformer",
                                              "hedgehog"};

START_TEST(test_recurrent_equals_parallel) {
  const char *kind = recurrent_kinds[_i];
  enum { L = 3, T = NCTX, P = 17 };
  kx_decoder t, h;
  teacher_of(&t, L, 6);
  ck_assert_int_eq(kx_dec_convert_hybrid(&t, kind, 2, 7, &h), 0);
  int tok[T];
  tokens_of(tok, T, 9);
  size_t Vv = h.cfg.vocab;
  ck_assert_int_eq(kx_dec_forward(&h, tok, NULL, 1, T, NULL), 0);
  float *rec = malloc((size_t)T * Vv * sizeof(float));
  kx_dec_infer s;
  ck_assert_msg(kx_dec_infer_create(&s, &h, T) == 0, "%s: %s", kind, kx_error_message());
  /* each block's own state: the KV cache of the kept layer grows with T */
  size_t state_kept = s.state_at[2] - s.state_at[1], state_conv = s.state_at[1] - s.state_at[0];
  ck_assert_uint_eq(state_kept, kx_dec_attn_find("softmax")->state_floats(&h.cfg, T));
  ck_assert_uint_eq(state_conv, kx_dec_attn_find(kind)->state_floats(&h.cfg, T));
  ck_assert_int_eq(kx_dec_infer_feed(&s, tok, P, rec), 0);
  for (size_t i = P; i < T; i++) ck_assert_int_eq(kx_dec_infer_feed(&s, tok + i, 1, rec + i * Vv), 0);
  double mx = 0.0, worst = 0.0;
  for (size_t i = 0; i < (size_t)T * Vv; i++) {
    mx = fmax(mx, fabs(h.logits[i]));
    double d = fabs((double)rec[i] - h.logits[i]);
    if (!(d <= worst)) worst = d;
  }
  double tol = 2.0 * (L + 1.0) * ((double)T + 4.0 * (double)h.cfg.width) * U * (1.0 + mx);
  printf("hybrid %-14s max |recurrent - parallel| = %.3g (tolerance %.3g)\n", kind, worst, tol);
  ck_assert_msg(worst <= tol, "%s: %g > %g", kind, worst, tol);
  kx_dec_infer_free(&s);
  /* a kept softmax layer does not lift a position limit of the kind */
  if (h.attn->max_positions(&h.cfg) == NCTX) {
    ck_assert_uint_eq(kx_dec_max_positions(&h), NCTX);
    ck_assert_int_ne(kx_dec_infer_create(&s, &h, NCTX + 1), 0);
    ck_assert_ptr_nonnull(strstr(kx_error_message(), kind));
    kx_error_clear();
  } else {
    ck_assert_uint_eq(kx_dec_max_positions(&h), SIZE_MAX);
  }
  free(rec);
  kx_dec_free(&t);
  kx_dec_free(&h);
}
END_TEST

/* Attention transfer of a hybrid, for every kind with transfer tensors
 * (also those fixed in fine-tuning: performer's projection, dijiang's
 * radii): the kept layer has no map and is the teacher's, untouched; in
 * the converted layers exactly the transfer tensors move, but for
 * dijiang's gate, listed for the output target: it acts after the rows,
 * so the row target leaves it as it was (docs/conversion.md). */
static const char *const transfer_kinds[] = {"hedgehog", "performer",    "performer-prf",   "pff",
                                             "dijiang",  "dijiang-code", "dijiang-released"};

static int is_transfer_tensor(const kx_attn_kind *k, const char *name) {
  const char *base = strchr(name, '/');
  if (!base) return 0;
  for (const char *const *t = k->transfer_tensors; t && *t; t++)
    if (!strcmp(base + 1, *t)) return 1;
  return 0;
}

START_TEST(test_transfer_skips_kept_layers) {
  const char *name = transfer_kinds[_i];
  kx_decoder t, h;
  teacher_of(&t, 3, 8);
  ck_assert_int_eq(kx_dec_convert_hybrid(&t, name, 2, 1, &h), 0);
  ck_assert_msg(kx_dec_transfer_supported(h.attn), "%s: no transfer", name);
  kx_dec_data data = {0};
  size_t n = 2000;
  data.train = malloc(n * sizeof(int));
  data.n_train = n;
  for (size_t i = 0; i < n; i++) data.train[i] = (int)((i * i * 31 + i / 7) % NV);
  float *before = malloc(h.tab.total * sizeof(float));
  memcpy(before, h.params, h.tab.total * sizeof(float));
  kx_transfer_opts o = {.steps = 5, .batch = 2, .seed = 1, .lr = 1e-2};
  ck_assert_int_eq(kx_dec_transfer(&t, &h, &data, &o, NULL, NULL), 0);
  size_t moved = 0;
  for (size_t i = 0; i < h.tab.n; i++) {
    const kx_tensor_info *ti = &h.tab.t[i];
    int same = !memcmp(before + ti->offset, h.params + ti->offset, ti->size * sizeof(float));
    int map = is_transfer_tensor(h.attn, ti->name);
    int rowless = !strcmp(name, "dijiang") && strstr(ti->name, "/gate_w");
    ck_assert_msg(!map || strncmp(ti->name, "layer1/", 7), "%s: the kept layer has a map tensor %s", name, ti->name);
    ck_assert_msg(same == (!map || rowless), "%s: %s %s", name, ti->name, same ? "unchanged" : "changed");
    moved += map && !rowless;
  }
  /* layers 0 and 2 converted, each with the kind's whole list (of the
   * tensors its form declares) */
  size_t listed = 0;
  for (const char *const *tn = h.attn->transfer_tensors; *tn; tn++) {
    char layer0[64];
    snprintf(layer0, sizeof layer0, "layer0/%s", *tn);
    listed += kx_ptable_find(&h.tab, layer0) >= 0;
  }
  ck_assert_uint_eq(moved, 2 * (listed - !strcmp(name, "dijiang")));
  free(before);
  free(data.train);
  kx_dec_free(&t);
  kx_dec_free(&h);
}
END_TEST

/* dump-qk's one `scaled` flag: retnet reports q.k as its logit (scaled),
 * softmax q.k/sqrt(d); in a hybrid the kept layer's queries get the
 * 1/sqrt(d), so they are the teacher's up to that factor (one double
 * rounding, relative 2^-53, on float values). */
START_TEST(test_dump_qk_scaling) {
  kx_decoder t, h;
  teacher_of(&t, 2, 9);
  ck_assert_int_eq(kx_dec_convert_hybrid(&t, "retnet", 1, 1, &h), 0);
  int tok[NCTX];
  tokens_of(tok, NCTX, 4);
  kx_qk_layer lt[2], lh[2];
  int st, sh;
  ck_assert_int_eq(kx_dec_extract_qk(&t, tok, NCTX, lt, &st), 0);
  ck_assert_int_eq(kx_dec_extract_qk(&h, tok, NCTX, lh, &sh), 0);
  ck_assert_int_eq(st, 0);
  ck_assert_int_eq(sh, 1);
  size_t d = lt[0].d, n = lt[0].heads * lt[0].tokens * d;
  for (size_t i = 0; i < n; i++) {
    double want = lt[0].q[i] / sqrt((double)d);
    ck_assert_msg(fabs(lh[0].q[i] - want) <= 2.3e-16 * fabs(want), "q[%zu] %g != %g", i, lh[0].q[i], want);
    ck_assert(lh[0].k[i] == lt[0].k[i]);
  }
  for (int l = 0; l < 2; l++) kx_qk_layer_free(&lt[l]), kx_qk_layer_free(&lh[l]);
  kx_dec_free(&t);
  kx_dec_free(&h);
}
END_TEST

/* ---- checkpoints ---- */

static char dir[256];

static void setup(void) {
  snprintf(dir, sizeof dir, "/tmp/kx_hybrid_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  kx_dec_threads_init();
}

static void teardown(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd)) {
  }
}

static kx_dec_vocab vocab_of(void) {
  kx_dec_vocab v = {0};
  v.V = NV;
  v.vocab = malloc(NV * sizeof(uint32_t));
  for (size_t i = 0; i < NV; i++) v.vocab[i] = (uint32_t)('a' + i);
  return v;
}

static uint64_t u64_attr(const char *path, const char *obj, const char *name) {
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  ck_assert(f >= 0);
  uint64_t v = 0;
  hid_t a = H5Aopen_by_name(f, obj, name, H5P_DEFAULT, H5P_DEFAULT);
  ck_assert(a >= 0);
  ck_assert(H5Aread(a, H5T_NATIVE_UINT64, &v) >= 0);
  H5Aclose(a);
  H5Fclose(f);
  return v;
}

/* Replaces (or adds) a uint64 attribute; deleted and created anew, as
 * libhdf5 1.10 cannot rewrite an attribute of these files in place. */
static void set_u64_attr(const char *path, const char *obj, const char *name, uint64_t v) {
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  ck_assert(f >= 0);
  if (H5Aexists_by_name(f, obj, name, H5P_DEFAULT) > 0) ck_assert(H5Adelete_by_name(f, obj, name, H5P_DEFAULT) >= 0);
  hid_t s = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate_by_name(f, obj, name, H5T_STD_U64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Sclose(s);
  ck_assert(a >= 0);
  ck_assert(H5Awrite(a, H5T_NATIVE_UINT64, &v) >= 0);
  H5Aclose(a);
  H5Fclose(f);
}

START_TEST(test_checkpoint_round_trip) {
  kx_decoder t, h, back;
  kx_dec_vocab v = vocab_of(), vb;
  teacher_of(&t, 3, 10);
  ck_assert_int_eq(kx_dec_convert_hybrid(&t, "performer", 5, 2, &h), 0);
  char ph[300], pt[300];
  snprintf(ph, sizeof ph, "%s/hybrid.h5", dir);
  snprintf(pt, sizeof pt, "%s/teacher.h5", dir);
  ck_assert_int_eq(kx_dec_ckpt_save(ph, &h, &v, NULL, NULL), 0);
  ck_assert_int_eq(kx_dec_ckpt_save(pt, &t, &v, NULL, NULL), 0);
  /* a model without a mask keeps the old file: version 1, no attribute */
  ck_assert_uint_eq(u64_attr(pt, "/", "format_version"), 1);
  ck_assert_uint_eq(u64_attr(ph, "/", "format_version"), 2);
  ck_assert_uint_eq(u64_attr(ph, "config", "softmax_layers"), 5);
  ck_assert_int_eq(kx_dec_ckpt_load(ph, &back, &vb, NULL, NULL), 0);
  ck_assert_uint_eq(back.cfg.softmax_layers, 5);
  ck_assert_str_eq(back.cfg.attn_kind, "performer");
  ck_assert_uint_eq(back.tab.total, h.tab.total);
  ck_assert(!memcmp(back.params, h.params, h.tab.total * sizeof(float)));
  for (size_t l = 0; l < 3; l++) ck_assert_ptr_eq(back.li[l].attn, h.li[l].attn);
  kx_dec_free(&back);
  kx_dec_vocab_free(&vb);
  ck_assert_int_eq(kx_dec_ckpt_load(pt, &back, &vb, NULL, NULL), 0);
  ck_assert_uint_eq(back.cfg.softmax_layers, 0);
  kx_dec_free(&back);
  kx_dec_vocab_free(&vb);
  /* a damaged mask: a layer the model does not have, every layer */
  set_u64_attr(ph, "config", "softmax_layers", 8);
  ck_assert_int_ne(kx_dec_ckpt_load(ph, &back, &vb, NULL, NULL), 0);
  ck_assert_msg(strstr(kx_error_message(), "only 3 layers"), "%s", kx_error_message());
  set_u64_attr(ph, "config", "softmax_layers", 7);
  ck_assert_int_ne(kx_dec_ckpt_load(ph, &back, &vb, NULL, NULL), 0);
  ck_assert_msg(strstr(kx_error_message(), "every layer"), "%s", kx_error_message());
  /* a softmax model carrying a mask */
  set_u64_attr(pt, "config", "softmax_layers", 1);
  ck_assert_int_ne(kx_dec_ckpt_load(pt, &back, &vb, NULL, NULL), 0);
  ck_assert_msg(strstr(kx_error_message(), "softmax model"), "%s", kx_error_message());
  /* a format this program does not know */
  set_u64_attr(ph, "/", "format_version", 3);
  ck_assert_int_ne(kx_dec_ckpt_load(ph, &back, &vb, NULL, NULL), 0);
  ck_assert_msg(strstr(kx_error_message(), "format version 3"), "%s", kx_error_message());
  kx_error_clear();
  kx_dec_vocab_free(&v);
  kx_dec_free(&t);
  kx_dec_free(&h);
}
END_TEST

/* The checkpoints of the fuzz corpus predate layer hybrids: they load, as
 * models without a mask. */
START_TEST(test_old_checkpoints_load) {
  const char *root = getenv("KX_SOURCE_ROOT");
  if (!root) root = ".";
  static const char *const files[] = {"tiny-1layer.h5", "tiny-2layers.h5"};
  for (size_t i = 0; i < 2; i++) {
    char path[600];
    snprintf(path, sizeof path, "%s/tests/fuzz/corpus/ckpt/%s", root, files[i]);
    ck_assert_uint_eq(u64_attr(path, "/", "format_version"), 1);
    kx_decoder m;
    kx_dec_vocab v;
    ck_assert_msg(kx_dec_ckpt_load(path, &m, &v, NULL, NULL) == 0, "%s: %s", path, kx_error_message());
    ck_assert_uint_eq(m.cfg.softmax_layers, 0);
    for (size_t l = 0; l < m.cfg.layers; l++) ck_assert_ptr_eq(m.li[l].attn, m.attn);
    kx_dec_free(&m);
    kx_dec_vocab_free(&v);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("decoder_hybrid");
  TCase *tc = tcase_create("hybrid");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_layer_list);
  tcase_add_loop_test(tc, test_kept_layers_are_the_teachers, 0, N_KINDS);
  tcase_add_test(tc, test_kl_counts_softmax_layers);
  tcase_add_loop_test(tc, test_recurrent_equals_parallel, 0,
                      sizeof recurrent_kinds / sizeof recurrent_kinds[0]);
  tcase_add_loop_test(tc, test_transfer_skips_kept_layers, 0, sizeof transfer_kinds / sizeof transfer_kinds[0]);
  tcase_add_test(tc, test_dump_qk_scaling);
  suite_add_tcase(s, tc);
  TCase *ck = tcase_create("checkpoints");
  tcase_add_checked_fixture(ck, setup, teardown);
  tcase_add_test(ck, test_checkpoint_round_trip);
  tcase_add_test(ck, test_old_checkpoints_load);
  suite_add_tcase(s, ck);
  SRunner *r = srunner_create(s);
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
