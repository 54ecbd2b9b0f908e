// The JSON endpoints of `pairrm serve`, without the HTTP transport or the scheduler: a body and a Scorer in,
// a status and a JSON body out. The server feeds them from cpp-httplib; the fuzz target calls them directly.
// Besides pairrm's own endpoints (/compare, /rank, ...) it speaks the protocols clients already use, each
// with its own error shape (docs/server.md). One file per protocol family, around the one pointwise score
// (server/pointwise.h) and the shared request fields and error replies:
//   protocol_pairrm.cpp    /compare, /rank, /best_of_n, /compare_conversations (the CLI's JSONL jobs)
//   protocol_tei.cpp       Hugging Face TEI: /rerank (body with texts), /predict, /info's TEI fields
//   protocol_vllm.cpp      vLLM: /score, /v1/score, /classify, /pooling, GET /v1/models, /version, /ping
//   protocol_rerank.cpp    vLLM/Jina and Cohere rerank: /rerank (body with documents), /v1/rerank, /v2/rerank
//   protocol_openrlhf.cpp  OpenRLHF's remote reward model: /get_reward, /
//   protocol_tokenizer.cpp TEI's /tokenize and /decode, vLLM's /tokenize and /detokenize (no model pass)
// POST / and /invocations are told by the body (endpoints.cpp: body_route).
#pragma once
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "jobs/commands.h"
#include "pairrm/chat_template.h"
#include "pairrm/pairrm.h"
#include "server/error_replies.h"
#include "server/pointwise.h"
#include "server/server.h"

namespace pairrm::server {

class Endpoints {
 public:
  Endpoints(std::shared_ptr<const Model> model, const ServerOptions& options);
  // The POST endpoints' paths.
  std::vector<std::string> paths() const;
  bool has(const std::string& path) const { return routes_.count(path) != 0; }
  // Answers one POST: 200 with the result, or an error in the path's style. pairrm's own paths: 400 bad
  // JSON; 413 over a limit; 422 a bad field or input; the status of a ServeError (429, 499, 503, 504)
  // thrown by the scorer; 500 for anything else.
  Reply respond(const std::string& path, const std::string& body, Scorer& scorer) const;
  // The GET endpoints the protocols add (/v1/models, /version, /ping), answered without a model pass.
  std::vector<std::string> get_paths() const;
  Reply respond_get(const std::string& path) const;
  // TEI's GET /info fields (router/src/lib.rs Info), merged into pairrm's own /info by the server.
  jobs::OrderedJson tei_info() const;
  // The model name the protocols report (--served-model-name, else the model directory).
  std::string served_model_name() const;

 private:
  using OrderedJson = jobs::OrderedJson;
  using Handler = std::function<OrderedJson(const nlohmann::json&, Scorer&)>;
  // by_body: for a path that several protocols share, the path whose route answers this body ("": this
  // route's own handler), e.g. /rerank with `documents` is vLLM/Jina's (/v1/rerank), with `texts` TEI's.
  using BodyRouter = std::function<std::string(const nlohmann::json&)>;
  struct Route {
    Handler handler;
    ErrorStyle style;
    BodyRouter by_body;
  };
  void add(const std::string& path, Handler handler, ErrorStyle style = ErrorStyle::kNative, BodyRouter by_body = {}) {
    routes_[path] = Route{std::move(handler), style, std::move(by_body)};
  }
  // A handler a BodyRouter can name that is not a path of its own (TEI's /tokenize behind vLLM's).
  void add_variant(const std::string& name, Handler handler, ErrorStyle style) {
    variants_[name] = Route{std::move(handler), style, {}};
  }
  void add_get(const std::string& path, std::function<Reply()> handler) { gets_[path] = std::move(handler); }
  const Route& route_for(const Route& route, const nlohmann::json& body) const;
  // Each protocol family's routes (its own file).
  void add_pairrm_routes();
  void add_tei_routes();
  void add_vllm_routes();
  void add_rerank_routes();
  void add_openrlhf_routes();
  void add_tokenizer_routes();

  // Shared by the families.
  jobs::InputLimits limits() const;
  OrderedJson run_items(jobs::JsonlJob& job, const nlohmann::json& body, Scorer& scorer) const;
  void check_batch(size_t n, size_t limit, const char* flag) const;
  std::string model_name(const nlohmann::json& body) const;
  std::vector<double> pointwise(Scorer& scorer, const PointwiseGroup& group, const Truncation& t, long* tokens) const;
  OrderedJson tei_rerank(const nlohmann::json& body, Scorer& scorer) const;
  OrderedJson vllm_score(const nlohmann::json& body, Scorer& scorer) const;
  OrderedJson rerank(const nlohmann::json& body, Scorer& scorer, const char* api_version) const;
  OrderedJson openrlhf_reward(const nlohmann::json& body, Scorer& scorer) const;
  // vLLM's /classify and /pooling share the scoring: one score per input or conversation, and the tokens.
  std::vector<double> classify_scores(const nlohmann::json& body, Scorer& scorer, long* tokens) const;
  OrderedJson vllm_classify(const nlohmann::json& body, Scorer& scorer) const;
  OrderedJson vllm_pooling(const nlohmann::json& body, Scorer& scorer) const;
  OrderedJson vllm_models() const;
  OrderedJson tei_predict(const nlohmann::json& body, Scorer& scorer) const;
  OrderedJson tei_tokenize(const nlohmann::json& body) const;
  OrderedJson tei_decode(const nlohmann::json& body) const;
  OrderedJson vllm_tokenize(const nlohmann::json& body) const;
  OrderedJson vllm_detokenize(const nlohmann::json& body) const;

  std::shared_ptr<const Model> model_;
  ServerOptions options_;
  ReferencePolicy policy_;
  ChatTemplateOptions chat_template_;
  std::map<std::string, Route> routes_;
  std::map<std::string, Route> variants_;
  std::map<std::string, std::function<Reply()>> gets_;
  mutable std::atomic<long> ids_{0};
};

}  // namespace pairrm::server
