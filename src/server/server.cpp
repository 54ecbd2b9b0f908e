#include "server/server.h"

#include <httplib.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "util/bundled_model.h"
#include "server/metrics.h"
#include "server/endpoints.h"
#include "server/connection_gate.h"
#include "server/peer.h"
#include "tools/bench.h"

namespace pairrm::server {
namespace {

using nlohmann::json;
using jobs::OrderedJson;

void send_json(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  send_json(res, status, error_body(status, message));
}

// Whether `directory` is the bundled tiny random-weight model (however it was named: no --model, or a path
// to it), so that /info and the start-up line can say its scores mean nothing.
bool is_bundled_model(const std::string& directory) {
  try {
    std::error_code ec;
    const auto a = std::filesystem::weakly_canonical(directory, ec);
    if (ec) return false;
    return a == std::filesystem::weakly_canonical(pairrm::bundled_model_dir(), ec) && !ec;
  } catch (const std::exception&) {  // no bundled model installed next to the binary: it cannot be this one
    return false;
  }
}

const char* kRandomWeightsWarning =
    "this server runs the bundled tiny RANDOM-WEIGHT test model: its scores are meaningless (start it with "
    "--model DIR or a Hugging Face repo id, e.g. --model llm-blender/PairRM-hf)";

// httplib's parser and router over one request the connection gate has read whole (server/connection_gate.h):
// httplib's own listening and per-connection threads are not used.
class HttpServer : public httplib::Server {
 public:
  bool answer(httplib::Stream& stream, bool close_connection, bool& connection_closed) {
    return process_request(stream, close_connection, connection_closed, nullptr);
  }
};

const char* gate_event_name(GateEvent::Kind kind) {
  switch (kind) {
    case GateEvent::kPerClientLimit: return "per_client_limit";
    case GateEvent::kFull: return "full";
    case GateEvent::kReadTimeout: return "read_timeout";
    case GateEvent::kIdleEvicted: return "idle_evicted";
    case GateEvent::kHeadTooLarge: return "head_too_large";
    case GateEvent::kBodyTooLarge: return "body_too_large";
  }
  return "other";
}

class Service {
 public:
  Service(std::shared_ptr<const Model> model, const ServerOptions& options)
      : options_(options),
        model_(model),
        random_weights_(is_bundled_model(model->info().directory)),
        endpoints_(model, options),
        scheduler_(model, options.scheduler, metrics_) {}

  bool random_weights() const { return random_weights_; }

  BatchScheduler& scheduler() { return scheduler_; }
  Metrics& metrics() { return metrics_; }

  void install(httplib::Server& svr) {
    svr.set_payload_max_length(options_.max_body_bytes);
    for (const std::string& path : endpoints_.paths()) {
      svr.Post(path, [this, path](const httplib::Request& req, httplib::Response& res) {
        PeerWatch peer(ConnectionGate::current_socket());
        const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                 std::chrono::duration<double>(options_.timeout_s));
        RequestScorer scorer(scheduler_, deadline, [&peer] { return peer.closed(); }, options_.max_passes);
        const Reply reply = endpoints_.respond(path, req.body, scorer);
        if (reply.status == 429) res.set_header("Retry-After", "1");
        send_json(res, reply.status, reply.body);
      });
    }
    for (const std::string& path : endpoints_.get_paths()) {
      auto answer = [this, path](const httplib::Request&, httplib::Response& res) {
        const Reply reply = endpoints_.respond_get(path);
        if (reply.body.empty()) res.status = reply.status;  // /ping: the status alone
        else send_json(res, reply.status, reply.body);
      };
      svr.Get(path, answer);
      if (path == "/ping") svr.Post(path, answer);  // vLLM's SageMaker route takes both
    }
    svr.Get("/health", [](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200, json{{"status", "ok"}}.dump());
    });
    svr.Get("/info", [this](const httplib::Request&, httplib::Response& res) { send_json(res, 200, info().dump()); });
    svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics_.prometheus(), "text/plain; version=0.0.4");
    });

    // Authentication and per-request timing for every route, matched or not.
    svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      request_start() = Clock::now();
      // Health checks never need the key (TEI's public routes: /health, /ping).
      if (options_.api_key.empty() || req.path == "/health" || req.path == "/ping")
        return httplib::Server::HandlerResponse::Unhandled;
      if (!authorized(req.get_header_value("Authorization"))) {
        res.set_header("WWW-Authenticate", "Bearer");
        send_error(res, 401, "missing or wrong API key (Authorization: Bearer KEY)");
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      if (res.status == 404) return send_error(res, 404, "no endpoint " + req.method + " " + req.path);
      if (res.status == 413) return send_error(res, 413, kBodyOverLimitMessage);
      send_error(res, res.status, "HTTP error " + std::to_string(res.status));
    });
    svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
      send_error(res, 500, "internal error");
    });
    svr.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      auto& start = request_start();
      const double seconds = start == Clock::time_point{} ? 0.0 : std::chrono::duration<double>(Clock::now() - start).count();
      start = Clock::time_point{};
      metrics_.request(endpoint_label(req.path), res.status, seconds);
    });
  }

 private:
  // Unknown paths share one label: they must not grow the metrics without bound.
  std::string endpoint_label(const std::string& path) const {
    if (path == "/health" || path == "/info" || path == "/metrics" || endpoints_.has(path)) return path;
    for (const std::string& get : endpoints_.get_paths())
      if (path == get) return path;
    return "other";
  }

  static Clock::time_point& request_start() {
    thread_local Clock::time_point start{};
    return start;
  }

  bool authorized(const std::string& header) const {
    const std::string want = "Bearer " + options_.api_key;
    if (header.size() != want.size()) return false;
    unsigned char diff = 0;  // the same time for every wrong key of the right length
    for (size_t i = 0; i < want.size(); ++i) diff |= static_cast<unsigned char>(header[i] ^ want[i]);
    return diff == 0;
  }

  jobs::InputLimits limits() const {
    jobs::InputLimits l;
    l.max_candidates = options_.max_candidates;
    return l;
  }

  OrderedJson info() const {
    const ModelInfo& i = model_->info();
    OrderedJson out{
        {"version", version()},
        {"model",
         {{"directory", i.directory}, {"layout", i.layout}, {"hidden_size", i.hidden_size}, {"num_layers", i.num_layers},
          {"num_heads", i.num_heads}, {"intermediate_size", i.intermediate_size}, {"vocab_size", i.vocab_size},
          {"source_max_tokens", i.source_max_tokens}, {"candidate_max_tokens", i.candidate_max_tokens},
          {"parameter_count", i.parameter_count}}},
        {"precision", precision_name(i.precision)},
        {"attention_products", i.bf16_attention ? "bf16" : "fp32"},
        {"isa", i.isa},
        {"isa_choice", i.isa_choice},
        {"gemm_kernel", i.gemm_kernel},
        {"dense_gemms", dense_gemms_json(i)},
        {"special_tokens",
         model_->tokenizer_options().special_text == SpecialTextPolicy::kLiteral ? "literal" : "hf"},
        {"limits",
         {{"max_body_bytes", options_.max_body_bytes}, {"max_items", options_.max_items},
          {"max_candidates", options_.max_candidates}, {"max_passes", options_.max_passes},
          {"timeout_s", options_.timeout_s}, {"max_queue", scheduler_.options().max_queue_rows},
          {"http_threads", options_.http_threads}, {"read_timeout_s", options_.read_timeout_s},
          {"idle_timeout_s", options_.idle_timeout_s}, {"max_connections", options_.max_connections},
          {"max_connections_per_client", options_.max_connections_per_client}}},
        {"workers", scheduler_.options().workers},
        {"threads_per_worker", scheduler_.options().threads_per_worker},
        {"auth", !options_.api_key.empty()},
        {"pointwise_reference",
         {{"policy", options_.reference}, {"text", options_.reference_text}}},
        {"random_weights", random_weights_}};
    if (random_weights_) out["warning"] = kRandomWeightsWarning;
    // TEI's fields beside pairrm's own, for TEI's clients (its "version" is the same: the server's).
    const OrderedJson tei = endpoints_.tei_info();  // named: items() of a temporary would dangle in the loop
    for (const auto& [key, value] : tei.items())
      if (!out.contains(key)) out[key] = value;
    return out;
  }

  ServerOptions options_;
  std::shared_ptr<const Model> model_;
  bool random_weights_;
  Endpoints endpoints_;
  Metrics metrics_;
  BatchScheduler scheduler_;
};

}  // namespace

static sigset_t stop_signal_set() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGTERM);
  sigaddset(&s, SIGINT);
  return s;
}

void block_stop_signals() {
  const sigset_t s = stop_signal_set();
  pthread_sigmask(SIG_BLOCK, &s, nullptr);
}

int run_server(std::shared_ptr<const Model> model, const ServerOptions& options) {
  // Every thread started from here on (workers, HTTP pool) inherits a mask without SIGTERM/SIGINT, so they
  // arrive at the one thread that waits for them.
  block_stop_signals();
  const sigset_t stop_signals = stop_signal_set();

  Service service(std::move(model), options);
  HttpServer svr;
  // The Keep-Alive header httplib writes states the gate's idle limit.
  svr.set_keep_alive_timeout(static_cast<time_t>(std::max(1.0, options.idle_timeout_s)));
  // One limit of requests per connection: the gate closes after it, and httplib's Keep-Alive header states it.
  constexpr size_t kMaxRequestsPerConnection = 10000;  // httplib's default (5) makes busy clients reconnect
  svr.set_keep_alive_max_count(kMaxRequestsPerConnection);
  service.install(svr);

  GateOptions gate_options;
  gate_options.host = options.host;
  gate_options.port = options.port;
  gate_options.workers = std::max(1, options.http_threads);
  gate_options.read_timeout_s = options.read_timeout_s;
  gate_options.idle_timeout_s = options.idle_timeout_s;
  gate_options.max_connections = options.max_connections;
  gate_options.max_connections_per_client = options.max_connections_per_client;
  gate_options.max_body_bytes = options.max_body_bytes;
  gate_options.max_requests_per_connection = kMaxRequestsPerConnection;
  ConnectionGate gate(
      gate_options,
      [&svr](httplib::Stream& stream, bool close, bool& closed) { return svr.answer(stream, close, closed); },
      [&service](GateEvent::Kind kind) { service.metrics().connection_refused(gate_event_name(kind)); });
  std::string error;
  const int port = gate.bind(error);
  if (port < 0) {
    std::fprintf(stderr, "pairrm serve: cannot listen on %s:%d: %s\n", options.host.c_str(), options.port,
                 error.c_str());
    return 1;
  }
  std::printf("pairrm serve: listening on http://%s:%d\n", options.host.c_str(), port);
  std::fflush(stdout);
  if (service.random_weights()) std::fprintf(stderr, "pairrm serve: warning: %s\n", kRandomWeightsWarning);

  std::atomic<bool> done{false}, signalled{false};
  std::thread signals([&] {
    int sig = 0;
    if (sigwait(&stop_signals, &sig) != 0 || done) return;  // done: woken by run_server's own exit below
    signalled = true;
    std::fprintf(stderr, "pairrm serve: %s, finishing the requests in flight\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    // No new connections, idle and half-read ones close, the others after their current request; run
    // returns once every handler has answered (the scheduler keeps running until then).
    gate.stop();
  });
  gate.run();
  done = true;
  if (!signalled) pthread_kill(signals.native_handle(), SIGTERM);
  signals.join();
  std::fprintf(stderr, "pairrm serve: stopped\n");
  return 0;
}

}  // namespace pairrm::server
