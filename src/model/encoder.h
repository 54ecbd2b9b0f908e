// The PairRM network: DeBERTa-v2 encoder + comparison head, fp32, on rows packed without padding.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "kernels/linear.h"
#include "model/config.h"
#include "model/weights.h"

namespace pairrm {

// Weight-only work done once at load: the normalised rel_embeddings and each layer's projections of them.
struct RelativeProjections {
  std::vector<float> rel;  // [2·span, H] = LayerNorm_enc(rel_embeddings[0 : 2·span])
  std::vector<std::vector<float>> pos_key;    // per layer [2·span, H] = rel·Wkᵀ + bk
  std::vector<std::vector<float>> pos_query;  // per layer [2·span, H] = rel·Wqᵀ + bq
};
RelativeProjections compute_relative_projections(const ModelConfig& c, const Weights& w);

// A layer's dense weights prepared once at load, Q, K and V fused into one [3H, H] matrix: packed for
// pairrm's own GEMM (fp32) or for oneDNN (bf16, int8).
struct PackedLayer {
  kernels::PackedLinear qkv, out, ffn_in, ffn_out;  // qkv: the fused [3H, H] projection, output [n, 3H] = Q | K | V
  bool bf16_attention = false;  // the attention's matrix products in bf16 (see AttentionProducts)
  // Whether its GEMMs give a row the same bits whatever other rows share the GEMM (PackedLinear::
  // rows_independent), so that rows can be batched into one GEMM.
  bool rows_share_gemms = false;
};
std::vector<PackedLayer> pack_layers(const ModelConfig& c, const Weights& w, Precision precision, bool bf16_attention);

// Scratch memory of one Context: grows to the largest batch seen, then is reused (no allocation in the
// steady state).
// Where the time of encoder_forward goes (for `pairrm bench`); off unless enabled.
struct Profile {
  bool enabled = false;
  double gemm_s = 0, attention_s = 0, total_s = 0;
};

// The buffers one group of rows needs on its way through the layers.
struct RowBuffers {
  std::vector<float> qkv, ctx, tmp, ffn, attn_scratch;
  kernels::LinearScratch linear;
  Profile profile;
};

struct Workspace {
  std::vector<float> x;            // the hidden states of the whole batch
  RowBuffers main;                 // groups run one at a time with every thread
  std::vector<RowBuffers> lanes;   // one-row groups run one per thread side by side
  std::vector<int> rel_index;
  Profile profile;
};

// Where rows can share GEMMs (PackedLayer::rows_share_gemms), consecutive rows are grouped up to this many
// tokens: one GEMM per dense layer and group, tall enough to keep every core's FMA units fed with short rows,
// small enough to bound the buffers (the group's [tokens, 3H] and [tokens, H] activations).
constexpr long kGroupTokens = 2048;

// Where they cannot, rows of at most this many tokens run one per thread, side by side, instead of one at a
// time on every thread: their GEMMs are too small to keep several cores busy. (Only while there is a row for
// every thread; the rest run one at a time on all threads. Both give a row the same bits.)
constexpr int kRowParallelMaxTokens = 1024;

// Where rows can share GEMMs and a batch has enough of them, they are grouped up to this many tokens instead
// and the groups run side by side in the same way: each thread's GEMMs are then as tall as one ~300-token
// row, where pairrm's GEMM is at its best, and nothing forks or joins per op. Measured on Zen 4, 2 threads,
// best of 3 interleaved (BENCHMARKS.md): 8 × 300 tokens 1.297 → 1.227 s per pair (oneDNN's one row per
// thread: 1.292), 256 short rows 0.305 → 0.296. The grouping never changes a row's bits.
constexpr long kLaneGroupTokens = 512;

struct RowRef {
  const int32_t* ids;
  int length;
};

// Observer of intermediate states, for debugging and tests: layer 0 is the embedding output, 1..L the
// layers; `x` is [length, H] of row `row`.
using LayerObserver = std::function<void(int row, int layer, const float* x, int length)>;

// Runs the encoder over the rows (stored one after another, no padding): on return ws.x holds the last
// hidden states [sum(length), H]. Token ids must be < vocab_size (checked; throws pairrm::Error).
// A row's result is bitwise the same whatever else is in the batch (its GEMMs shared only where they give
// each row the same bits in any company, its attention its own), and every kernel splits its work in fixed
// pieces (panels, column chunks, heads, token rows), so it is also the same whatever the thread count.
void encoder_forward(const ModelConfig& c, const Weights& w, const RelativeProjections& rp,
                     const std::vector<PackedLayer>& layers, const std::vector<RowRef>& rows, int threads, Workspace& ws,
                     const LayerObserver& observer = nullptr);

// logit = mean over tasks of score(c1) - score(c2), score(c) = W4·tanh(W1·[s; c] + b1) + b4, from the
// final states at the three prefix positions. Accumulates in double.
double head_logit(const ModelConfig& c, const Weights& w, const float* s, const float* c1, const float* c2);

}  // namespace pairrm
