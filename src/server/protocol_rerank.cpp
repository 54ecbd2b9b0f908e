// vLLM/Jina rerank (/rerank with `documents`, /v1/rerank) and Cohere rerank (/v1/rerank, /v2/rerank): one
// request and response shape (vLLM's RerankResponse with Cohere's meta), vLLM's error shape.
#include <algorithm>
#include <numeric>

#include "server/endpoints.h"
#include "server/request_fields.h"
#include "server/vllm_fields.h"

namespace pairrm::server {
namespace {

using nlohmann::json;
using jobs::OrderedJson;

// The documents of a rerank request as texts to score, and as each result shows them: a string (vLLM,
// Jina, Cohere; {"text", "multi_modal": null} as vLLM's RerankDocument), or a Cohere v1 object, scored by its
// "text" or by rank_fields as "field: value" lines, and shown as given. vLLM's {"content": [...]} objects are
// multimodal, which PairRM cannot score.
void rerank_documents(const json& body, std::vector<std::string>& texts, std::vector<OrderedJson>& shown) {
  const json* docs = present(body, "documents");
  if (!docs) throw FieldError("documents", "field 'documents' is required");
  const std::vector<json> items = docs->is_array() ? docs->get<std::vector<json>>() : std::vector<json>{*docs};
  const std::vector<std::string> fields = present(body, "rank_fields") ? string_list(body, "rank_fields")
                                                                         : std::vector<std::string>{"text"};
  for (const json& d : items) {
    if (d.is_string()) {
      texts.push_back(d.get<std::string>());
      shown.push_back(OrderedJson{{"text", texts.back()}, {"multi_modal", nullptr}});
    } else if (d.is_object() && !d.contains("content")) {
      std::string text;
      for (const std::string& f : fields) {
        const json* v = present(d, f.c_str());
        if (!v || !v->is_string()) throw std::invalid_argument("a document has no string field '" + f + "'");
        if (fields.size() == 1) text = v->get<std::string>();
        else text += (text.empty() ? "" : "\n") + f + ": " + v->get<std::string>();
      }
      texts.push_back(std::move(text));
      shown.push_back(OrderedJson(d));
    } else if (d.is_object()) {
      throw std::invalid_argument("MultiModalParam is not supported for PairRM (text only)");
    } else {
      throw FieldError("documents", "field 'documents' must be a list of strings");
    }
  }
}

}  // namespace

void Endpoints::add_rerank_routes() {
  add("/v1/rerank", [this](const json& body, Scorer& s) { return rerank(body, s, "1"); }, ErrorStyle::kVllm);
  add("/v2/rerank", [this](const json& body, Scorer& s) { return rerank(body, s, "2"); }, ErrorStyle::kVllm);
}

// vLLM/Jina rerank (/rerank with documents, /v1/rerank) and Cohere rerank (/v1/rerank, /v2/rerank): {query,
// documents, top_n?, return_documents?, model?, truncate_prompt_tokens?, use_activation?, max_tokens_per_doc?
// (Cohere v2), rank_fields? (Cohere v1 object documents)} -> {id, model, usage, results: [{index, document?,
// relevance_score}], meta}: vLLM's RerankResponse (pooling/score/protocol.py) with Cohere's meta (ApiMeta).
OrderedJson Endpoints::rerank(const json& body, Scorer& scorer, const char* api_version) const {
  require_object(body);
  const std::string query = required_string(body, "query");
  std::vector<std::string> texts;
  std::vector<OrderedJson> shown;  // what each result's "document" is
  rerank_documents(body, texts, shown);
  const std::string model = model_name(body);
  const long top_n = optional_int(body, "top_n").value_or(0);
  const bool return_documents = optional_bool(body, "return_documents", true);  // vLLM and Jina: documents shown
  const bool activation = use_activation(body);
  Truncation t = vllm_truncation(body, model_->info());
  if (const auto per_doc = optional_int(body, "max_tokens_per_doc")) {
    if (*per_doc < 1) throw std::invalid_argument("max_tokens_per_doc must be at least 1");
    t.max_answer_tokens = static_cast<int>(std::min<long>(*per_doc, 1 << 20));
  }
  if (texts.empty()) throw EmptyInput("At least one text_pair element must be given");
  check_batch(texts.size(), options_.max_candidates, "--max-candidates");
  long tokens = 0;
  std::vector<double> scores = pointwise(scorer, {query, texts, references(body, "reference", texts.size())}, t, &tokens);
  if (activation)
    for (double& s : scores) s = sigmoid(s);
  // Python's sort(reverse=True) is stable: equal scores keep their order.
  std::vector<size_t> order(texts.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  if (top_n > 0 && static_cast<size_t>(top_n) < order.size()) order.resize(static_cast<size_t>(top_n));
  OrderedJson results = OrderedJson::array();
  for (size_t i : order) {
    OrderedJson r{{"index", i}};
    if (return_documents) r["document"] = shown[i];
    r["relevance_score"] = scores[i];
    results.push_back(std::move(r));
  }
  return OrderedJson{
      {"id", "rerank-" + std::to_string(++ids_)},
      {"model", model},
      {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}},
      {"results", std::move(results)},
      {"meta",
       {{"api_version", {{"version", api_version}}},
        {"billed_units", {{"search_units", 1}}},
        {"tokens", {{"input_tokens", tokens}, {"output_tokens", 0}}}}}};
}

}  // namespace pairrm::server
