#include "sluice/monitor/exposition.hpp"

#include "sluice/core/codec/time_format.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <climits>
#include <iterator>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>
#include <utility>

namespace sluice::monitor {

namespace {

using json = nlohmann::ordered_json;

/// Label values escape backslash, double quote and newline (the exposition format's rule).
std::string escape_label(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"')
      out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

/// One metric family: `# HELP`, `# TYPE`, then its samples.
class family {
public:
  family(std::string& out, const char* name, const char* type, const char* help)
    : out_(out), name_(name) {
    out_ += std::string{"# HELP "} + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  void sample(const std::string& labels, double v) {
    out_ += name_;
    if (!labels.empty())
      out_ += "{" + labels + "}";
    out_ += " " + prometheus_value(v) + "\n";
  }

private:
  std::string& out_;
  const char* name_;
};

std::string label(const char* k, const std::string& v) {
  return std::string{k} + "=\"" + escape_label(v) + "\"";
}

bool has_watermark(std::int64_t w) {
  return w != INT64_MIN && w != INT64_MAX;
}

/// Operators of the plan (id, name, chain, parallelism) from `plan_json`.
json plan_of(const job_snapshot& s) {
  auto p = json::parse(s.plan_json, nullptr, false);
  return p.is_discarded() ? json::object() : p;
}

} // namespace

std::string prometheus_value(double v) {
  // printf writes nan, -nan, inf and -inf; the text format's words are these.
  if (std::isnan(v))
    return "NaN";
  if (std::isinf(v))
    return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string prometheus_text(const job_snapshot& s) {
  std::string out;
  const auto job = label("job", s.name);
  auto task_labels = [&](const task_stats& t) {
    return job + "," + label("task", t.chain) + "," + label("instance", std::to_string(t.instance));
  };
  auto node_labels = [&](const task_stats& t, const node_stats& n) {
    return job + "," + label("operator", n.name) + "," + label("task", t.chain) + "," +
           label("instance", std::to_string(t.instance));
  };
  using field = std::uint64_t node_stats::*;
  struct node_counter {
    const char* name;
    const char* type;
    const char* help;
    field f;
  };
  const node_counter node_counters[] = {
    {"sluice_records_in_total", "counter", "Records into the operator instance.", &node_stats::records_in},
    {"sluice_records_out_total", "counter", "Records out of the operator instance, all outputs.", &node_stats::records_out},
    {"sluice_bytes_in_total", "counter", "Bytes into the operator instance (in-memory estimate).", &node_stats::bytes_in},
    {"sluice_bytes_out_total", "counter", "Bytes out of the operator instance (in-memory estimate).", &node_stats::bytes_out},
    {"sluice_batches_in_total", "counter", "Batches into the operator instance.", &node_stats::batches_in},
    {"sluice_batches_out_total", "counter", "Batches out of the operator instance.", &node_stats::batches_out},
    {"sluice_state_entries", "gauge", "Keyed state entries (windows, keys) at the last epoch.", &node_stats::state_entries},
    {"sluice_state_bytes", "gauge", "Keyed state size in bytes at the last epoch (estimate).", &node_stats::state_bytes},
    {"sluice_timers_pending", "gauge", "Event- and processing-time timers set, at the last epoch.", &node_stats::timers_pending},
  };
  for (auto& c : node_counters) {
    family f{out, c.name, c.type, c.help};
    for (auto& t : s.tasks)
      for (auto& n : t.nodes)
        f.sample(node_labels(t, n), static_cast<double>(n.*(c.f)));
  }
  struct task_metric {
    const char* name;
    const char* type;
    const char* help;
    double (*value)(const task_stats&, const job_snapshot&);
  };
  const task_metric task_metrics_list[] = {
    {"sluice_task_busy_seconds_total", "counter", "Time the task spent processing.",
     [](const task_stats& t, const job_snapshot&) { return static_cast<double>(t.busy_ns) / 1e9; }},
    {"sluice_task_backpressured_seconds_total", "counter", "Time the task waited for output credit.",
     [](const task_stats& t, const job_snapshot&) { return static_cast<double>(t.backpressured_ns) / 1e9; }},
    {"sluice_task_idle_seconds_total", "counter", "Time the task was neither busy nor backpressured.",
     [](const task_stats& t, const job_snapshot& j) {
       const double up = std::chrono::duration<double>(j.uptime).count();
       return std::max(0.0, up - static_cast<double>(t.busy_ns + t.backpressured_ns) / 1e9);
     }},
    {"sluice_task_backpressured", "gauge", "1 while the task waits for output credit.",
     [](const task_stats& t, const job_snapshot&) { return t.backpressured ? 1.0 : 0.0; }},
    {"sluice_task_backpressure_events_total", "counter", "Times an output ran out of credit.",
     [](const task_stats& t, const job_snapshot&) { return static_cast<double>(t.backpressure_events); }},
    {"sluice_task_input_queue_batches", "gauge", "Batches queued at the task's input.",
     [](const task_stats& t, const job_snapshot&) { return static_cast<double>(t.input_queue); }},
    {"sluice_task_output_credits", "gauge", "Batches the task may still send before it must wait.",
     [](const task_stats& t, const job_snapshot&) { return static_cast<double>(t.credits); }},
    {"sluice_task_late_records_total", "counter", "Records that came behind the watermark (dropped or side output).",
     [](const task_stats& t, const job_snapshot&) { return static_cast<double>(t.late_records); }},
    {"sluice_task_late_records_side_output_total", "counter", "Late records sent to a late-data output.",
     [](const task_stats& t, const job_snapshot&) { return static_cast<double>(t.late_records_to_side_output); }},
    {"sluice_task_idle_inputs", "gauge", "Input channels marked idle.",
     [](const task_stats& t, const job_snapshot&) { return static_cast<double>(t.idle_inputs); }},
  };
  for (auto& m : task_metrics_list) {
    family f{out, m.name, m.type, m.help};
    for (auto& t : s.tasks)
      f.sample(task_labels(t), m.value(t, s));
  }
  {
    family wm{out, "sluice_task_watermark_seconds", "gauge",
              "The task's event-time watermark, seconds since 1970 (absent before the first)."};
    for (auto& t : s.tasks)
      if (has_watermark(t.watermark))
        wm.sample(task_labels(t), static_cast<double>(t.watermark) / 1e6);
    family lag{out, "sluice_task_watermark_lag_seconds", "gauge",
               "Processing time minus the task's watermark."};
    for (auto& t : s.tasks)
      if (has_watermark(t.watermark))
        lag.sample(task_labels(t), static_cast<double>(s.now_us - t.watermark) / 1e6);
  }
  auto job_metric = [&](const char* name, const char* type, const char* help, double v) {
    family{out, name, type, help}.sample(job, v);
  };
  job_metric("sluice_job_uptime_seconds", "gauge", "Time since the job started.",
             std::chrono::duration<double>(s.uptime).count());
  job_metric("sluice_job_restarts_total", "counter", "Restarts after task failures.", s.restarts);
  job_metric("sluice_checkpoints_completed_total", "counter", "Checkpoints completed.",
             static_cast<double>(s.checkpoints_completed));
  job_metric("sluice_checkpoint_failures_total", "counter", "Checkpoints that failed to complete.",
             static_cast<double>(s.checkpoint_failures));
  if (!s.checkpoints.empty()) {
    const auto& c = s.checkpoints.back();
    job_metric("sluice_last_checkpoint_id", "gauge", "Id of the newest completed checkpoint.",
               static_cast<double>(c.id));
    job_metric("sluice_last_checkpoint_duration_seconds", "gauge",
               "Duration of the newest completed checkpoint.",
               std::chrono::duration<double>(c.duration).count());
    job_metric("sluice_last_checkpoint_size_bytes", "gauge",
               "Bytes the newest completed checkpoint wrote (incremental).",
               static_cast<double>(c.bytes));
    job_metric("sluice_last_checkpoint_full_size_bytes", "gauge",
               "Bytes of all the pieces the newest completed checkpoint stands for.",
               static_cast<double>(c.full_bytes));
    job_metric("sluice_last_checkpoint_alignment_seconds", "gauge",
               "Longest barrier alignment of the newest completed checkpoint.",
               std::chrono::duration<double>(c.alignment).count());
  }
  if (!s.remote_channels.empty()) {
    // Multi-node runs: each channel from this node to a task on another node.
    auto channel_labels = [&](const remote_channel_stats& c) {
      return job + "," + label("node", std::to_string(c.node)) + "," +
             label("peer", std::to_string(c.to_node)) + "," +
             label("channel", std::to_string(c.channel)) + "," + label("from_task", c.from) + "," +
             label("from_instance", std::to_string(c.from_instance)) + "," +
             label("to_task", c.to) + "," + label("to_instance", std::to_string(c.to_instance));
    };
    using remote_field = std::uint64_t remote_channel_stats::*;
    const std::pair<const char*, const char*> names[] = {
      {"sluice_remote_inflight_bytes",
       "Encoded batch bytes sent on the channel to another node and not credited back yet."},
      {"sluice_remote_inflight_batches", "Batches sent on the channel and not credited back yet."},
      {"sluice_remote_inflight_bytes_max", "The most bytes in flight on the channel in this attempt."},
      {"sluice_remote_inflight_batches_max", "The most batches in flight on the channel in this attempt."},
      {"sluice_remote_batch_bytes_max", "The largest encoded batch sent on the channel in this attempt."},
    };
    const remote_field fields[] = {&remote_channel_stats::inflight_bytes,
                                   &remote_channel_stats::inflight_batches,
                                   &remote_channel_stats::max_inflight_bytes,
                                   &remote_channel_stats::max_inflight_batches,
                                   &remote_channel_stats::largest_batch_bytes};
    for (std::size_t i = 0; i < std::size(fields); ++i) {
      family f{out, names[i].first, "gauge", names[i].second};
      for (auto& c : s.remote_channels)
        f.sample(channel_labels(c), static_cast<double>(c.*(fields[i])));
    }
    family w{out, "sluice_remote_credit_window", "gauge",
             "Batches the channel to another node may have in flight (remote_credits)."};
    for (auto& c : s.remote_channels)
      w.sample(channel_labels(c), c.window);
  }
  const char* states[] = {"running", "restarting", "finished", "cancelled", "failed"};
  family up{out, "sluice_job_state", "gauge", "1 for the job's current state."};
  for (auto* st : states)
    up.sample(job + "," + label("state", st), s.state == st ? 1.0 : 0.0);
  return out;
}

std::string job_json(const job_snapshot& s, const job_snapshot* previous) {
  json j;
  j["name"] = s.name;
  j["id"] = s.id;
  j["runId"] = s.run_id;
  j["state"] = s.state;
  j["status"] = {{"message", s.status.message},
                 {"isDataAvailable", s.status.is_data_available},
                 {"isTriggerActive", s.status.is_trigger_active}};
  j["uptimeSeconds"] = std::chrono::duration<double>(s.uptime).count();
  j["restarts"] = s.restarts;
  j["lastFailure"] = s.last_failure ? json(*s.last_failure) : json(nullptr);
  const double span =
    previous ? std::chrono::duration<double>(s.uptime - previous->uptime).count() : 0.0;

  auto plan = plan_of(s);
  j["maxKeyGroups"] = plan.value("max_key_groups", 0);
  // Per operator: figures summed over its instances (tasks hold one entry per chain node).
  struct sums {
    std::uint64_t in = 0, out = 0, in_before = 0, out_before = 0, state_entries = 0,
                  state_bytes = 0, timers = 0;
    double busy_ns = 0, bp_ns = 0, busy_before = 0, bp_before = 0;
    int instances = 0;
    bool backpressured_now = false;
    std::optional<std::int64_t> watermark;
  };
  std::map<std::string, sums> by_name;
  auto fold = [](const job_snapshot& snap, std::map<std::string, sums>& into, bool current) {
    for (auto& t : snap.tasks)
      for (auto& n : t.nodes) {
        auto& x = into[n.name];
        if (current) {
          x.in += n.records_in;
          x.out += n.records_out;
          x.state_entries += n.state_entries;
          x.state_bytes += n.state_bytes;
          x.timers += n.timers_pending;
          x.busy_ns += static_cast<double>(t.busy_ns);
          x.bp_ns += static_cast<double>(t.backpressured_ns);
          x.backpressured_now = x.backpressured_now || t.backpressured;
          ++x.instances;
          if (has_watermark(t.watermark))
            x.watermark = x.watermark ? std::min(*x.watermark, t.watermark) : t.watermark;
        } else {
          x.in_before += n.records_in;
          x.out_before += n.records_out;
          x.busy_before += static_cast<double>(t.busy_ns);
          x.bp_before += static_cast<double>(t.backpressured_ns);
        }
      }
  };
  fold(s, by_name, true);
  if (previous)
    fold(*previous, by_name, false);

  auto& ops = j["operators"] = json::array();
  for (auto& n : plan.value("nodes", json::array())) {
    const auto name = n.value("name", std::string{});
    json o{{"id", n.value("id", 0)},
           {"name", name},
           {"kind", n.value("kind", std::string{})},
           {"operator", n.value("operator", std::string{})},
           {"description", n.value("description", std::string{})},
           {"parallelism", n.value("parallelism", 1)},
           {"chain", n.value("chain", 0)}};
    auto it = by_name.find(name);
    if (it != by_name.end()) {
      const auto& x = it->second;
      const double inst = std::max(1, x.instances);
      o["recordsIn"] = x.in;
      o["recordsOut"] = x.out;
      o["recordsInPerSecond"] = span > 0 ? static_cast<double>(x.in - x.in_before) / span : 0.0;
      o["recordsOutPerSecond"] = span > 0 ? static_cast<double>(x.out - x.out_before) / span : 0.0;
      // Shares of wall time per instance, over the span (or since start without one).
      const double wall = (span > 0 ? span : std::chrono::duration<double>(s.uptime).count()) * 1e9 * inst;
      const double busy = previous ? x.busy_ns - x.busy_before : x.busy_ns;
      const double bp = previous ? x.bp_ns - x.bp_before : x.bp_ns;
      o["busyShare"] = wall > 0 ? std::min(1.0, busy / wall) : 0.0;
      o["backpressuredShare"] = wall > 0 ? std::min(1.0, bp / wall) : 0.0;
      o["backpressuredNow"] = x.backpressured_now;
      o["stateEntries"] = x.state_entries;
      o["stateBytes"] = x.state_bytes;
      o["timersPending"] = x.timers;
      if (x.watermark) {
        o["watermark"] = codec::format_iso8601(event_time{duration{*x.watermark}});
        o["watermarkLagMs"] = (s.now_us - *x.watermark) / 1000;
      }
    }
    ops.push_back(std::move(o));
  }
  auto& edges = j["edges"] = json::array();
  // Logical edges, with the partitioning of the channel between their chains when they
  // cross one ("forward (chained)" inside a chain).
  std::map<std::pair<int, int>, std::string> channel_kind;
  for (auto& c : plan.value("channels", json::array()))
    channel_kind[{c.value("from_chain", 0), c.value("to_chain", 0)}] =
      c.value("partitioning", std::string{}) +
      (c.value("key", std::string{}).empty() ? "" : " by " + c.value("key", std::string{}));
  const auto nodes = plan.value("nodes", json::array());
  for (auto& e : plan.value("edges", json::array())) {
    const int from = e.value("from", 0), to = e.value("to", 0);
    const int fc = nodes.at(static_cast<std::size_t>(from)).value("chain", 0);
    const int tc = nodes.at(static_cast<std::size_t>(to)).value("chain", 0);
    auto it = channel_kind.find({fc, tc});
    edges.push_back({{"from", from},
                     {"to", to},
                     {"fromPort", e.value("from_port", 0)},
                     {"partitioning", fc == tc ? std::string{"chained"}
                                               : it != channel_kind.end() ? it->second : "?"}});
  }
  j["chains"] = plan.value("chains", json::array());
  return j.dump();
}

std::string progress_json(const std::vector<query_progress>& reports) {
  std::string out = "[";
  for (std::size_t i = 0; i < reports.size(); ++i) {
    if (i)
      out += ",";
    out += reports[i].to_json();
  }
  return out + "]";
}

std::string checkpoints_json(const job_snapshot& s) {
  json j;
  j["completed"] = s.checkpoints_completed;
  j["failed"] = s.checkpoint_failures;
  auto& h = j["history"] = json::array();
  for (auto& c : s.checkpoints) {
    std::int64_t max_pause_us = 0;
    for (auto p : c.pauses)
      max_pause_us = std::max<std::int64_t>(max_pause_us, p.count());
    h.push_back({{"id", c.id},
                 {"completedAt", c.completed_at},
                 {"durationMs", static_cast<double>(c.duration.count()) / 1000.0},
                 {"bytes", c.bytes},
                 {"fullBytes", c.full_bytes},
                 {"alignmentMs", static_cast<double>(c.alignment.count()) / 1000.0},
                 {"maxPauseMs", static_cast<double>(max_pause_us) / 1000.0},
                 {"savepoint", c.savepoint}});
  }
  return j.dump();
}

} // namespace sluice::monitor
