// A C++ program using the installed C++ API (pairrm.h, ranking.h). Usage: cpp_consumer MODEL_DIR.
#include <pairrm/pairrm.h>
#include <pairrm/ranking.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  try {
    auto model = pairrm::Model::load(argv[1]);
    pairrm::Context ctx(model, 1);
    const auto r = ctx.compare({{"hello!", "hi!", "f**k off!"}}, pairrm::CompareMode::kBoth);
    const auto ranked = pairrm::rank(ctx, {{"hello, how are you!", {"get out!", "hi! I am fine, thanks!", "bye!"}}});
    std::printf("pairrm %s isa=%s score=%.6f logit_ab=%.6f logit_ba=%.6f ranks=%d,%d,%d\n", pairrm::version(),
                model->info().isa.c_str(), r[0].score, r[0].logit_ab, r[0].logit_ba, ranked[0].ranks[0],
                ranked[0].ranks[1], ranked[0].ranks[2]);
  } catch (const pairrm::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
