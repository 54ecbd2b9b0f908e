// The attention's small matrix products (K = head_dim for Q·Kᵀ, K = L for P·V) on one thread. oneDNN's
// sgemm reaches only ~25 % of a core on these shapes (a 64-deep K, called per head and per query block);
// with B packed once per head into 32-column panels, a register-blocked AVX-512 kernel keeps the FMA units fed.
#pragma once
#include <cstdint>

namespace pairrm::kernels {

constexpr int kPanelWidth = 32;  // columns per packed panel (two zmm registers)

// Floats a packed B of N columns and depth K needs: ceil(N / 32) panels of [K][32] (zero-padded).
long packed_panels_floats(int N, int K);

// B[k][n] = src[n·ld + k]: the transpose of a row-major [N, K] matrix (K rows of Q·Kᵀ, rel projections).
void pack_transposed(const float* src, int ld, int N, int K, float* packed);
// B[k][n] = src[k·ld + n]: a row-major [K, N] matrix (V).
void pack_plain(const float* src, int ld, int K, int N, float* packed);

// C[M, N] = alpha · A[M, K] · B[K, N] with A row-major (lda) and B packed by one of the above. The sum over k
// runs in order k = 0, 1, ..., K-1 for every element: results do not depend on M, N or the tiling.
void panel_gemm(const float* A, int lda, const float* packed_b, float* C, int ldc, int M, int N, int K, float alpha);

// The same products in bfloat16 with fp32 accumulation, for the attention of the reduced precisions: two
// bf16 values per 32-bit lane (k = 2p, 2p + 1), a panel is [ceil(K/2)][32 columns][2], zero-padded. Values
// are rounded to bf16 (nearest even) when packed or converted. Where the build has AVX512-BF16 the kernel
// is vdpbf16ps (each pair adds k = 2p + 1, then k = 2p, exact products, fp32 sums); elsewhere fused
// multiply-adds in that order, which give the same bits (a product of two bf16 values is exact in fp32),
// denormals aside (vdpbf16ps flushes them).
long packed_panels_bf16(int N, int K);  // uint16 elements
// Whether this build and CPU run panel_gemm_bf16 faster than panel_gemm: built with AVX512-BF16 and an AMD
// CPU (Zen 4/5 issue vdpbf16ps, two FMAs' worth of work, at the FMA rate). Intel's cores issue it on one
// port against two for FMAs: the same FLOP rate, and the conversions make the bf16 path slower (measured).
bool bf16_products_pay();
void pack_transposed_bf16(const float* src, int ld, int N, int K, uint16_t* packed);
void pack_plain_bf16(const float* src, int ld, int K, int N, uint16_t* packed);
// dst[r][k] = bf16(src[r][k]) for k < K, and dst[r][K] = 0 when K is odd (the kernel reads pairs); ldd even.
void rows_to_bf16(const float* src, int ld, int rows, int K, uint16_t* dst, int ldd);
// C[M, N] = alpha · A[M, K] · B[K, N], A as rows_to_bf16 writes it (lda even), B packed by pack_*_bf16.
void panel_gemm_bf16(const uint16_t* A, int lda, const uint16_t* packed_b, float* C, int ldc, int M, int N, int K,
                     float alpha);

}  // namespace pairrm::kernels
