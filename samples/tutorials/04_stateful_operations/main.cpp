// Tutorial 04, stateful operations over one click stream: a running count with its state
// size watched, a keyed process function with state, timers and TTL, session windows with
// a fixed and a dynamic gap, and deduplication within the watermark. See README.md.
//
//   tutorial_04_stateful_operations --part running|process|sessions|dedup
#include "sluice/api/job.hpp"
#include "sluice/core/codec/time_format.hpp"
#include "sluice/samples/common/cli.hpp"
#include "sluice/samples/common/run.hpp"
#include "sluice/sinks/callback.hpp"
#include "sluice/sinks/foreach_batch.hpp"
#include "sluice/sources/file.hpp"

#include <algorithm>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

using namespace sluice;
using namespace std::chrono_literals;

/// One click: `{"time": ..., "user": "u1", "event_id": "e1", "page": "home", "device": "mobile"}`.
struct click {
  event_time time{};
  std::string user;
  std::string event_id;
  std::string page;
  std::string device;
};

template <class Inspector>
bool inspect(Inspector& f, click& x) {
  return f.object("click").fields(f.field("time", x.time), f.field("user", x.user),
                                  f.field("event_id", x.event_id), f.field("page", x.page),
                                  f.field("device", x.device));
}

/// "12:07" of 2026-01-01T12:07:00Z (every row of the input is on that day).
std::string hhmm(event_time t) {
  const auto text = codec::format_iso8601(t);
  return t.time_since_epoch().count() == 0 ? "-" : text.substr(11, 5);
}

/// A watermark as the time of day, to the microsecond: Sluice's watermark is the last
/// instant known complete, 1 µs before Spark's (docs/event-time.md).
std::string watermark_text(event_time w) {
  if (w <= event_time{})
    return "none yet";
  const auto text = codec::format_iso8601(w);
  if (text.size() < 20 || text[4] != '-')
    return "end of input"; // the maximal watermark, beyond year 9999
  return text.substr(11, text.size() - 12);
}

int fail(const error& e) {
  std::cerr << "tutorial_04_stateful_operations: " << e.to_string() << "\n";
  return 2;
}

/// What one micro-batch printed: its rows and its state operators' progress.
struct batch_report {
  std::vector<std::string> rows;
  std::string watermark;
  std::vector<state_operator_progress> state;
};

/// Runs `j` (micro-batch) and prints every batch's rows, then the state its stateful
/// operators hold (progress reports' stateOperators).
class batch_printer {
public:
  std::function<void(const query_progress&)> on_progress() {
    return [this](const query_progress& p) {
      std::lock_guard guard{mtx_};
      auto& b = batches_[p.batch_id];
      b.watermark = p.event_time.count("watermark") ? p.event_time.at("watermark") : "?";
      b.state = p.state_operators;
    };
  }
  void add_rows(std::int64_t batch, std::vector<std::string> rows) {
    std::sort(rows.begin(), rows.end());
    std::lock_guard guard{mtx_};
    auto& b = batches_[batch].rows;
    b.insert(b.end(), rows.begin(), rows.end());
  }
  void print(std::ostream& out) {
    std::lock_guard guard{mtx_};
    for (auto& [id, b] : batches_) {
      out << "Batch " << id << " (watermark " << b.watermark << ")\n";
      for (auto& r : b.rows)
        out << "  " << r << "\n";
      for (auto& s : b.state)
        out << "  state of '" << s.name << "': " << s.num_rows_total << " rows, "
            << s.num_rows_updated << " updated, " << s.num_rows_removed << " removed, "
            << s.num_rows_dropped_by_watermark << " dropped by watermark, ~"
            << s.memory_used_bytes << " bytes\n";
    }
  }

private:
  std::mutex mtx_;
  std::map<std::int64_t, batch_report> batches_;
};

/// Per user: the clicks of the current visit, ended by 10 minutes without a click (an
/// event-time timer), and the page before this one, forgotten 10 minutes after it was
/// written (event-time TTL). Spark: flatMapGroupsWithState with an event-time timeout.
struct visit_tracker {
  static constexpr auto quiet = 10min;
  state_descriptor<value_state<std::int64_t>> clicks{"clicks"};
  state_descriptor<value_state<event_time>> first{"first"};
  state_descriptor<value_state<event_time>> last{"last"};
  state_descriptor<value_state<std::string>> previous_page{"previous_page",
                                                           state_ttl::event(10min)};

  void on_element(const click& c, keyed_process_context<std::string>& ctx,
                  collector<std::string>& out) {
    auto n = ctx.state(clicks);
    auto last_seen = ctx.state(last);
    const auto w = ctx.timers().current_watermark();
    // A click after a quiet gap whose timer has not fired yet (the watermark lags) still
    // ends the visit before it: the timer only covers users who never come back.
    if (auto l = last_seen.value(); l && *l + quiet <= c.time) {
      end_visit(ctx, out, "a click came after 10 quiet minutes");
      ctx.timers().delete_event_time(*l + quiet);
    }
    auto prev = ctx.state(previous_page);
    out.collect(hhmm(c.time) + " " + ctx.current_key() + " " + c.page + " (watermark " +
                watermark_text(w) + "; click " + std::to_string(n.value_or(0) + 1) +
                " of the visit; previous page " + prev.value_or("-") + ")");
    n.update(n.value_or(0) + 1);
    if (!ctx.state(first).exists())
      ctx.state(first).update(c.time);
    const auto old_last = last_seen.value();
    if (!old_last || c.time > *old_last) {
      if (old_last)
        ctx.timers().delete_event_time(*old_last + quiet);
      last_seen.update(c.time);
      ctx.timers().register_event_time(c.time + quiet);
    }
    prev.update(c.page);
  }

  void on_timer(event_time, keyed_process_context<std::string>& ctx, collector<std::string>& out) {
    end_visit(ctx, out, "timer");
  }

  void end_visit(keyed_process_context<std::string>& ctx, collector<std::string>& out,
                 const std::string& why) {
    auto n = ctx.state(clicks);
    out.collect("visit of " + ctx.current_key() + " ended (" + why + ", watermark " +
                watermark_text(ctx.timers().current_watermark()) + "): " +
                std::to_string(n.value_or(0)) + " click(s) from " +
                hhmm(ctx.state(first).value_or(event_time{})) + " to " +
                hhmm(ctx.state(last).value_or(event_time{})));
    n.clear();
    ctx.state(first).clear();
    ctx.state(last).clear();
  }
};

/// A running count of clicks per user (Spark: groupBy("user").count(), update mode).
struct count_clicks {
  std::int64_t create() const { return 0; }
  void add(std::int64_t& n, const click&) const { ++n; }
  std::string result(const std::string& user, const std::int64_t& n) const {
    return user + " = " + std::to_string(n);
  }
};

int main(int argc, char** argv) {
  CLI::App app{"Tutorial 04: running aggregations, keyed state, timers, TTL, sessions, dedup"};
  samples::common_flags common;
  samples::add_common_flags(app, common);
  std::string part = "running";
  std::string input = SLUICE_TUTORIAL_DATA "/clicks";
  app.add_option("--part", part, "running, process, sessions or dedup")
    ->check(CLI::IsMember({"running", "process", "sessions", "dedup"}));
  app.add_option("--input", input, "directory of clicks (JSON lines)");
  CLI11_PARSE(app, argc, argv);

  const bool micro_batch = part == "running" || part == "dedup";
  // Continuous parts read one record per batch: the watermark moves after every record,
  // so timers and sessions fire at the same records on every run.
  if (!micro_batch)
    common.batch_size = 1;
  job_options opts;
  opts.name = "tutorial-04-" + part;
  batch_printer printer;
  if (micro_batch) {
    opts.trigger = triggers::available_now();
    opts.output_mode = part == "running" ? output_mode::update : output_mode::append;
    opts.on_progress = printer.on_progress();
  }
  auto duration = samples::apply_common_flags(common, opts);
  if (!duration)
    return fail(duration.error());

  std::mutex mtx;
  std::vector<std::string> lines;
  auto print_line = [&](const std::string& s) {
    std::lock_guard guard{mtx};
    lines.push_back(s);
  };
  job j{opts};
  sources::file_options files{.path = input};
  if (micro_batch)
    files.max_files_per_trigger = 1;
  const auto delay = part == "process" ? 1min : 10min;
  auto clicks =
    j.from(sources::file<click>{files}, watermarks::bounded_out_of_orderness<click>(delay, &click::time))
      .name("clicks");
  auto by_user = clicks.key_by([](const click& c) { return c.user; }, "user");

  if (part == "running") {
    by_user.aggregate(count_clicks{})
      .name("count-per-user")
      .sink_to(sinks::foreach_batch<std::string>([&](std::int64_t b, std::vector<std::string>& rows) {
        printer.add_rows(b, rows);
        return result<void>{};
      }));
  } else if (part == "dedup") {
    clicks.drop_duplicates_within_watermark([](const click& c) { return c.event_id; })
      .name("dedup")
      .sink_to(sinks::foreach_batch<click>([&](std::int64_t b, std::vector<click>& rows) {
        std::vector<std::string> text;
        for (auto& c : rows)
          text.push_back(c.event_id + " " + hhmm(c.time) + " " + c.user + " " + c.page);
        printer.add_rows(b, std::move(text));
        return result<void>{};
      }));
  } else if (part == "process") {
    by_user.process(visit_tracker{}).name("visits").sink_to(sinks::for_each<std::string>(print_line));
  } else {
    using session_count = window_result<std::string, std::uint64_t>;
    auto row = [](std::string gap) {
      return [gap](const session_count& r) {
        return gap + " " + r.key + " [" + hhmm(r.start) + ", " + hhmm(r.end) + ") " +
               std::to_string(r.value) + " click(s)";
      };
    };
    by_user.window(windows::session{.gap = 5min})
      .count()
      .name("sessions-fixed")
      .map(row("fixed gap 5m:     "))
      .sink_to(sinks::for_each<std::string>(print_line));
    by_user
      .window(windows::session_dynamic{[](const click& c) {
        return c.device == "mobile" ? 1min : 5min;
      }})
      .count()
      .name("sessions-dynamic")
      .map(row("dynamic gap 1m/5m:"))
      .sink_to(sinks::for_each<std::string>(print_line));
  }

  auto done = samples::explain_or_run(
    j, common, *duration, {.program = "tutorial_04_stateful_operations", .job_failed_exit = 2});
  if (!done)
    return done.exit_code();
  if (micro_batch) {
    printer.print(std::cout);
    return 0;
  }
  // The two session windows run side by side: their results are sorted here. The process
  // part prints in the order its function emitted.
  if (part == "sessions")
    std::sort(lines.begin(), lines.end());
  for (auto& l : lines)
    std::cout << l << "\n";
  return 0;
}
