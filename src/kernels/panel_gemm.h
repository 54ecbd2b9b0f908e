// The attention's small matrix products (K = head_dim for Q·Kᵀ, K = L for P·V) on one thread. oneDNN's
// sgemm reaches only ~25 % of a core on these shapes (a 64-deep K, called per head and per query block);
// with B packed once per head into 32-column panels, a register-blocked AVX-512 kernel keeps the FMA units fed.
#pragma once

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

}  // namespace pairrm::kernels
