#pragma once
/// `job`: where a streaming job is declared and run.
///
/// ```cpp
/// sluice::job job{{.name = "wordcount", .parallelism = 2}};
/// job.from(sources::collection<std::string>{{"a b", "b"}})
///    .flat_map([](const std::string& line, collector<std::string>& out) { ... })
///    .key_by([](const std::string& w) { return w; })
///    .reduce(...)
///    .sink_to(sinks::collect<...>{});
/// auto done = job.run();
/// ```
#include "sluice/actors/runtime.hpp"
#include "sluice/api/stream.hpp"
#include "sluice/graph/plan.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace sluice {

/// Options of a job. Every field has a working default.
struct job_options {
  /// Shown in logs, metrics and errors.
  std::string name = "sluice-job";
  /// Parallel instances of nodes that do not set their own.
  int parallelism = 1;
  /// Key groups (Flink's max parallelism): the finest unit in which keyed state moves.
  /// No keyed operator may run more instances than this.
  int max_key_groups = default_max_key_groups;
  /// When epochs begin (Spark's trigger): `triggers::continuous()` (the default: records
  /// flow as they come, epochs every second), `triggers::processing_time(5s)`,
  /// `triggers::available_now()` or `triggers::once()` (micro-batches). See docs/micro-batch.md.
  sluice::trigger trigger = triggers::continuous();
  /// Spark's output mode for the job's aggregations. Unset (the default): Flink's
  /// semantics, where each operator emits as it computes. Checked against Spark's rules
  /// before the job starts.
  std::optional<sluice::output_mode> output_mode{};
  /// Micro-batch mode: which watermark makes a row late. Default: Spark 3.4+'s rule.
  late_row_rule late_rows = late_row_rule::previous_watermark;
  /// Called with each progress report (Spark's StreamingQueryProgress), on a
  /// runtime thread: keep it short and thread-safe.
  std::function<void(const query_progress&)> on_progress{};
  /// Spark-like listeners: started, progress, idle and terminated events, in order.
  std::vector<std::shared_ptr<query_listener>> listeners{};
  /// Continuous mode: one progress report per interval, covering its epochs (0: one per
  /// epoch). Micro-batch mode reports every epoch. Default 10 s.
  std::chrono::milliseconds progress_interval{10'000};
  /// Taps active from the start: a sample of the records leaving named operators, at a
  /// bounded rate (`job_execution::tap` adds and removes them while the job runs).
  std::vector<tap_spec> taps{};
  /// Checkpoints, restore and restarts (off unless `checkpoints.dir` is set); see
  /// docs/checkpoints.md.
  checkpoint_options checkpoints{};
  /// Batching, flow control, threads and clock.
  runtime_options runtime{};
};

enum class explain_format { text, dot, json };

class job {
public:
  explicit job(job_options opts = {});

  /// Adds a source and returns its stream.
  template <source_descriptor D>
  stream<typename D::record_type> from(D desc) {
    return add_source(std::move(desc), std::nullopt);
  }

  /// Adds a source whose records carry event time: `strategy` stamps each record and
  /// makes the watermarks (see sources/watermarks.hpp). Event-time operators downstream
  /// (windows, joins, timers) use both.
  template <source_descriptor D>
  stream<typename D::record_type> from(D desc,
                                       watermark_strategy<typename D::record_type> strategy) {
    return add_source(std::move(desc), std::move(strategy));
  }

  /// The lower-level graph, for adding nodes and edges by hand.
  sluice::graph& graph() noexcept { return b_->g; }
  const sluice::graph& graph() const noexcept { return b_->g; }

  const job_options& options() const noexcept { return opts_; }
  job_options& options() noexcept { return opts_; }

  /// Validates the graph and builds the physical plan, without running anything.
  result<physical_plan> plan() const;
  /// The logical and physical plans, printed.
  result<std::string> explain(explain_format format = explain_format::text) const;

  /// Runs the job to completion (bounded sources) or until cancelled or failed.
  [[nodiscard]] result<job_result> run();
  /// Starts the job and returns a handle to cancel or await it.
  [[nodiscard]] result<std::unique_ptr<job_execution>> start();

private:
  template <class D>
  stream<typename D::record_type>
  add_source(D desc, std::optional<watermark_strategy<typename D::record_type>> strategy) {
    using T = typename D::record_type;
    node_spec spec;
    spec.kind = node_kind::source;
    spec.kind_name = "source";
    spec.description = desc.describe();
    spec.name = b_->unique_name(spec.description.substr(0, spec.description.find('(')));
    // Positions are the connector's own: a file source's cannot seek a Kafka source.
    spec.state.layout =
      "source position (" + spec.description.substr(0, spec.description.find('(')) + ")";
    spec.max_parallelism = source_max_parallelism(desc);
    spec.outputs = {port_spec::of<T>()};
    spec.outputs.push_back(
      port_spec::of<dead_letter>("dead-letters", source_emits_dead_letters(desc)));
    if (auto ok = validate_source(desc); !ok)
      b_->g.record_error(std::move(ok).error());
    if (strategy) {
      if (!strategy->timestamp || !strategy->generator)
        b_->g.record_error(make_error(error_code::invalid_option,
                                      "source '" + spec.name +
                                        "': a watermark strategy needs a timestamp function "
                                        "and a generator"));
      if (strategy->idle_timeout && strategy->idle_timeout->count() <= 0)
        b_->g.record_error(make_error(error_code::invalid_option,
                                      "source '" + spec.name +
                                        "': the idle timeout must be positive"));
      // Named after `.name()`, so checked by `validate`.
      spec.check = [delay = strategy->bounded_delay,
                    align = strategy->alignment](const std::string& name) -> result<void> {
        // A negative delay puts the watermark ahead of the newest record, which would drop
        // the newest rows as late (Spark rejects it too).
        if (delay && *delay < duration::zero())
          return make_error(error_code::invalid_option,
                            "source '" + name + "': the watermark delay must not be negative, "
                            "got " + std::to_string(delay->count()) + "us");
        if (align)
          return check_watermark_alignment(name, *align);
        return {};
      };
      spec.description += ", watermarks: " + strategy->description;
      spec.event_time = true;
      spec.watermark_delay = strategy->bounded_delay;
      spec.alignment = strategy->alignment;
    }
    spec.make_source = [desc, strategy](const source_context& ctx) -> std::unique_ptr<source_base> {
      std::unique_ptr<source<T>> s = desc.create(ctx);
      if (strategy)
        s->set_watermark_strategy(*strategy);
      return s;
    };
    auto id = b_->g.add(std::move(spec));
    stream<T> out{b_, {out_port{id, 0}}};
    if (strategy)
      out.set_timestamps(strategy->timestamp);
    return out;
  }

  job_options opts_;
  std::shared_ptr<detail::job_builder> b_;
};

} // namespace sluice
