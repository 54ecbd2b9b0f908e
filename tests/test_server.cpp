// `pairrm serve` as a client sees it: the real process on a loopback port, spoken to over HTTP.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <future>
#include <thread>

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

std::vector<std::string> tiny_args() { return {"--model", test::model_dir("tiny"), "--threads", "2"}; }

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
  const auto& rows = t["pair_rows"];
  json items = json::array();
  for (const auto& m : t["models"]["tiny"]["compare_modes"]) {
    const auto& r = rows[m["row"].get<size_t>()];
    items.push_back({{"source", r["source"]}, {"candidate_a", r["candidate1"]}, {"candidate_b", r["candidate2"]}});
  }
  int status = 0;
  const json both = post(c, "/compare", {{"items", items}}, &status);
  ASSERT_EQ(status, 200) << both.dump();
  const json ab = post(c, "/compare", {{"items", items}, {"mode", "[A,B]"}});
  const json ba = post(c, "/compare", {{"items", items}, {"mode", "ba"}});
  const auto& modes = t["models"]["tiny"]["compare_modes"];
  ASSERT_EQ(both["results"].size(), modes.size());
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
  for (const auto& rc : t["models"]["tiny"]["rank_cases"]) {
    const json body = {{"source", rc["source"]}, {"candidates", rc["candidates"]}};
    const json r = post(c, "/rank", body);
    EXPECT_EQ(r["ranks"], rc["ranks"]);
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
    size_t want = 0;
    for (size_t i = 0; i < rc["ranks"].size(); ++i)
      if (rc["ranks"][i] < rc["ranks"][want]) want = i;
    EXPECT_EQ(best["best_index"], want);
  }
}

TEST_F(ServerTest, ConversationsMatchTheFixtures) {
  auto c = server_->client();
  const auto t = test::read_json(test::fixtures_dir() + "/text_cases.json");
  for (const auto& cc : t["models"]["tiny"]["conversation_cases"]) {
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
  auto args = tiny_args();
  args.insert(args.end(), {"--api-key", "sekret"});
  ServerProcess server(args);
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

TEST(Server, FullQueueAnswers429AtOnce) {
  auto args = tiny_args();
  args.insert(args.end(), {"--max-queue", "4", "--max-batch-rows", "1"});
  ServerProcess server(args);
  auto first = std::async(std::launch::async, [&] {
    auto c = server.client();
    return status_of(c, "/rank", slow_rank().dump());
  });
  // Its 30 rows run one at a time: wait until enough of them wait that no request fits under --max-queue 4.
  auto c = server.client();
  ASSERT_TRUE(test::wait_until([&] { return test::metric(test::metrics_of(c), "pairrm_queue_rows") >= 4.0; }))
      << "the slow /rank never filled the queue";
  const auto t0 = std::chrono::steady_clock::now();
  auto res = c.Post("/compare", R"({"source": "a", "candidate_a": "b", "candidate_b": "c"})", "application/json");
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 429);
  EXPECT_EQ(res->get_header_value("Retry-After"), "1");
  EXPECT_LT(waited, 1.0);  // refused at once, not after the queue drained
  EXPECT_EQ(first.get(), 200);
  EXPECT_EQ(status_of(c, "/compare", R"({"source": "a", "candidate_a": "b", "candidate_b": "c"})"), 200);
  EXPECT_EQ(server.stop(), 0);
}

TEST(Server, TimeoutsAnswer504AndPassCapsAnswer413) {
  auto args = tiny_args();
  args.insert(args.end(), {"--timeout-s", "1", "--max-passes", "60", "--max-batch-rows", "1"});
  ServerProcess server(args);
  auto c = server.client();
  EXPECT_EQ(status_of(c, "/rank", slow_rank(8).dump()), 504);  // 56 rows: seconds
  // The rows not started were dropped before the 504 was sent; the one already running finishes (and is
  // thrown away): wait for it, so that the requests below do not queue behind it past their own timeout.
  EXPECT_EQ(test::metric(test::metrics_of(c), "pairrm_queue_rows"), 0.0);
  ASSERT_TRUE(test::wait_until([&] { return test::rows_in_server(c) == 0; }))
      << "the server still runs rows of the timed-out request:\n" << test::metrics_of(c);
  const json five = {{"source", "s"}, {"candidates", {"a", "b", "c", "d", "e"}}};  // 20 passes: allowed
  const json nine = {{"source", "s"}, {"candidates", {"a", "b", "c", "d", "e", "f", "g", "h", "i"}}};  // 72
  EXPECT_EQ(status_of(c, "/rank", nine.dump()), 413);
  EXPECT_EQ(status_of(c, "/rank", five.dump()), 200);
  auto m = c.Get("/metrics");
  EXPECT_NE(m->body.find("pairrm_rejected_total{reason=\"timeout\"} 1"), std::string::npos);
  EXPECT_EQ(server.stop(), 0);
}

TEST(Server, ADisconnectedClientsWorkIsDropped) {
  auto args = tiny_args();
  args.insert(args.end(), {"--max-batch-rows", "1"});
  ServerProcess server(args);
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

}  // namespace
}  // namespace pairrm
