#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "pairrm/pairrm.h"

namespace pairrm {
namespace {

// A header is JSON metadata; real ones are a few hundred KB. Anything past this is a corrupt length.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

struct DTypeEntry {
  const char* name;
  DType dtype;
  size_t size;
};
constexpr DTypeEntry kDTypes[] = {
    {"F32", DType::kF32, 4}, {"F16", DType::kF16, 2}, {"BF16", DType::kBF16, 2}, {"F64", DType::kF64, 8},
    {"I64", DType::kI64, 8}, {"I32", DType::kI32, 4}, {"I16", DType::kI16, 2},   {"I8", DType::kI8, 1},
    {"U8", DType::kU8, 1},   {"BOOL", DType::kBool, 1},
};

}  // namespace

const char* dtype_name(DType d) {
  for (const auto& e : kDTypes)
    if (e.dtype == d) return e.name;
  return "?";
}

size_t dtype_size(DType d) {
  for (const auto& e : kDTypes)
    if (e.dtype == d) return e.size;
  return 0;
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) {
  const std::string where = path + ": ";
  if (file_.size() < 8) throw Error(where + "truncated: " + std::to_string(file_.size()) + " bytes, need at least 8");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | file_.data()[i];  // little-endian u64
  if (header_len > kMaxHeaderBytes)
    throw Error(where + "header length " + std::to_string(header_len) + " is implausible (limit " +
                std::to_string(kMaxHeaderBytes) + ")");
  if (header_len > file_.size() - 8)
    throw Error(where + "header length " + std::to_string(header_len) + " runs past the end of the file (" +
                std::to_string(file_.size()) + " bytes)");
  const char* header = reinterpret_cast<const char*>(file_.data() + 8);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(header, header + header_len);
  } catch (const std::exception& e) {
    throw Error(where + "header is not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(where + "header is not a JSON object");

  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = file_.size() - data_start;
  struct Span {
    uint64_t begin, end;
    const std::string* name;
  };
  std::vector<Span> spans;

  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") continue;
    const std::string tw = where + "tensor '" + name + "': ";
    const auto& v = it.value();
    if (!v.is_object()) throw Error(tw + "entry is not an object");
    if (!v.contains("dtype") || !v["dtype"].is_string()) throw Error(tw + "missing string 'dtype'");
    if (!v.contains("shape") || !v["shape"].is_array()) throw Error(tw + "missing array 'shape'");
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
      throw Error(tw + "missing 'data_offsets' [begin, end]");
    TensorView t;
    t.name = name;
    t.dtype_name = v["dtype"].get<std::string>();
    size_t esize = 0;
    for (const auto& e : kDTypes)
      if (t.dtype_name == e.name) {
        t.dtype = e.dtype;
        esize = e.size;
      }
    uint64_t numel = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned()) throw Error(tw + "shape entries must be non-negative integers");
      const uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && numel > (uint64_t{1} << 48) / dim) throw Error(tw + "shape is implausibly large");
      numel *= dim;
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    for (const auto& o : v["data_offsets"])
      if (!o.is_number_unsigned()) throw Error(tw + "data_offsets must be non-negative integers");
    const uint64_t begin = v["data_offsets"][0].get<uint64_t>();
    const uint64_t end = v["data_offsets"][1].get<uint64_t>();
    if (begin > end) throw Error(tw + "data_offsets begin " + std::to_string(begin) + " > end " + std::to_string(end));
    if (end > data_size)
      throw Error(tw + "data_offsets end " + std::to_string(end) + " is past the data section (" +
                  std::to_string(data_size) + " bytes): file truncated?");
    if (esize != 0 && numel * esize != end - begin)
      throw Error(tw + "holds " + std::to_string(end - begin) + " bytes but " + t.dtype_name + " shape needs " +
                  std::to_string(numel * esize));
    t.data = file_.data() + data_start + begin;
    t.nbytes = end - begin;
    auto [pos, inserted] = tensors_.emplace(name, std::move(t));
    if (!inserted) throw Error(tw + "appears twice");
    spans.push_back({begin, end, &pos->first});
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  const Span* furthest = nullptr;  // the span reaching furthest so far; empty tensors occupy no bytes
  for (const Span& s : spans) {
    if (s.begin == s.end) continue;
    if (furthest && s.begin < furthest->end)
      throw Error(where + "tensors '" + *furthest->name + "' and '" + *s.name + "' overlap in the file");
    if (!furthest || s.end > furthest->end) furthest = &s;
  }
}

const TensorView* SafetensorsFile::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

}  // namespace pairrm
