#include "kernels/isa.h"

#include <oneapi/dnnl/dnnl.h>

#include <cstdlib>
#include <mutex>

#include "pairrm/pairrm.h"

namespace pairrm::kernels {
namespace {

struct Choice {
  Isa isa = Isa::kGeneric;
  bool forced = false;
};

// oneDNN's level for ours: a forced run then uses no instruction the forced level's CPU lacks.
dnnl_cpu_isa_t dnnl_cap(Isa isa) {
  switch (isa) {
    case Isa::kGeneric: return dnnl_cpu_isa_sse41;  // oneDNN's lowest JIT level (every x86-64 CPU since 2008)
    case Isa::kAvx2: return dnnl_cpu_isa_avx2;
    case Isa::kAvx512: return dnnl_cpu_isa_avx512_core;
    case Isa::kAvx512Bf16: return dnnl_cpu_isa_avx512_core_bf16;
  }
  return dnnl_cpu_isa_all;
}

Choice resolve() {
  const char* env = std::getenv("PAIRRM_ISA");
  if (!env || !*env) return {best_supported_isa(), false};
  const Isa isa = parse_isa(env);
  if (!isa_supported(isa))
    throw Error(std::string("PAIRRM_ISA=") + env + ": this CPU cannot run that level (the best it runs is " +
                isa_name(best_supported_isa()) + ")");
  // Fails (harmlessly) when oneDNN already ran a primitive in this process: its cap is fixed at first use.
  dnnl_set_max_cpu_isa(dnnl_cap(isa));
  return {isa, true};
}

const Choice& choice() {
  // Not a function-local static initialised by resolve(): a throw there would be rethrown on every call
  // only by luck of the implementation; this states it.
  static std::once_flag once;
  static Choice c;
  static std::string error;
  std::call_once(once, [] {
    try {
      c = resolve();
    } catch (const Error& e) {
      error = e.what();
    }
  });
  if (!error.empty()) throw Error(error);
  return c;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kGeneric: return "generic";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx512Bf16: return "avx512_bf16";
  }
  return "?";
}

Isa parse_isa(std::string_view name) {
  for (Isa isa : all_isas())
    if (name == isa_name(isa)) return isa;
  throw Error("unknown ISA level '" + std::string(name) + "' (generic, avx2, avx512 or avx512_bf16)");
}

bool isa_supported(Isa isa) {
  // __builtin_cpu_supports also checks that the OS saves the vector state (XGETBV), so an AVX-512 CPU under
  // a kernel or hypervisor that disables it reports no AVX-512.
  __builtin_cpu_init();
  switch (isa) {
    case Isa::kGeneric: return true;
    // The levels are compiled with -march=x86-64-v3 / -v4, which also allow BMI1/2, LZCNT, MOVBE, F16C (and
    // AVX512CD): the check is the whole micro-architecture level, not just the vector extensions (a virtual
    // CPU may report AVX-512 yet hide BMI2, which the compiler uses for shifts).
    // (Spelled out: clang 14, which builds the fuzz targets, has no "x86-64-v3" here. Every CPU with AVX2,
    // FMA and BMI1/2 also has LZCNT, MOVBE and F16C.)
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi") &&
             __builtin_cpu_supports("bmi2");
    case Isa::kAvx512:
      return isa_supported(Isa::kAvx2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512cd");
    case Isa::kAvx512Bf16:
      return isa_supported(Isa::kAvx512) && __builtin_cpu_supports("avx512bf16") &&
             __builtin_cpu_supports("avx512vnni");
  }
  return false;
}

Isa best_supported_isa() {
  Isa best = Isa::kGeneric;
  for (Isa isa : all_isas())
    if (isa_supported(isa)) best = isa;
  return best;
}

std::vector<Isa> all_isas() { return {Isa::kGeneric, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Bf16}; }

Isa active_isa() { return choice().isa; }
const char* isa_choice() { return choice().forced ? "forced by PAIRRM_ISA" : "cpuid"; }

}  // namespace pairrm::kernels
