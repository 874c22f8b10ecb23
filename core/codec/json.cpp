#include "sluice/core/codec/json.hpp"

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

} // namespace sluice::codec::detail
