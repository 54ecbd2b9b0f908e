// Just enough of SentencePiece's ModelProto wire format (spm.model) to read the normaliser's charsmap and
// to derive the model the Hugging Face fast tokenizer effectively runs. Debian's libsentencepiece-dev ships
// no protobuf headers, and the format is small.
#pragma once
#include <string>
#include <string_view>

namespace pairrm {

struct SpmModelParts {
  std::string precompiled_charsmap;  // NormalizerSpec.precompiled_charsmap (nmt_nfkc)
  int piece_count = 0;
};

// Throws pairrm::Error (naming `path`) when the bytes are not a ModelProto.
SpmModelParts read_spm_model(std::string_view proto, const std::string& path);

// The same model as the fast tokenizer runs it: identity normaliser (pairrm.cpp normalises first, as
// the fast tokenizer does), no dummy prefix, no byte fallback, and byte pieces ("<0x41>") as ordinary
// pieces that can match literal text. Unknown characters then become [UNK], consecutive ones fused.
std::string make_fast_equivalent_model(std::string_view proto, const std::string& path);

}  // namespace pairrm
