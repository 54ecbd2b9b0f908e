// Per-op checks of the attention kernels against naive double-precision references.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "kernel_inputs.h"
#include "kernels/attention.h"
#include "kernels/bf16.h"
#include "kernels/gemm.h"
#include "kernels/linear.h"
#include "kernels/panel_gemm.h"
#include "kernels/relative_position.h"

namespace pairrm::test {
namespace {

TEST(PanelGemm, MatchesADoubleReferenceAndIsIndependentOfTheBlocking) {
  for (const auto& [M, N, K] : {std::tuple{1, 1, 1}, {5, 33, 64}, {64, 300, 64}, {13, 64, 517}, {64, 31, 7}}) {
    SCOPED_TRACE(std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K));
    const int lda = K + 3;  // strided rows, as Q and K are read in place
    const auto A = random_floats(static_cast<size_t>(M) * lda, 1);
    const auto Bt = random_floats(static_cast<size_t>(N) * K, 2);  // [N, K]: pack_transposed
    const auto Bn = random_floats(static_cast<size_t>(K) * N, 3);  // [K, N]: pack_plain
    Aligned pt(kernels::packed_panels_floats(N, K)), pn(kernels::packed_panels_floats(N, K));
    kernels::pack_transposed(Bt.data(), K, N, K, pt.data);
    kernels::pack_plain(Bn.data(), N, K, N, pn.data);
    std::vector<float> Ct(static_cast<size_t>(M) * N), Cn(Ct.size());
    kernels::panel_gemm(A.data(), lda, pt.data, Ct.data(), N, M, N, K, 0.5f);
    kernels::panel_gemm(A.data(), lda, pn.data, Cn.data(), N, M, N, K, 1.f);
    for (int i = 0; i < M; ++i)
      for (int n = 0; n < N; ++n) {
        double st = 0, sn = 0, mag = 0;
        for (int k = 0; k < K; ++k) {
          const double a = A[static_cast<size_t>(i) * lda + k];
          st += a * Bt[static_cast<size_t>(n) * K + k];
          sn += a * Bn[static_cast<size_t>(k) * N + n];
          mag += std::fabs(a * Bn[static_cast<size_t>(k) * N + n]);
        }
        // fp32 accumulation of K products: |error| <= K·eps·sum|a·b| (eps = 2^-24), a standard bound.
        const double bound = K * 6e-8 * (mag + 1e-30) + 1e-30;
        EXPECT_NEAR(Ct[static_cast<size_t>(i) * N + n], 0.5 * st, bound + 0.5 * K * 6e-8 * std::fabs(st) + 1e-6);
        EXPECT_NEAR(Cn[static_cast<size_t>(i) * N + n], sn, bound + 1e-6);
      }
    // A row computed alone has the same bits as in the block (rows never mix).
    std::vector<float> row(N);
    const int last = M - 1;
    kernels::panel_gemm(A.data() + static_cast<size_t>(last) * lda, lda, pn.data, row.data(), N, 1, N, K, 1.f);
    for (int n = 0; n < N; ++n) EXPECT_EQ(row[n], Cn[static_cast<size_t>(last) * N + n]);
  }
}

// A panel that is not 64-byte aligned takes each level's scalar path (panel_gemm.cpp), which must give the
// vector kernel's bits (the same fused multiply-adds in the same k order; at the generic level both paths are
// the same code). Shapes with a partial last panel and K past one register block.
TEST(PanelGemm, AnUnalignedPanelGivesTheAlignedPanelsBits) {
  for (const auto& [M, N, K] : {std::tuple{13, 45, 64}, {3, 32, 7}, {1, 70, 300}}) {
    SCOPED_TRACE(std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K));
    const auto A = random_floats(static_cast<size_t>(M) * K, 4);
    const auto Bt = random_floats(static_cast<size_t>(N) * K, 5);
    const long floats = kernels::packed_panels_floats(N, K);
    Aligned aligned(floats), shifted(floats + 1);
    kernels::pack_transposed(Bt.data(), K, N, K, aligned.data);
    std::copy_n(aligned.data, floats, shifted.data + 1);  // 4 bytes past a 64-byte boundary
    std::vector<float> C(static_cast<size_t>(M) * N), Cu(C.size());
    kernels::panel_gemm(A.data(), K, aligned.data, C.data(), N, M, N, K, 0.25f);
    kernels::panel_gemm(A.data(), K, shifted.data + 1, Cu.data(), N, M, N, K, 0.25f);
    for (size_t i = 0; i < C.size(); ++i) ASSERT_EQ(Cu[i], C[i]) << "element " << i;

    // bf16: the panel 2 bytes off (any uint16 alignment is allowed).
    const int ldq = (K + 1) / 2 * 2;
    std::vector<uint16_t> a16(static_cast<size_t>(M) * ldq);
    kernels::rows_to_bf16(A.data(), K, M, K, a16.data(), ldq);
    const long halves = kernels::packed_panels_bf16(N, K);
    Aligned aligned16(halves / 2 + 1), shifted16(halves / 2 + 2);
    auto* b16 = reinterpret_cast<uint16_t*>(aligned16.data);
    auto* b16u = reinterpret_cast<uint16_t*>(shifted16.data) + 1;
    kernels::pack_transposed_bf16(Bt.data(), K, N, K, b16);
    std::copy_n(b16, halves, b16u);
    kernels::panel_gemm_bf16(a16.data(), ldq, b16, C.data(), N, M, N, K, 0.25f);
    kernels::panel_gemm_bf16(a16.data(), ldq, b16u, Cu.data(), N, M, N, K, 0.25f);
    for (size_t i = 0; i < C.size(); ++i) ASSERT_EQ(Cu[i], C[i]) << "bf16 element " << i;
  }
}

std::vector<float> rounded_to_bf16(std::vector<float> v) {
  for (float& x : v) x = kernels::bf16_to_float(kernels::float_to_bf16(x));
  return v;
}

TEST(Bf16, RoundsToNearestEven) {
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: the even neighbour (1) wins; 1 + 3·2^-8 goes up.
  EXPECT_EQ(kernels::bf16_to_float(kernels::float_to_bf16(1.f + 1.f / 256)), 1.f);
  EXPECT_EQ(kernels::bf16_to_float(kernels::float_to_bf16(1.f + 3.f / 256)), 1.f + 4.f / 256);
  EXPECT_EQ(kernels::bf16_to_float(kernels::float_to_bf16(-2.5f)), -2.5f);
  EXPECT_TRUE(std::isnan(kernels::bf16_to_float(kernels::float_to_bf16(NAN))));
  EXPECT_EQ(kernels::bf16_to_float(kernels::float_to_bf16(INFINITY)), INFINITY);
}

TEST(PanelGemmBf16, MatchesADoubleReferenceOnTheRoundedInputs) {
  for (const auto& [M, N, K] : {std::tuple{1, 1, 1}, {5, 33, 64}, {64, 300, 64}, {13, 64, 517}, {64, 31, 7}, {12, 32, 2}}) {
    SCOPED_TRACE(std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K));
    const int lda = K + 3, ldq = (K + 1) / 2 * 2;
    const auto A = random_floats(static_cast<size_t>(M) * lda, 1);
    const auto Bt = random_floats(static_cast<size_t>(N) * K, 2);  // [N, K]
    const auto Bn = random_floats(static_cast<size_t>(K) * N, 3);  // [K, N]
    std::vector<uint16_t> a16(static_cast<size_t>(M) * ldq, 0xFFFF);  // garbage where no value goes
    kernels::rows_to_bf16(A.data(), lda, M, K, a16.data(), ldq);
    Aligned pt(kernels::packed_panels_bf16(N, K) / 2 + 1), pn(kernels::packed_panels_bf16(N, K) / 2 + 1);
    auto* bt16 = reinterpret_cast<uint16_t*>(pt.data);
    auto* bn16 = reinterpret_cast<uint16_t*>(pn.data);
    kernels::pack_transposed_bf16(Bt.data(), K, N, K, bt16);
    kernels::pack_plain_bf16(Bn.data(), N, K, N, bn16);
    std::vector<float> Ct(static_cast<size_t>(M) * N), Cn(Ct.size());
    kernels::panel_gemm_bf16(a16.data(), ldq, bt16, Ct.data(), N, M, N, K, 0.5f);
    kernels::panel_gemm_bf16(a16.data(), ldq, bn16, Cn.data(), N, M, N, K, 1.f);
    const auto Ar = rounded_to_bf16(A), Btr = rounded_to_bf16(Bt), Bnr = rounded_to_bf16(Bn);
    for (int i = 0; i < M; ++i)
      for (int n = 0; n < N; ++n) {
        double st = 0, sn = 0, mt = 0, mn = 0;
        for (int k = 0; k < K; ++k) {
          const double a = Ar[static_cast<size_t>(i) * lda + k];
          const double bt = Btr[static_cast<size_t>(n) * K + k], bn = Bnr[static_cast<size_t>(k) * N + n];
          st += a * bt;
          sn += a * bn;
          mt += std::fabs(a * bt);
          mn += std::fabs(a * bn);
        }
        // The products of bf16 values are exact in fp32; what remains is fp32 accumulation: K·eps·sum|a·b|.
        EXPECT_NEAR(Ct[static_cast<size_t>(i) * N + n], 0.5 * st, 0.5 * K * 6e-8 * mt + 1e-30);
        EXPECT_NEAR(Cn[static_cast<size_t>(i) * N + n], sn, K * 6e-8 * mn + 1e-30);
      }
    std::vector<float> row(N);
    const int last = M - 1;
    kernels::panel_gemm_bf16(a16.data() + static_cast<size_t>(last) * ldq, ldq, bn16, row.data(), N, 1, N, K, 1.f);
    for (int n = 0; n < N; ++n) EXPECT_EQ(row[n], Cn[static_cast<size_t>(last) * N + n]);
  }
}

// Every precision and epilogue: the same bits for 1, 2 and 3 threads (N = 700: three column chunks, the
// last one ragged; ldc > N as for the fused Q|K|V output), and fp32 against a double reference.
TEST(Linear, ColumnChunksGiveTheSameBitsForEveryThreadCount) {
  const int M = 37, K = 50, N = 700, ldc = 720;
  ASSERT_EQ(kernels::column_chunks(N), 3);
  const auto W = random_floats(static_cast<size_t>(N) * K, 30, 0.2f), b = random_floats(N, 31, 0.1f);
  const auto A = random_floats(static_cast<size_t>(M) * K, 32);
  const auto C0 = random_floats(static_cast<size_t>(M) * ldc, 33);
  for (const Precision p : {Precision::kF32, Precision::kBF16, Precision::kInt8})
    for (const auto e : {kernels::Epilogue::kStore, kernels::Epilogue::kGelu, kernels::Epilogue::kAccumulate}) {
      SCOPED_TRACE(std::string(precision_name(p)) + " epilogue " + std::to_string(static_cast<int>(e)));
      kernels::PackedLinear lin(W.data(), b.data(), N, K, p);
      kernels::LinearScratch scratch;
      const int ld = e == kernels::Epilogue::kGelu ? N : ldc;  // GELU writes a contiguous output
      std::vector<float> first;
      for (const int threads : {1, 2, 3}) {
        std::vector<float> C = C0;
        lin.forward(A.data(), M, C.data(), e, scratch, ld, threads);
        if (threads == 1) first = C;
        EXPECT_EQ(C, first) << "threads " << threads;
      }
      if (e == kernels::Epilogue::kAccumulate) {  // the residual read from elsewhere: the same bits in C
        std::vector<float> C(C0.size(), -7.f);
        lin.forward(A.data(), M, C.data(), e, scratch, ld, 2, C0.data());
        for (int m = 0; m < M; ++m)
          for (int n = 0; n < N; ++n) ASSERT_EQ(C[static_cast<size_t>(m) * ld + n], first[static_cast<size_t>(m) * ld + n]);
      }
      if (p != Precision::kF32) continue;
      double worst = 0;
      for (int m = 0; m < M; ++m)
        for (int n = 0; n < N; ++n) {
          double v = b[n];
          for (int k = 0; k < K; ++k) v += static_cast<double>(A[static_cast<size_t>(m) * K + k]) * W[static_cast<size_t>(n) * K + k];
          if (e == kernels::Epilogue::kGelu) v = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
          if (e == kernels::Epilogue::kAccumulate) v += C0[static_cast<size_t>(m) * ldc + n];
          worst = std::max(worst, std::fabs(first[static_cast<size_t>(m) * ld + n] - v));
        }
      // Values O(1-3) from 50 fp32 products; oneDNN's GELU polynomial is accurate to a few ulp.
      EXPECT_LT(worst, 1e-5);
      if (e != kernels::Epilogue::kGelu)  // columns past N are left alone
        for (int m = 0; m < M; ++m)
          for (int n = N; n < ldc; ++n) ASSERT_EQ(first[static_cast<size_t>(m) * ldc + n], C0[static_cast<size_t>(m) * ldc + n]);
    }
}

// softmax((Q·Kᵀ + c2p + p2c) / scale) · V per head, straight from the definition, in double.
std::vector<double> naive_attention(const kernels::AttentionShape& s, const std::vector<float>& qkv,
                                    const std::vector<float>& PK, const std::vector<float>& PQ, const std::vector<int>& rel) {
  const int L = s.length, H = s.hidden, d = H / s.heads, ld = 3 * H;
  std::vector<double> ctx(static_cast<size_t>(L) * H, 0.0);
  for (int h = 0; h < s.heads; ++h)
    for (int i = 0; i < L; ++i) {
      std::vector<double> score(L);
      double mx = -1e300;
      for (int j = 0; j < L; ++j) {
        const int r = rel[i - j + L - 1];
        double sum = 0;
        for (int k = 0; k < d; ++k) {
          const double qi = qkv[static_cast<size_t>(i) * ld + h * d + k], kj = qkv[static_cast<size_t>(j) * ld + H + h * d + k];
          sum += qi * kj + qi * PK[static_cast<size_t>(r) * H + h * d + k] + kj * PQ[static_cast<size_t>(r) * H + h * d + k];
        }
        score[j] = sum / s.scale;
        mx = std::max(mx, score[j]);
      }
      double total = 0;
      for (double& x : score) total += x = std::exp(x - mx);
      for (int j = 0; j < L; ++j)
        for (int k = 0; k < d; ++k)
          ctx[static_cast<size_t>(i) * H + h * d + k] += score[j] / total * qkv[static_cast<size_t>(j) * ld + 2 * H + h * d + k];
    }
  return ctx;
}

TEST(DisentangledAttention, MatchesTheDefinitionInDouble) {
  // Small heads and short spans, so the linear band, the log buckets and the clamping at ±span all occur,
  // with runs of 16 keys of every kind (staircase in the band, constant where clamped, mixed in between).
  for (const auto& [L, span, buckets, max_position] :
       {std::tuple{1, 16, 16, 64}, {2, 16, 16, 64}, {17, 16, 16, 64}, {70, 16, 16, 64}, {150, 16, 16, 64},
        {200, 32, 64, 128}, {333, 32, 64, 128}}) {
    SCOPED_TRACE("L=" + std::to_string(L) + " span=" + std::to_string(span));
    kernels::AttentionShape s;
    s.length = L;
    s.heads = 3;
    s.hidden = 3 * 40;  // head_dim 40: panels with a ragged edge
    s.span = span;
    s.scale = std::sqrt(40.f * 3);
    std::vector<int> rel;
    kernels::relative_index_table(L, buckets, max_position, s.span, rel);
    const auto qkv = random_floats(static_cast<size_t>(L) * 3 * s.hidden, 10 + L, 1.5f);
    const auto PK = random_floats(static_cast<size_t>(2 * s.span) * s.hidden, 20, 1.5f);
    const auto PQ = random_floats(PK.size(), 21, 1.5f);
    for (const int threads : {1, 2}) {
      std::vector<float> scratch(kernels::attention_scratch_floats(L, s.span) * threads + kernels::attention_shared_floats(L));
      std::vector<float> ctx(static_cast<size_t>(L) * s.hidden);
      kernels::disentangled_attention(s, qkv.data(), qkv.data() + s.hidden, qkv.data() + 2 * s.hidden, 3 * s.hidden,
                                      PK.data(), PQ.data(), rel.data(), ctx.data(), s.hidden, scratch.data(), threads);
      const auto want = naive_attention(s, qkv, PK, PQ, rel);
      double worst = 0;
      for (size_t k = 0; k < ctx.size(); ++k) worst = std::max(worst, std::fabs(ctx[k] - want[k]));
      // fp32 scores of magnitude ~10 carry ~1e-6 relative error into exp; outputs are O(1) averages of V.
      EXPECT_LT(worst, 2e-5) << "threads " << threads;
    }
  }
}

TEST(DisentangledAttention, Bf16ProductsMatchTheDefinitionOnTheRoundedInputs) {
  for (const auto& [L, span, buckets, max_position] :
       {std::tuple{1, 16, 16, 64}, {17, 16, 16, 64}, {150, 16, 16, 64}, {333, 32, 64, 128}}) {
    SCOPED_TRACE("L=" + std::to_string(L));
    kernels::AttentionShape s;
    s.length = L;
    s.heads = 3;
    s.hidden = 3 * 40;
    s.span = span;
    s.scale = std::sqrt(40.f * 3);
    s.bf16_products = true;
    std::vector<int> rel;
    kernels::relative_index_table(L, buckets, max_position, s.span, rel);
    const auto qkv = random_floats(static_cast<size_t>(L) * 3 * s.hidden, 10 + L, 1.5f);
    const auto PK = random_floats(static_cast<size_t>(2 * s.span) * s.hidden, 20, 1.5f);
    const auto PQ = random_floats(PK.size(), 21, 1.5f);
    std::vector<float> scratch(kernels::attention_scratch_floats(L, s.span) * 2 + kernels::attention_shared_floats(L));
    std::vector<float> ctx(static_cast<size_t>(L) * s.hidden);
    kernels::disentangled_attention(s, qkv.data(), qkv.data() + s.hidden, qkv.data() + 2 * s.hidden, 3 * s.hidden,
                                    PK.data(), PQ.data(), rel.data(), ctx.data(), s.hidden, scratch.data(), 2);
    const auto qkv_r = rounded_to_bf16(qkv);
    const auto want = naive_attention(s, qkv_r, rounded_to_bf16(PK), rounded_to_bf16(PQ), rel);
    double worst = 0, vmax = 0;
    for (size_t k = 0; k < ctx.size(); ++k) worst = std::max(worst, std::fabs(ctx[k] - want[k]));
    for (float v : qkv_r) vmax = std::max(vmax, static_cast<double>(std::fabs(v)));
    // Against the rounded inputs the scores carry only fp32 error (as above); the probabilities are rounded
    // to bf16 before P·V, each by at most 2^-9 of itself, so a context value moves by at most 2^-9·max|V|.
    EXPECT_LT(worst, vmax / 512 + 2e-5);
    // The products really are bf16: against the unrounded inputs the error is far above fp32's 2e-5.
    const auto exact = naive_attention(s, qkv, PK, PQ, rel);
    double off = 0;
    for (size_t k = 0; k < ctx.size(); ++k) off = std::max(off, std::fabs(ctx[k] - exact[k]));
    if (L > 1) EXPECT_GT(off, 1e-4);
  }
}

}  // namespace
}  // namespace pairrm::test

namespace pairrm::test {
namespace {

// int8 and bf16 Linear layers against their own definition in double: int8 = asymmetric per-row u8
// activations (scale = range / 255 over [min(x, 0), max(x, 0)], zero point, round half up) and symmetric
// per-channel weights (round half away from zero, scale = max|w| / 127), exact integer sums, then both
// scales; bf16 = both operands rounded to bf16, exact products, sums. fp32 accumulation leaves
// K·eps·sum|terms|; anything beyond is a wrong kernel (oneDNN's int8 kernel without VNNI saturates int16
// pair sums: errors of order 1 here, which is why such CPUs take the emulated path).
TEST(Linear, ReducedPrecisionsMatchTheirRoundedArithmetic) {
  const int M = 5, N = 300, K = 256;
  std::mt19937 rng(11);
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<float> W(static_cast<size_t>(N) * K), bias(N), A(static_cast<size_t>(M) * K);
  for (auto* v : {&W, &bias, &A})
    for (float& x : *v) x = dist(rng);
  auto quantized = [](const float* x, int n, std::vector<double>& q) {
    float amax = 0;
    for (int k = 0; k < n; ++k) amax = std::max(amax, std::abs(x[k]));
    const float scale = amax > 0 ? amax / 127.f : 1.f, inv = 1.f / scale;
    q.resize(n);
    for (int k = 0; k < n; ++k) {
      const float v = x[k] * inv;
      q[k] = static_cast<int>(v + (v >= 0 ? 0.5f : -0.5f));
    }
    return static_cast<double>(scale);
  };
  // The activations: one-sided rows (as the GELU output that feeds ffn_out), a row of zeros, Gaussian rows.
  for (int k = 0; k < K; ++k) {
    A[k] = std::max(A[k], -0.17f);
    A[K + k] = 0.f;
  }
  auto activations = [](const float* x, int n, std::vector<double>& q) {
    float lo = 0, hi = 0;
    for (int k = 0; k < n; ++k) lo = std::min(lo, x[k]), hi = std::max(hi, x[k]);
    const float scale = hi > lo ? (hi - lo) / 255.f : 1.f, inv = 1.f / scale;
    const int zero = std::min(255, static_cast<int>(-lo * inv + 0.5f));
    const float shift = static_cast<float>(zero) + 0.5f;
    q.resize(n);
    for (int k = 0; k < n; ++k) q[k] = std::clamp(static_cast<int>(x[k] * inv + shift), 0, 255) - zero;
    return static_cast<double>(scale);
  };
  for (const Precision p : {Precision::kInt8, Precision::kBF16}) {
    SCOPED_TRACE(precision_name(p));
    kernels::PackedLinear lin(W.data(), bias.data(), N, K, p);
    kernels::LinearScratch scratch;
    std::vector<float> C(static_cast<size_t>(M) * N);
    lin.forward(A.data(), M, C.data(), kernels::Epilogue::kStore, scratch, 0, 2);
    std::vector<double> qa, qw;
    for (int m = 0; m < M; ++m) {
      const double sa = p == Precision::kInt8 ? activations(&A[static_cast<size_t>(m) * K], K, qa) : 1;
      for (int n = 0; n < N; ++n) {
        const double sw = p == Precision::kInt8 ? quantized(&W[static_cast<size_t>(n) * K], K, qw) : 1;
        double sum = 0, mag = 0;
        for (int k = 0; k < K; ++k) {
          const double a = p == Precision::kInt8 ? qa[k] : kernels::bf16_to_float(kernels::float_to_bf16(A[m * K + k]));
          const double w = p == Precision::kInt8 ? qw[k] : kernels::bf16_to_float(kernels::float_to_bf16(W[n * K + k]));
          sum += a * w;
          mag += std::fabs(a * w);
        }
        const double want = sum * sa * sw + bias[n];
        ASSERT_NEAR(C[static_cast<size_t>(m) * N + n], want, (K + 4) * 6e-8 * (mag * sa * sw + std::fabs(bias[n])))
            << "m=" << m << " n=" << n << " kernel " << lin.kernel_name();
      }
    }
  }
}

}  // namespace
}  // namespace pairrm::test
