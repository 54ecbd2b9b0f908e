// Hugging Face text-embeddings-inference (router/src/http/server.rs, types.rs): /rerank (a body with `texts`;
// one with `documents` is vLLM/Jina's, protocol_rerank.cpp), /predict, and TEI's /info fields; TEI's error
// shape. PairRM is served as TEI serves a one-label reranker: label LABEL_0, score = sigmoid(pointwise).
#include <algorithm>
#include <numeric>

#include "server/endpoints.h"
#include "server/request_fields.h"

namespace pairrm::server {
namespace {

using nlohmann::json;
using jobs::OrderedJson;

// TEI's truncation_direction: "right" (default) or "left" (serde aliases Left/left, Right/right).
bool keep_end(const json& body) {
  const json* v = present(body, "truncation_direction");
  if (!v) return false;
  const std::string d = v->is_string() ? v->get<std::string>() : "";
  if (d == "left" || d == "Left") return true;
  if (d == "right" || d == "Right") return false;
  throw FieldError("truncation_direction", "truncation_direction: unknown variant, expected `Left` or `Right`");
}

// One of TEI's PredictInput sequences: a text (an answer with no prompt) or a [prompt, answer] pair.
struct PredictSequence {
  std::string prompt, answer;
};

// TEI's PredictInput visitor: "a" and ["a"] are one text, ["a", "b"] one pair, [["a"], ["b", "c"], ...] a
// batch of texts and pairs; anything else is its deserialisation error (422).
PredictSequence predict_sequence(const json& v, const char* where) {
  const char* expected = "expected a string, a pair of strings [string, string] or a batch of mixed strings and "
                         "pairs [[string], [string, string], ...]";
  auto bad = [&](const std::string& what) { return FieldError("inputs", std::string(where) + ": " + what + ", " + expected); };
  if (v.is_string()) return {"", v.get<std::string>()};
  if (!v.is_array()) throw bad("invalid type");
  if (v.empty() || v.size() > 2) throw bad("invalid length " + std::to_string(v.size()));
  for (const json& e : v)
    if (!e.is_string()) throw bad("invalid type");
  if (v.size() == 1) return {"", v[0].get<std::string>()};
  return {v[0].get<std::string>(), v[1].get<std::string>()};
}

}  // namespace

void Endpoints::add_tei_routes() {
  add("/rerank", [this](const json& body, Scorer& s) { return tei_rerank(body, s); }, ErrorStyle::kTei,
      [](const json& body) { return body.is_object() && body.contains("documents") ? "/v1/rerank" : ""; });
  add("/predict", [this](const json& body, Scorer& s) { return tei_predict(body, s); }, ErrorStyle::kTei);
}

// TEI's /predict (PredictRequest -> PredictResponse): {inputs, truncate?, truncation_direction?, raw_scores?}
// -> [{score, label}] for one sequence, [[{score, label}], ...] for a batch. A pair is (prompt, answer), the
// order TEI's own rerank gives predict (query, text); a lone text is an answer to no prompt. score =
// sigmoid(pointwise), or the pointwise score with raw_scores (TEI's predict(): sigmoid for one label).
OrderedJson Endpoints::tei_predict(const json& body, Scorer& scorer) const {
  require_object(body);
  const json* inputs = present(body, "inputs");
  if (!inputs) throw FieldError("inputs", "missing field `inputs`");
  const bool batch = inputs->is_array() && !inputs->empty() && inputs->at(0).is_array();
  std::vector<PredictSequence> sequences;
  if (batch) {
    for (size_t i = 0; i < inputs->size(); ++i) {
      if (!inputs->at(i).is_array()) throw FieldError("inputs", "inputs: a batch mixes lists and strings");
      sequences.push_back(predict_sequence(inputs->at(i), ("inputs[" + std::to_string(i) + "]").c_str()));
    }
    if (sequences.empty()) throw EmptyInput("`inputs` cannot be empty");
    check_batch(sequences.size(), options_.max_candidates, "--max-candidates");  // /info: max_client_batch_size
  } else {
    sequences.push_back(predict_sequence(*inputs, "inputs"));
  }
  const bool raw = optional_bool(body, "raw_scores", false);
  Truncation t;
  t.allowed = optional_bool(body, "truncate", true);  // TEI's --auto-truncate, true by default
  t.keep_end = keep_end(body);
  std::vector<PointwiseGroup> groups;
  for (const PredictSequence& q : sequences) {
    if (q.prompt.empty() && q.answer.empty()) throw EmptyInput("Input validation error: `inputs` cannot be empty");
    groups.push_back({q.prompt, {q.answer}, {}});
  }
  const PointwiseScores r = pointwise_scores(scorer, groups, policy_, t);
  auto predictions = [&](size_t i) {
    const double s = r.scores.at(i).at(0);
    return OrderedJson::array({OrderedJson{{"score", raw ? s : sigmoid(s)}, {"label", kOneLabel}}});
  };
  if (!batch) return predictions(0);
  OrderedJson out = OrderedJson::array();
  for (size_t i = 0; i < sequences.size(); ++i) out.push_back(predictions(i));
  return out;
}

// TEI's Info (router/src/lib.rs), field by field, for what pairrm serves: a one-label reranker.
OrderedJson Endpoints::tei_info() const {
  const ModelInfo& i = model_->info();
  const char* dtype = i.precision == Precision::kBF16 ? "bfloat16" : i.precision == Precision::kInt8 ? "int8" : "float32";
  return OrderedJson{
      {"model_id", served_model_name()},
      {"model_sha", nullptr},
      {"model_dtype", dtype},
      {"served_model_name", served_model_name()},
      {"model_type", {{"reranker", {{"id2label", {{"0", kOneLabel}}}, {"label2id", {{kOneLabel, 0}}}}}}},
      {"max_concurrent_requests", options_.http_threads},
      {"max_input_length", longest_row_tokens(i)},
      {"max_batch_tokens", options_.scheduler.max_batch_tokens},
      {"max_batch_requests", nullptr},
      {"max_client_batch_size", options_.max_candidates},
      {"auto_truncate", true},
      {"tokenization_workers", options_.http_threads},
      {"version", version()},
      {"sha", nullptr},
      {"docker_label", nullptr}};
}

// TEI's /rerank (router/src/http/types.rs RerankRequest/Rank): {query, texts, truncate?, truncation_direction?,
// raw_scores?, return_text?} (+ our reference?) -> [{index, text?, score}], best first. score =
// sigmoid(pointwise), or the pointwise score itself with raw_scores (TEI's predict(): sigmoid for one label).
OrderedJson Endpoints::tei_rerank(const json& body, Scorer& scorer) const {
  require_object(body);
  const std::string query = required_string(body, "query");
  const std::vector<std::string> texts = string_list(body, "texts");
  const bool raw = optional_bool(body, "raw_scores", false);
  const bool return_text = optional_bool(body, "return_text", false);
  Truncation t;
  t.allowed = optional_bool(body, "truncate", true);  // TEI's --auto-truncate, true by default
  t.keep_end = keep_end(body);
  if (texts.empty()) throw EmptyInput("`texts` cannot be empty");
  check_batch(texts.size(), options_.max_candidates, "--max-candidates");
  std::vector<double> scores = pointwise(scorer, {query, texts, references(body, "reference", texts.size())}, t, nullptr);
  if (!raw)
    for (double& s : scores) s = sigmoid(s);
  // TEI sorts ascending (stable) and then reverses: equal scores come out highest index first.
  std::vector<size_t> order(texts.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  std::reverse(order.begin(), order.end());
  OrderedJson out = OrderedJson::array();
  for (size_t i : order) {
    OrderedJson o{{"index", i}};
    if (return_text) o["text"] = texts[i];
    o["score"] = scores[i];
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace pairrm::server
