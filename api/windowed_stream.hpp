#pragma once
/// `windowed_stream`: event-time windows in the fluent API (Flink's WindowedStream).
///
/// ```cpp
/// auto w = job.from(src, watermarks::bounded_out_of_orderness<txn>(5s, &txn::ts))
///            .key_by(&txn::account)
///            .window(windows::tumbling{.size = 1min})
///            .allowed_lateness(30s);
/// auto totals = w.sum(&txn::amount);      // stream<window_result<account, double>>
/// auto late = w.late_data();              // stream<txn>: records later than 30s
/// ```
///
/// A windowed stream is an API construct only: the window function call (`count`, `sum`,
/// `min`, `max`, `avg`, `aggregate`, `process`) adds one window node. Windows need event
/// time: the input stream must carry a timestamp function (from the source's watermark
/// strategy or `with_timestamps`), else the job fails validation. Aggregation results carry
/// event time `end - 1µs` (the window's max timestamp), so windows can be cascaded.
///
/// This header is included at the end of api/stream.hpp; include that one.
#include "sluice/api/stream.hpp"
#include "sluice/operators/window/session_operator.hpp"
#include "sluice/operators/window/window_operator.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace sluice {

namespace detail {

/// What the window node needs to learn after it was added: `late_data()` turns the side
/// output on. Shared between the windowed stream and the node's operator factory, which
/// reads it when the job starts.
struct window_node_state {
  node_id node = 0;
  bool late_to_side_output = false;
};

/// The key function of `window_all`: one key for every record.
struct window_all_key_fn {
  template <class T>
  window_all_key operator()(const T&) const noexcept {
    return {};
  }
};

} // namespace detail

/// A keyed (or, with `KOut = void`, non-keyed) stream cut into event-time windows.
/// `KOut`: the key type results carry; `Assigner`: a type from `windows::`.
template <class KOut, class T, class KeyFn, class Assigner>
class windowed_stream {
  static_assert(window_assigner<Assigner>,
                "window(): the assigner must be windows::tumbling, windows::sliding, "
                "windows::session or windows::session_dynamic");

public:
  /// The key the operator uses internally (a single key for `window_all`).
  using key_type = std::conditional_t<std::is_void_v<KOut>, detail::window_all_key, KOut>;
  using record_type = T;

  windowed_stream(stream<T> in, KeyFn key_fn, Assigner assigner)
    : in_(std::move(in)), key_fn_(std::move(key_fn)), assigner_(std::move(assigner)) {}

  /// Keeps each window's state `d` beyond its firing; records arriving meanwhile update
  /// and re-fire it (results with `is_update`). Default: 0. Must not be negative.
  windowed_stream& allowed_lateness(duration d) {
    lateness_ = d;
    return *this;
  }

  /// The records too late even for the allowed lateness (output port 1 of the window node
  /// made by the last window function call on this windowed stream). Without this call they
  /// are dropped and counted (`task_metrics::late_records`). Call it after the window
  /// function: `auto w = keyed.window(...); auto r = w.count(); auto late = w.late_data();`
  stream<T> late_data() const {
    auto& b = in_.builder();
    if (!node_) {
      b->g.record_error(make_error(error_code::invalid_graph,
                                   "late_data(): call it after the window function (count, "
                                   "sum, min, max, avg, aggregate or process)"));
      return stream<T>{b, {}};
    }
    node_->late_to_side_output = true;
    stream<T> late{b, {out_port{node_->node, 1}}};
    late.set_timestamps(in_.timestamps());
    return late;
  }

  // -- incremental aggregations: O(1) state per window -----------------------------------

  /// The number of records per window: `window_result<K, std::uint64_t>`.
  auto count() { return add_aggregate(window_aggregates::count{}, "count"); }

  /// The sum of `fn(record)` per window, in the type `fn` returns.
  template <class F>
  auto sum(F fn) {
    check_value_fn<F>("sum");
    return add_aggregate(window_aggregates::sum<T, F>{std::move(fn)}, "sum");
  }
  /// The smallest `fn(record)` per window.
  template <class F>
  auto min(F fn) {
    check_value_fn<F>("min");
    return add_aggregate(window_aggregates::min<T, F>{std::move(fn)}, "min");
  }
  /// The largest `fn(record)` per window.
  template <class F>
  auto max(F fn) {
    check_value_fn<F>("max");
    return add_aggregate(window_aggregates::max<T, F>{std::move(fn)}, "max");
  }
  /// The mean of `fn(record)` per window, as a double.
  template <class F>
  auto avg(F fn) {
    check_value_fn<F>("avg");
    return add_aggregate(window_aggregates::avg<T, F>{std::move(fn)}, "avg");
  }

  /// A user aggregation: `agg.create() -> Acc`, `agg.add(Acc&, const T&)`,
  /// `agg.result(const Acc&) -> V`, and for session windows `agg.merge(Acc&, const Acc&)`
  /// (or `merge(const Acc&, const Acc&) -> Acc`). Emits `window_result<K, V>`.
  template <class Agg>
  auto aggregate(Agg agg) {
    return add_aggregate(std::move(agg), "aggregate");
  }

  // -- full-window function: keeps every element -----------------------------------------

  /// `fn(const window_context<K>&, const std::vector<T>& elements, collector<U>&)`, called
  /// once per firing with all elements of the window (`window_context<void>` for
  /// `window_all`). The output stream has no event time; declare it with
  /// `with_timestamps` to window it again.
  template <class U = void, class F>
  auto process(F fn) {
    using Out = std::conditional_t<std::is_void_v<U>, typename detail::emitted<F>::type, U>;
    static_assert(!std::is_void_v<Out>,
                  "window process: cannot infer the output type. Accepted: "
                  "(const window_context<K>&, const std::vector<T>&, collector<U>&) with a "
                  "concrete U, or process<U>(fn)");
    static_assert(std::is_invocable_v<F&, const window_context<KOut>&, const std::vector<T>&,
                                      collector<Out>&>,
                  "window process: the function must be (const window_context<K>&, const "
                  "std::vector<T>&, collector<U>&)");
    return add_node(process_window_function<KOut, T, Out, F>{std::move(fn)}, "process");
  }

  const stream<T>& input() const noexcept { return in_; }
  const Assigner& assigner() const noexcept { return assigner_; }

private:
  template <class F>
  static void check_value_fn(const char*) {
    static_assert(std::is_invocable_v<const F&, const T&>,
                  "window sum/min/max/avg: the value function must accept (const T&)");
  }

  template <class Agg>
  auto add_aggregate(Agg agg, const char* what) {
    using Acc = std::decay_t<decltype(agg.create())>;
    static_assert(requires(Agg& a, Acc& acc, const T& r) { a.add(acc, r); },
                  "window aggregate: add must be (Acc&, const T&)");
    static_assert(requires(Agg& a, const Acc& acc) { a.result(acc); },
                  "window aggregate: result must be (const Acc&) -> V");
    if constexpr (is_merging_assigner<Assigner>)
      static_assert(mergeable_aggregate<Agg, Acc>,
                    "window aggregate: session windows merge, so the aggregate needs "
                    "merge(Acc&, const Acc&) or merge(const Acc&, const Acc&) -> Acc");
    auto out = add_node(aggregate_window_function<KOut, T, Agg>{std::move(agg)}, what);
    // A result stands for its window: its event time is the window's max timestamp, which
    // the watermark that fired it has reached, so results are on time for the next window.
    using Out = typename aggregate_window_function<KOut, T, Agg>::output_type;
    out.set_timestamps([](const Out& r) { return r.window().max_timestamp(); });
    return out;
  }

  template <class Fn>
  stream<typename Fn::output_type> add_node(Fn fn, const char* what) {
    using Out = typename Fn::output_type;
    using TsFn = timestamp_fn<T>;
    constexpr bool keyed = !std::is_void_v<KOut>;
    auto& b = in_.builder();

    node_spec spec;
    spec.kind = node_kind::operator_node;
    spec.kind_name = keyed ? "window" : "window_all";
    spec.name = b->unique_name(spec.kind_name);
    spec.description = assigner_.describe() + " " + what;
    if (lateness_ != duration::zero())
      spec.description += ", allowed lateness " + detail::micros(lateness_);
    spec.inputs = {record_type_of<T>()};
    spec.outputs = {port_spec::of<Out>(), port_spec::of<T>("late-data")};
    spec.role.aggregation = true;
    spec.role.event_time_aggregation = true;
    spec.role.session_window = is_merging_assigner<Assigner>;
    spec.role.event_time_state = true;
    spec.role.stateful = true;
    spec.state = {is_merging_assigner<Assigner> ? "session windows" : "windows",
                  {record_type_of<key_type>(), record_type_of<typename Fn::acc_type>()}};
    if constexpr (!keyed) {
      // One key: a single instance sees every record (Flink's windowAll).
      spec.parallelism = 1;
      spec.max_parallelism = 1;
    }
    // Checked with the name the window ends up with (`.name()` comes after this).
    spec.check = [assigner = assigner_, kind = spec.kind_name](const std::string& name) {
      if (auto ok = assigner.validate(); !ok)
        return result<void>{make_error(error_code::invalid_option,
                                       kind + " '" + name + "': " + ok.error().message)};
      return result<void>{};
    };
    if (lateness_ < duration::zero())
      b->g.record_error(make_error(error_code::invalid_option,
                                   spec.name + ": allowed lateness must not be negative, got " +
                                     detail::micros(lateness_)));
    const TsFn& ts = in_.timestamps();
    if (!ts)
      b->g.record_error(make_error(
        error_code::invalid_graph,
        spec.name + ": the input stream has no event time: give its source a watermark "
                    "strategy (job.from(desc, watermarks::...)) or call with_timestamps()"));

    auto state = std::make_shared<detail::window_node_state>();
    spec.make_operator = [key_fn = key_fn_, ts, assigner = assigner_, fn = std::move(fn),
                          lateness = lateness_, state]() -> std::unique_ptr<operator_base> {
      const window_options opts{lateness, state->late_to_side_output};
      if constexpr (is_merging_assigner<Assigner>)
        return std::make_unique<session_window_operator<key_type, T, KeyFn, TsFn, Assigner, Fn>>(
          key_fn, ts, assigner, fn, opts);
      else
        return std::make_unique<window_operator<key_type, T, KeyFn, TsFn, Assigner, Fn>>(
          key_fn, ts, assigner, fn, opts);
    };
    const auto id = b->g.add(std::move(spec));
    in_.connect_ends(id, 0, in_.next_partitioning());
    state->node = id;
    node_ = std::move(state);

    return stream<Out>{b, {out_port{id, 0}}};
  }

  stream<T> in_;
  KeyFn key_fn_;
  Assigner assigner_;
  duration lateness_{0};
  std::shared_ptr<detail::window_node_state> node_;
};

// -- the entry points declared in api/stream.hpp --------------------------------------------

template <class T>
template <class Assigner>
auto stream<T>::window_all(Assigner assigner) const {
  return windowed_stream<void, T, detail::window_all_key_fn, Assigner>{*this,
                                                                       detail::window_all_key_fn{},
                                                                       std::move(assigner)};
}

template <class K, class T, class KeyFn>
template <class Assigner>
auto keyed_stream<K, T, KeyFn>::window(Assigner assigner) const {
  return windowed_stream<K, T, KeyFn, Assigner>{in_, key_fn_, std::move(assigner)};
}

} // namespace sluice
