#include "server/endpoints.h"

#include "server/request_fields.h"

namespace pairrm::server {

using nlohmann::json;
using jobs::OrderedJson;

Endpoints::Endpoints(std::shared_ptr<const Model> model, const ServerOptions& options)
    : model_(std::move(model)), options_(options) {
  if (options.reference != "fixed" && options.reference != "others")
    throw Error("unknown reference policy '" + options.reference + "' (fixed, others)");
  policy_.others = options.reference == "others";
  policy_.text = options.reference_text;
  chat_template_ = {parse_chat_template(options.strip_chat_template), options.eos_strings};
  add_pairrm_routes();
  // The protocols clients already speak (docs/server.md), each with its own error shape.
  add_tei_routes();
  add_vllm_routes();
  add_rerank_routes();
  add_openrlhf_routes();
  add_tokenizer_routes();
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
  const Route& chosen = route_for(route, body);
  style = chosen.style;
  try {
    return {200, dump(chosen.handler(body, scorer))};
  } catch (...) {
    return reply_for(style, classify(std::current_exception()));
  }
}

const Endpoints::Route& Endpoints::route_for(const Route& route, const json& body) const {
  if (!route.by_body) return route;
  const std::string path = route.by_body(body);
  if (path.empty()) return route;
  const auto variant = variants_.find(path);
  if (variant != variants_.end()) return variant->second;
  return routes_.at(path);  // the families register every path their routers name
}

std::vector<std::string> Endpoints::get_paths() const {
  std::vector<std::string> out;
  for (const auto& [path, handler] : gets_) out.push_back(path);
  return out;
}

Reply Endpoints::respond_get(const std::string& path) const {
  auto it = gets_.find(path);
  if (it == gets_.end()) return {404, error_body(404, "no endpoint GET " + path)};
  return it->second();
}

std::string Endpoints::served_model_name() const {
  return options_.served_model_name.empty() ? model_->info().directory : options_.served_model_name;
}

jobs::InputLimits Endpoints::limits() const {
  jobs::InputLimits l;
  l.max_candidates = options_.max_candidates;
  return l;
}

// TEI's words for its max_client_batch_size refusal (413), with our flag.
void Endpoints::check_batch(size_t n, size_t limit, const char* flag) const {
  if (n > limit)
    throw BadRequest(413, "batch size " + std::to_string(n) + " > maximum allowed batch size " + std::to_string(limit) +
                              " (" + flag + ")");
}

// The request's model name, echoed (one model is served: any name is accepted, Cohere's v2 client must
// send one); else the served model's name.
std::string Endpoints::model_name(const json& body) const {
  const json* m = present(body, "model");
  if (m && !m->is_string()) throw FieldError("model", "field 'model' must be a string");
  return m ? m->get<std::string>() : served_model_name();
}

std::vector<double> Endpoints::pointwise(Scorer& scorer, const PointwiseGroup& group, const Truncation& t,
                                         long* tokens) const {
  PointwiseScores r = pointwise_scores(scorer, {group}, policy_, t);
  if (tokens) *tokens = r.tokens;
  return std::move(r.scores.at(0));
}

}  // namespace pairrm::server
