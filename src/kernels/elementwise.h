// Row-wise and element-wise ops of the encoder (fp32 in and out, accumulation where it matters in double).
#pragma once

namespace pairrm::kernels {

// y = LayerNorm(x) · gamma + beta per row of length n; in place allowed.
void layer_norm(const float* x, float* y, int rows, int n, const float* gamma, const float* beta, float eps);

}  // namespace pairrm::kernels
