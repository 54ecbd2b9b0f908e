#include "kernels/panel_gemm.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace pairrm::kernels {

long packed_panels_floats(int N, int K) {
  const long panels = (N + kPanelWidth - 1) / kPanelWidth;
  return panels * K * kPanelWidth;
}

void pack_transposed(const float* src, int ld, int N, int K, float* packed) {
  for (int p = 0; p * kPanelWidth < N; ++p) {
    float* panel = packed + static_cast<long>(p) * K * kPanelWidth;
    const int n0 = p * kPanelWidth, cols = std::min(kPanelWidth, N - n0);
    if (cols < kPanelWidth) std::memset(panel, 0, sizeof(float) * K * kPanelWidth);
    for (int c = 0; c < cols; ++c) {
      const float* row = src + static_cast<long>(n0 + c) * ld;
      for (int k = 0; k < K; ++k) panel[k * kPanelWidth + c] = row[k];
    }
  }
}

void pack_plain(const float* src, int ld, int K, int N, float* packed) {
  for (int p = 0; p * kPanelWidth < N; ++p) {
    float* panel = packed + static_cast<long>(p) * K * kPanelWidth;
    const int n0 = p * kPanelWidth, cols = std::min(kPanelWidth, N - n0);
    for (int k = 0; k < K; ++k) {
      float* dst = panel + static_cast<long>(k) * kPanelWidth;
      std::memcpy(dst, src + static_cast<long>(k) * ld + n0, sizeof(float) * cols);
      if (cols < kPanelWidth) std::memset(dst + cols, 0, sizeof(float) * (kPanelWidth - cols));
    }
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
#endif

}  // namespace

void panel_gemm(const float* A, int lda, const float* packed_b, float* C, int ldc, int M, int N, int K, float alpha) {
#if defined(__AVX512F__)
  // _mm512_load_ps needs 64-byte panels; a caller's buffer that is not aligned takes the generic path.
  if (reinterpret_cast<uintptr_t>(packed_b) % 64 == 0) {
    for (int p = 0; p * kPanelWidth < N; ++p) {
      const int n0 = p * kPanelWidth, cols = std::min(kPanelWidth, N - n0);
      const __mmask16 m0 = cols >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << cols) - 1);
      const __mmask16 m1 = cols >= 32 ? 0xFFFF : cols <= 16 ? 0 : static_cast<__mmask16>((1u << (cols - 16)) - 1);
      const float* panel = packed_b + static_cast<long>(p) * K * kPanelWidth;
      for (int i = 0; i < M; i += kMaxRows) {
        const int rows = std::min(kMaxRows, M - i);
        kKernels[rows](A + static_cast<long>(i) * lda, lda, panel, C + static_cast<long>(i) * ldc + n0, ldc, K, alpha,
                       m0, m1);
      }
    }
    return;
  }
#endif
  // The same fused multiply-adds in the same order as the vector kernel: the same bits on every path.
  for (int i = 0; i < M; ++i)
    for (int n = 0; n < N; ++n) {
      const float* panel = packed_b + static_cast<long>(n / kPanelWidth) * K * kPanelWidth + n % kPanelWidth;
      float sum = 0;
      for (int k = 0; k < K; ++k) sum = std::fma(A[static_cast<long>(i) * lda + k], panel[k * kPanelWidth], sum);
      C[static_cast<long>(i) * ldc + n] = sum * alpha;
    }
}

}  // namespace pairrm::kernels
