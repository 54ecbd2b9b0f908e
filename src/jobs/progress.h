// Progress on stderr: a bar on a terminal, plain periodic lines otherwise, nothing with --quiet.
#pragma once
#include <chrono>
#include <string>

namespace pairrm::jobs {

class Progress {
 public:
  Progress(std::string label, long total, bool quiet);  // total < 0: unknown
  void advance(long done);                              // absolute count of lines done
  void finish(const std::string& summary);

 private:
  void draw(bool final);

  std::string label_;
  long total_;
  bool quiet_, tty_;
  long done_ = 0, start_done_ = -1;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace pairrm::jobs
