// Noticing that an HTTP client went away while its request waits for the network. cpp-httplib does not
// hand the connection's socket to a handler, so it is found by its peer address among the process's
// sockets (once per request) and then polled for a hang-up.
#pragma once
#include <string>

namespace pairrm::server {

class PeerWatch {
 public:
  PeerWatch(std::string address, int port) : address_(std::move(address)), port_(port) {}
  // True once the peer has closed its end. False when the socket cannot be found (never cancels wrongly).
  bool closed();

 private:
  std::string address_;
  int port_;
  int fd_ = -2;  // -2: not looked up yet; -1: not found
};

}  // namespace pairrm::server
