#pragma once
/// A test harness for one operator, with no actor system: feed it records, watermarks and
/// processing time, and read what it emitted (Flink's OneInputStreamOperatorTestHarness).
///
/// ```cpp
/// operator_harness h{std::make_unique<my_window_operator>(...)};
/// h.open();
/// h.push(std::vector<txn>{...});
/// h.watermark(event_time{10s});
/// auto fired = h.take<window_result<int, long>>();
/// ```
///
/// Every call runs synchronously on the caller's thread. Processing time comes from a
/// `manual_clock` the harness owns; `advance_processing_time` moves it and delivers the
/// wake-ups the operator requested through `info().timers`.
#include "sluice/core/metrics.hpp"
#include "sluice/operators/operator.hpp"

#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

namespace sluice {

/// Where the harness's operator runs, as if it were one instance of a parallel operator.
struct harness_options {
  std::string name = "operator-under-test";
  int instance = 0;
  int parallelism = 1;
  int max_key_groups = default_max_key_groups;
  /// Spark's output mode, as a job that sets one gives it (default: none, Flink's rules).
  std::optional<output_mode> mode{};
  /// Epochs are micro-batches (default: continuous epochs).
  bool micro_batch = false;
  /// Micro-batches: which watermark judges late rows (default: Spark 3.4+'s, the previous).
  late_row_rule late_rows = late_row_rule::previous_watermark;
};

class operator_harness final : private output, private timer_service {
public:
  explicit operator_harness(std::unique_ptr<operator_base> op, harness_options opts = {})
    : op_(std::move(op)), clock_(std::make_shared<manual_clock>()) {
    info_.name = std::move(opts.name);
    info_.instance = opts.instance;
    info_.parallelism = opts.parallelism;
    info_.max_key_groups = opts.max_key_groups;
    info_.mode = opts.mode;
    info_.micro_batch = opts.micro_batch;
    info_.late_rows = opts.late_rows;
    info_.key_groups = key_groups_of_instance(opts.instance, opts.max_key_groups, opts.parallelism);
    info_.processing_clock = clock_;
    info_.timers = this;
    info_.metrics = &metrics_;
  }
  operator_harness(const operator_harness&) = delete;
  operator_harness& operator=(const operator_harness&) = delete;

  result<void> open() { return op_->open(info_); }

  /// Feeds one batch to input `input`.
  template <class T>
  result<void> push(int input, std::vector<T> records) {
    return op_->process(input, std::make_shared<batch<T>>(std::move(records)), *this);
  }
  template <class T>
  result<void> push(std::vector<T> records) {
    return push(0, std::move(records));
  }

  /// Advances the operator's watermark (ignored unless it moves forward, as in a task).
  result<void> watermark(event_time wm) {
    if (wm <= op_->current_watermark())
      return {};
    op_->set_watermark(wm);
    return op_->on_watermark(wm, *this);
  }

  /// Moves processing time forward and wakes the operator when a requested time is due.
  result<void> advance_processing_time(std::chrono::nanoseconds d) {
    clock_->advance(d);
    const auto now = clock_->now();
    if (!wakeup_ || *wakeup_ > now)
      return {};
    wakeup_.reset();
    return op_->on_processing_time(now, *this);
  }
  clock::time_point processing_time() const noexcept { return clock_->now(); }
  /// The earliest wake-up the operator asked for and has not received yet.
  std::optional<clock::time_point> requested_wakeup() const noexcept { return wakeup_; }

  /// End of input, as a task does it: the max watermark, then `finish`.
  result<void> end_input() {
    if (auto r = watermark(max_watermark); !r)
      return r;
    return op_->finish(*this);
  }
  result<void> close() { return op_->close(); }

  /// Ends epoch `epoch` as a task does at an epoch barrier; what the operator said of it is
  /// in `epoch_stats()`.
  result<void> end_epoch(std::int64_t epoch) {
    epoch_stats_ = {};
    return op_->end_epoch(epoch, *this, epoch_stats_);
  }
  const operator_epoch_stats& epoch_stats() const noexcept { return epoch_stats_; }

  /// Everything emitted on `port` since the last call, in order.
  template <class T>
  std::vector<T> take(int port = 0) {
    std::vector<T> out;
    auto it = emitted_.find(port);
    if (it == emitted_.end())
      return out;
    for (auto& b : it->second)
      for (auto& r : records_of<T>(*b))
        out.push_back(r);
    it->second.clear();
    return out;
  }

  const task_metrics& metrics() const noexcept { return metrics_; }
  operator_base& op() noexcept { return *op_; }
  const operator_info& info() const noexcept { return info_; }

private:
  result<void> emit(int port, batch_ptr records) override {
    emitted_[port].push_back(std::move(records));
    return {};
  }
  void request_wakeup(clock::time_point when) override {
    if (!wakeup_ || when < *wakeup_)
      wakeup_ = when;
  }

  std::unique_ptr<operator_base> op_;
  std::shared_ptr<manual_clock> clock_;
  operator_info info_;
  task_metrics metrics_;
  std::map<int, std::vector<batch_ptr>> emitted_;
  std::optional<clock::time_point> wakeup_;
  operator_epoch_stats epoch_stats_;
};

} // namespace sluice
