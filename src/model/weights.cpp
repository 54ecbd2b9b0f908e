#include "model/weights.h"

#include <cstdint>
#include <cstring>

#include "kernels/bf16.h"
#include "pairrm/pairrm.h"

namespace pairrm {
namespace {

float half_to_float(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3FF;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

class Loader {
 public:
  Loader(std::shared_ptr<SafetensorsFile> file, Weights& w) : file_(std::move(file)), w_(w) {}

  // A tensor of exactly `shape` (1-D when cols == 0).
  Matrix get(const std::string& name, int rows, int cols) {
    const std::vector<int64_t> expected = cols == 0 ? std::vector<int64_t>{rows} : std::vector<int64_t>{rows, cols};
    const TensorView* t = file_->find(name);
    const std::string where = file_->path() + ": tensor '" + name + "': ";
    if (!t) throw Error(where + "missing (expected shape " + shape_str(expected) + ")");
    if (t->shape != expected)
      throw Error(where + "shape " + shape_str(t->shape) + ", expected " + shape_str(expected));
    return convert(*t, where, rows, cols == 0 ? rows : cols, cols == 0);
  }

  // rel_embeddings may hold more rows than attention uses; at least `min_rows`.
  Matrix get_at_least_rows(const std::string& name, int min_rows, int cols) {
    const TensorView* t = file_->find(name);
    const std::string where = file_->path() + ": tensor '" + name + "': ";
    if (!t) throw Error(where + "missing (expected shape [>=" + std::to_string(min_rows) + ", " + std::to_string(cols) + "])");
    if (t->shape.size() != 2 || t->shape[0] < min_rows || t->shape[1] != cols)
      throw Error(where + "shape " + shape_str(t->shape) + ", expected [>=" + std::to_string(min_rows) + ", " +
                  std::to_string(cols) + "]");
    return convert(*t, where, static_cast<int>(t->shape[0]), cols, false);
  }

 private:
  Matrix convert(const TensorView& t, const std::string& where, int rows, int cols, bool vector) {
    Matrix m;
    m.rows = vector ? 1 : rows;
    m.cols = cols;
    const size_t n = static_cast<size_t>(m.rows) * static_cast<size_t>(m.cols);
    w_.parameter_count += static_cast<int64_t>(n);
    if (t.dtype == DType::kF32) {
      if (reinterpret_cast<uintptr_t>(t.data) % alignof(float) == 0) {
        m.data = reinterpret_cast<const float*>(t.data);  // used in place, no copy
        return m;
      }
      w_.converted.emplace_back(n);
      std::memcpy(w_.converted.back().data(), t.data, n * sizeof(float));
    } else if (t.dtype == DType::kF16 || t.dtype == DType::kBF16) {
      w_.converted.emplace_back(n);
      float* out = w_.converted.back().data();
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, t.data + 2 * i, 2);
        out[i] = t.dtype == DType::kF16 ? half_to_float(h) : kernels::bf16_to_float(h);
      }
    } else {
      throw Error(where + "dtype " + t.dtype_name + " is not supported (expected F32, F16 or BF16)");
    }
    m.data = w_.converted.back().data();
    return m;
  }

  std::shared_ptr<SafetensorsFile> file_;
  Weights& w_;
};

}  // namespace

Weights load_weights(const std::string& path, const ModelConfig& c) {
  Weights w;
  w.file = std::make_shared<SafetensorsFile>(path);
  Loader ld(w.file, w);
  const int H = c.hidden_size, I = c.intermediate_size;
  const std::string p = "pretrained_model.";
  w.word_embeddings = ld.get(p + "embeddings.word_embeddings.weight", c.vocab_size, H);
  w.emb_ln_w = ld.get(p + "embeddings.LayerNorm.weight", H, 0);
  w.emb_ln_b = ld.get(p + "embeddings.LayerNorm.bias", H, 0);
  w.rel_embeddings = ld.get_at_least_rows(p + "encoder.rel_embeddings.weight", 2 * c.attention_span(), H);
  if (c.norm_rel_embeddings) {
    w.enc_ln_w = ld.get(p + "encoder.LayerNorm.weight", H, 0);
    w.enc_ln_b = ld.get(p + "encoder.LayerNorm.bias", H, 0);
  }
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string b = p + "encoder.layer." + std::to_string(l) + ".";
    LayerWeights L;
    L.q_w = ld.get(b + "attention.self.query_proj.weight", H, H);
    L.q_b = ld.get(b + "attention.self.query_proj.bias", H, 0);
    L.k_w = ld.get(b + "attention.self.key_proj.weight", H, H);
    L.k_b = ld.get(b + "attention.self.key_proj.bias", H, 0);
    L.v_w = ld.get(b + "attention.self.value_proj.weight", H, H);
    L.v_b = ld.get(b + "attention.self.value_proj.bias", H, 0);
    L.attn_out_w = ld.get(b + "attention.output.dense.weight", H, H);
    L.attn_out_b = ld.get(b + "attention.output.dense.bias", H, 0);
    L.attn_ln_w = ld.get(b + "attention.output.LayerNorm.weight", H, 0);
    L.attn_ln_b = ld.get(b + "attention.output.LayerNorm.bias", H, 0);
    L.ffn_in_w = ld.get(b + "intermediate.dense.weight", I, H);
    L.ffn_in_b = ld.get(b + "intermediate.dense.bias", I, 0);
    L.ffn_out_w = ld.get(b + "output.dense.weight", H, I);
    L.ffn_out_b = ld.get(b + "output.dense.bias", H, 0);
    L.out_ln_w = ld.get(b + "output.LayerNorm.weight", H, 0);
    L.out_ln_b = ld.get(b + "output.LayerNorm.bias", H, 0);
    w.layers.push_back(L);
  }
  w.head1_w = ld.get("head_layer.1.weight", H, 2 * H);
  w.head1_b = ld.get("head_layer.1.bias", H, 0);
  w.head2_w = ld.get("head_layer.4.weight", c.n_tasks, H);
  w.head2_b = ld.get("head_layer.4.bias", c.n_tasks, 0);
  return w;
}

}  // namespace pairrm
