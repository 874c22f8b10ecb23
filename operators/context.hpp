#pragma once
/// Contexts handed to `process` functions. Valid only during the call that received them.
#include "sluice/operators/operator.hpp"

namespace sluice {

/// What a process function may ask about where and when it runs.
class context {
public:
  explicit context(const operator_info& info) noexcept : info_(&info) {}
  const std::string& operator_name() const noexcept { return info_->name; }
  int instance() const noexcept { return info_->instance; }
  int parallelism() const noexcept { return info_->parallelism; }
  /// The current processing time, from the job's (injectable) clock.
  clock::time_point processing_time() const noexcept { return info_->processing_clock->now(); }

private:
  const operator_info* info_;
};

/// The context of a keyed function: adds the key of the record being processed.
template <class K>
class keyed_context : public context {
public:
  using context::context;
  const K& current_key() const noexcept { return *key_; }
  /// The key group of the current key.
  int current_key_group() const noexcept { return key_group_; }

  void set_current_key(const K& key, int key_group) noexcept {
    key_ = &key;
    key_group_ = key_group;
  }

private:
  const K* key_ = nullptr;
  int key_group_ = 0;
};

} // namespace sluice
