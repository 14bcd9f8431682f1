#include "experiments/model/dec_data.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/kx_atomic.h"
#include "core/kx_error.h"
#include "core/kx_fs.h"
#include "core/kx_input.h"
#include "core/kx_seed.h"

/* Decodes one UTF-8 character at s[*i] (n bytes total); -1 if malformed. */
static long utf8_next(const unsigned char *s, size_t n, size_t *i) {
  unsigned c = s[*i];
  size_t len;
  uint32_t cp;
  if (c < 0x80) {
    (*i)++;
    return c;
  } else if ((c & 0xE0) == 0xC0) {
    len = 2, cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, cp = c & 0x07;
  } else {
    return -1;
  }
  if (*i + len > n) return -1;
  for (size_t k = 1; k < len; k++) {
    if ((s[*i + k] & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (s[*i + k] & 0x3F);
  }
  static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
  *i += len;
  return (long)cp;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

int kx_dec_vocab_id(const kx_dec_vocab *v, uint32_t cp) {
  size_t lo = 0, hi = v->V;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (v->vocab[mid] < cp)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < v->V && v->vocab[lo] == cp ? (int)lo : -1;
}

int kx_dec_vocab_copy(kx_dec_vocab *dst, const kx_dec_vocab *src) {
  dst->vocab = kx_malloc(src->V * sizeof(uint32_t));
  if (!dst->vocab) return KX_ENOMEM;
  memcpy(dst->vocab, src->vocab, src->V * sizeof(uint32_t));
  dst->V = src->V;
  dst->ids = src->ids;
  return 0;
}

const char *kx_dec_unit(const kx_dec_vocab *v) { return v->ids ? "token" : "char"; }

void kx_dec_vocab_free(kx_dec_vocab *v) {
  free(v->vocab);
  v->vocab = NULL;
  v->V = 0;
}

static void describe_cp(uint32_t cp, char *buf, size_t n) {
  if (cp >= 0x20 && cp < 0x7F)
    snprintf(buf, n, "'%c'", (char)cp);
  else
    snprintf(buf, n, "U+%04X", (unsigned)cp);
}

int kx_dec_data_load(const char *path, const kx_dec_vocab *vocab, kx_dec_data *d) {
  memset(d, 0, sizeof *d);
  FILE *f = kx_input_fopen(path, "text file");
  if (!f) return KX_EIO;
  size_t cap = 1 << 20, n = 0;
  unsigned char *buf = kx_malloc(cap);
  if (!buf) {
    fclose(f);
    return KX_ENOMEM;
  }
  size_t got;
  while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) {
      unsigned char *nb = realloc(buf, cap * 2);
      if (!nb) {
        free(buf);
        fclose(f);
        return kx_fail(KX_ENOMEM, "out of memory reading '%s'", path);
      }
      buf = nb, cap *= 2;
    }
  }
  int err = ferror(f);
  fclose(f);
  if (err) {
    free(buf);
    return kx_fail(KX_EIO, "error reading '%s'", path);
  }
  if (n == 0) {
    free(buf);
    return kx_fail(KX_EINVAL, "the text file '%s' is empty; give a UTF-8 text", path);
  }
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ buf[i]) * 0x100000001b3ULL;
  d->hash = h;
  if (vocab && vocab->ids) {
    int rc = kx_dec_tokens_parse(buf, n, vocab->V, path, d);
    free(buf);
    if (!rc) d->hash = h;
    return rc;
  }
  /* Code points, and for each whether it belongs to a validation line. */
  uint32_t *cps = kx_malloc((n + 1) * sizeof *cps);
  unsigned char *is_val = kx_malloc(n + 1);
  if (!cps || !is_val) {
    free(buf), free(cps), free(is_val);
    return KX_ENOMEM;
  }
  size_t m = 0, line = 1;
  for (size_t i = 0; i < n;) {
    size_t at = i;
    long cp = utf8_next(buf, n, &i);
    if (cp < 0) {
      free(buf), free(cps), free(is_val);
      return kx_fail(KX_EINVAL, "'%s' is not valid UTF-8 (byte offset %zu); give a UTF-8 text file", path, at);
    }
    is_val[m] = line % KX_DEC_VAL_EVERY == 0;
    cps[m++] = (uint32_t)cp;
    if (cp == '\n') line++;
  }
  free(buf);
  int rc = 0;
  if (vocab) {
    rc = kx_dec_vocab_copy(&d->vocab, vocab);
  } else {
    uint32_t *sorted = kx_malloc((m ? m : 1) * sizeof *sorted);
    if (!sorted) rc = KX_ENOMEM;
    else {
      memcpy(sorted, cps, m * sizeof *sorted);
      qsort(sorted, m, sizeof *sorted, cmp_u32);
      size_t V = 0;
      for (size_t i = 0; i < m; i++)
        if (!V || sorted[i] != sorted[V - 1]) sorted[V++] = sorted[i];
      d->vocab.vocab = sorted;
      d->vocab.V = V;
    }
  }
  if (!rc) {
    d->train = kx_malloc((m + 1) * sizeof(int));
    d->val = kx_malloc((m + 1) * sizeof(int));
    if (!d->train || !d->val) rc = KX_ENOMEM;
  }
  for (size_t i = 0; !rc && i < m; i++) {
    int id = kx_dec_vocab_id(&d->vocab, cps[i]);
    if (id < 0) {
      char what[16];
      describe_cp(cps[i], what, sizeof what);
      rc = kx_fail(KX_EINVAL, "character %s of '%s' is not in the model's vocabulary", what, path);
      break;
    }
    if (is_val[i])
      d->val[d->n_val++] = id;
    else
      d->train[d->n_train++] = id;
  }
  free(cps);
  free(is_val);
  if (rc) kx_dec_data_free(d);
  return rc;
}

void kx_dec_data_free(kx_dec_data *d) {
  kx_dec_vocab_free(&d->vocab);
  free(d->train);
  free(d->val);
  memset(d, 0, sizeof *d);
}

int kx_dec_encode(const kx_dec_vocab *v, const char *s, int **ids, size_t *n) {
  size_t len = strlen(s), i = 0, k = 0;
  int *out = kx_malloc((len + 1) * sizeof(int));
  if (!out) return KX_ENOMEM;
  while (i < len) {
    size_t at = i;
    long cp = utf8_next((const unsigned char *)s, len, &i);
    if (cp < 0) {
      free(out);
      return kx_fail(KX_EINVAL, "text is not valid UTF-8 at byte %zu", at);
    }
    int id = kx_dec_vocab_id(v, (uint32_t)cp);
    if (id < 0) {
      char what[16];
      describe_cp((uint32_t)cp, what, sizeof what);
      free(out);
      return kx_fail(KX_EINVAL, "character %s (byte %zu) is not in the model's vocabulary", what, at);
    }
    out[k++] = id;
  }
  *ids = out;
  *n = k;
  return 0;
}

size_t kx_dec_decode(const kx_dec_vocab *v, int id, char *buf) {
  uint32_t c = v->vocab[id];
  if (c < 0x80) {
    buf[0] = (char)c;
    return 1;
  } else if (c < 0x800) {
    buf[0] = (char)(0xC0 | (c >> 6)), buf[1] = (char)(0x80 | (c & 0x3F));
    return 2;
  } else if (c < 0x10000) {
    buf[0] = (char)(0xE0 | (c >> 12)), buf[1] = (char)(0x80 | ((c >> 6) & 0x3F));
    buf[2] = (char)(0x80 | (c & 0x3F));
    return 3;
  }
  buf[0] = (char)(0xF0 | (c >> 18)), buf[1] = (char)(0x80 | ((c >> 12) & 0x3F));
  buf[2] = (char)(0x80 | ((c >> 6) & 0x3F)), buf[3] = (char)(0x80 | (c & 0x3F));
  return 4;
}

size_t kx_dec_story_start(const int *stream, size_t s) {
  for (size_t i = s + 1; i-- > 0;)
    if (stream[i] == KX_DEC_BOS) return i;
  return s;
}

void kx_dec_batch(const int *stream, size_t n, size_t B, size_t T, uint64_t seed, uint64_t step, int stories, int *x,
                  int *y) {
  size_t span = n - T; /* starts 0 .. n-T-1 leave room for the shifted target; moving back keeps that */
  for (size_t b = 0; b < B; b++) {
    size_t start = kx_dec_window_start(stream, (size_t)(kx_seed_derive(seed, step * B + b) % span), stories);
    memcpy(x + b * T, stream + start, T * sizeof(int));
    memcpy(y + b * T, stream + start + 1, T * sizeof(int));
  }
}

void kx_dec_baselines(const kx_dec_data *d, double *unigram, double *bigram) {
  size_t V = d->vocab.V;
  double *uni = calloc(V, sizeof *uni), *bi = calloc(V * V, sizeof *bi), *row = calloc(V, sizeof *row);
  if (!uni || !bi || !row) {
    *unigram = *bigram = NAN;
    free(uni), free(bi), free(row);
    return;
  }
  for (size_t i = 0; i < d->n_train; i++) uni[d->train[i]] += 1.0;
  for (size_t i = 1; i < d->n_train; i++) {
    bi[(size_t)d->train[i - 1] * V + d->train[i]] += 1.0;
    row[d->train[i - 1]] += 1.0;
  }
  double nu = 0.0, nb = 0.0;
  for (size_t i = 0; i < d->n_val; i++) {
    int c = d->val[i];
    double pu = (uni[c] + 1.0) / ((double)d->n_train + (double)V);
    nu -= log(pu);
    if (i == 0)
      nb -= log(pu);
    else {
      int a = d->val[i - 1];
      nb -= log((bi[(size_t)a * V + c] + 1.0) / (row[a] + (double)V));
    }
  }
  *unigram = d->n_val ? nu / (double)d->n_val : NAN;
  *bigram = d->n_val ? nb / (double)d->n_val : NAN;
  free(uni), free(bi), free(row);
}

int kx_dec_default_corpus(char **path, int *generated) {
  *generated = 0;
  const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  char dir[4096];
  if (xdg && *xdg)
    snprintf(dir, sizeof dir, "%s/kapprox", xdg);
  else if (home && *home)
    snprintf(dir, sizeof dir, "%s/.cache/kapprox", home);
  else
    return kx_fail(KX_EIO, "neither XDG_CACHE_HOME nor HOME is set; give the text with --text FILE");
  size_t plen = strlen(dir) + 16;
  char *p = kx_malloc(plen);
  if (!p) return KX_ENOMEM;
  snprintf(p, plen, "%s/kjv.txt", dir);
  struct stat st;
  if (stat(p, &st) == 0) {
    *path = p;
    return 0;
  }
  if (kx_mkdir_p(dir)) {
    char why[512];
    snprintf(why, sizeof why, "%s", kx_error_message());
    free(p);
    return kx_fail(KX_EIO, "%s; give the text with --text FILE", why);
  }
  kx_atomic_file af;
  if (kx_atomic_open(&af, p)) {
    free(p);
    return kx_fail_context(KX_EIO, "building the default corpus: ");
  }
  FILE *in = popen("bible -f 'Gen1:1-Rev22:21' 2>/dev/null", "r"), *out = af.fp;
  if (!in) {
    kx_atomic_abort(&af);
    free(p);
    return kx_fail(KX_EIO, "cannot run 'bible' to build the default corpus; install it (apt-get install "
                           "bible-kjv) or give a text with --text FILE");
  }
  /* Same as data/make_corpus.sh: drop everything up to the first space. */
  char *line = NULL;
  size_t cap = 0, lines = 0;
  ssize_t len;
  while ((len = getline(&line, &cap, in)) > 0) {
    char *sp = strchr(line, ' ');
    const char *text = sp ? sp + 1 : line;
    fputs(text, out);
    lines++;
  }
  free(line);
  int status = pclose(in);
  if (status != 0 || lines != 31102) {
    kx_atomic_abort(&af);
    free(p);
    return kx_fail(KX_EIO, "building the KJV corpus with 'bible' failed (%zu verses, expected 31102); install "
                           "bible-kjv or give a text with --text FILE", lines);
  }
  if (kx_atomic_commit(&af)) {
    free(p);
    return kx_fail_context(KX_EIO, "saving the KJV corpus in '%s': ", dir);
  }
  *generated = 1;
  *path = p;
  return 0;
}

int kx_dec_parse_ids(const char *s, size_t V, int **ids, size_t *n) {
  *ids = NULL;
  *n = 0;
  size_t cap = 0, count = 0;
  int *out = NULL;
  for (const char *p = s;;) {
    while (*p == ',' || *p == ' ') p++;
    if (!*p) break;
    char *end;
    unsigned long long x = *p >= '0' && *p <= '9' ? strtoull(p, &end, 10) : 0;
    if (*p < '0' || *p > '9' || (*end && *end != ',' && *end != ' ') || x >= V) {
      free(out);
      return kx_fail(KX_EINVAL, "'%.*s' is not a token id of this model (a whole number from 0 to %zu)",
                     (int)strcspn(p, ", "), p, V - 1);
    }
    if (kx_reserve(&out, &cap, count, sizeof *out, 16, "the token ids")) {
      free(out);
      return KX_ENOMEM;
    }
    out[count++] = (int)x;
    p = end;
  }
  if (!count) return kx_fail(KX_EINVAL, "no token ids in '%s'", s);
  *ids = out;
  *n = count;
  return 0;
}

int kx_dec_tokens_parse(const unsigned char *buf, size_t n, size_t V, const char *name, kx_dec_data *d) {
  memset(d, 0, sizeof *d);
  if (n == 0) return kx_fail(KX_EINVAL, "the token file '%s' is empty", name);
  if (n % 2)
    return kx_fail(KX_EINVAL, "the token file '%s' has an odd length (%zu bytes); a token file holds uint16 token "
                   "ids", name, n);
  size_t m = n / 2, pieces = 0;
  for (size_t i = 0; i < m; i++) {
    unsigned id = buf[2 * i] | (unsigned)buf[2 * i + 1] << 8;
    if (id >= V)
      return kx_fail(KX_EINVAL, "token %zu of '%s' is id %u, beyond the model's vocabulary of %zu", i, name, id, V);
    pieces += id == 1 || i == 0;
  }
  d->vocab.vocab = kx_malloc(V * sizeof(uint32_t));
  d->train = kx_malloc(m * sizeof(int));
  d->val = kx_malloc(m * sizeof(int));
  if (!d->vocab.vocab || !d->train || !d->val) {
    kx_dec_data_free(d);
    return KX_ENOMEM;
  }
  d->vocab.V = V, d->vocab.ids = 1;
  for (size_t i = 0; i < V; i++) d->vocab.vocab[i] = (uint32_t)i;
  size_t piece = 0;
  for (size_t i = 0; i < m; i++) {
    int id = buf[2 * i] | buf[2 * i + 1] << 8;
    piece += id == 1 || i == 0;
    int val = pieces >= KX_DEC_VAL_EVERY ? piece % KX_DEC_VAL_EVERY == 0 : i >= m - m / KX_DEC_VAL_EVERY;
    if (val)
      d->val[d->n_val++] = id;
    else
      d->train[d->n_train++] = id;
  }
  return 0;
}

int kx_dec_tokens_write(const char *path, const int *ids, size_t n) {
  unsigned char *b = kx_malloc(2 * (n ? n : 1));
  if (!b) return KX_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] > 65535) {
      free(b);
      return kx_fail(KX_EINVAL, "token id %d does not fit a token file (uint16)", ids[i]);
    }
    b[2 * i] = (unsigned char)(ids[i] & 0xff), b[2 * i + 1] = (unsigned char)(ids[i] >> 8);
  }
  kx_atomic_file f;
  int rc = kx_atomic_open(&f, path);
  if (!rc && fwrite(b, 1, 2 * n, f.fp) != 2 * n) {
    kx_atomic_abort(&f);
    rc = kx_fail(KX_EIO, "cannot write the token file '%s'", path);
  } else if (!rc) {
    rc = kx_atomic_commit(&f);
  }
  free(b);
  return rc;
}
