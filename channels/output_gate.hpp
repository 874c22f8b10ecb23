#pragma once
/// The sending side of a task's channels: a credit window per channel (Flink's credit-based
/// flow control), a queue per channel for what waits for credit, and in-band order.
///
/// The rules, each tested in tests/channels/output_gate_test.cpp:
/// - A batch goes out only while its channel holds credit and nothing waits before it;
///   otherwise it waits in the channel's queue, and the task is backpressured until the
///   queues are empty again (`pending() == 0`).
/// - Control items (watermarks, idle marks, barriers) cost no credit but never overtake the
///   data queued before them on their channel.
/// - The end of input leaves a channel after everything queued on it; nothing follows it.
/// - So per channel at most `credits` batches are in flight, and memory stays bounded
///   whatever the speeds of sender and receiver.
#include "sluice/channels/item.hpp"
#include "sluice/core/metrics.hpp"

#include <cstddef>
#include <deque>
#include <vector>

namespace sluice {

class output_gate {
public:
  /// `targets[e]` receivers on output edge `e`; each channel starts with `credits` credits.
  /// `metrics` (may be null) counts what goes out.
  output_gate(const std::vector<int>& targets, int credits, channel_transport& transport,
              task_metrics* metrics = nullptr);

  /// Before anything is sent: channel `target` of edge `edge` gets a window of `credits`
  /// instead (a channel to another node: a longer round trip needs more batches in flight
  /// to keep the wire busy).
  void set_window(int edge, int target, int credits);

  /// Sends a batch to receiver `target` of edge `edge`, or queues it behind what waits.
  /// Returns true when this batch made the task wait (nothing waited before it): the
  /// caller starts counting backpressured time.
  bool send(int edge, int target, batch_ptr records);
  /// Sends a control item (not data, not the end) on every channel that has not ended,
  /// behind what is queued there.
  void broadcast(const channel_item& item);
  /// `n` credits came back for receiver `target` of edge `edge`: sends what waited for
  /// them, and the end of input when it is due. False when there is no such channel (the
  /// caller reports the protocol violation).
  [[nodiscard]] bool grant(int edge, int target, int n);
  /// Ends every channel: each sends the end of input once its queue is empty.
  void end();

  /// Items (data and control) waiting for credit over all channels. While it is not zero
  /// the task takes no input.
  std::size_t pending() const noexcept { return pending_; }
  /// Every channel sent its end of input.
  bool ended() const noexcept;
  /// Credits held for `target` of `edge` now.
  int credit(int edge, int target) const;

private:
  struct channel {
    int credit = 0;
    int window = 0; ///< the credits it started with
    std::deque<channel_item> waiting;
    bool end_wanted = false;
    bool end_sent = false;
  };

  channel* find(int edge, int target);
  void transmit(int edge, int target, channel& ch, batch_ptr records);
  void send_end_if_due(int edge, int target, channel& ch);

  channel_transport& transport_;
  task_metrics* metrics_;
  std::vector<std::vector<channel>> edges_;
  std::size_t pending_ = 0;
};

} // namespace sluice
