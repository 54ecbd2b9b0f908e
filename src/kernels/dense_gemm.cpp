// The dense layers' GEMM (dense_gemm.h), compiled once per ISA level into PAIRRM_ISA_NS. Blocked as BLIS
// does: a block of A (kMc rows × kKc deep, packed into strips of the micro-kernel's height) stays in L2 while
// every panel of the thread's columns streams through it, each panel's kKc-deep slice (32 KB) staying in L1
// across the block's strips. Blocking changes where the partial sums wait (in C between K blocks), never
// their order: element (m, n) is always init, then + A[m][0]·B[0][n], + A[m][1]·B[1][n], ... one rounding each.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/dense_gemm.h"
#include "kernels/isa_kernels.h"
#include "kernels/panel_gemm.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace pairrm::kernels::PAIRRM_ISA_NS {
namespace {

constexpr int kKc = 256;   // K block: a panel's slice is 256 × 32 floats = 32 KB (L1)
constexpr int kMc = 1020;  // M block: ≤ 1 MB of packed A (L2/L3). Tall on purpose: the weights (50 MB a
                           // layer) stream from memory once per M block, and a slice fetched from DRAM then
                           // serves ~85 strips.

// Where a micro-kernel's accumulators start: the bias (first K block), the residual plus the bias (first K
// block of a residual layer; the residual has C's row stride and may be C itself) or C (later K blocks: the
// partial sums left there).
struct Start {
  const float* bias;      // null: continue from C
  const float* residual;  // with bias: added to it, or null
};

// The Start of the strip `rows` rows further down.
[[maybe_unused]] inline Start at_row(Start start, int rows, long ldc) {
  return {start.bias, start.residual ? start.residual + rows * ldc : nullptr};
}

#if defined(__AVX512F__)
constexpr int kMr = 12;  // 24 accumulators + 2 panel registers (+ broadcasts as memory operands) of the 32 zmm

// Accumulators of R rows × 32 columns from their Start, and back to C (masked columns: the ragged last panel).
template <int R>
inline void start_accumulators(__m512 (&acc0)[R], __m512 (&acc1)[R], const float* C, long ldc, Start start,
                               __mmask16 m0, __mmask16 m1) {
  if (start.bias) {
    const __m512 b0 = _mm512_maskz_loadu_ps(m0, start.bias), b1 = _mm512_maskz_loadu_ps(m1, start.bias + 16);
    for (int r = 0; r < R; ++r) {
      const float* res = start.residual + r * ldc;
      acc0[r] = start.residual ? _mm512_add_ps(_mm512_maskz_loadu_ps(m0, res), b0) : b0;
      acc1[r] = start.residual ? _mm512_add_ps(_mm512_maskz_loadu_ps(m1, res + 16), b1) : b1;
    }
  } else {
    for (int r = 0; r < R; ++r) {
      acc0[r] = _mm512_maskz_loadu_ps(m0, C + r * ldc);
      acc1[r] = _mm512_maskz_loadu_ps(m1, C + r * ldc + 16);
    }
  }
}

template <int R>
inline void store_accumulators(const __m512 (&acc0)[R], const __m512 (&acc1)[R], float* C, long ldc, __mmask16 m0,
                               __mmask16 m1) {
  for (int r = 0; r < R; ++r) {
    _mm512_mask_storeu_ps(C + r * ldc, m0, acc0[r]);
    _mm512_mask_storeu_ps(C + r * ldc + 16, m1, acc1[r]);
  }
}

inline void column_masks(int cols, __mmask16& m0, __mmask16& m1) {
  m0 = cols >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << cols) - 1);
  m1 = cols >= 32 ? 0xFFFF : cols <= 16 ? 0 : static_cast<__mmask16>((1u << (cols - 16)) - 1);
}

// R rows (≤ kMr) × 32 columns; a: the strip [kc][kMr], b: the panel slice [kc][32].
template <int R>
void micro_kernel(const float* a, const float* b, int kc, float* C, long ldc, Start start, __mmask16 m0, __mmask16 m1) {
  __m512 acc0[R], acc1[R];
  start_accumulators<R>(acc0, acc1, C, ldc, start, m0, m1);
  for (int k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(b + k * kPanelWidth), b1 = _mm512_load_ps(b + k * kPanelWidth + 16);
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      const __m512 x = _mm512_set1_ps(a[k * kMr + r]);
      acc0[r] = _mm512_fmadd_ps(x, b0, acc0[r]);
      acc1[r] = _mm512_fmadd_ps(x, b1, acc1[r]);
    }
  }
  store_accumulators<R>(acc0, acc1, C, ldc, m0, m1);
}

using MicroKernel = void (*)(const float*, const float*, int, float*, long, Start, __mmask16, __mmask16);
constexpr MicroKernel kKernels[kMr + 1] = {nullptr,         micro_kernel<1>,  micro_kernel<2>,  micro_kernel<3>,
                                           micro_kernel<4>, micro_kernel<5>,  micro_kernel<6>,  micro_kernel<7>,
                                           micro_kernel<8>, micro_kernel<9>,  micro_kernel<10>, micro_kernel<11>,
                                           micro_kernel<12>};

// One panel's kc-deep slice against the packed block: strips of kMr rows.
void panel_block(const float* a_block, int mc, int kc, const float* b, float* C, long ldc, Start start, int cols) {
  __mmask16 m0, m1;
  column_masks(cols, m0, m1);
  for (int s = 0; s < mc; s += kMr) {
    const int rows = std::min(kMr, mc - s);
    kKernels[rows](a_block + static_cast<long>(s) * kc, b, kc, C + s * ldc, ldc, at_row(start, s, ldc), m0, m1);
  }
}

#elif defined(__AVX2__)
constexpr int kMr = 6;  // 16 ymm: 12 accumulators (6 rows × 16 columns), 2 half-panel registers, 1 broadcast

// R rows (≤ kMr) × 16 columns (half a panel: b points into the panel, row stride 32); masks for short edges.
template <int R>
void micro_kernel(const float* a, const float* b, int kc, float* C, long ldc, Start start, __m256i m0, __m256i m1) {
  __m256 acc0[R], acc1[R];
  if (start.bias) {
    const __m256 b0 = _mm256_maskload_ps(start.bias, m0), b1 = _mm256_maskload_ps(start.bias + 8, m1);
    for (int r = 0; r < R; ++r) {
      const float* res = start.residual + r * ldc;
      acc0[r] = start.residual ? _mm256_add_ps(_mm256_maskload_ps(res, m0), b0) : b0;
      acc1[r] = start.residual ? _mm256_add_ps(_mm256_maskload_ps(res + 8, m1), b1) : b1;
    }
  } else {
    for (int r = 0; r < R; ++r) {
      acc0[r] = _mm256_maskload_ps(C + r * ldc, m0);
      acc1[r] = _mm256_maskload_ps(C + r * ldc + 8, m1);
    }
  }
  for (int k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(b + k * kPanelWidth), b1 = _mm256_load_ps(b + k * kPanelWidth + 8);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m256 x = _mm256_broadcast_ss(a + k * kMr + r);
      acc0[r] = _mm256_fmadd_ps(x, b0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(x, b1, acc1[r]);
    }
  }
  for (int r = 0; r < R; ++r) {
    _mm256_maskstore_ps(C + r * ldc, m0, acc0[r]);
    _mm256_maskstore_ps(C + r * ldc + 8, m1, acc1[r]);
  }
}

using MicroKernel = void (*)(const float*, const float*, int, float*, long, Start, __m256i, __m256i);
constexpr MicroKernel kKernels[kMr + 1] = {nullptr,         micro_kernel<1>, micro_kernel<2>, micro_kernel<3>,
                                           micro_kernel<4>, micro_kernel<5>, micro_kernel<6>};

void panel_block(const float* a_block, int mc, int kc, const float* b, float* C, long ldc, Start start, int cols) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int half = 0; half < 2 && half * 16 < cols; ++half) {
    const int n = std::min(16, cols - half * 16);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - 8), lane);
    const Start half_start{start.bias ? start.bias + half * 16 : nullptr, start.residual ? start.residual + half * 16 : nullptr};
    for (int s = 0; s < mc; s += kMr) {
      const int rows = std::min(kMr, mc - s);
      kKernels[rows](a_block + static_cast<long>(s) * kc, b + half * 16, kc, C + s * ldc + half * 16, ldc,
                     at_row(half_start, s, ldc), m0, m1);
    }
  }
}
#else
// The baseline level (SSE2, no FMA): 32 running sums per row and panel, which the compiler keeps in vector
// registers; a multiply and an add per step, in the same k order.
constexpr int kMr = 1;

void panel_block(const float* a_block, int mc, int kc, const float* b, float* C, long ldc, Start start, int cols) {
  for (int m = 0; m < mc; ++m) {
    float acc[kPanelWidth] = {};
    float* c = C + m * ldc;
    const float* res = start.residual ? start.residual + m * ldc : nullptr;
    for (int j = 0; j < cols; ++j) acc[j] = start.bias ? (res ? res[j] + start.bias[j] : start.bias[j]) : c[j];
    const float* a = a_block + static_cast<long>(m) * kc;
    for (int k = 0; k < kc; ++k)
      for (int j = 0; j < kPanelWidth; ++j) acc[j] += a[k] * b[k * kPanelWidth + j];
    std::copy_n(acc, cols, c);
  }
}
#endif

// Rows [m0, m0 + mc) × depth [k0, k0 + kc) of A into strips of kMr rows: strip s is [kc][kMr] (row r of the
// strip at k·kMr + r), so the micro-kernel reads its broadcasts from one stream.
void pack_block(const float* A, int lda, int m0, int mc, int k0, int kc, float* out) {
  for (int s = 0; s < mc; s += kMr) {
    const int rows = std::min(kMr, mc - s);
    float* strip = out + static_cast<long>(s) * kc;
    for (int r = 0; r < rows; ++r) {
      const float* src = A + static_cast<long>(m0 + s + r) * lda + k0;
      for (int k = 0; k < kc; ++k) strip[k * kMr + r] = src[k];
    }
  }
}

}  // namespace

long dense_gemm_scratch_floats(int M) { return static_cast<long>(std::min(M, kMc) + kMr) * kKc; }

void dense_gemm(const float* A, int lda, int M, int K, const float* packed, int N, const float* bias, float* C,
                int ldc, const float* residual, int p0, int p1, float* scratch) {
  for (int k0 = 0; k0 < K; k0 += kKc) {
    const int kc = std::min(kKc, K - k0);
    for (int m0 = 0; m0 < M; m0 += kMc) {
      const int mc = std::min(kMc, M - m0);
      pack_block(A, lda, m0, mc, k0, kc, scratch);
      for (int p = p0; p < p1; ++p) {
        const int n0 = p * kPanelWidth, cols = std::min(kPanelWidth, N - n0);
        const Start start{k0 == 0 ? bias + n0 : nullptr,
                          k0 == 0 && residual ? residual + static_cast<long>(m0) * ldc + n0 : nullptr};
        panel_block(scratch, mc, kc, packed + (static_cast<long>(p) * K + k0) * kPanelWidth,
                    C + static_cast<long>(m0) * ldc + n0, ldc, start, cols);
      }
    }
  }
}

}  // namespace pairrm::kernels::PAIRRM_ISA_NS
