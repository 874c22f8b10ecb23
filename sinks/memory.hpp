#pragma once
/// The memory sink: collects every record, for tests. Safe for parallel instances.
#include "sluice/sinks/sink.hpp"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sluice::sinks {

/// The records a `collect<T>` sink has received, shared by all its instances.
template <class T>
class collected {
public:
  void append(std::vector<T>& records) {
    std::lock_guard guard{mtx_};
    std::move(records.begin(), records.end(), std::back_inserter(records_));
  }
  /// A copy of everything received so far, in arrival order.
  std::vector<T> records() const {
    std::lock_guard guard{mtx_};
    return records_;
  }
  std::size_t size() const {
    std::lock_guard guard{mtx_};
    return records_.size();
  }

private:
  mutable std::mutex mtx_;
  std::vector<T> records_;
};

template <class T>
class memory_sink final : public sink<T> {
public:
  explicit memory_sink(std::shared_ptr<collected<T>> into) : into_(std::move(into)) {}
  result<void> write(std::vector<T>& records) override {
    into_->append(records);
    return {};
  }

private:
  std::shared_ptr<collected<T>> into_;
};

/// Descriptor: `auto out = sinks::collect<T>(); stream.sink_to(out); ...; out.records()`.
template <class T>
struct collect {
  using record_type = T;
  std::shared_ptr<collected<T>> store = std::make_shared<collected<T>>();

  std::unique_ptr<sink<T>> create(const sink_context&) const {
    return std::make_unique<memory_sink<T>>(store);
  }
  std::string describe() const { return "memory"; }
  /// Like Spark's memory sink: append and complete (it cannot update rows in place).
  static constexpr output_modes supported_modes() { return {true, false, true}; }
  std::vector<T> records() const { return store->records(); }
  std::size_t size() const { return store->size(); }
};

/// The result table of a `memory_table<T>` sink: whole epochs only, queryable while the job
/// runs (Spark's memory sink and its in-memory table).
template <class T>
class result_table {
public:
  /// Publishes instance `instance`'s rows of epoch `epoch`: appended (append mode) or
  /// replacing what that instance published before (complete mode).
  void publish(int instance, std::int64_t epoch, std::vector<T>& rows, bool replace) {
    std::lock_guard guard{mtx_};
    auto& part = parts_[instance];
    if (replace)
      part.clear();
    std::move(rows.begin(), rows.end(), std::back_inserter(part));
    last_epoch_ = std::max(last_epoch_, epoch);
  }
  /// Every row, instance by instance.
  std::vector<T> rows() const {
    std::lock_guard guard{mtx_};
    std::vector<T> out;
    for (auto& [i, part] : parts_)
      out.insert(out.end(), part.begin(), part.end());
    return out;
  }
  /// The rows for which `pred(row)` holds (a `SELECT ... WHERE`).
  template <class Pred>
  std::vector<T> where(Pred pred) const {
    auto all = rows();
    std::erase_if(all, [&](const T& r) { return !pred(r); });
    return all;
  }
  std::size_t size() const { return rows().size(); }
  /// The last epoch published (-1: none yet).
  std::int64_t last_epoch() const {
    std::lock_guard guard{mtx_};
    return last_epoch_;
  }

private:
  mutable std::mutex mtx_;
  std::map<int, std::vector<T>> parts_;
  std::int64_t last_epoch_ = -1;
};

template <class T>
class memory_table_sink final : public sink<T> {
public:
  explicit memory_table_sink(std::shared_ptr<result_table<T>> table) : table_(std::move(table)) {}
  result<void> open(const sink_context& ctx) override {
    instance_ = ctx.instance;
    replace_ = ctx.mode == output_mode::complete;
    return {};
  }
  result<void> write(std::vector<T>& records) override {
    std::move(records.begin(), records.end(), std::back_inserter(pending_));
    return {};
  }
  result<void> end_epoch(std::int64_t epoch) override {
    table_->publish(instance_, epoch, pending_, replace_);
    pending_.clear();
    next_ = epoch + 1;
    return {};
  }
  result<void> flush() override {
    if (!pending_.empty())
      return end_epoch(next_);
    return {};
  }

private:
  std::shared_ptr<result_table<T>> table_;
  std::vector<T> pending_;
  int instance_ = 0;
  bool replace_ = false;
  std::int64_t next_ = 0;
};

/// Descriptor of Spark's memory sink: `auto table = sinks::memory_table<T>(); s.sink_to(table);
/// ... table.rows()`. Rows become visible an epoch at a time. Append and complete modes.
template <class T>
struct memory_table {
  using record_type = T;
  std::shared_ptr<result_table<T>> table = std::make_shared<result_table<T>>();

  std::unique_ptr<sink<T>> create(const sink_context&) const {
    return std::make_unique<memory_table_sink<T>>(table);
  }
  std::string describe() const { return "memory_table"; }
  static constexpr output_modes supported_modes() { return {true, false, true}; }
  std::vector<T> rows() const { return table->rows(); }
  std::int64_t last_epoch() const { return table->last_epoch(); }
};

} // namespace sluice::sinks
