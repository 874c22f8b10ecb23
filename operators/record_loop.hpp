#pragma once
/// The per-record loop of operators that run user functions: when a user function throws,
/// the failure names the record it was given.
#include "sluice/core/codec/record_text.hpp"
#include "sluice/core/error.hpp"
#include "sluice/core/time.hpp"

#include <cstddef>
#include <exception>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace sluice {

/// A user function threw while processing one record. Carries the original cause and the
/// record's text (`record_text`, bounded), so the job's failure can name both.
class record_failure : public std::exception {
public:
  record_failure(std::string cause, std::string record, std::exception_ptr original = {})
    : cause_(std::move(cause)), record_(std::move(record)), original_(std::move(original)),
      what_(cause_ + "; record: " + record_) {}

  /// "CAUSE; record: TEXT".
  const char* what() const noexcept override { return what_.c_str(); }
  /// The original exception's `what()` ("unknown exception" for a non-standard one).
  const std::string& cause() const noexcept { return cause_; }
  /// The offending record's text.
  const std::string& record() const noexcept { return record_; }
  /// The exception the user function threw.
  const std::exception_ptr& original() const noexcept { return original_; }

private:
  std::string cause_;
  std::string record_;
  std::exception_ptr original_;
  std::string what_;
};

namespace detail {

template <class E>
bool is_a(const std::exception& e) noexcept {
  return dynamic_cast<const E*>(&e) != nullptr;
}

/// Builds the `record_failure` for the exception being handled.
template <class T>
[[noreturn]] void throw_record_failure(const T& record, std::string cause) {
  throw record_failure(std::move(cause), record_text(record), std::current_exception());
}

/// The event times of a batch's records, `times[i]` for `records[i]` (kept in `times`):
/// one type-erased call per batch for a `timestamp_fn`, whose loop inlines the user's
/// function (a call per record cost W4 a fifth of its engine CPU); other callables are
/// called per record.
template <class TsFn, class T>
const event_time* event_times(const TsFn& fn, const std::vector<T>& records,
                              std::vector<event_time>& times) {
  times.resize(records.size());
  if constexpr (requires { fn.fill(std::span<const T>{records}, times.data()); })
    fn.fill(std::span<const T>{records}, times.data());
  else
    for (std::size_t i = 0; i < records.size(); ++i)
      times[i] = fn(records[i]);
  return times.data();
}

} // namespace detail

/// Calls `fn(records[i])` for each record in order. If `fn` throws, the exception is
/// rethrown as a `record_failure` naming `records[i]`, except:
/// - a `record_failure` passes unchanged (a fused downstream operator's, reached through
///   `out.emit`, already names the innermost record);
/// - exceptions of the `PassThrough` types (engine errors such as API misuse) pass unchanged.
///
/// When `fn` returns `result<void>`, the loop stops at the first error and returns it;
/// otherwise it returns nothing. The happy path costs the loop index and nothing else: one
/// try block around the whole loop, no per-record bookkeeping.
///
/// `fn` must leave `records[i]` intact until it returns or throws (it may change earlier
/// records, as in-place operators do).
template <class... PassThrough, class Records, class F>
auto for_each_record(Records& records, F&& fn) {
  using ret = decltype(fn(records[std::size_t{0}]));
  std::size_t i = 0;
  try {
    if constexpr (std::is_void_v<ret>) {
      for (const std::size_t n = records.size(); i < n; ++i)
        fn(records[i]);
    } else {
      for (const std::size_t n = records.size(); i < n; ++i)
        if (auto r = fn(records[i]); !r)
          return r;
      return ret{};
    }
  } catch (const record_failure&) {
    throw;
  } catch (const std::exception& e) {
    if ((detail::is_a<PassThrough>(e) || ...))
      throw;
    detail::throw_record_failure(records[i], e.what());
  } catch (...) {
    detail::throw_record_failure(records[i], "unknown exception");
  }
}

} // namespace sluice
