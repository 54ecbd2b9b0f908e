// `pairrm generate-best-of-n` against an OpenAI-compatible stand-in (tests/openai_server.py) on loopback:
// the kept sample is PairRM's best of the canned samples, retries on 429/5xx, clear failures, bounded
// concurrency, servers that ignore "n".
#include <gtest/gtest.h>

#include <httplib.h>

#include <filesystem>
#include <fstream>

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
BestOfNResult expected_best(const std::string& prompt, int n, SelectionMethod method) {
  Context ctx(shared_model("tiny"), 1);
  RankInput in{prompt, {}};
  for (int k = 0; k < n; ++k) in.candidates.push_back(sample_text(prompt, k));
  BestOfNOptions o;
  o.method = method;
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

TEST(GenerateBestOfN, ConcurrencyIsBounded) {
  PythonServer server("openai_server.py", "--delay 0.2");
  ASSERT_GT(server.port(), 0);
  std::vector<json> lines;
  for (int i = 0; i < 8; ++i) lines.push_back({{"prompt", "question " + std::to_string(i)}});
  const std::string in = input_file("many.jsonl", lines);
  const auto r = run(gen_args(server, in, 2) + " --concurrency 3");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(test::lines(r.out).size(), 8u);
  const json s = stats(server);
  EXPECT_EQ(s["requests"], 8);
  EXPECT_LE(s["max_in_flight"].get<int>(), 3);
  EXPECT_GE(s["max_in_flight"].get<int>(), 2);  // 0.2 s per request: the 3 threads do overlap
  fs::remove(in);
}

}  // namespace
}  // namespace pairrm::test
