#pragma once
/// Web access logs in the Common Log Format (Apache's `%h %l %u %t "%r" %>s %b`):
///
///     127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326
#include "sluice/core/error.hpp"
#include "sluice/core/time.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::logs {

/// One request.
struct access_log {
  std::string host;
  std::string user;        ///< "-" when none
  sluice::event_time time{}; ///< UTC
  std::string method;
  std::string url;
  std::string protocol;
  int status = 0;
  std::uint64_t bytes = 0; ///< 0 for "-"

  friend bool operator==(const access_log&, const access_log&) = default;
};

template <class Inspector>
bool inspect(Inspector& f, access_log& x) {
  return f.object("access_log")
    .fields(f.field("host", x.host), f.field("user", x.user), f.field("time", x.time),
            f.field("method", x.method), f.field("url", x.url), f.field("protocol", x.protocol),
            f.field("status", x.status), f.field("bytes", x.bytes));
}

/// Parses one line. Fails with `malformed_record` naming what is wrong ("no closing ']'
/// after the time", "status 'abc' is not a number from 100 to 599", ...).
[[nodiscard]] result<access_log> parse_clf(std::string_view line);

/// Only the time of a line (`[10/Oct/2000:13:55:36 -0700]`, in UTC), or nothing.
std::optional<sluice::event_time> clf_time(std::string_view line);

} // namespace sluice::logs
