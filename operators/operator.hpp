#pragma once
/// The operator interface: what every node of a chain implements.
///
/// Operators see whole batches. Fused operators call each other directly through
/// `output::emit`, so a chain of map -> filter -> sink is a few virtual calls per batch
/// and tight loops over records, with no queue in between.
#include "core/batch.hpp"
#include "core/error.hpp"
#include "core/key_group.hpp"
#include "core/time.hpp"

#include <functional>
#include <memory>
#include <string>

namespace sluice {

/// Where an operator sends its results. Port 0 is the main output; other ports are side
/// outputs (dead letters, late data, ...).
class output {
public:
  virtual ~output() = default;
  /// Hands a batch to whatever is connected to `port`. Errors of fused downstream
  /// operators come back through the result.
  virtual result<void> emit(int port, batch_ptr records) = 0;
};

/// Facts about one parallel instance of an operator, given to `open`.
struct operator_info {
  std::string name;             ///< the node's name, as set with `.name(...)`
  int instance = 0;             ///< 0-based index of this parallel instance
  int parallelism = 1;          ///< number of parallel instances
  int max_key_groups = default_max_key_groups;
  key_group_range key_groups{}; ///< the key groups this instance owns
  std::shared_ptr<const clock> processing_clock = default_clock();
};

/// One parallel instance of an operator.
///
/// Concurrency: each instance is driven by exactly one task at a time; no method is
/// called concurrently on the same instance. Exceptions thrown from user functions
/// propagate out of `process`, and the task turns them into a named job failure.
class operator_base {
public:
  virtual ~operator_base() = default;
  /// Called once before the first batch.
  virtual result<void> open(const operator_info& info) {
    info_ = info;
    return {};
  }
  /// Processes one batch that arrived at `input`. The operator may change `records` in
  /// place when it holds the only reference (`records.use_count() == 1`).
  virtual result<void> process(int input, batch_ptr records, output& out) = 0;
  /// All inputs have ended: emit whatever is still held back.
  virtual result<void> finish(output&) { return {}; }
  /// Releases resources. Called once, also after failures.
  virtual result<void> close() { return {}; }

  const operator_info& info() const noexcept { return info_; }

protected:
  operator_info info_;
};

/// Creates one operator instance per parallel task.
using operator_factory = std::function<std::unique_ptr<operator_base>()>;

} // namespace sluice
