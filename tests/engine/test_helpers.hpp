#pragma once
/// Shared helpers of the engine tests: checking results, bounded waits, small fakes.
///
/// Boost.Test assertions are not thread-safe: everything that runs inside a job (sinks,
/// user functions) only records what it saw, and the test thread asserts afterwards.
#include <boost/test/unit_test.hpp>

#include "sluice/actors/runtime.hpp"
#include "sluice/core/error.hpp"
#include "sluice/operators/chain.hpp"
#include "sluice/operators/partition.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <ostream>
#include <string>
#include <vector>

namespace sluice {
// How Boost.Test prints engine enums in failed assertions (found by ADL).
inline std::ostream& boost_test_print_type(std::ostream& os, partition_kind k) {
  return os << to_string(k);
}
inline std::ostream& boost_test_print_type(std::ostream& os, error_code c) {
  return os << to_string(c);
}
} // namespace sluice

namespace sluice::test {

using namespace std::chrono_literals;

/// The error text of a failed result, or "" (safe to build when the result is a value).
template <class T>
std::string error_text(const result<T>& r) {
  return r ? std::string{} : r.error().to_string();
}

/// Requires success and returns the value.
template <class T>
T require_ok(result<T> r) {
  BOOST_REQUIRE_MESSAGE(r.has_value(), error_text(r));
  return std::move(r).value();
}
inline void require_ok(result<void> r) { BOOST_REQUIRE_MESSAGE(r.has_value(), error_text(r)); }

/// Requires failure and returns the error.
template <class T>
error require_error(result<T> r) {
  BOOST_REQUIRE_MESSAGE(!r.has_value(), "expected an error, got success");
  return std::move(r).error();
}

/// Safety net for waits that must end quickly in a correct engine. Generous: a loaded
/// CI machine must never trip it; a hang bug still ends the test with a failure.
inline constexpr auto safety_timeout = 60s;

/// Waits until `pred()` holds, re-checking after each short bounded wait on the job's
/// completion (so the wait ends early when the job ends). Not a sleep that lets things
/// happen: it returns as soon as the condition holds. False on timeout or job end
/// without the condition.
template <class Pred>
bool wait_until(job_execution& exec, Pred pred, std::chrono::nanoseconds timeout = safety_timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    if (exec.wait_for(200us))
      return pred();
  }
  return true;
}

/// The stats of the task `instance` of the chain named `chain`.
inline task_stats stats_of(const std::vector<task_stats>& all, const std::string& chain,
                           int instance = 0) {
  for (auto& s : all)
    if (s.chain == chain && s.instance == instance)
      return s;
  BOOST_FAIL("no task for chain '" + chain + "' instance " + std::to_string(instance));
  return {};
}

/// Sums a counter over every task of the chain named `chain`.
inline std::uint64_t sum_of(const std::vector<task_stats>& all, const std::string& chain,
                            std::uint64_t task_stats::*field) {
  std::uint64_t n = 0;
  for (auto& s : all)
    if (s.chain == chain)
      n += s.*field;
  return n;
}

/// A counter that threads bump and the test thread waits on.
class counter_gate {
public:
  void add(std::uint64_t n) {
    {
      std::lock_guard lk{m_};
      value_ += n;
    }
    cv_.notify_all();
  }
  std::uint64_t value() const {
    std::lock_guard lk{m_};
    return value_;
  }
  /// Waits until the value reaches `n`; false on timeout.
  bool wait_at_least(std::uint64_t n, std::chrono::nanoseconds timeout = safety_timeout) const {
    std::unique_lock lk{m_};
    return cv_.wait_for(lk, timeout, [&] { return value_ >= n; });
  }

private:
  mutable std::mutex m_;
  mutable std::condition_variable cv_;
  std::uint64_t value_ = 0;
};

/// An `external_output` that records what leaves a chain.
struct capture_external final : external_output {
  struct item {
    int node;
    int port;
    batch_ptr records;
  };
  std::vector<item> items;
  result<void> emit(int node, int port, batch_ptr records) override {
    items.push_back({node, port, std::move(records)});
    return {};
  }
};

/// An `output` that records what an operator emits.
struct capture_output final : output {
  struct item {
    int port;
    batch_ptr records;
  };
  std::vector<item> items;
  result<void> emit(int port, batch_ptr records) override {
    items.push_back({port, std::move(records)});
    return {};
  }
  /// All records emitted on `port`, in order.
  template <class T>
  std::vector<T> records(int port = 0) const {
    std::vector<T> out;
    for (auto& i : items)
      if (i.port == port)
        for (auto& r : records_of<T>(*i.records))
          out.push_back(r);
    return out;
  }
};

/// A batch holding `v`, and nothing else holding it (`use_count() == 1`).
template <class T>
batch_ptr batch_of(std::vector<T> v) {
  return std::make_shared<batch<T>>(std::move(v));
}

} // namespace sluice::test
