#include "kernels/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#if defined(__AVX512F__)
#include <immintrin.h>
// GCC 12's _mm512_reduce_* helpers trip -Wmaybe-uninitialized inside the header itself.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "kernels/gemm.h"

namespace pairrm::kernels {
namespace {

// row[j] = softmax_j(row[j] + c2p_row[rr[j]] + p2c[j·width + rr[j]]): the two relative terms gathered
// through rr (the rel row of each key, already offset by the first projected row), then a stable softmax.
#if defined(__AVX512F__)
// exp(x) for x <= 0 to ~2 ulp: x = n·ln2 + r, |r| <= ln2/2, degree-6 Taylor polynomial, scaled by 2^n.
inline __m512 exp_ps(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);  // ln2 split in two parts
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
  __m512 p = _mm512_set1_ps(1.f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  return _mm512_scalef_ps(p, n);
}

void add_relative_and_softmax(float* row, int L, const int* rr, const float* c2p_row, const float* p2c, int width,
                              bool c2p, bool p2c_on) {
  __m512 vmax = _mm512_set1_ps(-INFINITY);
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i vwidth = _mm512_set1_epi32(width);
  for (int j = 0; j < L; j += 16) {
    const __mmask16 m = L - j >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (L - j)) - 1);
    __m512 v = _mm512_maskz_loadu_ps(m, row + j);
    const __m512i idx = _mm512_maskz_loadu_epi32(m, rr + j);
    if (c2p) v = _mm512_add_ps(v, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, c2p_row, 4));
    if (p2c_on) {
      const __m512i jj = _mm512_add_epi32(_mm512_set1_epi32(j), lane);
      const __m512i at = _mm512_add_epi32(_mm512_mullo_epi32(jj, vwidth), idx);
      v = _mm512_add_ps(v, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, at, p2c, 4));
    }
    _mm512_mask_storeu_ps(row + j, m, v);
    vmax = _mm512_mask_max_ps(vmax, m, vmax, v);
  }
  const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
  __m512 vsum = _mm512_setzero_ps();
  for (int j = 0; j < L; j += 16) {
    const __mmask16 m = L - j >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (L - j)) - 1);
    const __m512 e = exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, row + j), mx));
    _mm512_mask_storeu_ps(row + j, m, e);
    vsum = _mm512_mask_add_ps(vsum, m, vsum, e);
  }
  const __m512 inv = _mm512_set1_ps(1.f / _mm512_reduce_add_ps(vsum));
  for (int j = 0; j < L; j += 16) {
    const __mmask16 m = L - j >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (L - j)) - 1);
    _mm512_mask_storeu_ps(row + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, row + j), inv));
  }
}
#else
void add_relative_and_softmax(float* row, int L, const int* rr, const float* c2p_row, const float* p2c, int width,
                              bool c2p, bool p2c_on) {
  float mx = -INFINITY;
  for (int j = 0; j < L; ++j) {
    if (c2p) row[j] += c2p_row[rr[j]];
    if (p2c_on) row[j] += p2c[static_cast<long>(j) * width + rr[j]];
    mx = std::max(mx, row[j]);
  }
  float sum = 0;
  for (int j = 0; j < L; ++j) sum += row[j] = std::exp(row[j] - mx);
  const float inv = 1.f / sum;
  for (int j = 0; j < L; ++j) row[j] *= inv;
}
#endif

}  // namespace

// Queries are processed in blocks of this many rows: a block's scores [kQueryBlock, L] stay in L2, so no
// [L, L] matrix is ever materialised (16 MB per head at 2048 tokens).
constexpr int kQueryBlock = 64;
constexpr int kMaxHeadDim = 128;

long attention_scratch_floats(int length, int span) {
  const long L = length, W = 2L * span;
  // block scores, block c2p, the head's p2c, and its Q, K, V made contiguous (up to head_dim 128)
  return kQueryBlock * L + kQueryBlock * W + L * W + 3 * L * kMaxHeadDim;
}

long attention_shared_floats(int length) { return 2L * length; }  // the reversed index row

void disentangled_attention(const AttentionShape& s, const float* Q, const float* K, const float* V, int ld,
                            const float* PK, const float* PQ, const int* rel_index, float* ctx, int ld_ctx,
                            float* scratch, int threads) {
  const int L = s.length, d = s.hidden / s.heads;
  if (L == 0) return;
  // Only the rel rows some (i, j) of this sequence reads are projected: idx is monotone in i - j.
  const int lo = std::min(rel_index[0], rel_index[2 * L - 2]);
  const int hi = std::max(rel_index[0], rel_index[2 * L - 2]);
  const int width = hi - lo + 1;
  const float inv_scale = 1.f / s.scale;
  const long per_thread = attention_scratch_floats(L, s.span);
  const int nthreads = std::max(1, std::min(threads, s.heads));

  // reversed[k] = idx(L - 1 - k) - lo, so the keys j of query i read reversed[L - 1 - i + j]: contiguous in j.
  int* reversed = reinterpret_cast<int*>(scratch + per_thread * nthreads);
  for (int k = 0; k < 2 * L - 1; ++k) reversed[k] = rel_index[2 * L - 2 - k] - lo;

#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int h = 0; h < s.heads; ++h) {
    float* scores = scratch + per_thread * omp_get_thread_num();  // [kQueryBlock, L]
    float* c2p = scores + static_cast<long>(kQueryBlock) * L;     // [kQueryBlock, width]
    float* p2c = c2p + static_cast<long>(kQueryBlock) * 2 * s.span;  // [L, width]
    // This head's Q, K, V as contiguous [L, d] matrices: oneDNN's sgemm runs the small attention products
    // markedly faster on them than on the strided [L, 3H] layout (measured 8 vs 12.5 ms for Q·Kᵀ at 2048).
    float* q = p2c + static_cast<long>(L) * 2 * s.span;
    float* k = q + static_cast<long>(L) * d;
    float* v = k + static_cast<long>(L) * d;
    for (int t = 0; t < L; ++t) {
      std::copy_n(Q + static_cast<long>(t) * ld + h * d, d, q + static_cast<long>(t) * d);
      std::copy_n(K + static_cast<long>(t) * ld + h * d, d, k + static_cast<long>(t) * d);
      std::copy_n(V + static_cast<long>(t) * ld + h * d, d, v + static_cast<long>(t) * d);
    }
    const float* pk = PK + static_cast<long>(lo) * s.hidden + h * d;
    // p2c[j, r] = K_j · PQ[lo + r]: every query block reads all of it.
    if (s.p2c) matmul_nt(k, d, PQ + static_cast<long>(lo) * s.hidden + h * d, s.hidden, p2c, width, L, width, d, inv_scale);
    for (int i0 = 0; i0 < L; i0 += kQueryBlock) {
      const int bq = std::min(kQueryBlock, L - i0);
      const float* qb = q + static_cast<long>(i0) * d;
      matmul_nt(qb, d, k, d, scores, L, bq, L, d, inv_scale);
      if (s.c2p) matmul_nt(qb, d, pk, s.hidden, c2p, width, bq, width, d, inv_scale);
      for (int b = 0; b < bq; ++b) {
        const int i = i0 + b;
        add_relative_and_softmax(scores + static_cast<long>(b) * L, L, reversed + (L - 1 - i),
                                 c2p + static_cast<long>(b) * width, p2c, width, s.c2p, s.p2c);
      }
      matmul_nn(scores, L, v, d, ctx + static_cast<long>(i0) * ld_ctx + h * d, ld_ctx, bq, d, L);
    }
  }
}

}  // namespace pairrm::kernels
