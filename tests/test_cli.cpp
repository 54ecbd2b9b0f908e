// The `pairrm` binary end to end: exit codes, JSON outputs, JSONL streaming with bad lines.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli_run.h"
#include "fixtures.h"

namespace pairrm {
namespace {

using nlohmann::json;
using test::CliResult;
using test::lines;
using test::run;

const std::string kModel = " --model " + test::model_dir("tiny");

// Every subcommand the dispatcher registers (src/cli/main.cpp's kCommands), read from `pairrm --help`: the
// list must be exactly these 15, so a subcommand added, dropped or renamed fails here until it is listed,
// and each one's --help exits 0 with a usage line naming it and its options.
std::vector<std::string> listed_subcommands(const std::string& help) {
  std::vector<std::string> names;
  const size_t at = help.find("\nSubcommands:\n");
  if (at == std::string::npos) return names;
  std::istringstream in(help.substr(at + 14));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("  ", 0) != 0 || line.size() < 3 || line[2] == ' ') continue;  // wrapped descriptions
    names.push_back(line.substr(2, line.find(' ', 2) - 2));
  }
  return names;
}

TEST(Cli, HelpOnEverySubcommand) {
  const CliResult top = run("--help");
  ASSERT_EQ(top.status, 0);
  const std::vector<std::string> subs = listed_subcommands(top.out);
  EXPECT_EQ(subs, (std::vector<std::string>{"tokenize", "compare", "rank", "best-of-n", "worst-of-n",
                                            "compare-conversations", "dpo", "eval", "generate-best-of-n", "init-random",
                                            "bench", "accuracy", "download", "merge", "serve"}))
      << top.out;
  ASSERT_EQ(subs.size(), 15u);
  for (const std::string& sub : subs) {
    SCOPED_TRACE(sub);
    const CliResult r = run(sub + " --help");
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("Usage: "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(" " + sub + " "), std::string::npos) << r.out;  // "Usage: .../pairrm SUB [OPTIONS]"
    EXPECT_NE(r.out.find("-h,--help"), std::string::npos) << r.out;
    // Its own options besides --help: every subcommand takes at least one.
    EXPECT_NE(r.out.find("--", r.out.find("-h,--help") + 9), std::string::npos) << r.out;
  }
  EXPECT_NE(run("frobnicate").status, 0);
  EXPECT_NE(run("compare --threads -3").status, 0);
}

TEST(Cli, TokenizeJson) {
  const CliResult r = run("tokenize --json --text 'hello!'" + kModel);
  ASSERT_EQ(r.status, 0);
  EXPECT_EQ(json::parse(r.out)["ids"], json({1, 12018, 300, 2}));
}

TEST(Cli, CompareOneAllModes) {
  const auto modes = test::entries(test::model_text_cases("tiny"), "compare_modes").at(0);
  const std::string args = "compare --json --source 'hello!' --a 'hi!' --b 'f**k off!'" + kModel;
  const json both = json::parse(run(args).out);
  EXPECT_NEAR(both["score"].get<double>(), modes["default"].get<double>(), 2e-4);
  EXPECT_NEAR(both["logit_ab"].get<double>(), modes["ab"].get<double>(), 1e-4);
  EXPECT_NEAR(both["logit_ba"].get<double>(), modes["ba"].get<double>(), 1e-4);
  EXPECT_EQ(both["a_better"], modes["better_default"]);
  const json ab = json::parse(run(args + " --mode ab").out);
  EXPECT_FALSE(ab.contains("logit_ba"));
  EXPECT_EQ(ab["score"], both["logit_ab"]);
  const json ba = json::parse(run(args + " --mode ba").out);
  EXPECT_EQ(ba["score"], both["logit_ba"]);
}

TEST(Cli, CompareJsonlKeepsOrderAndReportsBadLines) {
  const auto t = test::read_json(test::fixtures_dir() + "/text_cases.json");
  const auto rows = test::entries(t, "pair_rows");
  const auto modes = test::entries(t.at("models").at("tiny"), "compare_modes");
  ASSERT_GE(rows.size(), 4u);
  std::string input;
  std::vector<int> expect_row;  // -1: an error line
  auto add_row = [&](int i, json id) {
    json o = {{"source", rows[i]["source"]}, {"candidate_a", rows[i]["candidate1"]}, {"candidate_b", rows[i]["candidate2"]}};
    if (!id.is_null()) o["id"] = id;
    input += o.dump() + "\n";
    expect_row.push_back(i);
  };
  add_row(0, "first");
  input += "{not json\n";
  expect_row.push_back(-1);
  add_row(1, 42);
  input += "\n";  // blank lines are skipped
  input += R"({"source": "s", "candidate_a": "a"})" "\n";
  expect_row.push_back(-1);
  input += std::string(R"({"source": "s", "candidate_a": "a", "candidate_b": ")") + "\xff\xfe" + "\"}\n";
  expect_row.push_back(-1);
  input += R"({"source": 1, "candidate_a": "a", "candidate_b": "b"})" "\n";
  expect_row.push_back(-1);
  input += "[1,2,3]\r\n";
  expect_row.push_back(-1);
  add_row(2, nullptr);
  add_row(3, json{{"nested", true}});

  const CliResult r = run("compare --chunk-lines 3 --input -" + kModel, input);
  EXPECT_EQ(r.status, 1) << "a failed line makes the exit status non-zero";
  const auto out = lines(r.out);
  ASSERT_EQ(out.size(), expect_row.size()) << r.out;
  for (size_t i = 0; i < out.size(); ++i) {
    if (expect_row[i] < 0) {
      EXPECT_TRUE(out[i].contains("error")) << out[i];
      EXPECT_TRUE(out[i]["line"].is_number_integer()) << out[i];
      continue;
    }
    const auto& m = modes[expect_row[i]];
    EXPECT_NEAR(out[i]["score"].template get<double>(), m["default"].template get<double>(), 2e-4) << out[i];
    EXPECT_EQ(out[i]["a_better"], m["better_default"]);
  }
  EXPECT_EQ(out[0]["id"], "first");
  EXPECT_EQ(out[1]["line"], 2);
  EXPECT_EQ(out[2]["id"], 42);
  EXPECT_EQ(out[3]["line"], 5);  // line numbers count the blank line
  EXPECT_NE(out[3]["error"].template get<std::string>().find("candidate_b"), std::string::npos);
  EXPECT_TRUE(out[7]["id"].is_null());
  EXPECT_EQ(out[8]["id"], json({{"nested", true}}));

  // All good lines: exit 0, and the same numbers whatever the batch size.
  std::string good;
  for (int i = 0; i < 4; ++i)
    good += json({{"source", rows[i]["source"]}, {"candidate_a", rows[i]["candidate1"]}, {"candidate_b", rows[i]["candidate2"]}}).dump() + "\n";
  const CliResult a = run("compare --chunk-lines 1 --batch-size 1 --input -" + kModel, good);
  const CliResult b = run("compare --chunk-lines 4 --input -" + kModel, good);
  EXPECT_EQ(a.status, 0);
  EXPECT_EQ(a.out, b.out);
}

TEST(Cli, OutputFileAndErrors) {
  const std::string out_path = (std::filesystem::temp_directory_path() / ("pairrm_cli_out_" + std::to_string(::getpid()))).string();
  const std::string line = R"({"id": 7, "source": "hello!", "candidate_a": "hi!", "candidate_b": "f**k off!"})";
  EXPECT_EQ(run("compare --mode ab --input - --output " + out_path + kModel, line + "\n").status, 0);
  std::ifstream in(out_path);
  std::string content((std::istreambuf_iterator<char>(in)), {});
  const json j = json::parse(content);
  EXPECT_EQ(j["id"], 7);
  EXPECT_FALSE(j.contains("logit_ba"));
  std::filesystem::remove(out_path);

  EXPECT_EQ(run("compare --input /nonexistent.jsonl" + kModel).status, 1);
  EXPECT_EQ(run("compare --source a --a b --b c --model /nonexistent").status, 1);
  EXPECT_EQ(run("tokenize --text \"$(printf '\\377')\"" + kModel).status, 1);  // invalid UTF-8
  EXPECT_EQ(run("compare --source a --a b" + kModel).status, 2);
}

}  // namespace
}  // namespace pairrm

namespace pairrm {
namespace {

// No --model and no $PAIRRM_MODEL: the bundled random-weight model, found next to the binary (the build
// tree's share/pairrm/models link), with a one-line warning on stderr that --quiet does not silence; a real
// --model gives no warning. PAIRRM_ISA names the kernels' level in bench's report.
TEST(Cli, BundledModelWarnsOnEveryCommandAndQuietKeepsIt) {
  for (const std::string args : {"compare --source hi --a a --b b", "compare -q --source hi --a a --b b",
                                 "rank -q --source hi --candidates a b c", "tokenize --text hi"}) {
    const test::CliResult r = test::run_env("env -u PAIRRM_MODEL", args, "", true);
    EXPECT_EQ(r.status, 0) << args << ": " << r.out;
    EXPECT_NE(r.out.find("RANDOM-WEIGHT"), std::string::npos) << args;
  }
  const test::CliResult with_model =
      test::run_env("env -u PAIRRM_MODEL", "compare -q --source hi --a a --b b --model " + test::model_dir("tiny"), "", true);
  EXPECT_EQ(with_model.status, 0);
  EXPECT_EQ(with_model.out.find("RANDOM-WEIGHT"), std::string::npos) << with_model.out;
}

TEST(Cli, ForcedIsaIsReportedOrRefused) {
  const test::CliResult r = test::run_env("PAIRRM_ISA=generic", "bench --tokens 20 --pairs 1 --threads 1 --json" + kModel);
  ASSERT_EQ(r.status, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["isa"], "generic");
  EXPECT_EQ(j["isa_choice"], "forced by PAIRRM_ISA");
  const test::CliResult bad = test::run_env("PAIRRM_ISA=sse9", "compare -q --source hi --a a --b b" + kModel, "", true);
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.out.find("unknown ISA level 'sse9'"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace pairrm

namespace pairrm {
namespace {

// --source-max-length / --candidate-max-length reach the model: the CLI's logit equals the C++ API's with
// the same LoadOptions, and differs from the default truncation on texts longer than the limits.
TEST(Cli, TruncationLengthFlagsMatchTheApi) {
  const std::string source(400, 'x'), a = "the first answer is long enough to be cut " + std::string(200, 'y'),
                    b = "short";
  LoadOptions o;
  o.source_max_length = 16;
  o.candidate_max_length = 12;
  Context ctx(Model::load(test::model_dir("tiny"), o), 1);
  const auto want = ctx.compare({{source, a, b}}, CompareMode::kAB).at(0).logit_ab;
  Context plain(test::shared_model("tiny"), 1);
  const auto untruncated = plain.compare({{source, a, b}}, CompareMode::kAB).at(0).logit_ab;
  ASSERT_NE(want, untruncated);  // the limits bite on these texts
  const test::CliResult r = test::run("compare -q --json --mode ab --source-max-length 16 --candidate-max-length 12 --source '" +
                                      source + "' --a '" + a + "' --b '" + b + "'" + kModel);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NEAR(nlohmann::json::parse(r.out)["logit_ab"].get<double>(), want, 1e-12);
  EXPECT_NE(test::run("compare -q --source-max-length 2 --source a --a b --b c" + kModel).status, 0);
}

}  // namespace
}  // namespace pairrm
