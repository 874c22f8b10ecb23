#pragma once
/// What `stream::sink_to(...)` accepts: a copyable description of a sink that creates one
/// `sink<T>` per parallel instance.
#include "sluice/sinks/sink.hpp"

#include <concepts>
#include <memory>
#include <string>

namespace sluice {

template <class D>
concept sink_descriptor = requires(const D& d, const sink_context& ctx) {
  typename D::record_type;
  { d.create(ctx) } -> std::convertible_to<std::unique_ptr<sink<typename D::record_type>>>;
  { d.describe() } -> std::convertible_to<std::string>;
};

template <class D>
int sink_max_parallelism(const D& d) {
  if constexpr (requires { { d.max_parallelism() } -> std::convertible_to<int>; })
    return d.max_parallelism();
  else
    return 1 << 16;
}

/// The output modes a sink accepts: `d.supported_modes()` if it says, else all three.
template <class D>
output_modes sink_output_modes(const D& d) {
  if constexpr (requires { { d.supported_modes() } -> std::convertible_to<output_modes>; })
    return d.supported_modes();
  else
    return output_modes::all();
}

template <class D>
result<void> validate_sink(const D& d) {
  if constexpr (requires { { d.validate() } -> std::convertible_to<result<void>>; })
    return d.validate();
  else
    return {};
}

} // namespace sluice
