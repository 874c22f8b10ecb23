// serve_once FILE PORT_FILE: a one-shot loopback listener for the tutorials' socket tests
// (what `nc -l 127.0.0.1 PORT < FILE` does by hand). Listens on 127.0.0.1 at a free port,
// writes the port to PORT_FILE (atomically, by rename), sends FILE to the first client and
// closes. Gives up after 30 s without a client. Exit status 0 when the file was sent.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: serve_once FILE PORT_FILE\n";
    return 2;
  }
  std::ifstream in{argv[1], std::ios::binary};
  if (!in) {
    std::cerr << "serve_once: cannot read " << argv[1] << "\n";
    return 2;
  }
  const std::string data{std::istreambuf_iterator<char>{in}, {}};
  const int srv = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (srv < 0 || ::bind(srv, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(srv, 1) != 0 || ::getsockname(srv, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::perror("serve_once: listen");
    return 1;
  }
  const std::string part = std::string{argv[2]} + ".part";
  {
    std::ofstream port{part};
    port << ntohs(addr.sin_port);
  }
  if (std::rename(part.c_str(), argv[2]) != 0) {
    std::perror("serve_once: port file");
    return 1;
  }
  pollfd p{srv, POLLIN, 0};
  if (::poll(&p, 1, 30'000) != 1) {
    std::cerr << "serve_once: no client within 30 s\n";
    return 1;
  }
  const int conn = ::accept(srv, nullptr, nullptr);
  if (conn < 0) {
    std::perror("serve_once: accept");
    return 1;
  }
  for (std::size_t sent = 0; sent < data.size();) {
    const auto n = ::send(conn, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      std::perror("serve_once: send");
      return 1;
    }
    sent += static_cast<std::size_t>(n);
  }
  ::close(conn);
  ::close(srv);
  return 0;
}
