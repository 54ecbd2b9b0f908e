// The dense layers' fp32 GEMM: the weights packed once at load into 32-column panels (panel_gemm.h's
// layout), the activations packed per cache block, and register-blocked micro-kernels per ISA level.
//
// Why our own and not oneDNN's sgemm: (1) every output element is one chain of fused multiply-adds in the
// order k = 0, 1, ..., K-1 from a fixed start, whatever M, the block sizes, the thread count or the rows
// around it — so rows of any length can share one GEMM (all tokens of a batch in one M) and each row's
// result is still bitwise the one it gets alone; oneDNN's sgemm rounds differently for different M, which
// forced one GEMM per row (starving the FMA units on short rows). (2) The weights are packed once, not per
// call: sgemm repacks B on every call, from memory, on the critical path.
#pragma once

namespace pairrm::kernels {

// Floats of a packed [N, K] weight matrix (= packed_panels_floats(N, K)); the buffer must be 64-byte aligned.
long dense_packed_floats(int N, int K);
// Packs W [N, K] row-major (PyTorch's Linear layout) into the active level's panels (B[k][n] = W[n][k], in
// 32-column panels; the AVX2 level stores each K block's two 16-column halves apart), on up to `threads` threads.
void pack_dense_weights(const float* W, int N, int K, float* packed, int threads);

// Floats of scratch a dense_gemm call over M rows needs (its packed block of A).
long dense_gemm_scratch_floats(int M);

// For the columns of panels [p0, p1) (columns 32·p0 ..): C[m][n] = init + Σ_k A[m][k]·W[n][k], where
// init = bias[n], or residual[m][n] + bias[n] when a residual is given (residual connections; row stride ldc,
// C itself allowed); the sum is accumulated onto init in order k = 0..K-1 (fused multiply-adds where the level
// has them). A is [M, K] with row stride lda; C has row stride ldc. `scratch`: dense_gemm_scratch_floats(M) floats (any alignment), this call's own.
void dense_gemm(const float* A, int lda, int M, int K, const float* packed, int N, const float* bias, float* C,
                int ldc, const float* residual, int p0, int p1, float* scratch);

}  // namespace pairrm::kernels
