#pragma once
/// What travels on a channel between two tasks, in the channel's order, and the interface a
/// transport implements to carry it. The protocol itself (credits, alignment, watermarks)
/// lives in input_gate.hpp and output_gate.hpp and knows nothing of how items move: CAF
/// messages inside a process, ZeroMQ frames between nodes.
#include "sluice/core/batch.hpp"
#include "sluice/core/time.hpp"

#include <cstdint>

namespace sluice {

/// One item of a channel. Only data costs credit; every other kind travels in band behind
/// the data sent before it and never overtakes it.
struct channel_item {
  enum class kind : std::uint8_t {
    data,      ///< a batch of records
    watermark, ///< the sender's event-time watermark advanced to `watermark`
    idle,      ///< the sender has no data for now: do not wait for its watermark
    active,    ///< the sender has data again
    barrier,   ///< epoch `epoch` ends here on this channel (a checkpoint when `checkpoint`)
    end,       ///< the channel's last item: the sender has finished
  };
  kind what = kind::data;
  batch_ptr records;
  event_time watermark{};
  std::int64_t epoch = 0;
  bool checkpoint = false;

  static channel_item data_of(batch_ptr records) {
    return {kind::data, std::move(records), {}, 0, false};
  }
  static channel_item watermark_of(event_time wm) { return {kind::watermark, nullptr, wm, 0, false}; }
  static channel_item idle_mark(bool idle) {
    return {idle ? kind::idle : kind::active, nullptr, {}, 0, false};
  }
  static channel_item barrier_of(std::int64_t epoch, bool checkpoint) {
    return {kind::barrier, nullptr, {}, epoch, checkpoint};
  }
  static channel_item end_of_input() { return {kind::end, nullptr, {}, 0, false}; }
};

/// How a task's channels reach other tasks. The gates decide what is sent when; a transport
/// only carries it, in order, without blocking the caller.
class channel_transport {
public:
  virtual ~channel_transport() = default;
  /// Carries `item` to receiver `target` of output edge `edge`, behind everything sent there
  /// before.
  virtual void deliver(int edge, int target, channel_item item) = 0;
  /// Returns `n` credits to the sender of input channel `channel`: it may send `n` more
  /// batches on it.
  virtual void grant(int channel, int n) = 0;
};

} // namespace sluice
