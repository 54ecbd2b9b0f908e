#include "kernels/linear.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <numeric>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <sys/mman.h>
#include <oneapi/dnnl/dnnl.hpp>

#include "kernels/bf16.h"
#include "kernels/dense_gemm.h"
#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "kernels/panel_gemm.h"
#include "pairrm/pairrm.h"

namespace pairrm::kernels {
namespace {

using dnnl::memory;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

const dnnl::engine& engine() {
  static const dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// Symmetric int8 quantisation of one row: returns scale = max|x| / 127 (1 for an all-zero row) and writes
// round(x / scale), half away from zero, into q. |x / scale| <= 127 by construction.
float quantize_row(const float* x, int n, int8_t* q) {
  float amax = 0;
  for (int k = 0; k < n; ++k) amax = std::max(amax, std::abs(x[k]));
  const float scale = amax > 0 ? amax / 127.f : 1.f, inv = 1.f / scale;
  for (int k = 0; k < n; ++k) {
    const float v = x[k] * inv;
    q[k] = static_cast<int8_t>(static_cast<int>(v + (v >= 0 ? 0.5f : -0.5f)));
  }
  return scale;
}

// Asymmetric u8 quantisation of one row of activations: x ≈ scale·(q − zero) with q in [0, 255] over the
// row's range [min(x, 0), max(x, 0)] (0 stays exact). Against symmetric s8 (max|x| on 127 steps a side) it
// halves the step where a row is one-sided, as the GELU output that feeds ffn_out is (≥ −0.17): that op
// carried half of int8's error variance (BENCHMARKS.md, accuracy). Returns scale; zero through `zero`.
// u8 × s8 is what VNNI's vpdpbusd multiplies natively.
float quantize_activations(const float* x, int n, uint8_t* q, int32_t* zero) {
  float lo = 0, hi = 0;
  for (int k = 0; k < n; ++k) {
    lo = std::min(lo, x[k]);
    hi = std::max(hi, x[k]);
  }
  const float scale = hi > lo ? (hi - lo) / 255.f : 1.f, inv = 1.f / scale;
  // −lo·inv is in [0, 255]; + 0.5 then truncation rounds half up (a loop the compiler vectorises: lround's
  // call per element would cost a quarter of the int8 forward pass).
  const int z = std::min(255, static_cast<int>(-lo * inv + 0.5f));
  const float shift = static_cast<float>(z) + 0.5f;
  for (int k = 0; k < n; ++k) q[k] = static_cast<uint8_t>(std::clamp(static_cast<int>(x[k] * inv + shift), 0, 255));
  *zero = z;
  return scale;
}

// Every row of A[M, K] quantised (quantize_activations) into scratch.a_u8 / a_scale / a_zero.
void quantize_rows(const float* A, int M, int K, LinearScratch& scratch, int threads) {
  scratch.a_u8.resize(static_cast<size_t>(M) * K);
  scratch.a_scale.resize(M);
  scratch.a_zero.resize(M);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int m = 0; m < M; ++m)
    scratch.a_scale[m] = quantize_activations(A + static_cast<size_t>(m) * K, K, scratch.a_u8.data() + static_cast<size_t>(m) * K,
                                              &scratch.a_zero[m]);
}

void run(const std::string& what, const std::function<void()>& f) {
  try {
    f();
  } catch (const dnnl::error& e) {
    throw Error("oneDNN failed in " + what + ": " + e.what());
  }
}

// Whether oneDNN has a matmul for these types on this CPU (it throws "could not create a primitive
// descriptor" where it has none, e.g. bf16 without AVX-512).
bool has_native_kernel(int K, int nc, dnnl::memory::data_type sdt, dnnl::memory::data_type wdt,
                       dnnl::memory::data_type ddt) {
  try {
    const dnnl::matmul::primitive_desc pd(
        dnnl::matmul::desc(memory::desc({64, K}, sdt, tag::ab), memory::desc({K, nc}, wdt, tag::any),
                           memory::desc({64, nc}, ddt, tag::ab)),
        engine());
    return true;
  } catch (const dnnl::error&) {
    return false;
  }
}

// oneDNN's int8 matmul sums exactly only with VNNI dot products (or AMX). Without them (AVX2, AVX-512 before
// Cascade Lake) it multiplies with vpmaddubsw, whose pairwise int16 sums saturate on full-range int8 data:
// measured here (AVX2, oneDNN 2.6 "gemm:jit") errors of 8 on outputs of order 10. Those CPUs run the
// emulated path, which is exact. Follows the active ISA level, so a forced lower level (which also caps
// oneDNN) never takes the saturating kernel.
bool int8_dot_exact() {
  if (active_isa() >= Isa::kAvx512Bf16) return true;
  // A VNNI CPU without BF16 (Cascade Lake, Ice Lake) runs the avx512 level; oneDNN uses its VNNI kernel
  // there unless a forced level capped oneDNN below it.
  return std::string(isa_choice()) == "cpuid" && __builtin_cpu_supports("avx512vnni");
}

// A buffer for packed weights: 64-byte aligned; from 2 MB on, 2 MB aligned and backed by transparent huge
// pages where the kernel allows (THP "madvise" mode is the common default): the GEMMs stream these buffers,
// and with 4 KB pages the full model's 1.6 GB cost ~400 000 page faults at load and a TLB miss every 4 KB
// in the kernels.
template <class T>
std::unique_ptr<T, decltype(&std::free)> packed_buffer(size_t elements, int N, int K) {
  constexpr size_t kHuge = size_t{2} << 20;
  size_t bytes = (sizeof(T) * elements + 63) / 64 * 64;
  const bool huge = bytes >= kHuge;
  if (huge) bytes = (bytes + kHuge - 1) / kHuge * kHuge;
  void* p = std::aligned_alloc(huge ? kHuge : 64, bytes);
  if (!p) throw Error("out of memory packing a " + std::to_string(N) + "x" + std::to_string(K) + " layer");
  if (huge) ::madvise(p, bytes, MADV_HUGEPAGE);  // advice only: without it, 4 KB pages
  return {static_cast<T*>(p), &std::free};
}

}  // namespace

// bf16/int8: the weights of each column chunk packed on their own, so a chunk is one oneDNN matmul.
struct PackedLinear::State {
  Precision precision;
  // fp32: the weights packed into panels for dense_gemm; null for bf16/int8 (oneDNN's packed chunks below).
  std::unique_ptr<float, decltype(&std::free)> panels{nullptr, &std::free};
  std::vector<memory> chunks;          // packed, in the layout oneDNN chose for the chunk's shape and precision
  std::vector<memory::desc> chunk_desc;
  std::vector<float> bias;             // [N]
  std::vector<float> w_scale;          // int8: per output channel
  std::vector<int32_t> w_sum;          // int8: Σ_k W_q[n, k], to take the activations' zero point out of the sums
  // Where this CPU has no oneDNN kernel for the precision (oneDNN 2.6: bf16 matmul needs AVX-512, int8
  // matmul AVX-512 or AVX-VNNI), the same arithmetic through fp32 sgemm: `widened` holds the rounded
  // weights as floats ([N, K]: bf16 values, or int8 values with w_scale), and the activations are rounded
  // the same way per call. bf16 products are exact in fp32, so this is a bf16 GEMM with fp32 accumulation;
  // int8 sums are exact integers up to 2^24 (|(q − zero)·q| <= 255·127: exact for K <= 518, within 2^-24
  // relative beyond). It costs fp32 memory and fp32 speed: a fallback that keeps every precision working.
  bool emulated = false;
  std::vector<float> widened;  // also fp32 on oneDNN (gemm.gemm == kOneDnn): W itself, [N, K]
  GemmChoice gemm;
};

PackedLinear::PackedLinear(const float* W, const float* bias, int N, int K, Precision p)
    : PackedLinear(W, bias, N, K, p,
                   p == Precision::kF32 ? choose_dense_gemm(N, K, omp_get_max_threads()) : GemmChoice{DenseGemm::kOwn, "", 0, 0}) {}

PackedLinear::PackedLinear(const float* W, const float* bias, int N, int K, Precision p, DenseGemm gemm)
    : PackedLinear(W, bias, N, K, p, GemmChoice{gemm, p == Precision::kF32 ? "named by the caller" : "", 0, 0}) {}

PackedLinear::PackedLinear(const float* W, const float* bias, int N, int K, Precision p, const GemmChoice& choice)
    : n_(N), k_(K) {
  auto s = std::make_shared<State>();
  s->precision = p;
  s->bias.assign(bias, bias + N);
  s->gemm = choice;
  if (p == Precision::kF32 && choice.gemm == DenseGemm::kOneDnn) {
    s->widened.assign(W, W + static_cast<size_t>(N) * K);  // sgemm reads W in PyTorch's [N, K] layout
    s_ = std::move(s);
    return;
  }
  if (p == Precision::kF32) {
    s->panels = packed_buffer<float>(dense_packed_floats(N, K), N, K);
    pack_dense_weights(W, N, K, s->panels.get(), omp_get_max_threads());
    s_ = std::move(s);
    return;
  }
  run("packing weights", [&] {
    const dt wdt = p == Precision::kBF16 ? dt::bf16 : dt::s8;
    const dt sdt = p == Precision::kInt8 ? dt::u8 : wdt;
    const dt ddt = p == Precision::kInt8 ? dt::s32 : dt::f32;
    const void* src = nullptr;
    std::vector<uint16_t> b16;
    std::vector<int8_t> q8;
    if (p == Precision::kBF16) {
      b16.resize(static_cast<size_t>(N) * K);
      const long count = static_cast<long>(b16.size());
#pragma omp parallel for schedule(static)
      for (long i = 0; i < count; ++i) b16[i] = float_to_bf16(W[i]);
      src = b16.data();
    } else {
      q8.resize(static_cast<size_t>(N) * K);
      s->w_scale.resize(N);
      s->w_sum.resize(N);
#pragma omp parallel for schedule(static)
      for (int n = 0; n < N; ++n) {
        int8_t* q = q8.data() + static_cast<size_t>(n) * K;
        s->w_scale[n] = quantize_row(W + static_cast<size_t>(n) * K, K, q);
        s->w_sum[n] = std::accumulate(q, q + K, int32_t{0});
      }
      src = q8.data();
    }
    const size_t elem = p == Precision::kBF16 ? 2 : 1;
    if (!has_native_kernel(K, std::min(kColumnChunk, N), sdt, wdt, ddt) || (p == Precision::kInt8 && !int8_dot_exact())) {
      s->emulated = true;
      s->widened.resize(static_cast<size_t>(N) * K);
      const long count = static_cast<long>(s->widened.size());
#pragma omp parallel for schedule(static)
      for (long i = 0; i < count; ++i) s->widened[i] = p == Precision::kBF16 ? bf16_to_float(b16[i]) : q8[i];
      return;
    }
    dnnl::stream stream(engine());
    for (int c = 0; c < column_chunks(N); ++c) {
      const int n0 = c * kColumnChunk, nc = std::min(kColumnChunk, N - n0);
      // The packed layout does not depend on M (checked for oneDNN 2.6); any M gives the same descriptor.
      const dnnl::matmul::primitive_desc pd(
          dnnl::matmul::desc(memory::desc({64, K}, sdt, tag::ab), memory::desc({K, nc}, wdt, tag::any),
                             memory::desc({64, nc}, ddt, tag::ab)),
          engine());
      s->chunk_desc.push_back(pd.weights_desc());
      s->chunks.emplace_back(pd.weights_desc(), engine());
      // Rows n0.. of W[N, K] row-major are the [K, nc] matrix in "ba" order.
      const char* at = static_cast<const char*>(src) + static_cast<size_t>(n0) * K * elem;
      memory plain(memory::desc({K, nc}, wdt, tag::ba), engine(), const_cast<char*>(at));
      dnnl::reorder(plain, s->chunks.back()).execute(stream, plain, s->chunks.back());
    }
    stream.wait();
  });
  s_ = std::move(s);
}

size_t PackedLinear::packed_bytes() const {
  size_t bytes = 0;
  if (s_ && s_->panels) return sizeof(float) * dense_packed_floats(n_, k_);
  if (s_ && !s_->widened.empty()) return s_->widened.size() * sizeof(float);
  if (s_)
    for (const auto& d : s_->chunk_desc) bytes += d.get_size();
  return bytes;
}

namespace {

// out[m, :n] = (accumulate ? out[m, :n] : 0) + in[m, :n] for M rows; `in` dense [M, n], out row stride ldo.
void store_rows(const float* in, int M, int n, float* out, int ldo, bool accumulate) {
  for (int m = 0; m < M; ++m) {
    const float* src = in + static_cast<long>(m) * n;
    float* dst = out + static_cast<long>(m) * ldo;
    if (accumulate)
      for (int j = 0; j < n; ++j) dst[j] += src[j];
    else
      std::copy_n(src, n, dst);
  }
}

}  // namespace

std::string PackedLinear::kernel_name() const {
  if (!s_) return "";
  if (s_->panels) return std::string("pairrm packed-panel GEMM (") + isa_name(active_isa()) + " kernels)";
  if (s_->precision == Precision::kF32)
    return "oneDNN sgemm (fp32, one row per call, " + s_->gemm.how + ")";
  if (s_->emulated) return std::string("oneDNN sgemm on ") + precision_name(s_->precision) + "-rounded values (no native kernel on this CPU)";
  std::string name;
  run("kernel lookup", [&] {
    const int nc = std::min(kColumnChunk, n_);
    const bool int8 = s_->precision == Precision::kInt8;
    const dnnl::matmul::primitive_desc pd(
        dnnl::matmul::desc(memory::desc({64, k_}, int8 ? dt::u8 : dt::bf16, tag::ab), s_->chunk_desc.front(),
                           memory::desc({64, nc}, int8 ? dt::s32 : dt::f32, tag::ab)),
        engine());
    name = pd.impl_info_str();
  });
  return name;
}

void PackedLinear::forward(const float* A, int M, float* C, Epilogue e, LinearScratch& scratch, int ldc, int threads,
                           const float* residual) const {
  if (M == 0) return;
  const State& s = *s_;
  const int N = n_, K = k_;
  if (ldc == 0) ldc = N;
  const bool accumulate = e == Epilogue::kAccumulate;
  if (accumulate && !residual) residual = C;
  if (s.panels) return forward_panels(A, M, C, e, ldc, threads, residual);
  if (accumulate && residual != C)  // oneDNN's paths add into C: the residual goes there first
    for (int m = 0; m < M; ++m) std::copy_n(residual + static_cast<long>(m) * ldc, N, C + static_cast<long>(m) * ldc);
  // Chunk c's dense output lives at chunk_out + c·M·kColumnChunk.
  scratch.chunk_out.resize(static_cast<size_t>(M) * column_chunks(N) * kColumnChunk);
  auto chunk_out = [&](int c) { return scratch.chunk_out.data() + static_cast<size_t>(c) * M * kColumnChunk; };
  if (!s.widened.empty()) return forward_sgemm(A, M, C, e, scratch, ldc, threads);
  // The activations converted once (row by row: the same for any thread count), then one matmul per chunk.
  const void* a_ptr = nullptr;
  if (s.precision == Precision::kBF16) {
    scratch.a_bf16.resize(static_cast<size_t>(M) * K);
    uint16_t* out = scratch.a_bf16.data();
#pragma omp parallel for schedule(static) num_threads(threads)
    for (long i = 0; i < static_cast<long>(M) * K; ++i) out[i] = float_to_bf16(A[i]);
    a_ptr = out;
  } else {
    quantize_rows(A, M, K, scratch, threads);
    scratch.acc.resize(static_cast<size_t>(M) * column_chunks(N) * kColumnChunk);
    a_ptr = scratch.a_u8.data();
  }
  for_each_chunk(column_chunks(N), threads, [&](int c) {
    const int n0 = c * kColumnChunk, nc = std::min(kColumnChunk, N - n0);
    float* out = chunk_out(c);
    run("linear", [&] {
      dnnl::stream stream(engine());
      const memory::desc out_md({M, nc}, dt::f32, tag::ab);
      if (s.precision == Precision::kBF16) {
        // out = epilogue(A·Wᵀ + b) dense, then stored or added: the same sums as oneDNN's sum post-op.
        dnnl::post_ops ops;
        if (e == Epilogue::kGelu) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f);
        dnnl::primitive_attr attr;
        attr.set_post_ops(ops);
        const memory::desc a_md({M, K}, dt::bf16, tag::ab), bias_md({1, nc}, dt::f32, tag::ab);
        const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, s.chunk_desc[c], bias_md, out_md), attr, engine());
        memory a(a_md, engine(), const_cast<void*>(a_ptr)), dst(out_md, engine(), out);
        memory b(bias_md, engine(), const_cast<float*>(s.bias.data() + n0));
        dnnl::matmul(pd).execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, s.chunks[c]}, {DNNL_ARG_BIAS, b}, {DNNL_ARG_DST, dst}});
        stream.wait();
        store_rows(out, M, nc, C + n0, ldc, accumulate);
        return;
      }
      // int8: int32 accumulators, dequantized with both scales, then the epilogue.
      const memory::desc a_md({M, K}, dt::u8, tag::ab), acc_md({M, nc}, dt::s32, tag::ab);
      const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, s.chunk_desc[c], acc_md), engine());
      int32_t* acc_at = scratch.acc.data() + static_cast<size_t>(c) * M * kColumnChunk;
      memory a(a_md, engine(), const_cast<void*>(a_ptr)), acc(acc_md, engine(), acc_at);
      dnnl::matmul(pd).execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, s.chunks[c]}, {DNNL_ARG_DST, acc}});
      stream.wait();
      const bool gelu_after = e == Epilogue::kGelu;
      for (int m = 0; m < M; ++m) {
        const int32_t* in = acc_at + static_cast<size_t>(m) * nc;
        float* dst = gelu_after ? out + static_cast<size_t>(m) * nc : C + static_cast<size_t>(m) * ldc + n0;
        const float sa = scratch.a_scale[m];
        const int32_t zero = scratch.a_zero[m];
        const float* ws = s.w_scale.data() + n0;
        const int32_t* wsum = s.w_sum.data() + n0;
        const float* bias = s.bias.data() + n0;
        // Σ (q_a − zero)·q_w = acc − zero·Σ q_w, exact in int32 (|acc| <= 255·127·K: K < 66 000).
        if (accumulate)
          for (int n = 0; n < nc; ++n) dst[n] += static_cast<float>(in[n] - zero * wsum[n]) * sa * ws[n] + bias[n];
        else
          for (int n = 0; n < nc; ++n) dst[n] = static_cast<float>(in[n] - zero * wsum[n]) * sa * ws[n] + bias[n];
      }
      if (gelu_after) {
        gelu(out, static_cast<long>(M) * nc);
        store_rows(out, M, nc, C + n0, ldc, false);
      }
    });
  });
}

// Only pairrm's own GEMM: oneDNN's bf16 kernels sum in an order that depends on M, and its int8 kernel, exact
// in int32 on VNNI, was measured slower on tall M (the dequantised chunks leave L2: 8 × 300 tokens 0.35 → 0.43 s
// per pair), so both keep one row per call.
bool PackedLinear::rows_independent() const { return s_ && s_->panels; }

const GemmChoice& PackedLinear::gemm_choice() const {
  static const GemmChoice none;
  return s_ ? s_->gemm : none;
}

void PackedLinear::forward_panels(const float* A, int M, float* C, Epilogue e, int ldc, int threads,
                                  const float* residual) const {
  const State& s = *s_;
  const int panels = (n_ + kPanelWidth - 1) / kPanelWidth;
  // The columns split in contiguous panel ranges, one per thread: any split gives the same bits (dense_gemm.h).
  const int parts = std::max(1, std::min(threads, panels));
  for_each_chunk(parts, parts, [&](int part) {
    thread_local std::vector<float> a_block;  // grows once per thread, then is reused
    a_block.resize(dense_gemm_scratch_floats(M));
    const int p0 = panels * part / parts, p1 = panels * (part + 1) / parts;
    dense_gemm(A, k_, M, k_, s.panels.get(), n_, s.bias.data(), C, ldc, residual, p0, p1, a_block.data());
  });
  if (e != Epilogue::kGelu) return;
  // GELU row block by row block (oneDNN's kernel wants contiguous rows: ldc == N there, the FFN's buffer).
  const int blocks = std::max(1, std::min(threads, M));
  for_each_chunk(blocks, blocks, [&](int b) {
    const int m0 = M * b / blocks, m1 = M * (b + 1) / blocks;
    if (ldc == n_) return gelu(C + static_cast<long>(m0) * ldc, static_cast<long>(m1 - m0) * n_);
    for (int m = m0; m < m1; ++m) gelu(C + static_cast<long>(m) * ldc, n_);
  });
}

// oneDNN's sgemm on `widened`, in fixed column chunks: fp32 where it is the chosen GEMM (A as it is), or the
// bf16/int8 arithmetic on rounded values where oneDNN has no kernel for them.
void PackedLinear::forward_sgemm(const float* A, int M, float* C, Epilogue e, LinearScratch& scratch, int ldc,
                                 int threads) const {
  const State& s = *s_;
  const int N = n_, K = k_;
  const bool int8 = s.precision == Precision::kInt8;
  // The activations rounded as the native path rounds them, kept as floats.
  scratch.a_wide.resize(s.precision == Precision::kF32 ? 0 : static_cast<size_t>(M) * K);
  const float* a = s.precision == Precision::kF32 ? A : scratch.a_wide.data();
  float* wide = scratch.a_wide.data();
  if (int8) {
    quantize_rows(A, M, K, scratch, threads);
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int m = 0; m < M; ++m) {
      const uint8_t* q = scratch.a_u8.data() + static_cast<size_t>(m) * K;
      const int32_t zero = scratch.a_zero[m];
      for (int k = 0; k < K; ++k) wide[static_cast<size_t>(m) * K + k] = static_cast<float>(q[k] - zero);
    }
  } else if (s.precision == Precision::kBF16) {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (long i = 0; i < static_cast<long>(M) * K; ++i) wide[i] = bf16_to_float(float_to_bf16(A[i]));
  }
  for_each_chunk(column_chunks(N), threads, [&](int c) {
    const int n0 = c * kColumnChunk, nc = std::min(kColumnChunk, N - n0);
    float* out = scratch.chunk_out.data() + static_cast<size_t>(c) * M * kColumnChunk;
    const dnnl_status_t st =
        dnnl_sgemm('N', 'T', M, nc, K, 1.f, a, K, s.widened.data() + static_cast<size_t>(n0) * K, K, 0.f, out, nc);
    if (st != dnnl_success) throw Error("oneDNN sgemm failed in linear (status " + std::to_string(st) + ")");
    for (int m = 0; m < M; ++m) {
      float* row = out + static_cast<size_t>(m) * nc;
      const float sa = int8 ? scratch.a_scale[m] : 1.f;
      for (int n = 0; n < nc; ++n) row[n] = (int8 ? row[n] * sa * s.w_scale[n0 + n] : row[n]) + s.bias[n0 + n];
    }
    if (e == Epilogue::kGelu) gelu(out, static_cast<long>(M) * nc);
    store_rows(out, M, nc, C + n0, ldc, e == Epilogue::kAccumulate);
  });
}

void gelu(float* x, long count) {
  if (count == 0) return;
  run("gelu", [&] {
    const memory::desc md({count}, dt::f32, tag::a);
    const dnnl::eltwise_forward::primitive_desc pd(
        dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::eltwise_gelu_erf, md, 0.f, 0.f),
        engine());
    memory m(md, engine(), x);
    dnnl::stream stream(engine());
    dnnl::eltwise_forward(pd).execute(stream, {{DNNL_ARG_SRC, m}, {DNNL_ARG_DST, m}});
    stream.wait();
  });
}

}  // namespace pairrm::kernels
