#pragma once
/// The collection source: records from a vector, for tests and examples.
#include "sluice/sources/source.hpp"

#include <algorithm>
#include <chrono>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace sluice::sources {

/// Instance i of p emits elements i, i+p, ... in order.
template <class T>
class collection_source final : public source<T> {
public:
  explicit collection_source(std::shared_ptr<const std::vector<T>> items) : items_(std::move(items)) {}

  result<void> open(const source_context& ctx) override {
    next_ = static_cast<std::size_t>(ctx.instance);
    step_ = static_cast<std::size_t>(ctx.parallelism);
    return {};
  }

  result<poll_result> poll(source_output<T>& out, std::size_t max) override {
    const auto stop = std::min(trigger_end_, items_->size());
    for (std::size_t i = 0; i < max && next_ < stop; ++i, next_ += step_)
      out.records.push_back((*items_)[next_]);
    if (next_ >= items_->size())
      return poll_result::end();
    return next_ >= stop ? poll_result::idle(std::chrono::milliseconds{1}) : poll_result::more();
  }

  /// Micro-batch: input is waiting until every element was read (also after a restore).
  result<bool> begin_trigger(bool unlimited) override { return begin_as_planned(*this, unlimited); }
  /// Micro-batch: the trigger reads up to an index fixed now (at most `max_records`).
  result<trigger_plan> plan_trigger(bool unlimited, std::uint64_t max_records) override {
    const auto size = items_->size();
    const std::uint64_t left = next_ < size ? (size - next_ + step_ - 1) / step_ : 0;
    const auto n = unlimited ? left : std::min<std::uint64_t>(left, max_records);
    trigger_end_ = n == left ? size : next_ + static_cast<std::size_t>(n) * step_;
    return trigger_plan{n > 0, std::to_string(trigger_end_)};
  }
  result<void> replay_trigger(std::string_view end) override {
    const auto e = parse_sequence_number(end);
    if (!e)
      return make_error(error_code::io_error, "collection source: bad planned end '" +
                                                std::string{end} + "' in the offset log");
    trigger_end_ = static_cast<std::size_t>(*e);
    return {};
  }

  std::optional<std::string> position() const override { return std::to_string(next_); }
  result<void> seek(std::string_view pos) override {
    const auto n = parse_sequence_number(pos);
    if (!n)
      return make_error(error_code::io_error, "collection source: bad position '" +
                                                std::string{pos} + "'");
    next_ = static_cast<std::size_t>(*n);
    return {};
  }

private:
  std::shared_ptr<const std::vector<T>> items_;
  std::size_t next_ = 0;
  std::size_t step_ = 1;
  /// Micro-batch: where the current trigger's elements end; none in continuous mode.
  std::size_t trigger_end_ = std::numeric_limits<std::size_t>::max();
};

/// Descriptor: `job.from(sources::collection<int>{{1, 2, 3}})`.
template <class T>
struct collection {
  using record_type = T;
  std::shared_ptr<const std::vector<T>> items;

  collection(std::vector<T> v) : items(std::make_shared<const std::vector<T>>(std::move(v))) {}
  collection(std::initializer_list<T> v) : items(std::make_shared<const std::vector<T>>(v)) {}

  std::unique_ptr<source<T>> create(const source_context&) const {
    return std::make_unique<collection_source<T>>(items);
  }
  std::string describe() const { return "collection(" + std::to_string(items->size()) + ")"; }
};

} // namespace sluice::sources
