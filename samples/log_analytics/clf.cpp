#include "sluice/samples/log_analytics/clf.hpp"

#include <array>
#include <charconv>
#include <chrono>

namespace sluice::logs {

namespace {

result<void> bad(const std::string& what) { return make_error(error_code::malformed_record, what); }

template <class N>
bool number(std::string_view s, N& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc{} && p == s.data() + s.size();
}

/// `10/Oct/2000:13:55:36 -0700` (exactly this shape, as Apache writes it).
std::optional<event_time> parse_time(std::string_view t) {
  static constexpr std::array<std::string_view, 12> months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (t.size() != 26 || t[2] != '/' || t[6] != '/' || t[11] != ':' || t[14] != ':' ||
      t[17] != ':' || t[20] != ' ' || (t[21] != '+' && t[21] != '-'))
    return std::nullopt;
  unsigned day = 0, hh = 0, mm = 0, ss = 0, off_h = 0, off_m = 0;
  int year = 0;
  if (!number(t.substr(0, 2), day) || !number(t.substr(7, 4), year) || !number(t.substr(12, 2), hh) ||
      !number(t.substr(15, 2), mm) || !number(t.substr(18, 2), ss) ||
      !number(t.substr(22, 2), off_h) || !number(t.substr(24, 2), off_m))
    return std::nullopt;
  unsigned month = 0;
  for (unsigned i = 0; i < months.size(); ++i)
    if (months[i] == t.substr(3, 3))
      month = i + 1;
  const std::chrono::year_month_day ymd{std::chrono::year{year}, std::chrono::month{month},
                                        std::chrono::day{day}};
  if (month == 0 || !ymd.ok() || hh > 23 || mm > 59 || ss > 60 || off_h > 23 || off_m > 59)
    return std::nullopt;
  const auto offset = std::chrono::hours{off_h} + std::chrono::minutes{off_m};
  const auto local = std::chrono::sys_days{ymd} + std::chrono::hours{hh} + std::chrono::minutes{mm} +
                     std::chrono::seconds{ss};
  // Local time = UTC + offset, so UTC = local - offset.
  return event_time{t[21] == '+' ? local - offset : local + offset};
}

/// The next space-separated field of `rest`, which moves past it.
std::string_view field(std::string_view& rest) {
  const auto end = rest.find(' ');
  auto f = rest.substr(0, end);
  rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
  return f;
}

} // namespace

std::optional<event_time> clf_time(std::string_view line) {
  const auto open = line.find('[');
  const auto close = line.find(']', open == std::string_view::npos ? 0 : open);
  if (open == std::string_view::npos || close == std::string_view::npos)
    return std::nullopt;
  return parse_time(line.substr(open + 1, close - open - 1));
}

result<access_log> parse_clf(std::string_view line) {
  if (!line.empty() && line.back() == '\r')
    line.remove_suffix(1);
  access_log r;
  auto rest = line;
  r.host = field(rest);
  const auto ident = field(rest);
  r.user = field(rest);
  if (r.host.empty() || ident.empty() || r.user.empty() || rest.empty() || rest[0] != '[')
    return bad("expected 'host ident user [time] \"request\" status bytes'").error();
  const auto close = rest.find(']');
  if (close == std::string_view::npos)
    return bad("no closing ']' after the time").error();
  auto time = parse_time(rest.substr(1, close - 1));
  if (!time)
    return bad("time '" + std::string{rest.substr(1, close - 1)} +
               "' is not dd/Mon/yyyy:HH:MM:SS +hhmm").error();
  r.time = *time;
  rest = rest.substr(close + 1);
  if (rest.size() < 2 || rest[0] != ' ' || rest[1] != '"')
    return bad("expected '\"' before the request").error();
  rest = rest.substr(2);
  const auto quote = rest.find('"');
  if (quote == std::string_view::npos)
    return bad("no closing '\"' after the request").error();
  const auto request_text = rest.substr(0, quote);
  auto request = request_text;
  rest = rest.substr(quote + 1);
  r.method = field(request);
  r.url = field(request);
  r.protocol = std::string{request};
  if (r.method.empty() || r.url.empty())
    return bad("request '" + std::string{request_text} + "' has no method and URL").error();
  if (rest.empty() || rest[0] != ' ')
    return bad("expected a status after the request").error();
  rest = rest.substr(1);
  const auto status = field(rest);
  if (!number(status, r.status) || r.status < 100 || r.status > 599)
    return bad("status '" + std::string{status} + "' is not a number from 100 to 599").error();
  const auto bytes = field(rest);
  if (bytes != "-" && !number(bytes, r.bytes))
    return bad("size '" + std::string{bytes} + "' is neither a number nor '-'").error();
  if (!rest.empty())
    return bad("unexpected text after the size: '" + std::string{rest} + "'").error();
  return r;
}

} // namespace sluice::logs
