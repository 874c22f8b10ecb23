#pragma once
/// Two-input process functions: the base for joins and broadcast state.
#include "sluice/operators/collector.hpp"
#include "sluice/operators/context.hpp"
#include "sluice/operators/operator.hpp"
#include "sluice/operators/record_loop.hpp"

#include <utility>

namespace sluice {

/// Input 0 carries `A`, input 1 carries `B`. `fn` provides
/// `process_element1(const A&, Ctx&, collector<Out>&)` and `process_element2(const B&, ...)`.
template <class A, class B, class Out, class F>
class co_process_operator final : public operator_base {
public:
  explicit co_process_operator(F fn) : fn_(std::move(fn)) {}

  result<void> process(int input, batch_ptr in, output& out) override {
    auto produced = make_batch<Out>(in->size());
    collector<Out> c{produced->records};
    context ctx{info_};
    if (input == 0)
      for_each_record(std::as_const(records_of<A>(*in)),
                      [&](const A& r) { fn_.process_element1(r, ctx, c); });
    else
      for_each_record(std::as_const(records_of<B>(*in)),
                      [&](const B& r) { fn_.process_element2(r, ctx, c); });
    if (produced->records.empty())
      return {};
    return out.emit(0, std::move(produced));
  }

private:
  F fn_;
};

/// The keyed variant: both inputs are keyed by the same key type; the context carries it.
template <class K, class A, class B, class Out, class KeyA, class KeyB, class F>
class keyed_co_process_operator final : public operator_base {
public:
  keyed_co_process_operator(KeyA key_a, KeyB key_b, F fn)
    : key_a_(std::move(key_a)), key_b_(std::move(key_b)), fn_(std::move(fn)) {}

  result<void> process(int input, batch_ptr in, output& out) override {
    auto produced = make_batch<Out>(in->size());
    collector<Out> c{produced->records};
    keyed_context<K> ctx{info_};
    if (input == 0) {
      for_each_record(std::as_const(records_of<A>(*in)), [&](const A& r) {
        const K key = key_a_(r);
        ctx.set_current_key(key, key_group_of(key_hash<K>{}(key), info_.max_key_groups));
        fn_.process_element1(r, ctx, c);
      });
    } else {
      for_each_record(std::as_const(records_of<B>(*in)), [&](const B& r) {
        const K key = key_b_(r);
        ctx.set_current_key(key, key_group_of(key_hash<K>{}(key), info_.max_key_groups));
        fn_.process_element2(r, ctx, c);
      });
    }
    if (produced->records.empty())
      return {};
    return out.emit(0, std::move(produced));
  }

private:
  KeyA key_a_;
  KeyB key_b_;
  F fn_;
};

} // namespace sluice
