// A full-size PairRM checkpoint with random weights (PairRM's exact shapes and tensor names), for
// benchmarking without the real 1.74 GB file.
#pragma once
#include <cstdint>
#include <string>

namespace pairrm {

struct RandomCheckpointOptions {
  std::string out_dir;
  std::string tokenizer_dir;  // spm.model and the added-token files are copied from here
  uint64_t seed = 0;
  // PairRM-hf's shapes; smaller values make quick test checkpoints.
  int hidden_size = 1024, num_layers = 24, num_heads = 16, intermediate_size = 4096;
  // false: the benchmark checkpoint (unchanged since the first benchmarks; its logits are ~0.003).
  // true: Hugging Face's initialisation, the candidate prefix tokens' embedding rows 0 and head_layer.4 scaled,
  // so that the logits are spread like PairRM's, for accuracy measurements (see kRealisticHead2Std in
  // init_random.cpp for how and why).
  bool realistic = false;
};

// Writes config.json, model.safetensors and the tokenizer files into out_dir. Throws pairrm::Error.
void write_random_checkpoint(const RandomCheckpointOptions& options);

}  // namespace pairrm
