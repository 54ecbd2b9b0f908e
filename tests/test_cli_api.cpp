// `pairrm rank|best-of-n|worst-of-n|compare-conversations|dpo` end to end: fixture values, invariants,
// batching, resume.
#include <gtest/gtest.h>
#include <signal.h>

#include "cli_run.h"
#include "fixtures.h"
#include "pairrm/ranking.h"
#include "polling.h"

namespace pairrm {
namespace {

using nlohmann::json;
using test::lines;
using test::run;

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("pairrm_" + name + "_" + std::to_string(::getpid()))).string();
}
using test::slurp;

class CliApi : public ::testing::TestWithParam<std::string> {
 protected:
  std::string model() const { return " -q --model " + test::model_dir(GetParam()); }
  json cases() const { return test::model_text_cases(GetParam()); }
};

TEST_P(CliApi, RankAndRankWithRefLongest) {
  std::string input;
  const auto rc = test::entries(cases(), "rank_cases");
  for (size_t k = 0; k < rc.size(); ++k)
    input += json({{"id", k}, {"source", rc[k]["source"]}, {"candidates", rc[k]["candidates"]}}).dump() + "\n";
  const auto plain = run("rank --input -" + model(), input);
  const auto ref = run("rank --with-ref longest --input -" + model(), input);
  ASSERT_EQ(plain.status, 0);
  ASSERT_EQ(ref.status, 0);
  const auto p = lines(plain.out), r = lines(ref.out);
  ASSERT_EQ(p.size(), rc.size());
  ASSERT_EQ(r.size(), rc.size());
  for (size_t k = 0; k < rc.size(); ++k) {
    EXPECT_EQ(p[k]["id"], k);
    EXPECT_EQ(p[k]["ranks"], rc[k]["ranks"]);
    ASSERT_EQ(p[k]["scores"].size(), rc[k]["scores"].size()) << k;
    ASSERT_EQ(r[k]["scores"].size(), rc[k]["rank_with_ref_longest"]["scores"].size()) << k;
    for (size_t i = 0; i < test::entries(rc[k], "scores").size(); ++i)
      EXPECT_NEAR(p[k]["scores"][i].get<double>(), rc[k]["scores"][i].get<double>(), 1e-4);
    const auto& want = rc[k]["rank_with_ref_longest"];
    EXPECT_EQ(r[k]["reference"], want["reference"]);
    EXPECT_EQ(r[k]["ranks"], want["ranks"]);
    for (size_t i = 0; i < test::entries(want, "scores").size(); ++i)
      EXPECT_NEAR(r[k]["scores"][i].get<double>(), want["scores"][i].get<double>(), 2e-4);
  }
}

TEST_P(CliApi, CompareConversations) {
  const json all = cases();  // the loop must not range over a part of a temporary
  for (const auto& c : test::entries(all, "conversation_cases")) {
    const json line = {{"id", "conv"}, {"conversation_a", c["conversation_a"]}, {"conversation_b", c["conversation_b"]}};
    const auto out = lines(run("compare-conversations --input -" + model(), line.dump() + "\n").out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0]["id"], "conv");
    EXPECT_NEAR(out[0]["logit_ab"].get<double>(), c["ab"].get<double>(), 1e-4);
    EXPECT_NEAR(out[0]["logit_ba"].get<double>(), c["ba"].get<double>(), 1e-4);
    EXPECT_NEAR(out[0]["score"].get<double>(), c["default"].get<double>(), 2e-4);
  }
}

TEST_P(CliApi, CompareModes) {
  const auto t = test::read_json(test::fixtures_dir() + "/text_cases.json");
  const auto rows = test::entries(t, "pair_rows");
  const auto modes = test::entries(cases(), "compare_modes");
  std::string input;
  for (const auto& m : modes) {
    const auto& r = rows[m["row"].get<size_t>()];
    input += json({{"id", m["row"]}, {"source", r["source"]}, {"candidate_a", r["candidate1"]}, {"candidate_b", r["candidate2"]}}).dump() + "\n";
  }
  const auto both = lines(run("compare --input -" + model(), input).out);
  const auto ab = lines(run("compare --mode ab --input -" + model(), input).out);
  const auto ba = lines(run("compare --mode ba --input -" + model(), input).out);
  ASSERT_EQ(both.size(), modes.size());
  ASSERT_EQ(ab.size(), modes.size());
  ASSERT_EQ(ba.size(), modes.size());
  for (size_t i = 0; i < modes.size(); ++i) {
    EXPECT_EQ(both[i]["id"], modes[i]["row"]);
    EXPECT_NEAR(both[i]["score"].get<double>(), modes[i]["default"].get<double>(), 2e-4);
    EXPECT_EQ(both[i]["a_better"], modes[i]["better_default"]);
    EXPECT_NEAR(ab[i]["score"].get<double>(), modes[i]["ab"].get<double>(), 1e-4);
    EXPECT_NEAR(ba[i]["score"].get<double>(), modes[i]["ba"].get<double>(), 1e-4);
    EXPECT_FALSE(ab[i].contains("logit_ba"));
    EXPECT_FALSE(ba[i].contains("logit_ab"));
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CliApi, ::testing::Values("tiny", "tiny_b"));

const std::string kTiny = " -q --model " + test::model_dir("tiny");

TEST(CliApiErrors, BadLinesAreRecordsAndTheRestGoOn) {
  const std::string input =
      R"({"id": 1, "conversation_a": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}], "conversation_b": [{"role": "USER", "content": "hi"}, {"role": "ASSISTANT", "content": "hello"}]})" "\n"
      R"({"id": 2, "conversation_a": [{"role": "USER", "content": "hi"}], "conversation_b": [{"role": "USER", "content": "hi"}]})" "\n"
      R"({"id": 3, "conversation_a": [{"role": "USER", "content": "hi"}, {"role": "ASSISTANT", "content": "a"}], "conversation_b": [{"role": "USER", "content": "other"}, {"role": "ASSISTANT", "content": "b"}]})" "\n"
      R"({"id": 4, "conversation_a": "nope", "conversation_b": []})" "\n";
  const auto r = run("compare-conversations --input -" + kTiny, input);
  EXPECT_EQ(r.status, 1);
  const auto out = lines(r.out);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0]["id"], 1);
  EXPECT_NE(out[1]["error"].get<std::string>().find("even"), std::string::npos);
  EXPECT_NE(out[2]["error"].get<std::string>().find("USER turns"), std::string::npos);
  EXPECT_NE(out[3]["error"].get<std::string>().find("conversation_a"), std::string::npos);

  const auto rk = run("rank --max-candidates 3 --input -" + kTiny,
                      R"({"source": "s", "candidates": ["a", "b", "c", "d"]})" "\n"
                      R"({"source": "s", "candidates": ["a", 2]})" "\n"
                      R"({"source": "s", "candidates": ["a", "b"]})" "\n");
  const auto o = lines(rk.out);
  ASSERT_EQ(o.size(), 3u);
  EXPECT_NE(o[0]["error"].get<std::string>().find("limit of 3"), std::string::npos);
  EXPECT_TRUE(o[1].contains("error"));
  EXPECT_EQ(o[2]["ranks"].size(), 2u);
  EXPECT_EQ(run("rank --with-ref given --input -" + kTiny, R"({"source": "s", "candidates": ["a"]})" "\n").status, 1);
}

TEST(CliApiErrors, ResourceBoundsAreClearLimitErrors) {
  // 100 000 candidates: refused by the candidate limit (64) before any tokenizing or forward pass.
  std::string many = R"({"source": "s", "candidates": [)";
  for (int i = 0; i < 100000; ++i) many += i ? ",\"x\"" : "\"x\"";
  many += "]}\n";
  // A line over --max-line-bytes is skipped as an error record without being held in memory.
  const std::string long_line = R"({"source": ")" + std::string(5000, 'a') + R"(", "candidates": ["a", "b"]})" "\n";
  const std::string ok = R"({"source": "s", "candidates": ["a", "b"]})" "\n";
  const auto r = run("rank --input -" + kTiny, many + ok);
  const auto l = run("rank --max-line-bytes 4096 --input -" + kTiny, long_line + ok);
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(l.status, 1);
  const auto out = lines(r.out), out_l = lines(l.out);
  ASSERT_EQ(out.size(), 2u);
  ASSERT_EQ(out_l.size(), 2u);
  EXPECT_NE(out[0]["error"].get<std::string>().find("100000 entries, over the limit of 64"), std::string::npos)
      << out[0].dump();
  EXPECT_NE(out_l[0]["error"].get<std::string>().find("longer than 4096 bytes"), std::string::npos) << out_l[0].dump();
  EXPECT_EQ(out[1]["ranks"].size(), 2u);
  EXPECT_EQ(out_l[1]["ranks"].size(), 2u);
}

TEST(CliApiShards, ShardThenMergeEqualsTheUnshardedRun) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("pairrm_shards_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string input;
  for (int i = 0; i < 23; ++i) {
    input += R"({"id": )" + std::to_string(i) + R"(, "source": "q)" + std::to_string(i) +
             R"(", "candidates": ["a", "b)" + std::to_string(i) + R"(", "c"]})" "\n";
    if (i == 5) input += "\n";  // blank lines are not records and do not shift the split
  }
  const std::string in = (dir / "in.jsonl").string();
  std::ofstream(in) << input;
  const auto whole = run("rank -q --input " + in + kTiny);
  ASSERT_EQ(whole.status, 0);
  std::string parts;
  for (int s = 0; s < 3; ++s) {
    const std::string out = (dir / ("out." + std::to_string(s))).string();
    ASSERT_EQ(run("rank -q --input " + in + " --shard " + std::to_string(s) + "/3 --output " + out + kTiny).status, 0);
    parts += " " + out;
  }
  const auto merged = run("merge" + parts + " --input " + in);
  ASSERT_EQ(merged.status, 0);
  EXPECT_EQ(merged.out, whole.out);
  EXPECT_EQ(lines(merged.out).size(), 23u);
  // Out of order, missing or doubled shards are refused.
  const std::string o0 = (dir / "out.0").string(), o1 = (dir / "out.1").string(), o2 = (dir / "out.2").string();
  EXPECT_EQ(run("merge " + o1 + " " + o0 + " " + o2 + " --input " + in).status, 1);
  EXPECT_EQ(run("merge " + o0 + " " + o2 + " --input " + in).status, 1);
  EXPECT_EQ(run("merge " + o0 + " " + o1 + " " + o2 + " " + o2 + " --input " + in).status, 1);
  EXPECT_EQ(run("merge " + o2 + " " + o0).status, 1);  // 7 then 8 records: no 2-way split looks like that
  EXPECT_EQ(run("rank --input " + in + " --shard 3/3" + kTiny).status, 1);
  fs::remove_all(dir);
}

TEST(CliApiInvariants, RankGivenReferenceAndSingleCandidate) {
  const auto out = lines(run("rank --with-ref given --input -" + kTiny,
                             R"({"source": "q", "candidates": ["x", "y"], "reference": "my ref"})" "\n"
                             R"({"source": "q", "candidates": ["alone"]})" "\n")
                             .out);
  EXPECT_EQ(out[0]["reference"], "my ref");
  EXPECT_TRUE(out[1].contains("error"));  // "given" needs the field
  const auto one = lines(run("rank --input -" + kTiny, R"({"source": "q", "candidates": ["alone"]})" "\n").out);
  EXPECT_EQ(one[0]["scores"], json({0.0}));
  EXPECT_EQ(one[0]["ranks"], json({1}));
}

TEST(CliApiInvariants, BestWorstAndDpoAgreeWithRank) {
  const json line = {{"id", "p"}, {"source", "Name a prime number."},
                     {"candidates", {"7", "Seven is prime.", "9", "2 is the smallest prime.", "banana"}}};
  const auto ranked = lines(run("rank --input -" + kTiny, line.dump() + "\n").out).at(0);
  const auto ranks = ranked["ranks"].get<std::vector<int>>();
  const auto best_full = lines(run("best-of-n --method full --return-all --input -" + kTiny, line.dump() + "\n").out).at(0);
  EXPECT_EQ(ranks[best_full["best_index"].get<size_t>()], 1);
  EXPECT_EQ(best_full["ranks"], ranked["ranks"]);
  const auto worst_full = lines(run("worst-of-n --method full --input -" + kTiny, line.dump() + "\n").out).at(0);
  EXPECT_EQ(ranks[worst_full["worst_index"].get<size_t>()], 5);
  EXPECT_EQ(worst_full["worst"], line["candidates"][worst_full["worst_index"].get<size_t>()]);

  const auto bubble = lines(run("best-of-n --return-all --input -" + kTiny, line.dump() + "\n").out).at(0);
  EXPECT_EQ(bubble["order"], json({0, 1, 2, 3, 4}));
  EXPECT_EQ(bubble["pass_scores"].size(), 4u);

  const json dpo = {{"id", "p"}, {"prompt", line["source"]}, {"responses", line["candidates"]}};
  const auto d = lines(run("dpo --input -" + kTiny, dpo.dump() + "\n" +
                               R"({"prompt": "q", "responses": ["same", "same"]})" "\n")
                           .out);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0]["chosen"], best_full["best"]);
  EXPECT_EQ(d[0]["rejected"], worst_full["worst"]);
  EXPECT_EQ(d[0]["chosen_score"], ranked["scores"][best_full["best_index"].get<size_t>()]);
  EXPECT_EQ(d[1]["skipped"], "fewer than 2 distinct responses");
  EXPECT_FALSE(d[1].contains("chosen"));
}

// --seed on best-of-n and worst-of-n: the bubble visits the candidates in the order the library's seeded
// shuffle gives (best_of_n with BestOfNOptions::seed, the same engine on every machine), so the same seed
// gives the same order, another seed another, and no seed the given order. The pick is that order's
// replay through the API.
TEST(CliApiInvariants, SeedOnBestAndWorstOfNIsHonoured) {
  const std::vector<std::string> cands{"7", "Seven is prime.", "9", "2 is the smallest prime.", "banana"};
  const json line = {{"source", "Name a prime number."}, {"candidates", cands}};
  Context ctx(test::shared_model("tiny"), 1);
  for (const std::string cmd : {"best-of-n", "worst-of-n"}) {
    SCOPED_TRACE(cmd);
    auto order = [&](const std::string& seed) {
      const auto r = run(cmd + seed + " --return-all --input -" + kTiny, line.dump() + "\n");
      EXPECT_EQ(r.status, 0);
      const auto out = lines(r.out);
      return out.size() == 1 ? out[0] : json();
    };
    const json s7 = order(" --seed 7"), again = order(" --seed 7"), s8 = order(" --seed 8"), none = order("");
    BestOfNOptions o;
    o.worst = cmd == "worst-of-n";
    o.seed = 7;
    const auto want7 = best_of_n(ctx, {{line["source"], cands}}, o).at(0);
    o.seed = 8;
    const auto want8 = best_of_n(ctx, {{line["source"], cands}}, o).at(0);
    ASSERT_NE(want7.order, want8.order);  // seeds 7 and 8 shuffle 5 candidates differently
    EXPECT_EQ(s7["order"], json(want7.order));
    EXPECT_EQ(again["order"], s7["order"]);
    EXPECT_EQ(s8["order"], json(want8.order));
    EXPECT_EQ(none["order"], json({0, 1, 2, 3, 4}));
    EXPECT_EQ(s7[o.worst ? "worst_index" : "best_index"], want7.index);
    EXPECT_EQ(s8[o.worst ? "worst_index" : "best_index"], want8.index);
  }
}

std::string rank_input(int lines_count) {
  std::string input;
  for (int i = 0; i < lines_count; ++i) {
    json c = json::array();
    for (int k = 0; k < 2 + i % 4; ++k) c.push_back("answer " + std::to_string(i * 7 + k) + std::string(i % 5, '!'));
    input += json({{"id", i}, {"source", "question " + std::to_string(i)}, {"candidates", c}}).dump() + "\n";
  }
  return input;
}

TEST(CliApiInvariants, BatchingChangesNoResult) {
  const std::string input = rank_input(12);
  const auto a = run("rank --chunk-lines 1 --batch-size 1 --input -" + kTiny, input);
  const auto b = run("rank --chunk-lines 12 --batch-size 64 --max-tokens-per-batch 40 --input -" + kTiny, input);
  const auto c = run("rank --input -" + kTiny, input);
  EXPECT_EQ(a.status, 0);
  EXPECT_EQ(a.out, b.out);  // bitwise: the text of every number is the same
  EXPECT_EQ(a.out, c.out);
}

TEST(CliApiResume, TruncatedOutputIsCompletedExactly) {
  const std::string in_path = temp_path("resume_in.jsonl"), out_path = temp_path("resume_out.jsonl");
  std::ofstream(in_path) << rank_input(20);
  ASSERT_EQ(run("rank --input " + in_path + " --output " + out_path + kTiny).status, 0);
  const std::string full = slurp(out_path);
  // A killed run leaves a prefix of the output, possibly ending mid-line.
  for (size_t cut : {size_t{0}, full.size() / 3, full.find('\n') + 1, full.size() - 5, full.size()}) {
    std::ofstream(out_path, std::ios::trunc) << full.substr(0, cut);
    ASSERT_EQ(run("rank --resume --input " + in_path + " --output " + out_path + kTiny).status, 0) << cut;
    EXPECT_EQ(slurp(out_path), full) << "cut at " << cut;
  }
  // An output that does not belong to this input is refused, not appended to, and left byte for byte as it
  // was: its partial last line too (it was cut before the check, once).
  const std::string foreign = R"({"id": "other", "scores": [], "ranks": []})" "\n" R"({"id": "other2", "sco)";
  std::ofstream(out_path, std::ios::trunc) << foreign;
  EXPECT_EQ(run("rank --resume --input " + in_path + " --output " + out_path + kTiny).status, 1);
  EXPECT_EQ(slurp(out_path), foreign);
  std::filesystem::remove(in_path);
  std::filesystem::remove(out_path);
}

// --output naming the input (or a link to it) is refused before anything is written: the input survives.
TEST(CliApiErrors, OutputOverTheInputIsRefused) {
  const std::string in_path = temp_path("same_in.jsonl"), link = temp_path("same_link.jsonl");
  const std::string input = rank_input(3);
  std::ofstream(in_path) << input;
  std::filesystem::remove(link);
  std::filesystem::create_symlink(in_path, link);
  for (const std::string& out : {in_path, link}) {
    EXPECT_EQ(run("rank --input " + in_path + " --output " + out + kTiny).status, 1) << out;
    EXPECT_EQ(run("rank --resume --input " + in_path + " --output " + out + kTiny).status, 1) << out;
    EXPECT_EQ(slurp(in_path), input) << out;
  }
  EXPECT_EQ(run("merge " + in_path + " -o " + in_path).status, 1);
  EXPECT_EQ(slurp(in_path), input);
  std::filesystem::remove(link);
  std::filesystem::remove(in_path);
}

TEST(CliApiResume, KillMidFileThenResume) {
  const std::string in_path = temp_path("kill_in.jsonl"), out_path = temp_path("kill_out.jsonl"),
                    ref_path = temp_path("kill_ref.jsonl");
  std::ofstream(in_path) << rank_input(150);
  ASSERT_EQ(run("rank --input " + in_path + " --output " + ref_path + kTiny).status, 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const std::string model = test::model_dir("tiny");
    ::execl(PAIRRM_BIN, PAIRRM_BIN, "rank", "-q", "--chunk-lines", "2", "--model", model.c_str(), "--input",
            in_path.c_str(), "--output", out_path.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Kill it once some output is there (a run that ends first is reaped here and fails the check below).
  int status = 0;
  bool exited = false;
  const bool some_output = test::wait_until([&] {
    if (::waitpid(pid, &status, WNOHANG) == pid) return exited = true;
    std::error_code ec;
    const auto size = std::filesystem::file_size(out_path, ec);
    return !ec && size >= 200;
  });
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  EXPECT_TRUE(some_output) << "no output from the run within " << test::kWaitLimit.count() << " s";
  const std::string partial = slurp(out_path), reference = slurp(ref_path);
  EXPECT_LT(partial.size(), reference.size()) << "the run finished before the kill; the test proves little";
  ASSERT_EQ(run("rank --resume --input " + in_path + " --output " + out_path + kTiny).status, 0);
  EXPECT_EQ(slurp(out_path), slurp(ref_path));
  for (const auto& p : {in_path, out_path, ref_path}) std::filesystem::remove(p);
}

}  // namespace
}  // namespace pairrm
