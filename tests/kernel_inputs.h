// Inputs for the per-op kernel tests: seeded normal floats and 64-byte aligned buffers (as the engine's
// workspace gives the packed panels).
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace pairrm::test {

inline std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

struct Aligned {
  std::vector<float> storage;
  float* data;
  explicit Aligned(long n) : storage(n + 16) {
    data = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(storage.data()) + 63) & ~uintptr_t{63});
  }
};

}  // namespace pairrm::test
