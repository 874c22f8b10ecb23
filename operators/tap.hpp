#pragma once
/// Taps: a bounded-rate sample of the records leaving a named operator, as text, for
/// debugging a running job without stopping it.
///
/// A `tap_registry` knows every node of a job and holds one `tap_point` per node. Chains
/// look at their nodes' points on every output batch of port 0: with no tap active that is
/// one relaxed atomic load and a predictable branch per batch. An active tap takes at most
/// `max_per_second` records per second over all instances of the operator (a token bucket
/// on the job's processing clock), formats them with the port's `record_describer` and
/// hands each line to the tap's callback.
///
/// No CAF here: the runtime holds one registry per job and `job_execution::tap` forwards.
#include "sluice/core/codec/record_text.hpp"
#include "sluice/core/error.hpp"
#include "sluice/core/time.hpp"

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sluice {

/// Receives one tap line: `operator NAME[INSTANCE] PORT: TEXT`, INSTANCE 0-based, PORT the
/// output port's name (`out`), TEXT the record's `record_text`. Called on runtime threads,
/// one call at a time per tap; keep it short, and do not start or stop taps from it.
/// What it throws is ignored (a tap never fails the job).
using tap_callback = std::function<void(const std::string& line)>;

/// A tap to start with the job (`runtime_options::taps`).
struct tap_spec {
  /// The node to tap, as named with `.name(...)`. Every node of that name is tapped.
  std::string operator_name;
  /// Lines per second over all instances of the operator; at most `max(1, rate)` in a
  /// burst. Must be positive.
  double max_per_second = 10;
  tap_callback out;
};

/// One active tap: the rate limit and the callback, shared by every instance it watches.
///
/// Thread-safe: instances of the operator call `take` and `write` concurrently.
class tap_state {
public:
  tap_state(double max_per_second, tap_callback out, std::shared_ptr<const clock> clk);

  /// Takes up to `wanted` tokens; returns how many it got. The bucket holds at most
  /// `max(1, max_per_second)` tokens, starts full and refills at `max_per_second` per
  /// second of the clock: with a clock that does not move, at most that many in total.
  std::size_t take(std::size_t wanted);
  /// Hands `line` to the callback unless the tap was stopped; swallows its exceptions.
  void write(const std::string& line) noexcept;
  /// After `stop` returns, the callback is not called again (a call in progress has ended).
  void stop() noexcept;

private:
  double rate_;
  double capacity_;
  std::shared_ptr<const clock> clock_;
  std::mutex bucket_mtx_;
  double tokens_;
  clock::time_point last_;
  std::mutex out_mtx_;
  bool stopped_ = false; // under out_mtx_
  tap_callback out_;
};

/// Where a chain looks for a tap on one node. Stable address for the job's lifetime.
class tap_point {
public:
  tap_point() = default;
  tap_point(std::string name, std::string port_name, record_describer describe)
    : name_(std::move(name)), port_name_(std::move(port_name)), describe_(std::move(describe)) {}
  tap_point(const tap_point&) = delete;
  tap_point& operator=(const tap_point&) = delete;

  /// The cheap test done per batch.
  bool active() const noexcept { return active_.load(std::memory_order_relaxed); }

  /// Samples `records` (leaving instance `instance`) into the active tap, if any.
  void sample(int instance, const batch_base& records);

  /// Starts or replaces the tap (the replaced one is stopped).
  void set(std::shared_ptr<tap_state> state);
  /// Stops the tap, if any; no line of it is delivered after this returns.
  void clear();

  const std::string& name() const noexcept { return name_; }
  bool has_output() const noexcept { return static_cast<bool>(describe_); }

private:
  std::shared_ptr<tap_state> current() const;

  std::atomic<bool> active_{false};
  std::string name_;
  std::string port_name_;
  record_describer describe_;
  mutable std::mutex mtx_;
  std::shared_ptr<tap_state> state_; // under mtx_
};

/// A point that is never active: what a chain without a registry looks at.
tap_point& inactive_tap_point() noexcept;

/// Every node of a job that can be tapped, by logical node id.
class tap_registry {
public:
  /// One node: its name, its main output port's name and describer (empty describer: the
  /// node has no output, as a sink).
  struct node {
    std::string name;
    std::string port_name = "out";
    record_describer describe;
  };

  tap_registry(const std::vector<node>& nodes, std::shared_ptr<const clock> processing_clock);

  /// Starts (or replaces) a tap on every node named `operator_name`. Fails with
  /// `invalid_option` on an unknown name (the message lists the valid ones), a node
  /// without output (a sink), a rate that is not positive or an empty callback.
  [[nodiscard]] result<void> tap(const std::string& operator_name, double max_per_second,
                                 tap_callback out);
  /// Stops the tap on `operator_name`, if any. No line of it is delivered after this returns.
  void untap(const std::string& operator_name);

  /// The point of logical node `id` (never null).
  tap_point* point(int id) noexcept;

private:
  std::vector<std::unique_ptr<tap_point>> points_;
  std::shared_ptr<const clock> clock_;
};

} // namespace sluice
