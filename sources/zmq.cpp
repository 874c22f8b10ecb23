// The non-template half of the ZeroMQ source (sources/zmq.hpp).
#include "sluice/sources/zmq.hpp"

#include "sluice/core/log.hpp"

#include <fmt/format.h>

namespace sluice::sources::detail {

net::zmq_socket_options zmq_source_socket_options(const zmq_options& o) {
  return {.type = o.pattern == zmq_pattern::sub ? net::zmq_socket_type::sub
                                                : net::zmq_socket_type::pull,
          .endpoint = o.endpoint,
          .bind = o.bind,
          .topics = o.topics,
          .high_water_mark = o.high_water_mark,
          // What was received but not read is lost anyway (at-most-once): close at once.
          .linger = std::chrono::milliseconds{0}};
}

result<void> validate_zmq_options(const zmq_options& o) {
  const auto who = "zmq source " + (o.endpoint.empty() ? std::string{"(no endpoint)"} : o.endpoint);
  if (auto ok = net::validate_zmq_socket_options(zmq_source_socket_options(o), who); !ok)
    return ok;
  if (o.max_message_bytes == 0)
    return make_error(error_code::invalid_option, who + ": max_message_bytes must be positive");
  if (o.poll_interval <= std::chrono::milliseconds::zero())
    return make_error(error_code::invalid_option,
                      fmt::format("{}: poll_interval {} ms must be positive", who,
                                  o.poll_interval.count()));
  return {};
}

void warn_zmq_source_at_most_once(std::atomic<bool>& logged, const std::string& name,
                                  const std::string& endpoint) {
  if (logged.exchange(true))
    return;
  logging::get().warn("zmq source '{}' ({}): checkpoints store nothing for it: ZeroMQ cannot "
                      "replay, so delivery is at-most-once, not exactly-once (what was read "
                      "but not yet written out is lost at a failure or restart)",
                      name, endpoint);
}

} // namespace sluice::sources::detail
