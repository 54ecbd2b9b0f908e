#include "kernels/linear.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <oneapi/dnnl/dnnl.hpp>

#include "kernels/bf16.h"
#include "kernels/gemm.h"
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

void run(const std::string& what, const std::function<void()>& f) {
  try {
    f();
  } catch (const dnnl::error& e) {
    throw Error("oneDNN failed in " + what + ": " + e.what());
  }
}

}  // namespace

struct PackedLinear::State {
  Precision precision;
  const float* raw = nullptr;    // fp32: the weights in place
  memory weights;                // packed, in the layout oneDNN chose for this shape and precision
  memory::desc weights_desc;
  std::vector<float> bias;       // [N]
  std::vector<float> w_scale;    // int8: per output channel
};

PackedLinear::PackedLinear(const float* W, const float* bias, int N, int K, Precision p) : n_(N), k_(K) {
  auto s = std::make_shared<State>();
  s->precision = p;
  s->bias.assign(bias, bias + N);
  if (p == Precision::kF32) {
    s->raw = W;
    s_ = std::move(s);
    return;
  }
  run("packing weights", [&] {
    const dt wdt = p == Precision::kF32 ? dt::f32 : p == Precision::kBF16 ? dt::bf16 : dt::s8;
    const dt sdt = p == Precision::kInt8 ? dt::s8 : wdt;
    const dt ddt = p == Precision::kInt8 ? dt::s32 : dt::f32;
    // The packed layout does not depend on M (checked for oneDNN 2.6); any M gives the same descriptor.
    const dnnl::matmul::primitive_desc pd(
        dnnl::matmul::desc(memory::desc({64, K}, sdt, tag::ab), memory::desc({K, N}, wdt, tag::any),
                           memory::desc({64, N}, ddt, tag::ab)),
        engine());
    s->weights_desc = pd.weights_desc();
    s->weights = memory(s->weights_desc, engine());
    // W[N, K] row-major is the [K, N] matrix in "ba" order.
    std::vector<float> f32_copy;
    const void* src = W;
    std::vector<uint16_t> b16;
    std::vector<int8_t> q8;
    if (p == Precision::kBF16) {
      b16.resize(static_cast<size_t>(N) * K);
      const long count = static_cast<long>(b16.size());
#pragma omp parallel for schedule(static)
      for (long i = 0; i < count; ++i) b16[i] = float_to_bf16(W[i]);
      src = b16.data();
    } else if (p == Precision::kInt8) {
      q8.resize(static_cast<size_t>(N) * K);
      s->w_scale.resize(N);
#pragma omp parallel for schedule(static)
      for (int n = 0; n < N; ++n)
        s->w_scale[n] = quantize_row(W + static_cast<size_t>(n) * K, K, q8.data() + static_cast<size_t>(n) * K);
      src = q8.data();
    }
    memory plain(memory::desc({K, N}, wdt, tag::ba), engine(), const_cast<void*>(src));
    dnnl::stream stream(engine());
    dnnl::reorder(plain, s->weights).execute(stream, plain, s->weights);
    stream.wait();
  });
  s_ = std::move(s);
}

size_t PackedLinear::packed_bytes() const { return s_ && !s_->raw ? s_->weights_desc.get_size() : 0; }

void PackedLinear::forward(const float* A, int M, float* C, Epilogue e, LinearScratch& scratch, int ldc) const {
  if (M == 0) return;
  const State& s = *s_;
  const int N = n_, K = k_;
  if (ldc == 0) ldc = N;
  if (s.raw) {
    linear(A, M, K, K, s.raw, N, s.bias.data(), C, ldc, e == Epilogue::kAccumulate);
    if (e == Epilogue::kGelu) {
      if (ldc != N) throw Error("linear: GELU needs a contiguous output");
      gelu(C, static_cast<long>(M) * N);
    }
    return;
  }
  run("linear", [&] {
    dnnl::stream stream(engine());
    const memory::desc c_md({M, N}, dt::f32, memory::dims{ldc, 1});
    const memory::desc bias_md({1, N}, dt::f32, tag::ab);
    if (s.precision != Precision::kInt8) {
      dnnl::post_ops ops;
      if (e == Epilogue::kAccumulate) ops.append_sum(1.f);
      if (e == Epilogue::kGelu) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f);
      dnnl::primitive_attr attr;
      attr.set_post_ops(ops);
      const dt sdt = s.precision == Precision::kF32 ? dt::f32 : dt::bf16;
      const memory::desc a_md({M, K}, sdt, tag::ab);
      const void* a_ptr = A;
      if (s.precision == Precision::kBF16) {
        scratch.a_bf16.resize(static_cast<size_t>(M) * K);
        uint16_t* out = scratch.a_bf16.data();
#pragma omp parallel for schedule(static)
        for (long i = 0; i < static_cast<long>(M) * K; ++i) out[i] = float_to_bf16(A[i]);
        a_ptr = out;
      }
      const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, s.weights_desc, bias_md, c_md), attr, engine());
      memory a(a_md, engine(), const_cast<void*>(a_ptr)), c(c_md, engine(), C);
      memory b(bias_md, engine(), const_cast<float*>(s.bias.data()));
      dnnl::matmul(pd).execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, s.weights}, {DNNL_ARG_BIAS, b}, {DNNL_ARG_DST, c}});
      stream.wait();
      return;
    }
    // int8: quantize each row of A, accumulate in int32, dequantize with both scales, then the epilogue.
    scratch.a_s8.resize(static_cast<size_t>(M) * K);
    scratch.a_scale.resize(M);
    scratch.acc.resize(static_cast<size_t>(M) * N);
#pragma omp parallel for schedule(static)
    for (int m = 0; m < M; ++m)
      scratch.a_scale[m] = quantize_row(A + static_cast<size_t>(m) * K, K, scratch.a_s8.data() + static_cast<size_t>(m) * K);
    const memory::desc a_md({M, K}, dt::s8, tag::ab), acc_md({M, N}, dt::s32, tag::ab);
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, s.weights_desc, acc_md), engine());
    memory a(a_md, engine(), scratch.a_s8.data()), acc(acc_md, engine(), scratch.acc.data());
    dnnl::matmul(pd).execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, s.weights}, {DNNL_ARG_DST, acc}});
    stream.wait();
#pragma omp parallel for schedule(static)
    for (int m = 0; m < M; ++m) {
      const int32_t* in = scratch.acc.data() + static_cast<size_t>(m) * N;
      float* out = C + static_cast<size_t>(m) * ldc;
      const float sa = scratch.a_scale[m];
      if (e == Epilogue::kAccumulate)
        for (int n = 0; n < N; ++n) out[n] += static_cast<float>(in[n]) * sa * s.w_scale[n] + s.bias[n];
      else
        for (int n = 0; n < N; ++n) out[n] = static_cast<float>(in[n]) * sa * s.w_scale[n] + s.bias[n];
    }
    if (e == Epilogue::kGelu) {
      if (ldc != N) throw Error("linear: GELU needs a contiguous output");
      gelu(C, static_cast<long>(M) * N);
    }
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
