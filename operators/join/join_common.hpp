#pragma once
/// What the join operators share: the join type, the default result record and the rules
/// for calling the user's join function.
#include "sluice/core/time.hpp"

#include <concepts>
#include <limits>
#include <optional>
#include <type_traits>
#include <utility>

namespace sluice {

/// Which rows a join emits.
enum class join_type {
  inner,      ///< only matched pairs
  left_outer, ///< matched pairs, and every left row that never matched, once, with no right
};

/// The default output of a join: the left row and, when there was a match, the right one.
template <class L, class R>
struct join_result {
  L left;
  std::optional<R> right; ///< empty for an unmatched left row of a left outer join
  friend bool operator==(const join_result&, const join_result&) = default;
};

/// The join function that builds `join_result<L, R>`; `right` is null for no match.
template <class L, class R>
struct to_join_result {
  join_result<L, R> operator()(const L& left, const R* right) const {
    return join_result<L, R>{left, right ? std::optional<R>{*right} : std::nullopt};
  }
};

/// Join functions. Inner joins call `fn(const L&, const R&)`; left outer joins call
/// `fn(const L&, const R*)` with `nullptr` for an unmatched left row (C++20 has no
/// `std::optional<const R&>`, and copying every right row into an optional would cost
/// a copy per match). A function taking `const R*` also serves an inner join.
template <class F, class L, class R>
concept inner_join_function = std::is_invocable_v<F&, const L&, const R&> ||
                              std::is_invocable_v<F&, const L&, const R*>;
template <class F, class L, class R>
concept outer_join_function = std::is_invocable_v<F&, const L&, const R*>;

namespace detail {

/// The record type a join function returns (for either accepted signature).
template <class F, class L, class R>
auto join_output_type() {
  if constexpr (std::is_invocable_v<F&, const L&, const R*>)
    return std::type_identity<std::decay_t<std::invoke_result_t<F&, const L&, const R*>>>{};
  else if constexpr (std::is_invocable_v<F&, const L&, const R&>)
    return std::type_identity<std::decay_t<std::invoke_result_t<F&, const L&, const R&>>>{};
  else
    return std::type_identity<void>{};
}
template <class F, class L, class R>
using join_output = typename decltype(join_output_type<F, L, R>())::type;

/// Calls the join function for a match.
template <class F, class L, class R>
decltype(auto) call_join_matched(F& fn, const L& left, const R& right) {
  if constexpr (std::is_invocable_v<F&, const L&, const R*>)
    return fn(left, &right);
  else
    return fn(left, right);
}

/// `t + d`, clamped to the representable range: a bound added to a record time near the
/// limits must not wrap around and turn "never" into "long ago".
constexpr event_time join_bound_add(event_time t, duration d) noexcept {
  using rep = duration::rep;
  const rep a = t.time_since_epoch().count();
  const rep b = d.count();
  if (b > 0 && a > std::numeric_limits<rep>::max() - b)
    return max_watermark;
  if (b < 0 && a < std::numeric_limits<rep>::min() - b)
    return min_watermark;
  return event_time{duration{a + b}};
}
constexpr event_time join_bound_sub(event_time t, duration d) noexcept {
  if (d.count() == std::numeric_limits<duration::rep>::min())
    return join_bound_add(join_bound_add(t, duration::max()), duration{1});
  return join_bound_add(t, -d);
}

} // namespace detail

} // namespace sluice
