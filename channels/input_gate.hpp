#pragma once
/// The receiving side of a task's channels: what arrives is queued and handed to the task one
/// step at a time, aligning epoch barriers across the inputs (Flink's aligned checkpoints)
/// and tracking each channel's watermark, idleness and end.
///
/// The rules, each tested in tests/channels/input_gate_test.cpp:
/// - Items of one channel are handed out in the order they arrived.
/// - A channel that delivered barrier n is *blocked*: what it sends next is held, keeping
///   its credit (no credit returns for held data), until every live channel delivered
///   barrier n, or ended. Then the task is told the epoch is aligned, and the held items
///   come next, ahead of anything that arrived later.
/// - A channel's watermark only advances. Data on an idle channel makes it active again.
/// - The task's watermark is the minimum over its live channels that are not idle
///   (`watermark()`); ended channels no longer count.
/// - Credit goes back only when the task says it consumed a batch (`consumed`), so in-flight
///   data per channel stays within the sender's window.
#include "sluice/channels/item.hpp"
#include "sluice/core/metrics.hpp"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace sluice {

/// What the task must act on next (`input_gate::next`).
struct gate_event {
  enum class kind : std::uint8_t {
    data,    ///< process `records` from `channel`, then call `consumed(channel)`
    changed, ///< a channel's watermark, idleness or end changed: recompute the watermark
    blocked, ///< `channel` delivered barrier `epoch` and waits for the other channels
    aligned, ///< every live channel delivered barrier `epoch`: end the epoch here
  };
  kind what = kind::data;
  int channel = -1;
  batch_ptr records;
  /// data: the channel's watermark, to count records that arrive behind the task's own.
  event_time channel_watermark{};
  /// data: the channel was idle and this data made it active: recompute the watermark
  /// before processing the records.
  bool reactivated = false;
  /// blocked, aligned: the barrier's epoch and whether it is a checkpoint's.
  std::int64_t epoch = 0;
  bool checkpoint = false;
  /// blocked: the first barrier of this alignment (alignment time starts).
  bool first = false;
};

class input_gate {
public:
  /// A gate with `channels` input channels. `transport` returns credits; `metrics` (may be
  /// null) gets the queue depth.
  input_gate(std::size_t channels, channel_transport& transport, task_metrics* metrics = nullptr);

  /// Item `item` arrived on `channel`. False (and nothing queued) when there is no such
  /// channel: the caller reports the protocol violation.
  [[nodiscard]] bool push(int channel, channel_item item);

  /// The next step for the task, or nothing while no input is ready.
  std::optional<gate_event> next();

  /// The aligned event, when every live channel has delivered the barrier being aligned
  /// (else nothing). `next` returns it too; the task asks right after a barrier or an end
  /// so that the epoch ends even while its output waits for credit.
  std::optional<gate_event> take_aligned();

  /// The task consumed a data batch of `channel`: its credit goes back to the sender.
  void consumed(int channel);

  /// The combined watermark: `live` is false once every channel ended; `low` is the
  /// minimum over live channels that are not idle, unset when all of them are idle.
  struct watermark_view {
    bool live = false;
    std::optional<event_time> low;
    std::size_t idle = 0; ///< live channels marked idle
  };
  watermark_view watermark() const;

  /// Every channel's watermark reached the end of event time (`max_watermark`).
  bool at_end_of_time() const;
  /// Channels that have not ended.
  std::size_t open() const noexcept { return open_; }
  /// Items waiting to be handed out (not counting held ones).
  std::size_t queued() const noexcept { return queue_.size(); }
  /// Items held behind barriers.
  std::size_t held() const noexcept;
  /// The epoch being aligned, if any.
  std::optional<std::int64_t> aligning() const noexcept { return aligning_; }

private:
  struct channel_state {
    bool ended = false;
    bool idle = false;
    bool blocked = false;
    event_time watermark = min_watermark;
    std::deque<channel_item> held;
  };
  struct queued_item {
    int channel = 0;
    channel_item item;
  };

  bool alignment_complete() const;
  void note_queue() const;

  channel_transport& transport_;
  task_metrics* metrics_;
  std::vector<channel_state> channels_;
  std::deque<queued_item> queue_;
  std::size_t open_ = 0;
  std::optional<std::int64_t> aligning_;
  bool aligning_checkpoint_ = false;
};

} // namespace sluice
