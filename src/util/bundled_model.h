// The bundled tiny random-weight model (models/tiny in the source tree, share/pairrm/models/tiny when
// installed), found relative to the running binary: no build-time absolute path.
#pragma once
#include <string>

namespace pairrm {

// The directory of the bundled model; throws pairrm::Error listing where it looked.
std::string bundled_model_dir();

// The one-line stderr warning every command prints when it runs on the bundled model (also with --quiet:
// its scores must never be mistaken for PairRM's).
void warn_bundled_model();

}  // namespace pairrm
