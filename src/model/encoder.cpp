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

// A group of rows that share their dense-layer GEMMs: the rows' tokens one after another in x[tokens, H].
struct Group {
  std::vector<size_t> rows;  // indices into encoder_forward's rows
  long tokens = 0;
  int longest = 0;
};

// What one group needs from encoder_forward besides its buffers.
struct GroupContext {
  const ModelConfig& c;
  const Weights& w;
  const RelativeProjections& rp;
  const std::vector<PackedLayer>& layers;
  const std::vector<RowRef>& rows;
  const int* rel_center;            // relative-index table, centred
  const kernels::AttentionShape& shape;
  const LayerObserver& observer;
};

// Attention scratch of one row of up to `longest` tokens on one thread.
long attention_lane_floats(const ModelConfig& c, int longest) {
  return kernels::attention_scratch_floats(longest, c.attention_span()) + kernels::attention_shared_floats(longest);
}

void size_buffers(const ModelConfig& c, RowBuffers& b, long tokens, int longest, int threads, bool profile) {
  const long H = c.hidden_size;
  sized(b.qkv, 3 * tokens * H);
  sized(b.ctx, tokens * H);
  sized(b.tmp, tokens * H);
  sized(b.ffn, std::min<long>(tokens, kFfnBlockTokens) * c.intermediate_size);
  // Room for one row per thread (rows side by side), which also holds one row on every thread (heads in
  // parallel: the per-thread scratch times threads, plus the shared part once).
  sized(b.attn_scratch, attention_lane_floats(c, longest) * std::max(1, threads));
  b.profile = Profile{profile};
}

// One layer's attention block, row by row of the group (attention never mixes rows): ctx = attention(x).
// With rows for every thread, rows run side by side, one thread each (a row's heads then run one after
// another): each row's working set stays in one core's cache and no fork/join per row. Otherwise each row
// runs its heads on every thread. The attention kernel splits its work by head, so a row gets the same bits
// either way.
void attention_rows(const GroupContext& g, const Group& group, size_t l, const float* qkv, float* ctx, int threads,
                    RowBuffers& ws) {
  const long H = g.c.hidden_size;
  const PackedLayer& P = g.layers[l];
  std::vector<long> first(group.rows.size() + 1, 0);  // token offset of each row in the group
  for (size_t k = 0; k < group.rows.size(); ++k) first[k + 1] = first[k] + g.rows[group.rows[k]].length;
  auto attend = [&](size_t k, int thr, float* scratch) {
    const int n = g.rows[group.rows[k]].length;
    kernels::AttentionShape shape = g.shape;
    shape.length = n;
    shape.bf16_products = P.bf16_attention;
    const float* q = qkv + first[k] * 3 * H;
    // disentangled_attention wants rel_index[d + n - 1]; the table is centred at its longest row - 1.
    kernels::disentangled_attention(shape, q, q + H, q + 2 * H, 3 * H, g.rp.pos_key[l].data(), g.rp.pos_query[l].data(),
                                    g.rel_center - (n - 1), ctx + first[k] * H, H, scratch, thr);
  };
  const int lanes = std::min<int>(threads, static_cast<int>(group.rows.size()));
  if (lanes < 2) {
    for (size_t k = 0; k < group.rows.size(); ++k) attend(k, threads, ws.attn_scratch.data());
    return;
  }
  const long per_lane = attention_lane_floats(g.c, group.longest);
  std::exception_ptr error;
#pragma omp parallel num_threads(lanes)
  {
    omp_set_num_threads(1);
    float* scratch = ws.attn_scratch.data() + per_lane * omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
    for (size_t k = 0; k < group.rows.size(); ++k) {
      try {
        attend(k, 1, scratch);
      } catch (...) {
#pragma omp critical
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

// The group through every layer, in place in x[group.tokens, H], on `threads` threads. Every dense layer is
// one GEMM over all the group's tokens; the attention runs row by row. Each kernel gives a row the same bits
// whatever else is in the group (the GEMMs' sums run in a fixed order per element, dense_gemm.h; a group
// of one row where the precision's GEMM lacks that property) and whatever the thread count (every kernel
// splits its work in fixed pieces).
void encode_group(const GroupContext& g, const Group& group, float* x, int threads, RowBuffers& ws) {
  const ModelConfig& c = g.c;
  const int H = c.hidden_size;
  const int T = static_cast<int>(group.tokens);
  float *qkv = ws.qkv.data(), *ctx = ws.ctx.data(), *tmp = ws.tmp.data(), *ffn = ws.ffn.data();
  Profile& prof = ws.profile;
  auto observe = [&](int layer) {
    if (!g.observer) return;
    const float* state = x;
    for (size_t r : group.rows) {
      g.observer(static_cast<int>(r), layer, state, g.rows[r].length);
      state += static_cast<long>(g.rows[r].length) * H;
    }
  };
  observe(0);
  for (size_t l = 0; l < g.w.layers.size(); ++l) {
    const LayerWeights& L = g.w.layers[l];
    const PackedLayer& P = g.layers[l];
    {
      ScopedTimer t(prof.enabled, &prof.gemm_s);
      P.qkv.forward(x, T, qkv, kernels::Epilogue::kStore, ws.linear, 3 * H, threads);  // [T, 3H]: Q | K | V
    }
    {
      ScopedTimer t(prof.enabled, &prof.attention_s);
      attention_rows(g, group, l, qkv, ctx, threads, ws);
    }
    // h = LayerNorm(ctx·Wo + bo + x): the residual x read by the GEMM as its start (no copy)
    {
      ScopedTimer t(prof.enabled, &prof.gemm_s);
      P.out.forward(ctx, T, tmp, kernels::Epilogue::kAccumulate, ws.linear, 0, threads, x);
    }
    kernels::layer_norm(tmp, x, T, H, L.attn_ln_w.data, L.attn_ln_b.data, c.layer_norm_eps);
    // out = LayerNorm(gelu(h·W1 + b1)·W2 + b2 + h), in blocks of tokens
    for (long b = 0; b < T; b += kFfnBlockTokens) {
      const int m = static_cast<int>(std::min<long>(kFfnBlockTokens, T - b));
      ScopedTimer t(prof.enabled, &prof.gemm_s);
      P.ffn_in.forward(x + b * H, m, ffn, kernels::Epilogue::kGelu, ws.linear, 0, threads);
      P.ffn_out.forward(ffn, m, tmp + b * H, kernels::Epilogue::kAccumulate, ws.linear, 0, threads, x + b * H);
    }
    kernels::layer_norm(tmp, x, T, H, L.out_ln_w.data, L.out_ln_b.data, c.layer_norm_eps);
    observe(static_cast<int>(l) + 1);
  }
}

// Rows in order into groups of at most `group_tokens` tokens (a longer row is a group of its own) where the
// precision's GEMMs give a row the same bits in any group; one row per group where they do not.
std::vector<Group> group_rows(const std::vector<RowRef>& rows, bool rows_share_gemms, long group_tokens) {
  std::vector<Group> groups;
  for (size_t r = 0; r < rows.size(); ++r) {
    const int n = rows[r].length;
    if (n == 0) continue;
    if (groups.empty() || !rows_share_gemms || groups.back().tokens + n > group_tokens) groups.emplace_back();
    Group& g = groups.back();
    g.rows.push_back(r);
    g.tokens += n;
    g.longest = std::max(g.longest, n);
  }
  return groups;
}

// Embeddings: x = LayerNorm(word_embeddings[ids]) for every token of every row. No padding exists, so the
// attention mask is all ones.
void embed(const ModelConfig& c, const Weights& w, const std::vector<RowRef>& rows, long tokens, float* x) {
  const int H = c.hidden_size;
  long t = 0;
  for (const RowRef& r : rows) {
    for (int i = 0; i < r.length; ++i, ++t) {
      const int32_t id = r.ids[i];
      if (id < 0 || id >= c.vocab_size)
        throw Error("token id " + std::to_string(id) + " is outside the vocabulary (" + std::to_string(c.vocab_size) + ")");
      std::copy_n(w.word_embeddings.data + static_cast<long>(id) * H, H, x + t * H);
    }
  }
  kernels::layer_norm(x, x, static_cast<int>(tokens), H, w.emb_ln_w.data, w.emb_ln_b.data, c.layer_norm_eps);
}

// Forms the groups (group_rows) and runs them. Groups of short rows run side by side, one thread each, as
// long as there is one for every thread: single rows where rows cannot share a GEMM, groups of up to
// kLaneGroupTokens where they can and the batch makes a group for every thread (else groups of up to
// kGroupTokens, whose GEMMs keep every thread busy); the rest, and every group under an observer (not
// thread-safe), run one after another on every thread. Either way a row gets the same bits (encode_group).
void run_groups(const GroupContext& g, const std::vector<long>& offset, int threads, Workspace& ws) {
  const bool shared = g.layers.empty() || g.layers.front().rows_share_gemms;
  const int team = std::max(1, threads);
  auto fits_a_lane = [&](const Group& group) { return group.longest <= kRowParallelMaxTokens && !g.observer; };
  std::vector<Group> groups = group_rows(g.rows, shared, kLaneGroupTokens);
  const long lane_ready = std::count_if(groups.begin(), groups.end(), fits_a_lane);
  const bool side_by_side = !shared || (team > 1 && lane_ready >= team);
  if (!side_by_side) groups = group_rows(g.rows, shared, kGroupTokens);
  std::vector<const Group*> team_groups, lane_groups;
  for (const Group& group : groups) (side_by_side && fits_a_lane(group) ? lane_groups : team_groups).push_back(&group);
  const size_t leftover = lane_groups.size() % team;
  team_groups.insert(team_groups.end(), lane_groups.end() - leftover, lane_groups.end());
  lane_groups.resize(lane_groups.size() - leftover);
  auto size_for = [&](const std::vector<const Group*>& list, RowBuffers& buffers, int thr) {
    long tokens = 0;
    int longest = 0;
    for (const Group* group : list) {
      tokens = std::max(tokens, group->tokens);
      longest = std::max(longest, group->longest);
    }
    size_buffers(g.c, buffers, tokens, longest, thr, ws.profile.enabled);
  };
  const int lanes = lane_groups.empty() ? 0 : team;
  if (!team_groups.empty()) size_for(team_groups, ws.main, team);
  if (static_cast<int>(ws.lanes.size()) < lanes) ws.lanes.resize(lanes);
  for (int k = 0; k < lanes; ++k) size_for(lane_groups, ws.lanes[k], 1);

  const long H = g.c.hidden_size;
  float* x = ws.x.data();
  auto run = [&](const Group& group, int thr, RowBuffers& buffers) {
    encode_group(g, group, x + offset[group.rows.front()] * H, thr, buffers);
  };
  for (const Group* group : team_groups) run(*group, team, ws.main);
  if (!lane_groups.empty()) {
    std::exception_ptr error;
#pragma omp parallel num_threads(lanes)
    {
      // One thread per group, also inside the kernels: OpenMP loops and oneDNN see one thread whether this
      // team has one member or several, so the arithmetic is the same either way.
      omp_set_num_threads(1);
      RowBuffers& buffers = ws.lanes[omp_get_thread_num()];
#pragma omp for schedule(dynamic, 1)
      for (size_t k = 0; k < lane_groups.size(); ++k) {
        try {
          run(*lane_groups[k], 1, buffers);
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
    if (!team_groups.empty()) add(ws.main.profile, 1.0);
    for (int k = 0; k < lanes; ++k) add(ws.lanes[k].profile, 1.0 / lanes);
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
    const size_t HH = static_cast<size_t>(H) * H;
    std::copy_n(L.q_w.data, HH, qkv_w.data());
    std::copy_n(L.k_w.data, HH, qkv_w.data() + HH);
    std::copy_n(L.v_w.data, HH, qkv_w.data() + 2 * HH);
    std::copy_n(L.q_b.data, H, qkv_b.data());
    std::copy_n(L.k_b.data, H, qkv_b.data() + H);
    std::copy_n(L.v_b.data, H, qkv_b.data() + 2 * H);
    out[l].qkv = kernels::PackedLinear(qkv_w.data(), qkv_b.data(), 3 * H, H, precision);
    out[l].rows_share_gemms = out[l].qkv.rows_independent() && out[l].out.rows_independent() &&
                              out[l].ffn_in.rows_independent() && out[l].ffn_out.rows_independent();
    // The layer's dense weights now live packed: their pages in the mapping need not stay resident (released
    // layer by layer, so that the mapping and the packed copy never both hold the whole model).
    if (w.file) {
      for (const Matrix* m : {&L.q_w, &L.k_w, &L.v_w, &L.attn_out_w}) w.file->mapping().release(m->data, sizeof(float) * H * H);
      for (const Matrix* m : {&L.ffn_in_w, &L.ffn_out_w}) w.file->mapping().release(m->data, sizeof(float) * H * I);
    }
  }
  return out;
}

void encoder_forward(const ModelConfig& c, const Weights& w, const RelativeProjections& rp,
                     const std::vector<PackedLayer>& layers, const std::vector<RowRef>& rows, int threads, Workspace& ws,
                     const LayerObserver& observer) {
  const int H = c.hidden_size;
  long T = 0;
  int max_len = 0;
  std::vector<long> offset(rows.size() + 1, 0);
  for (size_t r = 0; r < rows.size(); ++r) {
    if (rows[r].length < 0) throw Error("row of negative length");
    T += rows[r].length;
    max_len = std::max(max_len, rows[r].length);
    offset[r + 1] = offset[r] + rows[r].length;
  }
  if (T == 0) return;
  ScopedTimer total(ws.profile.enabled, &ws.profile.total_s);
  float* x = sized(ws.x, T * H);
  embed(c, w, rows, T, x);
  kernels::relative_index_table(max_len, c.position_buckets, c.max_relative_positions, c.attention_span(), ws.rel_index);
  kernels::AttentionShape shape;
  shape.hidden = H;
  shape.heads = c.num_heads;
  shape.span = c.attention_span();
  shape.c2p = c.c2p;
  shape.p2c = c.p2c;
  shape.scale = std::sqrt(static_cast<float>(c.head_dim()) * static_cast<float>(1 + c.c2p + c.p2c));
  const GroupContext g{c, w, rp, layers, rows, ws.rel_index.data() + (max_len - 1), shape, observer};

  run_groups(g, offset, threads, ws);
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
