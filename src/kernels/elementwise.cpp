#include "kernels/elementwise.h"

#include <cmath>

namespace pairrm::kernels {

void layer_norm(const float* x, float* y, int rows, int n, const float* gamma, const float* beta, float eps) {
#pragma omp parallel for schedule(static)
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + static_cast<long>(r) * n;
    float* yr = y + static_cast<long>(r) * n;
    // Two passes in double: eps is 1e-7, so the variance must not lose digits to cancellation.
    double sum = 0;
    for (int i = 0; i < n; ++i) sum += xr[i];
    const double mean = sum / n;
    double sq = 0;
    for (int i = 0; i < n; ++i) {
      const double d = xr[i] - mean;
      sq += d * d;
    }
    const double inv = 1.0 / std::sqrt(sq / n + static_cast<double>(eps));
    for (int i = 0; i < n; ++i) yr[i] = static_cast<float>((xr[i] - mean) * inv) * gamma[i] + beta[i];
  }
}

void gelu_inplace(float* x, long count) {
#pragma omp parallel for schedule(static)
  for (long i = 0; i < count; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752440f));
}

void softmax_rows(float* x, int rows, int n, int ld) {
  for (int r = 0; r < rows; ++r) {
    float* xr = x + static_cast<long>(r) * ld;
    float m = xr[0];
    for (int j = 1; j < n; ++j) m = xr[j] > m ? xr[j] : m;
    float sum = 0;
    for (int j = 0; j < n; ++j) {
      xr[j] = std::exp(xr[j] - m);
      sum += xr[j];
    }
    const float inv = 1.f / sum;
    for (int j = 0; j < n; ++j) xr[j] *= inv;
  }
}

}  // namespace pairrm::kernels
