// bfloat16 <-> float, the one rounding rule every bf16 path shares (weights packed for oneDNN, activations,
// the attention's operands), so the scalar and vector code give the same bits.
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace pairrm::kernels {

// static: this header is included by sources compiled for different ISA levels; an inline function with
// external linkage would be one symbol, and the linker could keep the AVX-512 copy for the generic code.

// Round to nearest even; NaN stays NaN (a quiet one), infinities stay infinite.
static inline uint16_t float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

static inline float bf16_to_float(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

#if defined(__AVX512F__)
// float_to_bf16 on the lanes of m (finite values: NaN would not be kept quiet), stored to out[0..16).
static inline void store_bf16(__m512 v, uint16_t* out, __mmask16 m) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF))), 16);
  _mm256_mask_storeu_epi16(out, m, _mm512_cvtepi32_epi16(r));
}
#endif

}  // namespace pairrm::kernels
