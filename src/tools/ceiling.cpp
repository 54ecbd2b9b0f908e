#include "tools/ceiling.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <vector>

#include "kernels/gemm_choice.h"
#include "kernels/isa.h"
#include "kernels/kernel_table.h"
#include "kernels/linear.h"
#include "tools/clock.h"

namespace pairrm {
namespace {

using PeakLoop = double (*)(long);

// The loop on every thread at once, best of three ~0.1 s runs, in GFLOP/s for all threads together.
double peak_rate(PeakLoop loop, int threads) {
  constexpr long kIterations = 20'000'000;
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    double ops = 0;
    const double t0 = now_s();
#pragma omp parallel num_threads(threads) reduction(+ : ops)
    ops += loop(kIterations);
    best = std::max(best, ops / (now_s() - t0) / 1e9);
  }
  return best;
}

// The dense layers of one encoder layer (4·[H,H] + [I,H] + [H,I] weights, M = tokens) through PackedLinear
// as the encoder runs them; best of two timed passes after a warm-up.
double gemm_rate(Precision p, int threads, const CeilingShape& s) {
  const int H = s.hidden, I = s.intermediate, M = s.tokens;
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.f, 0.02f);
  auto random = [&](size_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
  };
  const auto w_hh = random(static_cast<size_t>(H) * H), w_ih = random(static_cast<size_t>(I) * H),
             w_hi = random(static_cast<size_t>(H) * I), bias = random(std::max(H, I)),
             a = random(static_cast<size_t>(M) * std::max(H, I));
  const kernels::PackedLinear hh(w_hh.data(), bias.data(), H, H, p), ih(w_ih.data(), bias.data(), I, H, p),
      hi(w_hi.data(), bias.data(), H, I, p);
  std::vector<float> out(static_cast<size_t>(M) * std::max(H, I));
  kernels::LinearScratch scratch;
  auto layer = [&] {
    for (int q = 0; q < 4; ++q) hh.forward(a.data(), M, out.data(), kernels::Epilogue::kStore, scratch, 0, threads);
    ih.forward(a.data(), M, out.data(), kernels::Epilogue::kStore, scratch, 0, threads);
    hi.forward(a.data(), M, out.data(), kernels::Epilogue::kStore, scratch, 0, threads);
  };
  layer();
  const double flops = 2.0 * M * (4.0 * H * H + 2.0 * H * I);
  double best = 0;
  for (int rep = 0; rep < 2; ++rep) {
    const double t0 = now_s();
    layer();
    best = std::max(best, flops / (now_s() - t0) / 1e9);
  }
  return best;
}

const char* fma_name(kernels::Isa isa) {
  switch (isa) {
    case kernels::Isa::kGeneric: return "mulps + addps xmm (no FMA at this level)";
    case kernels::Isa::kAvx2: return "vfmadd ymm";
    default: return "vfmadd zmm";
  }
}

nlohmann::ordered_json candidates_json(const Ceiling& c) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const GemmCandidates& g : c.candidates)
    out.push_back({{"n", g.n},
                   {"k", g.k},
                   {"own_gflops", g.own_gflops},
                   {"onednn_gflops", g.onednn_gflops},
                   {"own_percent_of_peak", 100 * g.own_gflops / c.peak_gflops},
                   {"onednn_percent_of_peak", 100 * g.onednn_gflops / c.peak_gflops},
                   {"engine_gemm", g.engine_gemm},
                   {"engine_how", g.engine_how}});
  return out;
}

}  // namespace

Ceiling measure_ceiling(Precision precision, int threads, const CeilingShape& shape) {
  const kernels::KernelTable& k = kernels::active_kernels();
  Ceiling c;
  c.precision = precision;
  c.threads = std::max(1, threads);
  c.instruction = fma_name(k.isa);
  PeakLoop loop = k.fp32_fma_flops;
  // bf16/int8 run their dot-product instruction only where oneDNN uses it: with it at this level.
  if (precision == Precision::kBF16 && k.bf16_dot_flops(1) > 0) {
    loop = k.bf16_dot_flops;
    c.instruction = "vdpbf16ps zmm";
  } else if (precision == Precision::kInt8 && k.int8_dot_ops(1) > 0) {
    loop = k.int8_dot_ops;
    c.instruction = "vpdpbusd zmm";
  }
  c.peak_gflops = peak_rate(loop, c.threads);
  c.gemm_gflops = gemm_rate(precision, c.threads, shape);
  if (precision != Precision::kF32) return c;
  const int H = shape.hidden, I = shape.intermediate;
  for (const auto& [n, k] : {std::pair{3 * H, H}, {H, H}, {I, H}, {H, I}}) {
    const kernels::GemmChoice now = kernels::measure_dense_gemm(n, k, c.threads, shape.tokens);
    const kernels::GemmChoice engine = kernels::choose_dense_gemm(n, k, c.threads);
    c.candidates.push_back({n, k, now.own_gflops, now.onednn_gflops, kernels::dense_gemm_name(engine.gemm), engine.how});
  }
  return c;
}

nlohmann::ordered_json ceiling_json(const Ceiling& c) {
  return {{"precision", precision_name(c.precision)},
          {"threads", c.threads},
          {"isa", kernels::isa_name(kernels::active_isa())},
          {"peak_instruction", c.instruction},
          {"peak_gflops", c.peak_gflops},
          {"gemm_gflops", c.gemm_gflops},
          {"gemm_percent_of_peak", 100 * c.gemm_gflops / c.peak_gflops},
          {"dense_gemms", candidates_json(c)}};
}

}  // namespace pairrm
