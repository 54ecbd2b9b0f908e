#include "jobs/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace pairrm::jobs {
namespace {

std::string duration(double s) {
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%.0fs", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  else std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s) / 3600, static_cast<int>(s) % 3600 / 60);
  return buf;
}

}  // namespace

Progress::Progress(std::string label, long total, bool quiet)
    : label_(std::move(label)), total_(total), quiet_(quiet), tty_(::isatty(STDERR_FILENO) == 1) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

void Progress::advance(long done) {
  if (start_done_ < 0) {
    start_done_ = done;  // lines skipped by --resume do not count towards the rate
    start_ = std::chrono::steady_clock::now();
  }
  done_ = done;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  if (!quiet_ && since >= (tty_ ? 0.1 : 10.0)) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::draw(bool final) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const long fresh = done_ - (start_done_ < 0 ? 0 : start_done_);
  const double rate = elapsed > 0 ? fresh / elapsed : 0;
  std::string line = label_ + ": " + std::to_string(done_);
  if (total_ >= 0) line += "/" + std::to_string(total_);
  char buf[64];
  std::snprintf(buf, sizeof buf, " lines, %.1f lines/s", rate);
  line += buf;
  if (total_ > 0 && rate > 0 && done_ < total_) line += ", ETA " + duration((total_ - done_) / rate);
  if (tty_) {
    if (total_ > 0) {
      const int width = 24, filled = static_cast<int>(width * std::min(1.0, static_cast<double>(done_) / total_));
      line += " [" + std::string(filled, '=') + std::string(width - filled, ' ') + "]";
    }
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

void Progress::finish(const std::string& summary) {
  if (quiet_) return;
  if (tty_) draw(true);
  std::fprintf(stderr, "%s: %s\n", label_.c_str(), summary.c_str());
}

}  // namespace pairrm::jobs
