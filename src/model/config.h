// The network's shape and options, read from config.json (PairRM-hf layout or llm-blender's ranker layout).
#pragma once
#include <string>

#include "pairrm/pairrm.h"

namespace pairrm {

// The public shape (ModelShape: sizes, buckets, truncation limits) plus what only the loader needs.
struct ModelConfig : ModelShape {
  std::string layout;  // "pairrm-hf" or "llm-blender-ranker"
  float layer_norm_eps = 0;
  int max_position_embeddings = 0;
  bool c2p = false;
  bool p2c = false;
  bool norm_rel_embeddings = false;  // norm_rel_ebd contains "layer_norm"
  int source_prefix_id = 0;
  int cand1_prefix_id = 0;
  int cand2_prefix_id = 0;
  int pad_token_id = 0;

  int head_dim() const { return hidden_size / num_heads; }
  // Rows of rel_embeddings used by attention, per side: the bucket count or max_relative_positions.
  int attention_span() const { return position_buckets > 0 ? position_buckets : max_relative_positions; }
  int max_total_tokens() const { return source_max_tokens + 2 * candidate_max_tokens; }
};

// Parses and validates config.json text. `path` is used in error messages. Throws pairrm::Error.
ModelConfig parse_model_config(const std::string& json_text, const std::string& path);

}  // namespace pairrm
