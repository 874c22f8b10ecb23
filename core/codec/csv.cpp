#include "sluice/core/codec/csv.hpp"

#include <charconv>
#include <cstdint>
#include <cstring>
#include <system_error>

namespace sluice::codec {

namespace {

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// The cell as it appears in messages: quoted, and cut short if long.
std::string quoted(std::string_view cell) {
  constexpr std::size_t max_len = 40;
  std::string out = "\"";
  out.append(cell.substr(0, max_len));
  if (cell.size() > max_len)
    out += "...";
  out += '"';
  return out;
}

bool cannot_parse(std::string_view cell, std::string_view as_what, detail::decode_error& e) {
  std::string msg = "cannot parse " + quoted(cell) + " as ";
  msg.append(as_what);
  return e.fail(std::move(msg));
}

bool out_of_range(std::string_view cell, std::string_view type_name, detail::decode_error& e) {
  std::string msg = quoted(cell) + " is out of range for ";
  msg.append(type_name);
  return e.fail(std::move(msg));
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size())
    return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i]))
      return false;
  }
  return true;
}

template <class Float>
bool parse_float(std::string_view cell, std::string_view type_name, Float& out,
                 detail::decode_error& e) {
  std::string_view text = trim(cell);
  // from_chars does not take a leading '+', but people and tools write one.
  if (text.size() > 1 && text.front() == '+' && text[1] != '-')
    text.remove_prefix(1);
  Float v{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec == std::errc::result_out_of_range)
    return out_of_range(cell, type_name, e);
  if (ec != std::errc{} || end != text.data() + text.size())
    return cannot_parse(cell, "a number", e);
  out = v;
  return true;
}

template <class Number>
std::string to_text(Number x) {
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, x);
  static_cast<void>(ec); // 64 bytes hold every shortest-form number
  return std::string(buf, end);
}

} // namespace

result<std::vector<std::string>> split_csv_row(std::string_view line, const csv_options& options) {
  const char delim = options.delimiter;
  if (delim == '"' || delim == '\r' || delim == '\n')
    return make_error(error_code::invalid_option,
                      "csv_options::delimiter must not be a quote or a line break");
  if (line.ends_with('\r'))
    line.remove_suffix(1);
  std::vector<std::string> cells;
  std::size_t i = 0;
  const std::size_t n = line.size();
  while (true) {
    if (i < n && line[i] == '"') {
      std::string cell;
      ++i;
      while (true) {
        if (i >= n)
          return make_error(error_code::malformed_record,
                            "unterminated quoted field " + std::to_string(cells.size() + 1));
        if (line[i] == '"') {
          if (i + 1 < n && line[i + 1] == '"') { // "" stands for one quote
            cell += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        cell += line[i++];
      }
      cells.push_back(std::move(cell));
      if (i == n)
        return cells;
      if (line[i] != delim)
        return make_error(error_code::malformed_record,
                          "unexpected character '" + std::string(1, line[i])
                            + "' after the closing quote of field "
                            + std::to_string(cells.size()));
      ++i;
    } else {
      const auto end = line.find(delim, i);
      if (end == std::string_view::npos) {
        cells.emplace_back(line.substr(i));
        return cells;
      }
      cells.emplace_back(line.substr(i, end - i));
      i = end + 1;
    }
  }
}

// Sixteen bytes at a time, with the compiler's portable vector types (SSE2 on x86-64): a
// byte-wise compare per special character, OR-ed, is any byte set? A cell of 16 bytes or
// more ends with one more look at its last 16 (overlapping what was already read); a
// shorter one is looked at once, padded with copies of its first byte (special exactly
// when that byte is). find_first_of calls memchr once per character and a plain loop is
// not vectorised at -O2: either cost Nexmark's q0 a tenth of its CPU, an eight-byte loop 7%.
bool csv_cell_needs_quotes(std::string_view cell, char delimiter) noexcept {
  using bytes16 = char __attribute__((vector_size(16)));
  const auto special16 = [delimiter](const char* p) {
    bytes16 w;
    std::memcpy(&w, p, 16);
    const bytes16 hit = (w == delimiter) | (w == '"') | (w == '\r') | (w == '\n');
    std::uint64_t halves[2];
    std::memcpy(halves, &hit, 16);
    return (halves[0] | halves[1]) != 0;
  };
  const char* p = cell.data();
  const std::size_t n = cell.size();
  if (n == 0)
    return false;
  if (n < 16) {
    char padded[16];
    std::memset(padded, p[0], sizeof padded);
    std::memcpy(padded, p, n);
    return special16(padded);
  }
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16)
    if (special16(p + i))
      return true;
  return i < n && special16(p + n - 16);
}

void append_csv_cell(std::string& out, std::string_view cell, char delimiter) {
  if (!csv_cell_needs_quotes(cell, delimiter)) {
    out += cell;
    return;
  }
  out += '"';
  for (const char c : cell) {
    if (c == '"')
      out += '"';
    out += c;
  }
  out += '"';
}

std::string join_csv_row(std::span<const std::string> cells, const csv_options& options) {
  std::string out;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    if (i != 0)
      out += options.delimiter;
    append_csv_cell(out, cells[i], options.delimiter);
  }
  return out;
}

namespace detail {

std::string csv_format_bool(bool x) {
  return x ? "true" : "false";
}

std::string csv_format_signed(std::int64_t x) {
  return to_text(x);
}

std::string csv_format_unsigned(std::uint64_t x) {
  return to_text(x);
}

std::string csv_format_float(float x) {
  return to_text(x);
}

std::string csv_format_double(double x) {
  return to_text(x);
}

bool csv_blank(std::string_view cell) noexcept {
  return trim(cell).empty();
}

bool csv_parse_leaf(std::string_view cell, bool& out, decode_error& e) {
  const std::string_view text = trim(cell);
  if (iequals(text, "true") || text == "1") {
    out = true;
    return true;
  }
  if (iequals(text, "false") || text == "0") {
    out = false;
    return true;
  }
  return cannot_parse(cell, "a boolean", e);
}

bool csv_parse_leaf(std::string_view cell, float& out, decode_error& e) {
  return parse_float(cell, "float", out, e);
}

bool csv_parse_leaf(std::string_view cell, double& out, decode_error& e) {
  return parse_float(cell, "double", out, e);
}

bool csv_parse_leaf(std::string_view cell, std::string& out, decode_error&) {
  out.assign(cell);
  return true;
}

bool csv_parse_leaf(std::string_view cell, event_time& out, decode_error& e) {
  const std::string_view text = trim(cell);
  const std::string_view digits = text.starts_with('-') ? text.substr(1) : text;
  if (!digits.empty() && digits.find_first_not_of("0123456789") == std::string_view::npos) {
    // All digits: epoch milliseconds, as in the JSON codec, within the input range.
    std::int64_t millis = 0;
    if (!csv_parse_signed(text, input_epoch_millis_min, input_epoch_millis_max,
                          input_epoch_millis_name, millis, e))
      return false;
    out = event_time{std::chrono::milliseconds{millis}};
    return true;
  }
  auto t = parse_iso8601(text);
  if (!t)
    return e.fail(t.error().message);
  out = *t;
  return true;
}

bool csv_parse_signed(std::string_view cell, std::int64_t min, std::int64_t max,
                      std::string_view type_name, std::int64_t& out, decode_error& e) {
  std::string_view text = trim(cell);
  if (text.size() > 1 && text.front() == '+' && text[1] != '-')
    text.remove_prefix(1);
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  const bool whole = end == text.data() + text.size();
  if (ec == std::errc::result_out_of_range && whole)
    return out_of_range(cell, type_name, e);
  if (ec != std::errc{} || !whole)
    return cannot_parse(cell, "an integer", e);
  if (v < min || v > max)
    return out_of_range(cell, type_name, e);
  out = v;
  return true;
}

bool csv_parse_unsigned(std::string_view cell, std::uint64_t max, std::string_view type_name,
                        std::uint64_t& out, decode_error& e) {
  std::string_view text = trim(cell);
  if (text.size() > 1 && text.front() == '+' && text[1] != '-')
    text.remove_prefix(1);
  if (text.size() > 1 && text.front() == '-') {
    // A negative number is a well-formed integer that does not fit, except for "-0".
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    const bool whole = end == text.data() + text.size();
    if ((ec == std::errc{} || ec == std::errc::result_out_of_range) && whole) {
      if (ec == std::errc{} && v == 0) {
        out = 0;
        return true;
      }
      return out_of_range(cell, type_name, e);
    }
    return cannot_parse(cell, "an integer", e);
  }
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  const bool whole = end == text.data() + text.size();
  if (ec == std::errc::result_out_of_range && whole)
    return out_of_range(cell, type_name, e);
  if (ec != std::errc{} || !whole)
    return cannot_parse(cell, "an integer", e);
  if (v > max)
    return out_of_range(cell, type_name, e);
  out = v;
  return true;
}

error csv_field_count_error(std::size_t expected, std::size_t found) {
  return make_error(error_code::malformed_record, "expected " + std::to_string(expected)
                                                    + " fields, found " + std::to_string(found));
}

} // namespace detail

} // namespace sluice::codec
