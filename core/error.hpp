#pragma once
/// Explicit, named errors and a small `result<T>` (C++20 has no std::expected).
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace sluice {

/// What went wrong, by name. Every failure the engine reports carries one of these.
enum class error_code : std::uint8_t {
  invalid_graph,        ///< the job graph is malformed (type mismatch, dangling port, ...)
  invalid_option,       ///< an option value is out of range or inconsistent
  malformed_record,     ///< input that the codec cannot parse (file, line and cause attached)
  io_error,             ///< a file, socket or directory operation failed
  user_function_failed, ///< a user function threw; the message names operator and instance
  connector_failed,     ///< a source or sink reported a failure
  cancelled,            ///< the job was cancelled before it finished
  checkpoint_failed,    ///< more checkpoints failed (store error, timeout) than tolerated
  internal,             ///< an engine invariant broke; please report it
  /// The checkpoint a run starts from cannot be restored as the job is now: it is older
  /// than output a sink already committed (a fallback past corrupt or lost checkpoints:
  /// replaying would commit it again), or it was taken at a parallelism a source cannot
  /// change.
  restore_conflict,
  /// Bytes from the network that are no valid frame: truncated, wrong magic or format
  /// version, an absurd length, a field out of range (net/frame.hpp).
  malformed_frame,
  /// Another node was refused at the handshake: another job fingerprint, frame format
  /// version or cluster file, or it claims a node it cannot be (net/link.hpp).
  peer_refused,
  /// A node stopped answering: nothing from it within the heartbeat timeout.
  node_lost,
};

/// Whether restarting the job from its latest checkpoint (the restart strategy) can cure a
/// task failure with this code. Not for `restore_conflict`: the restart would fall back to
/// the same checkpoint and fail the same way, so the job fails at once (Flink's
/// non-recoverable errors).
constexpr bool restart_can_help(error_code code) noexcept {
  return code != error_code::restore_conflict;
}

/// The stable, lower-case name of an error code (used in messages and metrics labels).
std::string_view to_string(error_code code) noexcept;

/// An error value: a code plus a human-readable message naming the culprit.
struct [[nodiscard]] error {
  error_code code = error_code::internal;
  std::string message;

  /// "malformed_record: input.csv:3: expected 3 fields, found 2"
  std::string to_string() const;
};

template <class T>
class [[nodiscard]] result;

namespace detail {
struct ok_tag {};
} // namespace detail

/// The result of an operation that may fail: either a value or an `error`.
template <class T>
class [[nodiscard]] result {
public:
  result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  result(sluice::error err) : v_(std::in_place_index<1>, std::move(err)) {}

  explicit operator bool() const noexcept { return v_.index() == 0; }
  bool has_value() const noexcept { return v_.index() == 0; }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const sluice::error& error() const& { return std::get<1>(v_); }
  sluice::error&& error() && { return std::get<1>(std::move(v_)); }

private:
  std::variant<T, sluice::error> v_;
};

/// `result<void>`: success or an error.
template <>
class [[nodiscard]] result<void> {
public:
  result() = default;
  result(sluice::error err) : err_(std::move(err)), ok_(false) {}

  explicit operator bool() const noexcept { return ok_; }
  bool has_value() const noexcept { return ok_; }
  const sluice::error& error() const& { return err_; }
  sluice::error&& error() && { return std::move(err_); }

private:
  sluice::error err_{};
  bool ok_ = true;
};

/// Shorthand for building an error in a return statement.
inline error make_error(error_code code, std::string message) {
  return error{code, std::move(message)};
}

/// Marks a deliberately ignored result, so ignoring one is always spelled out.
template <class T>
void permit_unchecked(result<T>&&) noexcept {}

} // namespace sluice
