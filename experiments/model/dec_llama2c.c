#include "experiments/model/dec_llama2c.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/kx_error.h"
#include "core/kx_input.h"
#include "experiments/model/dec_heads.h"

#define MAGIC 0x616b3432u /* "ak42" */
#define V1_HEADER 256

static int32_t i32_at(const unsigned char *p) {
  uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
  int32_t v;
  memcpy(&v, &u, sizeof v);
  return v;
}

/* A cursor over the float32 payload. */
typedef struct {
  const unsigned char *p;
  int rc;
} reader;

/* n floats into dst (NULL: skipped), refusing values that are not finite;
 * layer SIZE_MAX: a tensor outside the layers. */
static void take(reader *r, float *dst, size_t n, const char *what, size_t layer) {
  if (r->rc) return;
  for (size_t i = 0; i < n; i++) {
    uint32_t u = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
    float f;
    memcpy(&f, &u, sizeof f);
    r->p += 4;
    if (!isfinite(f)) {
      char where[32] = "";
      if (layer != SIZE_MAX) snprintf(where, sizeof where, " of layer %zu", layer);
      r->rc = kx_fail(KX_EINVAL, "tensor %s%s holds %g at index %zu", what, where, (double)f, i);
      return;
    }
    if (dst) dst[i] = f;
  }
}

int kx_llama2c_parse(const unsigned char *buf, size_t len, size_t ctx, kx_decoder *m) {
  memset(m, 0, sizeof *m);
  size_t header = 28, at = 0;
  int version = 0, shared = -1;
  if (len >= 8 && (uint32_t)i32_at(buf) == MAGIC) {
    version = i32_at(buf + 4);
    if (version == 2)
      return kx_fail(KX_EINVAL, "an int8 (Q8_0) export, version 2, which kapprox does not read; export the model with "
                     "llama2.c's export.py --version 1 (float32) or --version 0 (legacy)");
    if (version != 1)
      return kx_fail(KX_EINVAL, "a llama2.c export of version %d; kapprox reads the legacy export (version 0) and "
                     "the float32 export (version 1)", version);
    header = V1_HEADER, at = 8;
    if (len < V1_HEADER)
      return kx_fail(KX_EINVAL, "%zu bytes, shorter than the version-1 header (%d bytes)", len, V1_HEADER);
    shared = buf[36];
    if (shared > 1) return kx_fail(KX_EINVAL, "the shared-classifier flag is %d, not 0 or 1", shared);
  } else if (len < header) {
    return kx_fail(KX_EINVAL, "%zu bytes, shorter than the header of seven int32 (28 bytes)", len);
  }
  static const char *names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
  int32_t v[7];
  for (int i = 0; i < 7; i++) v[i] = i32_at(buf + at + 4 * i);
  if (version == 0) {
    /* the legacy flag: a negative vocabulary size means an unshared classifier */
    shared = v[5] > 0;
    if (v[5] < 0 && v[5] != INT32_MIN) v[5] = -v[5];
  }
  for (int i = 0; i < 7; i++)
    if (v[i] <= 0)
      return kx_fail(KX_EINVAL, "the header's %s is %d; every size must be positive (dim %d, hidden_dim %d, "
                     "n_layers %d, n_heads %d, n_kv_heads %d, vocab_size %d, seq_len %d)", names[i], v[i], v[0],
                     v[1], v[2], v[3], v[4], v[5], v[6]);
  size_t C = (size_t)v[0], Fh = (size_t)v[1], L = (size_t)v[2], H = (size_t)v[3], Hkv = (size_t)v[4];
  size_t V = (size_t)v[5], S = (size_t)v[6];
  if (C % H) return kx_fail(KX_EINVAL, "n_heads (%zu) does not divide dim (%zu)", H, C);
  if (H % Hkv) return kx_fail(KX_EINVAL, "n_kv_heads (%zu) does not divide n_heads (%zu)", Hkv, H);
  size_t d = C / H, KV = Hkv * d;
  if (d % 2) return kx_fail(KX_EINVAL, "the head size %zu (dim / n_heads) is odd; rotary needs pairs", d);
  kx_dec_config c;
  kx_dec_config_default(&c);
  c.arch = KX_ARCH_LLAMA;
  c.vocab = V, c.layers = L, c.heads = H, c.width = C, c.kv_heads = Hkv, c.ffn_hidden = Fh, c.tied = shared;
  c.rotary_dims = d, c.rope_base = 10000.0, c.ln_eps = 1e-5, c.token_ids = 1;
  c.ctx = ctx ? ctx : S;
  if (!ctx && S > 8192)
    return kx_fail(KX_EINVAL, "seq_len %zu is beyond kapprox's context limit of 8192; give --ctx 8192 or less", S);
  int rc = kx_dec_config_check(&c);
  if (rc) return kx_fail_context(rc, "the header's sizes: ");
  /* the payload's size from the header, in doubles: no overflow to hide a short file */
  double per_layer = 2.0 * C + (double)C * C * 2 + 2.0 * C * KV + 3.0 * Fh * C;
  double floats = (double)V * C + L * per_layer + C + (version == 0 ? (double)S * d : 0) + (shared ? 0 : (double)V * C);
  double want = (double)header + 4.0 * floats;
  if ((double)len != want)
    return kx_fail(KX_EINVAL, "%zu bytes, but its header (dim %zu, hidden_dim %zu, n_layers %zu, n_heads %zu, n_kv_heads "
                   "%zu, vocab_size %zu, seq_len %zu, %s classifier) says %.0f; the file is %s", len, C, Fh, L, H,
                   Hkv, V, S, shared ? "shared" : "separate", want, (double)len < want ? "truncated" : "longer than "
                   "its tensors (not a llama2.c checkpoint of this version?)");
  if ((rc = kx_dec_create(m, &c))) return rc;
  reader r = {buf + header, 0};
  float *embed = kx_dec_param(m, m->embed);
  /* every layer's tensor `index` in turn, n floats from `off` on */
#define LAYERS(index, off, n, what) \
  for (size_t l = 0; l < L; l++) take(&r, kx_dec_param(m, index) + (off), n, what, l)
  /* qkv_w's rows: q (C), k (KV), v (KV) */
#define QKV(off, n, what) LAYERS(m->li[l].attn_first + KX_HEADS_QKV_W, off, n, what)
#define WO LAYERS(m->li[l].attn_first + KX_HEADS_PROJ_W, 0, C * C, "wo")
  if (version == 0) {
    take(&r, embed, V * C, "token_embedding", SIZE_MAX);
    LAYERS(m->li[l].ln1_w, 0, C, "rms_att_weight");
    QKV(0, C * C, "wq");
    QKV(C * C, KV * C, "wk");
    QKV(C * C + KV * C, KV * C, "wv");
    WO;
    LAYERS(m->li[l].ln2_w, 0, C, "rms_ffn_weight");
    LAYERS(m->li[l].fc_w, 0, Fh * C, "w1");
    LAYERS(m->li[l].fcproj_w, 0, C * Fh, "w2");
    LAYERS(m->li[l].fc3_w, 0, Fh * C, "w3");
    take(&r, kx_dec_param(m, m->lnf_w), C, "rms_final_weight", SIZE_MAX);
    take(&r, NULL, S * d, "freq_cis", SIZE_MAX); /* the legacy rotary tables: recomputed */
  } else {
    LAYERS(m->li[l].ln1_w, 0, C, "attention_norm");
    LAYERS(m->li[l].ln2_w, 0, C, "ffn_norm");
    take(&r, kx_dec_param(m, m->lnf_w), C, "norm", SIZE_MAX);
    take(&r, embed, V * C, "tok_embeddings", SIZE_MAX);
    QKV(0, C * C, "wq");
    QKV(C * C, KV * C, "wk");
    QKV(C * C + KV * C, KV * C, "wv");
    WO;
    LAYERS(m->li[l].fc_w, 0, Fh * C, "w1");
    LAYERS(m->li[l].fcproj_w, 0, C * Fh, "w2");
    LAYERS(m->li[l].fc3_w, 0, Fh * C, "w3");
  }
  if (!shared) take(&r, kx_dec_param(m, m->unembed), V * C, "the classifier", SIZE_MAX);
#undef LAYERS
#undef QKV
#undef WO
  if (r.rc) {
    kx_dec_free(m);
    return r.rc;
  }
  return 0;
}

int kx_llama2c_load(const char *path, size_t ctx, kx_decoder *m) {
  memset(m, 0, sizeof *m);
  if (kx_input_check(path, "llama2.c checkpoint")) return KX_EIO;
  int fd = open(path, O_RDONLY);
  if (fd < 0) return kx_fail(KX_EIO, "cannot open '%s': %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
    close(fd);
    return kx_fail(KX_EIO, "'%s' is not a regular file", path);
  }
  size_t len = (size_t)st.st_size;
  const unsigned char *buf = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : (const unsigned char *)"";
  close(fd);
  if (buf == MAP_FAILED) return kx_fail(KX_EIO, "cannot map '%s': %s", path, strerror(errno));
  int rc = kx_llama2c_parse(buf, len, ctx, m);
  if (len) munmap((void *)buf, len);
  if (rc) kx_fail_context(rc, "llama2.c checkpoint '%s': ", path);
  return rc;
}
