#pragma once
/// `process`: custom per-record logic with a context (the keyed form, with state and timers,
/// is in keyed_process.hpp).
#include "sluice/operators/collector.hpp"
#include "sluice/operators/context.hpp"
#include "sluice/operators/operator.hpp"
#include "sluice/operators/record_loop.hpp"

#include <utility>

namespace sluice {

/// Calls a process function: either an object with `on_element(record, ctx, out)` or a
/// plain callable `(record, ctx, out)`.
template <class F, class In, class Ctx, class Out>
void invoke_on_element(F& fn, const In& record, Ctx& ctx, collector<Out>& out) {
  if constexpr (requires { fn.on_element(record, ctx, out); })
    fn.on_element(record, ctx, out);
  else
    fn(record, ctx, out);
}

/// A non-keyed process function.
template <class In, class Out, class F>
class process_operator final : public operator_base {
public:
  explicit process_operator(F fn) : fn_(std::move(fn)) {}

  result<void> process(int, batch_ptr in, output& out) override {
    auto produced = make_batch<Out>(in->size());
    collector<Out> c{produced->records};
    context ctx{info_};
    for_each_record(std::as_const(records_of<In>(*in)),
                    [&](const In& r) { invoke_on_element(fn_, r, ctx, c); });
    if (produced->records.empty())
      return {};
    return out.emit(0, std::move(produced));
  }

private:
  F fn_;
};

} // namespace sluice
