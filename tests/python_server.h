// A stand-in server written in Python (tests/*_server.py), started in the background for one test: the
// script prints "port N" once listening on 127.0.0.1 and is stopped with SIGTERM.
#pragma once
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace pairrm::test {

class PythonServer {
 public:
  PythonServer(const std::string& script, const std::string& args) {
    namespace fs = std::filesystem;
    static int serial = 0;
    const std::string port_file = (fs::temp_directory_path() / ("pairrm_stand_in_port_" + std::to_string(::getpid()) +
                                                                "_" + std::to_string(serial++)))
                                      .string();
    fs::remove(port_file);
    const std::string cmd = "python3 " PAIRRM_SOURCE_DIR "/tests/" + script + " " + args + " > " + port_file +
                            " 2>/dev/null & echo $!";
    FILE* p = ::popen(cmd.c_str(), "r");
    char buf[64] = {};
    if (std::fgets(buf, sizeof buf, p)) pid_ = std::atoi(buf);
    ::pclose(p);
    for (int i = 0; i < 400 && port_ == 0; ++i) {
      std::ifstream in(port_file);
      std::string word;
      int port = 0;
      if (in >> word >> port && word == "port") port_ = port;
      else std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    fs::remove(port_file);
  }
  ~PythonServer() { stop(); }
  PythonServer(const PythonServer&) = delete;
  PythonServer& operator=(const PythonServer&) = delete;
  int port() const { return port_; }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void stop() {
    if (pid_ > 0) ::kill(pid_, SIGTERM);
    pid_ = -1;
  }

 private:
  int pid_ = -1;
  int port_ = 0;
};

}  // namespace pairrm::test
