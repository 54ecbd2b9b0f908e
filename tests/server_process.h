// Starts the real `pairrm serve` process on a free loopback port for the server tests, and stops it.
#pragma once
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <httplib.h>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace pairrm::test {

class ServerProcess {
 public:
  // args: extra `pairrm serve` flags. Reads the "listening on http://HOST:PORT" line from its stdout.
  explicit ServerProcess(const std::vector<std::string>& args) {
    int out[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    std::vector<std::string> all = {PAIRRM_BIN, "serve", "--port", "0"};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, PAIRRM_BIN, &fa, nullptr, argv.data(), environ) != 0) throw std::runtime_error("spawn");
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    std::string line;
    char c;
    while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
    close(out[0]);
    const auto colon = line.rfind(':');
    const auto scheme = line.find("listening on http://");
    if (scheme == std::string::npos || colon == std::string::npos || colon < scheme + 20) {
      stop();
      throw std::runtime_error("the server did not start: '" + line + "'");
    }
    port_ = std::stoi(line.substr(colon + 1));
    host_ = line.substr(scheme + 20, colon - (scheme + 20));
  }
  ~ServerProcess() {
    if (pid_ > 0) stop();
  }

  int port() const { return port_; }
  // The address the "listening on" line names (--host; 127.0.0.1 by default). client() always dials 127.0.0.1.
  const std::string& host() const { return host_; }
  pid_t pid() const { return pid_; }
  httplib::Client client(int timeout_s = 120) const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(timeout_s, 0);
    c.set_write_timeout(timeout_s, 0);
    return c;
  }

  // SIGTERM, then the exit status (-1 when it did not exit normally within the limit).
  int stop(std::chrono::seconds limit = std::chrono::seconds(60)) {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    const auto until = std::chrono::steady_clock::now() + limit;
    int status = 0;
    for (;;) {
      const pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) break;
      if (std::chrono::steady_clock::now() > until) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        pid_ = -1;
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string host_;
};

}  // namespace pairrm::test
