#pragma once
/// A batch of `T` as a data frame's payload: core/codec/batch_binary.hpp's encoding, written
/// straight into the frame. The frame does not name the record type: both ends know it from
/// the plan (the channel id names the edge, and the graph checked the port types).
#include "sluice/core/codec/batch_binary.hpp"
#include "sluice/net/frame.hpp"

#include <cstdint>
#include <vector>

namespace sluice::net {

using codec::decode_batch;
using codec::encode_batch;

/// Appends a data frame carrying the records of `b` (which holds `T`) to `out`, encoding
/// them once, straight into the frame.
template <class T>
void encode_batch_frame(std::int64_t attempt, std::uint32_t channel, const batch_base& b,
                        std::vector<std::byte>& out) {
  encode_data_frame(attempt, channel, out,
                    [&](std::vector<std::byte>& o) { encode_batch<T>(b, o); });
}

} // namespace sluice::net
