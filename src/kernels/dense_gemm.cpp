// The dense layers' GEMM (dense_gemm.h), compiled once per ISA level into PAIRRM_ISA_NS. Blocked as BLIS
// does: a block of A (block_rows() rows × kKc deep, packed into strips of the micro-kernel's height) stays in
// L2 while every panel of the thread's columns streams through it, each panel's kKc-deep slice staying in L1
// across the block's strips. Blocking changes where the partial sums wait (in C between K blocks), never
// their order: element (m, n) is always init, then + A[m][0]·B[0][n], + A[m][1]·B[1][n], ... one rounding each
// — so the M block may follow the cache this CPU reports without changing a bit.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/dense_gemm.h"
#include "kernels/isa_kernels.h"
#include "kernels/panel_gemm.h"
#include "kernels/vec4.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace pairrm::kernels::PAIRRM_ISA_NS {
namespace {

// K block, fixed per level (the AVX2 level's packed weights are laid out in K blocks of this depth).
// AVX-512: a panel's slice is 256 × 32 floats = 32 KB. AVX2: the kernel reads half a panel at a time, stored
// contiguously (below), 384 × 16 floats = 24 KB of a 32 KB L1d; deeper blocks halve the round trips of C's
// partial sums (measured on Zen 4 at AVX2, 2 threads: 256 → 384 deep +8-12 %).
#if defined(__AVX512F__) || !defined(__AVX2__)
constexpr int kKc = 256;
#else
constexpr int kKc = 384;
#endif

// Where a micro-kernel's accumulators start: the bias (first K block), the residual plus the bias (first K
// block of a residual layer; the residual has C's row stride and may be C itself) or C (later K blocks: the
// partial sums left there).
struct Start {
  const float* bias;      // null: continue from C
  const float* residual;  // with bias: added to it, or null
};

// The Start of the strip `rows` rows further down.
[[maybe_unused]] inline Start at_row(Start start, int rows, long ldc) {
  return {start.bias, start.residual ? start.residual + rows * ldc : nullptr};
}

#if defined(__AVX2__)
// Asks for the rows a strip's accumulators start from (C's partial sums, or the residual) while the strip
// before it computes: the micro-kernel's first multiply-add waits for them, and C is a whole layer's output
// (megabytes, rows ldc apart), so without this each strip began with a cache miss to L3 or memory — a few
// hundred cycles against ~1 500 of work per 256-deep strip (measured: +6-10 % on Zen 4 at AVX2).
inline void prefetch_start(const float* C, long ldc, Start start, int rows, int cols) {
  const float* src = start.bias ? start.residual : C;
  if (!src) return;  // starts from the bias alone: nothing of C is read
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; c += 16) _mm_prefetch(reinterpret_cast<const char*>(src + r * ldc + c), _MM_HINT_T0);
}
#endif

#if defined(__AVX512F__)
constexpr int kMr = 12;  // 24 accumulators + 2 panel registers (+ broadcasts as memory operands) of the 32 zmm

// Accumulators of R rows × 32 columns from their Start, and back to C (masked columns: the ragged last panel).
template <int R>
inline void start_accumulators(__m512 (&acc0)[R], __m512 (&acc1)[R], const float* C, long ldc, Start start,
                               __mmask16 m0, __mmask16 m1) {
  if (start.bias) {
    const __m512 b0 = _mm512_maskz_loadu_ps(m0, start.bias), b1 = _mm512_maskz_loadu_ps(m1, start.bias + 16);
    for (int r = 0; r < R; ++r) {
      const float* res = start.residual + r * ldc;
      acc0[r] = start.residual ? _mm512_add_ps(_mm512_maskz_loadu_ps(m0, res), b0) : b0;
      acc1[r] = start.residual ? _mm512_add_ps(_mm512_maskz_loadu_ps(m1, res + 16), b1) : b1;
    }
  } else {
    for (int r = 0; r < R; ++r) {
      acc0[r] = _mm512_maskz_loadu_ps(m0, C + r * ldc);
      acc1[r] = _mm512_maskz_loadu_ps(m1, C + r * ldc + 16);
    }
  }
}

template <int R>
inline void store_accumulators(const __m512 (&acc0)[R], const __m512 (&acc1)[R], float* C, long ldc, __mmask16 m0,
                               __mmask16 m1) {
  for (int r = 0; r < R; ++r) {
    _mm512_mask_storeu_ps(C + r * ldc, m0, acc0[r]);
    _mm512_mask_storeu_ps(C + r * ldc + 16, m1, acc1[r]);
  }
}

inline void column_masks(int cols, __mmask16& m0, __mmask16& m1) {
  m0 = cols >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << cols) - 1);
  m1 = cols >= 32 ? 0xFFFF : cols <= 16 ? 0 : static_cast<__mmask16>((1u << (cols - 16)) - 1);
}

// R rows (≤ kMr) × 32 columns; a: the strip [kc][kMr], b: the panel slice [kc][32].
template <int R>
void micro_kernel(const float* a, const float* b, int kc, float* C, long ldc, Start start, __mmask16 m0, __mmask16 m1) {
  __m512 acc0[R], acc1[R];
  start_accumulators<R>(acc0, acc1, C, ldc, start, m0, m1);
  for (int k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(b + k * kPanelWidth), b1 = _mm512_load_ps(b + k * kPanelWidth + 16);
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      const __m512 x = _mm512_set1_ps(a[k * kMr + r]);
      acc0[r] = _mm512_fmadd_ps(x, b0, acc0[r]);
      acc1[r] = _mm512_fmadd_ps(x, b1, acc1[r]);
    }
  }
  store_accumulators<R>(acc0, acc1, C, ldc, m0, m1);
}

using MicroKernel = void (*)(const float*, const float*, int, float*, long, Start, __mmask16, __mmask16);
constexpr MicroKernel kKernels[kMr + 1] = {nullptr,         micro_kernel<1>,  micro_kernel<2>,  micro_kernel<3>,
                                           micro_kernel<4>, micro_kernel<5>,  micro_kernel<6>,  micro_kernel<7>,
                                           micro_kernel<8>, micro_kernel<9>,  micro_kernel<10>, micro_kernel<11>,
                                           micro_kernel<12>};

// One panel's kc-deep slice against the packed block: strips of kMr rows.
void panel_block(const float* a_block, int mc, int kc, const float* b, float* C, long ldc, Start start, int cols) {
  __mmask16 m0, m1;
  column_masks(cols, m0, m1);
  for (int s = 0; s < mc; s += kMr) {
    const int rows = std::min(kMr, mc - s);
    if (s + kMr < mc) prefetch_start(C + (s + kMr) * ldc, ldc, at_row(start, s + kMr, ldc), std::min(kMr, mc - s - kMr), cols);
    kKernels[rows](a_block + static_cast<long>(s) * kc, b, kc, C + s * ldc, ldc, at_row(start, s, ldc), m0, m1);
  }
}

#elif defined(__AVX2__)
constexpr int kMr = 6;  // 16 ymm: 12 accumulators (6 rows × 16 columns), 2 half-panel registers, 1 broadcast

// Lanes [0, n) of 8 as a maskload/maskstore mask.
inline __m256i lane_mask(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// R rows (≤ kMr) × 16 columns (half a panel: b points to its [kc][16] slice, pack_dense_weights), of which the first
// `cols` (1..16) are C's. The 12 accumulators, the two panel registers and the broadcast take 15 of the 16
// ymm registers: nothing else may stay live across the k loop, or GCC spills every accumulator to the stack
// on every step (it did while the two edge masks were kept for the store: 26 % of the FMA peak on Zen 4,
// 44 % on Zen 1). So the masks are rebuilt from `cols` after the loop, and full halves (every dense layer of
// PairRM: N is a multiple of 32) use plain loads and stores (vmaskmovps stores are microcoded on AMD Zen).
template <int R>
void micro_kernel(const float* a, const float* b, int kc, float* C, long ldc, Start start, int cols) {
  __m256 acc0[R], acc1[R];
  const bool full = cols == 16;
  if (start.bias) {
    const __m256 b0 = full ? _mm256_loadu_ps(start.bias) : _mm256_maskload_ps(start.bias, lane_mask(cols));
    const __m256 b1 = full ? _mm256_loadu_ps(start.bias + 8) : _mm256_maskload_ps(start.bias + 8, lane_mask(cols - 8));
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      acc0[r] = b0;
      acc1[r] = b1;
    }
  }
  if (start.residual || !start.bias) {
    const float* src = start.bias ? start.residual : C;  // the residual (added to the bias) or C's partial sums
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const float* row = src + r * ldc;
      const __m256 x0 = full ? _mm256_loadu_ps(row) : _mm256_maskload_ps(row, lane_mask(cols));
      const __m256 x1 = full ? _mm256_loadu_ps(row + 8) : _mm256_maskload_ps(row + 8, lane_mask(cols - 8));
      acc0[r] = start.bias ? _mm256_add_ps(x0, acc0[r]) : x0;
      acc1[r] = start.bias ? _mm256_add_ps(x1, acc1[r]) : x1;
    }
  }
  for (int k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(b + k * 16), b1 = _mm256_load_ps(b + k * 16 + 8);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m256 x = _mm256_broadcast_ss(a + k * kMr + r);
      acc0[r] = _mm256_fmadd_ps(x, b0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(x, b1, acc1[r]);
    }
  }
  if (full) {
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      _mm256_storeu_ps(C + r * ldc, acc0[r]);
      _mm256_storeu_ps(C + r * ldc + 8, acc1[r]);
    }
    return;
  }
  const __m256i m0 = lane_mask(cols), m1 = lane_mask(cols - 8);
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    _mm256_maskstore_ps(C + r * ldc, m0, acc0[r]);
    _mm256_maskstore_ps(C + r * ldc + 8, m1, acc1[r]);
  }
}

using MicroKernel = void (*)(const float*, const float*, int, float*, long, Start, int);
constexpr MicroKernel kKernels[kMr + 1] = {nullptr,         micro_kernel<1>, micro_kernel<2>, micro_kernel<3>,
                                           micro_kernel<4>, micro_kernel<5>, micro_kernel<6>};

void panel_block(const float* a_block, int mc, int kc, const float* b, float* C, long ldc, Start start, int cols) {
  for (int half = 0; half < 2 && half * 16 < cols; ++half) {
    const int n = std::min(16, cols - half * 16);
    const Start half_start{start.bias ? start.bias + half * 16 : nullptr, start.residual ? start.residual + half * 16 : nullptr};
    for (int s = 0; s < mc; s += kMr) {
      const int rows = std::min(kMr, mc - s);
      if (s + kMr < mc)
        prefetch_start(C + (s + kMr) * ldc + half * 16, ldc, at_row(half_start, s + kMr, ldc), std::min(kMr, mc - s - kMr), n);
      kKernels[rows](a_block + static_cast<long>(s) * kc, b + half * 16 * kc, kc, C + s * ldc + half * 16, ldc,
                     at_row(half_start, s, ldc), n);
    }
  }
}
#else
// The baseline level (SSE2, no FMA): 32 running sums per row and panel in eight four-lane vectors (vec4.h);
// a multiply and an add per step, in the same k order.
constexpr int kMr = 1;

void panel_block(const float* a_block, int mc, int kc, const float* b, float* C, long ldc, Start start, int cols) {
  for (int m = 0; m < mc; ++m) {
    float acc[kPanelWidth] = {};
    float* c = C + m * ldc;
    const float* res = start.residual ? start.residual + m * ldc : nullptr;
    for (int j = 0; j < cols; ++j) acc[j] = start.bias ? (res ? res[j] + start.bias[j] : start.bias[j]) : c[j];
    const float* a = a_block + static_cast<long>(m) * kc;
    Sums32 sums;  // four-lane vectors (vec4.h): the same sums in the same k order
    sums.load(acc);
    for (int k = 0; k < kc; ++k) sums.add_scaled(a[k], b + k * kPanelWidth);
    sums.store(acc);
    std::copy_n(acc, cols, c);
  }
}
#endif

// Rows [m0, m0 + mc) × depth [k0, k0 + kc) of A into strips of kMr rows: strip s is [kc][kMr] (row r of the
// strip at k·kMr + r), so the micro-kernel reads its broadcasts from one stream.
void pack_block(const float* A, int lda, int m0, int mc, int k0, int kc, float* out) {
  for (int s = 0; s < mc; s += kMr) {
    const int rows = std::min(kMr, mc - s);
    float* strip = out + static_cast<long>(s) * kc;
    for (int r = 0; r < rows; ++r) {
      const float* src = A + static_cast<long>(m0 + s + r) * lda + k0;
      for (int k = 0; k < kc; ++k) strip[k * kMr + r] = src[k];
    }
  }
}

// Rows of A per M block: as many as keep the packed block (rows × kKc floats) in half of this CPU's L2 (the
// other half holds the panel slices streaming through, C's rows and the next block's prefetches), from
// sysconf (glibc reads cpuid's cache leaves); 512 KB where it says nothing. Zen 1's 512 KB L2 thus gets
// blocks of ~170 rows, Zen 4's 1 MB ~340 rows. A multiple of the micro-kernel's height.
int block_rows_limit() {
  static const int rows = [] {
    const long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    const long bytes = l2 > 0 ? l2 : 512 * 1024;
    const long limit = bytes / 2 / (kKc * static_cast<long>(sizeof(float)));
    return static_cast<int>(std::clamp(limit / kMr * kMr, 8L * kMr, 2040L / kMr * kMr));
  }();
  return rows;
}

// M split into equal blocks of at most block_rows_limit() rows (a multiple of kMr where M allows): 300 rows
// are one block of 300 or two of 150, never 252 + 48 (a short block pays the panels' streaming for few rows).
int block_rows(int M) {
  const int limit = block_rows_limit(), blocks = (M + limit - 1) / limit;
  const int rows = (M + blocks - 1) / blocks;
  return std::min(limit, (rows + kMr - 1) / kMr * kMr);
}

}  // namespace

// Enough for every M' <= M (callers size once for the tallest call): block_rows(M') <= min(M' rounded up to
// kMr, the limit), and a shorter M may have the taller block (1 017 rows: two of 512; 1 030: three of 344).
long dense_gemm_scratch_floats(int M) {
  const int rows = std::min(block_rows_limit(), (std::max(M, 1) + kMr - 1) / kMr * kMr);
  return static_cast<long>(rows + kMr) * kKc;
}

// Each panel is [K][32] (B[k][n] = W[n0 + n][k]); at the AVX2 level each kKc-deep slice of it holds its two
// 16-column halves one after the other ([kc][16] each), so the kernel's half-panel stream is contiguous: with
// the two halves interleaved in 128-byte rows a half used every other cache line and only half of L1's sets
// (measured on Zen 4 at AVX2: +10 % with contiguous halves).
void pack_dense_weights(const float* W, int N, int K, float* packed, int threads) {
  const int panels = (N + kPanelWidth - 1) / kPanelWidth;
#pragma omp parallel for schedule(static) num_threads(std::max(1, threads))
  for (int p = 0; p < panels; ++p) {
    const int n0 = p * kPanelWidth, cols = std::min(kPanelWidth, N - n0);
    float* panel = packed + static_cast<long>(p) * K * kPanelWidth;
    const float* rows = W + static_cast<long>(n0) * K;
#if !defined(__AVX2__) || defined(__AVX512F__)
    pack_transposed(rows, K, cols, K, panel);  // the plain [K][32] panel, as the attention's operands
#else
    if (cols < kPanelWidth) std::memset(panel, 0, sizeof(float) * K * kPanelWidth);
    for (int k0 = 0; k0 < K; k0 += kKc) {
      const int kc = std::min(kKc, K - k0);
      float* slice = panel + static_cast<long>(k0) * kPanelWidth;
      // k outer: the slice is written in order, the 32 source rows read as 32 sequential streams.
      for (int k = 0; k < kc; ++k)
        for (int c = 0; c < cols; ++c) slice[(c / 16) * 16L * kc + k * 16L + c % 16] = rows[static_cast<long>(c) * K + k0 + k];
    }
#endif
  }
}

void dense_gemm(const float* A, int lda, int M, int K, const float* packed, int N, const float* bias, float* C,
                int ldc, const float* residual, int p0, int p1, float* scratch) {
  if (M <= 0) return;
  const int rows_per_block = block_rows(M);
  for (int k0 = 0; k0 < K; k0 += kKc) {
    const int kc = std::min(kKc, K - k0);
    for (int m0 = 0; m0 < M; m0 += rows_per_block) {
      const int mc = std::min(rows_per_block, M - m0);
      pack_block(A, lda, m0, mc, k0, kc, scratch);
      for (int p = p0; p < p1; ++p) {
        const int n0 = p * kPanelWidth, cols = std::min(kPanelWidth, N - n0);
        const Start start{k0 == 0 ? bias + n0 : nullptr,
                          k0 == 0 && residual ? residual + static_cast<long>(m0) * ldc + n0 : nullptr};
        panel_block(scratch, mc, kc, packed + (static_cast<long>(p) * K + k0) * kPanelWidth,
                    C + static_cast<long>(m0) * ldc + n0, ldc, start, cols);
      }
    }
  }
}

}  // namespace pairrm::kernels::PAIRRM_ISA_NS
