#pragma once
/// The collection source: records from a vector, for tests and examples.
#include "sources/source.hpp"

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
    for (std::size_t i = 0; i < max && next_ < items_->size(); ++i, next_ += step_)
      out.records.push_back((*items_)[next_]);
    return next_ >= items_->size() ? poll_result::end() : poll_result::more();
  }

  /// Micro-batch: input is waiting until every element was read (also after a restore).
  result<bool> begin_trigger(bool) override { return next_ < items_->size(); }

  std::optional<std::string> position() const override { return std::to_string(next_); }
  result<void> seek(std::string_view pos) override {
    try {
      next_ = static_cast<std::size_t>(std::stoull(std::string{pos}));
    } catch (const std::exception&) {
      return make_error(error_code::io_error, "collection source: bad position '" +
                                                std::string{pos} + "'");
    }
    return {};
  }

private:
  std::shared_ptr<const std::vector<T>> items_;
  std::size_t next_ = 0;
  std::size_t step_ = 1;
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
