#pragma once
/// The generator source: deterministic records computed from their sequence number,
/// bounded or unbounded, optionally rate-limited.
#include "sluice/sources/source.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>

namespace sluice {

/// A fast, well-mixed hash of a 64-bit integer (splitmix64's finalizer); the basis of
/// seeded, reproducible generators.
constexpr std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

namespace sources {

/// Options of the generator source.
struct generator_options {
  /// Records in total; none for an unbounded source.
  std::optional<std::uint64_t> count{};
  /// Records per second over all instances; none for as fast as possible.
  std::optional<double> rate{};
  /// The first sequence number.
  std::uint64_t first = 0;
};

/// Instance i of p produces sequence numbers first+i, first+i+p, ...; `fn(n)` makes the
/// record for number n, so the output is the same for every parallelism.
template <class T, class F>
class generator_source final : public source<T> {
public:
  generator_source(generator_options opts, F fn) : opts_(opts), fn_(std::move(fn)) {}

  result<void> open(const source_context& ctx) override {
    clock_ = ctx.processing_clock;
    step_ = static_cast<std::uint64_t>(ctx.parallelism);
    next_ = opts_.first + static_cast<std::uint64_t>(ctx.instance);
    if (opts_.count)
      end_ = opts_.first + *opts_.count;
    if (opts_.rate)
      per_instance_rate_ = *opts_.rate / ctx.parallelism;
    start_ = clock_->now();
    return {};
  }

  result<poll_result> poll(source_output<T>& out, std::size_t max) override {
    if (next_ >= end_)
      return poll_result::end();
    std::uint64_t allowed = max;
    if (trigger_end_) {
      // Micro-batch: the plan fixed this trigger's records (the rate counted then).
      if (next_ >= *trigger_end_)
        return poll_result::idle(std::chrono::milliseconds{1});
      allowed = std::min<std::uint64_t>(allowed, (*trigger_end_ - next_ + step_ - 1) / step_);
    } else if (per_instance_rate_ > 0) {
      const std::chrono::duration<double> elapsed = clock_->now() - start_;
      const auto due = static_cast<std::uint64_t>(elapsed.count() * per_instance_rate_) + 1;
      if (due <= emitted_) {
        // Sleep until the next record is due.
        const auto wait = std::chrono::duration<double>(
          static_cast<double>(emitted_) / per_instance_rate_ - elapsed.count());
        return poll_result::idle(std::chrono::duration_cast<std::chrono::nanoseconds>(wait));
      }
      allowed = std::min<std::uint64_t>(allowed, due - emitted_);
    }
    auto& records = out.records;
    const auto before = records.size();
    // Unbounded: end_ is 2^64-1 and the division below would wrap, so it is not a limit.
    const auto remaining =
      opts_.count ? (end_ - next_ + step_ - 1) / step_ : std::numeric_limits<std::uint64_t>::max();
    const auto n = static_cast<std::size_t>(std::min(allowed, remaining));
    if constexpr (std::is_default_constructible_v<T> && std::is_move_assignable_v<T>) {
      // Sized first, then filled by index: the loop stays free of capacity checks.
      records.resize(before + n);
      auto* dst = records.data() + before;
      for (std::size_t i = 0; i < n; ++i, next_ += step_)
        dst[i] = fn_(next_);
    } else {
      for (std::size_t i = 0; i < n; ++i, next_ += step_)
        records.push_back(fn_(next_));
    }
    emitted_ += n;
    if (trigger_end_ && next_ >= *trigger_end_ && next_ < end_)
      return poll_result::idle(std::chrono::milliseconds{1}); // the trigger's records are read
    return next_ >= end_ ? poll_result::end() : poll_result::more();
  }

  /// Micro-batch: input is waiting until the last sequence number was read (also after a
  /// restore at the end, where a new trigger must not run an empty batch).
  result<bool> begin_trigger(bool unlimited) override { return begin_as_planned(*this, unlimited); }

  /// Micro-batch: the trigger reads up to a sequence number fixed now: the records due at
  /// the rate by now, at most `max_records` (unless `unlimited`), up to the count.
  result<trigger_plan> plan_trigger(bool unlimited, std::uint64_t max_records) override {
    std::uint64_t n = next_ < end_ ? (end_ - next_ + step_ - 1) / step_ : 0;
    if (!opts_.count)
      n = std::numeric_limits<std::uint64_t>::max();
    if (per_instance_rate_ > 0) {
      const std::chrono::duration<double> elapsed = clock_->now() - start_;
      const auto due = static_cast<std::uint64_t>(elapsed.count() * per_instance_rate_) + 1;
      n = std::min(n, due > emitted_ ? due - emitted_ : 0);
    }
    if (!unlimited)
      n = std::min(n, max_records);
    if (n == std::numeric_limits<std::uint64_t>::max()) {
      // Unbounded, no rate, no cap: nothing bounds the trigger.
      if (unlimited)
        return make_error(error_code::invalid_option,
                          "generator: an unbounded generator without a rate never ends a "
                          "trigger that ignores caps (Trigger.Once): give it a count or a rate");
      trigger_end_.reset();
      return trigger_plan{true, {}};
    }
    const auto span = n > (end_ - next_) / step_ ? end_ - next_ : n * step_;
    trigger_end_ = next_ + span;
    return trigger_plan{n > 0, std::to_string(*trigger_end_)};
  }

  result<void> replay_trigger(std::string_view end) override {
    const auto parsed = parse_sequence_number(end);
    if (!parsed)
      return make_error(error_code::io_error,
                        "generator: bad planned end '" + std::string{end} + "' in the offset log");
    const auto e = *parsed;
    if (e < next_)
      return make_error(error_code::io_error,
                        "generator: the planned end " + std::to_string(e) +
                          " lies before the restored position " + std::to_string(next_));
    trigger_end_ = std::min(e, end_);
    return {};
  }

  /// The next sequence number: records are a function of it, so replay is exact.
  std::optional<std::string> position() const override { return std::to_string(next_); }
  result<void> seek(std::string_view pos) override {
    const auto parsed = parse_sequence_number(pos);
    if (!parsed)
      return make_error(error_code::io_error, "generator: bad position '" + std::string{pos} + "'");
    const auto n = *parsed;
    if (n % step_ != next_ % step_)
      return make_error(error_code::invalid_option,
                        "generator: checkpointed position " + std::to_string(n) +
                          " belongs to another instance; restore with the same source "
                          "parallelism");
    next_ = n;
    return {};
  }

private:
  generator_options opts_;
  F fn_;
  std::shared_ptr<const clock> clock_;
  clock::time_point start_{};
  std::uint64_t step_ = 1;
  std::uint64_t next_ = 0;
  std::uint64_t end_ = ~std::uint64_t{0};
  std::uint64_t emitted_ = 0;
  double per_instance_rate_ = 0;
  /// Micro-batch: where the current trigger's records end (plan_trigger, replay_trigger).
  std::optional<std::uint64_t> trigger_end_;
};

/// Descriptor: `job.from(sources::generator<T>({.count = 1000}, [](std::uint64_t n) {...}))`.
template <class T, class F>
struct generator {
  using record_type = T;
  generator_options options;
  F fn;

  generator(generator_options o, F f) : options(o), fn(std::move(f)) {}

  std::unique_ptr<source<T>> create(const source_context&) const {
    return std::make_unique<generator_source<T, F>>(options, fn);
  }
  std::string describe() const {
    std::string d = "generator";
    d += options.count ? "(count=" + std::to_string(*options.count) : "(unbounded";
    if (options.rate)
      d += ", rate=" + std::to_string(static_cast<long long>(*options.rate)) + "/s";
    return d + ")";
  }
  result<void> validate() const {
    if (options.rate && !(*options.rate > 0))
      return make_error(error_code::invalid_option, "generator: rate must be positive");
    return {};
  }
};

template <class F>
generator(generator_options, F) -> generator<std::invoke_result_t<F, std::uint64_t>, F>;

} // namespace sources
} // namespace sluice
