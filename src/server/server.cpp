#include "server/server.h"

#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "pairrm/ranking.h"
#include "server/metrics.h"
#include "server/peer.h"

namespace pairrm::server {
namespace {

using nlohmann::json;
using cli::OrderedJson;

// A client mistake in the body that is not about a field's value: 413 for sizes, 422 otherwise.
class BadRequest : public std::runtime_error {
 public:
  BadRequest(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

const char* const kEndpoints[] = {"/compare", "/rank", "/best_of_n", "/compare_conversations", "/rerank",
                                  "/v1/score", "/health", "/info", "/metrics"};

std::string endpoint_label(const std::string& path) {
  for (const char* e : kEndpoints)
    if (path == e) return e;
  return "other";  // unknown paths share one label: they must not grow the metrics without bound
}

void send_json(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  send_json(res, status, json{{"error", message}, {"status", status}}.dump(-1, ' ', false, json::error_handler_t::replace));
}

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

class Service {
 public:
  Service(std::shared_ptr<const Model> model, const ServerOptions& options)
      : options_(options), model_(model), scheduler_(model, options.scheduler, metrics_) {}

  BatchScheduler& scheduler() { return scheduler_; }
  Metrics& metrics() { return metrics_; }

  void install(httplib::Server& svr) {
    svr.set_payload_max_length(options_.max_body_bytes);
    post(svr, "/compare", [this](const json& body, RequestScorer& s) {
      auto job = cli::make_compare_job(parse_compare_mode(option<std::string>(body, "mode", "both")));
      return run_items(*job, body, s);
    });
    post(svr, "/rank", [this](const json& body, RequestScorer& s) {
      std::optional<std::string> ref;
      const json& o = options_of(body);
      if (o.contains("with_ref") && o["with_ref"].is_boolean()) {
        if (o["with_ref"].get<bool>()) ref = "longest";
      } else if (o.contains("with_ref") && !o["with_ref"].is_null()) {
        ref = option<std::string>(body, "with_ref", "longest");
        parse_reference_mode(*ref);  // 422 for an unknown mode, before any work
      }
      if (!ref && o.contains("reference")) ref = "given";
      auto job = cli::make_rank_job(ref, limits());
      return run_items(*job, body, s);
    });
    post(svr, "/best_of_n", [this](const json& body, RequestScorer& s) {
      BestOfNOptions o;
      const std::string method = option<std::string>(body, "method", "bubble");
      if (method != "bubble" && method != "full") throw std::invalid_argument("method must be 'bubble' or 'full'");
      o.method = method == "full" ? SelectionMethod::kFull : SelectionMethod::kBubble;
      o.worst = option<bool>(body, "worst", false);
      if (options_of(body).contains("seed") && !options_of(body)["seed"].is_null()) {
        if (!options_of(body)["seed"].is_number_unsigned()) throw std::invalid_argument("seed must be an integer >= 0");
        o.seed = options_of(body)["seed"].get<uint64_t>();
      }
      auto job = cli::make_best_of_n_job(o, option<bool>(body, "return_all", false), limits());
      return run_items(*job, body, s);
    });
    post(svr, "/compare_conversations", [this](const json& body, RequestScorer& s) {
      auto job = cli::make_conversations_job(parse_compare_mode(option<std::string>(body, "mode", "both")));
      return run_items(*job, body, s);
    });
    post(svr, "/rerank", [this](const json& body, RequestScorer& s) { return rerank(body, s); });
    post(svr, "/v1/score", [this](const json& body, RequestScorer& s) { return vllm_score(body, s); });

    svr.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200, json{{"status", "ok"}}.dump());
    });
    svr.Get("/info", [this](const httplib::Request&, httplib::Response& res) { send_json(res, 200, info().dump()); });
    svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics_.prometheus(), "text/plain; version=0.0.4");
    });

    // Authentication and per-request timing for every route, matched or not.
    svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      request_start() = Clock::now();
      if (options_.api_key.empty() || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
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
      if (res.status == 413) return send_error(res, 413, "request body over the limit (--max-body-bytes)");
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
  using Handler = std::function<OrderedJson(const json&, RequestScorer&)>;

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

  cli::InputLimits limits() const {
    cli::InputLimits l;
    l.max_candidates = options_.max_candidates;
    return l;
  }

  void post(httplib::Server& svr, const std::string& path, Handler handler) {
    svr.Post(path, [this, handler](const httplib::Request& req, httplib::Response& res) {
      json body;
      try {
        body = json::parse(req.body);
      } catch (const json::parse_error& e) {
        return send_error(res, 400, std::string("the body is not valid JSON: ") + e.what());
      }
      PeerWatch peer(req.remote_addr, req.remote_port);
      const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                               std::chrono::duration<double>(options_.timeout_s));
      RequestScorer scorer(scheduler_, deadline, [&peer] { return peer.closed(); }, options_.max_passes);
      try {
        send_json(res, 200, handler(body, scorer).dump(-1, ' ', false, json::error_handler_t::replace));
      } catch (const ServeError& e) {
        if (e.status() == 429) res.set_header("Retry-After", "1");
        send_error(res, e.status(), e.what());
      } catch (const BadRequest& e) {
        send_error(res, e.status(), e.what());
      } catch (const std::invalid_argument& e) {  // a field's type or value (the JSONL parsers' errors)
        send_error(res, 422, e.what());
      } catch (const json::exception& e) {
        send_error(res, 422, std::string("bad field: ") + e.what());
      } catch (const Error& e) {  // the engine refused an input (text size, UTF-8, conversation shape, ...)
        send_error(res, 422, e.what());
      } catch (const std::exception& e) {
        send_error(res, 500, e.what());
      }
    });
  }

  // One item (the body), or {"items": [...]} / a bare array -> {"results": [...]}.
  OrderedJson run_items(cli::JsonlJob& job, const json& body, RequestScorer& scorer) const {
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

  std::vector<std::string> string_list(const json& body, const char* key) const {
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
  OrderedJson rerank(const json& body, RequestScorer& scorer) const {
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
  OrderedJson vllm_score(const json& body, RequestScorer& scorer) {
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

  OrderedJson info() const {
    const ModelInfo& i = model_->info();
    return OrderedJson{
        {"version", version()},
        {"model",
         {{"directory", i.directory}, {"layout", i.layout}, {"hidden_size", i.hidden_size}, {"num_layers", i.num_layers},
          {"num_heads", i.num_heads}, {"intermediate_size", i.intermediate_size}, {"vocab_size", i.vocab_size},
          {"source_max_tokens", i.source_max_tokens}, {"candidate_max_tokens", i.candidate_max_tokens},
          {"parameter_count", i.parameter_count}}},
        {"precision", precision_name(i.precision)},
        {"special_tokens",
         model_->tokenizer_options().special_text == SpecialTextPolicy::kLiteral ? "literal" : "hf"},
        {"limits",
         {{"max_body_bytes", options_.max_body_bytes}, {"max_items", options_.max_items},
          {"max_candidates", options_.max_candidates}, {"max_passes", options_.max_passes},
          {"timeout_s", options_.timeout_s}, {"max_queue", scheduler_.options().max_queue_rows}}},
        {"workers", scheduler_.options().workers},
        {"threads_per_worker", scheduler_.options().threads_per_worker},
        {"auth", !options_.api_key.empty()}};
  }

  ServerOptions options_;
  std::shared_ptr<const Model> model_;
  Metrics metrics_;
  BatchScheduler scheduler_;
  std::atomic<long> score_ids_{0};
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
  httplib::Server svr;
  const int pool = std::max(1, options.http_threads);
  svr.new_task_queue = [pool] { return new httplib::ThreadPool(static_cast<size_t>(pool)); };
  svr.set_keep_alive_timeout(5);
  service.install(svr);

  int port = options.port;
  if (port == 0) {
    port = svr.bind_to_any_port(options.host);
  } else if (!svr.bind_to_port(options.host, port)) {
    port = -1;
  }
  if (port < 0) {
    std::fprintf(stderr, "pairrm serve: cannot listen on %s:%d\n", options.host.c_str(), options.port);
    return 1;
  }
  std::printf("pairrm serve: listening on http://%s:%d\n", options.host.c_str(), port);
  std::fflush(stdout);

  std::atomic<bool> done{false}, signalled{false};
  std::thread signals([&] {
    int sig = 0;
    if (sigwait(&stop_signals, &sig) != 0 || done) return;  // done: woken by run_server's own exit below
    signalled = true;
    std::fprintf(stderr, "pairrm serve: %s, finishing the requests in flight\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    // No new connections, keep-alive connections close after their current request; listen returns once
    // every handler has answered (the scheduler keeps running until then).
    svr.stop();
  });
  svr.listen_after_bind();
  done = true;
  if (!signalled) pthread_kill(signals.native_handle(), SIGTERM);
  signals.join();
  std::fprintf(stderr, "pairrm serve: stopped\n");
  return 0;
}

}  // namespace pairrm::server
