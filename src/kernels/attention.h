// DeBERTa-v2 disentangled self-attention for one sequence (all heads).
#pragma once
#include <vector>

namespace pairrm::kernels {

struct AttentionShape {
  int length = 0;     // L tokens of this sequence
  int hidden = 0;     // H = heads · head_dim
  int heads = 0;
  int span = 0;       // rel rows per side: index range [0, 2·span)
  float scale = 1.f;  // sqrt(head_dim · (1 + #relative terms))
  bool c2p = true;
  bool p2c = true;
  // The matrix products (Q·Kᵀ, the rel projections, P·V) in bf16 with fp32 accumulation, for the reduced
  // precisions; the relative terms, the softmax and all sums stay fp32.
  bool bf16_products = false;
};

// Scratch floats one thread needs for a sequence of `length` tokens, and the floats shared by all threads.
long attention_scratch_floats(int length, int span);
long attention_shared_floats(int length);

// ctx[L, H] = softmax((Q·Kᵀ + c2p + p2c) / scale) · V per head, where
//   c2p[i, j] = Q_i · PK[idx(i - j)],  p2c[i, j] = K_j · PQ[idx(i - j)],
// Q, K, V: [L, H] with row stride ld; ctx: [L, H] with row stride ld_ctx; PK, PQ: [2·span, H] (the layer's projections of the normalised
// rel_embeddings, bias included); rel_index[d + L - 1] = idx(d). Heads run in parallel (OpenMP); `scratch`
// holds threads × attention_scratch_floats(L, span) + attention_shared_floats(L) floats. Queries run in
// blocks of 64, so memory grows as L·span, never L².
void disentangled_attention(const AttentionShape& s, const float* Q, const float* K, const float* V, int ld,
                            const float* PK, const float* PQ, const int* rel_index, float* ctx, int ld_ctx,
                            float* scratch, int threads);

}  // namespace pairrm::kernels
