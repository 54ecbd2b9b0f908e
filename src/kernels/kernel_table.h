// The kernels compiled once per ISA level (kernels/isa.h), as one table of function pointers per level.
// The public functions in attention.h, panel_gemm.h and elementwise.h call the active level's table; tests
// and benchmarks call any level's table directly to compare every variant against one reference.
#pragma once
#include <cstdint>

#include "kernels/attention.h"
#include "kernels/isa.h"

namespace pairrm::kernels {

struct KernelTable {
  Isa isa;
  void (*panel_gemm)(const float* A, int lda, const float* packed_b, float* C, int ldc, int M, int N, int K,
                     float alpha);
  void (*panel_gemm_bf16)(const uint16_t* A, int lda, const uint16_t* packed_b, float* C, int ldc, int M, int N,
                          int K, float alpha);
  void (*rows_to_bf16)(const float* src, int ld, int rows, int K, uint16_t* dst, int ldd);
  void (*disentangled_attention)(const AttentionShape& s, const float* Q, const float* K, const float* V, int ld,
                                 const float* PK, const float* PQ, const int* rel_index, float* ctx, int ld_ctx,
                                 float* scratch, int threads);
  void (*dense_gemm)(const float* A, int lda, int M, int K, const float* packed, int N, const float* bias, float* C,
                     int ldc, const float* residual, int p0, int p1, float* scratch);
  long (*dense_gemm_scratch_floats)(int M);
  // The dense weights in this level's panel layout (dense_gemm reads only the layout of its own level).
  void (*pack_dense_weights)(const float* W, int N, int K, float* packed, int threads);
  void (*layer_norm)(const float* x, float* y, int rows, int n, const float* gamma, const float* beta, float eps);
  long (*attention_scratch_floats)(int length, int span);  // the layout of this level's attention scratch
  long (*attention_shared_floats)(int length);
  // Peak loops for bench's ceilings (kernels/peak.cpp): operations done, -1 where the level lacks the instruction.
  double (*fp32_fma_flops)(long iterations);
  double (*bf16_dot_flops)(long iterations);
  double (*int8_dot_ops)(long iterations);
};

// The table of one level (every level is compiled in; running one this CPU lacks is the caller's mistake:
// check isa_supported first).
const KernelTable& kernel_table(Isa isa);
// kernel_table(active_isa()).
const KernelTable& active_kernels();

}  // namespace pairrm::kernels
