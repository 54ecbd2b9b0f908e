#include "model/encoder.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <string>

#include "kernels/attention.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/relative_position.h"
#include "pairrm/pairrm.h"

namespace pairrm {
namespace {

// The FFN runs over blocks of this many tokens so its [tokens, intermediate] buffer stays bounded.
constexpr long kFfnBlockTokens = 1024;

// Adds the wall time of its scope to *sink when profiling is on.
class ScopedTimer {
 public:
  ScopedTimer(bool on, double* sink) : sink_(on ? sink : nullptr) {
    if (sink_) start_ = std::chrono::steady_clock::now();
  }
  ~ScopedTimer() {
    if (sink_) *sink_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  double* sink_;
  std::chrono::steady_clock::time_point start_;
};

template <class T>
T* sized(std::vector<T>& v, long n) {
  if (static_cast<long>(v.size()) < n) v.resize(n);
  return v.data();
}

}  // namespace

RelativeProjections compute_relative_projections(const ModelConfig& c, const Weights& w) {
  RelativeProjections rp;
  const int H = c.hidden_size, rows = 2 * c.attention_span();
  rp.rel.assign(w.rel_embeddings.data, w.rel_embeddings.data + static_cast<long>(rows) * H);
  if (c.norm_rel_embeddings)
    kernels::layer_norm(rp.rel.data(), rp.rel.data(), rows, H, w.enc_ln_w.data, w.enc_ln_b.data, c.layer_norm_eps);
  for (const LayerWeights& L : w.layers) {
    rp.pos_key.emplace_back(static_cast<long>(rows) * H);
    rp.pos_query.emplace_back(static_cast<long>(rows) * H);
    const int threads = omp_get_max_threads();  // chunked: the same bits whatever this is
    kernels::linear(rp.rel.data(), rows, H, H, L.k_w.data, H, L.k_b.data, rp.pos_key.back().data(), H, false, threads);
    kernels::linear(rp.rel.data(), rows, H, H, L.q_w.data, H, L.q_b.data, rp.pos_query.back().data(), H, false, threads);
  }
  return rp;
}

namespace {

// One row through every layer, in place in x[length, H], on `threads` threads. Rows never share a GEMM:
// oneDNN's sgemm rounds differently for different M (measured: three classes of M for one row), so running
// each row alone is what makes its logit bitwise independent of the rest of the batch; every kernel splits
// its work the same way for any thread count (column chunks, heads, token rows), so the thread count does
// not change it either.
void encode_row(const ModelConfig& c, const Weights& w, const RelativeProjections& rp,
                const std::vector<PackedLayer>& layers, float* x, int n,
                int threads, RowBuffers& ws, const int* rel_index, const kernels::AttentionShape& base,
                const std::function<void(int, const float*)>& observe) {
  const int H = c.hidden_size;
  const long nH = static_cast<long>(n) * H;
  float* qkv = ws.qkv.data();
  float* ctx = ws.ctx.data();
  float* tmp = ws.tmp.data();
  float* ffn = ws.ffn.data();
  kernels::AttentionShape shape = base;
  shape.length = n;
  Profile& prof = ws.profile;
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& L = w.layers[l];
    const PackedLayer& P = layers[l];
    {
      ScopedTimer t(prof.enabled, &prof.gemm_s);
      for (size_t part = 0; part < P.qkv.size(); ++part)  // [n, 3H]: Q | K | V
        P.qkv[part].forward(x, n, qkv + part * H, kernels::Epilogue::kStore, ws.linear, 3 * H, threads);
    }
    shape.bf16_products = P.bf16_attention;
    {
      ScopedTimer t(prof.enabled, &prof.attention_s);
      kernels::disentangled_attention(shape, qkv, qkv + H, qkv + 2 * H, 3 * H, rp.pos_key[l].data(),
                                      rp.pos_query[l].data(), rel_index, ctx, H, ws.attn_scratch.data(), threads);
    }
    // h = LayerNorm(ctx·Wo + bo + x)
    std::copy_n(x, nH, tmp);
    {
      ScopedTimer t(prof.enabled, &prof.gemm_s);
      P.out.forward(ctx, n, tmp, kernels::Epilogue::kAccumulate, ws.linear, 0, threads);
    }
    kernels::layer_norm(tmp, x, n, H, L.attn_ln_w.data, L.attn_ln_b.data, c.layer_norm_eps);
    // out = LayerNorm(gelu(h·W1 + b1)·W2 + b2 + h), in blocks of tokens
    std::copy_n(x, nH, tmp);
    for (long b = 0; b < n; b += kFfnBlockTokens) {
      const int m = static_cast<int>(std::min<long>(kFfnBlockTokens, n - b));
      ScopedTimer t(prof.enabled, &prof.gemm_s);
      P.ffn_in.forward(x + b * H, m, ffn, kernels::Epilogue::kGelu, ws.linear, 0, threads);
      P.ffn_out.forward(ffn, m, tmp + b * H, kernels::Epilogue::kAccumulate, ws.linear, 0, threads);
    }
    kernels::layer_norm(tmp, x, n, H, L.out_ln_w.data, L.out_ln_b.data, c.layer_norm_eps);
    if (observe) observe(static_cast<int>(l) + 1, x);
  }
}

}  // namespace

std::vector<PackedLayer> pack_layers(const ModelConfig& c, const Weights& w, Precision precision, bool bf16_attention) {
  const int H = c.hidden_size, I = c.intermediate_size;
  std::vector<PackedLayer> out(w.layers.size());
  std::vector<float> qkv_w(static_cast<size_t>(3) * H * H), qkv_b(static_cast<size_t>(3) * H);
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& L = w.layers[l];
    out[l].out = kernels::PackedLinear(L.attn_out_w.data, L.attn_out_b.data, H, H, precision);
    out[l].ffn_in = kernels::PackedLinear(L.ffn_in_w.data, L.ffn_in_b.data, I, H, precision);
    out[l].ffn_out = kernels::PackedLinear(L.ffn_out_w.data, L.ffn_out_b.data, H, I, precision);
    out[l].bf16_attention = bf16_attention;
    if (precision == Precision::kF32) {
      for (const auto* part : {&L.q_w, &L.k_w, &L.v_w}) {
        const Matrix& b = part == &L.q_w ? L.q_b : part == &L.k_w ? L.k_b : L.v_b;
        out[l].qkv.emplace_back(part->data, b.data, H, H, precision);
      }
      continue;
    }
    const size_t HH = static_cast<size_t>(H) * H;
    std::copy_n(L.q_w.data, HH, qkv_w.data());
    std::copy_n(L.k_w.data, HH, qkv_w.data() + HH);
    std::copy_n(L.v_w.data, HH, qkv_w.data() + 2 * HH);
    std::copy_n(L.q_b.data, H, qkv_b.data());
    std::copy_n(L.k_b.data, H, qkv_b.data() + H);
    std::copy_n(L.v_b.data, H, qkv_b.data() + 2 * H);
    out[l].qkv.emplace_back(qkv_w.data(), qkv_b.data(), 3 * H, H, precision);
  }
  return out;
}

void encoder_forward(const ModelConfig& c, const Weights& w, const RelativeProjections& rp,
                     const std::vector<PackedLayer>& layers, const std::vector<RowRef>& rows, int threads, Workspace& ws, const LayerObserver& observer) {
  const int H = c.hidden_size;
  long T = 0;
  int max_len = 0;
  for (const RowRef& r : rows) {
    if (r.length < 0) throw Error("row of negative length");
    T += r.length;
    max_len = std::max(max_len, r.length);
  }
  if (T == 0) return;
  ScopedTimer total(ws.profile.enabled, &ws.profile.total_s);
  float* x = sized(ws.x, T * H);
  const int span = c.attention_span();
  auto size_buffers = [&](RowBuffers& b, int len, int thr) {
    const long lenH = static_cast<long>(len) * H;
    sized(b.qkv, 3 * lenH);
    sized(b.ctx, lenH);
    sized(b.tmp, lenH);
    sized(b.ffn, std::min<long>(len, kFfnBlockTokens) * c.intermediate_size);
    sized(b.attn_scratch, kernels::attention_scratch_floats(len, span) * std::max(1, thr) +
                              kernels::attention_shared_floats(len));
    b.profile = Profile{ws.profile.enabled};
  };
  // Short rows run side by side, one thread each, as long as there is one for every thread; long rows, the
  // short ones left over, and every row under an observer (not thread-safe) run one after another on every
  // thread. Either way a row gets the same bits (see encode_row).
  const int team = std::max(1, threads);
  std::vector<size_t> team_rows, lane_rows;
  for (size_t r = 0; r < rows.size(); ++r) {
    if (rows[r].length == 0) continue;
    (rows[r].length > kRowParallelMaxTokens || observer ? team_rows : lane_rows).push_back(r);
  }
  const size_t leftover = lane_rows.size() % team;
  team_rows.insert(team_rows.end(), lane_rows.end() - leftover, lane_rows.end());
  lane_rows.resize(lane_rows.size() - leftover);
  int team_max = 0, lane_max = 0;
  for (size_t r : team_rows) team_max = std::max(team_max, rows[r].length);
  for (size_t r : lane_rows) lane_max = std::max(lane_max, rows[r].length);
  const int lanes = lane_rows.empty() ? 0 : team;
  if (!team_rows.empty()) size_buffers(ws.main, team_max, team);
  if (static_cast<int>(ws.lanes.size()) < lanes) ws.lanes.resize(lanes);
  for (int k = 0; k < lanes; ++k) size_buffers(ws.lanes[k], lane_max, 1);
  kernels::relative_index_table(max_len, c.position_buckets, c.max_relative_positions, span, ws.rel_index);

  // Embeddings: LayerNorm(word_embeddings[ids]). No padding exists, so the attention mask is all ones.
  long t = 0;
  for (const RowRef& r : rows) {
    for (int i = 0; i < r.length; ++i, ++t) {
      const int32_t id = r.ids[i];
      if (id < 0 || id >= c.vocab_size)
        throw Error("token id " + std::to_string(id) + " is outside the vocabulary (" + std::to_string(c.vocab_size) + ")");
      std::copy_n(w.word_embeddings.data + static_cast<long>(id) * H, H, x + t * H);
    }
  }
  kernels::layer_norm(x, x, static_cast<int>(T), H, w.emb_ln_w.data, w.emb_ln_b.data, c.layer_norm_eps);

  kernels::AttentionShape shape;
  shape.hidden = H;
  shape.heads = c.num_heads;
  shape.span = span;
  shape.c2p = c.c2p;
  shape.p2c = c.p2c;
  shape.scale = std::sqrt(static_cast<float>(c.head_dim()) * static_cast<float>(1 + c.c2p + c.p2c));
  const int* rel_center = ws.rel_index.data() + (max_len - 1);

  std::vector<long> offset(rows.size() + 1, 0);
  for (size_t r = 0; r < rows.size(); ++r) offset[r + 1] = offset[r] + rows[r].length;
  auto run = [&](size_t r, int thr, RowBuffers& buffers) {
    const int n = rows[r].length;
    float* xr = x + offset[r] * H;
    std::function<void(int, const float*)> observe;
    if (observer) {
      observe = [&](int layer, const float* state) { observer(static_cast<int>(r), layer, state, n); };
      observe(0, xr);
    }
    // disentangled_attention wants rel_index[d + n - 1]; the table is centred at max_len - 1.
    encode_row(c, w, rp, layers, xr, n, thr, buffers, rel_center - (n - 1), shape, observe);
  };
  for (size_t r : team_rows) run(r, team, ws.main);
  if (!lane_rows.empty()) {
    std::exception_ptr error;
#pragma omp parallel num_threads(lanes)
    {
      // One thread per row, also inside the kernels: OpenMP loops and oneDNN see one thread whether this
      // team has one member or several, so the row's arithmetic is the same either way.
      omp_set_num_threads(1);
      RowBuffers& buffers = ws.lanes[omp_get_thread_num()];
#pragma omp for schedule(dynamic, 1)
      for (size_t k = 0; k < lane_rows.size(); ++k) {
        try {
          run(lane_rows[k], 1, buffers);
        } catch (...) {
#pragma omp critical
          if (!error) error = std::current_exception();
        }
      }
    }
    if (error) std::rethrow_exception(error);
  }
  if (ws.profile.enabled) {  // side-by-side lanes overlap in time: count their mean
    auto add = [&](const Profile& p, double share) {
      ws.profile.gemm_s += p.gemm_s * share;
      ws.profile.attention_s += p.attention_s * share;
    };
    if (!team_rows.empty()) add(ws.main.profile, 1.0);
    for (int k = 0; k < lanes; ++k) add(ws.lanes[k].profile, 1.0 / lanes);
  }
}

double head_logit(const ModelConfig& c, const Weights& w, const float* s, const float* c1, const float* c2) {
  const int H = c.hidden_size;
  auto score = [&](const float* cand, int task) {
    double out = w.head2_b.data[task];
    for (int o = 0; o < H; ++o) {
      const float* row = w.head1_w.data + static_cast<long>(o) * 2 * H;
      double acc = w.head1_b.data[o];
      for (int i = 0; i < H; ++i) acc += static_cast<double>(row[i]) * s[i];
      for (int i = 0; i < H; ++i) acc += static_cast<double>(row[H + i]) * cand[i];
      out += static_cast<double>(w.head2_w.data[static_cast<long>(task) * H + o]) * std::tanh(acc);
    }
    return out;
  };
  double sum = 0;
  for (int task = 0; task < c.n_tasks; ++task) sum += score(c1, task) - score(c2, task);
  return sum / c.n_tasks;
}

}  // namespace pairrm
