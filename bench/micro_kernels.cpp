// Google Benchmark micro-benchmarks of the kernels at PairRM's shapes (hidden 1024, 16 heads, span 256).
// Run: build/bench/pairrm_micro [--benchmark_filter=...]; threads follow OMP_NUM_THREADS.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstdint>
#include <random>
#include <vector>

#include "kernels/attention.h"
#include "kernels/elementwise.h"
#include "kernels/linear.h"
#include "kernels/panel_gemm.h"
#include "kernels/relative_position.h"

namespace {

using namespace pairrm;

std::vector<float> random_floats(size_t n, float scale, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// A Linear layer of M tokens: K=1024 -> N=4096 (the FFN's first half), in each precision.
void BM_Linear(benchmark::State& state) {
  const int M = static_cast<int>(state.range(0)), K = 1024, N = 4096;
  const auto precision = static_cast<Precision>(state.range(1));
  const auto W = random_floats(static_cast<size_t>(N) * K, 0.03f, 1), b = random_floats(N, 0.02f, 2);
  const auto A = random_floats(static_cast<size_t>(M) * K, 1.f, 3);
  std::vector<float> C(static_cast<size_t>(M) * N);
  kernels::PackedLinear lin(W.data(), b.data(), N, K, precision);
  kernels::LinearScratch scratch;
  const int threads = omp_get_max_threads();
  for (auto _ : state) lin.forward(A.data(), M, C.data(), kernels::Epilogue::kGelu, scratch, 0, threads);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * K, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
  state.SetLabel(pairrm::precision_name(precision));
}
BENCHMARK(BM_Linear)
    ->ArgsProduct({{300, 2048}, {static_cast<int>(Precision::kF32), static_cast<int>(Precision::kBF16),
                                 static_cast<int>(Precision::kInt8)}})
    ->Unit(benchmark::kMillisecond);

// The fp32 GEMM candidates (kernels/gemm_choice.h) on PairRM's four dense shapes, each named explicitly:
// 0 = pairrm's own packed-panel GEMM of the active level, 1 = oneDNN sgemm (one call for all M rows). Force a
// level with PAIRRM_ISA (which also caps oneDNN).
void BM_DenseGemm(benchmark::State& state) {
  const int M = static_cast<int>(state.range(0)), N = static_cast<int>(state.range(1)), K = static_cast<int>(state.range(2));
  const auto gemm = state.range(3) == 0 ? kernels::DenseGemm::kOwn : kernels::DenseGemm::kOneDnn;
  const auto W = random_floats(static_cast<size_t>(N) * K, 0.03f, 1), b = random_floats(N, 0.02f, 2);
  const auto A = random_floats(static_cast<size_t>(M) * K, 1.f, 3);
  std::vector<float> C(static_cast<size_t>(M) * N);
  kernels::PackedLinear lin(W.data(), b.data(), N, K, Precision::kF32, gemm);
  kernels::LinearScratch scratch;
  const int threads = omp_get_max_threads();
  for (auto _ : state) lin.forward(A.data(), M, C.data(), kernels::Epilogue::kStore, scratch, 0, threads);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * K, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
  state.SetLabel(kernels::dense_gemm_name(gemm));
}
BENCHMARK(BM_DenseGemm)
    ->ArgsProduct({{300, 2048}, {3072}, {1024}, {0, 1}})
    ->ArgsProduct({{300, 2048}, {1024}, {1024}, {0, 1}})
    ->ArgsProduct({{300, 2048}, {4096}, {1024}, {0, 1}})
    ->ArgsProduct({{300, 2048}, {1024}, {4096}, {0, 1}})
    ->Unit(benchmark::kMillisecond);

// Disentangled attention of one layer (16 heads) over L tokens; products in fp32 (0) or bf16 (1).
void BM_Attention(benchmark::State& state) {
  const int L = static_cast<int>(state.range(0)), H = 1024, heads = 16, span = 256;
  const auto qkv = random_floats(static_cast<size_t>(L) * 3 * H, 1.f, 4);
  const auto PK = random_floats(static_cast<size_t>(2 * span) * H, 1.f, 5), PQ = random_floats(PK.size(), 1.f, 6);
  std::vector<float> ctx(static_cast<size_t>(L) * H);
  std::vector<int> rel;
  kernels::relative_index_table(L, span, 512, span, rel);
  const int threads = 2;
  std::vector<float> scratch(kernels::attention_scratch_floats(L, span) * threads + kernels::attention_shared_floats(L));
  kernels::AttentionShape s;
  s.length = L;
  s.hidden = H;
  s.heads = heads;
  s.span = span;
  s.scale = 13.856406f;  // sqrt(64 * 3)
  s.bf16_products = state.range(1) != 0;
  for (auto _ : state)
    kernels::disentangled_attention(s, qkv.data(), qkv.data() + H, qkv.data() + 2 * H, 3 * H, PK.data(), PQ.data(),
                                    rel.data(), ctx.data(), H, scratch.data(), threads);
}
BENCHMARK(BM_Attention)->ArgsProduct({{300, 1000, 2048}, {0, 1}})->Unit(benchmark::kMillisecond);

// The attention's per-head products on one thread: Q·Kᵀ of a 64-query block against L keys (K = head_dim
// 64), and P·V (K = L): the shapes panel_gemm runs 2·L/64 times per head.
void BM_PanelGemm(benchmark::State& state) {
  const int L = static_cast<int>(state.range(0)), d = 64, block = 64;
  const bool pv = state.range(1) != 0;
  const int M = block, N = pv ? d : L, K = pv ? L : d;
  const auto A = random_floats(static_cast<size_t>(M) * K, 1.f, 10), B = random_floats(static_cast<size_t>(N) * K, 1.f, 11);
  std::vector<float> storage(kernels::packed_panels_floats(N, K) + 16), C(static_cast<size_t>(M) * N);
  float* packed = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(storage.data()) + 63) & ~uintptr_t{63});
  if (pv) kernels::pack_plain(B.data(), N, K, N, packed);
  else kernels::pack_transposed(B.data(), K, N, K, packed);
  for (auto _ : state) kernels::panel_gemm(A.data(), K, packed, C.data(), N, M, N, K, 1.f);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * K, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
  state.SetLabel(pv ? "P·V" : "Q·Kᵀ");
}
BENCHMARK(BM_PanelGemm)->ArgsProduct({{300, 2048}, {0, 1}})->Unit(benchmark::kMicrosecond);

void BM_LayerNorm(benchmark::State& state) {
  const int rows = static_cast<int>(state.range(0)), H = 1024;
  auto x = random_floats(static_cast<size_t>(rows) * H, 1.f, 7);
  const auto g = random_floats(H, 1.f, 8), b = random_floats(H, 0.1f, 9);
  std::vector<float> y(x.size());
  for (auto _ : state) kernels::layer_norm(x.data(), y.data(), rows, H, g.data(), b.data(), 1e-7f);
}
BENCHMARK(BM_LayerNorm)->Arg(300)->Arg(2048)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
