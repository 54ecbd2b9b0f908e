// A read-only memory-mapped file (weights are used in place, never copied when they are F32).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace pairrm {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws pairrm::Error
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Drops the resident pages wholly inside [p, p + n) (after their contents were copied elsewhere, e.g.
  // packed): they stop counting towards RSS and are read from the file again if ever touched.
  void release(const void* p, size_t n) const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Reads a whole (small) text file; throws pairrm::Error naming the path.
std::string read_text_file(const std::string& path);
bool file_exists(const std::string& path);

}  // namespace pairrm
