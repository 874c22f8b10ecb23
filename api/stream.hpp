#pragma once
/// The fluent, typed API: `stream<T>`, `keyed_stream<K, T>` and `connected_streams<A, B>`.
///
/// Each call adds a node to the job's logical graph and returns a handle whose type
/// carries the record type, so mismatches fail at compile time. Nothing runs until
/// `job::run()`.
#include "sluice/api/traits.hpp"
#include "sluice/core/key_group.hpp"
#include "sluice/core/timestamp_fn.hpp"
#include "sluice/graph/graph.hpp"
#include "sluice/operators/co_process.hpp"
#include "sluice/operators/dedup.hpp"
#include "sluice/operators/filter.hpp"
#include "sluice/operators/flat_map.hpp"
#include "sluice/operators/join/join_common.hpp"
#include "sluice/operators/keyed_process.hpp"
#include "sluice/operators/map.hpp"
#include "sluice/operators/process.hpp"
#include "sluice/operators/reduce.hpp"
#include "sluice/sinks/descriptor.hpp"
#include "sluice/sources/descriptor.hpp"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace sluice {

namespace detail {

/// The graph under construction, shared by every stream handle of one job.
struct job_builder {
  graph g;
  std::map<std::string, int> names;

  /// "map", then "map-2", "map-3", ...: default names stay unique for metrics and logs.
  std::string unique_name(const std::string& kind) {
    auto n = ++names[kind];
    return n == 1 ? kind : kind + "-" + std::to_string(n);
  }

  template <class In, class Out>
  node_id add_operator(std::string kind, operator_factory make) {
    node_spec spec;
    spec.kind = node_kind::operator_node;
    spec.name = unique_name(kind);
    spec.kind_name = std::move(kind);
    spec.inputs = {record_type_of<In>()};
    spec.outputs = {port_spec::of<Out>()};
    spec.make_operator = std::move(make);
    return g.add(std::move(spec));
  }
};

} // namespace detail

template <class K, class T, class KeyFn>
class keyed_stream;
template <class A, class B>
class connected_streams;
template <class KOut, class T, class KeyFn, class Assigner>
class windowed_stream; // api/windowed_stream.hpp
template <class T>
class stream;
// Joins (defined in api/join.hpp, included at the end of this file).
template <class K, class L, class KeyL, class R, class KeyR>
class interval_join_builder;
namespace detail {
template <class T, class Table, class KeyFn, class F>
auto add_static_join(const stream<T>& in, Table table, KeyFn key_fn, F fn, join_type type);
} // namespace detail

/// Returned by `sink_to`: lets the sink node be named and sized.
class sink_handle {
public:
  sink_handle(std::shared_ptr<detail::job_builder> b, node_id id) : b_(std::move(b)), id_(id) {}
  sink_handle& name(std::string n) {
    b_->g.node(id_).name = std::move(n);
    return *this;
  }
  sink_handle& parallelism(int p) {
    b_->g.node(id_).parallelism = p;
    return *this;
  }
  sink_handle& disable_chaining() {
    b_->g.node(id_).chaining = false;
    return *this;
  }
  node_id id() const noexcept { return id_; }

private:
  std::shared_ptr<detail::job_builder> b_;
  node_id id_;
};

/// A stream of `T` records.
template <class T>
class stream {
public:
  using record_type = T;

  stream(std::shared_ptr<detail::job_builder> b, std::vector<out_port> ends,
         partitioning next = partition::automatic())
    : b_(std::move(b)), ends_(std::move(ends)), next_(std::move(next)) {}

  // -- the node that produced this stream ------------------------------------------------

  /// Names the operator that produced this stream; the name shows in errors, logs and
  /// metrics.
  stream& name(std::string n) {
    if (auto* spec = producer("name()"))
      spec->name = std::move(n);
    return *this;
  }
  /// Sets how many parallel instances run the operator that produced this stream.
  stream& parallelism(int p) {
    if (auto* spec = producer("parallelism()"))
      spec->parallelism = p;
    return *this;
  }
  /// Keeps the producing operator out of its upstream's chain (Flink's disableChaining).
  stream& disable_chaining() {
    if (auto* spec = producer("disable_chaining()"))
      spec->chaining = false;
    return *this;
  }

  // -- stateless transformations ---------------------------------------------------------

  /// One record in, one out: `fn(const T&) -> U`, or `fn(T&&) -> U` to take the record
  /// over (its strings move into the result instead of being copied).
  template <class F>
  auto map(F fn) {
    constexpr bool by_const_ref = std::is_invocable_v<F&, const T&>;
    static_assert(by_const_ref || std::is_invocable_v<F&, T&&>,
                  "map: the function must accept (const T&) or (T&&) and return the new "
                  "record");
    using Arg = std::conditional_t<by_const_ref, const T&, T&&>;
    using U = std::decay_t<std::invoke_result_t<F&, Arg>>;
    static_assert(!std::is_void_v<U>, "map: the function must return a record");
    return attach<U>("map", [fn] { return std::make_unique<map_operator<T, U, F>>(fn); });
  }

  /// Keeps records for which `fn(const T&)` is true.
  template <class F>
  stream<T> filter(F fn) {
    static_assert(std::is_invocable_r_v<bool, F&, const T&>,
                  "filter: the predicate must accept (const T&) and return bool");
    return with_my_timestamps(
      attach<T>("filter", [fn] { return std::make_unique<filter_operator<T, F>>(fn); }));
  }

  /// Zero or more records per record: `fn(const T&, collector<U>&)`.
  template <class U = void, class F>
  auto flat_map(F fn) {
    using Out = std::conditional_t<std::is_void_v<U>, typename detail::emitted<F>::type, U>;
    static_assert(!std::is_void_v<Out>,
                  "flat_map: cannot infer the output type. Accepted: "
                  "(const T&, collector<U>&) with a concrete U, or flat_map<U>(fn)");
    static_assert(std::is_invocable_v<F&, const T&, collector<Out>&>,
                  "flat_map: the function must accept (const T&, collector<U>&)");
    return attach<Out>("flat_map",
                       [fn] { return std::make_unique<flat_map_operator<T, Out, F>>(fn); });
  }

  /// Custom per-record logic with a context: `fn(const T&, context&, collector<U>&)`, or
  /// an object with `on_element(const T&, context&, collector<U>&)`.
  template <class U = void, class F>
  auto process(F fn) {
    using Out = std::conditional_t<std::is_void_v<U>, detail::process_output<F>, U>;
    static_assert(!std::is_void_v<Out>,
                  "process: cannot infer the output type. Accepted: "
                  "(const T&, context&, collector<U>&), an object with on_element of that "
                  "signature, or process<U>(fn)");
    return attach<Out>("process",
                       [fn] { return std::make_unique<process_operator<T, Out, F>>(fn); });
  }

  // -- partitioning ----------------------------------------------------------------------

  /// Partitions by key: `key_fn(const T&) -> K`. The next operator sees each key on
  /// exactly one instance, which owns the key's state.
  template <class KeyFn>
  auto key_by(KeyFn key_fn, std::string key_name = "key") {
    static_assert(std::is_invocable_v<KeyFn&, const T&>,
                  "key_by: the key function must accept (const T&) and return the key");
    using K = std::decay_t<std::invoke_result_t<KeyFn&, const T&>>;
    static_assert(is_hashable_key_v<K>,
                  "key_by: the key type has padding bytes or floating-point members (or is "
                  "not trivially copyable) and no inspect(), so equal keys could hash to "
                  "different key groups. Give it an inspect() overload naming its fields "
                  "(core/codec/inspect.hpp) or specialize sluice::key_hash for it "
                  "(core/key_group.hpp)");
    return keyed_stream<K, T, KeyFn>{with_my_timestamps(stream<T>{b_, ends_}), std::move(key_fn),
                                     std::move(key_name)};
  }
  /// Drops records whose key (`key_fn(const T&)`) was already seen while the watermark has
  /// not passed the first record's event time + `delay` (Spark's
  /// dropDuplicatesWithinWatermark; see operators/dedup.hpp). Needs this stream's event time.
  template <class KeyFn>
  stream<T> drop_duplicates_within_watermark(KeyFn key_fn, duration delay = duration{0}) {
    return key_by(std::move(key_fn)).drop_duplicates_within_watermark(delay);
  }
  /// Spreads batches round-robin over the next operator's instances.
  stream<T> rebalance() const { return with_my_timestamps({b_, ends_, partition::rebalance()}); }
  /// Sends every record to every instance of the next operator.
  stream<T> broadcast() const { return with_my_timestamps({b_, ends_, partition::broadcast()}); }
  /// Instance i to instance i; the next operator must have the same parallelism.
  stream<T> forward() const { return with_my_timestamps({b_, ends_, partition::forward()}); }

  /// Merges streams of the same type. The result keeps this stream's event time.
  template <class... Streams>
  stream<T> union_with(const Streams&... others) const {
    auto ends = ends_;
    (ends.insert(ends.end(), others.ends().begin(), others.ends().end()), ...);
    return with_my_timestamps({b_, std::move(ends), next_});
  }

  // -- event time ------------------------------------------------------------------------

  /// Declares the event time of this stream's records: `fn(const T&) -> event_time`.
  /// Event time set at the source (`job::from(desc, strategy)`) carries through filter,
  /// key_by, union and repartitioning; after map, flat_map or process the record type
  /// changes, so declare it again. Watermarks still come from the sources.
  template <class F>
  stream<T> with_timestamps(F fn) const {
    static_assert(std::is_invocable_r_v<event_time, F&, const T&>,
                  "with_timestamps: the function must be (const T&) -> sluice::event_time");
    stream<T> out = *this;
    out.ts_ = [fn](const T& r) -> event_time { return std::invoke(fn, r); };
    return out;
  }
  /// The event-time function, or an empty function when the stream has none.
  const timestamp_fn<T>& timestamps() const noexcept { return ts_; }
  void set_timestamps(timestamp_fn<T> fn) { ts_ = std::move(fn); }

  /// Joins two streams into one two-input operator (see `connected_streams`).
  template <class U>
  connected_streams<T, U> connect(const stream<U>& other) const {
    return {*this, other};
  }

  /// Non-keyed event-time windows over the whole stream, computed by one instance
  /// (parallelism 1): `window_all(windows::tumbling{.size = 1s}).count()`. See
  /// api/windowed_stream.hpp and docs/windows.md.
  template <class Assigner>
  auto window_all(Assigner assigner) const;

  /// Looks each record up in a static table loaded at open on every instance (see
  /// api/join.hpp, docs/joins.md): `key_fn(const T&) -> K`, and one `fn(const T&, const V&)`
  /// result per table row of the key. `join_type::left_outer` also emits
  /// `fn(const T&, nullptr)` (fn taking `const V*`) for records whose key has no row.
  template <class Table, class KeyFn, class F>
  auto join_static(Table table, KeyFn key_fn, F fn, join_type type = join_type::inner) const {
    return detail::add_static_join(*this, std::move(table), std::move(key_fn), std::move(fn), type);
  }

  // -- the end ---------------------------------------------------------------------------

  /// Writes the stream to a sink.
  template <sink_descriptor D>
  sink_handle sink_to(D desc) {
    static_assert(std::is_same_v<typename D::record_type, T>,
                  "sink_to: the sink's record type differs from the stream's");
    return sink_to_with(std::move(desc), next_);
  }

  /// The records a source could not decode (sources with `on_malformed::dead_letter`).
  stream<dead_letter> dead_letters() const {
    std::vector<out_port> ends;
    for (auto& e : ends_) {
      auto& spec = b_->g.node(e.node);
      if (spec.kind != node_kind::source || spec.outputs.size() < 2)
        b_->g.record_error(make_error(error_code::invalid_graph,
                                      "dead_letters(): '" + spec.name +
                                        "' is not a source with a dead-letter output"));
      else
        ends.push_back(out_port{e.node, 1});
    }
    return {b_, std::move(ends)};
  }

  // -- for extensions --------------------------------------------------------------------

  const std::vector<out_port>& ends() const noexcept { return ends_; }
  const partitioning& next_partitioning() const noexcept { return next_; }
  const std::shared_ptr<detail::job_builder>& builder() const noexcept { return b_; }

  /// Adds an operator node fed by this stream and returns its output stream.
  template <class U>
  stream<U> attach(std::string kind, operator_factory make) const {
    auto id = b_->template add_operator<T, U>(std::move(kind), std::move(make));
    connect_ends(id, 0, next_);
    return stream<U>{b_, {out_port{id, 0}}};
  }

  /// Connects every end of this stream to input `input` of `id`.
  void connect_ends(node_id id, int input, const partitioning& how) const {
    for (auto& e : ends_)
      if (auto r = b_->g.connect(e, in_port{id, input}, how); !r)
        b_->g.record_error(std::move(r).error());
  }

  template <class D>
  sink_handle sink_to_with(D desc, const partitioning& how) {
    node_spec spec;
    spec.kind = node_kind::sink;
    spec.kind_name = "sink";
    spec.description = desc.describe();
    // Like sources: the node is named by the connector, its options stay in the description.
    spec.name = b_->unique_name(spec.description.substr(0, spec.description.find('(')));
    // What a sink keeps (its pre-committed transactions) is the connector's own.
    spec.state.layout = "sink (" + spec.description.substr(0, spec.description.find('(')) + ")";
    spec.max_parallelism = sink_max_parallelism(desc);
    spec.sink_modes = sink_output_modes(desc);
    spec.inputs = {record_type_of<T>()};
    if (auto ok = validate_sink(desc); !ok)
      b_->g.record_error(std::move(ok).error());
    spec.make_operator = [desc]() -> std::unique_ptr<operator_base> {
      return std::make_unique<sink_operator<T>>(desc.create(sink_context{}));
    };
    auto id = b_->g.add(std::move(spec));
    connect_ends(id, 0, how);
    return sink_handle{b_, id};
  }

private:
  stream<T> with_my_timestamps(stream<T> s) const {
    s.ts_ = ts_;
    return s;
  }

  node_spec* producer(const char* what) {
    if (ends_.size() != 1) {
      b_->g.record_error(make_error(error_code::invalid_graph,
                                    std::string{what} + " on a union: set it on each input"));
      return nullptr;
    }
    return &b_->g.node(ends_.front().node);
  }

  std::shared_ptr<detail::job_builder> b_;
  std::vector<out_port> ends_;
  partitioning next_;
  timestamp_fn<T> ts_;
};

/// A stream partitioned by key `K` (from `stream<T>::key_by`).
template <class K, class T, class KeyFn>
class keyed_stream {
public:
  using key_type = K;
  using record_type = T;

  keyed_stream(stream<T> in, KeyFn key_fn, std::string key_name)
    : in_(in.builder(), in.ends(), partition::hash<T>(key_fn, key_name)),
      key_fn_(std::move(key_fn)) {
    in_.set_timestamps(in.timestamps());
  }

  /// A running reduction per key: `fn(const T& acc, const T& next) -> T`; emits the new
  /// value for every record.
  template <class F>
  stream<T> reduce(F fn) {
    static_assert(std::is_invocable_r_v<T, F&, const T&, const T&>,
                  "reduce: the function must be (const T& accumulated, const T& next) -> T");
    auto key_fn = key_fn_;
    auto out = in_.template attach<T>("reduce", [key_fn, fn] {
      return std::make_unique<reduce_operator<K, T, KeyFn, F>>(key_fn, fn);
    });
    auto& spec = in_.builder()->g.node(out.ends().front().node);
    spec.role.aggregation = spec.role.stateful = true;
    spec.state = {"keyed reduce", {record_type_of<K>(), record_type_of<T>()}};
    return out;
  }

  /// A running aggregation per key: `agg.create() -> Acc`, `agg.add(Acc&, const T&)`,
  /// `agg.result(const K&, const Acc&) -> R` (or `result(const Acc&)`); emits R per record.
  template <class Agg>
  auto aggregate(Agg agg) {
    using Acc = std::decay_t<decltype(agg.create())>;
    static_assert(std::is_invocable_v<decltype(&Agg::add), Agg&, Acc&, const T&>,
                  "aggregate: add must be (Acc&, const T&)");
    using R = detail::aggregate_result<K, Acc, Agg>;
    auto key_fn = key_fn_;
    auto out = in_.template attach<R>("aggregate", [key_fn, agg] {
      return std::make_unique<aggregate_operator<K, T, Acc, R, KeyFn, Agg>>(key_fn, agg);
    });
    auto& spec = in_.builder()->g.node(out.ends().front().node);
    spec.role.aggregation = spec.role.stateful = true;
    spec.state = {"keyed aggregate", {record_type_of<K>(), record_type_of<Acc>()}};
    return out;
  }

  /// Keyed custom logic: `fn(const T&, keyed_context<K>&, collector<U>&)`, or an object
  /// with `on_element` of that signature (or taking `keyed_process_context<K>&`, which
  /// gives per-key state and timers) and optional `on_timer` (operators/keyed_process.hpp).
  template <class U = void, class F>
  auto process(F fn) {
    using Out = std::conditional_t<std::is_void_v<U>, detail::process_output<F>, U>;
    static_assert(!std::is_void_v<Out>,
                  "process: cannot infer the output type. Accepted: "
                  "(const T&, keyed_context<K>&, collector<U>&), an object with on_element "
                  "of that signature, or process<U>(fn)");
    auto key_fn = key_fn_;
    auto ts = in_.timestamps(); // stamps event-time TTL writes and ctx.timestamp()
    auto out = in_.template attach<Out>("process", [key_fn, fn, ts] {
      return std::make_unique<keyed_process_function_operator<K, T, Out, KeyFn, F>>(key_fn, fn, ts);
    });
    // It may set event-time timers: micro-batches without data fire them.
    auto& spec = in_.builder()->g.node(out.ends().front().node);
    spec.role.event_time_state = spec.role.stateful = true;
    // Its named states are declared by use: each is checked at its first use after a
    // restore (operators/state/backend.hpp), the key type here.
    spec.state = {"keyed process", {record_type_of<K>()}};
    return out;
  }

  /// Per key, the first record passes and later ones are dropped until the watermark passes
  /// the first one's event time + `delay`; then the key's state is freed (Spark's
  /// dropDuplicatesWithinWatermark, operators/dedup.hpp). Records already behind the
  /// watermark are dropped as late. Needs the stream's event time.
  stream<T> drop_duplicates_within_watermark(duration delay = duration{0}) {
    auto key_fn = key_fn_;
    auto ts = in_.timestamps();
    auto out = in_.template attach<T>("dedup", [key_fn, ts, delay] {
      return std::make_unique<dedup_within_watermark_operator<K, T, KeyFn>>(key_fn, ts, delay);
    });
    auto& g = in_.builder()->g;
    auto& dedup = g.node(out.ends().front().node);
    dedup.role.event_time_state = dedup.role.stateful = true;
    dedup.state = {"dedup", {record_type_of<K>()}};
    const auto& name = g.node(out.ends().front().node).name;
    if (!ts)
      g.record_error(make_error(error_code::invalid_graph,
                                "drop_duplicates_within_watermark ('" + name +
                                  "'): the stream has no event time; give its source a "
                                  "watermark strategy or call with_timestamps() before it"));
    if (delay < duration{0})
      g.record_error(make_error(error_code::invalid_option,
                                "drop_duplicates_within_watermark ('" + name +
                                  "'): the delay must not be negative"));
    out.set_timestamps(ts);
    return out;
  }

  /// Joins with another stream keyed by the same key type, into one keyed two-input
  /// operator: `fn.process_element1(const T&, keyed_context<K>&, collector<U>&)` and
  /// `process_element2(const U2&, ...)`.
  template <class T2, class KeyFn2, class F>
  auto connect_process(const keyed_stream<K, T2, KeyFn2>& other, F fn) {
    using Out = detail::process_output<F>;
    static_assert(!std::is_void_v<Out>, "connect: cannot infer the output type from "
                                        "process_element1(const A&, keyed_context<K>&, "
                                        "collector<U>&)");
    auto& b = in_.builder();
    node_spec spec;
    spec.name = b->unique_name("co_process");
    spec.kind_name = "co_process";
    spec.role.stateful = true; // keyed state
    spec.inputs = {record_type_of<T>(), record_type_of<T2>()};
    spec.outputs = {port_spec::of<Out>()};
    auto ka = key_fn_;
    auto kb = other.key_fn();
    spec.make_operator = [ka, kb, fn]() -> std::unique_ptr<operator_base> {
      return std::make_unique<keyed_co_process_operator<K, T, T2, Out, KeyFn, KeyFn2, F>>(ka, kb,
                                                                                         fn);
    };
    auto id = b->g.add(std::move(spec));
    in_.connect_ends(id, 0, in_.next_partitioning());
    other.input().connect_ends(id, 1, other.input().next_partitioning());
    return stream<Out>{b, {out_port{id, 0}}};
  }

  /// Writes to a sink, hash-partitioned by key.
  template <sink_descriptor D>
  sink_handle sink_to(D desc) {
    return in_.sink_to_with(std::move(desc), in_.next_partitioning());
  }

  /// Interval join with another stream keyed by the same key type (see api/join.hpp):
  /// `left.interval_join(right).between(lower, upper)[.left_outer()].apply(fn)`.
  template <class T2, class KeyFn2>
  interval_join_builder<K, T, KeyFn, T2, KeyFn2>
  interval_join(const keyed_stream<K, T2, KeyFn2>& other) const {
    return {*this, other};
  }

  /// Event-time windows per key: `window(windows::tumbling{.size = 1min}).sum(fn)`. See
  /// api/windowed_stream.hpp and docs/windows.md.
  template <class Assigner>
  auto window(Assigner assigner) const;

  const KeyFn& key_fn() const noexcept { return key_fn_; }
  const stream<T>& input() const noexcept { return in_; }

private:
  stream<T> in_;
  KeyFn key_fn_;
};

/// Two streams feeding one two-input operator: the base for joins and broadcast state.
template <class A, class B>
class connected_streams {
public:
  connected_streams(stream<A> first, stream<B> second)
    : first_(std::move(first)), second_(std::move(second)) {}

  /// `fn.process_element1(const A&, context&, collector<U>&)` and
  /// `fn.process_element2(const B&, context&, collector<U>&)`.
  template <class U = void, class F>
  auto process(F fn) {
    using Out = std::conditional_t<std::is_void_v<U>, detail::process_output<F>, U>;
    static_assert(!std::is_void_v<Out>,
                  "connect().process: cannot infer the output type. Accepted: an object with "
                  "process_element1(const A&, context&, collector<U>&) and process_element2, "
                  "or process<U>(fn)");
    auto& b = first_.builder();
    node_spec spec;
    spec.name = b->unique_name("co_process");
    spec.kind_name = "co_process";
    spec.inputs = {record_type_of<A>(), record_type_of<B>()};
    spec.outputs = {port_spec::of<Out>()};
    spec.make_operator = [fn]() -> std::unique_ptr<operator_base> {
      return std::make_unique<co_process_operator<A, B, Out, F>>(fn);
    };
    auto id = b->g.add(std::move(spec));
    first_.connect_ends(id, 0, first_.next_partitioning());
    second_.connect_ends(id, 1, second_.next_partitioning());
    return stream<Out>{b, {out_port{id, 0}}};
  }

private:
  stream<A> first_;
  stream<B> second_;
};

} // namespace sluice

// After the stream types: the join builders need them complete.
#include "sluice/api/join.hpp"
// After the stream types: window() and window_all() are defined there.
#include "sluice/api/windowed_stream.hpp"
