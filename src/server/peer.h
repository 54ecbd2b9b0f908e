// Noticing that an HTTP client went away while its request waits for the network: the connection's socket
// (ConnectionGate::current_socket) is polled for a hang-up.
#pragma once

namespace pairrm::server {

class PeerWatch {
 public:
  explicit PeerWatch(int fd) : fd_(fd) {}
  // True once the peer has closed its end. False for no socket (-1): never cancels wrongly.
  bool closed() const;

 private:
  int fd_;
};

}  // namespace pairrm::server
