#include "sluice/core/codec/json.hpp"

#include <simdjson.h>

#include <array>
#include <charconv>
#include <cmath>
#include <limits>

namespace sluice::codec::detail {

namespace {

using json = nlohmann::json;

// Enough of the offending value to recognize it, without copying a whole document into the
// message.
std::string describe(const json& j) {
  constexpr std::size_t max_len = 40;
  auto shorten = [](std::string text) {
    if (text.size() > max_len) {
      text.resize(max_len);
      text += "...";
    }
    return text;
  };
  switch (j.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return j.get<bool>() ? "boolean true" : "boolean false";
    case json::value_t::string:
      return "string " + shorten(j.dump(-1, ' ', false, json::error_handler_t::replace));
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return "number " + j.dump();
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::binary: return "binary data";
    case json::value_t::discarded: return "a discarded value";
  }
  return "an unknown value";
}

bool out_of_range(const json& j, std::string_view type_name, decode_error& e) {
  std::string msg = "number " + j.dump() + " is out of range for ";
  msg.append(type_name);
  return e.fail(std::move(msg));
}

// A float counts as an integer only when it has no fraction, so 5.0 and 5e3 read as integers
// but 1.5 does not. The bounds are exact: `max + 1.0` is a power of two for every integer type.
bool float_as_integer(const json& j, double min, double max, std::string_view type_name,
                      double& out, decode_error& e) {
  const double d = j.get<double>();
  if (!std::isfinite(d) || std::trunc(d) != d)
    return json_type_mismatch(j, "an integer", e);
  if (d < min || d >= max + 1.0)
    return out_of_range(j, type_name, e);
  out = d;
  return true;
}

} // namespace

double float_for_json(float x) noexcept {
  if (!std::isfinite(x))
    return static_cast<double>(x);
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, x);
  double out = static_cast<double>(x);
  if (ec == std::errc{})
    std::from_chars(buf, end, out);
  return out;
}

bool json_type_mismatch(const json& j, std::string_view what, decode_error& e) {
  std::string msg = "expected ";
  msg.append(what);
  msg += ", got ";
  msg += describe(j);
  return e.fail(std::move(msg));
}

bool json_read_leaf(const json& j, bool& out, decode_error& e) {
  if (!j.is_boolean())
    return json_type_mismatch(j, "a boolean", e);
  out = j.get<bool>();
  return true;
}

bool json_read_leaf(const json& j, double& out, decode_error& e) {
  if (!j.is_number())
    return json_type_mismatch(j, "a number", e);
  out = j.get<double>();
  return true;
}

bool json_read_leaf(const json& j, float& out, decode_error& e) {
  double d = 0;
  if (!json_read_leaf(j, d, e))
    return false;
  if (std::abs(d) > static_cast<double>(std::numeric_limits<float>::max()))
    return out_of_range(j, "float", e);
  out = static_cast<float>(d);
  return true;
}

bool json_read_leaf(const json& j, std::string& out, decode_error& e) {
  if (!j.is_string())
    return json_type_mismatch(j, "a string", e);
  out = j.get_ref<const std::string&>();
  return true;
}

bool json_read_leaf(const json& j, event_time& out, decode_error& e) {
  if (j.is_string()) {
    auto t = parse_iso8601(j.get_ref<const std::string&>());
    if (!t)
      return e.fail(t.error().message);
    out = *t;
    return true;
  }
  if (j.is_number()) {
    // Epoch milliseconds, as many producers (Kafka, JavaScript) write them, within the
    // input range (min/max_input_event_time): beyond it window arithmetic would overflow.
    std::int64_t millis = 0;
    if (!json_read_signed(j, input_epoch_millis_min, input_epoch_millis_max,
                          input_epoch_millis_name, millis, e))
      return false;
    out = event_time{std::chrono::milliseconds{millis}};
    return true;
  }
  return json_type_mismatch(j, "an ISO-8601 string or epoch milliseconds", e);
}

bool json_read_signed(const json& j, std::int64_t min, std::int64_t max,
                      std::string_view type_name, std::int64_t& out, decode_error& e) {
  if (j.is_number_unsigned()) {
    const auto v = j.get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(max))
      return out_of_range(j, type_name, e);
    out = static_cast<std::int64_t>(v);
    return true;
  }
  if (j.is_number_integer()) {
    const auto v = j.get<std::int64_t>();
    if (v < min || v > max)
      return out_of_range(j, type_name, e);
    out = v;
    return true;
  }
  if (j.is_number_float()) {
    double d = 0;
    if (!float_as_integer(j, static_cast<double>(min), static_cast<double>(max), type_name, d, e))
      return false;
    out = static_cast<std::int64_t>(d);
    return true;
  }
  return json_type_mismatch(j, "an integer", e);
}

bool json_read_unsigned(const json& j, std::uint64_t max, std::string_view type_name,
                        std::uint64_t& out, decode_error& e) {
  if (j.is_number_unsigned()) {
    const auto v = j.get<std::uint64_t>();
    if (v > max)
      return out_of_range(j, type_name, e);
    out = v;
    return true;
  }
  if (j.is_number_integer()) // signed and therefore negative: is_number_unsigned failed
    return out_of_range(j, type_name, e);
  if (j.is_number_float()) {
    double d = 0;
    if (!float_as_integer(j, 0.0, static_cast<double>(max), type_name, d, e))
      return false;
    out = static_cast<std::uint64_t>(d);
    return true;
  }
  return json_type_mismatch(j, "an integer", e);
}

result<json> parse_json_text(std::string_view text) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& ex) {
    // Drop nlohmann's "[json.exception.parse_error.101] " prefix; the rest is the useful part.
    std::string_view what = ex.what();
    if (what.starts_with('[')) {
      if (const auto pos = what.find("] "); pos != std::string_view::npos)
        what.remove_prefix(pos + 2);
    }
    return make_error(error_code::malformed_record, "invalid JSON: " + std::string{what});
  }
}

std::string dump_json_line(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

// ---- The fast reader ------------------------------------------------------------------

namespace od = simdjson::ondemand;

struct fast_value {
  od::value v;
};

namespace {

// Deeper values are left to nlohmann (its parser has no depth limit; this one recurses).
constexpr int fast_max_depth = 128;
// Lines longer than this are parsed with a parser of their own, so that one huge record
// does not leave a huge buffer in every thread that met it.
constexpr std::size_t fast_kept_capacity = std::size_t{1} << 20;

bool skip_value(od::value& v, int depth) noexcept {
  if (depth > fast_max_depth)
    return false;
  od::json_type type{};
  if (v.type().get(type))
    return false;
  switch (type) {
    case od::json_type::array: {
      od::array arr;
      if (v.get_array().get(arr))
        return false;
      for (auto elem : arr) {
        od::value e;
        if (elem.get(e) || !skip_value(e, depth + 1))
          return false;
      }
      return true;
    }
    case od::json_type::object: {
      od::object obj;
      if (v.get_object().get(obj))
        return false;
      for (auto member : obj) {
        od::field f;
        std::string_view key;
        if (std::move(member).get(f) || f.unescaped_key().get(key) || !skip_value(f.value(), depth + 1))
          return false;
      }
      return true;
    }
    case od::json_type::number: {
      // Validates the number's syntax; a big integer reads as a double, as in nlohmann.
      double d = 0;
      return !v.get_double().get(d);
    }
    case od::json_type::string: {
      std::string_view text;
      return !v.get_string().get(text);
    }
    case od::json_type::boolean: {
      bool b = false;
      return !v.get_bool().get(b);
    }
    case od::json_type::null: {
      bool is_null = false;
      return !v.is_null().get(is_null) && is_null;
    }
  }
  return false;
}

// nlohmann's classes of numbers: an integer token that fits int64 or uint64 is an integer,
// any other number (a fraction, an exponent, a bigger integer) a double.
bool read_as_double(od::value& v, double& out) noexcept { return !v.get_double().get(out); }

bool whole_in_range(double d, double min, double max) noexcept {
  return std::isfinite(d) && std::trunc(d) == d && d >= min && d < max + 1.0;
}

struct fast_reader_state {
  od::parser parser;
  std::string buffer; // the line plus simdjson's padding (Kafka payloads have none)
  bool busy = false;  // an inspect() that reads JSON itself: that line goes to nlohmann
};

bool parse_with(od::parser& parser, std::string& buffer, std::string_view text,
                absl::FunctionRef<bool(fast_value*)> root) {
  buffer.reserve(text.size() + simdjson::SIMDJSON_PADDING);
  buffer.assign(text);
  od::document doc;
  if (parser.iterate(simdjson::padded_string_view(buffer.data(), buffer.size(), buffer.capacity()))
        .get(doc))
    return false;
  fast_value value;
  // get_value() fails for a scalar document: those go to nlohmann.
  if (doc.get_value().get(value.v) || !root(&value))
    return false;
  // Nothing but whitespace may follow the value.
  return doc.current_location().error() == simdjson::OUT_OF_BOUNDS;
}

} // namespace

bool fast_parse_line(std::string_view text, absl::FunctionRef<bool(fast_value*)> root) {
  if (text.size() > fast_kept_capacity) {
    od::parser parser;
    std::string buffer;
    return parse_with(parser, buffer, text, root);
  }
  thread_local fast_reader_state state;
  if (state.busy)
    return false;
  struct release {
    bool* busy;
    ~release() { *busy = false; }
  } guard{&state.busy};
  state.busy = true;
  return parse_with(state.parser, state.buffer, text, root);
}

bool fast_skip(fast_value& v) noexcept { return skip_value(v.v, 0); }

bool fast_is_null(fast_value& v) noexcept {
  bool is_null = false;
  return !v.v.is_null().get(is_null) && is_null;
}

bool fast_read(fast_value& v, bool& out) noexcept { return !v.v.get_bool().get(out); }

bool fast_read(fast_value& v, double& out) noexcept {
  if (!read_as_double(v.v, out))
    return false;
  // "-0" is the integer 0 to nlohmann, so +0.0; "-0.0" and "-0e1" are -0.0.
  std::int64_t i = 0;
  if (out == 0 && std::signbit(out) && !v.v.get_int64().get(i))
    out = 0.0;
  return true;
}

bool fast_read(fast_value& v, float& out) noexcept {
  double d = 0;
  if (!fast_read(v, d) || std::abs(d) > static_cast<double>(std::numeric_limits<float>::max()))
    return false;
  out = static_cast<float>(d);
  return true;
}

bool fast_read(fast_value& v, std::string& out) {
  std::string_view text;
  if (v.v.get_string().get(text))
    return false;
  out.assign(text);
  return true;
}

bool fast_read(fast_value& v, event_time& out) {
  od::json_type type{};
  if (v.v.type().get(type))
    return false;
  if (type == od::json_type::string) {
    std::string_view text;
    if (v.v.get_string().get(text))
      return false;
    auto t = parse_iso8601(text);
    if (!t)
      return false;
    out = *t;
    return true;
  }
  std::int64_t millis = 0;
  if (type != od::json_type::number
      || !fast_read_signed(v, input_epoch_millis_min, input_epoch_millis_max, millis))
    return false;
  out = event_time{std::chrono::milliseconds{millis}};
  return true;
}

bool fast_read_signed(fast_value& v, std::int64_t min, std::int64_t max,
                      std::int64_t& out) noexcept {
  std::int64_t i = 0;
  if (!v.v.get_int64().get(i)) {
    if (i < min || i > max)
      return false;
    out = i;
    return true;
  }
  std::uint64_t u = 0;
  if (!v.v.get_uint64().get(u))
    return false; // above INT64_MAX: out of range for every signed type
  double d = 0;
  if (!read_as_double(v.v, d)
      || !whole_in_range(d, static_cast<double>(min), static_cast<double>(max)))
    return false;
  out = static_cast<std::int64_t>(d);
  return true;
}

bool fast_read_unsigned(fast_value& v, std::uint64_t max, std::uint64_t& out) noexcept {
  std::uint64_t u = 0;
  if (!v.v.get_uint64().get(u)) {
    if (u > max)
      return false;
    out = u;
    return true;
  }
  std::int64_t i = 0;
  if (!v.v.get_int64().get(i))
    return false; // a negative integer, or "-0": nlohmann's out-of-range error
  double d = 0;
  if (!read_as_double(v.v, d) || !whole_in_range(d, 0.0, static_cast<double>(max)))
    return false;
  out = static_cast<std::uint64_t>(d);
  return true;
}

bool fast_for_each_element(fast_value& v, absl::FunctionRef<bool(fast_value*)> each) {
  od::array arr;
  if (v.v.get_array().get(arr))
    return false;
  for (auto elem : arr) {
    fast_value e;
    if (elem.get(e.v) || !each(&e))
      return false;
  }
  return true;
}

bool fast_for_each_member(fast_value& v,
                          absl::FunctionRef<bool(std::string_view, fast_value*)> each) {
  od::object obj;
  if (v.v.get_object().get(obj))
    return false;
  for (auto member : obj) {
    od::field f;
    if (std::move(member).get(f))
      return false;
    // A key without escapes is its raw bytes (stage 1 checked their UTF-8 and control
    // characters); only a key with a backslash needs unescaping.
    const char* raw = f.key().raw();
    std::size_t n = 0;
    while (raw[n] != '"' && raw[n] != '\\')
      ++n;
    std::string_view key{raw, n};
    if (raw[n] == '\\' && f.unescaped_key().get(key))
      return false;
    fast_value value{f.value()};
    if (!each(key, &value))
      return false;
  }
  return true;
}

// ---- The writer -----------------------------------------------------------------------

void append_json_string(std::string& out, std::string_view s) {
  // Most strings are plain ASCII with nothing to escape: one pass, one append.
  static constexpr auto special = [] {
    std::array<bool, 256> t{};
    for (int c = 0; c < 0x20; ++c)
      t[static_cast<std::size_t>(c)] = true;
    for (int c = 0x80; c < 0x100; ++c)
      t[static_cast<std::size_t>(c)] = true;
    t['"'] = t['\\'] = true;
    return t;
  }();
  std::size_t first = 0;
  while (first < s.size() && !special[static_cast<unsigned char>(s[first])])
    ++first;
  if (first == s.size()) {
    out.reserve(out.size() + s.size() + 2);
    out.push_back('"');
    out.append(s);
    out.push_back('"');
    return;
  }
  bool ascii = true;
  for (const char c : s.substr(first))
    ascii &= static_cast<unsigned char>(c) < 0x80;
  if (!ascii && !simdjson::validate_utf8(s.data(), s.size())) {
    // nlohmann's replacement of invalid UTF-8 decides how many bytes each U+FFFD stands for.
    out += json(std::string{s}).dump(-1, ' ', false, json::error_handler_t::replace);
    return;
  }
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t plain = 0; // start of the run not yet copied
  for (std::size_t i = first; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    out.append(s.data() + plain, i - plain);
    plain = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: {
        const char esc[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
        out.append(esc, sizeof esc);
      }
    }
  }
  out.append(s.data() + plain, s.size() - plain);
  out.push_back('"');
}

void append_json_double(std::string& out, double x) {
  if (!std::isfinite(x)) {
    out += "null";
    return;
  }
  // nlohmann's own formatter (Grisu2), so the bytes are what dump() writes.
  char buf[64];
  const char* end = nlohmann::detail::to_chars(buf, buf + sizeof buf, x);
  out.append(buf, static_cast<std::size_t>(end - buf));
}

} // namespace sluice::codec::detail
