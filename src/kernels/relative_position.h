// DeBERTa-v2's relative positions: log buckets and the index into the normalised rel_embeddings.
#pragma once
#include <vector>

namespace pairrm::kernels {

// Bucket of relative distance r = i - j (make_log_bucket_position, computed in float32 as PyTorch does).
// bucket_size <= 0 or max_position <= 0: r itself.
int relative_bucket(int r, int bucket_size, int max_position);

// index[d + (n - 1)] = clamp(bucket(d) + span, 0, 2·span - 1) for d = -(n-1) .. n-1: the rel_embeddings row
// read by the score of query i and key j, with d = i - j (c2p and p2c read the same row: bucket is odd).
void relative_index_table(int n, int bucket_size, int max_position, int span, std::vector<int>& index);

}  // namespace pairrm::kernels
