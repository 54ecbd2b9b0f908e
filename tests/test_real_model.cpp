// Opt-in: spec section 6's values with the real llm-blender/PairRM-hf weights. Runs only when
// PAIRRM_REAL_MODEL names the checkpoint directory (the 1.74 GB file is not available to CI).
#include <gtest/gtest.h>

#include <cstdlib>

#include "pairrm/pairrm.h"
#include "pairrm/ranking.h"

namespace pairrm {
namespace {

std::shared_ptr<const Model> real_model() {
  const char* dir = std::getenv("PAIRRM_REAL_MODEL");
  if (!dir || !*dir) return nullptr;
  return Model::load(dir);
}

TEST(RealModel, CompareLogitsOfTheModelCard) {
  auto model = real_model();
  if (!model) GTEST_SKIP() << "set PAIRRM_REAL_MODEL=/path/to/PairRM-hf to run";
  Context ctx(model);
  const auto r = ctx.compare({{"hello!", "hi!", "f**k off!"}, {"I love you!", "I hate you!", "I love you, too!"}},
                             CompareMode::kAB);
  EXPECT_NEAR(r[0].score, 1.9003021717071533, 1e-4);
  EXPECT_NEAR(r[1].score, -1.2547134160995483, 1e-4);
}

TEST(RealModel, RankingsOfTheModelCard) {
  auto model = real_model();
  if (!model) GTEST_SKIP() << "set PAIRRM_REAL_MODEL=/path/to/PairRM-hf to run";
  Context ctx(model);
  // Through the library's own rank (llm-blender's semantics), as users call it.
  auto best_to_worst = [&](const std::string& source, const std::vector<std::string>& c) {
    return rank(ctx, {{source, c}}).at(0).ranks;
  };
  EXPECT_EQ(best_to_worst("hello, how are you!", {"get out!", "hi! I am fine, thanks!", "bye!"}),
            (std::vector<int>{3, 1, 2}));
  EXPECT_EQ(best_to_worst("I love you!", {"I love you too!", "I hate you!", "Thanks! You're a good guy!"}),
            (std::vector<int>{1, 3, 2}));
}

}  // namespace
}  // namespace pairrm
