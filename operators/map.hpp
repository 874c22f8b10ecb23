#pragma once
#include "sluice/operators/operator.hpp"
#include "sluice/operators/record_loop.hpp"

#include <type_traits>
#include <utility>

namespace sluice {

/// `map`: one record in, one record out. Works in place when input and output types
/// match and the batch is not shared. A function that takes its record by rvalue
/// (`Out(In&&)`) takes it over: records of a batch nobody else holds are moved into it, so
/// their strings and vectors change hands instead of being copied; a shared batch's records
/// are copied first.
template <class In, class Out, class F>
class map_operator final : public operator_base {
public:
  explicit map_operator(F fn) : fn_(std::move(fn)) {}

  result<void> process(int, batch_ptr in, output& out) override {
    auto& src = records_of<In>(*in);
    const bool alone = in.use_count() == 1;
    if constexpr (std::is_same_v<In, Out> && std::is_move_assignable_v<Out>) {
      if (alone) {
        for_each_record(src, [this](Out& r) { r = call(r); });
        return out.emit(0, std::move(in));
      }
    }
    auto mapped = make_batch<Out>(src.size());
    if (alone)
      for_each_record(src, [&](In& r) { mapped->records.push_back(call(r)); });
    else
      for_each_record(std::as_const(src),
                      [&](const In& r) { mapped->records.push_back(call_on_copy(r)); });
    return out.emit(0, std::move(mapped));
  }

private:
  static constexpr bool takes_over = !std::is_invocable_v<F&, const In&>;

  /// `r` belongs to this operator alone.
  Out call(In& r) {
    if constexpr (takes_over)
      return fn_(std::move(r));
    else
      return fn_(std::as_const(r));
  }
  Out call_on_copy(const In& r) {
    if constexpr (takes_over)
      return fn_(In(r));
    else
      return fn_(r);
  }

private:
  F fn_;
};

} // namespace sluice
