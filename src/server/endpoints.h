// The JSON endpoints of `pairrm serve`, without the HTTP transport or the scheduler: a body and a Scorer in,
// a status and a JSON body out. The server feeds them from cpp-httplib; the fuzz target calls them directly.
#pragma once
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "pairrm/pairrm.h"
#include "server/server.h"

namespace pairrm::server {

struct Reply {
  int status = 200;
  std::string body;  // JSON
};

class Endpoints {
 public:
  Endpoints(std::shared_ptr<const Model> model, const ServerOptions& options);
  // The POST endpoints' paths.
  std::vector<std::string> paths() const;
  bool has(const std::string& path) const { return handlers_.count(path) != 0; }
  // Answers one POST: 200 with the result; 400 bad JSON; 413 over a limit; 422 a bad field or input;
  // the status of a ServeError (429, 499, 503, 504) thrown by the scorer; 500 for anything else.
  Reply respond(const std::string& path, const std::string& body, Scorer& scorer) const;

 private:
  using OrderedJson = cli::OrderedJson;
  using Handler = std::function<OrderedJson(const nlohmann::json&, Scorer&)>;
  void add(const std::string& path, Handler handler) { handlers_[path] = std::move(handler); }
  cli::InputLimits limits() const;
  OrderedJson run_items(cli::JsonlJob& job, const nlohmann::json& body, Scorer& scorer) const;
  std::vector<std::string> string_list(const nlohmann::json& body, const char* key) const;
  OrderedJson rerank(const nlohmann::json& body, Scorer& scorer) const;
  OrderedJson vllm_score(const nlohmann::json& body, Scorer& scorer) const;

  std::shared_ptr<const Model> model_;
  ServerOptions options_;
  std::map<std::string, Handler> handlers_;
  mutable std::atomic<long> score_ids_{0};
};

// {"error": message, "status": status}
std::string error_body(int status, const std::string& message);

}  // namespace pairrm::server
