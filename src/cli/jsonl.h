// Streaming JSON Lines: one line in memory at a time, bounded.
#pragma once
#include <istream>
#include <string>

namespace pairrm::cli {

class LineReader {
 public:
  LineReader(std::istream& in, size_t max_line_bytes) : in_(in), max_(max_line_bytes) {}
  // Reads the next line (without '\n'; a trailing '\r' is dropped). Returns false at end of input.
  // A line longer than the limit is consumed and reported through `too_long` with `line` cleared.
  bool next(std::string& line, bool& too_long);
  long line_number() const { return number_; }

 private:
  std::istream& in_;
  size_t max_;
  long number_ = 0;
};

}  // namespace pairrm::cli
