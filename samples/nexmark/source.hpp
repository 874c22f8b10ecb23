#pragma once
/// The Nexmark source: Beam's generator (generator.hpp) as a replayable, checkpointable
/// Sluice source of `event`s.
///
/// Every event is a function of its number on one timeline, so each instance generates its
/// share of the numbers (`split_mode`) and every parallelism yields the same events with
/// the same times, each instance in event-time order. The position is the next number.
#include "sluice/samples/nexmark/generator.hpp"
#include "sluice/sources/source.hpp"
#include "sluice/sources/watermarks.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace sluice::nexmark {

/// The event time of an event: its dateTime.
inline event_time event_time_of(std::int64_t epoch_ms) noexcept {
  return event_time{std::chrono::milliseconds{epoch_ms}};
}

/// Flink's Nexmark DDL: `WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND`.
inline watermark_strategy<event> nexmark_watermarks() {
  return watermarks::bounded_out_of_orderness<event>(
    std::chrono::seconds{4}, [](const event& e) { return event_time_of(e.date_time()); });
}

/// How the events are dealt out to parallel source instances. Either way every parallelism
/// yields the same events with the same times.
enum class split_mode {
  /// Instance i generates range i of `generator_config::split(p)`: consecutive events, sized
  /// as Beam's GeneratorConfig.split sizes them. Later ranges run ahead in event time, so
  /// downstream state waits for the earliest range (docs/nexmark.md).
  ranges,
  /// Instance i generates events i, i + p, i + 2p, ...: all instances advance together in
  /// event time, so watermarks move as with one instance.
  interleaved,
};

class nexmark_source final : public source<event> {
public:
  nexmark_source(generator_config config, std::optional<double> rate, split_mode split)
    : config_(config), rate_(rate), split_(split) {}

  result<void> open(const source_context& ctx) override {
    if (split_ == split_mode::ranges) {
      const auto part = config_.split(ctx.parallelism)[static_cast<std::size_t>(ctx.instance)];
      first_ = part.first_event_number - config_.first_event_number;
      end_ = first_ + part.max_events;
      step_ = 1;
    } else {
      first_ = ctx.instance;
      end_ = config_.max_events;
      step_ = ctx.parallelism;
    }
    next_ = first_;
    clock_ = ctx.processing_clock;
    start_ = clock_->now();
    if (rate_)
      per_instance_rate_ = *rate_ / ctx.parallelism;
    return {};
  }

  result<poll_result> poll(source_output<event>& out, std::size_t max) override {
    if (next_ >= end_)
      return poll_result::end();
    std::int64_t allowed = static_cast<std::int64_t>(max);
    if (per_instance_rate_ > 0) {
      const std::chrono::duration<double> elapsed = clock_->now() - start_;
      const auto due = static_cast<std::int64_t>(elapsed.count() * per_instance_rate_) + 1;
      if (due <= emitted_) {
        const auto wait = std::chrono::duration<double>(
          static_cast<double>(emitted_) / per_instance_rate_ - elapsed.count());
        return poll_result::idle(std::chrono::duration_cast<std::chrono::nanoseconds>(wait));
      }
      allowed = std::min(allowed, due - emitted_);
    }
    auto& records = out.records;
    std::int64_t n = 0;
    // Every event is a function of its number: instances need no generator state.
    for (; n < allowed && next_ < end_; ++n, next_ += step_)
      records.push_back(make_event(config_, next_));
    emitted_ += n;
    return next_ < end_ ? poll_result::more() : poll_result::end();
  }

  /// `<first event number>:<step>:<next event number>`: the first two pin the parallelism
  /// and the split mode.
  std::optional<std::string> position() const override {
    return std::to_string(first_) + ":" + std::to_string(step_) + ":" + std::to_string(next_);
  }

  result<void> seek(std::string_view pos) override {
    std::optional<std::uint64_t> parts[3];
    std::size_t from = 0;
    for (int i = 0; i < 3; ++i) {
      const auto to = i < 2 ? pos.find(':', from) : pos.size();
      if (to == std::string_view::npos)
        break;
      parts[i] = parse_sequence_number(pos.substr(from, to - from));
      from = to + 1;
    }
    if (!parts[0] || !parts[1] || !parts[2])
      return make_error(error_code::io_error,
                        "nexmark: bad checkpointed position '" + std::string{pos} + "'");
    const auto next = static_cast<std::int64_t>(*parts[2]);
    if (static_cast<std::int64_t>(*parts[0]) != first_ ||
        static_cast<std::int64_t>(*parts[1]) != step_ || next < first_ ||
        next >= end_ + step_ || (next - first_) % step_ != 0)
      return make_error(error_code::invalid_option,
                        "nexmark: checkpointed position " + std::string{pos} +
                          " belongs to other events than this instance's; restore with the "
                          "same --events, --split and source parallelism");
    next_ = next;
    return {};
  }

private:
  generator_config config_;
  std::optional<double> rate_;
  split_mode split_;
  std::int64_t first_ = 0; ///< this instance's first event number
  std::int64_t end_ = 0;   ///< past its last
  std::int64_t step_ = 1;
  std::int64_t next_ = 0;
  std::shared_ptr<const clock> clock_;
  clock::time_point start_{};
  double per_instance_rate_ = 0;
  std::int64_t emitted_ = 0;
};

/// Descriptor: `job.from(nexmark::events{{.max_events = 1'000'000}}, nexmark_watermarks())`.
struct events {
  using record_type = event;
  generator_config config;
  /// Events per second of wall-clock time over all instances; none: as fast as possible.
  std::optional<double> rate{};
  split_mode split = split_mode::ranges;

  std::unique_ptr<source<event>> create(const source_context&) const {
    return std::make_unique<nexmark_source>(config, rate, split);
  }
  std::string describe() const {
    return "nexmark(events=" + std::to_string(config.max_events) +
           (rate ? ", rate=" + std::to_string(static_cast<long long>(*rate)) + "/s)" : ")");
  }
  result<void> validate() const {
    if (auto why = config.validate(); !why.empty())
      return make_error(error_code::invalid_option, "nexmark: " + why);
    if (rate && !(*rate > 0))
      return make_error(error_code::invalid_option, "nexmark: rate must be positive");
    return {};
  }
};

} // namespace sluice::nexmark
