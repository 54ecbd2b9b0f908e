// `pairrm eval`: every figure of the report recomputed here from per-pair logits that the test gets
// through the public API (one pass per direction), the bootstrap replayed from its documented generator,
// the input rules, and the HTML page rendered by headless Chromium.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "cli_run.h"
#include "eval/win_rate.h"
#include "fixtures.h"

namespace pairrm::test {
namespace {

namespace fs = std::filesystem;

std::string example(const std::string& name) { return std::string(PAIRRM_SOURCE_DIR) + "/examples/eval/" + name; }

fs::path temp_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("pairrm_eval_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

std::vector<json> read_lines(const std::string& path) {
  std::vector<json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

// The reference generator, written out again from its published definition (not the engine's class).
uint64_t splitmix_next(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double numpy_quantile(std::vector<double> v, double q) {  // numpy.quantile(v, q), method "linear"
  std::sort(v.begin(), v.end());
  const double h = (static_cast<double>(v.size()) - 1) * q;
  const double lo = v[static_cast<size_t>(std::floor(h))], hi = v[static_cast<size_t>(std::ceil(h))];
  return lo + (h - std::floor(h)) * (hi - lo);
}

struct Expected {
  long n = 0, wins = 0, ties = 0, losses = 0;
  double win_rate = 0, ci_low = 0, ci_high = 0, consistency = 0, mean_score = 0;
};

struct Pair {
  std::string category;
  double ab, ba;
};

Expected expect(const std::vector<Pair>& pairs, double tie, int resamples, uint64_t seed, double confidence) {
  Expected e;
  std::vector<double> points;
  double consistent = 0, sum = 0;
  for (const Pair& p : pairs) {
    const double s = p.ab - p.ba;
    const double point = s > tie ? 1.0 : s < -tie ? 0.0 : 0.5;
    e.wins += point == 1.0, e.ties += point == 0.5, e.losses += point == 0.0;
    points.push_back(point);
    consistent += (p.ab > 0) != (p.ba > 0) && p.ab != 0 && p.ba != 0;
    sum += s;
  }
  e.n = static_cast<long>(pairs.size());
  e.win_rate = (e.wins + 0.5 * e.ties) / e.n;
  e.consistency = consistent / e.n;
  e.mean_score = sum / e.n;
  uint64_t state = seed;
  std::vector<double> rates;
  for (int r = 0; r < resamples; ++r) {
    double total = 0;
    for (size_t k = 0; k < points.size(); ++k) total += points[splitmix_next(state) % points.size()];
    rates.push_back(total / static_cast<double>(points.size()));
  }
  e.ci_low = numpy_quantile(rates, (1 - confidence) / 2);
  e.ci_high = numpy_quantile(rates, 1 - (1 - confidence) / 2);
  return e;
}

void check_summary(const json& got, const Expected& e, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(got["n"], e.n);
  EXPECT_EQ(got["wins"], e.wins);
  EXPECT_EQ(got["ties"], e.ties);
  EXPECT_EQ(got["losses"], e.losses);
  // The same arithmetic on the same doubles: only the order of a sum may differ (a few ulps).
  EXPECT_NEAR(got["win_rate"].get<double>(), e.win_rate, 1e-12);
  EXPECT_NEAR(got["ci_low"].get<double>(), e.ci_low, 1e-12);
  EXPECT_NEAR(got["ci_high"].get<double>(), e.ci_high, 1e-12);
  EXPECT_NEAR(got["position_consistency"].get<double>(), e.consistency, 1e-12);
  EXPECT_NEAR(got["mean_score"].get<double>(), e.mean_score, 1e-9);
  EXPECT_LE(got["ci_low"].get<double>(), got["win_rate"].get<double>() + 1e-12);
  EXPECT_GE(got["ci_high"].get<double>(), got["win_rate"].get<double>() - 1e-12);
}

// Per-pair logits of the example file from the public API, each direction its own call.
std::vector<Pair> api_pairs(const std::vector<json>& lines) {
  Context ctx(shared_model("tiny"), 2);
  std::vector<Comparison> items;
  for (const auto& l : lines) items.push_back({l["prompt"], l["a"], l["b"]});
  const auto ab = ctx.compare(items, CompareMode::kAB);
  const auto ba = ctx.compare(items, CompareMode::kBA);
  std::vector<Pair> out;
  for (size_t i = 0; i < lines.size(); ++i) out.push_back({lines[i]["category"], ab[i].logit_ab, ba[i].logit_ba});
  return out;
}

TEST(EvalStats, ReferenceValuesOfTheGeneratorAndTheQuantile) {
  eval::SplitMix64 rng(0);
  EXPECT_EQ(rng.next(), 0xE220A8397B1DCDAFull);  // SplitMix64's published first output for seed 0
  EXPECT_DOUBLE_EQ(eval::quantile({4, 1, 3, 2}, 0.25), 1.75);  // numpy.quantile([1,2,3,4], 0.25)
  EXPECT_DOUBLE_EQ(eval::quantile({5}, 0.975), 5.0);
  EXPECT_EQ(eval::outcome_of(0.0, 0.0), eval::Outcome::kTie);
  EXPECT_EQ(eval::outcome_of(0.3, 0.3), eval::Outcome::kTie);
  EXPECT_EQ(eval::outcome_of(-0.31, 0.3), eval::Outcome::kLoss);
}

TEST(EvalCli, EveryFigureRecomputedFromPerPairLogits) {
  const auto dir = temp_dir("figures");
  const double tie = 0.3;
  const int resamples = 400;
  const uint64_t seed = 11;
  const auto r = run("eval --model " + model_dir("tiny") + " --input " + example("pairs.jsonl") + " --json " +
                     (dir / "r.json").string() + " --tie-threshold 0.3 --bootstrap 400 --seed 11 --top 5 -q");
  ASSERT_EQ(r.status, 0) << r.out;
  const json report = json::parse(slurp(dir / "r.json"));
  const auto lines = read_lines(example("pairs.jsonl"));
  const auto pairs = api_pairs(lines);
  ASSERT_EQ(report["pairs"].size(), pairs.size());

  for (size_t i = 0; i < pairs.size(); ++i) {
    const json& p = report["pairs"][i];
    SCOPED_TRACE("pair " + std::to_string(i));
    EXPECT_EQ(p["id"], lines[i]["id"]);
    // Both directions are the same rows the API computes: batch-invariant, so equal to the bit.
    EXPECT_EQ(p["logit_ab"].get<double>(), pairs[i].ab);
    EXPECT_EQ(p["logit_ba"].get<double>(), pairs[i].ba);
    const double s = pairs[i].ab - pairs[i].ba;
    EXPECT_EQ(p["outcome"], s > tie ? "win" : s < -tie ? "loss" : "tie");
  }
  check_summary(report["overall"], expect(pairs, tie, resamples, seed, 0.95), "overall");
  std::map<std::string, std::vector<Pair>> by_category;
  for (const Pair& p : pairs) by_category[p.category].push_back(p);
  ASSERT_EQ(report["categories"].size(), by_category.size());
  for (const auto& c : report["categories"])
    check_summary(c, expect(by_category.at(c["category"]), tie, resamples, seed, 0.95), c["category"]);

  // The "largest wins" tables: only wins, by score, at most --top.
  std::vector<double> a_wins, b_wins;
  for (const Pair& p : pairs) {
    if (p.ab - p.ba > tie) a_wins.push_back(p.ab - p.ba);
    if (p.ab - p.ba < -tie) b_wins.push_back(p.ab - p.ba);
  }
  std::sort(a_wins.rbegin(), a_wins.rend());
  std::sort(b_wins.begin(), b_wins.end());
  a_wins.resize(std::min<size_t>(a_wins.size(), 5));
  b_wins.resize(std::min<size_t>(b_wins.size(), 5));
  ASSERT_EQ(report["largest_wins_a"].size(), a_wins.size());
  ASSERT_EQ(report["largest_wins_b"].size(), b_wins.size());
  for (size_t k = 0; k < a_wins.size(); ++k) EXPECT_EQ(report["largest_wins_a"][k]["score"].get<double>(), a_wins[k]);
  for (size_t k = 0; k < b_wins.size(); ++k) EXPECT_EQ(report["largest_wins_b"][k]["score"].get<double>(), b_wins[k]);
  // Position disagreements: the inconsistent pairs, the most confident (larger of the two |logits| being
  // small means a weak contradiction) first.
  std::vector<double> confidence;
  for (const Pair& p : pairs)
    if (!((p.ab > 0 && p.ba < 0) || (p.ab < 0 && p.ba > 0))) confidence.push_back(std::min(std::fabs(p.ab), std::fabs(p.ba)));
  std::sort(confidence.rbegin(), confidence.rend());
  confidence.resize(std::min<size_t>(confidence.size(), 5));
  ASSERT_EQ(report["most_confident_position_disagreements"].size(), confidence.size());
  for (size_t k = 0; k < confidence.size(); ++k) {
    const json& p = report["most_confident_position_disagreements"][k];
    EXPECT_EQ(std::min(std::fabs(p["logit_ab"].get<double>()), std::fabs(p["logit_ba"].get<double>())), confidence[k]);
  }
  // The histogram counts every pair once, in the bin its score falls into.
  const auto edges = report["histogram"]["edges"].get<std::vector<double>>();
  const auto counts = report["histogram"]["counts"].get<std::vector<long>>();
  ASSERT_EQ(counts.size() + 1, edges.size());
  long total = 0;
  for (long c : counts) total += c;
  EXPECT_EQ(total, static_cast<long>(pairs.size()));
  for (const Pair& p : pairs) {
    EXPECT_GE(p.ab - p.ba, edges.front());
    EXPECT_LE(p.ab - p.ba, edges.back());
  }
  fs::remove_all(dir);
}

TEST(EvalCli, BootstrapIsDeterministicUnderASeed) {
  const auto dir = temp_dir("seed");
  auto eval_with = [&](uint64_t seed, const std::string& out) {
    const auto r = run("eval --model " + model_dir("tiny") + " --input " + example("pairs.jsonl") + " --json " +
                       (dir / out).string() + " --seed " + std::to_string(seed) + " -q");
    EXPECT_EQ(r.status, 0) << r.out;
    return slurp(dir / out);
  };
  const std::string first = eval_with(5, "a.json"), again = eval_with(5, "b.json"), other = eval_with(6, "c.json");
  EXPECT_EQ(first, again);  // byte for byte
  const json j5 = json::parse(first), j6 = json::parse(other);
  const auto pairs = api_pairs(read_lines(example("pairs.jsonl")));
  check_summary(j6["overall"], expect(pairs, 0.0, 1000, 6, 0.95), "seed 6");
  EXPECT_EQ(j5["overall"]["win_rate"], j6["overall"]["win_rate"]);  // the seed moves only the interval
  fs::remove_all(dir);
}

TEST(EvalCli, TwoResponseFilesJoinedOnIdGiveThePairFilesNumbers) {
  const auto dir = temp_dir("join");
  const std::string model = " --model " + model_dir("tiny") + " -q --json ";
  ASSERT_EQ(run("eval" + model + (dir / "pairs.json").string() + " --input " + example("pairs.jsonl")).status, 0);
  // system_b.jsonl lists the ids in the opposite order and has no categories: the join is by id.
  ASSERT_EQ(run("eval" + model + (dir / "joined.json").string() + " --responses-a " + example("system_a.jsonl") +
                " --responses-b " + example("system_b.jsonl")).status, 0);
  const json p = json::parse(slurp(dir / "pairs.json")), j = json::parse(slurp(dir / "joined.json"));
  EXPECT_EQ(p["overall"], j["overall"]);
  EXPECT_EQ(p["categories"], j["categories"]);
  EXPECT_EQ(p["pairs"], j["pairs"]);
  EXPECT_EQ(j["systems"]["a"], "system_a");  // names from the files unless --name-a/--name-b
  fs::remove_all(dir);
}

TEST(EvalCli, UnusableLinesFailTheRunOrAreReportedWithSkip) {
  const auto dir = temp_dir("bad");
  const std::string pairs = (dir / "pairs.jsonl").string();
  std::ofstream(pairs) << R"({"id": 1, "prompt": "p", "a": "x", "b": "y"})" "\n"
                       << R"({"id": 2, "prompt": "p", "a": "x"})" "\n"              // no "b"
                       << "{not json\n"
                       << "{\"id\": 4, \"prompt\": \"bad \xff utf8\", \"a\": \"x\", \"b\": \"y\"}\n"
                       << R"({"id": 5, "prompt": "q", "a": "longer answer", "b": "y", "category": 3})" "\n"
                       << R"({"id": 6, "prompt": "q", "a": "another", "b": "y"})" "\n"
                       // Valid JSON the engine refuses (a text over its 8 MiB limit): found when scoring.
                       << R"({"id": 7, "prompt": "q", "a": ")" << std::string(9u << 20, 'x') << R"(", "b": "y"})" "\n";
  const std::string base = "eval --model " + model_dir("tiny") + " -q --input " + pairs + " --json ";
  auto failed = run(base + (dir / "no.json").string());
  EXPECT_EQ(failed.status, 1);
  EXPECT_FALSE(fs::exists(dir / "no.json"));  // no half-true report
  auto skipped = run(base + (dir / "yes.json").string() + " --skip-bad-lines");
  ASSERT_EQ(skipped.status, 0);
  const json j = json::parse(slurp(dir / "yes.json"));
  EXPECT_EQ(j["overall"]["n"], 2);
  ASSERT_EQ(j["skipped"].size(), 5u);
  const std::vector<std::pair<std::string, std::string>> want{
      {":2", "'b'"}, {":3", "invalid JSON"}, {":4", "UTF-8"}, {":5", "category"}, {":7", "over the limit"}};
  for (size_t k = 0; k < want.size(); ++k) {
    const std::string where = j["skipped"][k]["where"], error = j["skipped"][k]["error"];
    EXPECT_EQ(where.substr(where.size() - 2), want[k].first);
    EXPECT_NE(error.find(want[k].second), std::string::npos) << error;
  }

  // Joining: an id in one file only, an id twice, a different prompt.
  const std::string fa = (dir / "a.jsonl").string(), fb = (dir / "b.jsonl").string();
  std::ofstream(fa) << R"({"id": 1, "prompt": "p", "response": "x"})" "\n"
                    << R"({"id": 2, "prompt": "p", "response": "x"})" "\n"
                    << R"({"id": 3, "prompt": "p", "response": "x"})" "\n"
                    << R"({"id": "3", "prompt": "p", "response": "x"})" "\n";  // the string "3" is another id
  std::ofstream(fb) << R"({"id": 1, "prompt": "p", "response": "y"})" "\n"
                    << R"({"id": 2, "prompt": "other", "response": "y"})" "\n"
                    << R"({"id": 1, "prompt": "p", "response": "z"})" "\n"
                    << R"({"id": 9, "prompt": "p", "response": "y"})" "\n";
  const std::string join = "eval --model " + model_dir("tiny") + " -q --responses-a " + fa + " --responses-b " + fb;
  EXPECT_EQ(run(join).status, 1);
  ASSERT_EQ(run(join + " --skip-bad-lines --json " + (dir / "j.json").string()).status, 0);
  const json jj = json::parse(slurp(dir / "j.json"));
  EXPECT_EQ(jj["overall"]["n"], 1);  // only id 1 joins cleanly
  EXPECT_EQ(jj["skipped"].size(), 5u);  // id 1 twice in B; 2 other prompt; 3 and "3" not in B; 9 not in A

  std::ofstream(dir / "empty.jsonl") << "\n\n";
  EXPECT_EQ(run("eval --model " + model_dir("tiny") + " -q --input " + (dir / "empty.jsonl").string()).status, 1);
  EXPECT_EQ(run("eval --model " + model_dir("tiny") + " -q --input " + (dir / "missing.jsonl").string()).status, 1);
  EXPECT_NE(run("eval --model " + model_dir("tiny") + " -q --input " + pairs + " --bootstrap 0").status, 0);
  fs::remove_all(dir);
}

// Headless Chromium: the page renders to a screenshot of the asked size with nothing on the console.
struct Browser {
  std::string binary;
  static Browser find() {
    for (const char* b : {"chromium", "chromium-browser", "google-chrome"}) {
      const std::string probe = std::string("command -v ") + b + " >/dev/null 2>&1";
      if (std::system(probe.c_str()) == 0) return {b};
    }
    return {""};
  }
  // Returns Chromium's log (stderr); page console messages appear in it as ":CONSOLE" lines.
  std::string render(const fs::path& page, const fs::path& png, const fs::path& profile, const std::string& extra = "") const {
    const fs::path log = png.string() + ".log";
    const std::string cmd = binary + " --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run "
                            "--user-data-dir=" + profile.string() + " --window-size=1200,1800 --enable-logging=stderr "
                            "--v=0 " + extra + " --screenshot=" + png.string() + " file://" + page.string() + " 2>" +
                            log.string() + " >/dev/null";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return slurp(log);
  }
};

std::vector<std::string> console_lines(const std::string& log) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < log.size()) {
    const size_t nl = log.find('\n', pos);
    const std::string line = log.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    if (line.find(":CONSOLE") != std::string::npos) out.push_back(line);
    pos = nl == std::string::npos ? log.size() : nl + 1;
  }
  return out;
}

TEST(EvalReport, SelfContainedPageRendersInHeadlessChromiumWithTheNumbers) {
  const Browser browser = Browser::find();
  if (browser.binary.empty()) {
    if (std::getenv("CI")) FAIL() << "chromium is missing (scripts/setup.sh --dev installs it)";
    GTEST_SKIP() << "chromium not installed";
  }
  const auto dir = temp_dir("html");
  const auto r = run("eval --model " + model_dir("tiny") + " --input " + example("pairs.jsonl") + " --report " +
                     (dir / "report.html").string() + " --json " + (dir / "r.json").string() +
                     " --name-a 'sys<A>' --name-b terse -q");
  ASSERT_EQ(r.status, 0);
  const std::string html = slurp(dir / "report.html");
  const json j = json::parse(slurp(dir / "r.json"));
  auto pct = [](double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f %%", 100 * x);
    return std::string(buf);
  };
  // The numbers of the JSON are on the page.
  EXPECT_NE(html.find("id='win-rate'>" + pct(j["overall"]["win_rate"])), std::string::npos);
  for (const auto& c : j["categories"]) EXPECT_NE(html.find(pct(c["win_rate"])), std::string::npos) << c["category"];
  EXPECT_NE(html.find("sys&lt;A&gt;"), std::string::npos);  // names are escaped
  EXPECT_EQ(html.find("sys<A>"), std::string::npos);
  // Self-contained: no script, no external resource of any kind.
  for (const char* s : {"<script", "src=", "href=", "url(", "@import", "<link"}) EXPECT_EQ(html.find(s), std::string::npos) << s;
  EXPECT_EQ(std::count(html.begin(), html.end(), '\0'), 0);

  // The check can fail: a page that logs to the console is caught.
  std::ofstream(dir / "noisy.html") << "<html><body><script>console.error('noisy page')</script>x</body></html>";
  const auto noisy = console_lines(browser.render(dir / "noisy.html", dir / "noisy.png", dir / "profile"));
  ASSERT_FALSE(noisy.empty()) << "console messages are not visible in this Chromium's log: the check below would be void";

  const auto log = browser.render(dir / "report.html", dir / "report.png", dir / "profile");
  EXPECT_TRUE(console_lines(log).empty()) << log;
  const std::string png = slurp(dir / "report.png");
  ASSERT_GT(png.size(), 10000u);  // a rendered page, not an empty canvas
  ASSERT_EQ(png.substr(1, 3), "PNG");
  auto be32 = [&](size_t at) {
    return (static_cast<uint32_t>(static_cast<unsigned char>(png[at])) << 24) |
           (static_cast<uint32_t>(static_cast<unsigned char>(png[at + 1])) << 16) |
           (static_cast<uint32_t>(static_cast<unsigned char>(png[at + 2])) << 8) | static_cast<unsigned char>(png[at + 3]);
  };
  EXPECT_EQ(be32(16), 1200u);  // IHDR width and height: the window asked for
  EXPECT_EQ(be32(20), 1800u);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace pairrm::test
