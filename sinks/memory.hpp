#pragma once
/// The memory sink: collects every record, for tests. Safe for parallel instances.
#include "sinks/sink.hpp"

#include <iterator>
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
  std::vector<T> records() const { return store->records(); }
  std::size_t size() const { return store->size(); }
};

} // namespace sluice::sinks
