// GEMM glue for the fp32 Linear layers (oneDNN's sgemm on the weights in place), and the fixed column
// chunks every dense layer is split into.
#pragma once
#include <functional>

namespace pairrm::kernels {

// Output columns of a dense layer are computed in fixed chunks of this many, each by one thread with
// oneDNN single-threaded inside. A chunk's arithmetic depends only on (M, K, the chunk), never on how many
// threads share the chunks, so a row's result is the same for every thread count. (oneDNN's own threading
// splits the work differently per thread count: measured, sgemm 300×1024·1024×4096 differs in a quarter
// of its outputs between 1 and 2 threads.) Chunked, two threads run as fast as oneDNN's own split.
constexpr int kColumnChunk = 256;

inline int column_chunks(int N) { return (N + kColumnChunk - 1) / kColumnChunk; }

// Runs task(c) for every c in [0, count) on up to `threads` threads; inside a task OpenMP and oneDNN see
// one thread. The first exception a task throws is rethrown here once all tasks are done.
void for_each_chunk(int count, int threads, const std::function<void(int)>& task);

// C[M,N] = A[M,K] · W[N,K]ᵀ (+ bias[N]) (+ C when accumulate): a Linear layer with PyTorch's [out, in]
// weight layout, used in place from the memory-mapped checkpoint, in column chunks over `threads` threads.
void linear(const float* A, int M, int K, int lda, const float* W, int N, const float* bias, float* C, int ldc,
            bool accumulate, int threads);
// The same for one chunk's columns only, written to out[M, its columns] (row stride ldo): for callers that
// add work per chunk while it is in cache.
void linear_chunk(const float* A, int M, int K, int lda, const float* W, int N, const float* bias, float* out,
                  int ldo, bool accumulate, int chunk);

}  // namespace pairrm::kernels
