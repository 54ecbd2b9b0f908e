// `pairrm generate-best-of-n` against an OpenAI-compatible stand-in (tests/openai_server.py) on loopback:
// the kept sample is PairRM's best of the canned samples, retries on 429/5xx, clear failures, bounded
// concurrency, servers that ignore "n".
#include <gtest/gtest.h>

#include <httplib.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>

#include "cli_run.h"
#include "fixtures.h"
#include "pairrm/ranking.h"
#include "python_server.h"

namespace pairrm::test {
namespace {

namespace fs = std::filesystem;

// What the stand-in delivers as the k-th sample of a prompt (the same formula as openai_server.py).
std::string sample_text(const std::string& prompt, int k) {
  std::string s = "Answer " + std::to_string(k) + " to '" + prompt + "':";
  for (int i = 0; i < (k * 7) % 5; ++i) s += " more detail";
  return s;
}

json stats(const PythonServer& server) {
  httplib::Client c(server.base_url());
  auto r = c.Get("/stats");
  return r ? json::parse(r->body) : json();
}

std::string input_file(const std::string& name, const std::vector<json>& lines) {
  const std::string path = (fs::temp_directory_path() / ("pairrm_gen_" + std::to_string(::getpid()) + "_" + name)).string();
  std::ofstream out(path);
  for (const auto& l : lines) out << l.dump() << "\n";
  return path;
}

std::string gen_args(const PythonServer& s, const std::string& input, int n, int retries = 3) {
  return "generate-best-of-n --model " + model_dir("tiny") + " --endpoint " + s.base_url() + "/v1 --n " +
         std::to_string(n) + " --input " + input + " --backoff-s 0.01 --retries " + std::to_string(retries) + " -q";
}

// PairRM's pick among the canned samples through the public API.
BestOfNResult expected_best(const std::string& prompt, int n, SelectionMethod method,
                            std::optional<uint64_t> seed = std::nullopt) {
  Context ctx(shared_model("tiny"), 1);
  RankInput in{prompt, {}};
  for (int k = 0; k < n; ++k) in.candidates.push_back(sample_text(prompt, k));
  BestOfNOptions o;
  o.method = method;
  o.seed = seed;
  return best_of_n(ctx, {in}, o).at(0);
}

TEST(GenerateBestOfN, KeepsPairRMsBestSampleAndRetriesPassingFailures) {
  PythonServer server("openai_server.py", "--delay 0.05");
  ASSERT_GT(server.port(), 0);
  const std::vector<std::string> prompts{"How do I boil an egg?", "flaky-429 Name a prime.", "flaky-500 Why is the sky blue?",
                                         "Write a haiku."};
  std::vector<json> lines;
  for (size_t i = 0; i < prompts.size(); ++i) lines.push_back({{"id", "p" + std::to_string(i)}, {"prompt", prompts[i]}});
  const std::string in = input_file("ok.jsonl", lines);
  const auto r = run(gen_args(server, in, 5) + " --return-samples --llm my-model --temperature 0.7 --top-p 0.9 "
                                               "--max-tokens 64 --system 'Be brief.'");
  ASSERT_EQ(r.status, 0) << r.out;
  const auto out = test::lines(r.out);
  ASSERT_EQ(out.size(), prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    SCOPED_TRACE(prompts[i]);
    EXPECT_EQ(out[i]["id"], "p" + std::to_string(i));
    EXPECT_EQ(out[i]["prompt"], prompts[i]);
    ASSERT_EQ(out[i]["samples"].size(), 5u);
    for (int k = 0; k < 5; ++k) EXPECT_EQ(out[i]["samples"][k], sample_text(prompts[i], k));
    const auto want = expected_best(prompts[i], 5, SelectionMethod::kBubble);
    EXPECT_EQ(out[i]["best_index"], want.index);
    EXPECT_EQ(out[i]["best"], sample_text(prompts[i], static_cast<int>(want.index)));
  }
  const json s = stats(server);
  EXPECT_EQ(s["by_prompt"][prompts[0]], 1);  // n=5 in one request
  EXPECT_EQ(s["by_prompt"][prompts[1]], 3);  // two 429s, then the samples
  EXPECT_EQ(s["by_prompt"][prompts[2]], 3);  // two 500s, then the samples
  // The request carries the sampling flags and the system message.
  const json& body = s["bodies"][0];
  EXPECT_EQ(body["model"], "my-model");
  EXPECT_EQ(body["n"], 5);
  EXPECT_DOUBLE_EQ(body["temperature"].get<double>(), 0.7);
  EXPECT_DOUBLE_EQ(body["top_p"].get<double>(), 0.9);
  EXPECT_EQ(body["max_tokens"], 64);
  EXPECT_EQ(body["messages"][0], json({{"role", "system"}, {"content", "Be brief."}}));
  EXPECT_EQ(body["messages"][1]["role"], "user");
  fs::remove(in);
}

TEST(GenerateBestOfN, FullRankingScoresAndServersThatIgnoreN) {
  PythonServer server("openai_server.py", "--ignore-n");  // one choice per request, as llama.cpp's server
  ASSERT_GT(server.port(), 0);
  const std::string prompt = "Explain recursion.";
  const std::string in = input_file("full.jsonl", {{{"prompt", prompt}}});
  const auto r = run(gen_args(server, in, 4) + " --method full --return-scores");
  ASSERT_EQ(r.status, 0) << r.out;
  const json out = test::lines(r.out).at(0);
  const auto want = expected_best(prompt, 4, SelectionMethod::kFull);
  EXPECT_EQ(out["best_index"], want.index);
  ASSERT_EQ(out["scores"].size(), 4u);
  for (size_t k = 0; k < 4; ++k) EXPECT_NEAR(out["scores"][k].get<double>(), want.ranking.scores[k], 1e-9);
  EXPECT_EQ(stats(server)["by_prompt"][prompt], 4);  // asked again for the rest each time
  // --return-scores without the full ranking is refused before any request.
  EXPECT_NE(run(gen_args(server, in, 4) + " --return-scores").status, 0);
  EXPECT_EQ(stats(server)["requests"], 4);
  fs::remove(in);
}

TEST(GenerateBestOfN, FailingPromptsGetErrorRecordsAndBadKeysStopTheRun) {
  PythonServer server("openai_server.py", "--api-key sk-good");
  ASSERT_GT(server.port(), 0);
  const std::string in = input_file("bad.jsonl", {{{"id", 1}, {"prompt", "fine"}},
                                                  {{"id", 2}, {"prompt", "always-503"}},
                                                  {{"id", 3}, {"prompt", "bad-request"}},
                                                  {{"id", 4}, {"prompt", "no-text"}},
                                                  {{"id", 5}, {"prompt", 7}},
                                                  {{"id", 6}, {"prompt", "also fine"}}});
  const auto r = run_env("OPENAI_API_KEY=sk-good", gen_args(server, in, 2));
  EXPECT_EQ(r.status, 1);  // some lines failed
  const auto out = test::lines(r.out);
  ASSERT_EQ(out.size(), 6u);
  EXPECT_EQ(out[0]["best_index"].is_number(), true);
  EXPECT_NE(out[1]["error"].get<std::string>().find("HTTP 503 after 4 tries"), std::string::npos) << out[1];
  EXPECT_NE(out[2]["error"].get<std::string>().find("prompt too long"), std::string::npos) << out[2];
  EXPECT_NE(out[3]["error"].get<std::string>().find("no message text"), std::string::npos) << out[3];
  EXPECT_NE(out[4]["error"].get<std::string>().find("'prompt'"), std::string::npos) << out[4];
  for (int i = 1; i <= 4; ++i) EXPECT_EQ(out[i]["id"], i + 1);
  EXPECT_EQ(out[5]["best_index"].is_number(), true);
  const json s = stats(server);
  EXPECT_EQ(s["by_prompt"]["always-503"], 4);   // 1 + --retries 3
  EXPECT_EQ(s["by_prompt"]["bad-request"], 1);  // a 400 is not retried

  // A wrong key: the run stops at once with the server's reason, exit 1, no guesses.
  const long before = stats(server)["requests"];
  const auto denied = run_env("OPENAI_API_KEY=", gen_args(server, in, 2) + " --api-key sk-wrong", "", true);
  EXPECT_EQ(denied.status, 1);
  EXPECT_NE(denied.out.find("HTTP 401"), std::string::npos) << denied.out;
  EXPECT_LE(stats(server)["requests"].get<long>() - before, 4);  // at most one request per worker thread
  // A wrong path is a clear error too; nothing listening is one after the retries.
  std::string wrong_path = gen_args(server, in, 2, 0);
  wrong_path.replace(wrong_path.find("/v1"), 3, "/nope");
  const auto missing = run_env("OPENAI_API_KEY=sk-good", wrong_path, "", true);
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.out.find("HTTP 404"), std::string::npos) << missing.out;
  server.stop();
  const auto down = run_env("OPENAI_API_KEY=sk-good", gen_args(server, in, 2, 1), "", true);
  EXPECT_EQ(down.status, 1) << down.out;
  EXPECT_NE(down.out.find("cannot reach"), std::string::npos) << down.out;
  fs::remove(in);
}

// The endpoint refusing the key mid-run stops the run, but the prompts already answered are scored and
// written first (their samples are not thrown away), so --resume asks only for the rest.
TEST(GenerateBestOfN, AStoppedRunKeepsWhatWasAlreadyGenerated) {
  PythonServer server("openai_server.py", "");
  ASSERT_GT(server.port(), 0);
  const std::string in = input_file("revoked.jsonl", {{{"id", 1}, {"prompt", "first"}},
                                                      {{"id", 2}, {"prompt", "second"}},
                                                      {{"id", 3}, {"prompt", "key-revoked"}},
                                                      {{"id", 4}, {"prompt", "fourth"}}});
  const std::string out = (fs::temp_directory_path() / ("pairrm_gen_revoked_out_" + std::to_string(::getpid()))).string();
  fs::remove(out);
  const auto r = run_env("OPENAI_API_KEY=", gen_args(server, in, 2) + " --concurrency 1 --chunk-lines 16 --output " + out, "", true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("HTTP 401"), std::string::npos) << r.out;
  std::ifstream f(out);
  std::stringstream text;
  text << f.rdbuf();
  const auto kept = test::lines(text.str());
  ASSERT_EQ(kept.size(), 2u) << text.str();  // the two answered prompts, in input order
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(kept[i]["id"], i + 1);
    const std::string prompt = i == 0 ? "first" : "second";
    EXPECT_EQ(kept[i]["best_index"].get<size_t>(), expected_best(prompt, 2, SelectionMethod::kBubble).index);
  }
  EXPECT_EQ(stats(server)["by_prompt"].value("fourth", 0), 0);  // never asked: the run stopped before it
  fs::remove(out);
  fs::remove(in);
}

// A chat/completions stand-in that holds every request until `want` are in flight at once (or every one of
// the run's `total` requests has arrived), then answers as openai_server.py does. A client that keeps
// --concurrency requests in flight therefore shows exactly that many, whatever the scheduling: the count
// does not depend on how long anything takes. A client with fewer in flight never fills the gate: after
// kGateWait the gate opens for good and the maximum seen is below `want`. The held requests stay held a
// further kGrace after the gate opens before they are answered, so that a request beyond the bound (a 4th)
// is seen in flight with them rather than after them; that only makes an unbounded client likelier to be
// caught, and changes nothing for a bounded one.
class GatedEndpoint {
 public:
  static constexpr std::chrono::seconds kGateWait{20};  // generous: a client that does fill the gate does so at once
  static constexpr std::chrono::milliseconds kGrace{50};
  GatedEndpoint(int want, int total) : want_(want), total_(total) {
    server_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      const json body = json::parse(req.body);
      const std::string prompt = body["messages"].back()["content"];
      {
        std::unique_lock<std::mutex> lock(mu_);
        bodies_.push_back(body);
        const int me = ++started_;
        max_in_flight_ = std::max(max_in_flight_, ++in_flight_);
        if (in_flight_ >= want_ || started_ == total_) released_ = started_;
        cv_.notify_all();
        if (!cv_.wait_for(lock, kGateWait, [&] { return released_ >= me; })) {
          timed_out_ = true;
          released_ = total_ + 1000;
          cv_.notify_all();
        }
      }
      std::this_thread::sleep_for(kGrace);
      {
        std::lock_guard<std::mutex> lock(mu_);
        --in_flight_;  // before the reply: the client's next request must not find this one counted
      }
      json choices = json::array();
      for (int k = 0; k < body.value("n", 1); ++k)
        choices.push_back({{"index", k}, {"finish_reason", "stop"},
                           {"message", {{"role", "assistant"}, {"content", sample_text(prompt, k)}}}});
      res.set_content(json({{"id", "cmpl-gate"}, {"object", "chat.completion"}, {"choices", choices}}).dump(),
                      "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() before the loop runs would leave it running and the join waiting forever.
    for (int i = 0; i < 2000 && port_ > 0 && !server_.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~GatedEndpoint() {
    server_.stop();
    thread_.join();
  }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  int max_in_flight() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_in_flight_;
  }
  int requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return started_;
  }
  bool timed_out() {
    std::lock_guard<std::mutex> lock(mu_);
    return timed_out_;
  }
  std::vector<json> bodies() {
    std::lock_guard<std::mutex> lock(mu_);
    return bodies_;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  const int want_, total_;
  std::mutex mu_;
  std::condition_variable cv_;
  int started_ = 0, in_flight_ = 0, max_in_flight_ = 0, released_ = 0;
  bool timed_out_ = false;
  std::vector<json> bodies_;
};

TEST(GenerateBestOfN, ConcurrencyIsBounded) {
  // 8 prompts, one request each (the endpoint honours n), 3 workers: exactly 3 in flight at the peak.
  GatedEndpoint server(3, 8);
  ASSERT_GT(server.port(), 0);
  std::vector<json> lines;
  for (int i = 0; i < 8; ++i) lines.push_back({{"prompt", "question " + std::to_string(i)}});
  const std::string in = input_file("many.jsonl", lines);
  const auto r = run("generate-best-of-n --model " + model_dir("tiny") + " --endpoint " + server.base_url() +
                     "/v1 --n 2 --input " + in + " --retries 0 -q --concurrency 3");
  ASSERT_EQ(r.status, 0) << r.out;
  const auto out = test::lines(r.out);
  ASSERT_EQ(out.size(), 8u);
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(out[i]["best_index"], expected_best("question " + std::to_string(i), 2, SelectionMethod::kBubble).index);
  EXPECT_EQ(server.requests(), 8);
  EXPECT_FALSE(server.timed_out()) << "the client never had 3 requests in flight";
  EXPECT_EQ(server.max_in_flight(), 3);
  fs::remove(in);
}

// --seed: the bubble visits the samples in the seeded order of the library's best_of_n, so the pick is the
// API's for that seed. The prompt is the first of a few for which no seed, seed 1 and seed 2 pick three
// different samples through the API on this machine (searched, not assumed: the picks of a random model can
// tie differently from one ISA to another), so a --seed that was ignored, or one order for every seed,
// fails. --llm-seed goes into the request as "seed" as given (left out without the flag). The endpoint is a
// GatedEndpoint that holds nothing (want 1): it answers every request with samples 0..n-1, so every run
// scores the same texts.
TEST(GenerateBestOfN, SeedsAreHonoured) {
  std::string prompt;
  BestOfNResult none, one, two;
  for (int p = 0; p < 40 && prompt.empty(); ++p) {
    const std::string candidate = "question " + std::to_string(p);
    none = expected_best(candidate, 6, SelectionMethod::kBubble);
    one = expected_best(candidate, 6, SelectionMethod::kBubble, 1);
    two = expected_best(candidate, 6, SelectionMethod::kBubble, 2);
    if (none.index != one.index && one.index != two.index && none.index != two.index) prompt = candidate;
  }
  ASSERT_FALSE(prompt.empty()) << "no prompt of 40 where the seeds pick three different samples";
  const std::string in = input_file("seeded.jsonl", {{{"prompt", prompt}}});
  struct Run {
    json best_index, request;
  };
  auto go = [&](const std::string& flags) {
    GatedEndpoint server(1, 1);
    const auto r = run("generate-best-of-n --model " + model_dir("tiny") + " --endpoint " + server.base_url() +
                       "/v1 --n 6 --input " + in + " --retries 0 -q" + flags);
    EXPECT_EQ(r.status, 0) << flags << ": " << r.out;
    const auto out = test::lines(r.out);
    const auto bodies = server.bodies();
    EXPECT_EQ(bodies.size(), 1u) << flags;
    return Run{out.size() == 1 ? out[0]["best_index"] : json(), bodies.empty() ? json() : bodies[0]};
  };
  EXPECT_EQ(go("").best_index, none.index);
  EXPECT_EQ(go(" --seed 1").best_index, one.index);
  EXPECT_EQ(go(" --seed 1").best_index, one.index);
  EXPECT_EQ(go(" --seed 2").best_index, two.index);
  EXPECT_FALSE(go("").request.contains("seed"));
  EXPECT_EQ(go(" --llm-seed 11").request["seed"], 11);
  EXPECT_EQ(go(" --llm-seed 12").request["seed"], 12);
  fs::remove(in);
}

}  // namespace
}  // namespace pairrm::test
