// safetensors header and layout validation on arbitrary bytes: a clear pairrm::Error or a valid file whose
// every tensor lies inside the mapping.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "io/safetensors.h"
#include "pairrm/pairrm.h"
#include "scratch_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = pairrm::fuzz::scratch_path(".safetensors");
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    pairrm::SafetensorsFile file(path);
    const uint8_t* begin = file.mapping().data();
    const uint8_t* end = begin + file.mapping().size();
    for (const auto& [name, t] : file.tensors()) {
      if (t.nbytes && (t.data < begin || t.data + t.nbytes > end)) std::abort();
      if (t.dtype != pairrm::DType::kOther && t.numel() * static_cast<int64_t>(pairrm::dtype_size(t.dtype)) !=
                                                  static_cast<int64_t>(t.nbytes))
        std::abort();
    }
  } catch (const pairrm::Error&) {
  }
  return 0;
}
