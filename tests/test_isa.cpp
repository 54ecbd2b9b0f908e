// Runtime ISA dispatch: level names and choice, and every compiled level this CPU runs checked against the
// portable (generic) level in one process, as ggml's test-backend-ops does. The full fixture suite also runs
// once per forced level (ctest: isa_<level>.fixture_suite, PAIRRM_ISA=<level>).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <vector>

#include "fixtures.h"
#include "kernel_inputs.h"
#include "kernels/dense_gemm.h"
#include "kernels/isa.h"
#include "kernels/kernel_table.h"
#include "kernels/panel_gemm.h"
#include "kernels/relative_position.h"

namespace pairrm::test {
namespace {

using kernels::Isa;

TEST(Isa, NamesRoundTripAndUnknownNamesAreErrors) {
  const auto levels = kernels::all_isas();
  ASSERT_EQ(levels.size(), 4u);
  for (Isa isa : levels) EXPECT_EQ(kernels::parse_isa(kernels::isa_name(isa)), isa);
  EXPECT_THROW(kernels::parse_isa("avx"), Error);
  EXPECT_THROW(kernels::parse_isa(""), Error);
  EXPECT_TRUE(kernels::isa_supported(Isa::kGeneric));
  // Levels are nested: a CPU that runs one runs every lower one.
  for (size_t i = 1; i < levels.size(); ++i)
    EXPECT_TRUE(!kernels::isa_supported(levels[i]) || kernels::isa_supported(levels[i - 1]));
  EXPECT_TRUE(kernels::isa_supported(kernels::best_supported_isa()));
}

TEST(Isa, TheActiveLevelIsTheForcedOneOrTheBest) {
  const char* forced = std::getenv("PAIRRM_ISA");
  if (forced && *forced) {
    EXPECT_EQ(kernels::active_isa(), kernels::parse_isa(forced));
    EXPECT_STREQ(kernels::isa_choice(), "forced by PAIRRM_ISA");
  } else {
    EXPECT_EQ(kernels::active_isa(), kernels::best_supported_isa());
    EXPECT_STREQ(kernels::isa_choice(), "cpuid");
  }
  EXPECT_EQ(kernels::active_kernels().isa, kernels::active_isa());
  // A loaded model reports the level its kernels run.
  EXPECT_EQ(shared_model("tiny")->info().isa, kernels::isa_name(kernels::active_isa()));
}

class IsaLevel : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!kernels::isa_supported(GetParam()))
      GTEST_SKIP() << "this CPU cannot run " << kernels::isa_name(GetParam()) << " (best: "
                   << kernels::isa_name(kernels::best_supported_isa()) << ")";
  }
  const kernels::KernelTable& table() const { return kernels::kernel_table(GetParam()); }
  const kernels::KernelTable& generic() const { return kernels::kernel_table(Isa::kGeneric); }
};

// The vector kernels (aligned panels) and the scalar loop of the same level (unaligned panels) do the same
// multiply-adds in the same order: the same bits. Against the generic level, fp32 rounding bounds apply
// (FMA vs multiply-then-add: each of K steps may round differently, |error| <= 2K·eps·sum|a·b|).
TEST_P(IsaLevel, PanelGemmMatchesItsScalarLoopBitwiseAndTheGenericLevelWithinRounding) {
  EXPECT_EQ(table().isa, GetParam());
  for (const auto& [M, N, K] : {std::tuple{1, 1, 1}, {7, 33, 64}, {64, 300, 64}, {13, 17, 517}}) {
    SCOPED_TRACE(std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K));
    const auto A = random_floats(static_cast<size_t>(M) * K, 1);
    const auto B = random_floats(static_cast<size_t>(N) * K, 2);
    const long packed = kernels::packed_panels_floats(N, K);
    Aligned aligned(packed + 1);
    kernels::pack_transposed(B.data(), K, N, K, aligned.data);
    std::vector<float> unaligned(aligned.data, aligned.data + packed);
    std::vector<float> shifted(packed + 1);
    std::copy(unaligned.begin(), unaligned.end(), shifted.begin() + 1);  // 4 bytes off: the scalar path
    std::vector<float> vec(static_cast<size_t>(M) * N), scalar(vec.size()), portable(vec.size());
    table().panel_gemm(A.data(), K, aligned.data, vec.data(), N, M, N, K, 0.5f);
    table().panel_gemm(A.data(), K, shifted.data() + 1, scalar.data(), N, M, N, K, 0.5f);
    generic().panel_gemm(A.data(), K, aligned.data, portable.data(), N, M, N, K, 0.5f);
    for (size_t i = 0; i < vec.size(); ++i) {
      ASSERT_EQ(vec[i], scalar[i]) << "element " << i;
      double mag = 0;
      const size_t m = i / N, n = i % N;
      for (int k = 0; k < K; ++k) mag += std::fabs(double(A[m * K + k]) * B[n * K + k]);
      ASSERT_NEAR(vec[i], portable[i], 0.5 * 2 * K * 6e-8 * mag + 1e-30) << "element " << i;
    }
  }
}

// The dense layers' GEMM: against the definition in double, and bitwise the same for a row whatever M, its
// position among the rows, the K and M blocking (K = 517 and M = 1030 cross the block sizes) and the split of
// the columns into panel ranges (threads) — the property that lets rows of a batch share one GEMM.
TEST_P(IsaLevel, DenseGemmIsExactPerRowWhateverTheRowsAroundIt) {
  for (const auto& [M, N, K] : {std::tuple{1, 1, 1}, {13, 70, 64}, {230, 96, 517}, {29, 33, 1100}, {1030, 40, 260}}) {
    SCOPED_TRACE(std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K));
    const auto A = random_floats(static_cast<size_t>(M) * K, 11);
    const auto W = random_floats(static_cast<size_t>(N) * K, 12);
    const auto bias = random_floats(N, 13);
    const auto residual = random_floats(static_cast<size_t>(M) * N, 14);
    Aligned packed(kernels::dense_packed_floats(N, K));
    table().pack_dense_weights(W.data(), N, K, packed.data, 2);
    std::vector<float> scratch(table().dense_gemm_scratch_floats(M));
    const int panels = (N + kernels::kPanelWidth - 1) / kernels::kPanelWidth;
    for (const bool accumulate : {false, true}) {
      SCOPED_TRACE(accumulate ? "accumulate" : "store");
      auto gemm = [&](int row0, int rows, int p0, int p1, std::vector<float>& C) {
        float* c = C.data() + static_cast<long>(row0) * N;
        table().dense_gemm(A.data() + static_cast<long>(row0) * K, K, rows, K, packed.data, N, bias.data(), c, N,
                           accumulate ? c : nullptr, p0, p1, scratch.data());
      };
      std::vector<float> whole(residual), split(residual);
      gemm(0, M, 0, panels, whole);
      // The same rows in uneven pieces (1 row, then 12, then the rest) and the columns in two ranges.
      for (int row0 = 0, piece = 1; row0 < M; row0 += piece, piece = piece == 1 ? 12 : M) {
        const int rows = std::min(piece, M - row0);
        gemm(row0, rows, 0, panels / 2, split);
        gemm(row0, rows, panels / 2, panels, split);
      }
      for (int m = 0; m < M; ++m)
        for (int n = 0; n < N; ++n) {
          const size_t i = static_cast<size_t>(m) * N + n;
          ASSERT_EQ(whole[i], split[i]) << "row " << m << " column " << n;
          double want = bias[n] + (accumulate ? residual[i] : 0.0), mag = std::fabs(want);
          for (int k = 0; k < K; ++k) {
            want += double(A[m * K + k]) * W[n * K + k];
            mag += std::fabs(double(A[m * K + k]) * W[n * K + k]);
          }
          // K + 1 roundings of at most eps/2 of the running sum, each bounded by the sum of magnitudes.
          ASSERT_NEAR(whole[i], want, (K + 1) * 6e-8 * mag + 1e-30) << "row " << m << " column " << n;
        }
    }
  }
}

// Whole attention of one sequence (all relative-term paths: buckets 256 over 300 tokens gives constant,
// staircase and gathered runs) against the generic level. The levels differ only in rounding (exp
// polynomial vs libm, FMA vs multiply-add, lane order of the softmax sums): 2e-5 relative to the output's
// scale is ~100 fp32 ulps, far below any indexing or masking mistake (which moves values by O(1)).
TEST_P(IsaLevel, AttentionMatchesTheGenericLevel) {
  for (const int L : {1, 7, 300}) {
    SCOPED_TRACE("L=" + std::to_string(L));
    kernels::AttentionShape s;
    s.length = L;
    s.hidden = 128;
    s.heads = 2;
    s.span = 256;
    s.scale = std::sqrt(64.f * 3);
    std::vector<int> rel;
    kernels::relative_index_table(L, 256, 512, s.span, rel);
    const auto qkv = random_floats(static_cast<size_t>(L) * 3 * s.hidden, 3);
    const auto pos = random_floats(static_cast<size_t>(2 * s.span) * 2 * s.hidden, 4);
    const float* PK = pos.data();
    const float* PQ = pos.data() + static_cast<size_t>(2 * s.span) * s.hidden;
    auto run = [&](const kernels::KernelTable& t) {
      std::vector<float> ctx(static_cast<size_t>(L) * s.hidden);
      std::vector<float> scratch(t.attention_scratch_floats(L, s.span) * 2 + t.attention_shared_floats(L));
      t.disentangled_attention(s, qkv.data(), qkv.data() + s.hidden, qkv.data() + 2 * s.hidden, 3 * s.hidden, PK, PQ,
                               rel.data(), ctx.data(), s.hidden, scratch.data(), 2);
      return ctx;
    };
    const auto got = run(table()), want = run(generic());
    double scale = 0;
    for (float v : want) scale = std::max(scale, double(std::fabs(v)));
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-5 * scale) << "element " << i;
  }
}

// LayerNorm accumulates in double; the last step y = x̂·γ + β is one FMA where the level has FMA (GCC contracts
// it) and a multiply then an add on the generic level: at most one rounding of x̂·γ apart, so within
// 2·eps·(|y| + |β|) (eps = 2^-23), and never further.
TEST_P(IsaLevel, LayerNormMatchesTheGenericLevelWithinOneRounding) {
  const int rows = 5, n = 1024;
  const auto x = random_floats(static_cast<size_t>(rows) * n, 5);
  const auto gamma = random_floats(n, 6), beta = random_floats(n, 7);
  std::vector<float> got(x.size()), want(x.size());
  table().layer_norm(x.data(), got.data(), rows, n, gamma.data(), beta.data(), 1e-7f);
  generic().layer_norm(x.data(), want.data(), rows, n, gamma.data(), beta.data(), 1e-7f);
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 2 * 1.1920929e-7 * (std::fabs(want[i]) + std::fabs(beta[i % n]))) << "element " << i;
}

INSTANTIATE_TEST_SUITE_P(AllLevels, IsaLevel, ::testing::ValuesIn(kernels::all_isas()),
                         [](const auto& info) { return std::string(kernels::isa_name(info.param)); });

}  // namespace
}  // namespace pairrm::test
