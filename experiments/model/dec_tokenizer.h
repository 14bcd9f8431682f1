/* llama2.c's tokenizer file (tokenizer.bin, tok512.bin): int32
 * max_token_length, then per token id i: float32 score, int32 byte length,
 * the piece's bytes.  The file does not say how many tokens it has: they
 * run to its end, and must be the model's vocabulary size.
 *
 * Encoding as llama2.c's run.c does (SentencePiece BPE with byte
 * fallback): the piece " " first when the text is not empty; each UTF-8
 * character its piece, or, when it has none, one token per byte (id =
 * byte + 3, the pieces <0x00> .. <0xFF> after <unk>, <s>, </s>); then,
 * while any two neighbours concatenate to a piece, the neighbours whose
 * piece has the highest score (the first such pair on a tie) are merged.
 * Decoding: a piece "<0xHH>" is that byte, and after BOS (id 1) a leading
 * space is dropped. */
#ifndef KX_DEC_TOKENIZER_H
#define KX_DEC_TOKENIZER_H

#include <stddef.h>

typedef struct {
  size_t V;
  char **piece;   /* NUL-terminated (a piece holds no NUL byte) */
  size_t *len;
  float *score;
  size_t *sorted; /* ids in the byte order of their pieces, for lookup */
} kx_tokenizer;

/* Parses a tokenizer file held in memory for a model of V tokens; a
 * message names the problem (truncated, a negative or huge length, a
 * non-finite score, a NUL inside a piece, another number of tokens). */
int kx_tokenizer_parse(const unsigned char *buf, size_t n, size_t V, kx_tokenizer *t);
int kx_tokenizer_load(const char *path, size_t V, kx_tokenizer *t);
void kx_tokenizer_free(kx_tokenizer *t);

/* text -> ids (malloc'd, *n of them), BOS first when bos. */
int kx_tokenizer_encode(const kx_tokenizer *t, const char *text, int bos, int **ids, size_t *n);
/* The bytes of token `id` following `prev` (see above), *len of them. */
const char *kx_tokenizer_decode(const kx_tokenizer *t, int prev, int id, size_t *len);

#endif
