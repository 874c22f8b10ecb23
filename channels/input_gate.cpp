#include "sluice/channels/input_gate.hpp"

#include <algorithm>
#include <iterator>
#include <utility>

namespace sluice {

input_gate::input_gate(std::size_t channels, channel_transport& transport, task_metrics* metrics)
  : transport_(transport), metrics_(metrics), channels_(channels), open_(channels) {}

bool input_gate::push(int channel, channel_item item) {
  if (channel < 0 || static_cast<std::size_t>(channel) >= channels_.size())
    return false;
  queue_.push_back(queued_item{channel, std::move(item)});
  note_queue();
  if (metrics_)
    task_metrics::raise_to(metrics_->max_input_queue, queue_.size());
  return true;
}

std::optional<gate_event> input_gate::take_aligned() {
  if (!aligning_ || !alignment_complete())
    return std::nullopt;
  gate_event ev;
  ev.what = gate_event::kind::aligned;
  ev.epoch = *aligning_;
  ev.checkpoint = aligning_checkpoint_;
  aligning_.reset();
  // What the blocked channels sent meanwhile comes next, channel by channel, ahead of
  // anything that arrived later (each channel's own order is kept).
  std::deque<queued_item> released;
  for (std::size_t c = 0; c < channels_.size(); ++c) {
    auto& ch = channels_[c];
    ch.blocked = false;
    for (auto& item : ch.held)
      released.push_back(queued_item{static_cast<int>(c), std::move(item)});
    ch.held.clear();
  }
  queue_.insert(queue_.begin(), std::make_move_iterator(released.begin()),
                std::make_move_iterator(released.end()));
  note_queue();
  return ev;
}

std::optional<gate_event> input_gate::next() {
  if (auto aligned = take_aligned())
    return aligned;
  while (!queue_.empty()) {
    auto [channel, item] = std::move(queue_.front());
    queue_.pop_front();
    note_queue();
    auto& ch = channels_[static_cast<std::size_t>(channel)];
    if (ch.blocked) {
      ch.held.push_back(std::move(item));
      continue;
    }
    gate_event ev;
    ev.channel = channel;
    switch (item.what) {
      case channel_item::kind::data:
        ev.what = gate_event::kind::data;
        ev.records = std::move(item.records);
        ev.channel_watermark = ch.watermark;
        // Data means the channel is back, even if its "active" mark was lost to a race.
        ev.reactivated = std::exchange(ch.idle, false);
        return ev;
      case channel_item::kind::end:
        ch.ended = true;
        --open_;
        ev.what = gate_event::kind::changed;
        return ev;
      case channel_item::kind::barrier:
        ev.what = gate_event::kind::blocked;
        ev.first = !aligning_;
        ev.epoch = item.epoch;
        ev.checkpoint = item.checkpoint;
        ch.blocked = true;
        aligning_ = item.epoch;
        aligning_checkpoint_ = item.checkpoint;
        return ev;
      case channel_item::kind::watermark:
        ch.idle = false;
        ch.watermark = std::max(ch.watermark, item.watermark);
        ev.what = gate_event::kind::changed;
        return ev;
      case channel_item::kind::idle:
      case channel_item::kind::active:
        ch.idle = item.what == channel_item::kind::idle;
        ev.what = gate_event::kind::changed;
        return ev;
    }
  }
  return std::nullopt;
}

void input_gate::consumed(int channel) { transport_.grant(channel, 1); }

input_gate::watermark_view input_gate::watermark() const {
  watermark_view v;
  for (auto& ch : channels_) {
    if (ch.ended)
      continue;
    v.live = true;
    if (ch.idle) {
      ++v.idle;
      continue;
    }
    v.low = v.low ? std::min(*v.low, ch.watermark) : ch.watermark;
  }
  return v;
}

bool input_gate::at_end_of_time() const {
  return std::all_of(channels_.begin(), channels_.end(),
                     [](const channel_state& ch) { return ch.watermark >= max_watermark; });
}

std::size_t input_gate::held() const noexcept {
  std::size_t n = 0;
  for (auto& ch : channels_)
    n += ch.held.size();
  return n;
}

bool input_gate::alignment_complete() const {
  return std::all_of(channels_.begin(), channels_.end(),
                     [](const channel_state& ch) { return ch.ended || ch.blocked; });
}

void input_gate::note_queue() const {
  if (metrics_)
    metrics_->input_queue.store(queue_.size(), std::memory_order_relaxed);
}

} // namespace sluice
