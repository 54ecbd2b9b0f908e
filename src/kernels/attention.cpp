#include "kernels/attention.h"

#include <omp.h>

#include <algorithm>

#include "kernels/elementwise.h"
#include "kernels/gemm.h"

namespace pairrm::kernels {

long attention_scratch_floats(int length, int span) {
  const long L = length;
  return L * L + 2 * L * 2 * span;
}

void disentangled_attention(const AttentionShape& s, const float* Q, const float* K, const float* V, int ld,
                            const float* PK, const float* PQ, const int* rel_index, float* ctx, float* scratch,
                            int threads) {
  const int L = s.length, d = s.hidden / s.heads;
  if (L == 0) return;
  // Only the rel rows some (i, j) of this sequence reads are projected: idx is monotone in i - j.
  const int lo = std::min(rel_index[0], rel_index[2 * L - 2]);
  const int hi = std::max(rel_index[0], rel_index[2 * L - 2]);
  const int width = hi - lo + 1;
  const float inv_scale = 1.f / s.scale;
  const long per_thread = attention_scratch_floats(L, s.span);
  const int nthreads = std::max(1, std::min(threads, s.heads));

#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int h = 0; h < s.heads; ++h) {
    float* scores = scratch + per_thread * omp_get_thread_num();
    float* c2p = scores + static_cast<long>(L) * L;
    float* p2c = c2p + static_cast<long>(L) * 2 * s.span;
    const float* q = Q + h * d;
    const float* k = K + h * d;
    const float* v = V + h * d;
    matmul_nt(q, ld, k, ld, scores, L, L, L, d, inv_scale);
    if (s.c2p) matmul_nt(q, ld, PK + static_cast<long>(lo) * s.hidden + h * d, s.hidden, c2p, width, L, width, d, inv_scale);
    if (s.p2c) matmul_nt(k, ld, PQ + static_cast<long>(lo) * s.hidden + h * d, s.hidden, p2c, width, L, width, d, inv_scale);
    for (int i = 0; i < L; ++i) {
      float* row = scores + static_cast<long>(i) * L;
      const int* idx_i = rel_index + i + L - 1;  // idx_i[-j] = idx(i - j)
      if (s.c2p) {
        const float* c = c2p + static_cast<long>(i) * width - lo;
        for (int j = 0; j < L; ++j) row[j] += c[idx_i[-j]];
      }
      if (s.p2c) {
        for (int j = 0; j < L; ++j) row[j] += p2c[static_cast<long>(j) * width + idx_i[-j] - lo];
      }
    }
    softmax_rows(scores, L, L, L);
    matmul_nn(scores, L, v, ld, ctx + h * d, ld, L, d, L);
  }
}

}  // namespace pairrm::kernels
