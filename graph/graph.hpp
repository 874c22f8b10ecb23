#pragma once
/// The logical job graph: nodes (sources, operators, sinks) and edges with their
/// partitioning. This is the lower-level, type-erased API; the fluent `stream<T>` API in
/// api/ builds on it. Nothing runs here.
#include "sluice/core/batch.hpp"
#include "sluice/core/codec/batch_binary.hpp"
#include "sluice/core/codec/record_text.hpp"
#include "sluice/core/epoch.hpp"
#include "sluice/core/error.hpp"
#include "sluice/operators/operator.hpp"
#include "sluice/operators/partition.hpp"
#include "sluice/sources/source.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

using node_id = int;

enum class node_kind { source, operator_node, sink };
std::string_view to_string(node_kind kind) noexcept;

/// An output port: its record type and how to build routers for it.
struct port_spec {
  record_type type;
  std::string name = "out";
  /// Builds a router for the non-keyed partition kinds.
  std::function<router_factory(partition_kind)> routers;
  /// True when a record on this port must have somewhere to go (dead letters).
  bool must_connect = false;
  /// The one-line text of a record of a batch on this port (`record_text`), for taps.
  /// Empty for hand-built ports: taps then show the record type's name.
  record_describer describe{};
  /// How batches on this port cross nodes in a multi-node run (the binary record codec).
  /// Empty for a type without `inspect()`: such an edge must stay within a node.
  codec::batch_codec wire{};

  template <class T>
  static port_spec of(std::string name = "out", bool must_connect = false) {
    return port_spec{record_type_of<T>(), std::move(name),
                     [](partition_kind k) { return make_router_factory<T>(k); }, must_connect,
                     describe_records<T>(), codec::batch_codec_of<T>()};
  }
};

/// How an edge spreads records; build one with the helpers in `partition::`.
struct partitioning {
  enum class mode { automatic, forward, hash, rebalance, broadcast };
  mode how = mode::automatic;
  router_factory hash_router;  ///< for `hash`
  record_type key_type{typeid(void), "void"}; ///< for `hash`: the key's type
  std::string key_name;        ///< for `hash`: shown in explain output
};

namespace partition {
/// Forward if the parallelism matches, else rebalance (the fluent API's default).
inline partitioning automatic() { return {}; }
inline partitioning forward() { return {partitioning::mode::forward, {}, {typeid(void), "void"}, {}}; }
inline partitioning rebalance() { return {partitioning::mode::rebalance, {}, {typeid(void), "void"}, {}}; }
inline partitioning broadcast() { return {partitioning::mode::broadcast, {}, {typeid(void), "void"}, {}}; }
/// Hash partitioning of `T` records by `key_fn(record) -> K`.
template <class T, class KeyFn>
partitioning hash(KeyFn key_fn, std::string key_name = "key") {
  using K = std::decay_t<std::invoke_result_t<KeyFn, const T&>>;
  return {partitioning::mode::hash, make_hash_router_factory<T, K>(std::move(key_fn)),
          record_type_of<K>(), std::move(key_name)};
}
} // namespace partition

/// What Spark's output-mode rules and the micro-batch watermark need to know of a node.
/// The fluent API sets it; hand-built nodes keep the defaults (plain stateless nodes).
struct query_role {
  /// A streaming aggregation: a keyed reduce/aggregate or a window function.
  bool aggregation = false;
  /// Grouped by an event-time window, so the watermark ends its groups (append works).
  bool event_time_aggregation = false;
  bool session_window = false;
  /// A join of two streams.
  bool stream_join = false;
  /// A stream join that also emits unmatched rows (left outer): Spark runs it only in
  /// append mode.
  bool outer_join = false;
  /// Keeps per-key state across epochs: aggregations, joins, deduplication and keyed
  /// process functions (Spark's stateful operators, flatMapGroupsWithState among them). In
  /// update and complete mode none may follow an aggregation (`check_query_rules`).
  bool stateful = false;
  /// Holds state or timers that the watermark releases (windows, joins, dedup): a
  /// micro-batch without data runs when the watermark moved.
  bool event_time_state = false;
};

/// What a node keeps in checkpoints, as far as the graph can tell before it runs: part of
/// the job's fingerprint (graph/fingerprint.hpp), which a restore compares with the one
/// in the checkpoint, as Flink checks each operator's state serializers. The fluent API
/// sets it; a hand-built node that leaves it empty is not checked.
struct state_spec {
  /// How the state is laid out in a checkpoint ("keyed reduce", "windows", "source
  /// position (file)", ...); empty: none declared.
  std::string layout;
  /// The types it is written with, the key's first for keyed state.
  std::vector<record_type> types;

  /// "keyed reduce<long, reading>", or "" when none is declared.
  std::string describe() const;
};

/// One node of the logical graph.
struct node_spec {
  node_kind kind = node_kind::operator_node;
  std::string name;
  std::string kind_name;   ///< "map", "filter", "generator", ... (shown by explain)
  std::string description; ///< connector details, e.g. "file(data/*.csv, csv)"
  int parallelism = 0;     ///< 0: the job's default
  int max_parallelism = 1 << 16;
  bool chaining = true;    ///< may fuse with its upstream node
  std::vector<record_type> inputs;
  std::vector<port_spec> outputs;
  /// For operators and sinks: a new instance per parallel task.
  operator_factory make_operator;
  /// For sources: a new instance per parallel task.
  std::function<std::unique_ptr<source_base>(const source_context&)> make_source;
  query_role role;
  /// Sinks: the output modes the sink accepts.
  output_modes sink_modes = output_modes::all();
  /// Options checked before the start, whose errors name the node by its final name (given
  /// after the node was added, by `.name()`): `graph::validate` calls it with that name.
  /// Empty: nothing to check.
  std::function<result<void>(const std::string& name)> check;
  /// Sources: records carry event time from a watermark strategy; `watermark_delay` is its
  /// bound when it is one of the bounded strategies (micro-batch mode needs it).
  bool event_time = false;
  std::optional<duration> watermark_delay;
  /// Sources: the strategy's watermark alignment (group, drift), for the runtime.
  std::optional<watermark_alignment> alignment;
  /// What it keeps in checkpoints (for the fingerprint; empty: none declared).
  state_spec state{};
};


struct edge_spec {
  node_id from = 0;
  int from_port = 0;
  node_id to = 0;
  int to_input = 0;
  partitioning how;
};

/// An output port of a node, for `connect`.
struct out_port {
  node_id node;
  int port = 0;
};
/// An input of a node, for `connect`.
struct in_port {
  node_id node;
  int input = 0;
};

class graph {
public:
  /// Adds a node and returns its id. The spec is checked by `validate`.
  node_id add(node_spec spec);
  /// Connects an output port to an input. Fails at once on a type mismatch or a bad id.
  result<void> connect(out_port from, in_port to, partitioning how = partition::automatic());

  /// Remembers a mistake made while building (for example `.name()` on a union) so
  /// `validate` reports it before the job starts.
  void record_error(error err) { deferred_.push_back(std::move(err)); }

  /// Checks everything that can be checked before start.
  result<void> validate() const;

  node_spec& node(node_id id) { return nodes_.at(static_cast<std::size_t>(id)); }
  const node_spec& node(node_id id) const { return nodes_.at(static_cast<std::size_t>(id)); }
  const std::vector<node_spec>& nodes() const noexcept { return nodes_; }
  const std::vector<edge_spec>& edges() const noexcept { return edges_; }

  /// The nodes in an order where every edge goes forward; error on a cycle.
  result<std::vector<node_id>> topological_order() const;

private:
  std::vector<node_spec> nodes_;
  std::vector<edge_spec> edges_;
  std::vector<error> deferred_;
};

/// Checks Spark's rules for output mode `mode` and trigger `when` on graph `g`, with
/// Spark's wording where it has one. Called by `job` before anything starts.
result<void> check_query_rules(const graph& g, std::optional<output_mode> mode,
                               const trigger& when);

} // namespace sluice
