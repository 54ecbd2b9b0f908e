// GEMM glue: every matrix product of the network goes through here (oneDNN's sgemm, row-major).
#pragma once

namespace pairrm::kernels {

// C[M,N] = A[M,K] · W[N,K]ᵀ (+ bias[N]) (+ C when accumulate): a Linear layer with PyTorch's [out, in]
// weight layout, used in place from the memory-mapped checkpoint.
void linear(const float* A, int M, int K, int lda, const float* W, int N, const float* bias, float* C, int ldc,
            bool accumulate = false);

// C[M,N] = alpha · A[M,K] · B[N,K]ᵀ   (for Q·Kᵀ-style products with strided operands)
void matmul_nt(const float* A, int lda, const float* B, int ldb, float* C, int ldc, int M, int N, int K, float alpha);

// C[M,N] = A[M,K] · B[K,N]   (for P·V)
void matmul_nn(const float* A, int lda, const float* B, int ldb, float* C, int ldc, int M, int N, int K);

}  // namespace pairrm::kernels
