// Packing of the attention's B operands into panels, and the packed sizes: plain data movement, the same
// for every ISA level (compiled once; the products that read the panels are compiled per level).
#include "kernels/panel_gemm.h"
#include "kernels/dense_gemm.h"

#include <algorithm>
#include <cstring>

#include "kernels/bf16.h"
#include "kernels/isa.h"

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
    // k outer: the panel is written in order and the 32 source rows are read as 32 sequential streams
    // (column-outer wrote with a 128-byte stride: 5x slower on the full model's 1.6 GB at load).
    const float* rows = src + static_cast<long>(n0) * ld;
    for (int k = 0; k < K; ++k)
      for (int c = 0; c < cols; ++c) panel[static_cast<long>(k) * kPanelWidth + c] = rows[static_cast<long>(c) * ld + k];
  }
}

long dense_packed_floats(int N, int K) { return packed_panels_floats(N, K); }


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

bool bf16_products_pay() { return active_isa() == Isa::kAvx512Bf16 && __builtin_cpu_is("amd"); }

long packed_panels_bf16(int N, int K) {
  const long panels = (N + kPanelWidth - 1) / kPanelWidth;
  return panels * ((K + 1) / 2) * 2 * kPanelWidth;
}

namespace {

// B[k][n] = at(n, k) into bf16 panels: element (k, c) of a panel sits at (k / 2)·64 + 2c + k % 2.
template <class At>
void pack_bf16(int N, int K, uint16_t* packed, At at) {
  const long pairs = (K + 1) / 2;
  for (int p = 0; p * kPanelWidth < N; ++p) {
    uint16_t* panel = packed + static_cast<long>(p) * pairs * 2 * kPanelWidth;
    const int n0 = p * kPanelWidth, cols = std::min(kPanelWidth, N - n0);
    if (cols < kPanelWidth || K % 2) std::memset(panel, 0, sizeof(uint16_t) * pairs * 2 * kPanelWidth);
    for (int k = 0; k < K; ++k)  // k outer: the panel is written in order (see pack_transposed)
      for (int c = 0; c < cols; ++c) panel[static_cast<long>(k / 2) * 2 * kPanelWidth + 2 * c + k % 2] = float_to_bf16(at(n0 + c, k));
  }
}

}  // namespace

void pack_transposed_bf16(const float* src, int ld, int N, int K, uint16_t* packed) {
  pack_bf16(N, K, packed, [&](int n, int k) { return src[static_cast<long>(n) * ld + k]; });
}

void pack_plain_bf16(const float* src, int ld, int K, int N, uint16_t* packed) {
  pack_bf16(N, K, packed, [&](int n, int k) { return src[static_cast<long>(k) * ld + n]; });
}

}  // namespace pairrm::kernels
