// The server's batches merge the rows of several requests; a row the engine refuses (poisoned) must fail
// only its own request. logits_isolated is what every scheduler worker runs a batch through.
#include <gtest/gtest.h>

#include "fixtures.h"
#include "server/scheduler.h"

namespace pairrm {
namespace {

TEST(Scheduler, APoisonedRowFailsOnlyItself) {
  auto model = test::shared_model("tiny");
  Context ctx(model, 1);
  std::vector<PairRow> batch;
  for (const char* a : {"hi!", "hello there", "go away", "fine, thanks"}) batch.push_back(model->build_row("hello!", a, "bye"));
  PairRow poisoned = model->build_row("hello!", "hi!", "bye");
  poisoned.cand2_pos = static_cast<int32_t>(poisoned.ids.size()) + 5;  // outside its row: the engine refuses it
  batch.insert(batch.begin() + 2, poisoned);
  ASSERT_THROW(ctx.logits(batch), Error);  // the merged batch as a whole fails

  std::vector<std::string> errors(batch.size());
  const auto got = server::logits_isolated(ctx, batch, errors);
  ASSERT_EQ(got.size(), batch.size());
  for (size_t k = 0; k < batch.size(); ++k) {
    if (k == 2) {
      EXPECT_NE(errors[k].find("prefix position"), std::string::npos) << errors[k];
      continue;
    }
    EXPECT_TRUE(errors[k].empty()) << k << ": " << errors[k];
    EXPECT_EQ(got[k], ctx.logits({batch[k]}).at(0)) << k;  // the values a batch without the poisoned row gives
  }
  std::vector<std::string> none(batch.size());
  batch.erase(batch.begin() + 2);
  none.pop_back();
  EXPECT_EQ(server::logits_isolated(ctx, batch, none), ctx.logits(batch));
}

}  // namespace
}  // namespace pairrm
