#include "sluice/net/inflight.hpp"

#include <algorithm>

namespace sluice::net {

void inflight_meter::begin_locked(std::int64_t attempt) {
  if (attempt <= attempt_)
    return;
  attempt_ = attempt;
  channels_.clear();
}

void inflight_meter::begin_attempt(std::int64_t attempt) {
  std::lock_guard lock{mu_};
  begin_locked(attempt);
}

void inflight_meter::sent(std::int64_t attempt, std::uint32_t channel, std::uint64_t bytes) {
  std::lock_guard lock{mu_};
  begin_locked(attempt);
  if (attempt != attempt_)
    return; // a stand-in of an attempt that was replaced, not stopped yet
  auto& ch = channels_[channel];
  auto& s = ch.stats;
  s.channel = channel;
  ch.sizes.push_back(bytes);
  s.bytes += bytes;
  s.batches += 1;
  s.bytes_sent += bytes;
  s.batches_sent += 1;
  s.max_bytes = std::max(s.max_bytes, s.bytes);
  s.max_batches = std::max(s.max_batches, s.batches);
  s.largest_batch = std::max(s.largest_batch, bytes);
}

void inflight_meter::credited(std::int64_t attempt, std::uint32_t channel,
                              std::int64_t credits) {
  std::lock_guard lock{mu_};
  if (attempt != attempt_ || credits <= 0)
    return;
  auto it = channels_.find(channel);
  if (it == channels_.end())
    return;
  auto& ch = it->second;
  for (std::int64_t i = 0; i < credits && !ch.sizes.empty(); ++i) {
    ch.stats.bytes -= ch.sizes.front();
    ch.stats.batches -= 1;
    ch.sizes.pop_front();
  }
}

std::int64_t inflight_meter::attempt() const {
  std::lock_guard lock{mu_};
  return attempt_;
}

std::vector<channel_flight> inflight_meter::snapshot() const {
  std::lock_guard lock{mu_};
  std::vector<channel_flight> out;
  out.reserve(channels_.size());
  for (const auto& [_, ch] : channels_)
    out.push_back(ch.stats);
  return out;
}

} // namespace sluice::net
