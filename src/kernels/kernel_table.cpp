// The tables of every compiled level, and the public kernel entry points that forward to the active one.
#include "kernels/kernel_table.h"

#include "kernels/dense_gemm.h"
#include "kernels/elementwise.h"
#include "kernels/panel_gemm.h"

namespace pairrm::kernels {

#define PAIRRM_DECLARE_ISA_TABLE(ns) \
  namespace ns {                     \
  extern const KernelTable table;    \
  }
PAIRRM_DECLARE_ISA_TABLE(isa_generic)
PAIRRM_DECLARE_ISA_TABLE(isa_avx2)
PAIRRM_DECLARE_ISA_TABLE(isa_avx512)
PAIRRM_DECLARE_ISA_TABLE(isa_avx512_bf16)
#undef PAIRRM_DECLARE_ISA_TABLE

const KernelTable& kernel_table(Isa isa) {
  switch (isa) {
    case Isa::kGeneric: return isa_generic::table;
    case Isa::kAvx2: return isa_avx2::table;
    case Isa::kAvx512: return isa_avx512::table;
    case Isa::kAvx512Bf16: return isa_avx512_bf16::table;
  }
  return isa_generic::table;
}

const KernelTable& active_kernels() {
  static const KernelTable& active = kernel_table(active_isa());
  return active;
}

void panel_gemm(const float* A, int lda, const float* packed_b, float* C, int ldc, int M, int N, int K, float alpha) {
  active_kernels().panel_gemm(A, lda, packed_b, C, ldc, M, N, K, alpha);
}

void panel_gemm_bf16(const uint16_t* A, int lda, const uint16_t* packed_b, float* C, int ldc, int M, int N, int K,
                     float alpha) {
  active_kernels().panel_gemm_bf16(A, lda, packed_b, C, ldc, M, N, K, alpha);
}

void rows_to_bf16(const float* src, int ld, int rows, int K, uint16_t* dst, int ldd) {
  active_kernels().rows_to_bf16(src, ld, rows, K, dst, ldd);
}

void disentangled_attention(const AttentionShape& s, const float* Q, const float* K, const float* V, int ld,
                            const float* PK, const float* PQ, const int* rel_index, float* ctx, int ld_ctx,
                            float* scratch, int threads) {
  active_kernels().disentangled_attention(s, Q, K, V, ld, PK, PQ, rel_index, ctx, ld_ctx, scratch, threads);
}

void dense_gemm(const float* A, int lda, int M, int K, const float* packed, int N, const float* bias, float* C, int ldc,
                const float* residual, int p0, int p1, float* scratch) {
  active_kernels().dense_gemm(A, lda, M, K, packed, N, bias, C, ldc, residual, p0, p1, scratch);
}

long dense_gemm_scratch_floats(int M) { return active_kernels().dense_gemm_scratch_floats(M); }

void pack_dense_weights(const float* W, int N, int K, float* packed, int threads) {
  active_kernels().pack_dense_weights(W, N, K, packed, threads);
}


long attention_scratch_floats(int length, int span) { return active_kernels().attention_scratch_floats(length, span); }
long attention_shared_floats(int length) { return active_kernels().attention_shared_floats(length); }

void layer_norm(const float* x, float* y, int rows, int n, const float* gamma, const float* beta, float eps) {
  active_kernels().layer_norm(x, y, rows, n, gamma, beta, eps);
}

}  // namespace pairrm::kernels
