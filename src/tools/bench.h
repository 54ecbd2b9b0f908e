// `pairrm bench`: end-to-end speed of the network on synthetic rows of PairRM's layout.
#pragma once
#include <string>

#include "pairrm/pairrm.h"

namespace pairrm {

struct BenchOptions {
  std::string model_dir;
  int tokens = 300;      // per pair (ignored with mixed)
  bool mixed = false;    // 64 pairs with lengths spread over 100..1000 tokens
  int pairs = 0;         // 0: 3 for fixed length, 64 for mixed
  int threads = 0;
  bool json = false;
  LoadOptions load;
};

// Runs the benchmark and prints a report (text or one JSON object) to stdout.
void run_bench(const BenchOptions& options);

}  // namespace pairrm
