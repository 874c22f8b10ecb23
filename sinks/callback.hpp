#pragma once
/// The callback (foreach) sink: calls a user function for every record.
#include "sluice/sinks/sink.hpp"

#include <string>
#include <utility>

namespace sluice::sinks {

template <class T, class F>
class callback_sink final : public sink<T> {
public:
  explicit callback_sink(F fn) : fn_(std::move(fn)) {}
  result<void> write(std::vector<T>& records) override {
    for (auto& r : records)
      fn_(r);
    return {};
  }

private:
  F fn_;
};

/// Descriptor: `stream.sink_to(sinks::for_each<T>([](const T& r) { ... }))`.
///
/// Each parallel instance holds its own copy of `fn` and calls it from its own thread;
/// a function that shares data across instances must synchronize.
template <class T, class F>
struct for_each_sink {
  using record_type = T;
  F fn;
  std::unique_ptr<sink<T>> create(const sink_context&) const {
    return std::make_unique<callback_sink<T, F>>(fn);
  }
  std::string describe() const { return "foreach"; }
};

template <class T, class F>
for_each_sink<T, F> for_each(F fn) {
  return for_each_sink<T, F>{std::move(fn)};
}

} // namespace sluice::sinks
