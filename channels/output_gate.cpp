#include "sluice/channels/output_gate.hpp"

namespace sluice {

output_gate::output_gate(const std::vector<int>& targets, int credits,
                         channel_transport& transport, task_metrics* metrics)
  : transport_(transport), metrics_(metrics) {
  edges_.reserve(targets.size());
  for (int n : targets) {
    edges_.emplace_back(static_cast<std::size_t>(n));
    for (auto& ch : edges_.back())
      ch.credit = ch.window = credits;
    if (metrics_)
      task_metrics::add(metrics_->credits,
                        static_cast<std::int64_t>(credits) * static_cast<std::int64_t>(n));
  }
}

void output_gate::set_window(int edge, int target, int credits) {
  auto& ch = edges_.at(static_cast<std::size_t>(edge)).at(static_cast<std::size_t>(target));
  const int more = credits - ch.window;
  ch.window = credits;
  ch.credit += more;
  if (metrics_)
    task_metrics::add(metrics_->credits, static_cast<std::int64_t>(more));
}

output_gate::channel* output_gate::find(int edge, int target) {
  if (edge < 0 || static_cast<std::size_t>(edge) >= edges_.size())
    return nullptr;
  auto& targets = edges_[static_cast<std::size_t>(edge)];
  if (target < 0 || static_cast<std::size_t>(target) >= targets.size())
    return nullptr;
  return &targets[static_cast<std::size_t>(target)];
}

bool output_gate::send(int edge, int target, batch_ptr records) {
  auto& ch = edges_[static_cast<std::size_t>(edge)][static_cast<std::size_t>(target)];
  if (ch.credit > 0 && ch.waiting.empty()) {
    transmit(edge, target, ch, std::move(records));
    return false;
  }
  const bool first = pending_ == 0;
  if (first && metrics_)
    task_metrics::add(metrics_->backpressure_events, 1);
  ch.waiting.push_back(channel_item::data_of(std::move(records)));
  ++pending_;
  return first;
}

void output_gate::broadcast(const channel_item& item) {
  for (std::size_t e = 0; e < edges_.size(); ++e)
    for (std::size_t t = 0; t < edges_[e].size(); ++t) {
      auto& ch = edges_[e][t];
      if (ch.end_wanted)
        continue;
      if (ch.waiting.empty()) {
        transport_.deliver(static_cast<int>(e), static_cast<int>(t), item);
      } else {
        ch.waiting.push_back(item);
        ++pending_;
      }
    }
}

bool output_gate::grant(int edge, int target, int n) {
  auto* ch = find(edge, target);
  if (!ch)
    return false;
  ch->credit += n;
  if (metrics_)
    task_metrics::add(metrics_->credits, static_cast<std::int64_t>(n));
  while (!ch->waiting.empty() &&
         (ch->credit > 0 || ch->waiting.front().what != channel_item::kind::data)) {
    auto item = std::move(ch->waiting.front());
    ch->waiting.pop_front();
    --pending_;
    if (item.what == channel_item::kind::data)
      transmit(edge, target, *ch, std::move(item.records));
    else
      transport_.deliver(edge, target, std::move(item));
  }
  send_end_if_due(edge, target, *ch);
  return true;
}

void output_gate::end() {
  for (std::size_t e = 0; e < edges_.size(); ++e)
    for (std::size_t t = 0; t < edges_[e].size(); ++t) {
      auto& ch = edges_[e][t];
      ch.end_wanted = true;
      send_end_if_due(static_cast<int>(e), static_cast<int>(t), ch);
    }
}

bool output_gate::ended() const noexcept {
  for (auto& targets : edges_)
    for (auto& ch : targets)
      if (!ch.end_sent)
        return false;
  return true;
}

int output_gate::credit(int edge, int target) const {
  return edges_.at(static_cast<std::size_t>(edge)).at(static_cast<std::size_t>(target)).credit;
}

void output_gate::transmit(int edge, int target, channel& ch, batch_ptr records) {
  --ch.credit;
  if (metrics_) {
    task_metrics::add(metrics_->credits, std::int64_t{-1});
    task_metrics::add(metrics_->records_out, records->size());
    task_metrics::add(metrics_->batches_out, 1);
    task_metrics::raise_to(metrics_->max_in_flight, static_cast<std::uint64_t>(ch.window - ch.credit));
  }
  transport_.deliver(edge, target, channel_item::data_of(std::move(records)));
}

void output_gate::send_end_if_due(int edge, int target, channel& ch) {
  if (ch.end_wanted && !ch.end_sent && ch.waiting.empty()) {
    ch.end_sent = true;
    transport_.deliver(edge, target, channel_item::end_of_input());
  }
}

} // namespace sluice
