// The JSON endpoints of `pairrm serve`, without the HTTP transport or the scheduler: a body and a Scorer in,
// a status and a JSON body out. The server feeds them from cpp-httplib; the fuzz target calls them directly.
// Besides pairrm's own endpoints (/compare, /rank, ...) it speaks the protocols clients already use, each
// with its own error shape (docs/server.md): TEI's /rerank, vLLM's /score, vLLM/Jina/Cohere rerank, and
// OpenRLHF's remote reward model.
#pragma once
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "jobs/commands.h"
#include "pairrm/pairrm.h"
#include "server/pointwise.h"
#include "server/server.h"

namespace pairrm::server {

struct Reply {
  int status = 200;
  std::string body;  // JSON
};

// How a path reports errors: pairrm's {"error", "status"}, TEI's {"error", "error_type"} or vLLM's
// {"error": {"message", "type", "param", "code"}} (the statuses differ too: see endpoints.cpp).
enum class ErrorStyle { kNative, kTei, kVllm };

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

 private:
  using OrderedJson = jobs::OrderedJson;
  using Handler = std::function<OrderedJson(const nlohmann::json&, Scorer&)>;
  struct Route {
    Handler handler;
    ErrorStyle style;
    bool rerank_by_body = false;  // /rerank: TEI's (texts) or vLLM/Jina's (documents), told by the body
  };
  void add(const std::string& path, Handler handler, ErrorStyle style = ErrorStyle::kNative) {
    routes_[path] = Route{std::move(handler), style};
  }
  jobs::InputLimits limits() const;
  OrderedJson run_items(jobs::JsonlJob& job, const nlohmann::json& body, Scorer& scorer) const;
  void check_batch(size_t n, size_t limit, const char* flag) const;
  std::string model_name(const nlohmann::json& body) const;
  std::vector<double> pointwise(Scorer& scorer, const PointwiseGroup& group, const Truncation& t, long* tokens) const;
  OrderedJson tei_rerank(const nlohmann::json& body, Scorer& scorer) const;
  OrderedJson vllm_score(const nlohmann::json& body, Scorer& scorer) const;
  OrderedJson rerank(const nlohmann::json& body, Scorer& scorer, const char* api_version) const;
  OrderedJson openrlhf_reward(const nlohmann::json& body, Scorer& scorer) const;

  std::shared_ptr<const Model> model_;
  ServerOptions options_;
  ReferencePolicy policy_;
  std::map<std::string, Route> routes_;
  mutable std::atomic<long> ids_{0};
};

// {"error": message, "status": status}: pairrm's own error body (also the HTTP layer's: 401, 404, 413).
std::string error_body(int status, const std::string& message);

}  // namespace pairrm::server
