// The C API (include/pairrm/pairrm_c.h) over the C++ one: every call catches every exception and turns it
// into a return code plus a per-thread message, so nothing unwinds into C.
#include "pairrm/pairrm_c.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "pairrm/pairrm.h"
#include "pairrm/ranking.h"

struct pairrm_model {
  std::shared_ptr<const pairrm::Model> model;
};

struct pairrm_context {
  std::unique_ptr<pairrm::Context> context;  // holds its own reference to the model
};

namespace {

thread_local std::string last_error;

// Runs body(); on any exception records its message and returns fail.
template <class R, class Body>
R guarded(R fail, Body&& body) {
  try {
    last_error.clear();
    return body();
  } catch (const std::bad_alloc&) {
    last_error = "out of memory";
  } catch (const std::exception& e) {
    last_error = e.what();
  } catch (...) {
    last_error = "unknown error";
  }
  return fail;
}

// A C caller may store any int in an enum field or argument; in C++ loading an enum outside its
// enumerators' range is undefined, so enums from C are read as the int they are.
template <class Enum>
int raw_value(const Enum& e) {
  static_assert(sizeof(Enum) == sizeof(int), "C enums are int-sized");
  int v;
  std::memcpy(&v, &e, sizeof v);
  return v;
}

void require(bool ok, const char* message) {
  if (!ok) throw pairrm::Error(message);
}

pairrm::Precision to_precision(const pairrm_precision& p) {
  switch (raw_value(p)) {
    case PAIRRM_PRECISION_FP32: return pairrm::Precision::kF32;
    case PAIRRM_PRECISION_BF16: return pairrm::Precision::kBF16;
    case PAIRRM_PRECISION_INT8: return pairrm::Precision::kInt8;
  }
  throw pairrm::Error("pairrm_load_params.precision: not a pairrm_precision value");
}

pairrm::AttentionProducts to_attention(const pairrm_attention& a) {
  switch (raw_value(a)) {
    case PAIRRM_ATTENTION_AUTO: return pairrm::AttentionProducts::kAuto;
    case PAIRRM_ATTENTION_FP32: return pairrm::AttentionProducts::kFp32;
    case PAIRRM_ATTENTION_BF16: return pairrm::AttentionProducts::kBf16;
  }
  throw pairrm::Error("pairrm_load_params.attention: not a pairrm_attention value");
}

pairrm::CompareMode to_mode(const pairrm_compare_mode& m) {
  switch (raw_value(m)) {
    case PAIRRM_COMPARE_AB: return pairrm::CompareMode::kAB;
    case PAIRRM_COMPARE_BA: return pairrm::CompareMode::kBA;
    case PAIRRM_COMPARE_BOTH: return pairrm::CompareMode::kBoth;
  }
  throw pairrm::Error("pairrm_compare: mode is not a pairrm_compare_mode value");
}

std::string text(const char* s, const char* what) {
  if (!s) throw pairrm::Error(std::string(what) + " is NULL");
  return s;
}

}  // namespace

extern "C" {

const char* pairrm_version(void) { return pairrm::version(); }
const char* pairrm_last_error(void) { return last_error.c_str(); }

pairrm_load_params pairrm_load_params_default(void) {
  pairrm_load_params p;
  p.struct_size = sizeof(pairrm_load_params);
  p.precision = PAIRRM_PRECISION_FP32;
  p.attention = PAIRRM_ATTENTION_AUTO;
  p.special_tokens_as_ids = 0;
  p.byte_fallback = 0;
  p.source_max_length = 0;
  p.candidate_max_length = 0;
  return p;
}

pairrm_model* pairrm_model_load(const char* directory, const pairrm_load_params* params) {
  return guarded<pairrm_model*>(nullptr, [&] {
    pairrm_load_params p = pairrm_load_params_default();
    if (params) {
      // A caller's struct from an older header is shorter: what it lacks keeps the defaults.
      require(params->struct_size >= sizeof(size_t), "pairrm_load_params.struct_size is not set (use pairrm_load_params_default())");
      std::memcpy(&p, params, std::min(params->struct_size, sizeof p));
      p.struct_size = sizeof p;
    }
    pairrm::LoadOptions o;
    o.precision = to_precision(p.precision);
    o.attention = to_attention(p.attention);
    o.tokenizer.special_text =
        p.special_tokens_as_ids ? pairrm::SpecialTextPolicy::kHuggingFace : pairrm::SpecialTextPolicy::kLiteral;
    o.tokenizer.byte_fallback = p.byte_fallback != 0;
    o.source_max_length = p.source_max_length;
    o.candidate_max_length = p.candidate_max_length;
    auto m = std::make_unique<pairrm_model>();
    m->model = pairrm::Model::load(text(directory, "directory"), o);
    return m.release();
  });
}

void pairrm_model_free(pairrm_model* model) { delete model; }

int pairrm_model_info_get(const pairrm_model* model, pairrm_model_info* info) {
  return guarded(-1, [&] {
    require(model && info, "pairrm_model_info_get: model and info must not be NULL");
    require(info->struct_size >= sizeof(size_t), "pairrm_model_info.struct_size is not set (sizeof(pairrm_model_info))");
    const size_t caller_size = info->struct_size;
    pairrm_model_info full;
    const pairrm::ModelInfo& i = model->model->info();
    full.hidden_size = i.hidden_size;
    full.num_layers = i.num_layers;
    full.num_heads = i.num_heads;
    full.intermediate_size = i.intermediate_size;
    full.vocab_size = i.vocab_size;
    full.source_max_length = i.source_max_tokens;
    full.candidate_max_length = i.candidate_max_tokens;
    full.parameter_count = i.parameter_count;
    full.precision = i.precision == pairrm::Precision::kBF16   ? PAIRRM_PRECISION_BF16
                      : i.precision == pairrm::Precision::kInt8 ? PAIRRM_PRECISION_INT8
                                                                 : PAIRRM_PRECISION_FP32;
    full.isa = i.isa.c_str();
    full.directory = i.directory.c_str();
    full.struct_size = caller_size;
    std::memcpy(info, &full, std::min(caller_size, sizeof full));  // only what the caller's struct has room for
    return 0;
  });
}

pairrm_context* pairrm_context_new(const pairrm_model* model, int threads) {
  return guarded<pairrm_context*>(nullptr, [&] {
    require(model, "pairrm_context_new: model is NULL");
    auto c = std::make_unique<pairrm_context>();
    c->context = std::make_unique<pairrm::Context>(model->model, threads);
    return c.release();
  });
}

void pairrm_context_free(pairrm_context* ctx) { delete ctx; }

int pairrm_compare(pairrm_context* ctx, const char* const* sources, const char* const* candidates_a,
                   const char* const* candidates_b, size_t n, pairrm_compare_mode mode, pairrm_compare_result* out) {
  return guarded(-1, [&] {
    require(ctx, "pairrm_compare: ctx is NULL");
    require(n == 0 || (sources && candidates_a && candidates_b && out), "pairrm_compare: an array is NULL");
    const pairrm::CompareMode m = to_mode(mode);
    std::vector<pairrm::Comparison> items(n);
    for (size_t i = 0; i < n; ++i)
      items[i] = {text(sources[i], "sources[i]"), text(candidates_a[i], "candidates_a[i]"),
                  text(candidates_b[i], "candidates_b[i]")};
    const auto results = ctx->context->compare(items, m);
    for (size_t i = 0; i < n; ++i) {
      const pairrm::CompareResult& r = results[i];
      out[i] = {r.logit_ab, r.logit_ba, r.has_ab, r.has_ba, r.score, r.a_better};
    }
    return 0;
  });
}

int pairrm_rank(pairrm_context* ctx, const char* source, const char* const* candidates, size_t n, double* scores,
                int32_t* ranks) {
  return guarded(-1, [&] {
    require(ctx, "pairrm_rank: ctx is NULL");
    require(n > 0 && candidates, "pairrm_rank: needs at least one candidate");
    pairrm::RankInput input{text(source, "source"), {}};
    for (size_t i = 0; i < n; ++i) input.candidates.push_back(text(candidates[i], "candidates[i]"));
    const auto result = pairrm::rank(*ctx->context, {input}).front();
    for (size_t i = 0; i < n; ++i) {
      if (scores) scores[i] = result.scores[i];
      if (ranks) ranks[i] = result.ranks[i];
    }
    return 0;
  });
}

int pairrm_build_row(const pairrm_model* model, const char* source, const char* candidate1, const char* candidate2,
                     int32_t* ids, size_t capacity, size_t* n_ids, int32_t prefix_pos[3]) {
  return guarded(-1, [&] {
    require(model && n_ids, "pairrm_build_row: model and n_ids must not be NULL");
    const pairrm::PairRow row =
        model->model->build_row(text(source, "source"), text(candidate1, "candidate1"), text(candidate2, "candidate2"));
    *n_ids = row.ids.size();
    if (prefix_pos) {
      prefix_pos[0] = row.source_pos;
      prefix_pos[1] = row.cand1_pos;
      prefix_pos[2] = row.cand2_pos;
    }
    if (capacity == 0) return 0;
    require(ids, "pairrm_build_row: ids is NULL");
    if (capacity < row.ids.size())
      throw pairrm::Error("pairrm_build_row: the row has " + std::to_string(row.ids.size()) + " ids, capacity " +
                          std::to_string(capacity));
    std::copy(row.ids.begin(), row.ids.end(), ids);
    return 0;
  });
}

int pairrm_logits(pairrm_context* ctx, const pairrm_row* rows, size_t n, double* logits) {
  return guarded(-1, [&] {
    require(ctx, "pairrm_logits: ctx is NULL");
    require(n == 0 || (rows && logits), "pairrm_logits: rows and logits must not be NULL");
    std::vector<pairrm::PairRow> in(n);
    for (size_t i = 0; i < n; ++i) {
      require(rows[i].ids || rows[i].n_ids == 0, "pairrm_logits: a row's ids are NULL");
      in[i].ids.assign(rows[i].ids, rows[i].ids + rows[i].n_ids);
      in[i].source_pos = rows[i].source_pos;
      in[i].cand1_pos = rows[i].cand1_pos;
      in[i].cand2_pos = rows[i].cand2_pos;
    }
    const auto out = ctx->context->logits(in);
    std::copy(out.begin(), out.end(), logits);
    return 0;
  });
}

}  // extern "C"
