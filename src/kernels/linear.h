// Linear layers on oneDNN matmul with the weights packed once at load (fp32, bf16 or int8), the bias and
// the epilogue (GELU, or adding into the residual already in C) fused where oneDNN allows.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/gemm_choice.h"
#include "pairrm/pairrm.h"

namespace pairrm::kernels {

using pairrm::Precision;

enum class Epilogue {
  kStore,       // C = A·Wᵀ + b
  kGelu,        // C = gelu(A·Wᵀ + b)   (exact erf form)
  kAccumulate,  // C = C + A·Wᵀ + b      (residual connections)
};

// Per-call scratch of one Context (activations converted to bf16/int8, int32 accumulators, and each column
// chunk's own dense output: oneDNN 2.6's fast matmul and GELU kernels take no row stride, they fall back to
// reference code, ~1000x slower).
struct LinearScratch {
  std::vector<float> chunk_out;
  std::vector<uint16_t> a_bf16;
  std::vector<uint8_t> a_u8;      // int8: the activations, asymmetric per row (quantize_activations)
  std::vector<float> a_scale;
  std::vector<int32_t> a_zero;
  std::vector<int32_t> acc;
  std::vector<float> a_wide;  // emulated bf16/int8: the rounded activations as floats
};

class PackedLinear {
 public:
  PackedLinear() = default;
  // W: [N, K] row-major (PyTorch's Linear layout), bias: [N]; both are copied. fp32 packs W into panels for
  // pairrm's own GEMM (dense_gemm.h: a row's bits never depend on the other rows of M); bf16 and int8 pack
  // a converted copy once for oneDNN: bf16 rounds to nearest even; int8 is symmetric per output channel
  // (scale = max|W[n,:]| / 127), its activations asymmetric u8 per row (scale and zero point over the row's
  // range).
  // fp32 runs on the GEMM choose_dense_gemm picks for this shape (gemm_choice.h); the second form names it.
  PackedLinear(const float* W, const float* bias, int N, int K, Precision precision);
  PackedLinear(const float* W, const float* bias, int N, int K, Precision precision, DenseGemm gemm);

  // C[M, N] (row stride ldc, 0 = N) = epilogue(A[M, K]·Wᵀ + b), A contiguous, on up to `threads` threads: the
  // result is the same for every thread count. Where rows_independent(), a row's result is also the same for
  // any M (any rows around it); otherwise (oneDNN, fixed column chunks) it depends on M. int8 quantizes each
  // row of A dynamically (asymmetric u8: x ≈ scale·(q − zero) over [min(A[m,:], 0), max(A[m,:], 0)]).
  // kAccumulate adds the residual (row stride ldc; default: C itself) into C: C = residual + A·Wᵀ + b.
  void forward(const float* A, int M, float* C, Epilogue epilogue, LinearScratch& scratch, int ldc, int threads,
               const float* residual = nullptr) const;

  // Whether a row's result is the same whatever other rows share the call (pairrm's own fp32 GEMM), so that
  // rows may be batched into one call without changing any row's bits.
  bool rows_independent() const;
  // fp32: which GEMM runs this layer and how it was chosen (bf16/int8: how = "", gemm own).
  const GemmChoice& gemm_choice() const;
  int n() const { return n_; }
  int k() const { return k_; }
  size_t packed_bytes() const;
  // The kernel oneDNN runs for a chunk (e.g. "brg:avx512_core_amx_bf16"; "sgemm" for fp32): a "ref" here
  // means this CPU or build lacks the fast kernels, and the layer runs orders of magnitude slower.
  std::string kernel_name() const;

 private:
  void forward_panels(const float* A, int M, float* C, Epilogue epilogue, int ldc, int threads,
                      const float* residual) const;
  void forward_sgemm(const float* A, int M, float* C, Epilogue epilogue, LinearScratch& scratch, int ldc,
                     int threads) const;
  PackedLinear(const float* W, const float* bias, int N, int K, Precision precision, const GemmChoice& choice);
  struct State;
  std::shared_ptr<const State> s_;
  int n_ = 0, k_ = 0;
};

// x = gelu(x) over `count` contiguous floats (oneDNN's vectorised exact-erf GELU).
void gelu(float* x, long count);

}  // namespace pairrm::kernels
