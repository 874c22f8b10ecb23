#pragma once
/// Compile-time inspection of user functions, so the fluent API can infer output types
/// and explain mistakes with the accepted signatures.
#include "sluice/operators/collector.hpp"

#include <tuple>
#include <type_traits>

namespace sluice::detail {

template <class F, class = void>
struct callable_args {
  static constexpr bool known = false;
};
template <class R, class... A>
struct callable_args<R (*)(A...)> {
  static constexpr bool known = true;
  using args = std::tuple<A...>;
};
template <class C, class R, class... A>
struct callable_args<R (C::*)(A...)> : callable_args<R (*)(A...)> {};
template <class C, class R, class... A>
struct callable_args<R (C::*)(A...) const> : callable_args<R (*)(A...)> {};
template <class C, class R, class... A>
struct callable_args<R (C::*)(A...) noexcept> : callable_args<R (*)(A...)> {};
template <class C, class R, class... A>
struct callable_args<R (C::*)(A...) const noexcept> : callable_args<R (*)(A...)> {};
template <class F>
struct callable_args<F, std::void_t<decltype(&F::operator())>>
  : callable_args<decltype(&F::operator())> {};

template <class T>
struct collector_of {
  static constexpr bool known = false;
};
template <class U>
struct collector_of<collector<U>&> {
  static constexpr bool known = true;
  using type = U;
};

/// The `U` of the last `collector<U>&` parameter of `Sig` (a member or call operator).
template <class Sig, class = void>
struct emitted {
  static constexpr bool known = false;
  using type = void;
};
template <class Sig>
struct emitted<Sig, std::enable_if_t<callable_args<Sig>::known>> {
  using args = typename callable_args<Sig>::args;
  static constexpr auto n = std::tuple_size_v<args>;
  using last = std::tuple_element_t<n - 1, args>;
  static constexpr bool known = collector_of<last>::known;
  using type = typename collector_of<last>::type;
};

/// The output type of a process-like function object `F`: its `on_element` (or
/// `process_element1`) member, or its call operator.
template <class F>
auto emitted_by_process() {
  if constexpr (requires { &F::on_element; })
    return std::type_identity<emitted<decltype(&F::on_element)>>{};
  else if constexpr (requires { &F::process_element1; })
    return std::type_identity<emitted<decltype(&F::process_element1)>>{};
  else
    return std::type_identity<emitted<F>>{};
}
template <class F>
using process_output = typename decltype(emitted_by_process<F>())::type::type;

/// The type `agg.result(...)` returns for an aggregate function: `result(const K&, const
/// Acc&)` or `result(const Acc&)`.
template <class K, class Acc, class Agg>
auto aggregate_result_type() {
  if constexpr (requires(Agg& a, const K& k, const Acc& c) { a.result(k, c); })
    return std::type_identity<std::decay_t<decltype(std::declval<Agg&>().result(
      std::declval<const K&>(), std::declval<const Acc&>()))>>{};
  else
    return std::type_identity<
      std::decay_t<decltype(std::declval<Agg&>().result(std::declval<const Acc&>()))>>{};
}
template <class K, class Acc, class Agg>
using aggregate_result = typename decltype(aggregate_result_type<K, Acc, Agg>())::type;

} // namespace sluice::detail
