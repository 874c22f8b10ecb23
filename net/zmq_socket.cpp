#include "sluice/net/zmq_socket.hpp"

#include <fmt/format.h>
#include <zmq.hpp>

#include <algorithm>
#include <charconv>
#include <mutex>
#include <optional>

namespace sluice::net {

namespace {

/// The process's context for the connectors: made with the first socket, terminated (which
/// waits for lingering messages) when the last socket lets go of it.
std::shared_ptr<zmq::context_t> shared_context() {
  static std::mutex m;
  static std::weak_ptr<zmq::context_t> current;
  std::lock_guard guard{m};
  if (auto ctx = current.lock())
    return ctx;
  auto ctx = std::make_shared<zmq::context_t>(1);
  current = ctx;
  return ctx;
}

zmq::socket_type native(zmq_socket_type t) {
  switch (t) {
    case zmq_socket_type::pull: return zmq::socket_type::pull;
    case zmq_socket_type::sub: return zmq::socket_type::sub;
    case zmq_socket_type::push: return zmq::socket_type::push;
    case zmq_socket_type::pub: return zmq::socket_type::pub;
  }
  return zmq::socket_type::pull;
}

bool receives(zmq_socket_type t) { return t == zmq_socket_type::pull || t == zmq_socket_type::sub; }

error invalid(std::string_view who, std::string message) {
  return make_error(error_code::invalid_option, fmt::format("{}: {}", who, message));
}

} // namespace

std::string_view to_string(zmq_socket_type type) noexcept {
  switch (type) {
    case zmq_socket_type::pull: return "PULL";
    case zmq_socket_type::sub: return "SUB";
    case zmq_socket_type::push: return "PUSH";
    case zmq_socket_type::pub: return "PUB";
  }
  return "?";
}

result<void> validate_zmq_socket_options(const zmq_socket_options& o, std::string_view who) {
  const auto& ep = o.endpoint;
  const auto sep = ep.find("://");
  if (ep.empty())
    return invalid(who, "endpoint is empty: give tcp://host:port, ipc://path or inproc://name");
  if (sep == std::string::npos || sep == 0 || sep + 3 == ep.size())
    return invalid(who, fmt::format("endpoint '{}' is not transport://address (tcp://host:port, "
                                    "ipc://path or inproc://name)",
                                    ep));
  const auto transport = std::string_view{ep}.substr(0, sep);
  const auto address = std::string_view{ep}.substr(sep + 3);
  if (transport != "tcp" && transport != "ipc" && transport != "inproc")
    return invalid(who, fmt::format("endpoint '{}': transport '{}' is not tcp, ipc or inproc", ep,
                                    transport));
  if (transport == "tcp") {
    const auto colon = address.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
      return invalid(who, fmt::format("endpoint '{}' has no host:port", ep));
    const auto port = address.substr(colon + 1);
    int n = -1;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    const bool numeric = ec == std::errc{} && end == port.data() + port.size() && n >= 0 &&
                         n <= 65535;
    // `*` (and port 0) let the system pick a port, which only means something when binding.
    const bool wildcard = port == "*" || (numeric && n == 0);
    if (!numeric && port != "*")
      return invalid(who, fmt::format("endpoint '{}': port '{}' is not a number from 1 to 65535",
                                      ep, port));
    if (wildcard && !o.bind)
      return invalid(who, fmt::format("endpoint '{}': a connect needs a real port, not '{}'", ep,
                                      port));
  }
  if (o.high_water_mark < 0)
    return invalid(who, fmt::format("high_water_mark {} is negative (0 means no limit)",
                                    o.high_water_mark));
  if (o.linger < std::chrono::milliseconds::zero())
    return invalid(who, fmt::format("linger {} ms is negative", o.linger.count()));
  if (!o.topics.empty() && o.type != zmq_socket_type::sub)
    return invalid(who, fmt::format("topics apply to a SUB socket only, this one is {}",
                                    to_string(o.type)));
  return {};
}

struct zmq_socket::impl {
  // Declared first so it outlives the socket: the context terminates only after its
  // sockets are closed.
  std::shared_ptr<zmq::context_t> ctx;
  std::optional<zmq::socket_t> socket;
  std::string endpoint;
  std::string who;

  error fail(std::string_view what, const zmq::error_t& e) const {
    return make_error(error_code::io_error,
                      fmt::format("{}: {} {}: {}", who, what, endpoint, e.what()));
  }
};

zmq_socket::zmq_socket() : impl_(std::make_unique<impl>()) {}
zmq_socket::zmq_socket(zmq_socket&&) noexcept = default;
zmq_socket& zmq_socket::operator=(zmq_socket&&) noexcept = default;
zmq_socket::~zmq_socket() { close(); }

result<zmq_socket> zmq_socket::open(const zmq_socket_options& o, std::string_view who) {
  if (auto ok = validate_zmq_socket_options(o, who); !ok)
    return std::move(ok).error();
  zmq_socket s;
  auto& p = *s.impl_;
  p.who = std::string{who};
  p.endpoint = o.endpoint;
  try {
    p.ctx = shared_context();
    p.socket.emplace(*p.ctx, native(o.type));
    p.socket->set(zmq::sockopt::linger, static_cast<int>(o.linger.count()));
    if (receives(o.type))
      p.socket->set(zmq::sockopt::rcvhwm, o.high_water_mark);
    else
      p.socket->set(zmq::sockopt::sndhwm, o.high_water_mark);
    if (o.type == zmq_socket_type::sub) {
      if (o.topics.empty())
        p.socket->set(zmq::sockopt::subscribe, std::string_view{});
      for (const auto& t : o.topics)
        p.socket->set(zmq::sockopt::subscribe, t);
    }
  } catch (const zmq::error_t& e) {
    return p.fail("cannot set up the socket for", e);
  }
  try {
    if (o.bind) {
      p.socket->bind(o.endpoint);
      p.endpoint = p.socket->get(zmq::sockopt::last_endpoint);
    } else {
      p.socket->connect(o.endpoint);
    }
  } catch (const zmq::error_t& e) {
    return p.fail(o.bind ? "cannot bind" : "cannot connect to", e);
  }
  return s;
}

result<bool> zmq_socket::try_receive(std::vector<std::string>& parts) {
  parts.clear();
  auto& p = *impl_;
  if (!p.socket)
    return make_error(error_code::internal, p.who + ": receive on a closed socket");
  try {
    for (;;) {
      zmq::message_t msg;
      // Parts of one message arrive together (ZeroMQ delivers whole messages), so only
      // the first may find nothing.
      auto got = p.socket->recv(msg, zmq::recv_flags::dontwait);
      if (!got) {
        if (parts.empty())
          return false;
        return make_error(error_code::internal,
                          fmt::format("{}: {}: a message ended without its last part", p.who,
                                      p.endpoint));
      }
      parts.emplace_back(static_cast<const char*>(msg.data()), msg.size());
      if (!msg.more())
        return true;
    }
  } catch (const zmq::error_t& e) {
    return p.fail("cannot receive from", e);
  }
}

result<bool> zmq_socket::try_send(const std::vector<std::string_view>& parts) {
  auto& p = *impl_;
  if (!p.socket)
    return make_error(error_code::internal, p.who + ": send on a closed socket");
  if (parts.empty())
    return make_error(error_code::internal, p.who + ": a message needs at least one part");
  try {
    for (std::size_t i = 0; i < parts.size(); ++i) {
      const bool last = i + 1 == parts.size();
      auto flags = last ? zmq::send_flags::dontwait
                        : zmq::send_flags::dontwait | zmq::send_flags::sndmore;
      auto sent = p.socket->send(zmq::const_buffer{parts[i].data(), parts[i].size()}, flags);
      if (!sent) {
        // The high-water mark is checked at a message's first part only (libzmq counts
        // whole messages), so a later part cannot be refused.
        if (i == 0)
          return false;
        return make_error(error_code::internal,
                          fmt::format("{}: {}: ZeroMQ refused part {} of a message after "
                                      "taking its first",
                                      p.who, p.endpoint, i + 1));
      }
    }
    return true;
  } catch (const zmq::error_t& e) {
    return p.fail("cannot send to", e);
  }
}

result<bool> zmq_socket::wait_writable(std::chrono::milliseconds timeout) {
  auto& p = *impl_;
  if (!p.socket)
    return make_error(error_code::internal, p.who + ": wait on a closed socket");
  zmq::pollitem_t item{p.socket->handle(), 0, ZMQ_POLLOUT, 0};
  try {
    return zmq::poll(&item, 1, timeout) > 0 && (item.revents & ZMQ_POLLOUT) != 0;
  } catch (const zmq::error_t& e) {
    return p.fail("cannot wait for", e);
  }
}

const std::string& zmq_socket::endpoint() const noexcept { return impl_->endpoint; }

void zmq_socket::close() noexcept {
  if (!impl_)
    return;
  impl_->socket.reset();
  impl_->ctx.reset();
}

bool zmq_socket::is_open() const noexcept { return impl_ && impl_->socket.has_value(); }

} // namespace sluice::net
