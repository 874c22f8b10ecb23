#include "sluice/operators/tap.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>
#include <utility>

namespace sluice {

tap_state::tap_state(double max_per_second, tap_callback out, std::shared_ptr<const clock> clk)
  : rate_(max_per_second), capacity_(std::max(1.0, max_per_second)),
    clock_(clk ? std::move(clk) : default_clock()), tokens_(capacity_), last_(clock_->now()),
    out_(std::move(out)) {}

std::size_t tap_state::take(std::size_t wanted) {
  std::lock_guard guard{bucket_mtx_};
  const auto now = clock_->now();
  if (now > last_) {
    const std::chrono::duration<double> elapsed = now - last_;
    tokens_ = std::min(capacity_, tokens_ + rate_ * elapsed.count());
    last_ = now;
  }
  const auto whole = static_cast<std::size_t>(std::floor(tokens_));
  const auto n = std::min(wanted, whole);
  tokens_ -= static_cast<double>(n);
  return n;
}

void tap_state::write(const std::string& line) noexcept {
  std::lock_guard guard{out_mtx_};
  if (stopped_)
    return;
  try {
    out_(line);
  } catch (...) { // a debugging aid must not fail the job it watches
  }
}

void tap_state::stop() noexcept {
  std::lock_guard guard{out_mtx_};
  stopped_ = true;
}

std::shared_ptr<tap_state> tap_point::current() const {
  std::lock_guard guard{mtx_};
  return state_;
}

void tap_point::sample(int instance, const batch_base& records) {
  const auto size = records.size();
  if (size == 0 || !describe_)
    return;
  auto state = current();
  if (!state)
    return;
  const auto n = state->take(size);
  if (n == 0)
    return;
  const std::string prefix =
    "operator " + name_ + "[" + std::to_string(instance) + "] " + port_name_ + ": ";
  // Spread over the batch rather than its first records.
  for (std::size_t k = 0; k < n; ++k)
    state->write(prefix + describe_(records, k * size / n));
}

void tap_point::set(std::shared_ptr<tap_state> state) {
  std::shared_ptr<tap_state> old;
  {
    std::lock_guard guard{mtx_};
    old = std::exchange(state_, std::move(state));
    active_.store(state_ != nullptr, std::memory_order_relaxed);
  }
  if (old)
    old->stop();
}

void tap_point::clear() { set(nullptr); }

tap_point& inactive_tap_point() noexcept {
  static tap_point never;
  return never;
}

tap_registry::tap_registry(const std::vector<node>& nodes,
                           std::shared_ptr<const clock> processing_clock)
  : clock_(processing_clock ? std::move(processing_clock) : default_clock()) {
  points_.reserve(nodes.size());
  for (const auto& n : nodes)
    points_.push_back(std::make_unique<tap_point>(n.name, n.port_name, n.describe));
}

result<void> tap_registry::tap(const std::string& operator_name, double max_per_second,
                               tap_callback out) {
  std::vector<tap_point*> matches;
  for (auto& p : points_)
    if (p->name() == operator_name)
      matches.push_back(p.get());
  if (matches.empty()) {
    std::set<std::string> names;
    for (auto& p : points_)
      if (p->has_output())
        names.insert(p->name());
    std::string valid;
    for (const auto& n : names)
      valid += (valid.empty() ? "'" : ", '") + n + "'";
    return make_error(error_code::invalid_option, "tap: no operator named '" + operator_name +
                                                    "'; operators with output: " + valid);
  }
  for (auto* p : matches)
    if (!p->has_output())
      return make_error(error_code::invalid_option,
                        "tap: '" + operator_name + "' has no output to tap (a sink)");
  if (!(max_per_second > 0) || !std::isfinite(max_per_second))
    return make_error(error_code::invalid_option,
                      "tap: max_per_second must be positive and finite, got " +
                        std::to_string(max_per_second));
  if (!out)
    return make_error(error_code::invalid_option, "tap: the callback is empty");
  // One state for all nodes of the name: the bound holds for the name as a whole.
  auto state = std::make_shared<tap_state>(max_per_second, std::move(out), clock_);
  for (auto* p : matches)
    p->set(state);
  return {};
}

void tap_registry::untap(const std::string& operator_name) {
  for (auto& p : points_)
    if (p->name() == operator_name)
      p->clear();
}

tap_point* tap_registry::point(int id) noexcept {
  if (id < 0 || static_cast<std::size_t>(id) >= points_.size())
    return &inactive_tap_point();
  return points_[static_cast<std::size_t>(id)].get();
}

} // namespace sluice
