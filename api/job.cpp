#include "sluice/api/job.hpp"

#include "sluice/actors/placement.hpp"
#include "sluice/actors/wiring.hpp"

namespace sluice {

job::job(job_options opts) : opts_(std::move(opts)), b_(std::make_shared<detail::job_builder>()) {}

result<physical_plan> job::plan() const {
  if (auto ok = b_->g.validate(); !ok)
    return std::move(ok).error();
  if (auto ok = check_query_rules(b_->g, opts_.output_mode, opts_.trigger); !ok)
    return std::move(ok).error();
  return make_plan(b_->g, plan_options{opts_.parallelism, opts_.max_key_groups});
}

result<std::string> job::explain(explain_format format) const {
  auto p = plan();
  if (!p)
    return std::move(p).error();
  switch (format) {
    case explain_format::dot: return explain_dot(b_->g, *p);
    case explain_format::json: return explain_json(b_->g, *p);
    case explain_format::text: break;
  }
  auto text = explain_text(b_->g, *p);
  if (const auto& cluster = opts_.runtime.cluster; cluster.enabled()) {
    // Which node runs each instance: the same table every node computes at start.
    const auto tasks = wire(*p);
    auto where = place(b_->g, *p, tasks, static_cast<int>(cluster.nodes.size()));
    if (!where)
      return std::move(where).error();
    text += "\n" + describe_placement(*p, tasks, *where);
    for (std::size_t n = 0; n < cluster.nodes.size(); ++n)
      text += "  node " + std::to_string(n) + ": " + cluster.nodes[n] +
              (n == 0 ? " (coordinator)" : "") + "\n";
  }
  return text;
}

result<std::unique_ptr<job_execution>> job::start() {
  auto p = plan();
  if (!p)
    return std::move(p).error();
  auto run = opts_.runtime;
  run.epochs = opts_.trigger;
  run.mode = opts_.output_mode;
  run.late_rows = opts_.late_rows;
  run.checkpoints = opts_.checkpoints;
  run.on_progress = opts_.on_progress;
  run.listeners = opts_.listeners;
  run.taps.insert(run.taps.end(), opts_.taps.begin(), opts_.taps.end());
  run.progress_interval = opts_.progress_interval;
  run.query_name = opts_.name;
  // Spark's shouldRunAnotherBatch: an aggregation evicts only in append and update mode;
  // deduplication, joins and keyed state evict in every mode.
  run.has_event_time_state = false;
  for (auto& n : b_->g.nodes())
    run.has_event_time_state =
      run.has_event_time_state ||
      (n.role.event_time_state &&
       (!n.role.aggregation || opts_.output_mode != output_mode::complete));
  return execute(b_->g, *p, run);
}

result<job_result> job::run() {
  auto running = start();
  if (!running)
    return std::move(running).error();
  return (*running)->wait();
}

} // namespace sluice
