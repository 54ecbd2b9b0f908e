#include "util/bundled_model.h"

#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <vector>

#include "pairrm/pairrm.h"

namespace pairrm {

namespace fs = std::filesystem;

std::string bundled_model_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error("cannot locate the running binary (/proc/self/exe) to find the bundled model; pass --model DIR");
  const fs::path dir = exe.parent_path();
  // Installed: <prefix>/bin/pairrm -> <prefix>/share/pairrm/models/tiny. Build tree: <build>/pairrm ->
  // <build>/share/pairrm/models (a link CMake makes to the source tree's models/).
  const std::vector<fs::path> candidates = {dir / ".." / "share" / "pairrm" / "models" / "tiny",
                                            dir / "share" / "pairrm" / "models" / "tiny"};
  std::string looked;
  for (const fs::path& c : candidates) {
    if (fs::exists(c / "config.json", ec)) return fs::weakly_canonical(c, ec).string();
    looked += (looked.empty() ? "" : ", ") + c.lexically_normal().string();
  }
  throw Error("the bundled model is not installed next to this binary (looked in " + looked + "); pass --model DIR");
}

void warn_bundled_model() {
  static bool warned = false;  // once per process: a command may resolve its model directory twice
  if (warned) return;
  warned = true;
  std::cerr << "pairrm: warning: no --model (or $PAIRRM_MODEL) given: using the bundled tiny RANDOM-WEIGHT model, "
               "its scores are meaningless\n";
}

}  // namespace pairrm
