#pragma once
/// Bytes in flight on the channels from this node to other nodes (issue 24): what a
/// node's runtime sent on a channel and has not been credited back for yet.
///
/// "In flight" here is the whole way a batch goes between the two tasks, not only the wire:
/// from the moment its encoded frame is handed to the link (the sender's queue, ZeroMQ's
/// buffers and the kernel's, the receiver's link queue, its bridge and the receiving
/// task's input queue) until the receiving task has taken it and the credit it returns has
/// arrived here. Credits are one per batch and come back in the order the batches were
/// sent (channels/input_gate.hpp), so the meter keeps each batch's size in a queue and a
/// credit of `n` retires the oldest `n`. The channel's credit window bounds the batches
/// counted, so the bytes are at most the window times the largest batch's frame.
/// Watermarks, barriers and the like cost no credit and are not counted.
///
/// Thread-safe: the stand-ins that send and the bridge that takes credits run on different
/// threads; a snapshot may be taken from any thread (the metrics endpoint).
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <vector>

namespace sluice::net {

/// One channel to another node, as measured by `inflight_meter`.
struct channel_flight {
  std::uint32_t channel = 0;  ///< the global channel number (actors/placement.hpp)
  std::uint64_t bytes = 0;    ///< encoded data frames sent and not credited back, now
  std::uint64_t batches = 0;  ///< their number (at most the channel's credit window)
  std::uint64_t max_bytes = 0;   ///< the most `bytes` has been in this attempt
  std::uint64_t max_batches = 0; ///< the most `batches` has been in this attempt
  std::uint64_t largest_batch = 0; ///< the largest data frame sent, in bytes, this attempt
  std::uint64_t bytes_sent = 0;    ///< data frame bytes sent in this attempt
  std::uint64_t batches_sent = 0;  ///< data frames sent in this attempt
};

/// Counts the bytes in flight per channel to another node (see the file's comment).
class inflight_meter {
public:
  /// A new attempt starts: what the older one had in flight is gone with its tasks (its
  /// credits will never come back). Older attempts than the one counted are ignored.
  void begin_attempt(std::int64_t attempt);
  /// A data frame of `bytes` left for `channel` in `attempt` (which it begins, when newer).
  void sent(std::int64_t attempt, std::uint32_t channel, std::uint64_t bytes);
  /// `credits` came back for `channel` in `attempt`: the oldest that many batches arrived.
  /// Credits of another attempt, or for batches not counted, are ignored.
  void credited(std::int64_t attempt, std::uint32_t channel, std::int64_t credits);
  /// The attempt counted (-1 before any).
  std::int64_t attempt() const;
  /// Every channel that carried data in the attempt counted, by channel number.
  std::vector<channel_flight> snapshot() const;

private:
  struct channel_state {
    channel_flight stats;
    std::deque<std::uint64_t> sizes; ///< of the batches in flight, oldest first
  };
  void begin_locked(std::int64_t attempt);

  mutable std::mutex mu_;
  std::int64_t attempt_ = -1;
  std::map<std::uint32_t, channel_state> channels_;
};

} // namespace sluice::net
