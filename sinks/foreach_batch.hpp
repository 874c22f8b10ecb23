#pragma once
/// The foreach-batch sink (Spark's `foreachBatch`): the user's function gets each epoch's
/// rows with the epoch id, for writes that are idempotent per epoch.
///
/// ```cpp
/// counts.sink_to(sinks::foreach_batch<row>([](std::int64_t batch_id, std::vector<row>& rows) {
///   db.upsert_batch(batch_id, rows); // skip batch ids already written
/// }));
/// ```
#include "sluice/sinks/sink.hpp"

#include <cstdint>
#include <iterator>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace sluice::sinks {

template <class T, class F>
class foreach_batch_sink final : public sink<T> {
public:
  explicit foreach_batch_sink(F fn) : fn_(std::move(fn)) {}

  result<void> write(std::vector<T>& records) override {
    std::move(records.begin(), records.end(), std::back_inserter(rows_));
    return {};
  }

  result<void> end_epoch(std::int64_t epoch) override {
    next_ = epoch + 1;
    return call(epoch);
  }

  /// Rows that arrived after the last epoch (operators that emit at the end of bounded
  /// input) form one more batch.
  result<void> flush() override {
    if (rows_.empty())
      return {};
    return call(next_++);
  }

private:
  result<void> call(std::int64_t epoch) {
    auto rows = std::move(rows_);
    rows_.clear();
    if constexpr (std::is_convertible_v<std::invoke_result_t<F&, std::int64_t, std::vector<T>&>,
                                        result<void>>)
      return fn_(epoch, rows);
    else {
      fn_(epoch, rows);
      return {};
    }
  }

  F fn_;
  std::vector<T> rows_;
  std::int64_t next_ = 0;
};

/// Descriptor. `fn(std::int64_t batch_id, std::vector<T>& rows)` returns nothing or
/// `result<void>` (an error fails the job; an exception too). It is called once per epoch,
/// also for epochs without rows, in epoch order, always from one instance (the sink runs
/// with parallelism 1 so that a batch is the whole epoch's output, as in Spark). Batch ids
/// are the epoch ids: stable across restarts from a checkpoint.
template <class T, class F>
struct foreach_batch_sink_descriptor {
  using record_type = T;
  F fn;
  std::unique_ptr<sink<T>> create(const sink_context&) const {
    return std::make_unique<foreach_batch_sink<T, F>>(fn);
  }
  std::string describe() const { return "foreach_batch"; }
  int max_parallelism() const { return 1; }
};

template <class T, class F>
foreach_batch_sink_descriptor<T, F> foreach_batch(F fn) {
  static_assert(std::is_invocable_v<F&, std::int64_t, std::vector<T>&>,
                "foreach_batch: the function must accept (std::int64_t batch_id, "
                "std::vector<T>& rows)");
  return {std::move(fn)};
}

} // namespace sluice::sinks
