// One ISA level's table (compiled once per level, like the kernels it lists).
#include "kernels/isa_kernels.h"

namespace pairrm::kernels::PAIRRM_ISA_NS {

const KernelTable table = {PAIRRM_ISA_LEVEL,       panel_gemm,         panel_gemm_bf16,
                           rows_to_bf16,           disentangled_attention,
                           dense_gemm,             dense_gemm_scratch_floats,
                           pack_dense_weights,
                           layer_norm,
                           attention_scratch_floats, attention_shared_floats,
                           fp32_fma_flops,         bf16_dot_flops,
                           int8_dot_ops};

}  // namespace pairrm::kernels::PAIRRM_ISA_NS
