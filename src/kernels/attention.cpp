#include "kernels/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>

#if defined(__AVX512F__)
#include <immintrin.h>
// GCC 12's _mm512_reduce_* helpers trip -Wmaybe-uninitialized inside the header itself.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "kernels/panel_gemm.h"

namespace pairrm::kernels {
namespace {

// For the rows of one query block: row_b[j] += c2p[b, rr_b[j]] + p2c[j, rr_b[j]], rr_b = reversed + (L - 1 - i)
// the rel row of each key (already offset by the first projected row). Keys run in tiles of kKeyTile, all
// rows of the block per tile: the p2c rows of a tile (read at <= block-size neighbouring columns) stay in L1
// instead of every query row walking all L rows of p2c (4 MB per head at 2048 tokens) through the cache.
constexpr int kKeyTile = 64;

#if defined(__AVX512F__)
inline __mmask16 tail_mask(int n) { return n >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << n) - 1); }

void add_relative_terms(float* scores, int L, int rows, int i0, const int* reversed, const float* c2p, const float* p2c,
                        int width, bool c2p_on, bool p2c_on) {
  if (!c2p_on && !p2c_on) return;
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i vwidth = _mm512_set1_epi32(width);
  for (int j0 = 0; j0 < L; j0 += kKeyTile) {
    const int j1 = std::min(L, j0 + kKeyTile);
    for (int b = 0; b < rows; ++b) {
      float* row = scores + static_cast<long>(b) * L;
      const int* rr = reversed + (L - 1 - (i0 + b));
      const float* c2p_row = c2p + static_cast<long>(b) * width;
      for (int j = j0; j < j1; j += 16) {
        const __mmask16 m = tail_mask(j1 - j);
        __m512 v = _mm512_maskz_loadu_ps(m, row + j);
        const __m512i idx = _mm512_maskz_loadu_epi32(m, rr + j);
        if (c2p_on) v = _mm512_add_ps(v, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, c2p_row, 4));
        if (p2c_on) {
          const __m512i jj = _mm512_add_epi32(_mm512_set1_epi32(j), lane);
          const __m512i at = _mm512_add_epi32(_mm512_mullo_epi32(jj, vwidth), idx);
          v = _mm512_add_ps(v, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, at, p2c, 4));
        }
        _mm512_mask_storeu_ps(row + j, m, v);
      }
    }
  }
}

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

// row = softmax(row), numerically stable (max subtracted).
void softmax_row(float* row, int L) {
  __m512 vmax = _mm512_set1_ps(-INFINITY);
  for (int j = 0; j < L; j += 16) {
    const __mmask16 m = tail_mask(L - j);
    vmax = _mm512_mask_max_ps(vmax, m, vmax, _mm512_maskz_loadu_ps(m, row + j));
  }
  const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
  __m512 vsum = _mm512_setzero_ps();
  for (int j = 0; j < L; j += 16) {
    const __mmask16 m = tail_mask(L - j);
    const __m512 e = exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, row + j), mx));
    _mm512_mask_storeu_ps(row + j, m, e);
    vsum = _mm512_mask_add_ps(vsum, m, vsum, e);
  }
  const __m512 inv = _mm512_set1_ps(1.f / _mm512_reduce_add_ps(vsum));
  for (int j = 0; j < L; j += 16) {
    const __mmask16 m = tail_mask(L - j);
    _mm512_mask_storeu_ps(row + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, row + j), inv));
  }
}
#else
void add_relative_terms(float* scores, int L, int rows, int i0, const int* reversed, const float* c2p, const float* p2c,
                        int width, bool c2p_on, bool p2c_on) {
  for (int j0 = 0; j0 < L; j0 += kKeyTile)
    for (int b = 0; b < rows; ++b) {
      float* row = scores + static_cast<long>(b) * L;
      const int* rr = reversed + (L - 1 - (i0 + b));
      for (int j = j0; j < std::min(L, j0 + kKeyTile); ++j) {
        if (c2p_on) row[j] += c2p[static_cast<long>(b) * width + rr[j]];
        if (p2c_on) row[j] += p2c[static_cast<long>(j) * width + rr[j]];
      }
    }
}

void softmax_row(float* row, int L) {
  float mx = -INFINITY;
  for (int j = 0; j < L; ++j) mx = std::max(mx, row[j]);
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
constexpr long kAlign = 16;  // floats: 64 bytes, for the packed panels' aligned loads

namespace {

long aligned(long floats) { return (floats + kAlign - 1) / kAlign * kAlign; }

// One thread's scratch, carved in 64-byte aligned pieces.
struct HeadScratch {
  float *scores, *c2p, *p2c, *keys_t, *values, *pos_keys_t, *pos_queries_t;
  HeadScratch(float* base, int L, int span) {
    float* at = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(base) + 63) & ~uintptr_t{63});
    const long W = 2L * span;
    auto take = [&](long floats) {
      float* p = at;
      at += aligned(floats);
      return p;
    };
    scores = take(kQueryBlock * static_cast<long>(L));
    c2p = take(kQueryBlock * W);
    p2c = take(L * W);
    keys_t = take(packed_panels_floats(L, kMaxHeadDim));
    values = take(packed_panels_floats(kMaxHeadDim, L));
    pos_keys_t = take(packed_panels_floats(static_cast<int>(W), kMaxHeadDim));
    pos_queries_t = take(packed_panels_floats(static_cast<int>(W), kMaxHeadDim));
  }
};

}  // namespace

long attention_scratch_floats(int length, int span) {
  const long L = length, W = 2L * span;
  return aligned(kQueryBlock * L) + aligned(kQueryBlock * W) + aligned(L * W) +
         aligned(packed_panels_floats(length, kMaxHeadDim)) + aligned(packed_panels_floats(kMaxHeadDim, length)) +
         2 * aligned(packed_panels_floats(static_cast<int>(W), kMaxHeadDim)) + kAlign;
}

long attention_shared_floats(int length) { return 2L * length; }  // the reversed index row

void disentangled_attention(const AttentionShape& s, const float* Q, const float* K, const float* V, int ld,
                            const float* PK, const float* PQ, const int* rel_index, float* ctx, int ld_ctx,
                            float* scratch, int threads) {
  const int L = s.length, d = s.hidden / s.heads;
  if (L == 0) return;
  if (d > kMaxHeadDim) throw std::invalid_argument("head_dim over 128 is not supported");
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
    HeadScratch w(scratch + per_thread * omp_get_thread_num(), L, s.span);
    // Q and K rows are read in place (A operands); Kᵀ, V and the two rel projections are packed once per
    // head into panels that every query block then streams.
    const float* q = Q + h * d;
    const float* k = K + h * d;
    pack_transposed(k, ld, L, d, w.keys_t);
    pack_plain(V + h * d, ld, L, d, w.values);
    if (s.c2p) pack_transposed(PK + static_cast<long>(lo) * s.hidden + h * d, s.hidden, width, d, w.pos_keys_t);
    // p2c[j, r] = K_j · PQ[lo + r]: every query block reads all of it.
    if (s.p2c) {
      pack_transposed(PQ + static_cast<long>(lo) * s.hidden + h * d, s.hidden, width, d, w.pos_queries_t);
      panel_gemm(k, ld, w.pos_queries_t, w.p2c, width, L, width, d, inv_scale);
    }
    for (int i0 = 0; i0 < L; i0 += kQueryBlock) {
      const int bq = std::min(kQueryBlock, L - i0);
      const float* qb = q + static_cast<long>(i0) * ld;
      panel_gemm(qb, ld, w.keys_t, w.scores, L, bq, L, d, inv_scale);
      if (s.c2p) panel_gemm(qb, ld, w.pos_keys_t, w.c2p, width, bq, width, d, inv_scale);
      add_relative_terms(w.scores, L, bq, i0, reversed, w.c2p, w.p2c, width, s.c2p, s.p2c);
      for (int b = 0; b < bq; ++b) softmax_row(w.scores + static_cast<long>(b) * L, L);
      panel_gemm(w.scores, L, w.values, ctx + static_cast<long>(i0) * ld_ctx + h * d, ld_ctx, bq, d, L, 1.f);
    }
  }
}

}  // namespace pairrm::kernels
