// One ISA level's table (compiled once per level, like the kernels it lists).
#include "kernels/isa_kernels.h"

namespace pairrm::kernels::PAIRRM_ISA_NS {

#if defined(__AVX512BF16__)
#define PAIRRM_DENSE_GEMM_BF16 dense_gemm_bf16
#else
#define PAIRRM_DENSE_GEMM_BF16 nullptr
#endif

const KernelTable table = {PAIRRM_ISA_LEVEL,       panel_gemm,         panel_gemm_bf16,
                           rows_to_bf16,           disentangled_attention,
                           dense_gemm,             dense_gemm_scratch_floats,
                           PAIRRM_DENSE_GEMM_BF16, layer_norm,
                           attention_scratch_floats, attention_shared_floats,
                           fp32_fma_flops,         bf16_dot_flops,
                           int8_dot_ops};

}  // namespace pairrm::kernels::PAIRRM_ISA_NS
