#pragma once
/// How the ZeroMQ connectors (`sources::zmq`, `sinks::zmq`) put one record in one message,
/// with the project's codecs. The sink encodes and the source decodes the same way, so a job
/// can read what another job wrote.
#include "sluice/core/codec/binary.hpp"
#include "sluice/core/codec/inspect.hpp"
#include "sluice/core/codec/json.hpp"
#include "sluice/core/error.hpp"

#include <concepts>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace sluice::net {

/// The payload of one message: exactly one record.
enum class zmq_format {
  /// One JSON object (`codec::to_json_line` / `codec::from_json_line`, the readers of the
  /// file and socket sources). The sink writes no newline; the source accepts a trailing
  /// one, and refuses a second record in the same message.
  json,
  /// The binary record codec (core/codec/binary.hpp: little-endian, no schema, both ends
  /// must agree on `T`); the message must hold exactly one record, no byte more or less.
  binary,
  /// The bytes as they are; the record type must be `std::string`.
  text,
};

/// "json", "binary", "text".
constexpr std::string_view to_string(zmq_format f) noexcept {
  switch (f) {
    case zmq_format::json: return "json";
    case zmq_format::binary: return "binary";
    case zmq_format::text: return "text";
  }
  return "?";
}

/// Whether `format` can carry a `T`: `text` needs `std::string`, the codecs need a codec
/// value (a leaf type or a struct with `inspect()`).
template <class T>
constexpr bool zmq_format_supports(zmq_format format) noexcept {
  if (format == zmq_format::text)
    return std::is_same_v<T, std::string>;
  return is_codec_value_v<T>;
}

/// Fails with `invalid_option` naming `who` when `format` cannot carry `T`.
template <class T>
[[nodiscard]] result<void> check_zmq_format(zmq_format format, std::string_view who) {
  if (zmq_format_supports<T>(format))
    return {};
  std::string msg{who};
  msg += format == zmq_format::text
           ? ": format text needs std::string records; use json or binary"
           : ": the record type has no codec form (give it an inspect() overload) for format ";
  if (format != zmq_format::text)
    msg += to_string(format);
  return make_error(error_code::invalid_option, std::move(msg));
}

/// `x` as a message payload, replacing `out`'s contents. `format` must support `T`
/// (`check_zmq_format`); otherwise `out` is left empty.
template <class T>
void encode_zmq_payload(const T& x, zmq_format format, std::string& out) {
  out.clear();
  if constexpr (std::is_same_v<T, std::string>) {
    if (format == zmq_format::text) {
      out = x;
      return;
    }
  }
  if constexpr (is_codec_value_v<T>) {
    if (format == zmq_format::json) {
      out = codec::to_json_line(x);
    } else if (format == zmq_format::binary) {
      std::vector<std::byte> bytes;
      codec::to_binary(x, bytes);
      out.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    }
  }
}

/// A message payload as one record. Fails with `malformed_record` and the codec's cause
/// ("invalid JSON: ...", "truncated input: needed 8 bytes, 3 left", "3 trailing bytes after
/// the record"), or `invalid_option` when `format` cannot carry `T`.
template <class T>
  requires std::default_initializable<T>
[[nodiscard]] result<T> decode_zmq_payload(std::string_view bytes, zmq_format format) {
  if constexpr (std::is_same_v<T, std::string>) {
    if (format == zmq_format::text)
      return std::string{bytes};
  }
  if constexpr (is_codec_value_v<T>) {
    if (format == zmq_format::json)
      return codec::from_json_line<T>(bytes);
    if (format == zmq_format::binary) {
      std::span<const std::byte> in{reinterpret_cast<const std::byte*>(bytes.data()),
                                    bytes.size()};
      T out{};
      if (auto ok = codec::from_binary(in, out); !ok)
        return std::move(ok).error();
      if (!in.empty())
        return make_error(error_code::malformed_record,
                          std::to_string(in.size()) + " trailing bytes after the record");
      return out;
    }
  }
  if (auto ok = check_zmq_format<T>(format, "zmq"); !ok)
    return std::move(ok).error();
  return make_error(error_code::invalid_option,
                    "zmq: unknown format " + std::to_string(static_cast<int>(format)));
}

} // namespace sluice::net
