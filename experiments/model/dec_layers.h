/* Layers of the decoder, llm.c style: each layer is a forward and a backward
 * function on flat row-major float32 arrays.  N = B*T rows (tokens).
 *
 * Conventions for every backward function: gradients are ACCUMULATED (+=)
 * into every output (parameter gradients and input gradients alike), so the
 * caller zeroes them once; this is what the parallel residual needs (two
 * branches add into the same input gradient).
 *
 * Threading: OpenBLAS is kept at one thread and the matmuls are split over
 * OpenMP threads by rows (or columns), so exactly one thread pool runs at a
 * time and nothing oversubscribes the cores.  Every reduction has a fixed
 * order that does not depend on scheduling, so results are bit-reproducible
 * for a given thread count. */
#ifndef KX_DEC_LAYERS_H
#define KX_DEC_LAYERS_H

#include <stddef.h>

/* Sets OpenBLAS to one thread (see above); call once before using layers. */
void kx_dec_threads_init(void);
/* The alternative scheme, for measurement only (decoder_bench
 * --blas-threads N): OpenBLAS runs each linear-layer matmul with its own N
 * pthreads, called from serial code, and OpenMP does the rest. */
void kx_dec_threads_blas(int n);

/* Time spent inside kx_matmul_forward and kx_matmul_backward (their BLAS
 * calls, seconds) since the last reset: the benchmark's "share of time in
 * matmuls". */
double kx_dec_matmul_seconds(void);
void kx_dec_matmul_reset(void);

/* out (N,C) = wte[tokens[n]] ; wte (V,C), tokens (N) */
void kx_embed_forward(float *out, const int *tokens, const float *wte, size_t N, size_t C);
/* dwte (V,C) += scatter of dout (N,C) */
void kx_embed_backward(float *dwte, const float *dout, const int *tokens, size_t N, size_t C, size_t V);

/* out (N,C) = (inp - mean)*rstd * w + b ; mean, rstd (N) kept for backward */
void kx_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                          const float *b, size_t N, size_t C, float eps);
/* dinp (N,C), dw (C), db (C) += from dout (N,C) */
void kx_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                           const float *w, const float *mean, const float *rstd, size_t N, size_t C);

/* RMSNorm (llama): out (N,C) = w * x / sqrt(mean(x^2) + eps); rstd (N) kept. */
void kx_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, size_t N, size_t C, float eps);
/* dinp (N,C), dw (C) += from dout (N,C). */
void kx_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                         const float *rstd, size_t N, size_t C);

/* SwiGLU gate (llama's feed-forward): out (n) = silu(a) * b, silu(a) = a sigmoid(a). */
void kx_swiglu_forward(float *out, const float *a, const float *b, size_t n);
/* da, db (n) += from dout (n). */
void kx_swiglu_backward(float *da, float *db, const float *a, const float *b, const float *dout, size_t n);

/* out (N,OC) = inp (N,C) @ W^T + bias ; W (OC,C) like torch.nn.Linear, bias (OC) or NULL */
void kx_matmul_forward(float *out, const float *inp, const float *W, const float *bias, size_t N,
                       size_t C, size_t OC);
/* dinp (N,C) += dout @ W ; dW (OC,C) += dout^T @ inp ; dbias (OC) += column sums of dout.
 * dinp or dbias may be NULL (not needed). */
void kx_matmul_backward(float *dinp, float *dW, float *dbias, const float *dout, const float *inp,
                        const float *W, size_t N, size_t C, size_t OC);

/* out (n) = x * Phi(x), exact erf GELU (torch.nn.functional.gelu default) */
void kx_gelu_forward(float *out, const float *inp, size_t n);
/* dinp (n) += dout * GELU'(inp) */
void kx_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);

/* Rotary embedding (GPT-NeoX "rotate_half" layout) of the first r dims of
 * one head vector x (d) at position t: with h = r/2 and i < h,
 *   y_i = x_i cos - x_{i+h} sin,   y_{i+h} = x_{i+h} cos + x_i sin,
 * angle t * base^(-2i/r).  cos/sin tables (T, r/2).  In place. */
void kx_rope_forward(float *x, const float *cos_t, const float *sin_t, size_t t, size_t r);
/* Transpose rotation of a gradient (d) in place. */
void kx_rope_backward(float *dx, const float *cos_t, const float *sin_t, size_t t, size_t r);

/* Rotary embedding on interleaved pairs (llama2.c): pair i = (x_2i, x_2i+1)
 * of the first r dims, y_2i = x_2i cos - x_2i+1 sin, y_2i+1 = x_2i sin +
 * x_2i+1 cos, same angles and tables as kx_rope_forward.  In place. */
void kx_rope_pairs_forward(float *x, const float *cos_t, const float *sin_t, size_t t, size_t r);
void kx_rope_pairs_backward(float *dx, const float *cos_t, const float *sin_t, size_t t, size_t r);

/* losses (N) = -log softmax(logits (N,V))[targets]; probs (N,V) kept.
 * Returns the mean loss, accumulated in double in index order. */
double kx_crossentropy_forward(float *losses, float *probs, const float *logits, const int *targets,
                               size_t N, size_t V);
/* dlogits (N,V) += (probs - onehot(targets)) * scale  (scale = 1/N for the mean) */
void kx_crossentropy_backward(float *dlogits, const float *probs, const int *targets, size_t N,
                              size_t V, float scale);

#endif
