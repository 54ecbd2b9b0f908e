// safetensors reader: validates the whole header and layout before any tensor is used.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/mapped_file.h"

namespace pairrm {

enum class DType { kF32, kF16, kBF16, kF64, kI64, kI32, kI16, kI8, kU8, kBool, kOther };

struct TensorView {
  std::string name;
  DType dtype = DType::kOther;
  std::string dtype_name;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // inside the mapping
  size_t nbytes = 0;
  int64_t numel() const;
};

class SafetensorsFile {
 public:
  // Maps and validates `path`: header length, header JSON, every entry's dtype/shape/offsets, offsets
  // inside the data section and not overlapping. Throws pairrm::Error naming the file and the tensor.
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return file_.path(); }
  const TensorView* find(const std::string& name) const;
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const MappedFile& mapping() const { return file_; }

 private:
  MappedFile file_;
  std::map<std::string, TensorView> tensors_;
};

const char* dtype_name(DType d);
size_t dtype_size(DType d);

}  // namespace pairrm
