// The network against the PyTorch reference: fixtures/models/{tiny,tiny_b}/expected.json and debug.safetensors.
#include <gtest/gtest.h>

#include <cmath>

#include "api/model_impl.h"
#include "fixtures.h"
#include "io/safetensors.h"
#include "kernels/relative_position.h"

namespace pairrm {
namespace {

using test::read_json;

using Case = test::FixtureCase;

std::vector<Case> load_cases(const std::string& model) { return test::fixture_cases(model); }

class ModelFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelFixture, EveryCaseLogitMatchesFloat64Reference) {
  auto model = test::shared_model(GetParam());
  Context ctx(model, 2);
  const auto cases = load_cases(GetParam());
  ASSERT_GE(cases.size(), 10u);
  double worst = 0;
  bool saw_2048 = false, saw_700 = false;
  for (const Case& c : cases) {
    const double got = ctx.logits({c.row}).at(0);
    EXPECT_NEAR(got, c.logit_f64, test::logit_tolerance(c.logit_f64)) << "row of " << c.row.ids.size() << " tokens";
    worst = std::max(worst, std::abs(got - c.logit_f64));
    saw_2048 |= c.row.ids.size() == 2048;
    saw_700 |= c.row.ids.size() == 700;
  }
  EXPECT_TRUE(saw_2048 && saw_700);
  std::printf("[ %s ] largest |logit - logit_f64| = %.3g over %zu cases\n", GetParam().c_str(), worst, cases.size());
}

TEST_P(ModelFixture, LastLayerStatesAtPrefixTokens) {
  auto model = test::shared_model(GetParam());
  Context ctx(model, 2);
  const int H = model->info().hidden_size;
  for (const Case& c : load_cases(GetParam())) {
    ctx.logits({c.row});
    const float* x = internals(ctx).workspace.x.data();
    const int pos[3] = {c.row.source_pos, c.row.cand1_pos, c.row.cand2_pos};
    for (int p = 0; p < 3; ++p)
      for (int i = 0; i < H; ++i)
        ASSERT_NEAR(x[static_cast<long>(pos[p]) * H + i], c.hidden[p][i].get<double>(), 1e-4)
            << "prefix " << p << " dim " << i << " row of " << c.row.ids.size();
  }
}

TEST_P(ModelFixture, BatchedRowsEqualRowsAlone) {
  // All cases in one call (packed, no padding) must give each row's own result: a row never sees another.
  auto model = test::shared_model(GetParam());
  Context ctx(model, 2);
  const auto cases = load_cases(GetParam());
  std::vector<PairRow> rows;
  std::vector<double> alone;
  for (const Case& c : cases) {
    if (c.row.ids.size() > 1000) continue;  // keep the batch moderate for the sanitizer build
    rows.push_back(c.row);
    alone.push_back(ctx.logits({c.row}).at(0));
  }
  ASSERT_GE(rows.size(), 8u);
  const auto together = ctx.logits(rows);
  std::reverse(rows.begin(), rows.end());
  const auto reversed = ctx.logits(rows);
  Context tight(model, 2);
  tight.set_batch_limits(3, 900);  // other batch boundaries, a row longer than the token limit alone
  const auto split = tight.logits(rows);
  for (size_t i = 0; i < alone.size(); ++i) {
    EXPECT_EQ(split[alone.size() - 1 - i], alone[i]) << i;
    // Bitwise: a row never shares a computation with another row.
    EXPECT_EQ(together[i], alone[i]) << i;
    EXPECT_EQ(reversed[alone.size() - 1 - i], alone[i]) << i;
  }
}

TEST_P(ModelFixture, RowsGiveTheSameBitsForEveryThreadCountAndBatch) {
  // A row runs on one thread side by side with others, or alone on all threads (when rows are fewer than
  // threads, or long); every kernel splits its work in fixed pieces, so neither the thread count nor the
  // batch may change a logit. (Column chunks of real widths: Linear.ColumnChunksGiveTheSameBits.)
  auto model = test::shared_model(GetParam());
  std::vector<PairRow> rows;
  for (const Case& c : load_cases(GetParam())) rows.push_back(c.row);
  ASSERT_GE(rows.size(), 4u);
  Context one(model, 1);
  std::vector<double> alone;
  for (const PairRow& r : rows) alone.push_back(one.logits({r}).at(0));
  for (int threads : {1, 2, 3}) {
    Context ctx(model, threads);
    const auto together = ctx.logits(rows);
    for (size_t i = 0; i < rows.size(); ++i) {
      EXPECT_EQ(together[i], alone[i]) << "threads " << threads << " row " << i;
      EXPECT_EQ(ctx.logits({rows[i]}).at(0), alone[i]) << "threads " << threads << " row " << i << " alone";
    }
  }
}

TEST_P(ModelFixture, RelativeBucketTableIsExact) {
  const auto e = read_json(test::model_dir(GetParam()) + "/expected.json");
  const auto& cfg = e["config"];
  const int buckets = cfg["position_buckets"];
  int max_rel = cfg["max_relative_positions"];
  if (max_rel < 1) max_rel = cfg["max_position_embeddings"];
  const int offset = e["rel_bucket_table"]["offset"];
  const auto& values = e["rel_bucket_table"]["values"];
  ASSERT_EQ(values.size(), 2u * offset + 1);
  for (int d = -offset; d <= offset; ++d)
    ASSERT_EQ(kernels::relative_bucket(d, buckets, max_rel), values[d + offset].get<int>()) << "distance " << d;
}

TEST_P(ModelFixture, PerLayerStatesAndNormalisedRelEmbeddings) {
  auto model = test::shared_model(GetParam());
  const Model::Impl& m = internals(*model);
  SafetensorsFile debug(test::model_dir(GetParam()) + "/debug.safetensors");
  const TensorView* rel = debug.find("rel_embeddings_normed");
  ASSERT_NE(rel, nullptr);
  ASSERT_EQ(rel->numel(), static_cast<int64_t>(m.relative.rel.size()));
  const float* ref = reinterpret_cast<const float*>(rel->data);
  for (size_t i = 0; i < m.relative.rel.size(); ++i) ASSERT_NEAR(m.relative.rel[i], ref[i], 1e-5) << i;

  // Rows with per-layer dumps: b{batch}.r{row}.hidden_f64.{layer}
  const auto cases = load_cases(GetParam());
  std::map<int, int> row_in_batch;
  int checked = 0;
  for (const Case& c : cases) {
    const int r = row_in_batch[c.batch]++;
    const std::string key = "b" + std::to_string(c.batch) + ".r" + std::to_string(r) + ".hidden_f64.";
    if (!debug.find(key + "0")) continue;
    Workspace ws;
    RowRef ref_row{c.row.ids.data(), static_cast<int>(c.row.ids.size())};
    double worst = 0;
    encoder_forward(m.config, m.weights, m.relative, m.packed, {ref_row}, 1, ws, [&](int, int layer, const float* x, int T) {
      const TensorView* t = debug.find(key + std::to_string(layer));
      ASSERT_NE(t, nullptr) << key << layer;
      ASSERT_EQ(t->numel(), static_cast<int64_t>(T) * m.config.hidden_size);
      const double* expect = reinterpret_cast<const double*>(t->data);
      for (long i = 0; i < t->numel(); ++i) worst = std::max(worst, std::abs(x[i] - expect[i]));
    });
    EXPECT_LE(worst, 1e-4) << key;
    ++checked;
  }
  EXPECT_GE(checked, 1);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ModelFixture, ::testing::Values("tiny", "tiny_b"));

}  // namespace
}  // namespace pairrm
