#pragma once
/// What `job::from(...)` accepts: a copyable description of a source that creates one
/// `source<T>` per parallel instance.
#include "sluice/sources/source.hpp"

#include <concepts>
#include <memory>
#include <string>

namespace sluice {

template <class D>
concept source_descriptor = requires(const D& d, const source_context& ctx) {
  typename D::record_type;
  { d.create(ctx) } -> std::convertible_to<std::unique_ptr<source<typename D::record_type>>>;
  { d.describe() } -> std::convertible_to<std::string>;
};

/// The most instances a source supports (a socket: 1). Unlimited unless the descriptor
/// says otherwise with `int max_parallelism() const`.
template <class D>
int source_max_parallelism(const D& d) {
  if constexpr (requires { { d.max_parallelism() } -> std::convertible_to<int>; })
    return d.max_parallelism();
  else
    return 1 << 16;
}

/// Checks a descriptor's options before the job starts (`result<void> validate() const`).
template <class D>
result<void> validate_source(const D& d) {
  if constexpr (requires { { d.validate() } -> std::convertible_to<result<void>>; })
    return d.validate();
  else
    return {};
}

/// Whether the descriptor's dead-letter output (port 1) may carry records.
template <class D>
bool source_emits_dead_letters(const D& d) {
  if constexpr (requires { d.malformed; })
    return d.malformed == on_malformed::dead_letter;
  else
    return false;
}

} // namespace sluice
