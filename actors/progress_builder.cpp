#include "sluice/actors/progress_builder.hpp"

#include "sluice/actors/checkpoint_coordinator.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>

namespace sluice {

std::string query_ids::uuid() {
  static thread_local std::mt19937_64 gen{std::random_device{}()};
  const auto a = gen(), b = gen();
  char text[40];
  std::snprintf(text, sizeof text, "%08x-%04x-4%03x-%04x-%012llx",
                static_cast<unsigned>(a >> 32), static_cast<unsigned>((a >> 16) & 0xffff),
                static_cast<unsigned>(a & 0x0fff),
                static_cast<unsigned>(0x8000 | ((b >> 48) & 0x3fff)),
                static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return text;
}

std::vector<task_stats> collect_stats(const blueprint& bp) {
  std::vector<task_stats> out;
  for (std::size_t i = 0; i < bp.tasks.size(); ++i) {
    auto s = snapshot(bp.metrics[i]);
    const auto& chain = bp.plan.chains[static_cast<std::size_t>(bp.tasks[i].chain)];
    s.chain = chain.name;
    s.chain_id = chain.id;
    s.instance = bp.tasks[i].instance;
    for (std::size_t n = 0; n < s.nodes.size() && n < chain.nodes.size(); ++n)
      s.nodes[n].name = bp.logical.node(chain.nodes[n]).name;
    out.push_back(std::move(s));
  }
  return out;
}

progress_builder::progress_builder(const blueprint& bp, std::shared_ptr<const sluice::clock> clock,
                                   bool micro_batch)
  : bp_(bp), clock_(std::move(clock)), micro_batch_(micro_batch), span_start_(clock_->now()) {}

query_progress progress_builder::epoch_progress(std::int64_t id, const open_epoch& e,
                                                const query_ids& ids) {
  const auto now = clock_->now();
  query_progress p;
  p.id = ids.query;
  p.run_id = ids.run;
  p.name = bp_.options.query_name;
  p.timestamp = iso_millis(std::chrono::time_point_cast<duration>(e.wall));
  p.batch_id = id;
  std::map<int, source_progress> sources;
  // node -> instance -> report: offsets are keyed by instance, whatever order tasks acked in
  std::map<int, std::map<int, const source_epoch_report*>> per_source;
  std::map<int, state_operator_progress> state;
  event_time_stats times;
  bool event_time_input = false;
  for (auto& r : e.reports) {
    for (auto& s : r->sources) {
      per_source[s.node][bp_.tasks[static_cast<std::size_t>(r->task)].instance] = &s;
      times.merge(s.event_times);
      if (s.watermark_delay)
        event_time_input = true;
    }
    for (auto& s : r->state) {
      auto& o = state[s.node];
      o.name = s.name;
      o.num_rows_total += s.rows_total;
      o.num_rows_updated += s.rows_updated;
      o.num_rows_removed += s.rows_removed;
      o.num_rows_dropped_by_watermark += s.rows_dropped_by_watermark;
      o.memory_used_bytes += s.memory_used_bytes;
    }
    for (auto& s : r->sinks) {
      if (p.sink.description.empty())
        p.sink.description = s.description;
      else if (p.sink.description.find(s.description) == std::string::npos)
        p.sink.description += ", " + s.description;
      p.sink.num_output_rows += s.rows;
    }
  }
  const double elapsed_s =
    std::chrono::duration<double>(now - e.triggered).count();
  const double since_last_s =
    last_trigger_ ? std::chrono::duration<double>(e.triggered - *last_trigger_).count() : 0.0;
  last_trigger_ = e.triggered;
  auto rate = [](std::uint64_t n, double s) { return s > 0 ? static_cast<double>(n) / s : 0.0; };
  for (auto& [node, reports] : per_source) {
    source_progress sp;
    sp.description = reports.begin()->second->description;
    if (reports.size() == 1) {
      sp.start_offset = reports.begin()->second->start_offset;
      sp.end_offset = reports.begin()->second->end_offset;
    } else { // one offset per parallel instance, keyed by the instance
      sp.start_offset = sp.end_offset = "{";
      for (auto& [instance, r] : reports) {
        const auto sep = std::string(sp.start_offset.size() > 1 ? ", " : "") + "\"" +
                         std::to_string(instance) + "\": ";
        sp.start_offset += sep + r->start_offset;
        sp.end_offset += sep + r->end_offset;
      }
      sp.start_offset += "}";
      sp.end_offset += "}";
    }
    for (auto& [instance, r] : reports)
      sp.num_input_rows += r->rows;
    sp.input_rows_per_second = rate(sp.num_input_rows, since_last_s);
    sp.processed_rows_per_second = rate(sp.num_input_rows, elapsed_s);
    p.num_input_rows += sp.num_input_rows;
    p.sources.push_back(std::move(sp));
  }
  for (auto& [node, s] : state)
    p.state_operators.push_back(s);
  p.input_rows_per_second = rate(p.num_input_rows, since_last_s);
  p.processed_rows_per_second = rate(p.num_input_rows, elapsed_s);
  auto ms = [](auto d) {
    return static_cast<std::int64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
  };
  p.duration_ms["triggerExecution"] = ms(now - e.triggered);
  p.duration_ms["latestOffset"] = ms(e.started - e.triggered);
  p.duration_ms["addBatch"] = ms(now - e.started);
  if (times.count > 0) {
    p.event_time["min"] = iso_millis(times.min);
    p.event_time["max"] = iso_millis(times.max);
    p.event_time["avg"] = iso_millis(event_time{duration{static_cast<duration::rep>(
      times.sum_us / static_cast<long double>(times.count))}});
  }
  if (event_time_input) {
    if (e.watermark)
      p.event_time["watermark"] = iso_millis(*e.watermark);
    else if (auto wm = continuous_watermark())
      p.event_time["watermark"] = iso_millis(*wm);
  }
  return p;
}

std::optional<event_time> progress_builder::continuous_watermark() const {
  std::optional<event_time> low;
  for (std::size_t i = 0; i < bp_.tasks.size(); ++i) {
    if (!bp_.plan.chains[static_cast<std::size_t>(bp_.tasks[i].chain)].is_source)
      continue;
    const event_time w{duration{bp_.metrics[i].watermark.load(
      std::memory_order_relaxed)}};
    if (w == min_watermark)
      continue;
    low = low ? std::min(*low, w) : w;
  }
  if (low && *low != max_watermark)
    *low += duration{1};
  return low;
}

/// One epoch's report. Micro-batch mode publishes it; continuous mode folds it into the
/// report of the progress interval, published when the interval is over (or the job
/// ends: `flush`).
std::optional<progress_builder::ready> progress_builder::offer(std::optional<query_progress> p,
                                                              bool flush) {
  const auto now = clock_->now();
  const auto every = bp_.options.progress_interval;
  bool interval = false;
  if (!micro_batch_ && every.count() > 0) {
    if (p && pending_)
      pending_->absorb(*p);
    else if (p)
      pending_ = std::move(p);
    if (!pending_ || (!flush && now - span_start_ < every))
      return std::nullopt;
    p = std::move(pending_);
    pending_.reset();
    // Rates over the whole interval, not one epoch.
    const double span = std::chrono::duration<double>(now - span_start_).count();
    auto rate = [span](std::uint64_t n) { return span > 0 ? static_cast<double>(n) / span : 0.0; };
    p->input_rows_per_second = p->processed_rows_per_second = rate(p->num_input_rows);
    for (auto& src : p->sources)
      src.input_rows_per_second = src.processed_rows_per_second = rate(src.num_input_rows);
    interval = true;
  }
  if (!p)
    return std::nullopt;
  add_operator_progress(*p, now);
  span_start_ = now;
  return ready{std::move(*p), interval};
}

/// Sluice's extra fields: per operator over the span since the last report, and the
/// newest checkpoint completed in it.
void progress_builder::add_operator_progress(query_progress& p, sluice::clock::time_point now) {
  auto stats = collect_stats(bp_);
  const double span_ns =
    std::max(1.0, static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        now - span_start_)
                                        .count()));
  std::map<node_id, operator_progress> ops;
  std::map<node_id, std::int64_t> low_watermark;
  for (std::size_t t = 0; t < stats.size(); ++t) {
    const auto& cur = stats[t];
    const task_stats* before = t < last_stats_.size() ? &last_stats_[t] : nullptr;
    const auto& chain = bp_.plan.chains[static_cast<std::size_t>(bp_.tasks[t].chain)];
    auto delta = [&](auto field) {
      return before ? cur.*field - before->*field : cur.*field;
    };
    for (std::size_t n = 0; n < cur.nodes.size(); ++n) {
      const auto id = chain.nodes[n];
      const auto& spec = bp_.logical.node(id);
      auto& o = ops[id];
      o.name = spec.name;
      o.parallelism = chain.parallelism;
      const auto& cn = cur.nodes[n];
      const node_stats* bn = before && n < before->nodes.size() ? &before->nodes[n] : nullptr;
      o.records_in += cn.records_in - (bn ? bn->records_in : 0);
      o.records_out += cn.records_out - (bn ? bn->records_out : 0);
      o.state_entries += cn.state_entries;
      o.state_bytes += cn.state_bytes;
      // The chain's thread is shared by its operators: each shows the task's shares,
      // averaged over the instances.
      o.busy_share += static_cast<double>(delta(&task_stats::busy_ns)) / span_ns /
                      chain.parallelism;
      o.backpressured_share += static_cast<double>(delta(&task_stats::backpressured_ns)) /
                               span_ns / chain.parallelism;
      // Late records belong to the chain's event-time operator (else its last node).
      const bool late_here = spec.role.event_time_state ||
                             (n + 1 == cur.nodes.size() &&
                              std::none_of(chain.nodes.begin(), chain.nodes.end(), [&](node_id x) {
                                return bp_.logical.node(x).role.event_time_state;
                              }));
      if (late_here) {
        const auto side = delta(&task_stats::late_records_to_side_output);
        o.late_records_side_output += side;
        o.late_records_dropped += delta(&task_stats::late_records) - side;
      }
      if (cur.watermark != INT64_MIN) {
        auto [it, fresh] = low_watermark.emplace(id, cur.watermark);
        if (!fresh)
          it->second = std::min(it->second, cur.watermark);
      }
    }
  }
  const auto now_us = std::chrono::duration_cast<duration>(now.time_since_epoch()).count();
  for (auto& [id, o] : ops) {
    if (auto it = low_watermark.find(id); it != low_watermark.end() &&
                                          it->second != max_watermark.time_since_epoch().count()) {
      o.watermark = iso_millis(event_time{duration{it->second}});
      o.watermark_lag_ms = (now_us - it->second) / 1000;
    }
    p.operators.push_back(std::move(o));
  }
  last_stats_ = std::move(stats);
  p.checkpoint = std::exchange(last_checkpoint_, std::nullopt);
}

} // namespace sluice
