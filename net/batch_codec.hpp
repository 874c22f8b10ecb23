#pragma once
/// A batch's records as a data frame's payload, with the project's binary record codec
/// (core/codec/binary.hpp): the records' `std::vector<T>`, that is a varint count and the
/// records. The frame does not name the record type: both ends know it from the plan (the
/// channel id names the edge, and the graph checked the port types).
#include "sluice/core/batch.hpp"
#include "sluice/core/codec/binary.hpp"
#include "sluice/core/error.hpp"
#include "sluice/net/frame.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace sluice::net {

/// Appends the records of `b`, which holds `T`, to `out`.
template <class T>
void encode_batch(const batch_base& b, std::vector<std::byte>& out) {
  codec::to_binary(records_of<T>(const_cast<batch_base&>(b)), out);
}

/// Appends a data frame carrying the records of `b` (which holds `T`) to `out`, encoding
/// them once, straight into the frame.
template <class T>
void encode_batch_frame(std::int64_t attempt, std::uint32_t channel, const batch_base& b,
                        std::vector<std::byte>& out) {
  encode_data_frame(attempt, channel, out,
                    [&](std::vector<std::byte>& o) { encode_batch<T>(b, o); });
}

/// The batch of `T` a data payload encodes. Fails with `malformed_frame` when the payload
/// is not exactly such records (truncated, a field out of range, trailing bytes).
template <class T>
[[nodiscard]] result<batch_ptr> decode_batch(std::span<const std::byte> payload) {
  auto b = make_batch<T>();
  auto rest = payload;
  if (auto ok = codec::from_binary(rest, b->records); !ok)
    return make_error(error_code::malformed_frame, "data frame payload: " + ok.error().message);
  if (!rest.empty())
    return make_error(error_code::malformed_frame,
                      "data frame payload: " + std::to_string(rest.size()) +
                        " trailing bytes after " + std::to_string(b->records.size()) +
                        " records");
  return batch_ptr{std::move(b)};
}

} // namespace sluice::net
