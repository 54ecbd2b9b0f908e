// Which fp32 GEMM runs a dense layer, chosen per machine and layer shape by timing the candidates this binary
// has (as a tuned BLAS picks kernels by measurement rather than by the CPU's name):
//   own     pairrm's packed-panel GEMM of the active ISA level (dense_gemm.h): a row's bits never depend on
//           the rows around it, so the rows of a batch share one GEMM;
//   onednn  oneDNN's sgemm on the plain weights, in fixed column chunks, one row per call (its rounding
//           depends on M, so rows never share a call: a row's bits still never depend on its batch).
// Both give every row the same bits for every thread count. PAIRRM_GEMM=own|onednn forces one (auto, the
// default, measures). A measured choice is kept in a small JSON cache per machine ($PAIRRM_GEMM_CACHE, else
// $XDG_CACHE_HOME/pairrm/gemm-choice.json, else ~/.cache/pairrm/gemm-choice.json; PAIRRM_GEMM_CACHE=off keeps
// none), so a machine's later loads skip the timing and keep the same choice, hence the same bits.
#pragma once
#include <string>

namespace pairrm::kernels {

enum class DenseGemm { kOwn, kOneDnn };

const char* dense_gemm_name(DenseGemm gemm);  // "own" | "onednn"

struct GemmChoice {
  DenseGemm gemm = DenseGemm::kOwn;
  std::string how;            // "forced by PAIRRM_GEMM", "measured" or "cached" (measured before on this machine)
  double own_gflops = 0;      // the candidates' rates at kChoiceRows rows (0 where not measured: forced)
  double onednn_gflops = 0;
};

// Rows of the timing: one pair of ~300 tokens, the typical row (and where the candidates differ most: at
// thousands of rows both are near their peak).
constexpr int kChoiceRows = 300;
// oneDNN is chosen only when it is at least this much faster: own's batching of rows, which the timing at
// one row does not credit, and fewer flips between near-equal rates from one machine's noise.
constexpr double kOneDnnMargin = 1.05;

// The choice for a fp32 [N, K] layer, timed on `threads` threads where it is first made (PAIRRM_GEMM, the cache, or a timing of about
// 0.2 s per shape on the full model's shapes, written back to the cache). Memoised per process and shape.
// Throws pairrm::Error for an unknown PAIRRM_GEMM value.
GemmChoice choose_dense_gemm(int N, int K, int threads);

// The timing itself, without PAIRRM_GEMM, the cache or the memo: both candidates' GFLOP/s at `rows` rows.
GemmChoice measure_dense_gemm(int N, int K, int threads, int rows = kChoiceRows);

// Where the cache lives ("" = none), from the environment as described above.
std::string gemm_cache_path();
// The cache's key for a shape on this machine: CPU model, active ISA level, oneDNN version, shape. Not the
// thread count: the choice (and so a row's bits) is the same for every --threads.
std::string gemm_cache_key(int N, int K);

}  // namespace pairrm::kernels
