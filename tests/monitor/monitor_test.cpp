// The monitoring surface: the query handle and listeners (Spark's StreamingQuery and
// StreamingQueryListener), progress reports in both modes, the metrics' counters and
// their Prometheus and JSON renderings, the progress log, the log level, the server.
#define BOOST_TEST_MODULE monitor
#include <boost/test/unit_test.hpp>

#include "../microbatch/microbatch_helpers.hpp"
#include "sluice/core/log.hpp"
#include "sluice/monitor/exposition.hpp"
#include "sluice/monitor/progress_log.hpp"
#include "sluice/monitor/server.hpp"
#include "sluice/sources/collection.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <limits>
#include <map>
#include <regex>
#include <stdexcept>

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::mb;

namespace {

/// Every listener event as text, in arrival order.
class recording_listener final : public query_listener {
public:
  void on_started(const started_event& e) override {
    add("started " + e.id + " " + e.run_id + " " + e.name);
  }
  void on_progress(const query_progress& p) override {
    add("progress " + p.id + " " + p.run_id + " " + std::to_string(p.batch_id) + " " +
        std::to_string(p.num_input_rows));
  }
  void on_idle(const idle_event& e) override { add("idle " + e.id + " " + e.run_id); }
  void on_terminated(const terminated_event& e) override {
    add("terminated " + e.id + " " + e.run_id + " " + e.exception.value_or("ok"));
  }
  std::vector<std::string> events() const {
    std::lock_guard guard{mtx_};
    return events_;
  }

private:
  void add(std::string e) {
    std::lock_guard guard{mtx_};
    events_.push_back(std::move(e));
  }
  mutable std::mutex mtx_;
  std::vector<std::string> events_;
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in{s};
  for (std::string w; in >> w;)
    out.push_back(w);
  return out;
}

std::vector<kv> numbered_kv(int n) {
  std::vector<kv> out;
  for (int i = 0; i < n; ++i)
    out.push_back(kv{"k" + std::to_string(i % 7), i});
  return out;
}

/// collection -> "double" (map) -> "evens" (filter) -> foreach-batch sink "out".
template <class Source>
void build_pipeline(job& j, Source src, batch_log<kv>& log) {
  j.from(std::move(src))
    .name("numbers")
    .map([](const kv& x) { return kv{x.key, x.value * 2}; })
    .name("double")
    .filter([](const kv& x) { return x.value % 4 == 0; })
    .name("evens")
    .sink_to(log.sink())
    .name("out");
}

/// The value of each sample of `metric` in Prometheus text, keyed by its label text.
std::map<std::string, double> samples_of(const std::string& text, const std::string& metric) {
  std::map<std::string, double> out;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(metric + "{", 0) != 0)
      continue;
    const auto close = line.rfind('}');
    out[line.substr(metric.size() + 1, close - metric.size() - 1)] = std::stod(line.substr(close + 2));
  }
  return out;
}

double sum_for_operator(const std::map<std::string, double>& samples, const std::string& op) {
  double sum = 0;
  for (auto& [labels, v] : samples)
    if (labels.find("operator=\"" + op + "\"") != std::string::npos)
      sum += v;
  return sum;
}

} // namespace

BOOST_AUTO_TEST_SUITE(query_handle)

BOOST_AUTO_TEST_CASE(listener_events_arrive_in_order_with_consistent_ids) {
  auto listener = std::make_shared<recording_listener>();
  batch_log<kv> log;
  job_options o;
  o.name = "listened";
  o.trigger = triggers::available_now();
  o.runtime.max_records_per_trigger = 10;
  o.runtime.batch_size = 10; // one poll fills a trigger's cap exactly
  o.listeners.push_back(listener);
  job j{o};
  build_pipeline(j, sources::collection<kv>{numbered_kv(35)}, log);
  auto exec = require_ok(j.start());
  exec->await_termination();
  BOOST_TEST(!exec->exception().has_value());
  BOOST_TEST(exec->status().message == "Stopped");
  BOOST_TEST(!exec->status().is_trigger_active);

  const auto events = listener->events();
  BOOST_REQUIRE_GE(events.size(), 3u);
  const auto first = split(events.front());
  BOOST_REQUIRE_EQUAL(first.size(), 4u);
  BOOST_TEST(first[0] == "started");
  BOOST_TEST(first[3] == "listened");
  const auto& id = first[1];
  const auto& run = first[2];
  // 35 rows at 10 per trigger: four epochs with data, numbered 0..3, then an idle trigger
  // that finds nothing and ends the available-now run.
  std::vector<std::string> want{events.front()};
  for (int b = 0; b < 4; ++b)
    want.push_back("progress " + id + " " + run + " " + std::to_string(b) + " " +
                   std::to_string(b < 3 ? 10 : 5));
  want.push_back("idle " + id + " " + run);
  want.push_back("terminated " + id + " " + run + " ok");
  BOOST_TEST(events == want, boost::test_tools::per_element());

  // The handle: the last report is the newest of the recent ones.
  const auto recent = exec->recent_progress();
  BOOST_REQUIRE_EQUAL(recent.size(), 4u);
  BOOST_REQUIRE(exec->last_progress().has_value());
  BOOST_TEST(exec->last_progress()->batch_id == 3);
  BOOST_TEST(exec->last_progress()->to_json() == recent.back().to_json());
}

BOOST_AUTO_TEST_CASE(a_failed_job_reports_its_error_to_listener_and_handle) {
  auto listener = std::make_shared<recording_listener>();
  batch_log<kv> log;
  job_options o;
  o.name = "failing";
  o.listeners.push_back(listener);
  job j{o};
  j.from(sources::collection<kv>{numbered_kv(20)})
    .name("numbers")
    .map([](const kv& x) {
      if (x.value == 13)
        throw std::runtime_error("thirteen is unlucky");
      return x;
    })
    .name("superstitious")
    .sink_to(log.sink());
  auto exec = require_ok(j.start());
  BOOST_TEST(exec->await_termination(safety_timeout));
  auto err = exec->exception();
  BOOST_REQUIRE(err.has_value());
  BOOST_TEST(err->message.find("superstitious") != std::string::npos, err->message);
  BOOST_TEST(err->message.find("thirteen is unlucky") != std::string::npos, err->message);
  const auto events = listener->events();
  BOOST_REQUIRE(!events.empty());
  BOOST_TEST(events.front().rfind("started ", 0) == 0);
  BOOST_TEST(events.back().rfind("terminated ", 0) == 0);
  BOOST_TEST(events.back().find("thirteen is unlucky") != std::string::npos, events.back());
  BOOST_TEST(exec->snapshot().state == "failed");
  BOOST_REQUIRE(exec->snapshot().last_failure.has_value());
}

BOOST_AUTO_TEST_CASE(stop_ends_a_running_job_and_the_handle_says_so) {
  gate<kv> g{numbered_kv(100)};
  batch_log<kv> log;
  auto listener = std::make_shared<recording_listener>();
  job_options o;
  o.listeners.push_back(listener);
  job j{o};
  build_pipeline(j, g, log);
  auto exec = require_ok(j.start());
  g.release(40);
  BOOST_REQUIRE(wait_until(*exec, [&] { return g.emitted() >= 40; }));
  BOOST_TEST(!exec->await_termination(std::chrono::nanoseconds{0}));
  BOOST_TEST(exec->status().is_trigger_active);
  BOOST_TEST(exec->status().message == "Processing continuously");
  exec->stop();
  BOOST_TEST(exec->await_termination(std::chrono::nanoseconds{0}));
  BOOST_TEST(!exec->exception().has_value());
  BOOST_TEST(exec->snapshot().state == "cancelled");
  BOOST_TEST(listener->events().back().find(" ok") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(progress_reports)

BOOST_AUTO_TEST_CASE(micro_batch_input_rows_add_up) {
  progress_log progress;
  batch_log<kv> log;
  job_options o;
  o.parallelism = 2;
  o.trigger = triggers::available_now();
  o.runtime.max_records_per_trigger = 8;
  o.runtime.batch_size = 8; // one poll fills a trigger's cap exactly
  o.on_progress = progress.callback();
  job j{o};
  build_pipeline(j, sources::collection<kv>{numbered_kv(100)}, log);
  require_ok(j.run());
  const auto reports = progress.reports();
  BOOST_REQUIRE(!reports.empty());
  std::uint64_t total = 0, double_in = 0, evens_out = 0;
  for (std::size_t i = 0; i < reports.size(); ++i) {
    const auto& p = reports[i];
    BOOST_TEST(p.batch_id == static_cast<std::int64_t>(i));
    std::uint64_t from_sources = 0;
    for (auto& s : p.sources)
      from_sources += s.num_input_rows;
    BOOST_TEST(from_sources == p.num_input_rows, "batch " << i);
    total += p.num_input_rows;
    // Sluice's per-operator figures cover the same span as the report.
    for (auto& op : p.operators) {
      if (op.name == "double")
        double_in += op.records_in;
      if (op.name == "evens")
        evens_out += op.records_out;
    }
    std::uint64_t sunk = 0;
    for (auto& e : log.entries())
      if (e.batch_id == p.batch_id)
        sunk += e.rows.size();
    BOOST_TEST(p.sink.num_output_rows == sunk, "batch " << i);
  }
  BOOST_TEST(total == 100u);
  BOOST_TEST(double_in == 100u);
  BOOST_TEST(evens_out == 50u);
}

BOOST_AUTO_TEST_CASE(continuous_mode_reports_once_per_interval) {
  auto clk = std::make_shared<manual_clock>();
  gate<kv> g{numbered_kv(60)};
  batch_log<kv> log;
  job_options o;
  o.trigger = triggers::continuous(1s);
  o.progress_interval = 3s;
  o.runtime.processing_clock = clk;
  auto listener = std::make_shared<recording_listener>();
  o.listeners.push_back(listener);
  job j{o};
  build_pipeline(j, g, log);
  auto exec = require_ok(j.start());
  auto epoch_ends = [&](std::size_t released, std::size_t sink_calls) {
    g.release(released);
    BOOST_REQUIRE(wait_until(*exec, [&] { return g.emitted() >= released; }));
    clk->advance(1s);
    BOOST_REQUIRE(wait_until(*exec, [&] { return log.size() >= sink_calls; }));
  };
  epoch_ends(10, 1);
  epoch_ends(20, 2);
  // Two epochs in two seconds: no report yet.
  BOOST_TEST(exec->recent_progress().empty());
  epoch_ends(30, 3);
  BOOST_REQUIRE(wait_until(*exec, [&] { return exec->recent_progress().size() >= 1; }));
  auto first = exec->recent_progress().front();
  BOOST_TEST(first.num_input_rows == 30u);
  BOOST_TEST(first.epochs == 3);
  BOOST_TEST(first.batch_id == 2);
  BOOST_TEST(first.sink.num_output_rows == 15u);
  // 30 rows over 3 s of (manual) processing time.
  BOOST_TEST(first.input_rows_per_second == 10.0);
  g.release(60);
  g.finish();
  require_ok(exec->wait());
  // The job's end reports what the last interval read.
  std::uint64_t total = 0;
  for (auto& p : exec->recent_progress())
    total += p.num_input_rows;
  BOOST_TEST(total == 60u);
  BOOST_TEST(exec->recent_progress().size() == 2u);
  const auto json = nlohmann::json::parse(first.to_json());
  BOOST_TEST(json.at("sluice").at("epochs") == 3);
  bool saw_double = false;
  for (auto& op : json.at("sluice").at("operators"))
    if (op.at("name") == "double") {
      saw_double = true;
      BOOST_TEST(op.at("recordsIn") == 30);
      BOOST_TEST(op.at("recordsOut") == 30);
    }
  BOOST_TEST(saw_double);
}

BOOST_AUTO_TEST_CASE(checkpoint_fields_appear_in_the_report_that_covers_them) {
  temp_dir dir;
  progress_log progress;
  batch_log<kv> log;
  job_options o;
  o.trigger = triggers::available_now();
  o.runtime.max_records_per_trigger = 25;
  o.runtime.batch_size = 25; // one poll fills a trigger's cap exactly
  o.checkpoints.dir = dir.path;
  o.on_progress = progress.callback();
  job j{o};
  build_pipeline(j, sources::collection<kv>{numbered_kv(50)}, log);
  auto done = require_ok(j.run());
  const auto reports = progress.reports();
  BOOST_REQUIRE_EQUAL(reports.size(), 2u);
  for (auto& p : reports) {
    // Every micro-batch is a checkpoint: each report names the one it completed.
    BOOST_REQUIRE(p.checkpoint.has_value());
    BOOST_TEST(p.checkpoint->id == p.batch_id);
    BOOST_TEST(p.checkpoint->bytes > 0u);
    const auto json = nlohmann::json::parse(p.to_json());
    BOOST_TEST(json.at("sluice").at("checkpoint").at("id") == p.batch_id);
  }
  BOOST_TEST(done.checkpoints_completed == 2);
}

BOOST_AUTO_TEST_CASE(the_progress_log_writes_one_json_line_per_report) {
  temp_dir dir;
  const auto path = dir.path / "progress.jsonl";
  auto file = require_ok(monitor::progress_log::open(path));
  batch_log<kv> log;
  job_options o;
  o.trigger = triggers::available_now();
  o.runtime.max_records_per_trigger = 10;
  o.runtime.batch_size = 10; // one poll fills a trigger's cap exactly
  o.listeners.push_back(file);
  job j{o};
  build_pipeline(j, sources::collection<kv>{numbered_kv(30)}, log);
  auto exec = require_ok(j.start());
  exec->await_termination();
  std::ifstream in{path};
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);)
    lines.push_back(nlohmann::json::parse(line));
  const auto recent = exec->recent_progress();
  BOOST_REQUIRE_EQUAL(lines.size(), recent.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    BOOST_TEST(lines[i].at("batchId") == recent[i].batch_id);
    BOOST_TEST(lines[i].at("numInputRows") == recent[i].num_input_rows);
  }
  BOOST_TEST(!file->problem().has_value());
}

BOOST_AUTO_TEST_CASE(an_unwritable_progress_log_is_named) {
  auto err = require_error(monitor::progress_log::open("/nonexistent-dir/progress.jsonl"));
  BOOST_TEST(err.message.find("/nonexistent-dir/progress.jsonl") != std::string::npos, err.message);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(metrics)

BOOST_AUTO_TEST_CASE(counters_match_a_known_input) {
  batch_log<kv> log;
  job_options o;
  o.name = "counted";
  o.parallelism = 2;
  job j{o};
  build_pipeline(j, sources::collection<kv>{numbered_kv(1000)}, log);
  auto exec = require_ok(j.start());
  require_ok(exec->wait());
  const auto snap = exec->snapshot();
  BOOST_TEST(snap.state == "finished");
  const auto text = monitor::prometheus_text(snap);
  const auto out = samples_of(text, "sluice_records_out_total");
  const auto in = samples_of(text, "sluice_records_in_total");
  BOOST_TEST(sum_for_operator(out, "numbers") == 1000.0);
  BOOST_TEST(sum_for_operator(in, "numbers") == 1000.0);
  BOOST_TEST(sum_for_operator(in, "double") == 1000.0);
  BOOST_TEST(sum_for_operator(out, "double") == 1000.0);
  BOOST_TEST(sum_for_operator(out, "evens") == 500.0);
  BOOST_TEST(sum_for_operator(in, "out") == 500.0);
  // kv is {std::string, long}: bytes count sizeof per record.
  BOOST_TEST(sum_for_operator(samples_of(text, "sluice_bytes_in_total"), "double") ==
             1000.0 * sizeof(kv));
  // Labels: job, operator, task (the chain), instance.
  BOOST_TEST(text.find("sluice_records_in_total{job=\"counted\",operator=\"double\",task=\"") !=
             std::string::npos);
  BOOST_TEST(text.find("# TYPE sluice_records_in_total counter") != std::string::npos);
  BOOST_TEST(text.find("sluice_job_state{job=\"counted\",state=\"finished\"} 1") != std::string::npos);
  // Every task spent some time busy; none of it can exceed the job's uptime.
  for (auto& t : snap.tasks)
    BOOST_TEST(static_cast<double>(t.busy_ns) <=
               static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(snap.uptime).count()));
}

BOOST_AUTO_TEST_CASE(state_entries_and_timers_of_a_keyed_operator) {
  batch_log<kv> log;
  job_options o;
  o.trigger = triggers::available_now();
  o.output_mode = output_mode::update;
  job j{o};
  j.from(sources::collection<kv>{numbered_kv(70)})
    .name("numbers")
    .key_by(key_of_kv)
    .reduce(sum_kv)
    .name("sums")
    .sink_to(log.sink());
  auto exec = require_ok(j.start());
  require_ok(exec->wait());
  const auto text = monitor::prometheus_text(exec->snapshot());
  // Seven keys (k0..k6) in the reduce's state.
  BOOST_TEST(sum_for_operator(samples_of(text, "sluice_state_entries"), "sums") == 7.0);
  BOOST_TEST(sum_for_operator(samples_of(text, "sluice_state_bytes"), "sums") > 0.0);
  const auto api = nlohmann::json::parse(monitor::job_json(exec->snapshot(), nullptr));
  bool seen = false;
  for (auto& op : api.at("operators"))
    if (op.at("name") == "sums") {
      seen = true;
      BOOST_TEST(op.at("stateEntries") == 7);
    }
  BOOST_TEST(seen);
  bool hashed = false;
  for (auto& e : api.at("edges"))
    hashed = hashed || e.at("partitioning").get<std::string>().rfind("hash", 0) == 0;
  BOOST_TEST(hashed);
}

BOOST_AUTO_TEST_CASE(non_finite_values_are_written_as_the_text_format_spells_them) {
  // The exposition format spells them NaN, +Inf and -Inf (printf's nan, inf, -inf are not).
  BOOST_TEST(monitor::prometheus_value(std::numeric_limits<double>::quiet_NaN()) == "NaN");
  BOOST_TEST(monitor::prometheus_value(-std::numeric_limits<double>::quiet_NaN()) == "NaN");
  BOOST_TEST(monitor::prometheus_value(std::numeric_limits<double>::infinity()) == "+Inf");
  BOOST_TEST(monitor::prometheus_value(-std::numeric_limits<double>::infinity()) == "-Inf");
  // Finite values read back exactly.
  for (double v : {0.0, 1.0, 1000.0, 0.1, -2.5, 1e-300, 1.7976931348623157e308, 123456789012345678.0})
    BOOST_TEST(std::stod(monitor::prometheus_value(v)) == v, monitor::prometheus_value(v));
  BOOST_TEST(monitor::prometheus_value(1000.0) == "1000");
}

BOOST_AUTO_TEST_CASE(metrics_can_be_switched_off) {
  batch_log<kv> log;
  job_options o;
  o.runtime.collect_metrics = false;
  job j{o};
  build_pipeline(j, sources::collection<kv>{numbered_kv(100)}, log);
  auto exec = require_ok(j.start());
  require_ok(exec->wait());
  const auto text = monitor::prometheus_text(exec->snapshot());
  BOOST_TEST(sum_for_operator(samples_of(text, "sluice_records_in_total"), "double") == 0.0);
  std::size_t rows = 0;
  for (auto& e : log.entries())
    rows += e.rows.size();
  BOOST_TEST(rows == 50u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(server_and_logging)

BOOST_AUTO_TEST_CASE(the_server_serves_metrics_and_the_api) {
  gate<kv> g{numbered_kv(100)};
  batch_log<kv> log;
  job_options o;
  o.name = "served";
  job j{o};
  build_pipeline(j, g, log);
  auto exec = require_ok(j.start());
  auto server = require_ok(monitor::server::start(*exec));
  BOOST_TEST(server->port() > 0);
  g.release(100);
  BOOST_REQUIRE(wait_until(*exec, [&] { return g.emitted() >= 100; }));
  httplib::Client client{"127.0.0.1", server->port()};
  auto metrics = client.Get("/metrics");
  BOOST_REQUIRE(metrics);
  BOOST_TEST(metrics->status == 200);
  BOOST_TEST(metrics->get_header_value("Content-Type").find("text/plain") == 0u);
  BOOST_TEST(metrics->body.find("sluice_records_in_total{job=\"served\"") != std::string::npos);
  auto api = client.Get("/api/job");
  BOOST_REQUIRE(api);
  const auto job_json = nlohmann::json::parse(api->body);
  BOOST_TEST(job_json.at("name") == "served");
  BOOST_TEST(job_json.at("state") == "running");
  std::vector<std::string> names;
  for (auto& op : job_json.at("operators"))
    names.push_back(op.at("name"));
  BOOST_TEST(names == (std::vector<std::string>{"numbers", "double", "evens", "out"}),
             boost::test_tools::per_element());
  auto cps = client.Get("/api/checkpoints");
  BOOST_REQUIRE(cps);
  BOOST_TEST(nlohmann::json::parse(cps->body).at("history").is_array());
  auto progress = client.Get("/api/progress");
  BOOST_REQUIRE(progress);
  BOOST_TEST(nlohmann::json::parse(progress->body).is_array());
  auto page = client.Get("/");
  BOOST_REQUIRE(page);
  BOOST_TEST(page->body.find("<html") != std::string::npos);
  BOOST_TEST(page->body.find("__SLUICE_REFRESH_MS__") == std::string::npos);
  g.finish();
  require_ok(exec->wait());
}

BOOST_AUTO_TEST_CASE(a_port_in_use_is_named) {
  gate<kv> g{numbered_kv(1)};
  batch_log<kv> log;
  job j;
  build_pipeline(j, g, log);
  auto exec = require_ok(j.start());
  auto first = require_ok(monitor::server::start(*exec));
  auto err = require_error(monitor::server::start(*exec, {.port = first->port()}));
  BOOST_TEST(err.message.find(std::to_string(first->port())) != std::string::npos, err.message);
  BOOST_TEST(require_error(monitor::server::start(*exec, {.port = 70000})).message.find("70000") !=
             std::string::npos);
  g.release(1);
  g.finish();
  require_ok(exec->wait());
}

BOOST_AUTO_TEST_CASE(log_levels) {
  require_ok(logging::to_stderr("warn"));
  BOOST_TEST(logging::get().level() == spdlog::level::warn);
  auto err = require_error(logging::to_stderr("loud"));
  BOOST_TEST(err.message.find("'loud'") != std::string::npos, err.message);
  BOOST_TEST(err.message.find("trace") != std::string::npos);
  require_ok(logging::to_stderr("off"));
}

BOOST_AUTO_TEST_SUITE_END()
