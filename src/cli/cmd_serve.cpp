// pairrm serve: the HTTP scoring service (docs/server.md).
#include <algorithm>
#include <cstdlib>

#include "cli/commands_table.h"
#include "cli/flags.h"
#include "server/server.h"

namespace pairrm::cli {
namespace {

struct Serve final : Command {
  ModelFlags model;
  pairrm::server::ServerOptions serve;

  int run() override {
    if (serve.api_key.empty())
      if (const char* key = std::getenv("PAIRRM_API_KEY"); key && *key) serve.api_key = key;
    if (serve.served_model_name.empty()) serve.served_model_name = model.model;  // as given: a path or a repo id
    serve.scheduler.threads_per_worker = model.threads > 0 ? std::max(1, model.threads / serve.scheduler.workers) : 0;
    pairrm::server::block_stop_signals();  // before the model load starts any thread
    return pairrm::server::run_server(model.load(), serve);
  }

  void add_listener(CLI::App* app) {
    app->add_option("--host", serve.host, "address to bind (default 127.0.0.1: this machine only)");
    app->add_option("--port,-p", serve.port, "port (default 8080; 0 = any free port, printed at start)")
        ->check(CLI::Range(0, 65535));
    app->add_option("--api-key", serve.api_key, "require 'Authorization: Bearer KEY' (default: $PAIRRM_API_KEY)");
  }

  void add_scheduling(CLI::App* app) {
    app->add_option("--workers", serve.scheduler.workers,
                    "batches run side by side, each with --threads/workers threads (default 1)")
        ->check(CLI::PositiveNumber);
    app->add_option("--max-batch-tokens", serve.scheduler.max_batch_tokens, "tokens per batch (default 16384)")
        ->check(CLI::PositiveNumber);
    app->add_option("--max-batch-rows", serve.scheduler.max_batch_rows, "forward passes per batch (default 64)")
        ->check(CLI::PositiveNumber);
    app->add_option("--max-queue", serve.scheduler.max_queue_rows,
                    "forward passes waiting before new requests get 429 (default 8192)")
        ->check(CLI::PositiveNumber);
  }

  void add_request_limits(CLI::App* app) {
    app->add_option("--timeout-s", serve.timeout_s, "a request not scored by then gets 504 (default 60)")
        ->check(CLI::PositiveNumber);
    app->add_option("--max-body-bytes", serve.max_body_bytes, "larger bodies get 413 (default 8 MiB)")
        ->check(CLI::PositiveNumber);
    app->add_option("--max-items", serve.max_items, "items per request (default 64)")->check(CLI::PositiveNumber);
    app->add_option("--max-candidates", serve.max_candidates, "candidates per ranking (default 32)")
        ->check(CLI::PositiveNumber);
    app->add_option("--max-passes", serve.max_passes, "forward passes per request (default 4096)")
        ->check(CLI::PositiveNumber);
    app->add_option("--http-threads", serve.http_threads,
                    "requests handled at once; a request is read whole before it takes one (default 64)")
        ->check(CLI::PositiveNumber);
    app->add_option("--read-timeout-s", serve.read_timeout_s,
                    "a request's head and body must arrive within this, or 408 (default 30)")
        ->check(CLI::PositiveNumber);
    app->add_option("--idle-timeout-s", serve.idle_timeout_s,
                    "keep-alive connections with no request started close after this (default 5)")
        ->check(CLI::PositiveNumber);
    app->add_option("--max-connections", serve.max_connections,
                    "connections open at once; the idle one waiting longest closes for a new one, else 503 "
                    "(default 1024)")
        ->check(CLI::PositiveNumber);
    app->add_option("--max-connections-per-client", serve.max_connections_per_client,
                    "connections open at once from one address, then 429 (default 128)")
        ->check(CLI::PositiveNumber);
  }

  void add_reference(CLI::App* app) {
    app->add_option("--reference", serve.reference,
                    "the pointwise score's reference when a request gives none (TEI/vLLM/Cohere rerank, vLLM score, "
                    "OpenRLHF): fixed (default: every text against --reference-text) or others (the texts of a "
                    "request ranked against each other, as /rank); docs/server.md")
        ->check(CLI::IsMember({"fixed", "others"}));
    app->add_option("--reference-text", serve.reference_text,
                    "the fixed reference answer (default: the empty answer \"\")");
    app->add_option("--strip-chat-template", serve.strip_chat_template,
                    "read a chat template's markup out of OpenRLHF's queries and /classify's input texts before "
                    "scoring: the last assistant turn is the answer, the turns before it the prompt; end-of-text "
                    "strings are cut (none: score texts as sent, the default; auto, chatml, llama3)")
        ->check(CLI::IsMember({"none", "auto", "chatml", "llama3"}));
    app->add_option("--eos-string", serve.eos_strings,
                    "an end-of-text string cut from the end of an answer besides the template's own (repeatable: "
                    "the policy's EOS or pad token)");
    app->add_option("--served-model-name", serve.served_model_name,
                    "the model's name in the protocols' answers (/v1/models, TEI's /info, \"model\" fields; "
                    "default: --model as given, else the model directory)");
  }
};

}  // namespace

std::unique_ptr<Command> add_serve(CLI::App& parent) {
  auto c = std::make_unique<Serve>();
  auto* app = c->app = parent.add_subcommand("serve", "HTTP scoring service: pairrm's endpoints, TEI/vLLM/Cohere/Jina rerank and "
                                                      "score, OpenRLHF rewards (docs/server.md)");
  c->model.add(app);
  c->add_listener(app);
  c->add_scheduling(app);
  c->add_request_limits(app);
  c->add_reference(app);
  return c;
}

}  // namespace pairrm::cli
