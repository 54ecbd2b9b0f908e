// Compiled once per ISA level (kernels/isa.h) into the namespace PAIRRM_ISA_NS.
#include "kernels/isa_kernels.h"

#include <cmath>

namespace pairrm::kernels::PAIRRM_ISA_NS {

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

}  // namespace pairrm::kernels::PAIRRM_ISA_NS
