// Wall-clock seconds for the tools' timings (bench, accuracy, the ceilings).
#pragma once
#include <chrono>

namespace pairrm {

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace pairrm
