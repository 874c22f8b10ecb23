// The non-template half of the ZeroMQ sink (sinks/zmq.hpp).
#include "sluice/sinks/zmq.hpp"

#include "sluice/core/log.hpp"

#include <fmt/format.h>

namespace sluice::sinks::detail {

net::zmq_socket_options zmq_sink_socket_options(const zmq_sink_options& o) {
  return {.type = o.pattern == zmq_pattern::pub ? net::zmq_socket_type::pub
                                                : net::zmq_socket_type::push,
          .endpoint = o.endpoint,
          .bind = o.bind,
          .topics = {},
          .high_water_mark = o.high_water_mark,
          .linger = o.linger};
}

result<void> validate_zmq_sink_options(const zmq_sink_options& o) {
  const auto who = "zmq sink " + (o.endpoint.empty() ? std::string{"(no endpoint)"} : o.endpoint);
  if (auto ok = net::validate_zmq_socket_options(zmq_sink_socket_options(o), who); !ok)
    return ok;
  if (!o.topic.empty() && o.pattern != zmq_pattern::pub)
    return make_error(error_code::invalid_option,
                      who + ": topic '" + o.topic + "' applies to the pub pattern only, this "
                                                    "sink is push");
  if (o.send_timeout <= std::chrono::milliseconds::zero())
    return make_error(error_code::invalid_option,
                      fmt::format("{}: send_timeout {} ms must be positive", who,
                                  o.send_timeout.count()));
  return {};
}

result<void> zmq_send(net::zmq_socket& socket, const zmq_sink_options& o, std::string_view who,
                      std::string_view payload, std::size_t unsent) {
  std::vector<std::string_view> parts;
  if (o.pattern == zmq_pattern::pub)
    parts.push_back(o.topic);
  parts.push_back(payload);
  const auto deadline = std::chrono::steady_clock::now() + o.send_timeout;
  for (;;) {
    auto sent = socket.try_send(parts);
    if (!sent)
      return std::move(sent).error();
    if (*sent)
      return {};
    // Every PULL peer is at its high-water mark, or none is connected: wait for room.
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
    if (left <= std::chrono::milliseconds::zero())
      return make_error(error_code::connector_failed,
                        fmt::format("{}: no PULL peer of {} took a message for {} ms "
                                    "(send_timeout; every peer at its high-water mark of {} "
                                    "messages, or none connected): {} records of the batch "
                                    "unsent",
                                    who, socket.endpoint(), o.send_timeout.count(),
                                    o.high_water_mark, unsent));
    auto ready = socket.wait_writable(left);
    if (!ready)
      return std::move(ready).error();
  }
}

void warn_zmq_sink_at_most_once(std::atomic<bool>& logged, const std::string& name,
                                const std::string& endpoint) {
  if (logged.exchange(true))
    return;
  logging::get().warn("zmq sink '{}' ({}): delivery is at-most-once, not exactly-once, even "
                      "with checkpoints: ZeroMQ has no acknowledgement or transaction, so "
                      "messages queued when the process stops are lost, and records the job "
                      "replays after a restart are sent again",
                      name, endpoint);
}

} // namespace sluice::sinks::detail
