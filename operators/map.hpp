#pragma once
#include "sluice/operators/operator.hpp"
#include "sluice/operators/record_loop.hpp"

#include <type_traits>
#include <utility>

namespace sluice {

/// `map`: one record in, one record out. Works in place when input and output types
/// match and the batch is not shared.
template <class In, class Out, class F>
class map_operator final : public operator_base {
public:
  explicit map_operator(F fn) : fn_(std::move(fn)) {}

  result<void> process(int, batch_ptr in, output& out) override {
    auto& src = records_of<In>(*in);
    if constexpr (std::is_same_v<In, Out> && std::is_move_assignable_v<Out>) {
      if (in.use_count() == 1) {
        for_each_record(src, [this](Out& r) { r = fn_(std::as_const(r)); });
        return out.emit(0, std::move(in));
      }
    }
    auto mapped = make_batch<Out>(src.size());
    for_each_record(std::as_const(src),
                    [&](const In& r) { mapped->records.push_back(fn_(r)); });
    return out.emit(0, std::move(mapped));
  }

private:
  F fn_;
};

} // namespace sluice
