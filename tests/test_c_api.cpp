// The C API (pairrm_c.h) against the C++ API and the fixtures: the same numbers, errors as codes and
// messages, never a crash on NULLs or bad values.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>

#include "fixtures.h"
#include "pairrm/pairrm_c.h"
#include "pairrm/ranking.h"

namespace pairrm::test {
namespace {

struct ModelHandle {
  pairrm_model* m;
  explicit ModelHandle(const std::string& dir, const pairrm_load_params* p = nullptr) : m(pairrm_model_load(dir.c_str(), p)) {}
  ~ModelHandle() { pairrm_model_free(m); }
};

TEST(CApi, CompareGivesTheFixtureLogits) {
  const auto t = read_json(fixtures_dir() + "/text_cases.json");
  const auto& rows = t["pair_rows"];
  const auto& expected = t["models"]["tiny"]["compare_ab"];
  ASSERT_GT(rows.size(), 0u);
  ASSERT_EQ(rows.size(), expected.size());
  ModelHandle model(model_dir("tiny"));
  ASSERT_NE(model.m, nullptr) << pairrm_last_error();
  pairrm_context* ctx = pairrm_context_new(model.m, 2);
  ASSERT_NE(ctx, nullptr);
  std::vector<std::string> s, a, b;
  for (const auto& r : rows) {
    s.push_back(r["source"]);
    a.push_back(r["candidate1"]);
    b.push_back(r["candidate2"]);
  }
  std::vector<const char*> sp, ap, bp;
  for (size_t i = 0; i < s.size(); ++i) {
    sp.push_back(s[i].c_str());
    ap.push_back(a[i].c_str());
    bp.push_back(b[i].c_str());
  }
  std::vector<pairrm_compare_result> out(s.size());
  ASSERT_EQ(pairrm_compare(ctx, sp.data(), ap.data(), bp.data(), s.size(), PAIRRM_COMPARE_AB, out.data()), 0)
      << pairrm_last_error();
  for (size_t i = 0; i < out.size(); ++i) {
    const double want = expected[i]["logit_f64"];
    EXPECT_NEAR(out[i].logit_ab, want, logit_tolerance(want)) << "row " << i;
    EXPECT_TRUE(out[i].has_ab);
    EXPECT_FALSE(out[i].has_ba);
  }
  // The row and its logit through the lower-level calls give the same value.
  size_t n = 0;
  int32_t pos[3];
  ASSERT_EQ(pairrm_build_row(model.m, sp[0], ap[0], bp[0], nullptr, 0, &n, pos), 0);
  std::vector<int32_t> ids(n);
  ASSERT_EQ(pairrm_build_row(model.m, sp[0], ap[0], bp[0], ids.data(), ids.size(), &n, pos), 0);
  EXPECT_EQ(ids, t["pair_rows"][0]["input_ids"].get<std::vector<int32_t>>());
  EXPECT_NE(pairrm_build_row(model.m, sp[0], ap[0], bp[0], ids.data(), n - 1, &n, pos), 0);  // too small
  pairrm_row row{ids.data(), n, pos[0], pos[1], pos[2]};
  double logit = 0;
  ASSERT_EQ(pairrm_logits(ctx, &row, 1, &logit), 0);
  EXPECT_EQ(logit, out[0].logit_ab);
  pairrm_context_free(ctx);
}

TEST(CApi, RankGivesTheFixtureScoresAndRanks) {
  const auto cases = read_json(fixtures_dir() + "/text_cases.json")["models"]["tiny"]["rank_cases"];
  ASSERT_GT(cases.size(), 0u);
  ModelHandle model(model_dir("tiny"));
  pairrm_context* ctx = pairrm_context_new(model.m, 1);
  for (const auto& c : cases) {
    const std::string source = c["source"];
    const auto cands = c["candidates"].get<std::vector<std::string>>();
    std::vector<const char*> cp;
    for (const auto& x : cands) cp.push_back(x.c_str());
    std::vector<double> scores(cands.size());
    std::vector<int32_t> ranks(cands.size());
    ASSERT_EQ(pairrm_rank(ctx, source.c_str(), cp.data(), cp.size(), scores.data(), ranks.data()), 0);
    for (size_t i = 0; i < cands.size(); ++i) {
      const double want = c["scores"][i];
      EXPECT_NEAR(scores[i], want, logit_tolerance(want));
      EXPECT_EQ(ranks[i], c["ranks"][i].get<int>());
    }
  }
  pairrm_context_free(ctx);
}

TEST(CApi, ErrorsAreCodesWithMessages) {
  EXPECT_EQ(pairrm_model_load("/nonexistent/dir", nullptr), nullptr);
  EXPECT_NE(std::string(pairrm_last_error()).find("/nonexistent/dir"), std::string::npos) << pairrm_last_error();
  EXPECT_EQ(pairrm_model_load(nullptr, nullptr), nullptr);
  pairrm_load_params p = pairrm_load_params_default();
  p.precision = static_cast<pairrm_precision>(42);
  EXPECT_EQ(pairrm_model_load(model_dir("tiny").c_str(), &p), nullptr);
  EXPECT_NE(std::string(pairrm_last_error()).find("precision"), std::string::npos);
  p = pairrm_load_params_default();
  p.source_max_length = 2;
  EXPECT_EQ(pairrm_model_load(model_dir("tiny").c_str(), &p), nullptr);
  EXPECT_EQ(pairrm_context_new(nullptr, 1), nullptr);
  ModelHandle model(model_dir("tiny"));
  pairrm_context* ctx = pairrm_context_new(model.m, 1);
  const char* s[] = {"hi"};
  const char* bad[] = {"\xff\xfe"};  // invalid UTF-8: refused, named
  pairrm_compare_result r;
  EXPECT_NE(pairrm_compare(ctx, s, bad, s, 1, PAIRRM_COMPARE_BOTH, &r), 0);
  EXPECT_NE(std::string(pairrm_last_error()).find("UTF-8"), std::string::npos) << pairrm_last_error();
  EXPECT_NE(pairrm_compare(ctx, s, s, nullptr, 1, PAIRRM_COMPARE_BOTH, &r), 0);
  EXPECT_NE(pairrm_compare(ctx, s, s, s, 1, static_cast<pairrm_compare_mode>(9), &r), 0);
  EXPECT_NE(pairrm_rank(ctx, "hi", s, 0, nullptr, nullptr), 0);
  EXPECT_EQ(pairrm_compare(ctx, s, s, s, 1, PAIRRM_COMPARE_BOTH, &r), 0);
  EXPECT_STREQ(pairrm_last_error(), "");  // a successful call clears it
  pairrm_model_info info{};
  EXPECT_NE(pairrm_model_info_get(model.m, &info), 0);  // struct_size not set: refused, nothing written
  EXPECT_NE(std::string(pairrm_last_error()).find("struct_size"), std::string::npos);
  info.struct_size = sizeof info;
  ASSERT_EQ(pairrm_model_info_get(model.m, &info), 0);
  EXPECT_EQ(info.hidden_size, 64);
  EXPECT_EQ(info.source_max_length, 1224);
  EXPECT_STREQ(info.isa, shared_model("tiny")->info().isa.c_str());
  pairrm_context_free(ctx);
  pairrm_context_free(nullptr);
  pairrm_model_free(nullptr);
}

// A program built against an older, shorter header: the library reads and writes only struct_size bytes.
TEST(CApi, ShorterStructsFromOlderHeadersAreHonoured) {
  pairrm_load_params p = pairrm_load_params_default();
  EXPECT_EQ(p.struct_size, sizeof(pairrm_load_params));
  p.precision = PAIRRM_PRECISION_BF16;
  p.source_max_length = 2;  // past the "older" size below: must not be read (it would be refused)
  p.struct_size = offsetof(pairrm_load_params, attention);  // knows struct_size and precision only
  ModelHandle model(model_dir("tiny"), &p);
  ASSERT_NE(model.m, nullptr) << pairrm_last_error();
  struct Older {
    size_t struct_size;
    int hidden_size;
  };
  union {
    Older older;
    pairrm_model_info room;
  } u;
  std::memset(&u, 0xAB, sizeof u);
  u.older.struct_size = offsetof(Older, hidden_size) + sizeof(int);  // its fields, without tail padding
  ASSERT_EQ(pairrm_model_info_get(model.m, reinterpret_cast<pairrm_model_info*>(&u.older)), 0);
  EXPECT_EQ(u.older.hidden_size, 64);
  EXPECT_EQ(u.room.num_layers, static_cast<int>(0xABABABAB));  // past the older struct: untouched
  pairrm_model_info info{};
  info.struct_size = sizeof info;
  ASSERT_EQ(pairrm_model_info_get(model.m, &info), 0);
  EXPECT_EQ(info.precision, PAIRRM_PRECISION_BF16);
  EXPECT_EQ(info.source_max_length, 1224);
}

// Truncation lengths as llm-blender's source_max_length / candidate_max_length: rows built with them match
// the C++ API's, and are no longer than source + 2 · candidate.
TEST(CApi, TruncationLengthsAreHonoured) {
  pairrm_load_params p = pairrm_load_params_default();
  p.source_max_length = 8;
  p.candidate_max_length = 6;
  ModelHandle model(model_dir("tiny"), &p);
  ASSERT_NE(model.m, nullptr) << pairrm_last_error();
  const std::string longtext(2000, 'a');
  size_t n = 0;
  int32_t pos[3];
  ASSERT_EQ(pairrm_build_row(model.m, (longtext + " b c d e f g h").c_str(), "x y z w v u t s r", "q", nullptr, 0, &n, pos), 0);
  EXPECT_LE(n, 8u + 2 * 6u);
  EXPECT_EQ(pos[0], 1);
  EXPECT_EQ(pos[1], 9);  // the source segment is exactly its 8 tokens
}

}  // namespace
}  // namespace pairrm::test
