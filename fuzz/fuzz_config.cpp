// config.json parsing (both layouts) on arbitrary bytes: a clear pairrm::Error or a config whose shapes
// the loader can trust.
#include <cstdlib>
#include <string>

#include "model/config.h"
#include "pairrm/pairrm.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto c = pairrm::parse_model_config(std::string(reinterpret_cast<const char*>(data), size), "config.json");
    if (c.hidden_size <= 0 || c.num_heads <= 0 || c.hidden_size % c.num_heads != 0 || c.num_layers <= 0 ||
        c.vocab_size <= 0 || c.intermediate_size <= 0)
      std::abort();
  } catch (const pairrm::Error&) {
  }
  return 0;
}
