// vLLM's request fields that its rerank and score endpoints share (protocol_vllm.cpp, protocol_rerank.cpp).
#pragma once
#include <nlohmann/json.hpp>

#include "pairrm/pairrm.h"
#include "server/pointwise.h"

namespace pairrm::server {

// vLLM's use_activation (and its deprecated spellings, which win when set: config/pooler.py
// get_use_activation): true (default) passes a classifier's score through its activation, sigmoid here.
bool use_activation(const nlohmann::json& body);

// vLLM's truncate_prompt_tokens (Field(ge=-1)): null -> PairRM's own truncation; -1 -> the model's length;
// k -> rows of at most k tokens. Either way vLLM keeps the last tokens (left truncation).
Truncation vllm_truncation(const nlohmann::json& body, const ModelInfo& info);

}  // namespace pairrm::server
