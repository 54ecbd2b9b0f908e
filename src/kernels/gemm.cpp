#include "kernels/gemm.h"

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>

#include <algorithm>
#include <exception>
#include <string>

#include "pairrm/pairrm.h"

namespace pairrm::kernels {

void for_each_chunk(int count, int threads, const std::function<void(int)>& task) {
  if (count <= 0) return;
  std::exception_ptr error;
#pragma omp parallel num_threads(std::max(1, std::min(threads, count)))
  {
    omp_set_num_threads(1);  // for this thread's nested calls only: oneDNN then runs single-threaded
#pragma omp for schedule(dynamic, 1)
    for (int c = 0; c < count; ++c) {
      try {
        task(c);
      } catch (...) {
#pragma omp critical(pairrm_chunk_error)
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

void linear(const float* A, int M, int K, int lda, const float* W, int N, const float* bias, float* C, int ldc,
            bool accumulate, int threads) {
  if (M == 0) return;
  for_each_chunk(column_chunks(N), threads,
                 [&](int chunk) { linear_chunk(A, M, K, lda, W, N, bias, C + chunk * kColumnChunk, ldc, accumulate, chunk); });
}

void linear_chunk(const float* A, int M, int K, int lda, const float* W, int N, const float* bias, float* out,
                  int ldo, bool accumulate, int chunk) {
  const int n0 = chunk * kColumnChunk, nc = std::min(kColumnChunk, N - n0);
  if (bias) {
    for (int i = 0; i < M; ++i) {
      float* c = out + static_cast<long>(i) * ldo;
      if (accumulate)
        for (int j = 0; j < nc; ++j) c[j] += bias[n0 + j];
      else
        for (int j = 0; j < nc; ++j) c[j] = bias[n0 + j];
    }
  }
  const float beta = (bias || accumulate) ? 1.f : 0.f;
  const dnnl_status_t s = dnnl_sgemm('N', 'T', M, nc, K, 1.f, A, lda, W + static_cast<long>(n0) * K, K, beta, out, ldo);
  if (s != dnnl_success) throw Error("oneDNN sgemm failed in linear (status " + std::to_string(s) + ")");
}

}  // namespace pairrm::kernels
