// `pairrm serve`: the HTTP scoring service (endpoints and protocols: docs/server.md).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "pairrm/pairrm.h"
#include "server/scheduler.h"

namespace pairrm::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;               // 0: any free port (printed on stdout)
  std::string api_key;           // empty: no authentication
  SchedulerOptions scheduler;
  double timeout_s = 60;         // a request not scored by then gets 504
  size_t max_body_bytes = 8u << 20;
  size_t max_items = 64;         // comparisons / rankings per request
  size_t max_candidates = 32;    // per ranking
  long max_passes = 4096;        // forward passes per request
  int http_threads = 64;         // requests handled at once (the gate reads them whole first)
  double read_timeout_s = 30;    // a request's head and body must arrive within this (then 408)
  double idle_timeout_s = 5;     // keep-alive connections with no request started close after this
  int max_connections = 1024;    // open at once (the idle one waiting longest is closed for a new one)
  int max_connections_per_client = 128;  // open at once from one address (then 429)
  // The pointwise score's reference when a request gives none (server/pointwise.h): "fixed" (every text
  // against reference_text, default "", the empty answer) or "others" (the texts of a request ranked
  // against each other, as /rank).
  std::string reference = "fixed";
  std::string reference_text;
  // The model's name in the protocols' answers (vLLM's --served-model-name; /v1/models' id, TEI's model_id);
  // empty: the model directory.
  std::string served_model_name;
  // The chat template whose markup is read out of the texts /get_reward and /classify's input score
  // (pairrm/chat_template.h: "none", "auto", "chatml", "llama3"), and more end-of-text strings to cut.
  std::string strip_chat_template = "none";
  std::vector<std::string> eos_strings;
};

// Blocks SIGTERM/SIGINT in the calling thread and so in every thread it starts afterwards (OpenMP's
// included), so that run_server's signal thread receives them. Call it before loading the model.
void block_stop_signals();

// Serves until SIGTERM/SIGINT, then stops accepting, finishes the requests in flight and returns 0.
// Returns 1 when the address cannot be bound.
int run_server(std::shared_ptr<const Model> model, const ServerOptions& options);

}  // namespace pairrm::server
