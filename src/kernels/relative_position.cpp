#include "kernels/relative_position.h"

#include <cmath>
#include <cstdlib>

namespace pairrm::kernels {

int relative_bucket(int r, int bucket_size, int max_position) {
  if (bucket_size <= 0 || max_position <= 0) return r;
  const int mid = bucket_size / 2;
  const int a = std::abs(r);
  if (a <= mid) return r;
  // Every step in float32, in PyTorch's order: log(abs/mid) / log((max_pos-1)/mid) * (mid-1), ceil, + mid.
  const float ratio = static_cast<float>(a) / static_cast<float>(mid);
  const float denom = std::log(static_cast<float>(static_cast<double>(max_position - 1) / mid));
  const float scaled = std::log(ratio) / denom * static_cast<float>(mid - 1);
  const int log_pos = static_cast<int>(std::ceil(scaled)) + mid;
  return r < 0 ? -log_pos : log_pos;
}

void relative_index_table(int n, int bucket_size, int max_position, int span, std::vector<int>& index) {
  index.resize(n > 0 ? 2 * n - 1 : 0);
  for (int d = -(n - 1); d <= n - 1; ++d) {
    int idx = relative_bucket(d, bucket_size, max_position) + span;
    idx = idx < 0 ? 0 : (idx > 2 * span - 1 ? 2 * span - 1 : idx);
    index[d + n - 1] = idx;
  }
}

}  // namespace pairrm::kernels
