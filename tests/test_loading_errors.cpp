// Loading: every malformed checkpoint is a clear pairrm::Error naming the file, the tensor and the
// expectation; conversions and both config layouts.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "fixtures.h"
#include "tokenizer/spm_proto.h"
#include "model/config.h"

namespace pairrm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// A safetensors file split into its header (JSON) and data section, to be edited and written back.
struct Safetensors {
  json header;
  std::string data;

  static Safetensors read(const std::string& path) {
    const std::string b = read_bytes(path);
    uint64_t n;
    std::memcpy(&n, b.data(), 8);
    return {json::parse(b.substr(8, n)), b.substr(8 + n)};
  }
  std::string bytes() const {
    std::string h = header.dump();
    while ((8 + h.size()) % 8) h += ' ';
    const uint64_t n = h.size();
    std::string out(reinterpret_cast<const char*>(&n), 8);
    return out + h + data;
  }
};

// A scratch copy of the tiny checkpoint in which one file is replaced.
class Checkpoint {
 public:
  Checkpoint() {
    dir_ = (fs::temp_directory_path() / ("pairrm_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++))).string();
    fs::create_directories(dir_);
    for (const auto& e : fs::directory_iterator(test::model_dir("tiny")))
      if (e.path().filename() != "expected.json" && e.path().filename() != "debug.safetensors")
        fs::copy_file(e.path(), fs::path(dir_) / e.path().filename());
  }
  ~Checkpoint() { fs::remove_all(dir_); }
  const std::string& dir() const { return dir_; }
  std::string weights() const { return dir_ + "/model.safetensors"; }
  std::string config() const { return dir_ + "/config.json"; }

 private:
  std::string dir_;
  static inline int counter_ = 0;
};

// Loads and returns the error message; fails the test if loading succeeds.
std::string load_error(const std::string& dir) {
  try {
    Model::load(dir);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "loaded without error";
  return "";
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "message: " << (haystack)

const std::string kQ = "pretrained_model.encoder.layer.1.attention.self.query_proj.weight";

TEST(LoadErrors, TruncatedFile) {
  Checkpoint ck;
  const std::string b = read_bytes(ck.weights());
  write_bytes(ck.weights(), b.substr(0, b.size() / 2));
  const std::string msg = load_error(ck.dir());
  EXPECT_CONTAINS(msg, "model.safetensors");
  EXPECT_CONTAINS(msg, "past the data section");
}

TEST(LoadErrors, TinyFiles) {
  Checkpoint ck;
  write_bytes(ck.weights(), "");
  EXPECT_CONTAINS(load_error(ck.dir()), "truncated");
  write_bytes(ck.weights(), std::string("\x10\x00\x00", 3));
  EXPECT_CONTAINS(load_error(ck.dir()), "truncated");
}

TEST(LoadErrors, HeaderLengthPastTheEnd) {
  Checkpoint ck;
  std::string b = read_bytes(ck.weights());
  const uint64_t n = b.size();  // header "longer" than the whole file
  std::memcpy(&b[0], &n, 8);
  write_bytes(ck.weights(), b);
  EXPECT_CONTAINS(load_error(ck.dir()), "runs past the end of the file");
  const uint64_t huge = ~uint64_t{0};
  std::memcpy(&b[0], &huge, 8);
  write_bytes(ck.weights(), b);
  EXPECT_CONTAINS(load_error(ck.dir()), "implausible");
}

TEST(LoadErrors, BadHeaderJson) {
  Checkpoint ck;
  std::string b = read_bytes(ck.weights());
  b[8] = '[';  // '{' -> '[' : no longer the object it claims to be
  b[9] = '}';
  write_bytes(ck.weights(), b);
  EXPECT_CONTAINS(load_error(ck.dir()), "header is not valid JSON");
}

TEST(LoadErrors, WrongDtype) {
  Checkpoint ck;
  auto st = Safetensors::read(ck.weights());
  st.header[kQ]["dtype"] = "I32";  // same byte size, so only the dtype check can catch it
  write_bytes(ck.weights(), st.bytes());
  const std::string msg = load_error(ck.dir());
  EXPECT_CONTAINS(msg, kQ);
  EXPECT_CONTAINS(msg, "dtype I32 is not supported");
}

TEST(LoadErrors, WrongShape) {
  Checkpoint ck;
  auto st = Safetensors::read(ck.weights());
  st.header[kQ]["shape"] = {32, 128};  // same number of elements
  write_bytes(ck.weights(), st.bytes());
  const std::string msg = load_error(ck.dir());
  EXPECT_CONTAINS(msg, kQ);
  EXPECT_CONTAINS(msg, "shape [32, 128], expected [64, 64]");
}

TEST(LoadErrors, ShapeAndByteCountDisagree) {
  Checkpoint ck;
  auto st = Safetensors::read(ck.weights());
  st.header[kQ]["shape"] = {64, 65};
  write_bytes(ck.weights(), st.bytes());
  const std::string msg = load_error(ck.dir());
  EXPECT_CONTAINS(msg, kQ);
  EXPECT_CONTAINS(msg, "bytes but F32 shape needs");
}

TEST(LoadErrors, MissingTensor) {
  Checkpoint ck;
  auto st = Safetensors::read(ck.weights());
  st.header["renamed"] = st.header["head_layer.4.weight"];
  st.header.erase("head_layer.4.weight");
  write_bytes(ck.weights(), st.bytes());
  const std::string msg = load_error(ck.dir());
  EXPECT_CONTAINS(msg, "'head_layer.4.weight': missing (expected shape [1, 64])");
}

TEST(LoadErrors, OverlappingOffsets) {
  Checkpoint ck;
  auto st = Safetensors::read(ck.weights());
  auto offsets = st.header[kQ]["data_offsets"];
  const std::string k = "pretrained_model.encoder.layer.1.attention.self.key_proj.weight";
  st.header[k]["data_offsets"] = {offsets[0].get<uint64_t>() + 8, offsets[1].get<uint64_t>() + 8};
  write_bytes(ck.weights(), st.bytes());
  EXPECT_CONTAINS(load_error(ck.dir()), "overlap");
}

TEST(LoadErrors, MissingFiles) {
  Checkpoint ck;
  fs::remove(ck.weights());
  EXPECT_CONTAINS(load_error(ck.dir()), "model.safetensors: missing");
  EXPECT_CONTAINS(load_error("/nonexistent/dir"), "config.json: missing");
  Checkpoint ck2;
  fs::remove(ck2.dir() + "/spm.model");
  EXPECT_CONTAINS(load_error(ck2.dir()), "spm.model: missing");
  Checkpoint ck3;
  write_bytes(ck3.dir() + "/spm.model", "not a protobuf at all \xff\xff\xff");
  EXPECT_CONTAINS(load_error(ck3.dir()), "spm.model");
}

TEST(ConfigErrors, EveryRequiredFieldMissing) {
  const json good = test::read_json(test::model_dir("tiny") + "/config.json");
  for (const char* field : {"hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                            "vocab_size", "layer_norm_eps", "max_position_embeddings", "max_relative_positions",
                            "position_buckets", "pos_att_type", "norm_rel_ebd", "relative_attention",
                            "share_att_key", "position_biased_input", "hidden_act", "n_tasks", "source_prefix_id",
                            "cand1_prefix_id", "cand2_prefix_id"}) {
    json c = good;
    c.erase(field);
    try {
      parse_model_config(c.dump(), "config.json");
      ADD_FAILURE() << "accepted a config without " << field;
    } catch (const Error& e) {
      EXPECT_CONTAINS(e.what(), std::string("missing required field '") + field + "'");
    }
  }
}

TEST(ConfigErrors, WrongTypesAndUnsupportedOptions) {
  const json good = test::read_json(test::model_dir("tiny") + "/config.json");
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"hidden_size", "64"}}, "field 'hidden_size' must be an integer"},
      {{{"hidden_size", -64}}, "must be a positive integer"},
      {{{"num_attention_heads", 5}}, "not divisible"},
      {{{"pos_att_type", {"c2p", "p2p"}}}, "pos_att_type 'p2p' is not supported"},
      {{{"pos_att_type", 3}}, "pos_att_type"},
      {{{"hidden_act", "relu"}}, "hidden_act 'relu' is not supported"},
      {{{"relative_attention", false}}, "relative_attention=false is not supported"},
      {{{"position_biased_input", true}}, "position_biased_input=true is not supported"},
      {{{"layer_norm_eps", 0}}, "layer_norm_eps"},
      {{{"cand1_prefix_id", 999999}}, "outside the vocabulary"},
  };
  for (const auto& [patch, message] : cases) {
    json c = good;
    c.update(patch);
    try {
      parse_model_config(c.dump(), "config.json");
      ADD_FAILURE() << "accepted " << patch.dump();
    } catch (const Error& e) {
      EXPECT_CONTAINS(e.what(), message);
    }
  }
  EXPECT_THROW(parse_model_config("{not json", "config.json"), Error);
  EXPECT_THROW(parse_model_config("[1, 2]", "config.json"), Error);
}

TEST(Config, PosAttTypeAsStringEqualsList) {
  json c = test::read_json(test::model_dir("tiny") + "/config.json");
  const ModelConfig a = parse_model_config(c.dump(), "a");
  c["pos_att_type"] = "p2c|c2p";
  const ModelConfig b = parse_model_config(c.dump(), "b");
  EXPECT_TRUE(a.c2p && a.p2c && b.c2p && b.p2c);
  EXPECT_EQ(a.max_relative_positions, 512);  // -1 => max_position_embeddings
  EXPECT_EQ(a.attention_span(), 256);
}

TEST(Config, OriginalRankerLayoutUsesDebertaV3LargeShapes) {
  const json ranker = {{"ranker_type", "pairranker"}, {"model_name", "microsoft/deberta-v3-large"},
                       {"source_maxlength", 1224},    {"candidate_maxlength", 412},
                       {"n_tasks", 1},                {"drop_out", 0.05},
                       {"fp16", true},                {"inference_mode", "bubble"}};
  const ModelConfig c = parse_model_config(ranker.dump(), "config.json");
  EXPECT_EQ(c.layout, "llm-blender-ranker");
  EXPECT_EQ(c.hidden_size, 1024);
  EXPECT_EQ(c.num_layers, 24);
  EXPECT_EQ(c.num_heads, 16);
  EXPECT_EQ(c.intermediate_size, 4096);
  EXPECT_EQ(c.vocab_size, 128005);
  EXPECT_EQ(c.attention_span(), 256);
  EXPECT_EQ(c.max_total_tokens(), 2048);
  EXPECT_TRUE(c.c2p && c.p2c);
  json other = ranker;
  other["model_name"] = "microsoft/deberta-v3-base";
  EXPECT_THROW(parse_model_config(other.dump(), "config.json"), Error);

  // With the tiny weights the loader then names the first tensor whose shape does not fit.
  Checkpoint ck;
  write_bytes(ck.config(), ranker.dump());
  EXPECT_CONTAINS(load_error(ck.dir()), "expected [128005, 1024]");
}

// The original ranker layout takes its prefix ids from the tokenizer's added tokens: without them it is an
// error naming the token, never a default id.
TEST(Config, OriginalRankerLayoutNeedsItsAddedTokens) {
  const json ranker = {{"ranker_type", "pairranker"}, {"model_name", "microsoft/deberta-v3-large"},
                       {"source_maxlength", 1224}, {"candidate_maxlength", 412}, {"n_tasks", 1}};
  Checkpoint ck;
  write_bytes(ck.config(), ranker.dump());
  fs::remove(ck.dir() + "/added_tokens.json");
  json tc = test::read_json(test::model_dir("tiny") + "/tokenizer_config.json");
  tc.erase("added_tokens_decoder");
  write_bytes(ck.dir() + "/tokenizer_config.json", tc.dump());
  EXPECT_CONTAINS(load_error(ck.dir()), "<|source|>");
}

// The older tokenizer-file layout (added_tokens.json + special_tokens_map.json, no tokenizer_config.json)
// gives the same token rows and logits as the full one.
TEST(Load, OlderTokenizerFileLayoutGivesTheSameRows) {
  Checkpoint ck;
  fs::remove(ck.dir() + "/tokenizer_config.json");
  ASSERT_TRUE(fs::exists(ck.dir() + "/added_tokens.json"));
  auto older = Model::load(ck.dir());
  auto full = test::shared_model("tiny");
  const auto cases = test::read_json(test::fixtures_dir() + "/text_cases.json")["pair_rows"];
  ASSERT_GT(cases.size(), 0u);
  Context a(older, 1), b(full, 1);
  for (const auto& r : cases) {
    const PairRow x = older->build_row(r["source"].get<std::string>(), r["candidate1"].get<std::string>(),
                                       r["candidate2"].get<std::string>());
    EXPECT_EQ(x.ids, r["input_ids"].get<std::vector<int32_t>>());
    EXPECT_EQ(a.logits({x}), b.logits({x}));
  }
}

// An spm.model without nmt_nfkc's precompiled map (here: the identity-normaliser form the fast tokenizer
// runs) would skip normalisation silently: refused.
TEST(Tokenizer, AnSpmModelWithoutNormalisationMapIsRefused) {
  Checkpoint ck;
  const std::string spm = read_bytes(ck.dir() + "/spm.model");
  write_bytes(ck.dir() + "/spm.model", make_fast_equivalent_model(spm, "spm.model"));
  EXPECT_CONTAINS(load_error(ck.dir()), "no precompiled normalisation map");
}

// Rounds every F32 value to bf16 (round to nearest even) or fp16 and stores it in that dtype.
Safetensors convert_all(const Safetensors& src, const std::string& dtype, Safetensors* rounded_f32) {
  Safetensors out{json::object(), ""}, ref{json::object(), ""};
  for (const auto& [name, v] : src.header.items()) {
    if (name == "__metadata__" || v["dtype"] != "F32") continue;
    const uint64_t b = v["data_offsets"][0], e = v["data_offsets"][1];
    const size_t n = (e - b) / 4;
    std::string half(n * 2, '\0'), f32(n * 4, '\0');
    for (size_t i = 0; i < n; ++i) {
      float f;
      std::memcpy(&f, src.data.data() + b + 4 * i, 4);
      uint32_t bits;
      std::memcpy(&bits, &f, 4);
      uint16_t h;
      float back;
      if (dtype == "BF16") {
        h = static_cast<uint16_t>((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
        const uint32_t bb = static_cast<uint32_t>(h) << 16;
        std::memcpy(&back, &bb, 4);
      } else {
        _Float16 x = static_cast<_Float16>(f);
        std::memcpy(&h, &x, 2);
        back = static_cast<float>(x);
      }
      std::memcpy(&half[2 * i], &h, 2);
      std::memcpy(&f32[4 * i], &back, 4);
    }
    out.header[name] = {{"dtype", dtype}, {"shape", v["shape"]}, {"data_offsets", {out.data.size(), out.data.size() + half.size()}}};
    out.data += half;
    ref.header[name] = {{"dtype", "F32"}, {"shape", v["shape"]}, {"data_offsets", {ref.data.size(), ref.data.size() + f32.size()}}};
    ref.data += f32;
  }
  *rounded_f32 = ref;
  return out;
}

TEST(Load, Float16AndBFloat16AreConvertedExactly) {
  // A checkpoint stored in F16/BF16 must give bitwise the same logits as the F32 checkpoint holding the
  // same (rounded) values: conversion is exact, so nothing but the stored values may differ.
  const auto src = Safetensors::read(test::model_dir("tiny") + "/model.safetensors");
  for (const std::string& dtype : std::vector<std::string>{"BF16", "F16"}) {
    Checkpoint half, ref;
    Safetensors rounded;
    write_bytes(half.weights(), convert_all(src, dtype, &rounded).bytes());
    write_bytes(ref.weights(), rounded.bytes());
    auto mh = Model::load(half.dir());
    auto mr = Model::load(ref.dir());
    Context ch(mh, 1), cr(mr, 1);
    const Comparison c{"What is 2+2?", "4", "2+2 equals 4 because adding two and two gives four."};
    const double lh = ch.compare({c}).at(0).score;
    EXPECT_EQ(lh, cr.compare({c}).at(0).score) << dtype;
    EXPECT_TRUE(std::isfinite(lh));
  }
}

TEST(Load, UnknownExtraTensorsAreSkipped) {
  // tiny_b holds an I64 pretrained_model.embeddings.position_ids, as real checkpoints may.
  auto m = test::shared_model("tiny_b");
  EXPECT_EQ(m->info().num_layers, 3);
  EXPECT_GT(m->info().parameter_count, 0);
}

}  // namespace
}  // namespace pairrm
