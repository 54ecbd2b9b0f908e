#include <omp.h>

#include <algorithm>
#include <climits>
#include <thread>

#include "api/model_impl.h"
#include "io/mapped_file.h"
#include "kernels/isa.h"
#include "kernels/panel_gemm.h"
#include "util/utf8.h"

namespace pairrm {

const char* version() { return "0.1.0"; }

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

std::shared_ptr<const Model> Model::load(const std::string& directory, const LoadOptions& options) {
  const kernels::Isa isa = kernels::active_isa();  // first: a bad PAIRRM_ISA is reported before any work
  const std::string config_path = directory + "/config.json";
  if (!file_exists(config_path)) throw Error(config_path + ": missing (is '" + directory + "' a PairRM checkpoint directory?)");
  ModelConfig config = parse_model_config(read_text_file(config_path), config_path);
  auto override_length = [](int asked, int& field, const char* name) {
    if (asked == 0) return;
    if (asked < 3 || asked > 8192)
      throw Error(std::string(name) + " must be between 3 and 8192 tokens (got " + std::to_string(asked) + ")");
    field = asked;
  };
  override_length(options.source_max_length, config.source_max_tokens, "source_max_length");
  override_length(options.candidate_max_length, config.candidate_max_tokens, "candidate_max_length");
  Tokenizer tokenizer(directory, options.tokenizer);
  if (config.layout == "llm-blender-ranker") {
    // The original checkpoint's prefix ids are those its tokenizer added; without them the head would read
    // positions of whatever ids a default guessed, so a missing one is an error.
    auto use = [&](const char* s, int& id) {
      const int32_t found = tokenizer.added_token_id(s);
      if (found < 0)
        throw Error(directory + ": the llm-blender ranker layout needs the added token " + s +
                    " in its tokenizer files (added_tokens.json or tokenizer_config.json), and it is not there");
      id = found;
    };
    use("<|source|>", config.source_prefix_id);
    use("<|candidate1|>", config.cand1_prefix_id);
    use("<|candidate2|>", config.cand2_prefix_id);
  }
  const std::string weights_path = directory + "/model.safetensors";
  if (!file_exists(weights_path)) throw Error(weights_path + ": missing");
  Weights weights = load_weights(weights_path, config);

  auto impl = std::make_unique<Impl>(std::move(config), std::move(weights), std::move(tokenizer));
  const ModelConfig& c = impl->config;
  impl->relative = compute_relative_projections(c, impl->weights);
  const bool bf16_attention =
      options.precision != Precision::kF32 &&
      (options.attention == AttentionProducts::kBf16 ||
       (options.attention == AttentionProducts::kAuto && kernels::bf16_products_pay()));
  impl->packed = pack_layers(c, impl->weights, options.precision, bf16_attention);
  impl->row_ids = RowIds{impl->tokenizer.cls_id(), impl->tokenizer.sep_id(), c.source_prefix_id, c.cand1_prefix_id,
                         c.cand2_prefix_id};
  impl->limits = RowLimits{c.source_max_tokens, c.max_total_tokens()};
  ModelInfo& info = impl->info;
  static_cast<ModelShape&>(info) = c;  // the shape, field for field, by construction
  info.directory = directory;
  info.layout = c.layout;
  info.parameter_count = impl->weights.parameter_count;
  info.precision = options.precision;
  info.bf16_attention = bf16_attention;
  info.isa = kernels::isa_name(isa);
  info.isa_choice = kernels::isa_choice();
  if (!impl->packed.empty()) {
    const PackedLayer& first = impl->packed.front();
    const std::pair<const kernels::PackedLinear*, const char*> layers[] = {
        {&first.qkv, "qkv"}, {&first.out, "attention output"}, {&first.ffn_in, "ffn in"}, {&first.ffn_out, "ffn out"}};
    for (const auto& layer : layers) {
      // Plain names, not a structured binding: clang before 16 cannot capture a binding in the lambda below.
      const kernels::PackedLinear* lin = layer.first;
      const char* name = layer.second;
      const std::string kernel = lin->kernel_name();
      if (info.gemm_kernel.find(kernel) == std::string::npos)
        info.gemm_kernel += (info.gemm_kernel.empty() ? "" : "; ") + kernel;
      const kernels::GemmChoice& g = lin->gemm_choice();
      if (options.precision != Precision::kF32) continue;
      auto same = std::find_if(info.dense_gemms.begin(), info.dense_gemms.end(),
                               [&](const DenseGemmInfo& d) { return d.n == lin->n() && d.k == lin->k(); });
      if (same != info.dense_gemms.end()) {
        same->layers += std::string(", ") + name;
        continue;
      }
      info.dense_gemms.push_back({lin->n(), lin->k(), name, kernels::dense_gemm_name(g.gemm), g.how, g.own_gflops,
                                  g.onednn_gflops});
    }
  }
  for (const PackedLayer& p : impl->packed) {
    for (const auto* lin : {&p.qkv, &p.out, &p.ffn_in, &p.ffn_out}) info.packed_weight_mb += lin->packed_bytes() / 1048576.0;
  }
  return std::shared_ptr<const Model>(new Model(std::move(impl)));
}

const ModelInfo& Model::info() const { return impl_->info; }
const TokenizerOptions& Model::tokenizer_options() const { return impl_->tokenizer.options(); }

namespace {

std::vector<int32_t> text_ids(const Tokenizer& tok, std::string_view text, const char* what,
                              std::vector<SourceRange>* ranges = nullptr) {
  if (text.size() > kMaxTextBytes)
    throw Error(std::string(what) + ": text of " + std::to_string(text.size()) + " bytes is over the limit of " +
                std::to_string(kMaxTextBytes));
  require_valid_utf8(text, what);
  std::vector<int32_t> ids;
  tok.append_ids(text, ids, ranges);
  return ids;
}

}  // namespace

std::vector<int32_t> Model::encode(std::string_view text) const {
  std::vector<int32_t> ids{impl_->tokenizer.cls_id()};
  const auto body = text_ids(impl_->tokenizer, text, "text");
  ids.insert(ids.end(), body.begin(), body.end());
  ids.push_back(impl_->tokenizer.sep_id());
  return ids;
}

std::vector<int32_t> Model::text_tokens(std::string_view text, const char* what) const {
  return text_ids(impl_->tokenizer, text, what);
}

std::vector<TextToken> Model::tokenize(std::string_view text, bool add_special_tokens) const {
  const Tokenizer& tok = impl_->tokenizer;
  std::vector<SourceRange> ranges;
  const std::vector<int32_t> ids = text_ids(tok, text, "text", &ranges);
  std::vector<TextToken> out;
  out.reserve(ids.size() + 2);
  if (add_special_tokens) out.push_back({tok.cls_id(), true, 0, 0});
  for (size_t i = 0; i < ids.size(); ++i) out.push_back({ids[i], false, ranges[i].begin, ranges[i].end});
  if (add_special_tokens) out.push_back({tok.sep_id(), true, 0, 0});
  return out;
}

int32_t Model::vocab_size() const { return impl_->tokenizer.vocab_size(); }
std::string Model::token_string(int32_t id) const { return impl_->tokenizer.token_string(id); }
bool Model::is_special_token(int32_t id) const { return impl_->tokenizer.is_special(id); }
std::string Model::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  return impl_->tokenizer.decode(ids, skip_special_tokens);
}

PairRow Model::build_row(const std::vector<int32_t>& source, const std::vector<int32_t>& candidate1,
                         const std::vector<int32_t>& candidate2) const {
  return assemble_pair_row(source, candidate1, candidate2, impl_->row_ids, impl_->limits);
}

PairRow Model::build_row(std::string_view source, std::string_view candidate1, std::string_view candidate2) const {
  const Tokenizer& tok = impl_->tokenizer;
  return assemble_pair_row(text_ids(tok, source, "source"), text_ids(tok, candidate1, "candidate 1"),
                           text_ids(tok, candidate2, "candidate 2"), impl_->row_ids, impl_->limits);
}

Precision parse_precision(std::string_view name) {
  if (name == "fp32" || name == "float32") return Precision::kF32;
  if (name == "bf16" || name == "bfloat16") return Precision::kBF16;
  if (name == "int8") return Precision::kInt8;
  throw Error("unknown precision '" + std::string(name) + "' (fp32, bf16, int8)");
}

const char* precision_name(Precision precision) {
  switch (precision) {
    case Precision::kF32: return "fp32";
    case Precision::kBF16: return "bf16";
    case Precision::kInt8: return "int8";
  }
  return "?";
}

AttentionProducts parse_attention_products(std::string_view name) {
  if (name == "auto") return AttentionProducts::kAuto;
  if (name == "fp32") return AttentionProducts::kFp32;
  if (name == "bf16") return AttentionProducts::kBf16;
  throw Error("unknown attention products '" + std::string(name) + "' (auto, fp32, bf16)");
}

CompareMode parse_compare_mode(std::string_view name) {
  if (name == "ab" || name == "[A,B]") return CompareMode::kAB;
  if (name == "ba" || name == "[B,A]") return CompareMode::kBA;
  if (name == "both" || name == "[A,B]+[B,A]") return CompareMode::kBoth;
  throw Error("unknown compare mode '" + std::string(name) + "' (ab / [A,B], ba / [B,A], both / [A,B]+[B,A])");
}

Context::Context(std::shared_ptr<const Model> model, int threads) : impl_(std::make_unique<Impl>()) {
  if (!model) throw Error("Context: no model");
  impl_->model = std::move(model);
  set_threads(threads);
}
Context::~Context() = default;

const Model& Context::model() const { return *impl_->model; }
int Context::threads() const { return impl_->threads; }
void Context::set_threads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  impl_->threads = threads;
}

void Context::set_batch_limits(int max_rows, long max_tokens) {
  if (max_rows < 1 || max_tokens < 1) throw Error("batch limits must be positive");
  impl_->max_batch_rows = max_rows;
  impl_->max_batch_tokens = max_tokens;
}

std::vector<double> Context::logits(const std::vector<PairRow>& rows) {
  const Model::Impl& m = internals(*impl_->model);
  const ModelConfig& c = m.config;
  for (size_t i = 0; i < rows.size(); ++i) {
    const PairRow& r = rows[i];
    const auto n = static_cast<int32_t>(r.ids.size());
    if (r.ids.size() > static_cast<size_t>(INT32_MAX / std::max(1, c.hidden_size)))
      throw Error("row " + std::to_string(i) + ": " + std::to_string(r.ids.size()) + " tokens is too long");
    for (int32_t p : {r.source_pos, r.cand1_pos, r.cand2_pos})
      if (p < 0 || p >= n)
        throw Error("row " + std::to_string(i) + ": prefix position " + std::to_string(p) + " is outside the row of " +
                    std::to_string(n) + " tokens");
  }
  // Longest first, so batches hold rows of similar length (and the largest scratch is sized once).
  std::vector<size_t> order(rows.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return rows[a].ids.size() > rows[b].ids.size(); });

  // The thread count is set for this calling thread only (OpenMP's per-thread ICV), so Contexts with
  // different counts can run side by side.
  omp_set_num_threads(impl_->threads);
  std::vector<double> out(rows.size());
  std::vector<RowRef> batch;
  const long H = c.hidden_size;
  for (size_t begin = 0; begin < order.size();) {
    batch.clear();
    long tokens = 0;
    size_t end = begin;
    while (end < order.size() && static_cast<int>(batch.size()) < impl_->max_batch_rows) {
      const long n = static_cast<long>(rows[order[end]].ids.size());
      if (!batch.empty() && tokens + n > impl_->max_batch_tokens) break;
      batch.push_back({rows[order[end]].ids.data(), static_cast<int>(n)});
      tokens += n;
      ++end;
    }
    encoder_forward(c, m.weights, m.relative, m.packed, batch, impl_->threads, impl_->workspace);
    const float* x = impl_->workspace.x.data();
    long offset = 0;
    for (size_t k = begin; k < end; ++k) {
      const PairRow& r = rows[order[k]];
      const float* base = x + offset * H;
      out[order[k]] = head_logit(c, m.weights, base + r.source_pos * H, base + r.cand1_pos * H, base + r.cand2_pos * H);
      offset += static_cast<long>(r.ids.size());
    }
    begin = end;
  }
  return out;
}

std::vector<CompareResult> compare(Scorer& scorer, const std::vector<Comparison>& items, CompareMode mode) {
  const Model& model = scorer.model();
  const bool ab = mode != CompareMode::kBA, ba = mode != CompareMode::kAB;
  std::vector<PairRow> rows;
  rows.reserve(items.size() * (ab + ba));
  for (const Comparison& it : items) {
    if (ab) rows.push_back(model.build_row(it.source, it.candidate_a, it.candidate_b));
    if (ba) rows.push_back(model.build_row(it.source, it.candidate_b, it.candidate_a));
  }
  const std::vector<double> l = scorer.logits(rows);
  std::vector<CompareResult> out(items.size());
  size_t k = 0;
  for (CompareResult& r : out) {
    r.has_ab = ab;
    r.has_ba = ba;
    if (ab) r.logit_ab = l[k++];
    if (ba) r.logit_ba = l[k++];
    r.score = mode == CompareMode::kAB ? r.logit_ab : mode == CompareMode::kBA ? r.logit_ba : r.logit_ab - r.logit_ba;
    r.a_better = r.score > 0;
  }
  return out;
}

std::vector<CompareResult> Context::compare(const std::vector<Comparison>& items, CompareMode mode) {
  return pairrm::compare(*this, items, mode);
}

}  // namespace pairrm
