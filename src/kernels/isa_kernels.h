// Declarations of one ISA level's kernels, for the sources compiled per level (CMake defines PAIRRM_ISA_NS,
// e.g. isa_avx2, and the level's -march). Never included elsewhere: other code goes through kernel_table.h.
#pragma once
#include <cstdint>

#include "kernels/attention.h"
#include "kernels/kernel_table.h"

#ifndef PAIRRM_ISA_NS
#error "compiled once per ISA level: CMake defines PAIRRM_ISA_NS (see pairrm_add_isa_kernels)"
#endif

namespace pairrm::kernels::PAIRRM_ISA_NS {

void panel_gemm(const float* A, int lda, const float* packed_b, float* C, int ldc, int M, int N, int K, float alpha);
void panel_gemm_bf16(const uint16_t* A, int lda, const uint16_t* packed_b, float* C, int ldc, int M, int N, int K,
                     float alpha);
void rows_to_bf16(const float* src, int ld, int rows, int K, uint16_t* dst, int ldd);
void disentangled_attention(const AttentionShape& s, const float* Q, const float* K, const float* V, int ld,
                            const float* PK, const float* PQ, const int* rel_index, float* ctx, int ld_ctx,
                            float* scratch, int threads);
void dense_gemm(const float* A, int lda, int M, int K, const float* packed, int N, const float* bias, float* C, int ldc,
                const float* residual, int p0, int p1, float* scratch);
long dense_gemm_scratch_floats(int M);
void pack_dense_weights(const float* W, int N, int K, float* packed, int threads);
long attention_scratch_floats(int length, int span);
long attention_shared_floats(int length);
void layer_norm(const float* x, float* y, int rows, int n, const float* gamma, const float* beta, float eps);

double fp32_fma_flops(long iterations);
double bf16_dot_flops(long iterations);
double int8_dot_ops(long iterations);

extern const KernelTable table;

}  // namespace pairrm::kernels::PAIRRM_ISA_NS
