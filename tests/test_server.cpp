// `pairrm serve` as a client sees it: the real process on a loopback port, spoken to over HTTP.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <future>
#include <numeric>
#include <random>
#include <thread>

#include "cli_run.h"
#include "fixtures.h"
#include "polling.h"
#include "server_process.h"

namespace pairrm {
namespace {

using nlohmann::json;
using test::ServerProcess;

json post(httplib::Client& c, const std::string& path, const json& body, int* status = nullptr) {
  auto res = c.Post(path, body.dump(), "application/json");
  if (!res) throw std::runtime_error("no response from " + path + ": " + httplib::to_string(res.error()));
  if (status) *status = res->status;
  return json::parse(res->body);
}

int status_of(httplib::Client& c, const std::string& path, const std::string& body) {
  auto res = c.Post(path, body, "application/json");
  return res ? res->status : -1;
}

// The tiny model on 2 threads, and the options a test adds.
std::vector<std::string> tiny_args(std::vector<std::string> more = {}) {
  std::vector<std::string> args = {"--model", test::model_dir("tiny"), "--threads", "2"};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new ServerProcess(tiny_args()); }
  static void TearDownTestSuite() {
    EXPECT_EQ(server_->stop(), 0);  // SIGTERM: a clean exit
    delete server_;
  }
  static ServerProcess* server_;
};
ServerProcess* ServerTest::server_ = nullptr;

TEST_F(ServerTest, CompareMatchesTheFixtures) {
  auto c = server_->client();
  const auto t = test::read_json(test::fixtures_dir() + "/text_cases.json");
  const auto rows = test::entries(t, "pair_rows");
  // test::entries: a non-empty list, or the test fails (a loop over an emptied fixture would pass).
  const auto modes = test::entries(t["models"]["tiny"], "compare_modes");
  json items = json::array();
  for (const auto& m : modes) {
    const auto& r = rows[m["row"].get<size_t>()];
    items.push_back({{"source", r["source"]}, {"candidate_a", r["candidate1"]}, {"candidate_b", r["candidate2"]}});
  }
  int status = 0;
  const json both = post(c, "/compare", {{"items", items}}, &status);
  ASSERT_EQ(status, 200) << both.dump();
  const json ab = post(c, "/compare", {{"items", items}, {"mode", "[A,B]"}});
  const json ba = post(c, "/compare", {{"items", items}, {"mode", "ba"}});
  ASSERT_EQ(both["results"].size(), modes.size());
  ASSERT_EQ(ab["results"].size(), modes.size());
  ASSERT_EQ(ba["results"].size(), modes.size());
  for (size_t i = 0; i < modes.size(); ++i) {
    const auto& m = modes[i];
    EXPECT_NEAR(both["results"][i]["score"].get<double>(), m["default"].get<double>(), 2e-4) << i;
    EXPECT_EQ(both["results"][i]["a_better"].get<bool>(), m["better_default"].get<bool>()) << i;
    EXPECT_NEAR(ab["results"][i]["score"].get<double>(), m["ab"].get<double>(), test::logit_tolerance(m["ab"])) << i;
    EXPECT_NEAR(ba["results"][i]["score"].get<double>(), m["ba"].get<double>(), test::logit_tolerance(m["ba"])) << i;
    EXPECT_FALSE(ab["results"][i].contains("logit_ba"));
  }
  // One item: the record itself, with the caller's id first.
  json one = items[0];
  one["id"] = "q1";
  const json single = post(c, "/compare", one);
  EXPECT_EQ(single["id"], "q1");
  EXPECT_EQ(single["score"], both["results"][0]["score"]);  // bitwise: rows never share a computation
}

TEST_F(ServerTest, RankAndBestOfNMatchTheFixtures) {
  auto c = server_->client();
  const auto t = test::read_json(test::fixtures_dir() + "/text_cases.json");
  for (const auto& rc : test::entries(t["models"]["tiny"], "rank_cases")) {  // non-empty, or the test fails
    const json body = {{"source", rc["source"]}, {"candidates", rc["candidates"]}};
    const json r = post(c, "/rank", body);
    EXPECT_EQ(r["ranks"], rc["ranks"]);
    ASSERT_EQ(rc["scores"].size(), rc["candidates"].size());
    ASSERT_EQ(r["scores"].size(), rc["scores"].size()) << r.dump();
    for (size_t i = 0; i < rc["scores"].size(); ++i)
      EXPECT_NEAR(r["scores"][i].get<double>(), rc["scores"][i].get<double>(), 2e-4);
    json with_ref = body;
    with_ref["with_ref"] = true;  // longest
    const json rr = post(c, "/rank", with_ref);
    EXPECT_EQ(rr["ranks"], rc["rank_with_ref_longest"]["ranks"]);
    EXPECT_EQ(rr["reference"], rc["rank_with_ref_longest"]["reference"]);

    // TEI /rerank, vLLM /score and the other protocols: tests/test_protocols.cpp.
    // Full best-of-n: the best rank, lowest index on ties.
    const json best = post(c, "/best_of_n", {{"source", rc["source"]}, {"candidates", rc["candidates"]}, {"method", "full"}});
    ASSERT_EQ(rc["ranks"].size(), rc["candidates"].size());
    size_t want = 0;
    for (size_t i = 0; i < rc["ranks"].size(); ++i)
      if (rc["ranks"][i] < rc["ranks"][want]) want = i;
    EXPECT_EQ(best["best_index"], want);
  }
}

TEST_F(ServerTest, ConversationsMatchTheFixtures) {
  auto c = server_->client();
  const auto t = test::read_json(test::fixtures_dir() + "/text_cases.json");
  for (const auto& cc : test::entries(t["models"]["tiny"], "conversation_cases")) {  // non-empty, or the test fails
    const json r = post(c, "/compare_conversations",
                        {{"conversation_a", cc["conversation_a"]}, {"conversation_b", cc["conversation_b"]}});
    EXPECT_NEAR(r["score"].get<double>(), cc["default"].get<double>(), 2e-4);
    EXPECT_NEAR(r["logit_ab"].get<double>(), cc["ab"].get<double>(), test::logit_tolerance(cc["ab"]));
  }
}

TEST_F(ServerTest, HealthInfoMetrics) {
  auto c = server_->client();
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  auto info = c.Get("/info");
  ASSERT_TRUE(info);
  const json i = json::parse(info->body);
  EXPECT_EQ(i["precision"], "fp32");
  EXPECT_EQ(i["attention_products"], "fp32");
  EXPECT_EQ(i["version"], version());
  EXPECT_EQ(i["model"]["num_layers"], 2);
  // The fp32 GEMM of each dense-layer shape, as the model reports it (ModelInfo::dense_gemms).
  ASSERT_EQ(i["dense_gemms"].size(), 4u) << i.dump();  // the tiny model's four shapes differ
  for (const auto& g : i["dense_gemms"]) {
    EXPECT_TRUE(g["gemm"] == "own" || g["gemm"] == "onednn") << g.dump();
    EXPECT_GT(g["n"].get<int>(), 0);
    EXPECT_FALSE(g["how"].get<std::string>().empty());
  }
  post(c, "/compare", {{"source", "a"}, {"candidate_a", "b"}, {"candidate_b", "c"}});
  // cpp-httplib counts a request (its logger) after the reply is sent: wait until /compare is counted.
  std::string m;
  ASSERT_TRUE(test::wait_until([&] {
    m = test::metrics_of(c);
    return m.find("endpoint=\"/compare\",status=\"200\"") != std::string::npos;
  })) << "/compare was not counted in /metrics within " << test::kWaitLimit.count() << " s:\n" << m;
  for (const char* want : {"pairrm_requests_total{endpoint=\"/compare\",status=\"200\"}", "pairrm_queue_rows ",
                           "pairrm_running_rows ", "pairrm_batch_rows_bucket{le=\"1\"}", "pairrm_tokens_per_second ",
                           "pairrm_request_duration_seconds_bucket{endpoint=\"/compare\",le=\"+Inf\"}"})
    EXPECT_NE(m.find(want), std::string::npos) << want;
}

TEST_F(ServerTest, BadRequestsGetTheRight4xxAndTheServerKeepsServing) {
  auto c = server_->client();
  EXPECT_EQ(status_of(c, "/compare", "{not json"), 400);
  EXPECT_EQ(status_of(c, "/best_of_n", R"({"source": 6e666, "candidates": ["a"]})"), 400);  // fuzz: out_of_range
  EXPECT_EQ(status_of(c, "/compare", "{\"source\": \"\xff\xfe\", \"candidate_a\": \"a\", \"candidate_b\": \"b\"}"), 400);
  EXPECT_EQ(status_of(c, "/compare", R"({"source": 1, "candidate_a": "a", "candidate_b": "b"})"), 422);
  EXPECT_EQ(status_of(c, "/compare", R"({"source": "s", "candidate_a": "a"})"), 422);
  EXPECT_EQ(status_of(c, "/compare", R"({"source": "s", "candidate_a": "a", "candidate_b": "b", "mode": "x"})"), 422);
  EXPECT_EQ(status_of(c, "/compare", R"("a string")"), 422);
  EXPECT_EQ(status_of(c, "/compare", R"({"items": []})"), 422);
  EXPECT_EQ(status_of(c, "/compare", R"({"items": [1]})"), 422);
  EXPECT_EQ(status_of(c, "/rank", R"({"source": "s", "candidates": "ab"})"), 422);
  EXPECT_EQ(status_of(c, "/rank", R"({"source": "s", "candidates": []})"), 422);
  EXPECT_EQ(status_of(c, "/rank", R"({"source": "s", "candidates": ["a"], "with_ref": "loudest"})"), 422);
  EXPECT_EQ(status_of(c, "/best_of_n", R"({"source": "s", "candidates": ["a", "b"], "method": "quick"})"), 422);
  EXPECT_EQ(status_of(c, "/best_of_n", R"({"source": "s", "candidates": ["a", "b"], "seed": -1})"), 422);
  EXPECT_EQ(status_of(c, "/compare_conversations",
                      R"({"conversation_a": [{"role": "USER", "content": "x"}], "conversation_b": [{"role": "USER", "content": "x"}]})"),
            422);
  EXPECT_EQ(status_of(c, "/rerank", R"({"query": "q"})"), 422);
  EXPECT_EQ(status_of(c, "/v1/score", R"({"text_1": ["a", "b", "c"], "text_2": ["c", "d"]})"), 400);  // vLLM's status
  // Limits: 33 candidates (default --max-candidates 32), 65 items, a body over 8 MiB, a text over 8 MiB.
  json many = {{"source", "s"}, {"candidates", std::vector<std::string>(33, "x")}};
  int status = 0;
  const json err = post(c, "/rank", many, &status);
  EXPECT_EQ(status, 422);
  EXPECT_NE(err["error"].get<std::string>().find("limit"), std::string::npos) << err.dump();
  EXPECT_EQ(status_of(c, "/rerank", json{{"query", "q"}, {"texts", std::vector<std::string>(33, "x")}}.dump()), 413);
  json items = json::array();
  for (int i = 0; i < 65; ++i) items.push_back({{"source", "s"}, {"candidate_a", "a"}, {"candidate_b", "b"}});
  EXPECT_EQ(status_of(c, "/compare", json{{"items", items}}.dump()), 413);
  EXPECT_EQ(status_of(c, "/compare", std::string(9u << 20, ' ')), 413);
  // Unknown endpoints and methods.
  auto nf = c.Post("/nope", "{}", "application/json");
  ASSERT_TRUE(nf);
  EXPECT_EQ(nf->status, 404);
  EXPECT_NE(json::parse(nf->body)["error"].get<std::string>().find("/nope"), std::string::npos);
  auto get_compare = c.Get("/compare");
  ASSERT_TRUE(get_compare);
  EXPECT_GE(get_compare->status, 400);
  // Still serving, with the same numbers.
  EXPECT_EQ(post(c, "/compare", {{"source", "hello!"}, {"candidate_a", "hi!"}, {"candidate_b", "f**k off!"}}, &status)
                .contains("score"),
            true);
  EXPECT_EQ(status, 200);
}

TEST_F(ServerTest, ConcurrentClientsGetTheResultsOfSequentialCalls) {
  std::vector<json> bodies;
  for (int i = 0; i < 32; ++i) {
    if (i % 2)
      bodies.push_back({{"source", "question " + std::to_string(i)}, {"candidate_a", "yes " + std::to_string(i)},
                        {"candidate_b", "no"}});
    else
      bodies.push_back({{"source", "pick " + std::to_string(i)}, {"candidates", {"a", "bb " + std::to_string(i), "c"}}});
  }
  auto path = [](size_t i) { return i % 2 ? "/compare" : "/rank"; };
  std::vector<std::string> sequential;
  {
    auto c = server_->client();
    for (size_t i = 0; i < bodies.size(); ++i) sequential.push_back(post(c, path(i), bodies[i]).dump());
  }
  std::vector<std::string> concurrent(bodies.size());
  std::vector<std::thread> clients;
  for (size_t i = 0; i < bodies.size(); ++i)
    clients.emplace_back([&, i] {
      auto c = server_->client();
      try {
        for (int rep = 0; rep < 3; ++rep) {
          const std::string got = post(c, path(i), bodies[i]).dump();
          if (rep == 0 || got != sequential[i]) concurrent[i] = got;
        }
      } catch (const std::exception& e) {
        concurrent[i] = e.what();
      }
    });
  for (auto& t : clients) t.join();
  for (size_t i = 0; i < bodies.size(); ++i) EXPECT_EQ(concurrent[i], sequential[i]) << i;  // bitwise
}

// A request whose forward passes take a while on the tiny model: n candidates of ~600 tokens -> n(n-1) rows
// of ~1800 tokens, 60-150 ms each on 2 cores (several times that under ASan).
json slow_rank(int n = 6) {
  std::string text;
  for (int i = 0; i < 600; ++i) text += "w" + std::to_string(i) + " ";
  json candidates = json::array();
  for (int k = 0; k < n; ++k) candidates.push_back(text + std::to_string(k));
  return {{"source", text}, {"candidates", candidates}};
}

TEST(Server, ApiKeyIsRequiredExceptForHealth) {
  ServerProcess server(tiny_args({"--api-key", "sekret"}));
  auto c = server.client();
  const std::string body = R"({"source": "a", "candidate_a": "b", "candidate_b": "c"})";
  EXPECT_EQ(status_of(c, "/compare", body), 401);
  EXPECT_EQ(c.Get("/info")->status, 401);
  EXPECT_EQ(c.Get("/health")->status, 200);
  c.set_bearer_token_auth("wrong!");
  EXPECT_EQ(status_of(c, "/compare", body), 401);
  c.set_bearer_token_auth("sekret");
  EXPECT_EQ(status_of(c, "/compare", body), 200);
  EXPECT_EQ(server.stop(), 0);
}

// pairrm's own error body: exactly {"error": message, "status": status} (docs/server.md).
void expect_error_body(const std::string& body, int status, const std::string& message) {
  EXPECT_EQ(json::parse(body), (json{{"error", message}, {"status", status}})) << body;
}

TEST(Server, FullQueueAnswers429AtOnce) {
  ServerProcess server(tiny_args({"--max-queue", "40", "--max-batch-rows", "1"}));
  auto first = std::async(std::launch::async, [&] {
    auto c = server.client();
    return status_of(c, "/rank", slow_rank(8).dump());
  });
  // Its 56 rows run one at a time (--max-batch-rows 1) and enter the queue together: wait until at least 40
  // of them wait, so that a /compare's 2 rows do not fit under --max-queue 40. (The queue starts at 55 and
  // loses one row per 60-150 ms pass: a 5 ms poll sees it at 40 or more long before.)
  auto c = server.client();
  ASSERT_TRUE(test::wait_until([&] { return test::metric(test::metrics_of(c), "pairrm_queue_rows") >= 40.0; }))
      << "the slow /rank never filled the queue";
  auto res = c.Post("/compare", R"({"source": "a", "candidate_a": "b", "candidate_b": "c"})", "application/json");
  // "At once" without a clock: the refusal arrived while the work ahead of it still waited. A request is
  // refused when the rows waiting plus its own exceed --max-queue, so at the refusal at least 39 rows of the
  // slow /rank waited: seconds of work (60-150 ms each here), while the 429 and the /metrics read below are
  // two loopback round trips (milliseconds), a factor of hundreds apart. A server that held the request until
  // the queue drained reads 0 here.
  const std::string after = test::metrics_of(c);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 429);
  EXPECT_EQ(res->get_header_value("Retry-After"), "1");
  EXPECT_GT(test::metric(after, "pairrm_queue_rows").value_or(0.0), 0.0)
      << "the 429 came only once the queue ahead of it had drained:\n" << after;
  EXPECT_NE(first.wait_for(std::chrono::seconds(0)), std::future_status::ready) << "the slow /rank had already finished";
  EXPECT_NE(res->body.find("forward passes waiting, limit 40"), std::string::npos) << res->body;
  EXPECT_EQ(first.get(), 200);
  EXPECT_EQ(test::metric(test::metrics_of(c), "pairrm_rejected_total{reason=\"queue_full\"}"), 1.0);
  EXPECT_EQ(status_of(c, "/compare", R"({"source": "a", "candidate_a": "b", "candidate_b": "c"})"), 200);
  EXPECT_EQ(server.stop(), 0);
}

TEST(Server, TimeoutsAnswer504AndDropTheRowsNotStarted) {
  // A deadline no machine can meet, so that the 504 cannot depend on the machine's speed: --timeout-s 0.001
  // for 56 forward passes of ~1800 tokens run one per batch (--max-batch-rows 1). The request is scored
  // only if all 56 finish within 1 ms of its arrival; one takes 60-150 ms here, so the work is over 3000
  // times the deadline (over 100 times on a machine 30 times faster). The scheduler checks the deadline each
  // time a batch ends (and every 20 ms), and after the first of the 56 batches 55 rows are still to run.
  ServerProcess server(tiny_args({"--timeout-s", "0.001", "--max-batch-rows", "1"}));
  auto c = server.client();
  auto info = c.Get("/info");
  ASSERT_TRUE(info);
  EXPECT_EQ(json::parse(info->body)["limits"]["timeout_s"], 0.001);
  auto res = c.Post("/rank", slow_rank(8).dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 504);
  expect_error_body(res->body, 504, "the request timed out before it was scored");
  // The rows not started were dropped before the 504 was sent; the one already running finishes (and is
  // thrown away): wait for it.
  EXPECT_EQ(test::metric(test::metrics_of(c), "pairrm_queue_rows"), 0.0);
  ASSERT_TRUE(test::wait_until([&] { return test::rows_in_server(c) == 0; }))
      << "the server still runs rows of the timed-out request:\n" << test::metrics_of(c);
  const std::string m = test::metrics_of(c);
  EXPECT_EQ(test::metric(m, "pairrm_rejected_total{reason=\"timeout\"}"), 1.0) << m;
  EXPECT_LT(test::metric(m, "pairrm_rows_total").value_or(56), 56.0) << m;  // not every row ran
  // The deadline is on scoring: a request that needs no forward pass (one candidate) is still answered.
  EXPECT_EQ(status_of(c, "/rank", R"({"source": "s", "candidates": ["alone"]})"), 200);
  EXPECT_EQ(server.stop(), 0);
}

TEST(Server, PassCapsAnswer413) {
  ServerProcess server(tiny_args({"--max-passes", "60"}));
  auto c = server.client();
  auto info = c.Get("/info");
  ASSERT_TRUE(info);
  EXPECT_EQ(json::parse(info->body)["limits"]["max_passes"], 60);
  const json five = {{"source", "s"}, {"candidates", {"a", "b", "c", "d", "e"}}};  // 20 passes: allowed
  const json nine = {{"source", "s"}, {"candidates", {"a", "b", "c", "d", "e", "f", "g", "h", "i"}}};  // 72
  auto res = c.Post("/rank", nine.dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  expect_error_body(res->body, 413, "the request needs 72 forward passes, over the limit of 60 per request (--max-passes)");
  EXPECT_EQ(status_of(c, "/rank", five.dump()), 200);
  // At the cap exactly: 30 comparisons are 60 passes; 31 are 62.
  auto comparisons = [](int n) {
    json items = json::array();
    for (int i = 0; i < n; ++i) items.push_back({{"source", "s"}, {"candidate_a", "a" + std::to_string(i)}, {"candidate_b", "b"}});
    return json{{"items", items}}.dump();
  };
  EXPECT_EQ(status_of(c, "/compare", comparisons(30)), 200);
  EXPECT_EQ(status_of(c, "/compare", comparisons(31)), 413);
  EXPECT_EQ(server.stop(), 0);
}

TEST(Server, ADisconnectedClientsWorkIsDropped) {
  ServerProcess server(tiny_args({"--max-batch-rows", "1"}));
  const std::string body = slow_rank().dump();
  const std::string request = "POST /rank HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server.port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  // Hang up only once the server is scoring the request: before that there is no work to drop.
  auto c = server.client();
  const bool scoring = test::wait_until([&] { return test::rows_in_server(c) > 0; });
  close(fd);
  ASSERT_TRUE(scoring) << "the server never started on the request";
  // Noticed within a poll interval (20 ms) plus the running row.
  std::string metrics;
  EXPECT_TRUE(test::wait_until([&] {
    metrics = test::metrics_of(c);
    return test::metric(metrics, "pairrm_rejected_total{reason=\"disconnected\"}") == 1.0;
  })) << metrics;
  EXPECT_NE(metrics.find("pairrm_queue_rows 0"), std::string::npos) << metrics;
  EXPECT_EQ(server.stop(), 0);
}

TEST(Server, SigtermFinishesTheRequestInFlightAndExitsZero) {
  ServerProcess server(tiny_args());
  auto in_flight = std::async(std::launch::async, [&] {
    auto c = server.client();
    return status_of(c, "/rank", slow_rank().dump());
  });
  // SIGTERM only once the request is being scored, so that it is in flight and not merely connecting.
  auto watch = server.client();
  ASSERT_TRUE(test::wait_until([&] { return test::rows_in_server(watch) > 0; }))
      << "the request never reached the scheduler";
  const pid_t pid = server.pid();
  EXPECT_EQ(server.stop(), 0);  // waits for the exit
  EXPECT_EQ(in_flight.get(), 200);
  EXPECT_NE(kill(pid, 0), 0);  // gone
  httplib::Client c("127.0.0.1", server.port());
  EXPECT_FALSE(c.Get("/health"));  // no longer accepting
}

// ---- the serve options and the options of pairrm's own endpoints (docs/server.md) ----

json info_of(httplib::Client& c) {
  auto res = c.Get("/info");
  if (!res || res->status != 200) throw std::runtime_error("GET /info failed");
  return json::parse(res->body);
}

// M[i][j] = logit(candidate i over candidate j) as answers to `source`, through /compare's "[A,B]" mode: the
// rows /best_of_n's bubble pass runs, so its numbers are bitwise these (rows never share a computation).
std::vector<std::vector<double>> pairwise_logits(httplib::Client& c, const std::string& source,
                                                 const std::vector<std::string>& candidates) {
  const size_t n = candidates.size();
  std::vector<std::vector<double>> m(n, std::vector<double>(n, 0.0));
  json items = json::array();
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j)
      if (i != j) items.push_back({{"source", source}, {"candidate_a", candidates[i]}, {"candidate_b", candidates[j]}});
  if (items.empty()) return m;
  int status = 0;
  json r = post(c, "/compare", {{"items", items}, {"mode", "[A,B]"}}, &status);
  if (status != 200 || r["results"].size() != items.size()) throw std::runtime_error("/compare: " + r.dump());
  size_t k = 0;
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j)
      if (i != j) m[i][j] = r["results"][k++]["logit_ab"].get<double>();
  return m;
}

// The bubble selection as docs/server.md and include/pairrm/ranking.h specify it, on M: one pass over
// `order`; at each step s = M[cur][next] - M[next][cur], the current candidate stays if s > 0 (best) or
// s < 0 (worst), else the next one takes its place (ties go to the later candidate).
struct Bubble {
  size_t index;
  std::vector<double> pass_scores;
};
Bubble bubble(const std::vector<std::vector<double>>& m, const std::vector<size_t>& order, bool worst) {
  Bubble b{order.at(0), {}};
  for (size_t step = 1; step < order.size(); ++step) {
    const size_t next = order[step];
    const double s = m[b.index][next] - m[next][b.index];
    b.pass_scores.push_back(s);
    if (!(worst ? s < 0 : s > 0)) b.index = next;
  }
  return b;
}

// A seed's visiting order: Fisher-Yates with std::mt19937_64(seed), whose sequence the C++ standard fixes
// (so the CLI, the server and the Python module visit the same order for a seed).
std::vector<size_t> seeded_order(uint64_t seed, size_t n) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  for (size_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
  return order;
}

TEST_F(ServerTest, BestOfNOptionsFollowThePairwiseLogits) {
  auto c = server_->client();
  // Each option must change the answer somewhere in the fixture cases, or the test proves nothing about it.
  bool full_differs = false, worst_differs = false, seed_differs = false;
  for (const auto& rc : test::entries(test::model_text_cases("tiny"), "rank_cases")) {  // non-empty
    const std::string source = rc["source"];
    const auto candidates = rc["candidates"].get<std::vector<std::string>>();
    const size_t n = candidates.size();
    SCOPED_TRACE(source);
    const auto m = pairwise_logits(c, source, candidates);
    json ranked = post(c, "/rank", {{"source", source}, {"candidates", candidates}});
    ASSERT_EQ(ranked["ranks"].size(), n) << ranked.dump();
    const auto ranks = ranked["ranks"].get<std::vector<int>>();
    auto ask = [&](json options) {
      options["source"] = source;
      options["candidates"] = candidates;
      int status = 0;
      json r = post(c, "/best_of_n", options, &status);
      EXPECT_EQ(status, 200) << r.dump();
      return r;
    };
    std::vector<size_t> identity(n);
    std::iota(identity.begin(), identity.end(), 0);
    size_t bubble_pick[2] = {0, 0};
    for (const bool worst : {false, true}) {
      const std::string kind = worst ? "worst" : "best";
      SCOPED_TRACE(kind);
      // Bubble without a seed: the candidates in input order.
      const Bubble want = bubble(m, identity, worst);
      bubble_pick[worst] = want.index;
      json all = ask({{"worst", worst}, {"method", "bubble"}, {"return_all", true}});
      EXPECT_EQ(all[kind + "_index"], want.index) << all.dump();
      EXPECT_EQ(all[kind], candidates[want.index]);
      EXPECT_EQ(all["order"], json(identity));
      EXPECT_EQ(all["pass_scores"], json(want.pass_scores));  // bitwise: /compare's rows
      EXPECT_EQ(all.size(), 4u) << all.dump();                 // {kind}_index, {kind}, order, pass_scores
      // Without return_all: the pick alone. With no method: bubble.
      EXPECT_EQ(ask({{"worst", worst}}), (json{{kind + "_index", want.index}, {kind, candidates[want.index]}}));
      // Full: /rank's ranking, and the lowest (best) or highest (worst) rank, lowest index on ties.
      size_t pick = 0;
      for (size_t i = 1; i < n; ++i)
        if (worst ? ranks[i] > ranks[pick] : ranks[i] < ranks[pick]) pick = i;
      json full = ask({{"worst", worst}, {"method", "full"}, {"return_all", true}});
      EXPECT_EQ(full, (json{{kind + "_index", pick}, {kind, candidates[pick]}, {"scores", ranked["scores"]}, {"ranks", ranked["ranks"]}}));
      full_differs |= pick != want.index;
      // A seed: its Fisher-Yates order is visited instead (the same pass on another order).
      for (const uint64_t seed : {1u, 2u, 3u}) {
        const auto order = seeded_order(seed, n);
        const Bubble b = bubble(m, order, worst);
        json r = ask({{"worst", worst}, {"seed", seed}, {"return_all", true}});
        EXPECT_EQ(r["order"], json(order)) << seed;
        EXPECT_EQ(r["pass_scores"], json(b.pass_scores)) << seed;
        EXPECT_EQ(r[kind + "_index"], b.index) << seed;
        EXPECT_EQ(ask({{"worst", worst}, {"seed", seed}})[kind + "_index"], b.index) << seed;  // the same pick
        seed_differs |= b.index != want.index;
      }
    }
    worst_differs |= bubble_pick[0] != bubble_pick[1];
  }
  EXPECT_TRUE(full_differs) << "no fixture case where full and bubble pick differently";
  EXPECT_TRUE(worst_differs) << "no fixture case where the worst differs from the best";
  EXPECT_TRUE(seed_differs) << "no fixture case where a seed changes the pick";
}

TEST_F(ServerTest, RankWithAGivenReferenceScoresEachCandidateAgainstIt) {
  auto c = server_->client();
  const std::string ref = "I don't know.";
  for (const auto& rc : test::entries(test::model_text_cases("tiny"), "rank_cases")) {  // non-empty
    const std::string source = rc["source"];
    const auto candidates = rc["candidates"].get<std::vector<std::string>>();
    SCOPED_TRACE(source);
    int status = 0;
    json r = post(c, "/rank", {{"source", source}, {"candidates", candidates}, {"reference", ref}}, &status);
    ASSERT_EQ(status, 200) << r.dump();
    EXPECT_EQ(r["reference"], ref);
    ASSERT_EQ(r["scores"].size(), candidates.size()) << r.dump();
    ASSERT_EQ(r["ranks"].size(), candidates.size()) << r.dump();
    // score(c) = -(logit(ref, c) - logit(c, ref)) = /compare's score of c (A) against ref (B): bitwise, the
    // same two rows, and -(x - y) == y - x exactly in floating point.
    std::vector<double> want;
    for (const auto& cand : candidates)
      want.push_back(post(c, "/compare", {{"source", source}, {"candidate_a", cand}, {"candidate_b", ref}})["score"].get<double>());
    for (size_t k = 0; k < candidates.size(); ++k) {
      EXPECT_EQ(r["scores"][k].get<double>(), want[k]) << k;
      int rank = 1;  // competition ranks: 1 + the number of strictly higher scores
      for (double s : want) rank += s > want[k];
      EXPECT_EQ(r["ranks"][k], rank) << k;
    }
    // with_ref "longest" is the same ranking with the longest candidate given as the reference.
    json longest = post(c, "/rank", {{"source", source}, {"candidates", candidates}, {"with_ref", "longest"}});
    const json given = post(c, "/rank", {{"source", source}, {"candidates", candidates}, {"reference", longest["reference"]}});
    EXPECT_EQ(given, longest);
  }
}

TEST_F(ServerTest, RankItemsEachRankAgainstTheirOwnReference) {
  // {"items": [...]} with a reference in each item and none at the top: each item's result is the one the
  // item gets posted alone, reference included (it was once ranked without its reference).
  auto c = server_->client();
  const auto cases = test::entries(test::model_text_cases("tiny"), "rank_cases");  // non-empty
  const std::vector<std::string> refs = {"I don't know.", "Yes.", "It depends on the context."};
  json items = json::array();
  std::vector<json> alone;
  for (size_t k = 0; k < cases.size(); ++k) {
    json item = {{"source", cases[k]["source"]}, {"candidates", cases[k]["candidates"]}, {"reference", refs[k % refs.size()]}};
    alone.push_back(post(c, "/rank", item));
    ASSERT_EQ(alone.back()["reference"], item["reference"]) << alone.back().dump();
    items.push_back(std::move(item));
  }
  int status = 0;
  const json listed = post(c, "/rank", {{"items", items}}, &status);
  ASSERT_EQ(status, 200) << listed.dump();
  ASSERT_EQ(listed["results"].size(), cases.size()) << listed.dump();
  for (size_t k = 0; k < cases.size(); ++k) EXPECT_EQ(listed["results"][k], alone[k]) << k;
  // A bare array is the same list.
  EXPECT_EQ(post(c, "/rank", items), listed);
}

TEST_F(ServerTest, MaxBatchTokensBoundsTheTokensOfEachBatch) {
  // Four identical candidates: /rank runs 12 identical rows, handed to the scheduler together.
  const json same = {{"source", "s"}, {"candidates", {"same", "same", "same", "same"}}};
  auto c = server_->client();
  const std::string before = test::metrics_of(c);
  const json want = post(c, "/rank", same);
  const std::string after = test::metrics_of(c);
  auto delta = [&](const char* series) { return test::metric(after, series).value_or(-1) - test::metric(before, series).value_or(0); };
  ASSERT_EQ(delta("pairrm_rows_total"), 12.0);
  EXPECT_EQ(delta("pairrm_batches_total"), 1.0);  // the default 16384 tokens: all 12 in one batch
  const double tokens = delta("pairrm_tokens_total");
  const long row_tokens = static_cast<long>(tokens) / 12;
  ASSERT_GT(row_tokens, 0);
  ASSERT_EQ(row_tokens * 12.0, tokens);  // identical rows
  // --max-batch-tokens of exactly three rows: a batch takes rows while they fit, so 4 batches of 3.
  ServerProcess server({"--model", test::model_dir("tiny"), "--threads", "2", "--max-batch-tokens", std::to_string(3 * row_tokens)});
  auto b = server.client();
  EXPECT_EQ(post(b, "/rank", same), want);  // bitwise: a row's logit never depends on its batch
  const std::string m = test::metrics_of(b);
  EXPECT_EQ(test::metric(m, "pairrm_rows_total"), 12.0) << m;
  EXPECT_EQ(test::metric(m, "pairrm_batches_total"), 4.0) << m;
  EXPECT_EQ(test::metric(m, "pairrm_batch_rows_bucket{le=\"2\"}"), 0.0) << m;  // none smaller than 3
  EXPECT_EQ(test::metric(m, "pairrm_batch_rows_bucket{le=\"4\"}"), 4.0) << m;  // none larger
  EXPECT_EQ(server.stop(), 0);
}

TEST(Server, WorkersRunBatchesSideBySide) {
  ServerProcess server(tiny_args({"--workers", "2", "--max-batch-rows", "1"}));
  auto c = server.client();
  json info = info_of(c);
  EXPECT_EQ(info["workers"], 2);
  EXPECT_EQ(info["threads_per_worker"], 1);  // --threads 2 shared by the two
  auto slow = std::async(std::launch::async, [&] {
    auto sc = server.client();
    return status_of(sc, "/rank", slow_rank().dump());
  });
  // One row per batch (--max-batch-rows 1): two rows computing at once are two batches at once, which one
  // worker never runs. The 30 rows of the slow /rank keep both busy for seconds.
  std::string m;
  EXPECT_TRUE(test::wait_until([&] {
    m = test::metrics_of(c);
    return test::metric(m, "pairrm_running_rows") == 2.0;
  })) << "never two batches at once:\n" << m;
  EXPECT_EQ(slow.get(), 200);
  // The same numbers as one worker with every thread: bitwise.
  ServerProcess one(tiny_args());
  auto c1 = one.client();
  const json small = {{"source", "hello!"}, {"candidates", {"hi!", "bye!", "f**k off!"}}};
  EXPECT_EQ(post(c, "/rank", small), post(c1, "/rank", small));
  EXPECT_EQ(one.stop(), 0);
  EXPECT_EQ(server.stop(), 0);
}

TEST(Server, HostBindsTheGivenAddressOnly) {
  auto with_host = [](const char* host) {
    auto args = tiny_args();
    args.insert(args.end(), {"--host", host});
    return args;
  };
  {
    ServerProcess server(with_host("127.0.0.1"));
    EXPECT_EQ(server.host(), "127.0.0.1");  // the "listening on" line
    httplib::Client c("127.0.0.1", server.port());
    auto h = c.Get("/health");
    ASSERT_TRUE(h);
    EXPECT_EQ(h->status, 200);
    EXPECT_EQ(server.stop(), 0);
  }
  // Another loopback address (Linux routes all of 127.0.0.0/8 to lo): reachable there, and not on the
  // default 127.0.0.1, so the address was bound, not merely printed.
  ServerProcess server(with_host("127.0.0.2"));
  EXPECT_EQ(server.host(), "127.0.0.2");
  httplib::Client there("127.0.0.2", server.port());
  auto h = there.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  httplib::Client elsewhere("127.0.0.1", server.port());
  elsewhere.set_connection_timeout(5, 0);
  EXPECT_FALSE(elsewhere.Get("/health")) << "127.0.0.1 answers too: --host was not what was bound";
  EXPECT_EQ(server.stop(), 0);
}

TEST(Server, AnUnusableHostFailsWithAClearMessage) {
  // 192.0.2.1 (TEST-NET-1, RFC 5737) is no address of this machine: bind() refuses it (EADDRNOTAVAIL;
  // net.ipv4.ip_nonlocal_bind is 0 by default). `timeout`: a server that ignored --host would serve forever.
  const auto r = test::run_env("timeout 120", "serve --model " + test::model_dir("tiny") + " --threads 1 --host 192.0.2.1 --port 0",
                               "", /*with_stderr=*/true);
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("pairrm serve: cannot listen on 192.0.2.1:0: "), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("listening on"), std::string::npos) << r.out;
}

TEST(Server, MaxBodyBytesAnswers413OverIt) {
  ServerProcess server(tiny_args({"--max-body-bytes", "1000"}));
  auto c = server.client();
  EXPECT_EQ(info_of(c)["limits"]["max_body_bytes"], 1000);
  // The same request padded with spaces (valid JSON) to the limit and one byte past it.
  const std::string request = R"({"source": "a", "candidate_a": "b", "candidate_b": "c"})";
  auto padded = [&](size_t size) { return request + std::string(size - request.size(), ' '); };
  auto at = c.Post("/compare", padded(1000), "application/json");
  ASSERT_TRUE(at);
  EXPECT_EQ(at->status, 200) << at->body;
  auto over = c.Post("/compare", padded(1001), "application/json");
  ASSERT_TRUE(over);
  EXPECT_EQ(over->status, 413);
  expect_error_body(over->body, 413, "request body over the limit (--max-body-bytes)");
  EXPECT_EQ(status_of(c, "/compare", request), 200);  // still serving
  EXPECT_EQ(server.stop(), 0);
}

TEST(Server, MaxItemsAnswers413OverItInEachProtocolsShape) {
  ServerProcess server(tiny_args({"--max-items", "2"}));
  auto c = server.client();
  EXPECT_EQ(info_of(c)["limits"]["max_items"], 2);
  auto items = [](int n) {
    json out = json::array();
    for (int i = 0; i < n; ++i) out.push_back({{"source", "s"}, {"candidate_a", "a" + std::to_string(i)}, {"candidate_b", "b"}});
    return out;
  };
  int status = 0;
  EXPECT_EQ(post(c, "/compare", {{"items", items(2)}}, &status)["results"].size(), 2u);
  EXPECT_EQ(status, 200);
  // pairrm's items (every endpoint takes them the same way).
  auto res = c.Post("/compare", json{{"items", items(3)}}.dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  expect_error_body(res->body, 413, "3 items, over the limit of 2 per request (--max-items)");
  const json ranks = {{{"source", "s"}, {"candidates", {"a", "b"}}}, {{"source", "s"}, {"candidates", {"a", "b"}}},
                      {{"source", "s"}, {"candidates", {"a", "b"}}}};
  res = c.Post("/rank", json{{"items", ranks}}.dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  expect_error_body(res->body, 413, "3 items, over the limit of 2 per request (--max-items)");
  // vLLM's N:N pairs: its error object.
  EXPECT_EQ(status_of(c, "/v1/score", json{{"text_1", {"p", "q"}}, {"text_2", {"a", "b"}}}.dump()), 200);
  res = c.Post("/v1/score", json{{"text_1", {"p", "q", "r"}}, {"text_2", {"a", "b", "c"}}}.dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  EXPECT_EQ(json::parse(res->body), (json{{"error",
                                          {{"message", "batch size 3 > maximum allowed batch size 2 (--max-items)"},
                                           {"type", "Request Entity Too Large"},
                                           {"param", nullptr},
                                           {"code", 413}}}}))
      << res->body;
  // OpenRLHF's queries: pairrm's body.
  EXPECT_EQ(status_of(c, "/get_reward", json{{"query", {"pa", "pb"}}, {"prompts", {"p", "p"}}}.dump()), 200);
  res = c.Post("/get_reward", json{{"query", {"pa", "pb", "pc"}}, {"prompts", {"p", "p", "p"}}}.dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  expect_error_body(res->body, 413, "batch size 3 > maximum allowed batch size 2 (--max-items)");
  EXPECT_EQ(server.stop(), 0);
}

}  // namespace
}  // namespace pairrm
