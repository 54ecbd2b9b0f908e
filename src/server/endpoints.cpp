#include "server/endpoints.h"

#include <algorithm>
#include <atomic>
#include <ctime>
#include <numeric>
#include <unordered_map>

#include "jobs/commands.h"
#include "pairrm/ranking.h"
#include "server/scheduler.h"

namespace pairrm::server {
namespace {

using nlohmann::json;
using jobs::OrderedJson;

// A request over one of the size limits (items, candidates) is refused with 413 like the scheduler's refusals.
using BadRequest = ServeError;

// A field that is missing or has the wrong type: a schema error (pydantic's in vLLM: 400 "Bad Request" with
// `param`; serde's through axum in TEI: 422). `param` is vLLM's spelling of the place: "body.<field>".
class FieldError : public std::invalid_argument {
 public:
  FieldError(const std::string& field, const std::string& message)
      : std::invalid_argument(message), param_(field.empty() ? "body" : "body." + field) {}
  const std::string& param() const { return param_; }

 private:
  std::string param_;
};

// An empty list of inputs: TEI's ErrorType::Empty (400).
class EmptyInput : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// ---- Errors: one classification, three shapes ----

enum class Kind {
  kSyntax,    // the body is not JSON
  kField,     // a field is missing or has the wrong type
  kEmpty,     // an empty input list
  kValue,     // a field's value is refused (std::invalid_argument)
  kInput,     // the engine refused a text (pairrm::Error: size, UTF-8, conversation shape)
  kServe,     // the server refused or abandoned the work (ServeError: 413, 429, 499, 503, 504)
  kInternal,  // anything else: 500
};

struct Failure {
  Kind kind;
  int status;  // pairrm's own status for it
  std::string message;
  std::string param;  // kField: vLLM's "body.<field>"
};

Failure classify(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const ServeError& x) {
    return {Kind::kServe, x.status(), x.what(), ""};
  } catch (const FieldError& x) {
    return {Kind::kField, 422, x.what(), x.param()};
  } catch (const EmptyInput& x) {
    return {Kind::kEmpty, 422, x.what(), ""};
  } catch (const std::invalid_argument& x) {  // a field's type or value (the JSONL parsers' errors)
    return {Kind::kValue, 422, x.what(), ""};
  } catch (const json::exception& x) {
    return {Kind::kField, 422, std::string("bad field: ") + x.what(), ""};
  } catch (const Error& x) {
    return {Kind::kInput, 422, x.what(), ""};
  } catch (const std::exception& x) {
    return {Kind::kInternal, 500, x.what(), ""};
  }
}

std::string dump(const OrderedJson& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// TEI (router/src/lib.rs ErrorType, serialized by serde as the variant name; router/src/http/server.rs maps
// Empty -> 400, Validation/Tokenizer -> 422, Overloaded -> 429, Unhealthy -> 503, Backend -> 424). A body
// that axum cannot parse is 400 (syntax) or 422 (a missing or mistyped field) there, as here.
Reply tei_reply(const Failure& f) {
  int status = f.status;
  const char* type = "Validation";
  switch (f.kind) {
    case Kind::kSyntax: status = 400; break;
    case Kind::kField:
    case Kind::kValue: status = 422; break;
    case Kind::kEmpty:
      status = 400;
      type = "Empty";
      break;
    case Kind::kInput:
      status = 422;
      type = "Tokenizer";
      break;
    case Kind::kServe:
      type = f.status == 429 ? "Overloaded" : f.status == 503 ? "Unhealthy" : f.status == 413 ? "Validation" : "Backend";
      break;
    case Kind::kInternal: type = "Backend"; break;
  }
  return {status, dump(OrderedJson{{"error", f.message}, {"error_type", type}})};
}

// The reason phrase of a status, as Python's http.HTTPStatus spells it (vLLM's type for HTTP-level errors).
const char* phrase(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 413: return "Request Entity Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 499: return "Client Closed Request";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Internal Server Error";
  }
}

// vLLM (entrypoints/openai/engine/protocol.py ErrorResponse/ErrorInfo): {"error": {message, type, param,
// code}} with code = the HTTP status. Schema errors (the body, a missing or mistyped field) go through
// its RequestValidationError handler: 400, type "Bad Request", param = the field's place; a refused value
// is a ValueError in the serving code: 400 "BadRequestError", param null (serve/exception_handling).
Reply vllm_reply(const Failure& f) {
  int status = 400;
  std::string type = "BadRequestError";
  json param = nullptr;
  switch (f.kind) {
    case Kind::kSyntax: type = phrase(400); break;
    case Kind::kField:
      type = phrase(400);
      if (!f.param.empty()) param = f.param;
      break;
    case Kind::kEmpty:
    case Kind::kValue:
    case Kind::kInput: break;
    case Kind::kServe:
      status = f.status;
      type = phrase(f.status);
      break;
    case Kind::kInternal:
      status = 500;
      type = "InternalServerError";
      break;
  }
  const OrderedJson error{{"message", f.message}, {"type", type}, {"param", param}, {"code", status}};
  return {status, dump(OrderedJson{{"error", error}})};
}

Reply reply_for(ErrorStyle style, const Failure& f) {
  switch (style) {
    case ErrorStyle::kTei: return tei_reply(f);
    case ErrorStyle::kVllm: return vllm_reply(f);
    case ErrorStyle::kNative: break;
  }
  return {f.status, error_body(f.status, f.message)};
}

// ---- Fields ----

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

// Whether the body (one item), or any item of {"items": [...]} or of a bare array, has the field.
bool any_item_has(const json& body, const char* key) {
  const json* items = body.is_array() ? &body : body.is_object() && body.contains("items") ? &body["items"] : nullptr;
  if (!items) return body.is_object() && body.contains(key);
  if (!items->is_array()) return false;  // run_items answers 422 for it
  for (const json& item : *items)
    if (item.is_object() && item.contains(key)) return true;
  return false;
}

void require_object(const json& body) {
  if (!body.is_object()) throw FieldError("", "the body must be a JSON object");
}

// The value of `key`, or nullptr when it is missing or null (the protocols' optional fields).
const json* present(const json& body, const char* key) {
  auto it = body.find(key);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

std::string required_string(const json& body, const char* key) {
  const json* v = present(body, key);
  if (!v) throw FieldError(key, std::string("field '") + key + "' is required");
  if (!v->is_string()) throw FieldError(key, std::string("field '") + key + "' must be a string");
  return v->get<std::string>();
}

bool optional_bool(const json& body, const char* key, bool fallback) {
  const json* v = present(body, key);
  if (!v) return fallback;
  if (!v->is_boolean()) throw FieldError(key, std::string("field '") + key + "' must be true or false");
  return v->get<bool>();
}

std::optional<long> optional_int(const json& body, const char* key) {
  const json* v = present(body, key);
  if (!v) return std::nullopt;
  if (!v->is_number_integer()) throw FieldError(key, std::string("field '") + key + "' must be an integer");
  return v->get<long>();
}

// A string, or a list of strings (the protocols' `str | list[str]` fields). `multimodal`: vLLM's content
// objects ({"content": [...]}), which PairRM cannot score.
std::vector<std::string> strings(const json& body, const char* key) {
  const json* v = present(body, key);
  if (!v) throw FieldError(key, std::string("field '") + key + "' is required");
  if (v->is_string()) return {v->get<std::string>()};
  auto bad = [&] { return FieldError(key, std::string("field '") + key + "' must be a string or a list of strings"); };
  if (v->is_object() && v->contains("content"))
    throw std::invalid_argument("MultiModalParam is not supported for PairRM (text only)");
  if (!v->is_array()) throw bad();
  std::vector<std::string> out;
  for (const json& e : *v) {
    if (e.is_object() && e.contains("content"))
      throw std::invalid_argument("MultiModalParam is not supported for PairRM (text only)");
    if (!e.is_string()) throw bad();
    out.push_back(e.get<std::string>());
  }
  return out;
}

// A list of strings (TEI's Vec<String>).
std::vector<std::string> string_list(const json& body, const char* key) {
  const json* v = present(body, key);
  if (!v) throw FieldError(key, std::string("field '") + key + "' is required");
  if (!v->is_array()) throw FieldError(key, std::string("field '") + key + "' must be a list of strings");
  return strings(body, key);
}

// A reference answer or label as text: a string, or a number/boolean written as JSON (OpenRLHF's labels
// may be numeric answers); null: none.
std::optional<std::string> label_text(const json& v, const char* key) {
  if (v.is_null()) return std::nullopt;
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number() || v.is_boolean()) return v.dump();
  throw FieldError(key, std::string("field '") + key + "' must hold strings, numbers or nulls");
}

// The request's references for n texts: absent or null -> none; one value -> every text's; a list -> one
// per text.
std::vector<std::optional<std::string>> references(const json& body, const char* key, size_t n) {
  const json* v = present(body, key);
  if (!v) return {};
  if (!v->is_array()) return std::vector<std::optional<std::string>>(n, label_text(*v, key));
  if (v->size() != n)
    throw std::invalid_argument(std::string("field '") + key + "' has " + std::to_string(v->size()) +
                                " entries for " + std::to_string(n) + " texts");
  std::vector<std::optional<std::string>> out;
  for (const json& e : *v) out.push_back(label_text(e, key));
  return out;
}

// vLLM's use_activation (and its deprecated spellings, which win when set: config/pooler.py
// get_use_activation): true (default) passes a classifier's score through its activation, sigmoid here.
bool use_activation(const json& body) {
  for (const char* key : {"softmax", "activation", "use_activation"})
    if (present(body, key)) return optional_bool(body, key, true);
  return true;
}

// vLLM's truncate_prompt_tokens (Field(ge=-1)): null -> PairRM's own truncation; -1 -> the model's length;
// k -> rows of at most k tokens. Either way vLLM keeps the last tokens (left truncation).
Truncation vllm_truncation(const json& body, const ModelInfo& info) {
  Truncation t;
  const auto k = optional_int(body, "truncate_prompt_tokens");
  if (!k) return t;
  if (*k < -1) throw FieldError("truncate_prompt_tokens", "truncate_prompt_tokens: Input should be greater than or equal to -1");
  t.keep_end = true;
  if (*k == -1) return t;
  const long max_len = info.source_max_tokens + 2L * info.candidate_max_tokens;
  if (*k > max_len)
    throw std::invalid_argument("truncate_prompt_tokens value (" + std::to_string(*k) + ") is greater than max_model_len (" +
                                std::to_string(max_len) + "). Please, select a smaller truncation size.");
  if (*k < 9)
    throw std::invalid_argument("truncate_prompt_tokens value (" + std::to_string(*k) +
                                ") is below the 9 tokens a PairRM comparison needs ([CLS], prefix and [SEP] per segment)");
  t.max_row_tokens = static_cast<int>(*k);
  return t;
}

// TEI's truncation_direction: "right" (default) or "left" (serde aliases Left/left, Right/right).
bool keep_end(const json& body) {
  const json* v = present(body, "truncation_direction");
  if (!v) return false;
  const std::string d = v->is_string() ? v->get<std::string>() : "";
  if (d == "left" || d == "Left") return true;
  if (d == "right" || d == "Right") return false;
  throw FieldError("truncation_direction", "truncation_direction: unknown variant, expected `Left` or `Right`");
}

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

// OpenRLHF's query is the decoded prompt + response: the response is what follows the prompt. When the
// decoded text does not start with the prompt exactly (a tokenizer round trip changed it, or the prompt was
// cut), what follows their longest common prefix (at a UTF-8 character boundary) is taken.
std::string response_of(const std::string& query, const std::string& prompt, bool* matched) {
  *matched = query.compare(0, prompt.size(), prompt) == 0;
  if (*matched) return query.substr(prompt.size());
  size_t n = 0;
  while (n < query.size() && n < prompt.size() && query[n] == prompt[n]) ++n;
  while (n > 0 && n < query.size() && (static_cast<unsigned char>(query[n]) & 0xC0) == 0x80) --n;
  return query.substr(n);
}

}  // namespace

std::string error_body(int status, const std::string& message) {
  return json{{"error", message}, {"status", status}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

Endpoints::Endpoints(std::shared_ptr<const Model> model, const ServerOptions& options)
    : model_(std::move(model)), options_(options) {
  if (options.reference != "fixed" && options.reference != "others")
    throw Error("unknown reference policy '" + options.reference + "' (fixed, others)");
  policy_.others = options.reference == "others";
  policy_.text = options.reference_text;

  // pairrm's own endpoints: the CLI's JSONL jobs.
  add("/compare", [this](const json& body, Scorer& s) {
    auto job = jobs::make_job({.command = "compare", .mode = option<std::string>(body, "mode", "both")});
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
    // A reference given with the item (the body, or any of its items) ranks against it: leaving it out
    // unless the body also had one at the top would silently rank those items without their reference.
    if (!ref && any_item_has(body, "reference")) ref = "given";
    auto job = jobs::make_job({.command = "rank", .with_ref = ref, .limits = limits()});
    return run_items(*job, body, s);
  });
  add("/best_of_n", [this](const json& body, Scorer& s) {
    jobs::JobSpec spec{.command = option<bool>(body, "worst", false) ? "worst-of-n" : "best-of-n",
                      .method = option<std::string>(body, "method", "bubble"),
                      .return_all = option<bool>(body, "return_all", false),
                      .limits = limits()};
    const json& seed = option<json>(body, "seed", nullptr);
    if (!seed.is_null() && !seed.is_number_unsigned()) throw std::invalid_argument("seed must be an integer >= 0");
    if (!seed.is_null()) spec.seed = seed.get<uint64_t>();
    auto job = jobs::make_job(spec);
    return run_items(*job, body, s);
  });
  add("/compare_conversations", [this](const json& body, Scorer& s) {
    auto job = jobs::make_job({.command = "compare-conversations", .mode = option<std::string>(body, "mode", "both")});
    return run_items(*job, body, s);
  });

  // The protocols clients already speak (docs/server.md), each with its own error shape.
  add("/rerank", [this](const json& body, Scorer& s) {
    return body.is_object() && body.contains("documents") ? rerank(body, s, "1") : tei_rerank(body, s);
  }, ErrorStyle::kTei);
  routes_["/rerank"].rerank_by_body = true;  // with "documents": vLLM/Jina's, and vLLM's errors
  for (const char* path : {"/score", "/v1/score"})
    add(path, [this](const json& body, Scorer& s) { return vllm_score(body, s); }, ErrorStyle::kVllm);
  add("/v1/rerank", [this](const json& body, Scorer& s) { return rerank(body, s, "1"); }, ErrorStyle::kVllm);
  add("/v2/rerank", [this](const json& body, Scorer& s) { return rerank(body, s, "2"); }, ErrorStyle::kVllm);
  // OpenRLHF posts to the URL it is given (--remote_rm_url): its reference server's path, or the bare URL.
  for (const char* path : {"/get_reward", "/"})
    add(path, [this](const json& body, Scorer& s) { return openrlhf_reward(body, s); });
}

std::vector<std::string> Endpoints::paths() const {
  std::vector<std::string> out;
  for (const auto& [path, route] : routes_) out.push_back(path);
  return out;
}

Reply Endpoints::respond(const std::string& path, const std::string& body_text, Scorer& scorer) const {
  auto it = routes_.find(path);
  if (it == routes_.end()) return {404, error_body(404, "no endpoint POST " + path)};
  const Route& route = it->second;
  ErrorStyle style = route.style;
  json body;
  try {
    body = json::parse(body_text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1e999 (found by fuzzing)
    return reply_for(style, {Kind::kSyntax, 400, std::string("the body is not valid JSON: ") + e.what(), ""});
  }
  if (route.rerank_by_body && body.is_object() && body.contains("documents")) style = ErrorStyle::kVllm;
  try {
    return {200, dump(route.handler(body, scorer))};
  } catch (...) {
    return reply_for(style, classify(std::current_exception()));
  }
}

jobs::InputLimits Endpoints::limits() const {
  jobs::InputLimits l;
  l.max_candidates = options_.max_candidates;
  return l;
}

// One item (the body), or {"items": [...]} / a bare array -> {"results": [...]}.
OrderedJson Endpoints::run_items(jobs::JsonlJob& job, const json& body, Scorer& scorer) const {
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

// TEI's words for its max_client_batch_size refusal (413), with our flag.
void Endpoints::check_batch(size_t n, size_t limit, const char* flag) const {
  if (n > limit)
    throw BadRequest(413, "batch size " + std::to_string(n) + " > maximum allowed batch size " + std::to_string(limit) +
                              " (" + flag + ")");
}

// The request's model name, echoed (one model is served: any name is accepted, Cohere's v2 client must
// send one); else the served model's directory.
std::string Endpoints::model_name(const json& body) const {
  const json* m = present(body, "model");
  if (m && !m->is_string()) throw FieldError("model", "field 'model' must be a string");
  return m ? m->get<std::string>() : model_->info().directory;
}

std::vector<double> Endpoints::pointwise(Scorer& scorer, const PointwiseGroup& group, const Truncation& t,
                                         long* tokens) const {
  PointwiseScores r = pointwise_scores(scorer, {group}, policy_, t);
  if (tokens) *tokens = r.tokens;
  return std::move(r.scores.at(0));
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

// vLLM's /score and /v1/score (entrypoints/pooling/score: ScoreRequest, ScoreResponse): text_1 the prompt(s),
// text_2 the answer(s), 1:1, 1:N or N:N -> {id, object: "list", created, model, data: [{index, object:
// "score", score}], usage}. score = sigmoid(pointwise) unless use_activation is false.
OrderedJson Endpoints::vllm_score(const json& body, Scorer& scorer) const {
  require_object(body);
  // Newer vLLM also names the pair queries/documents, queries/items or data_1/data_2.
  std::pair<const char*, const char*> keys{"text_1", "text_2"};
  for (auto k : {std::pair{"queries", "documents"}, std::pair{"queries", "items"}, std::pair{"data_1", "data_2"}})
    if (present(body, k.first) && present(body, k.second)) keys = k;
  const std::vector<std::string> t1 = strings(body, keys.first);
  const std::vector<std::string> t2 = strings(body, keys.second);
  const std::string model = model_name(body);
  const bool activation = use_activation(body);
  const Truncation t = vllm_truncation(body, model_->info());
  // vLLM's _validate_score_input_lens, in its order.
  if (t1.size() > 1 && t1.size() != t2.size()) throw std::invalid_argument("Input lengths must be either 1:1, 1:N or N:N");
  if (t1.empty()) throw EmptyInput("At least one text element must be given");
  if (t2.empty()) throw EmptyInput("At least one text_pair element must be given");
  check_batch(t2.size(), t1.size() == 1 ? options_.max_candidates : options_.max_items,
              t1.size() == 1 ? "--max-candidates" : "--max-items");
  const auto refs = references(body, "reference", t2.size());
  std::vector<PointwiseGroup> groups;
  if (t1.size() == 1) {
    groups.push_back({t1[0], t2, refs});
  } else {  // N:N: each pair alone
    for (size_t i = 0; i < t2.size(); ++i) {
      groups.push_back({t1[i], {t2[i]}, {}});
      if (!refs.empty()) groups.back().references.push_back(refs[i]);
    }
  }
  const PointwiseScores r = pointwise_scores(scorer, groups, policy_, t);
  OrderedJson data = OrderedJson::array();
  for (const auto& g : r.scores)
    for (double s : g) data.push_back({{"index", data.size()}, {"object", "score"}, {"score", activation ? sigmoid(s) : s}});
  return OrderedJson{{"id", "score-" + std::to_string(++ids_)},
                     {"object", "list"},
                     {"created", static_cast<long>(std::time(nullptr))},
                     {"model", model},
                     {"data", std::move(data)},
                     {"usage",
                      {{"prompt_tokens", r.tokens}, {"total_tokens", r.tokens}, {"completion_tokens", 0},
                       {"prompt_tokens_details", nullptr}}}};
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

// OpenRLHF's remote reward model (openrlhf/utils/agent.py posts, openrlhf/cli/serve_rm.py answers):
// {query: [prompt + response], prompts: [prompt], labels?: [label]} -> {rewards, scores, extra_logs}, one
// value per query. reward = the response's pointwise score against its label (else the policy's
// reference), scores = sigmoid(reward) (OpenRLHF's 0..1 score for dynamic filtering).
OrderedJson Endpoints::openrlhf_reward(const json& body, Scorer& scorer) const {
  require_object(body);
  const std::vector<std::string> queries = strings(body, "query");
  const std::vector<std::string> prompts = strings(body, "prompts");
  if (prompts.size() != queries.size())
    throw std::invalid_argument(std::to_string(queries.size()) + " queries but " + std::to_string(prompts.size()) +
                                " prompts: give one prompt per query");
  check_batch(queries.size(), options_.max_items, "--max-items");
  const auto labels = references(body, "labels", queries.size());
  // Queries sharing a prompt form one group, so that "--reference others" ranks a prompt's samples
  // against each other (GRPO-style); with a label or a fixed reference the grouping changes nothing.
  std::vector<PointwiseGroup> groups;
  std::unordered_map<std::string, size_t> group_of;
  std::vector<std::pair<size_t, size_t>> where;  // query -> (group, text)
  OrderedJson matched = OrderedJson::array();
  for (size_t q = 0; q < queries.size(); ++q) {
    bool exact = false;
    std::string response = response_of(queries[q], prompts[q], &exact);
    matched.push_back(exact ? 1.0 : 0.0);
    auto [it, fresh] = group_of.emplace(prompts[q], groups.size());
    if (fresh) groups.push_back({prompts[q], {}, {}});
    PointwiseGroup& g = groups[it->second];
    where.emplace_back(it->second, g.texts.size());
    g.texts.push_back(std::move(response));
    g.references.push_back(labels.empty() ? std::nullopt : labels[q]);
  }
  // Under "--reference others" a group is ranked all-pairs: bounded like any ranking (--max-candidates).
  if (policy_.others)
    for (const PointwiseGroup& g : groups) check_batch(g.texts.size(), options_.max_candidates, "--max-candidates");
  const PointwiseScores r = pointwise_scores(scorer, groups, policy_);
  OrderedJson rewards = OrderedJson::array(), scores = OrderedJson::array();
  for (const auto& [g, i] : where) {
    rewards.push_back(r.scores[g][i]);
    scores.push_back(sigmoid(r.scores[g][i]));
  }
  return OrderedJson{{"rewards", std::move(rewards)},
                     {"scores", std::move(scores)},
                     {"extra_logs", {{"pairrm_prompt_match", std::move(matched)}}}};
}

}  // namespace pairrm::server
