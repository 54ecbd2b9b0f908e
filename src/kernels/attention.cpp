// DeBERTa's disentangled attention, compiled once per ISA level (kernels/isa.h) into the namespace
// PAIRRM_ISA_NS: AVX-512 and AVX2 paths for the relative terms and the softmax, portable C++ for the generic
// level; the products run on the same level's panel_gemm.
#include "kernels/isa_kernels.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>

#if defined(__AVX2__)
#include <immintrin.h>
// GCC 12's _mm512_reduce_* helpers trip -Wmaybe-uninitialized inside the header itself.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "kernels/bf16.h"
#include "kernels/panel_gemm.h"

namespace pairrm::kernels::PAIRRM_ISA_NS {
namespace {

// For the rows of one query block: row_b[j] += c2p[b, rr_b[j]] + p2cT[rr_b[j], j], rr_b = reversed + (L - 1 - i)
// the rel row of each key (already offset by the first projected row). Keys run in tiles of kKeyTile, all
// rows of the block per tile, so the p2cT entries a tile reads stay in L1 (a query row walking all of p2c
// once per row missed the cache on every key at 2048 tokens).
//
// rr is monotone with steps of 0 or 1, so a run of kRun keys (one vector) is often one of two easy shapes
// (kind[k] for the run starting at reversed[k]): constant (far keys, where the rel index is clamped: a
// broadcast of c2p and a contiguous row of p2cT) or a unit staircase (the linear band |i - j| <= bucket/2:
// c2p read backwards). Only the other runs gather. Every path adds the same two values in the same order:
// the same bits.
constexpr int kKeyTile = 64;
#if defined(__AVX512F__)
constexpr int kRun = 16;
#else
constexpr int kRun = 8;
#endif
enum RunKind : unsigned char { kGather = 0, kConstant = 1, kStaircase = 2 };

void classify_runs(const int* reversed, int count, unsigned char* kind) {
  constexpr int last = kRun - 1;
  for (int k = 0; k < count; ++k) {
    kind[k] = kGather;
    if (k + last >= count) continue;
    if (reversed[k] == reversed[k + last]) {
      kind[k] = kConstant;  // monotone: equal ends, equal throughout
    } else if (reversed[k] - reversed[k + last] == last) {
      bool unit = true;
      for (int t = 0; t < last && unit; ++t) unit = reversed[k + t] - reversed[k + t + 1] == 1;
      if (unit) kind[k] = kStaircase;
    }
  }
}

#if defined(__AVX512F__)
inline __mmask16 tail_mask(int n) { return n >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << n) - 1); }

void add_relative_terms(float* scores, int L, int rows, int i0, const int* reversed, const unsigned char* kind,
                        const float* c2p, const float* p2c_t, int width, bool c2p_on, bool p2c_on) {
  if (!c2p_on && !p2c_on) return;
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i backwards = _mm512_setr_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  const __m512i vL = _mm512_set1_epi32(L);
  for (int j0 = 0; j0 < L; j0 += kKeyTile) {
    const int j1 = std::min(L, j0 + kKeyTile);
    for (int b = 0; b < rows; ++b) {
      float* row = scores + static_cast<long>(b) * L;
      const int first = L - 1 - (i0 + b);  // rr_b[j] = reversed[first + j]
      const int* rr = reversed + first;
      const float* c2p_row = c2p + static_cast<long>(b) * width;
      for (int j = j0; j < j1; j += 16) {
        const __mmask16 m = tail_mask(j1 - j);
        __m512 v = _mm512_maskz_loadu_ps(m, row + j);
        const int run = m == 0xFFFF ? kind[first + j] : static_cast<int>(kGather);
        if (run == kConstant) {
          if (c2p_on) v = _mm512_add_ps(v, _mm512_set1_ps(c2p_row[rr[j]]));
          if (p2c_on) v = _mm512_add_ps(v, _mm512_loadu_ps(p2c_t + static_cast<long>(rr[j]) * L + j));
          _mm512_storeu_ps(row + j, v);
          continue;
        }
        const __m512i idx = _mm512_maskz_loadu_epi32(m, rr + j);
        if (c2p_on) {
          const __m512 c = run == kStaircase
                               ? _mm512_permutexvar_ps(backwards, _mm512_loadu_ps(c2p_row + rr[j] - 15))
                               : _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, c2p_row, 4);
          v = _mm512_add_ps(v, c);
        }
        if (p2c_on) {
          const __m512i at = _mm512_add_epi32(_mm512_mullo_epi32(idx, vL), _mm512_add_epi32(_mm512_set1_epi32(j), lane));
          v = _mm512_add_ps(v, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, at, p2c_t, 4));
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

// row = softmax(row), numerically stable (max subtracted); with `out`, the result goes there in bf16
// instead (and a zero after it when L is odd: the bf16 kernel reads pairs).
void softmax_row(float* row, int L, uint16_t* out) {
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
  if (!out) {
    for (int j = 0; j < L; j += 16) {
      const __mmask16 m = tail_mask(L - j);
      _mm512_mask_storeu_ps(row + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, row + j), inv));
    }
    return;
  }
  for (int j = 0; j < L; j += 16) {
    const __mmask16 m = tail_mask(L - j);
    store_bf16(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, row + j), inv), out + j, m);
  }
  if (L % 2) out[L] = 0;
}
#elif defined(__AVX2__)
inline __m256i tail_mask(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// The AVX-512 path's runs, 8 keys at a time (kRun = 8).
void add_relative_terms(float* scores, int L, int rows, int i0, const int* reversed, const unsigned char* kind,
                        const float* c2p, const float* p2c_t, int width, bool c2p_on, bool p2c_on) {
  if (!c2p_on && !p2c_on) return;
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i backwards = _mm256_setr_epi32(7, 6, 5, 4, 3, 2, 1, 0);
  const __m256i vL = _mm256_set1_epi32(L);
  for (int j0 = 0; j0 < L; j0 += kKeyTile) {
    const int j1 = std::min(L, j0 + kKeyTile);
    for (int b = 0; b < rows; ++b) {
      float* row = scores + static_cast<long>(b) * L;
      const int first = L - 1 - (i0 + b);  // rr_b[j] = reversed[first + j]
      const int* rr = reversed + first;
      const float* c2p_row = c2p + static_cast<long>(b) * width;
      for (int j = j0; j < j1; j += 8) {
        const bool full = j1 - j >= 8;
        const __m256i m = tail_mask(j1 - j);
        __m256 v = _mm256_maskload_ps(row + j, m);
        const int run = full ? kind[first + j] : static_cast<int>(kGather);
        if (run == kConstant) {
          if (c2p_on) v = _mm256_add_ps(v, _mm256_set1_ps(c2p_row[rr[j]]));
          if (p2c_on) v = _mm256_add_ps(v, _mm256_loadu_ps(p2c_t + static_cast<long>(rr[j]) * L + j));
          _mm256_storeu_ps(row + j, v);
          continue;
        }
        const __m256i idx = _mm256_maskload_epi32(rr + j, m);
        const __m256 mf = _mm256_castsi256_ps(m);
        if (c2p_on) {
          const __m256 c = run == kStaircase
                               ? _mm256_permutevar8x32_ps(_mm256_loadu_ps(c2p_row + rr[j] - 7), backwards)
                               : _mm256_mask_i32gather_ps(_mm256_setzero_ps(), c2p_row, idx, mf, 4);
          v = _mm256_add_ps(v, c);
        }
        if (p2c_on) {
          const __m256i at = _mm256_add_epi32(_mm256_mullo_epi32(idx, vL), _mm256_add_epi32(_mm256_set1_epi32(j), lane));
          v = _mm256_add_ps(v, _mm256_mask_i32gather_ps(_mm256_setzero_ps(), p2c_t, at, mf, 4));
        }
        _mm256_maskstore_ps(row + j, m, v);
      }
    }
  }
}

// exp(x) for x <= 0 to ~2 ulp, as the AVX-512 path: x = n·ln2 + r, degree-6 Taylor polynomial, times 2^n
// built in the exponent bits (x >= -87 keeps 2^n normal).
inline __m256 exp_ps(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);  // ln2 split in two parts
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187045e-06f), r);
  __m256 p = _mm256_set1_ps(1.f / 720);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  const __m256i scale = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(scale));
}

inline float reduce_max(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

inline float reduce_add(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

void softmax_row(float* row, int L, uint16_t* out) {
  const __m256 minus_inf = _mm256_set1_ps(-INFINITY);
  __m256 vmax = minus_inf;
  for (int j = 0; j < L; j += 8) {
    const __m256i m = tail_mask(L - j);
    vmax = _mm256_max_ps(vmax, _mm256_blendv_ps(minus_inf, _mm256_maskload_ps(row + j, m), _mm256_castsi256_ps(m)));
  }
  const __m256 mx = _mm256_set1_ps(reduce_max(vmax));
  __m256 vsum = _mm256_setzero_ps();
  for (int j = 0; j < L; j += 8) {
    const __m256i m = tail_mask(L - j);
    const __m256 e = _mm256_and_ps(exp_ps(_mm256_sub_ps(_mm256_maskload_ps(row + j, m), mx)), _mm256_castsi256_ps(m));
    _mm256_maskstore_ps(row + j, m, e);
    vsum = _mm256_add_ps(vsum, e);
  }
  const __m256 inv = _mm256_set1_ps(1.f / reduce_add(vsum));
  for (int j = 0; j < L; j += 8) {
    const __m256i m = tail_mask(L - j);
    _mm256_maskstore_ps(row + j, m, _mm256_mul_ps(_mm256_maskload_ps(row + j, m), inv));
  }
  if (!out) return;
  for (int j = 0; j < L; ++j) out[j] = float_to_bf16(row[j]);
  if (L % 2) out[L] = 0;
}
#else
void add_relative_terms(float* scores, int L, int rows, int i0, const int* reversed, const unsigned char*,
                        const float* c2p, const float* p2c_t, int width, bool c2p_on, bool p2c_on) {
  for (int j0 = 0; j0 < L; j0 += kKeyTile)
    for (int b = 0; b < rows; ++b) {
      float* row = scores + static_cast<long>(b) * L;
      const int* rr = reversed + (L - 1 - (i0 + b));
      for (int j = j0; j < std::min(L, j0 + kKeyTile); ++j) {
        if (c2p_on) row[j] += c2p[static_cast<long>(b) * width + rr[j]];
        if (p2c_on) row[j] += p2c_t[static_cast<long>(rr[j]) * L + j];
      }
    }
}

void softmax_row(float* row, int L, uint16_t* out) {
  float mx = -INFINITY;
  for (int j = 0; j < L; ++j) mx = std::max(mx, row[j]);
  float sum = 0;
  for (int j = 0; j < L; ++j) sum += row[j] = std::exp(row[j] - mx);
  const float inv = 1.f / sum;
  for (int j = 0; j < L; ++j) row[j] *= inv;
  if (!out) return;
  for (int j = 0; j < L; ++j) out[j] = float_to_bf16(row[j]);
  if (L % 2) out[L] = 0;
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

// One thread's scratch, carved in 64-byte aligned pieces. With a null base it only measures: the size that
// attention_scratch_floats reports is this same layout, so the two cannot drift apart.
// The bf16 path packs its panels into the same pieces as the fp32 one (they need at most half the room)
// and adds its bf16 copies of the A operands: a head's queries, its rel query rows and a block's probabilities.
struct HeadScratch {
  float *scores, *c2p, *p2c_t, *keys_t, *values, *pos_keys_t;
  uint16_t *queries16, *pos_queries16, *probs16;
  long floats = 0;  // used from the aligned base
  HeadScratch(float* base, int L, int span) {
    float* at = base ? reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(base) + 63) & ~uintptr_t{63}) : nullptr;
    const long W = 2L * span;
    auto take = [&](long n) {
      float* p = at ? at + floats : nullptr;
      floats += aligned(n);
      return p;
    };
    scores = take(kQueryBlock * static_cast<long>(L));
    c2p = take(kQueryBlock * W);
    p2c_t = take(L * W);
    keys_t = take(packed_panels_floats(L, kMaxHeadDim));
    values = take(packed_panels_floats(kMaxHeadDim, L));
    pos_keys_t = take(packed_panels_floats(static_cast<int>(W), kMaxHeadDim));
    auto take16 = [&](long n) { return reinterpret_cast<uint16_t*>(take((n + 1) / 2)); };
    queries16 = take16(L * static_cast<long>(kMaxHeadDim));
    pos_queries16 = take16(W * kMaxHeadDim);
    probs16 = take16(kQueryBlock * (L + 1L));
  }
};

// One head with bf16 products: the fp32 path's steps (see disentangled_attention) on bf16 copies of the
// operands. q, k, v, pk, pq point at the head's first column; pk and pq at rel row lo.
void bf16_head(const AttentionShape& s, const float* q, const float* k, const float* v, int ld, const float* pk,
               const float* pq, int width, const int* reversed, const unsigned char* kind, float* ctx, int ld_ctx,
               HeadScratch& w) {
  const int L = s.length, d = s.hidden / s.heads, ldq = (d + 1) / 2 * 2, ldp = (L + 1) / 2 * 2;
  const float inv_scale = 1.f / s.scale;
  auto* keys_t = reinterpret_cast<uint16_t*>(w.keys_t);
  auto* values = reinterpret_cast<uint16_t*>(w.values);
  auto* pos_keys_t = reinterpret_cast<uint16_t*>(w.pos_keys_t);
  pack_transposed_bf16(k, ld, L, d, keys_t);
  pack_plain_bf16(v, ld, L, d, values);
  rows_to_bf16(q, ld, L, d, w.queries16, ldq);
  if (s.c2p) pack_transposed_bf16(pk, s.hidden, width, d, pos_keys_t);
  if (s.p2c) {
    rows_to_bf16(pq, s.hidden, width, d, w.pos_queries16, ldq);
    panel_gemm_bf16(w.pos_queries16, ldq, keys_t, w.p2c_t, L, width, L, d, inv_scale);
  }
  for (int i0 = 0; i0 < L; i0 += kQueryBlock) {
    const int bq = std::min(kQueryBlock, L - i0);
    const uint16_t* qb = w.queries16 + static_cast<long>(i0) * ldq;
    panel_gemm_bf16(qb, ldq, keys_t, w.scores, L, bq, L, d, inv_scale);
    if (s.c2p) panel_gemm_bf16(qb, ldq, pos_keys_t, w.c2p, width, bq, width, d, inv_scale);
    add_relative_terms(w.scores, L, bq, i0, reversed, kind, w.c2p, w.p2c_t, width, s.c2p, s.p2c);
    for (int b = 0; b < bq; ++b) softmax_row(w.scores + static_cast<long>(b) * L, L, w.probs16 + static_cast<long>(b) * ldp);
    panel_gemm_bf16(w.probs16, ldp, values, ctx + static_cast<long>(i0) * ld_ctx, ld_ctx, bq, d, L, 1.f);
  }
}

}  // namespace

long attention_scratch_floats(int length, int span) {
  return HeadScratch(nullptr, length, span).floats + kAlign;  // + the alignment of the base
}

long attention_shared_floats(int length) { return 2L * length + (2L * length + 3) / 4; }

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
  auto* kind = reinterpret_cast<unsigned char*>(reversed + 2 * L);
  classify_runs(reversed, 2 * L - 1, kind);

#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int h = 0; h < s.heads; ++h) {
    HeadScratch w(scratch + per_thread * omp_get_thread_num(), L, s.span);
    // Q and K rows are read in place (A operands); Kᵀ, V and the two rel projections are packed once per
    // head into panels that every query block then streams.
    const float* q = Q + h * d;
    const float* k = K + h * d;
    if (s.bf16_products) {
      bf16_head(s, q, k, V + h * d, ld, PK + static_cast<long>(lo) * s.hidden + h * d,
                PQ + static_cast<long>(lo) * s.hidden + h * d, width, reversed, kind, ctx + h * d, ld_ctx, w);
      continue;
    }
    pack_transposed(k, ld, L, d, w.keys_t);
    pack_plain(V + h * d, ld, L, d, w.values);
    if (s.c2p) pack_transposed(PK + static_cast<long>(lo) * s.hidden + h * d, s.hidden, width, d, w.pos_keys_t);
    // p2cT[r, j] = PQ[lo + r] · K_j (the transpose of DeBERTa's p2c, same products): every query block reads
    // it, far keys along its rows.
    if (s.p2c) panel_gemm(PQ + static_cast<long>(lo) * s.hidden + h * d, s.hidden, w.keys_t, w.p2c_t, L, width, L, d, inv_scale);
    for (int i0 = 0; i0 < L; i0 += kQueryBlock) {
      const int bq = std::min(kQueryBlock, L - i0);
      const float* qb = q + static_cast<long>(i0) * ld;
      panel_gemm(qb, ld, w.keys_t, w.scores, L, bq, L, d, inv_scale);
      if (s.c2p) panel_gemm(qb, ld, w.pos_keys_t, w.c2p, width, bq, width, d, inv_scale);
      add_relative_terms(w.scores, L, bq, i0, reversed, kind, w.c2p, w.p2c_t, width, s.c2p, s.p2c);
      for (int b = 0; b < bq; ++b) softmax_row(w.scores + static_cast<long>(b) * L, L, nullptr);
      panel_gemm(w.scores, L, w.values, ctx + static_cast<long>(i0) * ld_ctx + h * d, ld_ctx, bq, d, L, 1.f);
    }
  }
}

}  // namespace pairrm::kernels::PAIRRM_ISA_NS
