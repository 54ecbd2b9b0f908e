#include "tools/init_random.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "pairrm/pairrm.h"

namespace pairrm {
namespace {

namespace fs = std::filesystem;

// xoshiro256** with an approximately normal draw (sum of four uniforms, variance-corrected): fast enough
// for 435M values, and the exact distribution does not matter for benchmarking.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    uint64_t z = seed + 0x9E3779B97F4A7C15ull;
    for (auto& s : s_) {  // splitmix64
      z += 0x9E3779B97F4A7C15ull;
      uint64_t x = z;
      x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
      x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
      s = x ^ (x >> 31);
    }
  }
  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  float normal() {
    const uint64_t r = next();
    float sum = 0;
    for (int k = 0; k < 4; ++k) sum += static_cast<float>((r >> (16 * k)) & 0xFFFF) * (1.f / 65536.f);
    return (sum - 2.f) * 1.7320508f;  // Irwin-Hall(4): mean 2, variance 1/3
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

struct Spec {
  std::string name;
  std::vector<int64_t> shape;
  float mean, stddev;
};

// --realistic: a checkpoint whose logits are spread like PairRM's (of order 1-10, both signs, set by the
// texts), for `pairrm accuracy`: sign agreement with fp32 only means something on such logits.
//  - Hugging Face's own initialisation of DebertaV2 (initializer_range 0.02): every Linear weight and both
//    embedding tables N(0, 0.02), every bias 0, LayerNorm weight 1 and bias 0, the padding row 0.
//  - The embedding rows of <|candidate1|> and <|candidate2|> are 0 (LayerNorm keeps a zero row 0): the
//    states at those two positions, which the head reads, are then built from their context alone, as a
//    trained summary token's are. With random rows of their own instead, the logits are dominated by the
//    fixed difference of those two rows, not by the texts: measured on the full-size model (24 rows,
//    head_layer.4 at std 1), mean -12.2 and std 2.8, every logit negative: every reduced precision would
//    "agree" on every sign. (So did the first attempt at a realistic model, HF's init with the head at std
//    0.5: its mean |logit| of 13 was that fixed offset.)
//  - The head as Hugging Face draws it (head_layer.1 N(0, 0.02): W1·[s; c] has a std of ~0.9, so tanh works
//    in its graded range), except head_layer.4's weights, at kRealisticHead2Std: the text-dependent part of
//    the two prefix states' difference at the last layer is ~18 % of their norm (measured), so tanh(W1·[s; c1]) - tanh(W1·[s; c2]) is small in
//    each of the H units, and a std of 2 sums them into PairRM's range. The logit is linear in these
//    weights, so their std only scales the logits, not the errors relative to them.
// Measured on the full-size model (seed 0), the 500 rows of `pairrm accuracy`: mean |logit| 3.8, mean -0.42,
// std 4.8, 48 % positive.
constexpr float kRealisticHead2Std = 2.0f;
// Token ids of config.json whose embedding rows --realistic sets to 0.
constexpr int64_t kPadId = 0, kCand1Id = 128002, kCand2Id = 128003;

// (mean, std) of each kind of tensor.
struct Init {
  float mean, stddev;
};
struct Scales {
  Init embeddings, ln_weight, ln_bias, rel_embeddings, attn_weight, attn_bias, ffn_in_weight, ffn_out_weight,
      ffn_bias, head1_weight, head1_bias, head2_weight, head2_bias;
};

// The default (benchmark) checkpoint: scales near a trained DeBERTa's, weights ~N(0, 0.02..0.05), LayerNorm
// gains ~1. Its logits are tiny (~0.003: 24 such layers leave the three prefix states nearly alike), which
// does not matter for speed; every benchmark in BENCHMARKS.md ran on it, so it must not change.
constexpr Scales kBenchmark{{0, 0.05f}, {1, 0.05f}, {0, 0.02f}, {0, 0.05f}, {0, 0.03f}, {0, 0.02f}, {0, 0.03f},
                            {0, 0.02f}, {0, 0.02f}, {0, 0.03f}, {0, 0.02f}, {0, 0.05f}, {0, 0.02f}};

// --realistic's scales (see kRealisticHead2Std for the whole recipe).
constexpr Scales kHuggingFace{{0, 0.02f}, {1, 0}, {0, 0}, {0, 0.02f}, {0, 0.02f}, {0, 0}, {0, 0.02f},
                              {0, 0.02f}, {0, 0}, {0, 0.02f}, {0, 0}, {0, kRealisticHead2Std}, {0, 0}};

// PairRM-hf's tensors in file order (the order the values are drawn in).
std::vector<Spec> tensor_specs(int H, int I, int V, int span, int layers, const Scales& s) {
  std::vector<Spec> specs;
  auto add = [&](std::string name, std::vector<int64_t> shape, Init init) {
    specs.push_back({std::move(name), std::move(shape), init.mean, init.stddev});
  };
  const std::string p = "pretrained_model.";
  add(p + "embeddings.word_embeddings.weight", {V, H}, s.embeddings);
  add(p + "embeddings.LayerNorm.weight", {H}, s.ln_weight);
  add(p + "embeddings.LayerNorm.bias", {H}, s.ln_bias);
  add(p + "encoder.rel_embeddings.weight", {2 * span, H}, s.rel_embeddings);
  add(p + "encoder.LayerNorm.weight", {H}, s.ln_weight);
  add(p + "encoder.LayerNorm.bias", {H}, s.ln_bias);
  for (int l = 0; l < layers; ++l) {
    const std::string b = p + "encoder.layer." + std::to_string(l) + ".";
    for (const char* proj : {"query_proj", "key_proj", "value_proj"}) {
      add(b + "attention.self." + proj + ".weight", {H, H}, s.attn_weight);
      add(b + "attention.self." + proj + ".bias", {H}, s.attn_bias);
    }
    add(b + "attention.output.dense.weight", {H, H}, s.attn_weight);
    add(b + "attention.output.dense.bias", {H}, s.attn_bias);
    add(b + "attention.output.LayerNorm.weight", {H}, s.ln_weight);
    add(b + "attention.output.LayerNorm.bias", {H}, s.ln_bias);
    add(b + "intermediate.dense.weight", {I, H}, s.ffn_in_weight);
    add(b + "intermediate.dense.bias", {I}, s.ffn_bias);
    add(b + "output.dense.weight", {H, I}, s.ffn_out_weight);
    add(b + "output.dense.bias", {H}, s.ffn_bias);
    add(b + "output.LayerNorm.weight", {H}, s.ln_weight);
    add(b + "output.LayerNorm.bias", {H}, s.ln_bias);
  }
  add("head_layer.1.weight", {H, 2 * H}, s.head1_weight);
  add("head_layer.1.bias", {H}, s.head1_bias);
  add("head_layer.4.weight", {1, H}, s.head2_weight);
  add("head_layer.4.bias", {1}, s.head2_bias);
  return specs;
}

}  // namespace

void write_random_checkpoint(const RandomCheckpointOptions& o) {
  const int H = o.hidden_size, I = o.intermediate_size, V = 128005, span = 256;
  if (H % o.num_heads) throw Error("hidden size must be divisible by the head count");
  fs::create_directories(o.out_dir);
  const nlohmann::ordered_json config = {
      {"architectures", {"DebertaV2PairRM"}}, {"model_type", "deberta-v2"}, {"hidden_size", H},
      {"num_hidden_layers", o.num_layers}, {"num_attention_heads", o.num_heads}, {"intermediate_size", I},
      {"hidden_act", "gelu"}, {"layer_norm_eps", 1e-7}, {"vocab_size", V}, {"max_position_embeddings", 512},
      {"max_relative_positions", -1}, {"position_buckets", span}, {"relative_attention", true},
      {"pos_att_type", {"p2c", "c2p"}}, {"share_att_key", true}, {"norm_rel_ebd", "layer_norm"},
      {"position_biased_input", false}, {"type_vocab_size", 0}, {"pad_token_id", kPadId}, {"n_tasks", 1},
      {"source_prefix_id", 128001}, {"cand1_prefix_id", kCand1Id}, {"cand2_prefix_id", kCand2Id},
      {"cand_prefix_id", 128004}, {"torch_dtype", "float32"}, {"initializer_range", 0.02}};
  std::ofstream(o.out_dir + "/config.json") << config.dump(2) << "\n";

  std::vector<Spec> specs = tensor_specs(H, I, V, span, o.num_layers, o.realistic ? kHuggingFace : kBenchmark);

  nlohmann::ordered_json header = {{"__metadata__", {{"format", "pt"}, {"generator", "pairrm init-random"}}}};
  uint64_t offset = 0;
  for (const Spec& s : specs) {
    uint64_t n = 1;
    for (int64_t d : s.shape) n *= static_cast<uint64_t>(d);
    header[s.name] = {{"dtype", "F32"}, {"shape", s.shape}, {"data_offsets", {offset, offset + 4 * n}}};
    offset += 4 * n;
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8) h += ' ';  // keep the data 8-byte aligned
  const std::string path = o.out_dir + "/model.safetensors";
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(path + ": cannot write");
  const uint64_t header_len = h.size();
  out.write(reinterpret_cast<const char*>(&header_len), 8);
  out.write(h.data(), static_cast<std::streamsize>(h.size()));
  Rng rng(o.seed);
  std::vector<float> buf;
  for (const Spec& s : specs) {
    uint64_t n = 1;
    for (int64_t d : s.shape) n *= static_cast<uint64_t>(d);
    buf.resize(n);
    for (auto& v : buf) v = s.mean + s.stddev * rng.normal();
    if (o.realistic && &s == &specs.front()) {  // the word embeddings
      for (const int64_t id : {kPadId, kCand1Id, kCand2Id}) std::fill_n(buf.begin() + id * H, H, 0.f);
    }
    out.write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(4 * n));
  }
  if (!out) throw Error(path + ": write failed (disk full?)");
  for (const char* f : {"spm.model", "added_tokens.json", "special_tokens_map.json", "tokenizer_config.json"}) {
    const fs::path from = fs::path(o.tokenizer_dir) / f;
    if (fs::exists(from)) fs::copy_file(from, fs::path(o.out_dir) / f, fs::copy_options::overwrite_existing);
    else if (std::string(f) == "spm.model") throw Error(from.string() + ": missing (needed for the tokenizer)");
  }
}

}  // namespace pairrm
