// pairrm.cpp public API.
//
// A Model is loaded once (weights memory-mapped, weight-only work done at load) and is immutable afterwards,
// so one std::shared_ptr<const Model> can be shared by any number of threads. Every thread that runs the
// network owns a Context: the per-call scratch memory and the thread count (whisper.cpp's model/state split).
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pairrm {

namespace detail {
struct Access;  // the library's own code reaches a Model's or Context's internals through this (not public)
}

// Every failure the library reports (bad files, bad input) is a pairrm::Error with a message that names
// what was wrong; nothing is reported through crashes, asserts or silently wrong numbers.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What to do with the strings of special and prefix tokens ("<|source|>", "[SEP]", ...) inside user text.
enum class SpecialTextPolicy {
  // Default: they are plain text, tokenized like any other characters. User text can never inject a
  // control token, so a row always holds exactly one of each prefix token.
  kLiteral,
  // Hugging Face behaviour: such strings become their token ids (as transformers does). The head still
  // reads the prefix positions that pairrm.cpp placed itself, so the result is never misaligned.
  kHuggingFace,
};

struct TokenizerOptions {
  SpecialTextPolicy special_text = SpecialTextPolicy::kLiteral;
  // false (default): the Hugging Face *fast* tokenizer the published pipeline uses (no byte fallback, one
  // [UNK] for a run of unknown characters). true: SentencePiece with byte-fallback pieces (the slow tokenizer).
  bool byte_fallback = false;
};

// Arithmetic of the network's dense layers. fp32 is exact (the reference's numbers); bf16 runs the GEMMs
// in bfloat16 with fp32 accumulation; int8 uses per-channel int8 weights and per-row dynamic int8
// activations. Softmax, LayerNorm and the head stay fp32 in every precision; see AttentionProducts.
enum class Precision { kF32, kBF16, kInt8 };

// The attention's matrix products (Q·Kᵀ, the relative projections, P·V) under bf16 and int8 (fp32 always
// runs them in fp32). kAuto: bf16 (fp32 accumulation) where the CPU runs vdpbf16ps as often as an fp32 FMA,
// i.e. twice the FLOPs (AMD Zen 4 and later, in a build with AVX512-BF16); fp32 elsewhere (Intel issues
// vdpbf16ps on one port against two for FMAs: no gain, measured slower once the operands are converted).
enum class AttentionProducts { kAuto, kFp32, kBf16 };

struct LoadOptions {
  TokenizerOptions tokenizer;
  Precision precision = Precision::kF32;
  AttentionProducts attention = AttentionProducts::kAuto;
  // Truncation (llm-blender's source_max_length / candidate_max_length), in tokens of a segment with its
  // [CLS], prefix and [SEP]; 0 keeps the checkpoint's (PairRM: 1224 and 412). A row is then at most
  // source + 2 · candidate tokens; both must be in [3, 8192].
  int source_max_length = 0;
  int candidate_max_length = 0;
};

// The comparison "is candidate_a better than candidate_b as an answer to source?".
struct Comparison {
  std::string source;
  std::string candidate_a;
  std::string candidate_b;
};

// One token row of the network:
// [CLS] <|source|> S... [SEP] [CLS] <|candidate1|> C1... [SEP] [CLS] <|candidate2|> C2... [SEP]
// with the positions of the three prefix tokens the head reads.
struct PairRow {
  std::vector<int32_t> ids;
  int32_t source_pos = 0;
  int32_t cand1_pos = 0;
  int32_t cand2_pos = 0;
};

enum class CompareMode {
  kAB,    // logit(A, B)
  kBA,    // logit(B, A), not negated (llm-blender's "[B,A]")
  kBoth,  // logit(A, B) - logit(B, A) (llm-blender's default "[A,B]+[B,A]")
};

struct CompareResult {
  double logit_ab = 0;  // valid when has_ab
  double logit_ba = 0;  // valid when has_ba
  bool has_ab = false;
  bool has_ba = false;
  double score = 0;      // the value of the mode
  bool a_better = false;  // score > 0 (an exact tie reads as "A not better")
};

// The network's shape as config.json gives it: the public part of the loader's configuration, which
// extends this struct (so the two cannot drift apart).
struct ModelShape {
  int hidden_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int intermediate_size = 0;
  int vocab_size = 0;  // embedding rows
  int n_tasks = 0;
  int position_buckets = 0;        // <= 0: no log buckets
  int max_relative_positions = 0;  // after Hugging Face's rule: < 1 means max_position_embeddings
  int source_max_tokens = 1224;    // source segment, [CLS] and [SEP] included
  int candidate_max_tokens = 412;  // each candidate segment
};

// The GEMM that runs one shape of fp32 dense layer here, chosen at load by timing the candidates
// (PAIRRM_GEMM forces one; src/kernels/gemm_choice.h).
struct DenseGemmInfo {
  int n = 0, k = 0;            // the layer's weights, [N, K]
  std::string layers;          // which layers have this shape: "qkv", "attention output", "ffn in", "ffn out"
  std::string gemm;            // "own" (pairrm's packed-panel GEMM) or "onednn" (oneDNN sgemm, one row per call)
  std::string how;             // "measured", "cached" (measured before on this machine) or "forced by PAIRRM_GEMM"
  double own_gflops = 0;       // the candidates' rates when measured (also those read from the cache), else 0
  double onednn_gflops = 0;
};

// A loaded model: its shape and how it runs here.
struct ModelInfo : ModelShape {
  std::string directory;
  std::string layout;  // "pairrm-hf" or "llm-blender-ranker"
  int64_t parameter_count = 0;
  Precision precision = Precision::kF32;
  bool bf16_attention = false;  // the attention's products run in bf16 (AttentionProducts resolved)
  std::string gemm_kernel;      // what runs the dense layers: pairrm's fp32 GEMM, or oneDNN's kernel ("ref:…" = no fast one)
  std::string isa;              // the ISA level of pairrm's own kernels: generic | avx2 | avx512 | avx512_bf16
  std::string isa_choice;       // "cpuid" or "forced by PAIRRM_ISA"
  double packed_weight_mb = 0;  // the dense layers' weights as packed at load
  std::vector<DenseGemmInfo> dense_gemms;  // fp32: the GEMM of each dense-layer shape (empty for bf16/int8)
};

// One token of Model::tokenize: a token of the text with the bytes [begin, end) of the text it came from,
// or (added) the [CLS]/[SEP] around it, which has no bytes.
struct TextToken {
  int32_t id = 0;
  bool added = false;
  size_t begin = 0, end = 0;
};

class Model {
 public:
  // Loads a checkpoint directory (config.json, model.safetensors, spm.model, added tokens). Throws Error.
  static std::shared_ptr<const Model> load(const std::string& directory, const LoadOptions& options = {});
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelInfo& info() const;
  const TokenizerOptions& tokenizer_options() const;

  // [CLS] + tokens(text) + [SEP]. Throws Error on invalid UTF-8 or a text over the size limit.
  std::vector<int32_t> encode(std::string_view text) const;
  // The token row of one comparison, with the model card's truncation (per example).
  PairRow build_row(std::string_view source, std::string_view candidate1, std::string_view candidate2) const;
  // The same in two steps, so a text used in many rows is tokenized once: the tokens of a text (no [CLS]/
  // [SEP]; `what` names it in errors), then the row from three such token lists.
  std::vector<int32_t> text_tokens(std::string_view text, const char* what = "text") const;
  PairRow build_row(const std::vector<int32_t>& source, const std::vector<int32_t>& candidate1,
                    const std::vector<int32_t>& candidate2) const;

  // The tokenizer on its own (the servers' /tokenize and /decode): the ids of `text` (the same as
  // text_tokens) with their offsets, in [CLS] ... [SEP] when `add_special_tokens`; never truncated.
  std::vector<TextToken> tokenize(std::string_view text, bool add_special_tokens) const;
  int32_t vocab_size() const;
  // Hugging Face's convert_ids_to_tokens for one id ("▁Hello", "[CLS]"). Throws Error out of range.
  std::string token_string(int32_t id) const;
  bool is_special_token(int32_t id) const;
  // The fast tokenizer's decode (ids out of the vocabulary are skipped, as it does).
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const;

  struct Impl;

 private:
  friend struct detail::Access;
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Turns token rows into logits. A Context does it itself; the server's scheduler implements it by merging
// the rows of concurrent requests into shared batches. Everything built on logits (compare, rank, best of
// n, conversations) takes a Scorer, so it runs the same way in both.
class Scorer {
 public:
  virtual ~Scorer() = default;
  virtual const Model& model() const = 0;
  // logit(candidate1 over candidate2) for each row, in the order given.
  virtual std::vector<double> logits(const std::vector<PairRow>& rows) = 0;
};

// Per-thread state: scratch memory reused across calls and the thread count. Not thread-safe itself;
// create one per concurrent user of a Model.
class Context : public Scorer {
 public:
  // threads <= 0: all hardware threads.
  explicit Context(std::shared_ptr<const Model> model, int threads = 0);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  const Model& model() const override;
  int threads() const;
  void set_threads(int threads);

  // logit(candidate1 over candidate2) for each row, in the order given. The rows are scheduled longest
  // first in batches within the limits below, never padded; a row's logit is bitwise the same whatever
  // else is in the call.
  std::vector<double> logits(const std::vector<PairRow>& rows) override;

  // Scheduling limits of logits(): rows per batch and tokens per batch (a longer row runs alone). They
  // bound the scratch memory; they never change a result.
  void set_batch_limits(int max_rows, long max_tokens);

  // compare() of llm-blender for a batch of comparisons.
  std::vector<CompareResult> compare(const std::vector<Comparison>& items, CompareMode mode = CompareMode::kBoth);

  struct Impl;

 private:
  friend struct detail::Access;
  std::unique_ptr<Impl> impl_;
};

// compare() of llm-blender through any Scorer (Context::compare is this with the Context).
std::vector<CompareResult> compare(Scorer& scorer, const std::vector<Comparison>& items,
                                   CompareMode mode = CompareMode::kBoth);

// Names used by the CLI, the server and the Python module. Each parser throws Error naming the choices.
Precision parse_precision(std::string_view name);  // "fp32" | "bf16" | "int8" ("float32", "bfloat16" too)
const char* precision_name(Precision precision);    // "fp32" | "bf16" | "int8"
AttentionProducts parse_attention_products(std::string_view name);  // "auto" | "fp32" | "bf16"
// "ab" | "ba" | "both", or llm-blender's "[A,B]" | "[B,A]" | "[A,B]+[B,A]".
CompareMode parse_compare_mode(std::string_view name);

const char* version();

}  // namespace pairrm
