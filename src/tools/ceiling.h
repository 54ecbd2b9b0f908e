// This machine's own ceilings, measured in the same run as what they judge (a CPU's figures differ from
// host to host and day to day): the peak of the multiply-add instruction each precision's products use,
// and the best GEMM throughput the library reaches on PairRM's dense-layer shapes, for a thread count.
#pragma once
#include <nlohmann/json.hpp>
#include <vector>

#include "pairrm/pairrm.h"

namespace pairrm {

struct CeilingShape {
  int hidden = 1024, intermediate = 4096;  // PairRM's dense layers: 4 of [H,H], one [I,H], one [H,I]
  int tokens = 300;                        // rows of the GEMM (M)
};

// fp32: both GEMM candidates on one dense-layer shape, timed in this run, and the engine's choice for it.
struct GemmCandidates {
  int n = 0, k = 0;
  double own_gflops = 0, onednn_gflops = 0;  // at CeilingShape::tokens rows
  std::string engine_gemm, engine_how;       // choose_dense_gemm's answer (forced, cached or measured)
};

struct Ceiling {
  Precision precision = Precision::kF32;
  int threads = 1;
  const char* instruction = "";  // what the peak loop ran (e.g. "vfmadd231ps zmm", "vdpbf16ps zmm")
  double peak_gflops = 0;        // that instruction's rate on `threads` threads, register-resident
  double gemm_gflops = 0;        // the dense layers' GEMMs as the engine runs them (chunked, this precision)
  std::vector<GemmCandidates> candidates;  // fp32 only: [3H,H] (qkv), [H,H], [I,H], [H,I]
};

// Measures both ceilings for one precision (about a second each). The peak of bf16/int8 is their dot-product
// instruction where the active ISA level has it, else fp32 FMA (what their fallback path then runs on).
Ceiling measure_ceiling(Precision precision, int threads, const CeilingShape& shape = {});

nlohmann::ordered_json ceiling_json(const Ceiling& c);

}  // namespace pairrm
