#pragma once
/// How Kafka record values become engine records and back, and the record type that keeps
/// Kafka's metadata (key, headers, partition, offset, timestamp) next to the decoded value.
#include "sluice/core/codec/csv.hpp"
#include "sluice/core/codec/inspect.hpp"
#include "sluice/core/codec/json.hpp"
#include "sluice/core/time.hpp"
#include "sluice/kafka/client.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace sluice::kafka {

/// The encoding of record values. Default: JSON, one object per record.
enum class value_format {
  json, ///< `codec::to_json_line` / `from_json_line`
  csv,  ///< one CSV row, columns in declared field order, no header
  text, ///< the bytes as they are (the value type must be `std::string`)
};

/// A consumed record: the decoded value plus where it came from. Read it with
/// `sources::kafka<kafka::record<txn>>` to see keys, headers, offsets and Kafka timestamps
/// (for event time: `[](const kafka::record<txn>& r) { return r.timestamp; }`).
template <class V>
struct record {
  V value{};
  std::optional<std::string> key;
  std::string topic;
  int partition = 0;
  std::int64_t offset = 0;
  /// The Kafka timestamp (create or log-append time, as the topic is configured), in µs.
  event_time timestamp{};
  header_list headers;

  friend bool operator==(const record&, const record&) = default;
};

/// Raw records: the value's bytes untouched.
using message = record<std::string>;

template <class Inspector, class V>
bool inspect(Inspector& f, record<V>& x) {
  return f.object("kafka_record")
    .fields(f.field("value", x.value), f.field("key", x.key), f.field("topic", x.topic),
            f.field("partition", x.partition), f.field("offset", x.offset),
            f.field("timestamp", x.timestamp));
}

template <class T>
struct is_record : std::false_type {};
template <class V>
struct is_record<record<V>> : std::true_type {};

/// Decodes a value in `format`.
template <class V>
result<V> decode_value(std::string_view bytes, value_format format) {
  if constexpr (std::is_same_v<V, std::string>) {
    if (format == value_format::text)
      return std::string{bytes};
  }
  if constexpr (is_codec_value_v<V> && std::default_initializable<V>) {
    if (format == value_format::json)
      return codec::from_json_line<V>(bytes);
    if (format == value_format::csv)
      return codec::from_csv_row<V>(bytes);
  }
  return make_error(error_code::invalid_option,
                    "value format 'text' needs std::string values; use json or csv");
}

/// Encodes a value in `format`.
template <class V>
std::string encode_value(const V& x, value_format format) {
  if constexpr (std::is_same_v<V, std::string>) {
    if (format == value_format::text)
      return x;
  }
  if (format == value_format::csv) {
    if constexpr (requires { codec::to_csv_row(x); })
      return codec::to_csv_row(x);
  }
  return codec::to_json_line(x);
}

/// A consumed message as a `T`: decoded, with metadata when `T` is a `record`.
template <class T>
result<T> decode(const message_view& m, value_format format) {
  if constexpr (is_record<T>::value) {
    auto v = decode_value<decltype(T::value)>(m.value(), format);
    if (!v)
      return std::move(v).error();
    T r;
    r.value = std::move(*v);
    if (auto k = m.key())
      r.key = std::string{*k};
    r.topic = std::string{m.topic()};
    r.partition = m.partition();
    r.offset = m.offset();
    r.timestamp = event_time{std::chrono::milliseconds{m.timestamp_ms().value_or(0)}};
    r.headers = m.headers();
    return r;
  } else {
    return decode_value<T>(m.value(), format);
  }
}

/// True when `format` can carry `T` (checked when a job is built).
template <class T>
struct value_type_of {
  using type = T;
};
template <class V>
struct value_type_of<record<V>> {
  using type = V;
};

template <class T>
bool format_supports(value_format format) {
  using V = typename value_type_of<T>::type;
  if (format == value_format::text)
    return std::is_same_v<V, std::string>;
  return is_codec_value_v<V>;
}

} // namespace sluice::kafka
