// What a loaded Model holds (internal: tests and tools inside the project may reach the pieces).
#pragma once
#include <memory>

#include "model/config.h"
#include "model/encoder.h"
#include "model/weights.h"
#include "pairrm/pairrm.h"
#include "ranker/pair_row.h"
#include "tokenizer/tokenizer.h"

namespace pairrm {

// Texts above this size are refused rather than tokenized: they would be truncated to at most 1224 tokens
// anyway, and the limit bounds the memory one request can take.
constexpr size_t kMaxTextBytes = 8u << 20;

struct Model::Impl {
  ModelConfig config;
  Weights weights;
  RelativeProjections relative;
  std::vector<PackedLayer> packed;  // the dense layers in the load-time precision
  Tokenizer tokenizer;
  ModelInfo info;
  RowIds row_ids;
  RowLimits limits;

  Impl(ModelConfig c, Weights w, Tokenizer t) : config(std::move(c)), weights(std::move(w)), tokenizer(std::move(t)) {}
};

struct Context::Impl {
  std::shared_ptr<const Model> model;
  int threads = 1;
  int max_batch_rows = 64;
  long max_batch_tokens = 16384;
  Workspace workspace;
};

namespace detail {
// Internal access for the library's own tools and tests (the public header has no accessor).
struct Access {
  static const Model::Impl& impl(const Model& m) { return *m.impl_; }
  static Context::Impl& impl(Context& c) { return *c.impl_; }
};
}  // namespace detail

inline const Model::Impl& internals(const Model& m) { return detail::Access::impl(m); }
inline Context::Impl& internals(Context& c) { return detail::Access::impl(c); }

}  // namespace pairrm
