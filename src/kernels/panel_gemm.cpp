// The attention's matrix products on packed panels, compiled once per ISA level (kernels/isa.h) into the
// namespace PAIRRM_ISA_NS. AVX-512 and AVX2 micro-kernels, and a scalar loop that gives the same bits (the same
// fused multiply-adds in the same order) for the generic level and for unaligned panels.
#include "kernels/isa_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/bf16.h"
#include "kernels/panel_gemm.h"
#include "kernels/vec4.h"

#if defined(__AVX2__)
#include <immintrin.h>
// GCC 12's shift and narrowing intrinsics trip -Wmaybe-uninitialized inside the header itself.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace pairrm::kernels::PAIRRM_ISA_NS {

void rows_to_bf16(const float* src, int ld, int rows, int K, uint16_t* dst, int ldd) {
  for (int r = 0; r < rows; ++r) {
    const float* in = src + static_cast<long>(r) * ld;
    uint16_t* out = dst + static_cast<long>(r) * ldd;
#if defined(__AVX512F__)
    for (int k = 0; k < K; k += 16) {
      const __mmask16 m = K - k >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (K - k)) - 1);
      store_bf16(_mm512_maskz_loadu_ps(m, in + k), out + k, m);  // queries and rel rows: finite
    }
#else
    for (int k = 0; k < K; ++k) out[k] = float_to_bf16(in[k]);
#endif
    if (K % 2) out[K] = 0;
  }
}

namespace {

#if defined(__AVX512F__)
// MR rows × 32 columns of C: 2·MR accumulators, the k loop streams one packed panel row (two zmm) and
// broadcasts one A element per row.
template <int MR>
inline void micro_kernel(const float* A, int lda, const float* panel, float* C, int ldc, int K, float alpha,
                         __mmask16 m0, __mmask16 m1) {
  __m512 acc0[MR], acc1[MR];
  for (int r = 0; r < MR; ++r) acc0[r] = acc1[r] = _mm512_setzero_ps();
  for (int k = 0; k < K; ++k) {
    const __m512 b0 = _mm512_load_ps(panel + k * kPanelWidth);
    const __m512 b1 = _mm512_load_ps(panel + k * kPanelWidth + 16);
    for (int r = 0; r < MR; ++r) {
      const __m512 a = _mm512_set1_ps(A[static_cast<long>(r) * lda + k]);
      acc0[r] = _mm512_fmadd_ps(a, b0, acc0[r]);
      acc1[r] = _mm512_fmadd_ps(a, b1, acc1[r]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha);
  for (int r = 0; r < MR; ++r) {
    _mm512_mask_storeu_ps(C + static_cast<long>(r) * ldc, m0, _mm512_mul_ps(acc0[r], va));
    _mm512_mask_storeu_ps(C + static_cast<long>(r) * ldc + 16, m1, _mm512_mul_ps(acc1[r], va));
  }
}

using Kernel = void (*)(const float*, int, const float*, float*, int, int, float, __mmask16, __mmask16);
constexpr int kMaxRows = 12;  // 24 accumulators + 2 panel registers + 1 broadcast: within the 32 zmm
constexpr Kernel kKernels[kMaxRows + 1] = {nullptr,          micro_kernel<1>,  micro_kernel<2>, micro_kernel<3>,
                                           micro_kernel<4>,  micro_kernel<5>,  micro_kernel<6>, micro_kernel<7>,
                                           micro_kernel<8>,  micro_kernel<9>,  micro_kernel<10>, micro_kernel<11>,
                                           micro_kernel<12>};
#elif defined(__AVX2__)
// AVX2 has 16 ymm registers: MR rows × 16 columns (half a panel) take 2·MR accumulators, two panel loads
// and one broadcast, so 6 rows fill the file (the classic 6×16 kernel).
template <int MR>
inline void micro_kernel(const float* A, int lda, const float* half_panel, float* C, int ldc, int K, float alpha,
                         __m256i m0, __m256i m1, bool full) {
  __m256 acc0[MR], acc1[MR];
  for (int r = 0; r < MR; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  for (int k = 0; k < K; ++k) {
    const __m256 b0 = _mm256_load_ps(half_panel + k * kPanelWidth);
    const __m256 b1 = _mm256_load_ps(half_panel + k * kPanelWidth + 8);
    for (int r = 0; r < MR; ++r) {
      const __m256 a = _mm256_broadcast_ss(A + static_cast<long>(r) * lda + k);
      acc0[r] = _mm256_fmadd_ps(a, b0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(a, b1, acc1[r]);
    }
  }
  const __m256 va = _mm256_set1_ps(alpha);
  for (int r = 0; r < MR; ++r) {
    float* c = C + static_cast<long>(r) * ldc;
    if (full) {
      _mm256_storeu_ps(c, _mm256_mul_ps(acc0[r], va));
      _mm256_storeu_ps(c + 8, _mm256_mul_ps(acc1[r], va));
    } else {
      _mm256_maskstore_ps(c, m0, _mm256_mul_ps(acc0[r], va));
      _mm256_maskstore_ps(c + 8, m1, _mm256_mul_ps(acc1[r], va));
    }
  }
}

using Kernel = void (*)(const float*, int, const float*, float*, int, int, float, __m256i, __m256i, bool);
constexpr int kMaxRows = 6;
constexpr Kernel kKernels[kMaxRows + 1] = {nullptr,         micro_kernel<1>, micro_kernel<2>, micro_kernel<3>,
                                           micro_kernel<4>, micro_kernel<5>, micro_kernel<6>};

// Lane masks for the first `cols` (0..16) of 16 columns, as two 8-lane halves.
inline void half_masks(int cols, __m256i& m0, __m256i& m1) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols), lane);
  m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols - 8), lane);
}
#endif

#if defined(__AVX512BF16__)
// The bf16 twin of micro_kernel: per pair of k, two panel registers (32 columns × 2 values) and one 32-bit
// broadcast (two bf16 values) per row.
template <int MR>
inline void micro_kernel_bf16(const uint16_t* A, int lda, const uint16_t* panel, float* C, int ldc, int pairs,
                              float alpha, __mmask16 m0, __mmask16 m1) {
  __m512 acc0[MR], acc1[MR];
  for (int r = 0; r < MR; ++r) acc0[r] = acc1[r] = _mm512_setzero_ps();
  for (int p = 0; p < pairs; ++p) {
    const __m512bh b0 = (__m512bh)_mm512_load_si512(panel + p * 2 * kPanelWidth);
    const __m512bh b1 = (__m512bh)_mm512_load_si512(panel + p * 2 * kPanelWidth + kPanelWidth);
    for (int r = 0; r < MR; ++r) {
      int32_t two;
      std::memcpy(&two, A + static_cast<long>(r) * lda + 2 * p, 4);
      const __m512bh a = (__m512bh)_mm512_set1_epi32(two);
      acc0[r] = _mm512_dpbf16_ps(acc0[r], a, b0);
      acc1[r] = _mm512_dpbf16_ps(acc1[r], a, b1);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha);
  for (int r = 0; r < MR; ++r) {
    _mm512_mask_storeu_ps(C + static_cast<long>(r) * ldc, m0, _mm512_mul_ps(acc0[r], va));
    _mm512_mask_storeu_ps(C + static_cast<long>(r) * ldc + 16, m1, _mm512_mul_ps(acc1[r], va));
  }
}

using KernelBf16 = void (*)(const uint16_t*, int, const uint16_t*, float*, int, int, float, __mmask16, __mmask16);
constexpr KernelBf16 kKernelsBf16[kMaxRows + 1] = {
    nullptr,                micro_kernel_bf16<1>, micro_kernel_bf16<2>,  micro_kernel_bf16<3>, micro_kernel_bf16<4>,
    micro_kernel_bf16<5>,   micro_kernel_bf16<6>, micro_kernel_bf16<7>,  micro_kernel_bf16<8>, micro_kernel_bf16<9>,
    micro_kernel_bf16<10>, micro_kernel_bf16<11>, micro_kernel_bf16<12>};
#endif

#if defined(__AVX512F__)
// Column masks of the panel starting at column n0 of N.
inline void panel_masks(int N, int n0, __mmask16& m0, __mmask16& m1) {
  const int cols = std::min(kPanelWidth, N - n0);
  m0 = cols >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << cols) - 1);
  m1 = cols >= 32 ? 0xFFFF : cols <= 16 ? 0 : static_cast<__mmask16>((1u << (cols - 16)) - 1);
}
#endif

}  // namespace

void panel_gemm_bf16(const uint16_t* A, int lda, const uint16_t* packed_b, float* C, int ldc, int M, int N, int K,
                     float alpha) {
  const int pairs = (K + 1) / 2;
#if defined(__AVX512BF16__)
  if (reinterpret_cast<uintptr_t>(packed_b) % 64 == 0) {
    for (int p = 0; p * kPanelWidth < N; ++p) {
      const int n0 = p * kPanelWidth;
      __mmask16 m0, m1;
      panel_masks(N, n0, m0, m1);
      const uint16_t* panel = packed_b + static_cast<long>(p) * pairs * 2 * kPanelWidth;
      for (int i = 0; i < M; i += kMaxRows) {
        const int rows = std::min(kMaxRows, M - i);
        kKernelsBf16[rows](A + static_cast<long>(i) * lda, lda, panel, C + static_cast<long>(i) * ldc + n0, ldc,
                           pairs, alpha, m0, m1);
      }
    }
    return;
  }
#endif
  // In vdpbf16ps's order: for each pair, k = 2p + 1, then k = 2p. A product of two bf16 values is exact in
  // fp32, so multiply-then-add rounds once, as an FMA does: the same bits without an FMA instruction (generic).
  // k runs outside and the panel's 32 columns inside, in four-lane vectors (vec4.h): a pair row is 32 uint32
  // lanes, k = 2p in the low half of each (little-endian), k = 2p + 1 in the high half; a bf16 value shifted
  // into the high half is its float.
  for (int i = 0; i < M; ++i) {
    const uint16_t* a = A + static_cast<long>(i) * lda;
    for (int n0 = 0; n0 < N; n0 += kPanelWidth) {
      const uint16_t* panel = packed_b + static_cast<long>(n0 / kPanelWidth) * pairs * 2 * kPanelWidth;
      F32x4 acc[8] = {};
      for (int p = 0; p < pairs; ++p) {
        const uint16_t* pair_row = panel + static_cast<long>(p) * 2 * kPanelWidth;
        const F32x4 a_odd = splat4(bf16_to_float(a[2 * p + 1])), a_even = splat4(bf16_to_float(a[2 * p]));
        for (int v = 0; v < 8; ++v) {
          const U32x4 w = load_u32x4(pair_row + 8 * v);
          acc[v] += a_odd * reinterpret_cast<F32x4>(w & 0xFFFF0000u);
          acc[v] += a_even * reinterpret_cast<F32x4>(w << 16);
        }
      }
      float sums[kPanelWidth];
      for (int v = 0; v < 8; ++v) store4(sums + 4 * v, acc[v]);
      const int cols = std::min(kPanelWidth, N - n0);
      for (int c = 0; c < cols; ++c) C[static_cast<long>(i) * ldc + n0 + c] = sums[c] * alpha;
    }
  }
}

void panel_gemm(const float* A, int lda, const float* packed_b, float* C, int ldc, int M, int N, int K, float alpha) {
#if defined(__AVX512F__)
  // _mm512_load_ps needs 64-byte panels; a caller's buffer that is not aligned takes the generic path.
  if (reinterpret_cast<uintptr_t>(packed_b) % 64 == 0) {
    for (int p = 0; p * kPanelWidth < N; ++p) {
      const int n0 = p * kPanelWidth;
      __mmask16 m0, m1;
      panel_masks(N, n0, m0, m1);
      const float* panel = packed_b + static_cast<long>(p) * K * kPanelWidth;
      for (int i = 0; i < M; i += kMaxRows) {
        const int rows = std::min(kMaxRows, M - i);
        kKernels[rows](A + static_cast<long>(i) * lda, lda, panel, C + static_cast<long>(i) * ldc + n0, ldc, K, alpha,
                       m0, m1);
      }
    }
    return;
  }
#elif defined(__AVX2__)
  // _mm256_load_ps needs 32-byte half panels: a 64-byte aligned base gives them (as for AVX-512).
  if (reinterpret_cast<uintptr_t>(packed_b) % 64 == 0) {
    for (int n0 = 0; n0 < N; n0 += kPanelWidth / 2) {
      const int cols = std::min(kPanelWidth / 2, N - n0);
      __m256i m0, m1;
      half_masks(cols, m0, m1);
      const float* half_panel = packed_b + static_cast<long>(n0 / kPanelWidth) * K * kPanelWidth + n0 % kPanelWidth;
      for (int i = 0; i < M; i += kMaxRows) {
        const int rows = std::min(kMaxRows, M - i);
        kKernels[rows](A + static_cast<long>(i) * lda, lda, half_panel, C + static_cast<long>(i) * ldc + n0, ldc, K,
                       alpha, m0, m1, cols == kPanelWidth / 2);
      }
    }
    return;
  }
#endif
  // The same fused multiply-adds in the same order as the vector kernels: the same bits on every path of a
  // level. The generic level has no FMA instruction (std::fma would be a software routine, ~100x slower), so
  // there it multiplies and adds: its own bits, as deterministic. k runs outside and the panel's 32 columns
  // inside: each element still sums k = 0, 1, ... in order, in four-lane vectors (vec4.h).
  for (int i = 0; i < M; ++i) {
    const float* a = A + static_cast<long>(i) * lda;
    for (int n0 = 0; n0 < N; n0 += kPanelWidth) {
      const float* panel = packed_b + static_cast<long>(n0 / kPanelWidth) * K * kPanelWidth;  // 32 columns, padded
      float sums[kPanelWidth];
#if defined(__FMA__)
      // Only a caller's unaligned panel comes here on the FMA levels: a plain loop of std::fma.
      std::fill_n(sums, kPanelWidth, 0.f);
      for (int k = 0; k < K; ++k)
        for (int c = 0; c < kPanelWidth; ++c) sums[c] = std::fma(a[k], panel[static_cast<long>(k) * kPanelWidth + c], sums[c]);
#else
      Sums32 acc;
      for (int k = 0; k < K; ++k) acc.add_scaled(a[k], panel + static_cast<long>(k) * kPanelWidth);
      acc.store(sums);
#endif
      const int cols = std::min(kPanelWidth, N - n0);
      for (int c = 0; c < cols; ++c) C[static_cast<long>(i) * ldc + n0 + c] = sums[c] * alpha;
    }
  }
}

}  // namespace pairrm::kernels::PAIRRM_ISA_NS
