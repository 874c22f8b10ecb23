#pragma once
/// `collector<T>`: how user functions that emit zero or more records hand them over.
#include <utility>
#include <vector>

namespace sluice {

/// Collects records emitted by a user function (`flat_map`, `process`). Valid only during
/// the call that received it.
template <class T>
class collector {
public:
  explicit collector(std::vector<T>& sink) noexcept : sink_(&sink) {}
  void collect(const T& value) { sink_->push_back(value); }
  void collect(T&& value) { sink_->push_back(std::move(value)); }
  template <class... Args>
  void emplace(Args&&... args) {
    sink_->emplace_back(std::forward<Args>(args)...);
  }

private:
  std::vector<T>* sink_;
};

} // namespace sluice
