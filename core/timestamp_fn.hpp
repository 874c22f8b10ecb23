#pragma once
/// `timestamp_fn<T>`: the event time of a record, as a stream carries it from its source or
/// `with_timestamps` to the operators that need it.
///
/// Streams are typed by their record only, so the user's function is type-erased. A
/// `std::function` costs an indirect call per record, and the function cannot be inlined
/// into the loop over a batch: a fifth of W4's engine CPU went to those calls and to the
/// out-of-line user function (BENCHMARKS.md, issue 28). `timestamp_fn` erases the type once
/// per *batch*: `fill` and `max_of` run the whole loop inside the erased call, where the
/// user's function inlines. Calling it on one record works as before.
#include "sluice/core/time.hpp"

#include <algorithm>
#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <type_traits>
#include <utility>

namespace sluice {

template <class T>
class timestamp_fn {
public:
  /// No function: `explicit operator bool` is false.
  timestamp_fn() = default;

  /// Wraps `f(const T&) -> event_time`. An empty `std::function` gives an empty
  /// `timestamp_fn`, so "has event time" survives the conversion.
  template <class F>
    requires(!std::is_same_v<std::decay_t<F>, timestamp_fn> &&
             std::is_invocable_r_v<event_time, std::decay_t<F>&, const T&>)
  timestamp_fn(F f) { // NOLINT: implicit, as std::function's
    using D = std::decay_t<F>;
    if constexpr (is_std_function<D>::value || std::is_pointer_v<D> ||
                  std::is_member_pointer_v<D>) {
      if (!f)
        return;
    }
    impl_ = std::make_unique<model<D>>(std::move(f));
  }

  // Copies copy the function, as std::function does: each parallel operator instance gets
  // its own, so a function with state is never shared between threads.
  timestamp_fn(const timestamp_fn& other) : impl_(other.impl_ ? other.impl_->clone() : nullptr) {}
  timestamp_fn& operator=(const timestamp_fn& other) {
    if (this != &other)
      impl_ = other.impl_ ? other.impl_->clone() : nullptr;
    return *this;
  }
  timestamp_fn(timestamp_fn&&) noexcept = default;
  timestamp_fn& operator=(timestamp_fn&&) noexcept = default;

  explicit operator bool() const noexcept { return impl_ != nullptr; }

  /// The event time of one record; the function must be set.
  event_time operator()(const T& record) const { return impl_->one(record); }
  /// `out[i]` = the event time of `records[i]`; `out` holds `records.size()` times.
  void fill(std::span<const T> records, event_time* out) const { impl_->fill(records, out); }
  /// The latest event time of `records`, or `floor` when none is later.
  event_time max_of(std::span<const T> records, event_time floor) const {
    return impl_->max_of(records, floor);
  }

private:
  template <class F>
  struct is_std_function : std::false_type {};
  template <class R, class... Args>
  struct is_std_function<std::function<R(Args...)>> : std::true_type {};

  struct concept_t {
    virtual ~concept_t() = default;
    virtual std::unique_ptr<concept_t> clone() const = 0;
    virtual event_time one(const T&) = 0;
    virtual void fill(std::span<const T>, event_time*) = 0;
    virtual event_time max_of(std::span<const T>, event_time) = 0;
  };

  template <class F>
  struct model final : concept_t {
    explicit model(F fn) : f(std::move(fn)) {}
    std::unique_ptr<concept_t> clone() const override { return std::make_unique<model>(f); }
    event_time one(const T& r) override { return std::invoke(f, r); }
    void fill(std::span<const T> rs, event_time* out) override {
      for (std::size_t i = 0; i < rs.size(); ++i)
        out[i] = std::invoke(f, rs[i]);
    }
    event_time max_of(std::span<const T> rs, event_time m) override {
      for (const auto& r : rs)
        m = std::max(m, static_cast<event_time>(std::invoke(f, r)));
      return m;
    }
    F f;
  };

  // The call operators are const, as std::function's are, while the function may be a
  // mutable lambda: the model is reached through the pointer, so it is not const.
  std::unique_ptr<concept_t> impl_;
};

} // namespace sluice
