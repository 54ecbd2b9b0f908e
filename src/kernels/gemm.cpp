#include "kernels/gemm.h"

#include <oneapi/dnnl/dnnl.h>

#include <string>

#include "pairrm/pairrm.h"

namespace pairrm::kernels {
namespace {

void check(dnnl_status_t s, const char* what) {
  if (s != dnnl_success) throw Error(std::string("oneDNN sgemm failed in ") + what + " (status " + std::to_string(s) + ")");
}

}  // namespace

void linear(const float* A, int M, int K, int lda, const float* W, int N, const float* bias, float* C, int ldc,
            bool accumulate) {
  if (M == 0) return;
  if (bias) {
    for (int i = 0; i < M; ++i) {
      float* c = C + static_cast<long>(i) * ldc;
      if (accumulate)
        for (int j = 0; j < N; ++j) c[j] += bias[j];
      else
        for (int j = 0; j < N; ++j) c[j] = bias[j];
    }
  }
  const float beta = (bias || accumulate) ? 1.f : 0.f;
  check(dnnl_sgemm('N', 'T', M, N, K, 1.f, A, lda, W, K, beta, C, ldc), "linear");
}

void matmul_nt(const float* A, int lda, const float* B, int ldb, float* C, int ldc, int M, int N, int K, float alpha) {
  if (M == 0 || N == 0) return;
  check(dnnl_sgemm('N', 'T', M, N, K, alpha, A, lda, B, ldb, 0.f, C, ldc), "matmul_nt");
}

void matmul_nn(const float* A, int lda, const float* B, int ldb, float* C, int ldc, int M, int N, int K) {
  if (M == 0 || N == 0) return;
  check(dnnl_sgemm('N', 'N', M, N, K, 1.f, A, lda, B, ldb, 0.f, C, ldc), "matmul_nn");
}

}  // namespace pairrm::kernels
