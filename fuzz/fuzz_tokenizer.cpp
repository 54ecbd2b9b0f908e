// The tokenizer and the pair-row builder on arbitrary bytes (invalid UTF-8 included), in both special-text
// policies: a clear pairrm::Error, or a row that is well formed (prefix tokens where recorded, ids in the
// vocabulary, within the model card's length limits).
#include <cstdlib>
#include <string>

#include "pairrm/pairrm.h"

namespace {

const pairrm::Model& model(bool hf) {
  static auto literal = pairrm::Model::load(PAIRRM_SOURCE_DIR "/models/tiny");
  static auto huggingface = [] {
    pairrm::LoadOptions o;
    o.tokenizer.special_text = pairrm::SpecialTextPolicy::kHuggingFace;
    return pairrm::Model::load(PAIRRM_SOURCE_DIR "/models/tiny", o);
  }();
  return hf ? *huggingface : *literal;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool hf = data[0] & 1;
  // The rest is split at the first two 0x01 bytes into source, candidate 1, candidate 2.
  std::string parts[3];
  int k = 0;
  for (size_t i = 1; i < size; ++i) {
    if (data[i] == 1 && k < 2) {
      ++k;
      continue;
    }
    parts[k] += static_cast<char>(data[i]);
  }
  const pairrm::Model& m = model(hf);
  try {
    const pairrm::PairRow r = m.build_row(parts[0], parts[1], parts[2]);
    const auto n = static_cast<int>(r.ids.size());
    if (n > 2048 || r.ids[0] != 1 || r.ids[r.source_pos] != 128001 || r.ids[r.cand1_pos] != 128002 ||
        r.ids[r.cand2_pos] != 128003 || r.ids[n - 1] != 2)
      std::abort();
    for (int32_t id : r.ids)
      if (id < 0 || id >= m.info().vocab_size) std::abort();
    const auto ids = m.encode(parts[0]);
    if (ids.size() < 2 || ids.front() != 1 || ids.back() != 2) std::abort();
  } catch (const pairrm::Error&) {
  }
  return 0;
}
