#include "model/config.h"

#include <nlohmann/json.hpp>

#include "pairrm/pairrm.h"

namespace pairrm {
namespace {

using nlohmann::json;

class Reader {
 public:
  Reader(const json& j, std::string path) : j_(j), path_(std::move(path)) {}

  int integer(const char* key) const {
    const json& v = field(key);
    if (!v.is_number_integer()) fail(key, "an integer");
    const auto x = v.get<int64_t>();
    if (x < -(1 << 30) || x > (1 << 30)) fail(key, "an integer of plausible size");
    return static_cast<int>(x);
  }
  int positive(const char* key) const {
    const int x = integer(key);
    if (x <= 0) fail(key, "a positive integer");
    return x;
  }
  int integer_or(const char* key, int fallback) const { return j_.contains(key) ? integer(key) : fallback; }
  double number(const char* key) const {
    const json& v = field(key);
    if (!v.is_number()) fail(key, "a number");
    return v.get<double>();
  }
  bool boolean(const char* key) const {
    const json& v = field(key);
    if (!v.is_boolean()) fail(key, "true or false");
    return v.get<bool>();
  }
  std::string string(const char* key) const {
    const json& v = field(key);
    if (!v.is_string()) fail(key, "a string");
    return v.get<std::string>();
  }
  const json& field(const char* key) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) throw Error(path_ + ": missing required field '" + key + "'");
    return *it;
  }
  [[noreturn]] void fail(const char* key, const std::string& expected) const {
    throw Error(path_ + ": field '" + key + "' must be " + expected + ", got " + field(key).dump());
  }
  const json& raw() const { return j_; }
  const std::string& path() const { return path_; }

 private:
  const json& j_;
  std::string path_;
};

void parse_pos_att_type(const Reader& r, ModelConfig& c) {
  const json& v = r.field("pos_att_type");
  std::vector<std::string> kinds;
  if (v.is_string()) {  // "p2c|c2p"
    std::string s = v.get<std::string>(), part;
    for (char ch : s + "|") {
      if (ch == '|') {
        if (!part.empty()) kinds.push_back(part);
        part.clear();
      } else if (ch != ' ') {
        part += ch;
      }
    }
  } else if (v.is_array()) {
    for (const auto& e : v) {
      if (!e.is_string()) r.fail("pos_att_type", "a list of strings or a string like \"p2c|c2p\"");
      kinds.push_back(e.get<std::string>());
    }
  } else {
    r.fail("pos_att_type", "a list of strings or a string like \"p2c|c2p\"");
  }
  for (const auto& k : kinds) {
    if (k == "c2p") c.c2p = true;
    else if (k == "p2c") c.p2c = true;
    else throw Error(r.path() + ": pos_att_type '" + k + "' is not supported (only c2p and p2c)");
  }
}

// The DeBERTa-v2 fields shared by both layouts' backbones.
void parse_backbone(const Reader& r, ModelConfig& c) {
  c.hidden_size = r.positive("hidden_size");
  c.num_layers = r.positive("num_hidden_layers");
  c.num_heads = r.positive("num_attention_heads");
  c.intermediate_size = r.positive("intermediate_size");
  c.vocab_size = r.positive("vocab_size");
  c.layer_norm_eps = static_cast<float>(r.number("layer_norm_eps"));
  c.max_position_embeddings = r.positive("max_position_embeddings");
  c.max_relative_positions = r.integer("max_relative_positions");
  if (c.max_relative_positions < 1) c.max_relative_positions = c.max_position_embeddings;  // HF's rule
  c.position_buckets = r.integer("position_buckets");
  parse_pos_att_type(r, c);
  c.norm_rel_embeddings = r.string("norm_rel_ebd").find("layer_norm") != std::string::npos;
  c.pad_token_id = r.integer_or("pad_token_id", 0);

  if (c.hidden_size % c.num_heads != 0)
    throw Error(r.path() + ": hidden_size " + std::to_string(c.hidden_size) + " is not divisible by num_attention_heads " +
                std::to_string(c.num_heads));
  if (!(c.layer_norm_eps > 0)) r.fail("layer_norm_eps", "a positive number");
  if (c.hidden_size / c.num_heads > 128)
    throw Error(r.path() + ": head dimension " + std::to_string(c.hidden_size / c.num_heads) + " is over 128 (not supported)");
  // Options this engine does not implement are refused rather than silently computed differently.
  if (!r.boolean("relative_attention")) throw Error(r.path() + ": relative_attention=false is not supported");
  if (!r.boolean("share_att_key")) throw Error(r.path() + ": share_att_key=false is not supported");
  if (r.boolean("position_biased_input")) throw Error(r.path() + ": position_biased_input=true is not supported");
  if (r.integer_or("type_vocab_size", 0) != 0) throw Error(r.path() + ": type_vocab_size > 0 is not supported");
  if (r.integer_or("conv_kernel_size", 0) != 0) throw Error(r.path() + ": conv_kernel_size > 0 is not supported");
  if (r.raw().contains("embedding_size") && r.integer("embedding_size") != c.hidden_size)
    throw Error(r.path() + ": embedding_size different from hidden_size is not supported");
  const std::string act = r.string("hidden_act");
  if (act != "gelu") throw Error(r.path() + ": hidden_act '" + act + "' is not supported (only gelu)");
  if (c.attention_span() <= 0) throw Error(r.path() + ": position_buckets/max_relative_positions give no span");
  if (c.position_buckets > 0 && (c.position_buckets < 4 || c.max_relative_positions <= c.position_buckets / 2 + 1))
    throw Error(r.path() + ": position_buckets " + std::to_string(c.position_buckets) +
                " does not fit max_relative_positions " + std::to_string(c.max_relative_positions));
}

// microsoft/deberta-v3-large, as the original llm-blender/PairRM checkpoint was trained from it; the
// embedding matrix has 128005 rows (128000 pieces + [MASK] + the four prefix tokens).
json deberta_v3_large() {
  return json{{"hidden_size", 1024},        {"num_hidden_layers", 24},       {"num_attention_heads", 16},
              {"intermediate_size", 4096},  {"vocab_size", 128005},          {"layer_norm_eps", 1e-7},
              {"max_position_embeddings", 512}, {"max_relative_positions", -1}, {"position_buckets", 256},
              {"pos_att_type", "p2c|c2p"},  {"norm_rel_ebd", "layer_norm"},  {"relative_attention", true},
              {"share_att_key", true},      {"position_biased_input", false}, {"type_vocab_size", 0},
              {"hidden_act", "gelu"},       {"pad_token_id", 0}};
}

}  // namespace

ModelConfig parse_model_config(const std::string& text, const std::string& path) {
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    throw Error(path + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(path + ": not a JSON object");
  ModelConfig c;
  Reader r(j, path);
  if (j.contains("ranker_type")) {
    c.layout = "llm-blender-ranker";
    const std::string type = r.string("ranker_type");
    if (type != "pairranker") throw Error(path + ": ranker_type '" + type + "' is not supported (only pairranker)");
    const std::string backbone = r.string("model_name");
    if (backbone != "microsoft/deberta-v3-large")
      throw Error(path + ": model_name '" + backbone + "' is not supported (only microsoft/deberta-v3-large)");
    const json large = deberta_v3_large();
    parse_backbone(Reader(large, path + " (deberta-v3-large defaults)"), c);
    c.n_tasks = r.integer_or("n_tasks", 1);
    c.source_max_tokens = r.integer_or("source_maxlength", 1224);
    c.candidate_max_tokens = r.integer_or("candidate_maxlength", 412);
    // The ranker adds the prefix tokens after deberta's 128001 ids, in this order.
    c.source_prefix_id = 128001;
    c.cand1_prefix_id = 128002;
    c.cand2_prefix_id = 128003;
  } else {
    c.layout = "pairrm-hf";
    parse_backbone(r, c);
    c.n_tasks = r.positive("n_tasks");
    c.source_prefix_id = r.integer("source_prefix_id");
    c.cand1_prefix_id = r.integer("cand1_prefix_id");
    c.cand2_prefix_id = r.integer("cand2_prefix_id");
    c.source_max_tokens = r.integer_or("source_maxlength", 1224);
    c.candidate_max_tokens = r.integer_or("candidate_maxlength", 412);
  }
  if (c.n_tasks <= 0) throw Error(path + ": n_tasks must be positive");
  for (int id : {c.source_prefix_id, c.cand1_prefix_id, c.cand2_prefix_id})
    if (id < 0 || id >= c.vocab_size)
      throw Error(path + ": prefix token id " + std::to_string(id) + " is outside the vocabulary (" +
                  std::to_string(c.vocab_size) + ")");
  if (c.source_max_tokens < 3 || c.candidate_max_tokens < 3)
    throw Error(path + ": source/candidate max lengths must be at least 3 tokens");
  return c;
}

}  // namespace pairrm
