// Register-resident loops of the level's widest multiply-add instructions, for `pairrm bench`'s measured
// ceilings (compiled once per ISA level, like the kernels). Each loop keeps 12 independent accumulators in
// registers (enough to cover the FMA latency on two ports) and returns the floating-point operations it
// did; a level without the instruction returns -1.
#include "kernels/isa_kernels.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace pairrm::kernels::PAIRRM_ISA_NS {

namespace {
constexpr int kAccumulators = 12;
volatile float sink;  // keeps the results alive: the loops have no other effect
}  // namespace

double fp32_fma_flops(long iterations) {
#if defined(__AVX512F__)
  __m512 acc[kAccumulators];
  for (int k = 0; k < kAccumulators; ++k) acc[k] = _mm512_set1_ps(static_cast<float>(k));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (long i = 0; i < iterations; ++i)
    for (int k = 0; k < kAccumulators; ++k) acc[k] = _mm512_fmadd_ps(acc[k], a, b);
  for (int k = 1; k < kAccumulators; ++k) acc[0] = _mm512_add_ps(acc[0], acc[k]);
  sink = _mm512_cvtss_f32(acc[0]);
  return 2.0 * 16 * kAccumulators * iterations;
#elif defined(__AVX2__)
  __m256 acc[kAccumulators];
  for (int k = 0; k < kAccumulators; ++k) acc[k] = _mm256_set1_ps(static_cast<float>(k));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long i = 0; i < iterations; ++i)
    for (int k = 0; k < kAccumulators; ++k) acc[k] = _mm256_fmadd_ps(acc[k], a, b);
  for (int k = 1; k < kAccumulators; ++k) acc[0] = _mm256_add_ps(acc[0], acc[k]);
  sink = _mm256_cvtss_f32(acc[0]);
  return 2.0 * 8 * kAccumulators * iterations;
#else
  // No FMA at this level: a multiply and an add (two operations), which SSE2 runs 4 lanes wide when the
  // compiler vectorises the accumulators.
  float acc[kAccumulators * 4];
  for (int k = 0; k < kAccumulators * 4; ++k) acc[k] = static_cast<float>(k);
  for (long i = 0; i < iterations; ++i)
    for (int k = 0; k < kAccumulators * 4; ++k) acc[k] = acc[k] * 0.999999f + 1e-7f;
  float s = 0;
  for (float v : acc) s += v;
  sink = s;
  return 2.0 * 4 * kAccumulators * iterations;
#endif
}

double bf16_dot_flops(long iterations) {
#if defined(__AVX512BF16__)
  __m512 acc[kAccumulators];
  for (int k = 0; k < kAccumulators; ++k) acc[k] = _mm512_set1_ps(static_cast<float>(k));
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3F80), b = (__m512bh)_mm512_set1_epi16(0x3380);  // 1, ~6e-8
  for (long i = 0; i < iterations; ++i)
    for (int k = 0; k < kAccumulators; ++k) acc[k] = _mm512_dpbf16_ps(acc[k], a, b);
  for (int k = 1; k < kAccumulators; ++k) acc[0] = _mm512_add_ps(acc[0], acc[k]);
  sink = _mm512_cvtss_f32(acc[0]);
  return 2.0 * 32 * kAccumulators * iterations;  // 32 bf16 products per instruction
#else
  (void)iterations;
  return -1;
#endif
}

double int8_dot_ops(long iterations) {
#if defined(__AVX512VNNI__)
  __m512i acc[kAccumulators];
  for (int k = 0; k < kAccumulators; ++k) acc[k] = _mm512_set1_epi32(k);
  const __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(1);
  for (long i = 0; i < iterations; ++i)
    for (int k = 0; k < kAccumulators; ++k) acc[k] = _mm512_dpbusd_epi32(acc[k], a, b);
  for (int k = 1; k < kAccumulators; ++k) acc[0] = _mm512_add_epi32(acc[0], acc[k]);
  sink = static_cast<float>(_mm_cvtsi128_si32(_mm512_castsi512_si128(acc[0])));
  return 2.0 * 64 * kAccumulators * iterations;  // 64 u8·s8 products per instruction
#else
  (void)iterations;
  return -1;
#endif
}

}  // namespace pairrm::kernels::PAIRRM_ISA_NS
