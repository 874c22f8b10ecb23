#include "sluice/operators/chain.hpp"

#include "sluice/operators/partition.hpp"

namespace sluice {

std::string_view to_string(partition_kind kind) noexcept {
  switch (kind) {
    case partition_kind::forward: return "forward";
    case partition_kind::hash: return "hash";
    case partition_kind::rebalance: return "rebalance";
    case partition_kind::broadcast: return "broadcast";
  }
  return "unknown";
}

chain::chain(std::vector<std::unique_ptr<operator_base>> ops, external_output& tail)
  : ops_(std::move(ops)), links_(ops_.size()), taps_(ops_.size(), &inactive_tap_point()),
    tail_(&tail) {
  for (std::size_t i = 0; i < links_.size(); ++i) {
    links_[i].self = this;
    links_[i].node = static_cast<int>(i);
  }
}

result<void> chain::open(const std::vector<operator_info>& infos) {
  for (std::size_t i = 0; i < ops_.size(); ++i) {
    current_ = static_cast<int>(i);
    if (ops_[i]) {
      if (auto r = ops_[i]->open(infos[i]); !r)
        return r;
    }
    opened_ = i + 1;
  }
  // Back at the head: a failure of a source head (which has no operator and never sets
  // `current_`) must not be charged to the last node opened.
  current_ = 0;
  return {};
}

namespace {
void count(std::atomic<std::uint64_t>& records, std::atomic<std::uint64_t>& bytes,
           std::atomic<std::uint64_t>& batches, const batch_base& b) {
  task_metrics::add(records, b.size());
  task_metrics::add(bytes, b.bytes());
  task_metrics::add(batches, 1);
}
} // namespace

void chain::set_taps(const std::vector<tap_point*>& points, int instance) {
  for (std::size_t i = 0; i < taps_.size(); ++i)
    taps_[i] = i < points.size() && points[i] ? points[i] : &inactive_tap_point();
  instance_ = instance;
}

result<void> chain::push(int input, batch_ptr records) {
  current_ = 0;
  if (metrics_)
    count(metrics_[0].records_in, metrics_[0].bytes_in, metrics_[0].batches_in, *records);
  return ops_[0]->process(input, std::move(records), links_[0]);
}

result<void> chain::deliver(int node, int port, batch_ptr records) {
  const auto next = static_cast<std::size_t>(node) + 1;
  if (metrics_) {
    auto& m = metrics_[node];
    count(m.records_out, m.bytes_out, m.batches_out, *records);
    if (port == 0 && next < ops_.size())
      count(metrics_[next].records_in, metrics_[next].bytes_in, metrics_[next].batches_in,
            *records);
  }
  // With no tap active: one relaxed load and a predictable branch per batch.
  if (taps_[static_cast<std::size_t>(node)]->active() && port == 0) [[unlikely]]
    taps_[static_cast<std::size_t>(node)]->sample(instance_, *records);
  if (port != 0 || next == ops_.size())
    return tail_->emit(node, port, std::move(records));
  const int caller = current_;
  current_ = static_cast<int>(next);
  auto r = ops_[next]->process(0, std::move(records), links_[next]);
  if (r)
    current_ = caller; // keep the failing node on error
  return r;
}

result<void> chain::advance_watermark(event_time wm) {
  for (std::size_t i = 0; i < ops_.size(); ++i) {
    if (!ops_[i])
      continue;
    current_ = static_cast<int>(i);
    ops_[i]->set_watermark(wm);
    if (auto r = ops_[i]->on_watermark(wm, links_[i]); !r)
      return r;
  }
  return {};
}

result<void> chain::end_epoch(std::int64_t epoch, std::vector<operator_epoch_stats>& stats) {
  stats.assign(ops_.size(), operator_epoch_stats{});
  for (std::size_t i = 0; i < ops_.size(); ++i) {
    if (!ops_[i])
      continue;
    current_ = static_cast<int>(i);
    if (auto r = ops_[i]->end_epoch(epoch, links_[i], stats[i]); !r)
      return r;
  }
  return {};
}

result<void> chain::processing_time(clock::time_point now) {
  for (std::size_t i = 0; i < ops_.size(); ++i) {
    if (!ops_[i])
      continue;
    current_ = static_cast<int>(i);
    if (auto r = ops_[i]->on_processing_time(now, links_[i]); !r)
      return r;
  }
  return {};
}

result<void> chain::finish() {
  for (std::size_t i = 0; i < ops_.size(); ++i) {
    if (!ops_[i])
      continue;
    current_ = static_cast<int>(i);
    if (auto r = ops_[i]->finish(links_[i]); !r)
      return r;
  }
  return {};
}

result<void> chain::close() {
  result<void> first;
  for (std::size_t i = 0; i < opened_; ++i) {
    if (!ops_[i])
      continue;
    auto r = ops_[i]->close();
    if (!r && first) {
      first = std::move(r);
      current_ = static_cast<int>(i); // the task names this node in the failure
    }
  }
  opened_ = 0;
  return first;
}

} // namespace sluice
