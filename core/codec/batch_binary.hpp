#pragma once
/// A batch of records in the binary record codec (binary.hpp): how batches cross nodes.
/// The encoding is the records' `std::vector<T>` (a varint count, then the records), the
/// same codec as checkpoints. It names no type: both ends know `T` from the plan.
///
/// `batch_codec_of<T>()` erases the type for the graph's ports (graph/graph.hpp), so the
/// runtime can move a type-erased batch over the wire; it is empty for a `T` the codec
/// cannot encode (no `inspect()`), and the runtime then refuses to place that edge across
/// nodes, naming the type.
#include "sluice/core/batch.hpp"
#include "sluice/core/codec/binary.hpp"
#include "sluice/core/error.hpp"

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace sluice::codec {

/// Appends the records of `b`, which holds `T`, to `out`.
template <class T>
void encode_batch(const batch_base& b, std::vector<std::byte>& out) {
  to_binary(records_of<T>(const_cast<batch_base&>(b)), out);
}

/// The batch of `T` that `bytes` encode. Fails with `malformed_frame` when they are not
/// exactly such records (truncated, a field out of range, trailing bytes).
template <class T>
[[nodiscard]] result<batch_ptr> decode_batch(std::span<const std::byte> bytes) {
  auto b = make_batch<T>();
  auto rest = bytes;
  if (auto ok = from_binary(rest, b->records); !ok)
    return make_error(error_code::malformed_frame, "data frame payload: " + ok.error().message);
  if (!rest.empty())
    return make_error(error_code::malformed_frame,
                      "data frame payload: " + std::to_string(rest.size()) +
                        " trailing bytes after " + std::to_string(b->records.size()) +
                        " records");
  return batch_ptr{std::move(b)};
}

/// `encode_batch` and `decode_batch` of one record type, type-erased.
struct batch_codec {
  std::function<void(const batch_base&, std::vector<std::byte>&)> encode;
  std::function<result<batch_ptr>(std::span<const std::byte>)> decode;

  explicit operator bool() const noexcept { return encode && decode; }
};

/// The codec of batches of `T`; empty when the binary codec cannot encode `T`.
template <class T>
batch_codec batch_codec_of() {
  if constexpr (is_codec_value_v<T>)
    return {&encode_batch<T>, &decode_batch<T>};
  else
    return {};
}

} // namespace sluice::codec
