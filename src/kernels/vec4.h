// Four-lane vectors for the generic level's loops: every x86-64 CPU has SSE2, so the baseline level can run
// 4 floats per instruction. Written with GCC's vector types rather than left to the auto-vectoriser because
// under AddressSanitizer GCC vectorises no loop at all (each access's check "clobbers memory"): there the
// scalar loops ran ~4x longer than they need and made the sanitizer run of the generic fixture suite the
// longest test in CI. Lane arithmetic is IEEE per lane, the same bits as the scalar loop it replaces.
#pragma once
#include <cstdint>
#include <cstring>

namespace pairrm::kernels {

// Unaligned (aligned(4)) and may_alias: loads and stores on any float / uint32 buffer.
typedef float F32x4 __attribute__((vector_size(16), aligned(4), may_alias));
typedef uint32_t U32x4 __attribute__((vector_size(16), aligned(4), may_alias));

inline F32x4 load4(const float* p) { return *reinterpret_cast<const F32x4*>(p); }
inline void store4(float* p, F32x4 v) { *reinterpret_cast<F32x4*>(p) = v; }
// Four uint32 lanes from 8 uint16 values at any (even 2-byte) alignment: a memcpy, one unaligned load.
inline U32x4 load_u32x4(const uint16_t* p) {
  U32x4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline F32x4 splat4(float x) { return F32x4{x, x, x, x}; }

// 32 running sums (one packed panel's columns) in eight vectors.
struct Sums32 {
  F32x4 v[8] = {};

  // sums[c] += a · row[c] for the 32 columns: one multiply and one add per lane, k order kept by the caller.
  void add_scaled(float a, const float* row) {
    const F32x4 av = splat4(a);
    for (int i = 0; i < 8; ++i) v[i] += av * load4(row + 4 * i);
  }
  void load(const float* src) {
    for (int i = 0; i < 8; ++i) v[i] = load4(src + 4 * i);
  }
  void store(float* dst) const {
    for (int i = 0; i < 8; ++i) store4(dst + 4 * i, v[i]);
  }
};

}  // namespace pairrm::kernels
