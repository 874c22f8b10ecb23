#pragma once
/// The Nexmark source: Beam's generator (generator.hpp) as a replayable, checkpointable
/// Sluice source of `event`s.
///
/// Instance i of p generates range i of `config.split(p)`: consecutive event numbers on one
/// timeline, so every parallelism yields the same events with the same times. Each instance
/// emits its range in event-time order; a later range's instance runs ahead in event time
/// and its watermark with it, and downstream operators wait for the minimum, as Flink does
/// with Beam's split generators. The position is the number of events generated so far.
#include "samples/nexmark/generator.hpp"
#include "sources/source.hpp"
#include "sources/watermarks.hpp"

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

class nexmark_source final : public source<event> {
public:
  nexmark_source(generator_config config, std::optional<double> rate)
    : config_(config), rate_(rate) {}

  result<void> open(const source_context& ctx) override {
    const auto parts = config_.split(ctx.parallelism);
    part_ = parts[static_cast<std::size_t>(ctx.instance)];
    gen_ = generator{part_};
    clock_ = ctx.processing_clock;
    start_ = clock_->now();
    if (rate_)
      per_instance_rate_ = *rate_ / ctx.parallelism;
    return {};
  }

  result<poll_result> poll(source_output<event>& out, std::size_t max) override {
    if (!gen_.has_next())
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
    for (; n < allowed && gen_.has_next(); ++n)
      records.push_back(gen_.next().value);
    emitted_ += n;
    return gen_.has_next() ? poll_result::more() : poll_result::end();
  }

  /// `<first event number of the range>:<events generated>`: the range pins the parallelism.
  std::optional<std::string> position() const override {
    return std::to_string(part_.first_event_number) + ":" + std::to_string(gen_.events_so_far());
  }

  result<void> seek(std::string_view pos) override {
    const auto colon = pos.find(':');
    const auto first = colon == std::string_view::npos
                         ? std::nullopt
                         : parse_sequence_number(pos.substr(0, colon));
    const auto count = colon == std::string_view::npos
                         ? std::nullopt
                         : parse_sequence_number(pos.substr(colon + 1));
    if (!first || !count)
      return make_error(error_code::io_error,
                        "nexmark: bad checkpointed position '" + std::string{pos} + "'");
    if (static_cast<std::int64_t>(*first) != part_.first_event_number ||
        static_cast<std::int64_t>(*count) > part_.max_events)
      return make_error(error_code::invalid_option,
                        "nexmark: checkpointed position " + std::string{pos} +
                          " belongs to another range of events; restore with the same "
                          "--events and source parallelism");
    gen_ = generator{part_, static_cast<std::int64_t>(*count)};
    return {};
  }

private:
  generator_config config_;
  std::optional<double> rate_;
  generator_config part_{};
  generator gen_{generator_config{}};
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

  std::unique_ptr<source<event>> create(const source_context&) const {
    return std::make_unique<nexmark_source>(config, rate);
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
