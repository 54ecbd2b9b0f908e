// A per-process scratch file for the targets that feed their input through the file system.
#pragma once
#include <unistd.h>

#include <string>

namespace pairrm::fuzz {

// On a disk file system, rewriting a truncated file at every execution forces block I/O (ext4 allocates
// blocks on close after a truncate): half of fuzz_jsonl's time went to the disk driver. Memory-backed
// /dev/shm keeps the same code path at memory speed; /tmp where it is missing.
inline std::string scratch_path(const std::string& suffix) {
  static const std::string dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  return dir + "/pairrm_fuzz_" + std::to_string(getpid()) + suffix;
}

}  // namespace pairrm::fuzz
