#include "server/endpoints.h"

#include <algorithm>
#include <atomic>
#include <ctime>

#include "cli/commands.h"
#include "pairrm/ranking.h"
#include "server/scheduler.h"

namespace pairrm::server {
namespace {

using nlohmann::json;
using cli::OrderedJson;

// A request over one of the size limits (items, candidates) is refused with 413 like the scheduler's refusals.
using BadRequest = ServeError;

// The object holding a request's options: the body itself (one item, or {"items": [...], options...}).
const json& options_of(const json& body) {
  static const json empty = json::object();
  return body.is_object() ? body : empty;
}

template <typename T>
T option(const json& body, const char* key, T fallback) {
  const json& o = options_of(body);
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    throw std::invalid_argument(std::string("field '") + key + "' has the wrong type");
  }
}

}  // namespace

std::string error_body(int status, const std::string& message) {
  return json{{"error", message}, {"status", status}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

Endpoints::Endpoints(std::shared_ptr<const Model> model, const ServerOptions& options)
    : model_(std::move(model)), options_(options) {
    add("/compare", [this](const json& body, Scorer& s) {
      auto job = cli::make_job({.command = "compare", .mode = option<std::string>(body, "mode", "both")});
      return run_items(*job, body, s);
    });
    add("/rank", [this](const json& body, Scorer& s) {
      std::optional<std::string> ref;
      const json& o = options_of(body);
      if (o.contains("with_ref") && o["with_ref"].is_boolean()) {
        if (o["with_ref"].get<bool>()) ref = "longest";
      } else if (o.contains("with_ref") && !o["with_ref"].is_null()) {
        ref = option<std::string>(body, "with_ref", "longest");
        parse_reference_mode(*ref);  // 422 for an unknown mode, before any work
      }
      if (!ref && o.contains("reference")) ref = "given";
      auto job = cli::make_job({.command = "rank", .with_ref = ref, .limits = limits()});
      return run_items(*job, body, s);
    });
    add("/best_of_n", [this](const json& body, Scorer& s) {
      cli::JobSpec spec{.command = option<bool>(body, "worst", false) ? "worst-of-n" : "best-of-n",
                        .method = option<std::string>(body, "method", "bubble"),
                        .return_all = option<bool>(body, "return_all", false),
                        .limits = limits()};
      const json& seed = option<json>(body, "seed", nullptr);
      if (!seed.is_null() && !seed.is_number_unsigned()) throw std::invalid_argument("seed must be an integer >= 0");
      if (!seed.is_null()) spec.seed = seed.get<uint64_t>();
      auto job = cli::make_job(spec);
      return run_items(*job, body, s);
    });
    add("/compare_conversations", [this](const json& body, Scorer& s) {
      auto job = cli::make_job({.command = "compare-conversations", .mode = option<std::string>(body, "mode", "both")});
      return run_items(*job, body, s);
    });
    add("/rerank", [this](const json& body, Scorer& s) { return rerank(body, s); });
    add("/v1/score", [this](const json& body, Scorer& s) { return vllm_score(body, s); });

}

std::vector<std::string> Endpoints::paths() const {
  std::vector<std::string> out;
  for (const auto& [path, handler] : handlers_) out.push_back(path);
  return out;
}

Reply Endpoints::respond(const std::string& path, const std::string& body_text, Scorer& scorer) const {
  auto it = handlers_.find(path);
  if (it == handlers_.end()) return {404, error_body(404, "no endpoint POST " + path)};
  json body;
  try {
    body = json::parse(body_text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1e999 (found by fuzzing)
    return {400, error_body(400, std::string("the body is not valid JSON: ") + e.what())};
  }
  try {
    return {200, it->second(body, scorer).dump(-1, ' ', false, json::error_handler_t::replace)};
  } catch (const ServeError& e) {
    return {e.status(), error_body(e.status(), e.what())};
  } catch (const std::invalid_argument& e) {  // a field's type or value (the JSONL parsers' errors)
    return {422, error_body(422, e.what())};
  } catch (const json::exception& e) {
    return {422, error_body(422, std::string("bad field: ") + e.what())};
  } catch (const Error& e) {  // the engine refused an input (text size, UTF-8, conversation shape, ...)
    return {422, error_body(422, e.what())};
  } catch (const std::exception& e) {
    return {500, error_body(500, e.what())};
  }
}

cli::InputLimits Endpoints::limits() const {
  cli::InputLimits l;
  l.max_candidates = options_.max_candidates;
  return l;
}

// One item (the body), or {"items": [...]} / a bare array -> {"results": [...]}.
OrderedJson Endpoints::run_items(cli::JsonlJob& job, const json& body, Scorer& scorer) const {
  const bool list = body.is_array() || (body.is_object() && body.contains("items"));
  const json& items = body.is_array() ? body : list ? body["items"] : body;
  if (list && !items.is_array()) throw std::invalid_argument("field 'items' must be a list");
  if (!list && !items.is_object()) throw std::invalid_argument("the body must be a JSON object or a list of them");
  if (list && items.empty()) throw std::invalid_argument("no items");
  if (list && items.size() > options_.max_items)
    throw BadRequest(413, std::to_string(items.size()) + " items, over the limit of " +
                              std::to_string(options_.max_items) + " per request (--max-items)");
  const size_t n = list ? items.size() : 1;
  for (size_t k = 0; k < n; ++k) {
    const json& item = list ? items[k] : items;
    if (!item.is_object()) throw std::invalid_argument("item " + std::to_string(k) + " must be a JSON object");
    try {
      job.add(item);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(list ? "item " + std::to_string(k) + ": " + e.what() : e.what());
    }
  }
  const std::vector<OrderedJson> records = job.run(scorer);
  auto with_id = [&](size_t k) {
    const json& item = list ? items[k] : items;
    if (!item.contains("id")) return records[k];
    OrderedJson o{{"id", item["id"]}};
    for (const auto& [key, value] : records[k].items()) o[key] = value;
    return o;
  };
  if (!list) return with_id(0);
  OrderedJson out{{"results", OrderedJson::array()}};
  for (size_t k = 0; k < n; ++k) out["results"].push_back(with_id(k));
  return out;
}

std::vector<std::string> Endpoints::string_list(const json& body, const char* key) const {
  auto it = body.find(key);
  if (it == body.end()) throw std::invalid_argument(std::string("missing field '") + key + "'");
  if (!it->is_array() || it->empty())
    throw std::invalid_argument(std::string("field '") + key + "' must be a non-empty list of strings");
  if (it->size() > options_.max_candidates)
    throw BadRequest(413, std::string("field '") + key + "' has " + std::to_string(it->size()) +
                              " entries, over the limit of " + std::to_string(options_.max_candidates) +
                              " (--max-candidates)");
  std::vector<std::string> out;
  for (const auto& e : *it) {
    if (!e.is_string()) throw std::invalid_argument(std::string("field '") + key + "' must be a list of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

// TEI's /rerank: {"query", "texts", "return_text"?} -> [{"index", "score", "text"?}], best first. The score
// is PairRM's rank score of each text among the others as answers to the query.
OrderedJson Endpoints::rerank(const json& body, Scorer& scorer) const {
  if (!body.is_object()) throw std::invalid_argument("the body must be a JSON object");
  if (!body.contains("query") || !body["query"].is_string())
    throw std::invalid_argument("field 'query' must be a string");
  const auto texts = string_list(body, "texts");
  const bool return_text = option<bool>(body, "return_text", false);
  const RankResult r = rank(scorer, {{body["query"].get<std::string>(), texts}}).at(0);
  std::vector<size_t> order(texts.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return r.scores[a] > r.scores[b]; });
  OrderedJson out = OrderedJson::array();
  for (size_t i : order) {
    OrderedJson o{{"index", i}, {"score", r.scores[i]}};
    if (return_text) o["text"] = texts[i];
    out.push_back(std::move(o));
  }
  return out;
}

// vLLM's /v1/score with one text_1 (the prompt) and a list of text_2 (the answers): each answer's rank score.
OrderedJson Endpoints::vllm_score(const json& body, Scorer& scorer) const {
  if (!body.is_object()) throw std::invalid_argument("the body must be a JSON object");
  auto texts = [&](const char* key) -> std::vector<std::string> {
    if (!body.contains(key)) throw std::invalid_argument(std::string("missing field '") + key + "'");
    if (body[key].is_string()) return {body[key].get<std::string>()};
    return string_list(body, key);
  };
  const auto t1 = texts("text_1");
  const auto t2 = texts("text_2");
  if (t1.size() != 1)
    throw std::invalid_argument("text_1 must be one prompt: PairRM scores the answers in text_2 against each other, "
                                "so pairwise (N:N) scoring of single answers has no meaning");
  const RankResult r = rank(scorer, {{t1[0], t2}}).at(0);
  OrderedJson data = OrderedJson::array();
  for (size_t i = 0; i < t2.size(); ++i) data.push_back({{"index", i}, {"object", "score"}, {"score", r.scores[i]}});
  const std::string model_name = option<std::string>(body, "model", model_->info().directory);
  return OrderedJson{{"id", "score-" + std::to_string(++score_ids_)},
                     {"object", "list"},
                     {"created", static_cast<long>(std::time(nullptr))},
                     {"model", model_name},
                     {"data", std::move(data)}};
}

}  // namespace pairrm::server
