#include "sluice/core/codec/time_format.hpp"

#include <charconv>
#include <cstdint>
#include <limits>

namespace sluice::codec {

namespace {

constexpr std::int64_t us_per_second = 1'000'000;
constexpr std::int64_t us_per_minute = 60 * us_per_second;
constexpr std::int64_t us_per_hour = 60 * us_per_minute;
constexpr std::int64_t us_per_day = 24 * us_per_hour;

struct civil_date {
  std::int64_t year;
  unsigned month; // 1..12
  unsigned day;   // 1..31
};

// Howard Hinnant's days_from_civil / civil_from_days, in 64-bit arithmetic so that every
// event_time value (about +-292,000 years) converts without overflow.
constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

constexpr civil_date civil_from_days(std::int64_t z) noexcept {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {y + (m <= 2 ? 1 : 0), m, d};
}

static_assert(days_from_civil(1970, 1, 1) == 0);
static_assert(days_from_civil(2000, 3, 1) == 11017);
static_assert(civil_from_days(11017).month == 3);

constexpr bool is_leap(std::int64_t y) noexcept {
  return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

constexpr unsigned days_in_month(std::int64_t y, unsigned m) noexcept {
  constexpr unsigned table[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : table[m - 1];
}

void append_padded(std::string& out, std::uint64_t value, int width) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  static_cast<void>(ec); // 24 bytes always hold a uint64
  for (auto len = end - buf; len < width; ++len)
    out += '0';
  out.append(buf, end);
}

// A cursor over the timestamp text; each reader returns false when the text does not match.
class scanner {
public:
  explicit scanner(std::string_view text) noexcept : text_(text) {}

  bool at_end() const noexcept { return pos_ == text_.size(); }
  char peek() const noexcept { return at_end() ? '\0' : text_[pos_]; }

  bool eat(char c) noexcept {
    if (peek() != c || at_end())
      return false;
    ++pos_;
    return true;
  }

  /// Reads exactly `n` decimal digits.
  bool digits(int n, unsigned& out) noexcept {
    unsigned v = 0;
    for (int i = 0; i < n; ++i) {
      const char c = peek();
      if (at_end() || c < '0' || c > '9')
        return false;
      v = v * 10 + static_cast<unsigned>(c - '0');
      ++pos_;
    }
    out = v;
    return true;
  }

  /// Reads 1 to 9 fraction digits as microseconds, truncating digits beyond the sixth.
  bool fraction(std::int64_t& micros, std::string_view& problem) noexcept {
    int count = 0;
    std::int64_t v = 0;
    while (!at_end() && peek() >= '0' && peek() <= '9') {
      if (count < 6)
        v = v * 10 + (peek() - '0');
      ++count;
      ++pos_;
    }
    if (count == 0) {
      problem = "expected digits after the decimal separator";
      return false;
    }
    if (count > 9) {
      problem = "more than 9 fraction digits";
      return false;
    }
    for (int i = count; i < 6; ++i)
      v *= 10;
    micros = v;
    return true;
  }

private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

error timestamp_error(std::string_view text, std::string_view problem) {
  std::string msg = "invalid timestamp \"";
  msg.append(text.substr(0, 64));
  if (text.size() > 64)
    msg += "...";
  msg += "\": ";
  msg.append(problem);
  return make_error(error_code::malformed_record, std::move(msg));
}

struct duration_unit {
  std::string_view suffix;
  std::int64_t micros;
};

// Longer suffixes first, so that "ms" is not read as "m" followed by garbage.
constexpr duration_unit duration_units[] = {
  {"ms", 1'000}, {"us", 1}, {"d", us_per_day}, {"h", us_per_hour}, {"m", us_per_minute},
  {"s", us_per_second},
};

error duration_error(std::string_view text, std::string_view problem) {
  std::string msg = "invalid duration \"";
  msg.append(text.substr(0, 64));
  msg += "\": ";
  msg.append(problem);
  return make_error(error_code::invalid_option, std::move(msg));
}

} // namespace

std::string format_iso8601(event_time t) {
  const std::int64_t us = t.time_since_epoch().count();
  std::int64_t days = us / us_per_day;
  std::int64_t tod = us % us_per_day;
  if (tod < 0) { // floor, so times before 1970 still have a non-negative time of day
    tod += us_per_day;
    --days;
  }
  const civil_date date = civil_from_days(days);
  std::string out;
  out.reserve(32);
  if (date.year < 0) {
    out += '-';
    append_padded(out, static_cast<std::uint64_t>(-date.year), 4);
  } else {
    append_padded(out, static_cast<std::uint64_t>(date.year), 4);
  }
  out += '-';
  append_padded(out, date.month, 2);
  out += '-';
  append_padded(out, date.day, 2);
  out += 'T';
  append_padded(out, static_cast<std::uint64_t>(tod / us_per_hour), 2);
  out += ':';
  append_padded(out, static_cast<std::uint64_t>(tod / us_per_minute % 60), 2);
  out += ':';
  append_padded(out, static_cast<std::uint64_t>(tod / us_per_second % 60), 2);
  if (const auto frac = static_cast<std::uint64_t>(tod % us_per_second); frac != 0) {
    out += '.';
    if (frac % 1000 == 0)
      append_padded(out, frac / 1000, 3);
    else
      append_padded(out, frac, 6);
  }
  out += 'Z';
  return out;
}

result<event_time> parse_iso8601(std::string_view text) {
  scanner in{text};
  unsigned year = 0;
  unsigned month = 0;
  unsigned day = 0;
  if (!in.digits(4, year) || !in.eat('-') || !in.digits(2, month) || !in.eat('-')
      || !in.digits(2, day))
    return timestamp_error(text, "expected YYYY-MM-DD[Thh:mm:ss[.fff]][Z|+hh:mm]");
  if (month < 1 || month > 12)
    return timestamp_error(text, "month out of range");
  if (day < 1 || day > days_in_month(year, month))
    return timestamp_error(text, "day out of range");
  std::int64_t micros = days_from_civil(year, month, day) * us_per_day;
  if (in.at_end())
    return event_time{std::chrono::microseconds{micros}};

  if (!in.eat('T') && !in.eat('t') && !in.eat(' '))
    return timestamp_error(text, "expected 'T' or a space between date and time");
  unsigned hour = 0;
  unsigned minute = 0;
  unsigned second = 0;
  if (!in.digits(2, hour) || !in.eat(':') || !in.digits(2, minute) || !in.eat(':')
      || !in.digits(2, second))
    return timestamp_error(text, "expected the time as hh:mm:ss");
  if (hour > 23 || minute > 59 || second > 59)
    return timestamp_error(text, "time of day out of range");
  micros += hour * us_per_hour + minute * us_per_minute + second * us_per_second;
  if (in.eat('.') || in.eat(',')) {
    std::int64_t frac = 0;
    std::string_view problem;
    if (!in.fraction(frac, problem))
      return timestamp_error(text, problem);
    micros += frac;
  }

  if (in.eat('Z') || in.eat('z')) {
    // UTC
  } else if (in.peek() == '+' || in.peek() == '-') {
    const bool east = in.peek() == '+';
    static_cast<void>(in.eat(in.peek()));
    unsigned off_h = 0;
    unsigned off_m = 0;
    if (!in.digits(2, off_h))
      return timestamp_error(text, "expected the zone offset as +hh:mm");
    static_cast<void>(in.eat(':')); // "+hhmm" is accepted as well
    if (!in.digits(2, off_m))
      return timestamp_error(text, "expected the zone offset as +hh:mm");
    if (off_h > 23 || off_m > 59)
      return timestamp_error(text, "zone offset out of range");
    // Local time = UTC + offset, so UTC = local - offset.
    const std::int64_t offset = off_h * us_per_hour + off_m * us_per_minute;
    micros += east ? -offset : offset;
  } else if (!in.at_end()) {
    return timestamp_error(text, "expected 'Z' or a zone offset such as +01:00");
  }
  if (!in.at_end())
    return timestamp_error(text, "unexpected characters after the timestamp");
  return event_time{std::chrono::microseconds{micros}};
}

result<std::chrono::microseconds> parse_duration(std::string_view text) {
  constexpr std::string_view expected =
    "expected a number followed by d, h, m, s, ms or us (e.g. \"250ms\", \"1h30m\")";
  std::string_view rest = text;
  const bool negative = rest.starts_with('-');
  if (negative)
    rest.remove_prefix(1);
  if (rest == "0")
    return std::chrono::microseconds{0};
  if (rest.empty())
    return duration_error(text, expected);
  std::int64_t total = 0;
  while (!rest.empty()) {
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), value);
    if (ec == std::errc::result_out_of_range)
      return duration_error(text, "out of range");
    if (ec != std::errc{})
      return duration_error(text, expected);
    rest.remove_prefix(static_cast<std::size_t>(end - rest.data()));
    const duration_unit* unit = nullptr;
    for (const auto& u : duration_units) {
      if (rest.starts_with(u.suffix)) {
        unit = &u;
        break;
      }
    }
    if (unit == nullptr)
      return duration_error(text, expected);
    rest.remove_prefix(unit->suffix.size());
    constexpr auto max = std::numeric_limits<std::int64_t>::max();
    if (value > static_cast<std::uint64_t>(max / unit->micros))
      return duration_error(text, "out of range");
    const auto part = static_cast<std::int64_t>(value) * unit->micros;
    if (total > max - part)
      return duration_error(text, "out of range");
    total += part;
  }
  return std::chrono::microseconds{negative ? -total : total};
}

std::string format_duration(std::chrono::microseconds d) {
  const std::int64_t count = d.count();
  if (count == 0)
    return "0s";
  std::string out;
  // Work in unsigned so that the most negative value has a magnitude too.
  std::uint64_t rest = static_cast<std::uint64_t>(count);
  if (count < 0) {
    out += '-';
    rest = ~rest + 1;
  }
  constexpr duration_unit order[] = {
    {"d", us_per_day}, {"h", us_per_hour}, {"m", us_per_minute},
    {"s", us_per_second}, {"ms", 1'000}, {"us", 1},
  };
  for (const auto& u : order) {
    const auto unit = static_cast<std::uint64_t>(u.micros);
    if (const std::uint64_t n = rest / unit; n != 0) {
      out += std::to_string(n);
      out.append(u.suffix);
      rest %= unit;
    }
  }
  return out;
}

} // namespace sluice::codec
