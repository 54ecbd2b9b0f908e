// The checkpoint's tensors, checked against the shapes config.json implies, as fp32 matrices.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "model/config.h"

namespace pairrm {

// A read-only fp32 tensor: points into the mapping (F32, aligned) or into storage owned by Weights
// (F16/BF16 converted at load, or misaligned F32 copied).
struct Matrix {
  const float* data = nullptr;
  int rows = 0;  // for a vector: rows = 1
  int cols = 0;
};

struct LayerWeights {
  Matrix q_w, q_b, k_w, k_b, v_w, v_b;  // [H, H] (out, in) and [H]
  Matrix attn_out_w, attn_out_b;         // [H, H], [H]
  Matrix attn_ln_w, attn_ln_b;           // [H]
  Matrix ffn_in_w, ffn_in_b;             // [I, H], [I]
  Matrix ffn_out_w, ffn_out_b;           // [H, I], [H]
  Matrix out_ln_w, out_ln_b;             // [H]
};

struct Weights {
  Matrix word_embeddings;        // [V, H]
  Matrix emb_ln_w, emb_ln_b;     // [H]
  Matrix rel_embeddings;         // [2*span or more, H]
  Matrix enc_ln_w, enc_ln_b;     // [H] (applied to rel_embeddings)
  std::vector<LayerWeights> layers;
  Matrix head1_w, head1_b;       // [H, 2H], [H]
  Matrix head2_w, head2_b;       // [n_tasks, H], [n_tasks]
  int64_t parameter_count = 0;

  std::shared_ptr<SafetensorsFile> file;      // keeps the mapping alive
  std::vector<std::vector<float>> converted;  // storage of converted tensors
};

// Loads and validates every tensor the config requires; unknown extra tensors are skipped. Throws
// pairrm::Error naming the file, the tensor and the expectation.
Weights load_weights(const std::string& safetensors_path, const ModelConfig& config);

}  // namespace pairrm
