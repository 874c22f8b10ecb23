#pragma once
/// Loopback endpoints for tests of multi-node runs.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace sluice::test {

/// A free TCP port on 127.0.0.1: bound and released, good enough on loopback (a test that
/// loses the race fails to bind, naming the endpoint).
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

/// A cluster of `nodes` loopback endpoints on free ports, node 0 first.
inline std::vector<std::string> loopback_cluster(int nodes) {
  std::vector<std::string> out;
  for (int i = 0; i < nodes; ++i)
    out.push_back("127.0.0.1:" + std::to_string(free_port()));
  return out;
}

} // namespace sluice::test
