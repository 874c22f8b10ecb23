#pragma once
/// The job's fingerprint: a stable description of every node (name, kind, record types,
/// the state it keeps in checkpoints) and of the plan (parallelism, partitioning, key
/// groups), with a 64-bit hash (XXH64) over all of it.
///
/// Two uses:
/// - A restore compares the fingerprint stored in a checkpoint's metadata with the job's,
///   operator by operator (`compare`), and applies Flink's rules to the differences
///   (actors/restore.cpp): state of an operator the job no longer has is refused unless
///   asked for, an operator whose state changed is refused, a new one starts empty.
/// - Nodes of a multi-node job must run exactly the same job: they compare `hash`, and on a
///   mismatch `differences` says what differs.
///
/// Type names are demangled C++ names: the same across runs of one build, and across builds
/// while the types keep their names and the compiler stays the same.
#include "sluice/core/error.hpp"
#include "sluice/graph/graph.hpp"
#include "sluice/graph/plan.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

/// One node, as the fingerprint describes it.
struct node_fingerprint {
  std::string name;
  std::string kind;        ///< "source", "operator" or "sink"
  std::string kind_name;   ///< "reduce", "window", "source", "sink", ...
  std::string description; ///< connector details, the window's assigner, ...
  std::vector<std::string> inputs;  ///< the record type of each input
  std::vector<std::string> outputs; ///< "port: record type" of each output port
  /// What it keeps in checkpoints (`state_spec::describe`); empty: none declared.
  std::string state;
  int parallelism = 0; ///< as planned
  int max_parallelism = 0;
  bool chaining = true;

  friend bool operator==(const node_fingerprint&, const node_fingerprint&) = default;
};

/// A job, as the fingerprint describes it.
struct job_fingerprint {
  /// The format `to_json` writes; `from_json` refuses a newer one.
  static constexpr int format = 1;

  std::vector<node_fingerprint> nodes; ///< in the graph's order
  /// "from:port -> to:input partitioning", in the graph's order.
  std::vector<std::string> edges;
  int max_key_groups = 0;
  /// XXH64 of everything above (its canonical JSON form).
  std::uint64_t hash = 0;

  /// The node named `name`, or null.
  const node_fingerprint* find(std::string_view name) const noexcept;
  /// The hash as 16 hexadecimal digits.
  std::string hash_text() const;
  /// The fingerprint as JSON, the hash included.
  std::string to_json() const;
  /// Reads `to_json`'s form. Fails with `io_error` on malformed text, a newer format, or a
  /// hash that does not match the contents.
  [[nodiscard]] static result<job_fingerprint> from_json(std::string_view text);
};

/// The fingerprint of the job `g` planned as `plan`.
[[nodiscard]] job_fingerprint fingerprint_of(const graph& g, const physical_plan& plan);

/// How one operator (by name) differs between two fingerprints.
struct operator_difference {
  std::string name;
  std::optional<node_fingerprint> before; ///< unset: the operator is new
  std::optional<node_fingerprint> after;  ///< unset: the operator is gone
  /// "parallelism 1 -> 2", "state keyed reduce<long, T> -> keyed aggregate<long, A>", ...
  std::vector<std::string> changes;

  /// Both declare state, and not the same (layout or types).
  bool state_changed() const noexcept;
  /// "operator 'sums' is gone", "operator 'sums': parallelism 1 -> 2; ...".
  std::string text() const;
};

/// The operators that differ between `before` and `after`, by name: gone, new, or changed
/// (kind, record types, state, parallelism, description, chaining), in the order of
/// `before`'s nodes, then the new ones in `after`'s order. Empty when every node is the
/// same.
[[nodiscard]] std::vector<operator_difference> compare(const job_fingerprint& before,
                                                       const job_fingerprint& after);

/// Every difference between two jobs, one line each: the operators' (`compare`), the edges
/// only one has, and the key groups. Empty when their hashes match.
[[nodiscard]] std::vector<std::string> differences(const job_fingerprint& expected,
                                                   const job_fingerprint& actual);

} // namespace sluice
