#pragma once
#include "sluice/operators/collector.hpp"
#include "sluice/operators/operator.hpp"
#include "sluice/operators/record_loop.hpp"

#include <utility>

namespace sluice {

/// `flat_map`: each record yields zero or more records through a `collector<Out>`.
template <class In, class Out, class F>
class flat_map_operator final : public operator_base {
public:
  explicit flat_map_operator(F fn) : fn_(std::move(fn)) {}

  result<void> process(int, batch_ptr in, output& out) override {
    auto produced = make_batch<Out>(in->size());
    collector<Out> c{produced->records};
    for_each_record(std::as_const(records_of<In>(*in)), [&](const In& r) { fn_(r, c); });
    if (produced->records.empty())
      return {};
    return out.emit(0, std::move(produced));
  }

private:
  F fn_;
};

} // namespace sluice
