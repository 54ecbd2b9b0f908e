// The instruction-set levels the hand-written kernels are compiled for, and which one this process runs.
// Every level is compiled into the one binary (CMake builds kernels/{attention,panel_gemm,elementwise}.cpp
// once per level, each into its own namespace); the level is chosen by cpuid when first needed, or forced
// with PAIRRM_ISA=generic|avx2|avx512|avx512_bf16 (CTranslate2's CT2_FORCE_CPU_ISA). oneDNN, which runs the
// dense layers, dispatches its own kernels; a forced level also caps it (dnnl_set_max_cpu_isa), so a forced
// run is what a CPU of that level would run.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace pairrm::kernels {

enum class Isa {
  kGeneric,     // x86-64 baseline (SSE2): portable C++, auto-vectorised
  kAvx2,        // x86-64-v3: AVX2 + FMA (Haswell, Zen 1-3)
  kAvx512,      // x86-64-v4: AVX-512 F/BW/DQ/VL (Skylake-X and later)
  kAvx512Bf16,  // x86-64-v4 + AVX512-BF16 + AVX512-VNNI (Cooper Lake, Sapphire Rapids, Zen 4/5)
};

const char* isa_name(Isa isa);                       // "generic" | "avx2" | "avx512" | "avx512_bf16"
Isa parse_isa(std::string_view name);                // throws pairrm::Error naming the choices
bool isa_supported(Isa isa);                         // this CPU (and OS) can run it
Isa best_supported_isa();                            // the highest level this CPU runs
std::vector<Isa> all_isas();                         // every level compiled in, lowest first

// The level this process runs: PAIRRM_ISA when set (an unknown name, or a level this CPU lacks, throws
// pairrm::Error saying so), else the best supported one. Resolved once; Model::load calls it, so a bad
// PAIRRM_ISA is reported there.
Isa active_isa();
// "forced by PAIRRM_ISA" or "cpuid": how the active level was chosen.
const char* isa_choice();

}  // namespace pairrm::kernels
