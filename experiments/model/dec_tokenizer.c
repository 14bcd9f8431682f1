#include "experiments/model/dec_tokenizer.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "core/kx_input.h"

void kx_tokenizer_free(kx_tokenizer *t) {
  if (t->piece)
    for (size_t i = 0; i < t->V; i++) free(t->piece[i]);
  free(t->piece);
  free(t->len);
  free(t->score);
  free(t->sorted);
  memset(t, 0, sizeof *t);
}

static const kx_tokenizer *sort_key;
static int cmp_piece(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  int c = strcmp(sort_key->piece[x], sort_key->piece[y]);
  return c ? c : (x > y) - (x < y);
}

/* The id of piece s (len bytes), -1 if none; the lowest id among equal pieces. */
static long lookup(const kx_tokenizer *t, const char *s) {
  size_t lo = 0, hi = t->V;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (strcmp(t->piece[t->sorted[mid]], s) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo < t->V && !strcmp(t->piece[t->sorted[lo]], s) ? (long)t->sorted[lo] : -1;
}

static uint32_t u32_at(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int kx_tokenizer_parse(const unsigned char *buf, size_t n, size_t V, kx_tokenizer *t) {
  memset(t, 0, sizeof *t);
  if (n < 4) return kx_fail(KX_EINVAL, "%zu bytes, shorter than the tokenizer's header (4 bytes)", n);
  /* count the entries first: their number must be the model's vocabulary */
  size_t at = 4, count = 0;
  while (at < n) {
    if (n - at < 8)
      return kx_fail(KX_EINVAL, "token %zu is cut off after %zu bytes (truncated file?)", count, n - at);
    uint32_t len = u32_at(buf + at + 4);
    if (len > 65536 || len > n - at - 8)
      return kx_fail(KX_EINVAL, "token %zu declares %d bytes, %s", count, (int32_t)len,
                     (int32_t)len < 0 ? "a negative length" : "more than the file holds (truncated?)");
    at += 8 + len;
    count++;
  }
  if (count != V)
    return kx_fail(KX_EINVAL, "it has %zu tokens but the model's vocabulary has %zu; give the model's own "
                   "tokenizer", count, V);
  t->V = V;
  t->piece = calloc(V, sizeof *t->piece);
  t->len = malloc(V * sizeof *t->len);
  t->score = malloc(V * sizeof *t->score);
  t->sorted = malloc(V * sizeof *t->sorted);
  if (!t->piece || !t->len || !t->score || !t->sorted) {
    kx_tokenizer_free(t);
    return KX_ENOMEM;
  }
  at = 4;
  for (size_t i = 0; i < V; i++) {
    uint32_t sb = u32_at(buf + at), len = u32_at(buf + at + 4);
    memcpy(&t->score[i], &sb, sizeof sb);
    t->len[i] = len;
    t->piece[i] = malloc(len + 1);
    if (!t->piece[i]) {
      kx_tokenizer_free(t);
      return KX_ENOMEM;
    }
    memcpy(t->piece[i], buf + at + 8, len);
    t->piece[i][len] = '\0';
    at += 8 + len;
    int rc = 0;
    if (!isfinite(t->score[i])) rc = kx_fail(KX_EINVAL, "token %zu has the score %g", i, (double)t->score[i]);
    else if (strlen(t->piece[i]) != len) rc = kx_fail(KX_EINVAL, "token %zu holds a NUL byte", i);
    if (rc) {
      kx_tokenizer_free(t);
      return rc;
    }
    t->sorted[i] = i;
  }
  sort_key = t;
  qsort(t->sorted, V, sizeof *t->sorted, cmp_piece);
  return 0;
}

int kx_tokenizer_load(const char *path, size_t V, kx_tokenizer *t) {
  memset(t, 0, sizeof *t);
  FILE *f = kx_input_fopen(path, "tokenizer");
  if (!f) return KX_EIO;
  size_t cap = 1 << 16, n = 0, got;
  unsigned char *buf = malloc(cap);
  while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0)
    if ((n += got) == cap) {
      unsigned char *nb = cap < (1u << 30) ? realloc(buf, cap * 2) : NULL;
      if (!nb) free(buf);
      buf = nb, cap *= 2;
    }
  int err = ferror(f);
  fclose(f);
  int rc;
  if (!buf) rc = kx_fail(KX_ENOMEM, "tokenizer '%s' does not fit in memory", path);
  else if (err) rc = kx_fail(KX_EIO, "error reading tokenizer '%s'", path);
  else rc = kx_tokenizer_parse(buf, n, V, t);
  free(buf);
  if (rc && buf) kx_fail_context(rc, "tokenizer '%s': ", path);
  return rc;
}

int kx_tokenizer_encode(const kx_tokenizer *t, const char *text, int bos, int **ids, size_t *n) {
  size_t len = strlen(text), maxp = 0, k = 0;
  for (size_t i = 0; i < t->V; i++) maxp = t->len[i] > maxp ? t->len[i] : maxp;
  int *out = malloc((len + 2) * sizeof *out);
  char *pair = malloc(2 * maxp + 8);
  if (!out || !pair) {
    free(out), free(pair);
    return KX_ENOMEM;
  }
  int rc = 0;
  if (bos) out[k++] = 1;
  long space = len ? lookup(t, " ") : -1;
  if (space >= 0) out[k++] = (int)space;
  for (size_t i = 0; i < len && !rc;) {
    /* one UTF-8 character: a lead byte and at most three continuation bytes */
    size_t c = 1;
    while (c < 4 && i + c < len && ((unsigned char)text[i + c] & 0xC0) == 0x80) c++;
    char ch[5];
    memcpy(ch, text + i, c);
    ch[c] = '\0';
    long id = lookup(t, ch);
    if (id >= 0) {
      out[k++] = (int)id;
    } else {
      for (size_t b = 0; b < c && !rc; b++) {
        size_t fb = (unsigned char)ch[b] + 3u;
        if (fb >= t->V)
          rc = kx_fail(KX_EINVAL, "the text has the byte 0x%02X at %zu, which the tokenizer has no piece for", (unsigned char)ch[b], i + b);
        else
          out[k++] = (int)fb;
      }
    }
    i += c;
  }
  /* merges, the highest-scoring pair first */
  while (!rc) {
    long best = -1;
    size_t at = 0;
    for (size_t i = 0; i + 1 < k; i++) {
      if (t->len[out[i]] + t->len[out[i + 1]] > 2 * maxp) continue;
      memcpy(pair, t->piece[out[i]], t->len[out[i]]);
      memcpy(pair + t->len[out[i]], t->piece[out[i + 1]], t->len[out[i + 1]] + 1);
      long id = lookup(t, pair);
      if (id >= 0 && (best < 0 || t->score[id] > t->score[best])) best = id, at = i;
    }
    if (best < 0) break;
    out[at] = (int)best;
    memmove(out + at + 1, out + at + 2, (k - at - 2) * sizeof *out);
    k--;
  }
  free(pair);
  if (rc) {
    free(out);
    return rc;
  }
  *ids = out;
  *n = k;
  return 0;
}

const char *kx_tokenizer_decode(const kx_tokenizer *t, int prev, int id, size_t *len) {
  static char byte[2];
  const char *p = t->piece[id];
  *len = t->len[id];
  if (prev == 1 && *len && p[0] == ' ') p++, (*len)--;
  unsigned v;
  char end;
  if (*len == 6 && sscanf(p, "<0x%2X%c", &v, &end) == 2 && end == '>') {
    byte[0] = (char)v;
    *len = 1;
    return byte;
  }
  return p;
}
