// The samples' command lines. Duration flags: negative durations and absurd window counts
// are refused with a message naming the flag, before any job is built (each run here is
// --explain, so a flag that slipped through would print a plan and exit 0). The cluster
// flags every sample shares (docs/cluster.md). iot_sensors and log_analytics: their own
// flags, and short runs on their built-in input.
#define BOOST_TEST_MODULE samples_cli_test
#include <boost/test/unit_test.hpp>

#include "sluice/tests/common/child_process.hpp"
#include "sluice/tests/common/temp_dir.hpp"

#include "sluice/net/cluster.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

namespace {

using outcome = sluice::test::child_outcome;

outcome run(const char* bin, std::vector<std::string> args) {
  args.insert(args.begin(), bin);
  return sluice::test::run_to_exit(args);
}

/// windowed_wordcount --explain on an empty input directory, plus `args`.
outcome wordcount(std::vector<std::string> args) {
  static sluice::test::temp_dir input;
  std::vector<std::string> all{"--input", input.path.string(), "--output",
                               (input.path.parent_path() / "wordcount-out.jsonl").string(),
                               "--explain"};
  all.insert(all.end(), args.begin(), args.end());
  return run(SLUICE_WORDCOUNT_BIN, all);
}

outcome account_totals(std::vector<std::string> args) {
  args.push_back("--explain");
  return run(SLUICE_ACCOUNT_TOTALS_BIN, args);
}

/// kafka_pipeline against a loopback port where no broker listens, plus `args`.
outcome kafka_pipeline(std::vector<std::string> args) {
  args.insert(args.begin(), {"--bootstrap", "127.0.0.1:9", "--delivery", "at-least-once"});
  return run(SLUICE_KAFKA_PIPELINE_BIN, args);
}

outcome iot_sensors(std::vector<std::string> args) { return run(SLUICE_IOT_SENSORS_BIN, args); }

outcome log_analytics(std::vector<std::string> args) {
  return run(SLUICE_LOG_ANALYTICS_BIN, args);
}

void require_refused(const outcome& o, const std::string& flag, const std::string& problem) {
  BOOST_TEST(o.exit_code == 2, o.err);
  BOOST_TEST(o.err.find(flag) != std::string::npos, o.err);
  BOOST_TEST(o.err.find(problem) != std::string::npos, o.err);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::vector<std::string> sorted_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in{text};
  for (std::string l; std::getline(in, l);)
    lines.push_back(l);
  std::sort(lines.begin(), lines.end());
  return lines;
}

/// A cluster file of `nodes` loopback entries and a key file, in a directory of their own.
struct cluster_files {
  sluice::test::temp_dir dir;
  std::string cluster;
  std::string key;

  explicit cluster_files(int nodes = 2) {
    std::string text = "# the test's cluster\n";
    for (int i = 0; i < nodes; ++i)
      text += "127.0.0.1:" + std::to_string(7400 + i) + "\n";
    cluster = dir.write("cluster", text).string();
    key = (dir.path / "cluster.key").string();
    auto written = sluice::net::write_key_file(key);
    BOOST_REQUIRE_MESSAGE(written.has_value(), (written ? "" : written.error().to_string()));
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(sample_flags)

BOOST_AUTO_TEST_CASE(the_flags_as_given_work) {
  auto o = wordcount({"--window", "10m", "--slide", "5m", "--watermark", "0"});
  BOOST_TEST(o.exit_code == 0, o.err);
  o = account_totals({"--window", "1m", "--out-of-orderness", "0"});
  BOOST_TEST(o.exit_code == 0, o.err);
}

BOOST_AUTO_TEST_CASE(a_negative_watermark_delay_is_refused) {
  // The newest rows would be dropped as late; Spark rejects a negative delay.
  require_refused(wordcount({"--watermark", "-5m"}), "--watermark",
                  "must not be negative, got -5m");
  require_refused(account_totals({"--out-of-orderness", "-1s"}), "--out-of-orderness",
                  "must not be negative, got -1s");
}

BOOST_AUTO_TEST_CASE(window_sizes_and_slides_must_be_positive) {
  require_refused(wordcount({"--window", "-10m"}), "--window", "must be positive, got -10m");
  require_refused(wordcount({"--slide", "0"}), "--slide", "must be positive, got 0");
  require_refused(account_totals({"--window", "-1m"}), "--window",
                  "must not be negative, got -1m");
}

BOOST_AUTO_TEST_CASE(a_slide_giving_absurdly_many_windows_per_record_is_refused) {
  // 600 million windows per record: memory grew by about 75 MB/s until the process died.
  auto o = wordcount({"--window", "10m", "--slide", "1us"});
  require_refused(o, "--window 10m --slide 1us", "600000000 windows per record");
  BOOST_TEST(o.err.find("limit of 10000") != std::string::npos, o.err);
}

BOOST_AUTO_TEST_CASE(client_properties_must_be_key_equals_value) {
  // Refused before any client is made: the broker address leads nowhere.
  require_refused(kafka_pipeline({"--producer-property", "linger.ms"}), "--producer-property",
                  "'linger.ms' is not KEY=VALUE");
  require_refused(kafka_pipeline({"--consumer-property", "fetch.wait.max.ms=10",
                                  "--consumer-property", "=5"}),
                  "--consumer-property", "'=5' is not KEY=VALUE");
}

BOOST_AUTO_TEST_CASE(the_source_poll_interval_must_be_positive) {
  require_refused(kafka_pipeline({"--poll-interval", "0"}), "--poll-interval",
                  "must be positive, got 0");
  require_refused(kafka_pipeline({"--poll-interval", "-1ms"}), "--poll-interval",
                  "must be positive, got -1ms");
}

BOOST_AUTO_TEST_CASE(a_property_librdkafka_does_not_know_fails_the_job_naming_it) {
  // librdkafka judges the keys: the source's consumer is made at the start and refused.
  auto o = kafka_pipeline({"--consumer-property", "no.such.property=1"});
  BOOST_TEST(o.exit_code != 0, o.err);
  BOOST_TEST(contains(o.err, "property 'no.such.property' = '1'"), o.err);
}

BOOST_AUTO_TEST_CASE(common_duration_flags_are_refused_when_negative) {
  require_refused(wordcount({"--linger", "-1ms"}), "--linger", "must not be negative, got -1ms");
  require_refused(wordcount({"--duration", "-5s"}), "--duration", "must not be negative, got -5s");
  require_refused(wordcount({"--progress-interval", "-1s"}), "--progress-interval",
                  "must not be negative, got -1s");
  require_refused(wordcount({"--checkpoint-dir", "/nonexistent/x", "--checkpoint-interval", "-1s"}),
                  "--checkpoint-interval", "must be positive, got -1s");
  require_refused(wordcount({"--linger", "soon"}), "--linger", "soon");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(cluster_flags)

BOOST_AUTO_TEST_CASE(the_cluster_flags_as_given_work) {
  cluster_files f;
  auto o = wordcount({"--cluster", f.cluster, "--node", "1", "--cluster-key", f.key,
                      "--heartbeat-interval", "200ms", "--heartbeat-timeout", "2s",
                      "--rejoin-timeout", "30s", "--join-timeout", "20s"});
  BOOST_TEST(o.exit_code == 0, o.err);
  o = wordcount({"--cluster", f.cluster, "--node", "0", "--rejoin-timeout", "never"});
  BOOST_TEST(o.exit_code == 0, o.err);
  o = account_totals({"--cluster", f.cluster, "--node", "0"});
  BOOST_TEST(o.exit_code == 0, o.err);
}

BOOST_AUTO_TEST_CASE(every_sample_lists_them) {
  for (const char* bin : {SLUICE_WORDCOUNT_BIN, SLUICE_ACCOUNT_TOTALS_BIN, SLUICE_IOT_SENSORS_BIN,
                          SLUICE_LOG_ANALYTICS_BIN}) {
    auto o = run(bin, {"--help"});
    BOOST_TEST_CONTEXT(bin) {
      BOOST_TEST(o.exit_code == 0, o.err);
      for (const char* flag : {"--cluster", "--node", "--cluster-key", "--heartbeat-interval",
                               "--heartbeat-timeout", "--rejoin-timeout", "--join-timeout"})
        BOOST_TEST(contains(o.out, flag), flag);
    }
  }
}

BOOST_AUTO_TEST_CASE(node_key_and_heartbeats_without_a_cluster_are_refused_naming_the_flag) {
  // Ignored in silence, they would leave a user believing the job runs across nodes.
  cluster_files f;
  require_refused(wordcount({"--node", "1"}), "--node", "needs --cluster");
  require_refused(wordcount({"--node", "0"}), "--node", "needs --cluster");
  require_refused(account_totals({"--cluster-key", f.key}), "--cluster-key", "needs --cluster");
  require_refused(iot_sensors({"--heartbeat-interval", "1s"}), "--heartbeat-interval",
                  "needs --cluster");
  require_refused(log_analytics({"--input", "x", "--heartbeat-timeout", "5s"}),
                  "--heartbeat-timeout", "needs --cluster");
  require_refused(wordcount({"--rejoin-timeout", "never"}), "--rejoin-timeout", "needs --cluster");
  require_refused(wordcount({"--join-timeout", "5s"}), "--join-timeout", "needs --cluster");
}

BOOST_AUTO_TEST_CASE(a_cluster_needs_this_processs_node) {
  cluster_files f;
  require_refused(wordcount({"--cluster", f.cluster}), "--cluster", "needs --node");
}

BOOST_AUTO_TEST_CASE(cluster_file_errors_come_as_they_are) {
  cluster_files f;
  const auto missing = (f.dir.path / "missing").string();
  require_refused(wordcount({"--cluster", missing, "--node", "0"}), missing, "cannot be read");
  const auto bad = f.dir.write("bad", "127.0.0.1:7400\n127.0.0.1:70000\n").string();
  require_refused(wordcount({"--cluster", bad, "--node", "0"}), bad,
                  "line 2: '127.0.0.1:70000' is not host:port");
  require_refused(wordcount({"--cluster", f.cluster, "--node", "2"}), "node 2",
                  "is not in the cluster of 2 nodes (0..1)");
  const auto twice = f.dir.write("twice", "127.0.0.1:7400\n127.0.0.1:7400\n").string();
  require_refused(wordcount({"--cluster", twice, "--node", "0"}), "node 1",
                  "'127.0.0.1:7400' is listed twice");
}

BOOST_AUTO_TEST_CASE(key_file_errors_come_as_they_are) {
  cluster_files f;
  std::filesystem::permissions(f.key, std::filesystem::perms::group_read,
                               std::filesystem::perm_options::add);
  require_refused(wordcount({"--cluster", f.cluster, "--node", "0", "--cluster-key", f.key}),
                  f.key, "mode 640");
  const auto missing = (f.dir.path / "no.key").string();
  require_refused(wordcount({"--cluster", f.cluster, "--node", "0", "--cluster-key", missing}),
                  missing, "cannot be read");
}

BOOST_AUTO_TEST_CASE(heartbeat_durations_must_be_positive_and_the_timeout_longer) {
  cluster_files f;
  auto with = [&](std::vector<std::string> more) {
    std::vector<std::string> args{"--cluster", f.cluster, "--node", "0"};
    args.insert(args.end(), more.begin(), more.end());
    return wordcount(args);
  };
  require_refused(with({"--heartbeat-interval", "-1s"}), "--heartbeat-interval",
                  "must be positive, got -1s");
  require_refused(with({"--heartbeat-timeout", "0"}), "--heartbeat-timeout",
                  "must be positive, got 0");
  require_refused(with({"--heartbeat-interval", "500us"}), "--heartbeat-interval",
                  "must be at least 1ms, got 500us");
  require_refused(with({"--heartbeat-interval", "soon"}), "--heartbeat-interval", "soon");
  require_refused(with({"--heartbeat-interval", "5s", "--heartbeat-timeout", "5s"}),
                  "heartbeat timeout (5000 ms)", "must exceed the interval (5000 ms)");
  require_refused(with({"--rejoin-timeout", "-5s"}), "--rejoin-timeout",
                  "must be positive, got -5s");
  require_refused(with({"--rejoin-timeout", "later"}), "--rejoin-timeout", "later");
  require_refused(with({"--join-timeout", "0s"}), "--join-timeout", "must be positive, got 0s");
  // The default timeout (10 s) is checked against a longer interval too.
  require_refused(with({"--heartbeat-interval", "20s"}), "heartbeat timeout (10000 ms)",
                  "must exceed the interval (20000 ms)");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(iot_sensors_cli)

BOOST_AUTO_TEST_CASE(bad_flags_are_refused_naming_the_flag) {
  require_refused(iot_sensors({"--window", "-1m", "--explain"}), "--window",
                  "must be positive, got -1m");
  require_refused(iot_sensors({"--out-of-orderness", "-5s", "--explain"}), "--out-of-orderness",
                  "must not be negative, got -5s");
  require_refused(iot_sensors({"--interval", "0", "--explain"}), "--interval",
                  "must be positive, got 0");
  require_refused(iot_sensors({"--idle-timeout", "later", "--explain"}), "--idle-timeout", "later");
  require_refused(iot_sensors({"--default-band", "30:20", "--explain"}), "--default-band",
                  "expected LOW:HIGH with LOW <= HIGH, got 30:20");
  require_refused(iot_sensors({"--band", "sensor-a", "--explain"}), "--band",
                  "expected DEVICE=LOW:HIGH, got sensor-a");
  require_refused(iot_sensors({"--band", "sensor-a=x:3", "--explain"}), "--band", "got x:3");
  require_refused(iot_sensors({"--source", "file", "--explain"}), "--source file",
                  "needs --input");
  // CLI11's own checks: ranges and choices.
  BOOST_TEST(iot_sensors({"--devices", "0"}).exit_code != 0);
  BOOST_TEST(iot_sensors({"--source", "kafka"}).exit_code != 0);
}

BOOST_AUTO_TEST_CASE(explain_prints_the_plan) {
  auto o = iot_sensors({"--explain"});
  BOOST_TEST(o.exit_code == 0, o.err);
  BOOST_TEST(contains(o.out, "readings"), o.out);
}

BOOST_AUTO_TEST_CASE(a_short_run_of_the_built_in_fleet_reads_every_reading) {
  // 3 devices x 50 readings, generated as fast as it goes; the totals line is on stderr.
  auto o = iot_sensors({"--devices", "3", "--readings", "50", "--seed", "7"});
  BOOST_REQUIRE_MESSAGE(o.exit_code == 0, o.err);
  BOOST_TEST(contains(o.err, "iot_sensors: finished, 150 readings read"), o.err);
  // Every reading is in one window's count or on the late side output: none is lost.
  std::uint64_t counted = 0, late = 0;
  std::set<std::string> devices;
  for (const auto& l : sorted_lines(o.out)) {
    const auto j = nlohmann::json::parse(l, nullptr, false);
    BOOST_REQUIRE_MESSAGE(!j.is_discarded(), "not JSON: " << l);
    if (j.contains("late")) {
      ++late;
    } else if (j.contains("key") && j.contains("value") && j["value"].contains("readings")) {
      devices.insert(j["key"].get<std::string>());
      counted += j["value"]["readings"].get<std::uint64_t>();
    } else {
      BOOST_TEST(j.contains("direction"), "neither a window, a late reading nor an alert: " << l);
    }
  }
  BOOST_TEST(counted + late == 150u, o.out);
  BOOST_TEST((devices == std::set<std::string>{"sensor-01", "sensor-02", "sensor-03"}));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(log_analytics_cli)

BOOST_AUTO_TEST_CASE(bad_flags_are_refused_naming_the_flag) {
  require_refused(log_analytics({"--input", "x", "--out-of-orderness", "-30s", "--explain"}),
                  "--out-of-orderness", "must not be negative, got -30s");
  require_refused(log_analytics({"--input", "x", "--idle-timeout", "-1s", "--explain"}),
                  "--idle-timeout", "must not be negative, got -1s");
  require_refused(log_analytics({"--input", "x", "--idle-timeout", "a while", "--explain"}),
                  "--idle-timeout", "a while");
  // CLI11's own checks: --input is required, --top has a range.
  auto o = log_analytics({"--explain"});
  BOOST_TEST(o.exit_code != 0);
  BOOST_TEST(contains(o.err, "--input"), o.err);
  BOOST_TEST(log_analytics({"--input", "x", "--top", "0"}).exit_code != 0);
}

BOOST_AUTO_TEST_CASE(the_bundled_log_gives_its_minutes_and_totals) {
  // samples/log_analytics/data/access-2026-01-01.log, checked by hand: minute 10:00 has six
  // requests (11:00:15 +0100 among them), a 404 and a 500; 10:01 three with a 503; 10:02
  // one. The malformed line goes to stderr with its reason.
  auto o = log_analytics({"--input", SLUICE_LOG_ANALYTICS_DATA, "--no-watch"});
  BOOST_REQUIRE_MESSAGE(o.exit_code == 0, o.err);
  const std::vector<std::string> expected{
    R"({"start":"2026-01-01T10:00:00Z","end":"2026-01-01T10:01:00Z","value":{"requests":6,"client_errors":1,"server_errors":1,"bytes":9598},"is_update":false,"firing":0})",
    R"({"start":"2026-01-01T10:01:00Z","end":"2026-01-01T10:02:00Z","value":{"requests":3,"client_errors":0,"server_errors":1,"bytes":10240},"is_update":false,"firing":0})",
    R"({"start":"2026-01-01T10:02:00Z","end":"2026-01-01T10:03:00Z","value":{"requests":1,"client_errors":0,"server_errors":0,"bytes":5120},"is_update":false,"firing":0})",
  };
  BOOST_TEST(sorted_lines(o.out) == expected, boost::test_tools::per_element());
  BOOST_TEST(contains(o.err, R"({"line":"this line is not a log line","error":"expected 'host ident user [time] \"request\" status bytes'"})"),
             o.err);
  BOOST_TEST(contains(o.err, "log_analytics: finished, 10 requests (1 4xx, 2 5xx), 1 malformed "
                             "lines, 3 minutes closed"),
             o.err);
}

BOOST_AUTO_TEST_CASE(a_missing_input_fails_the_job_naming_it) {
  sluice::test::temp_dir dir;
  const auto missing = (dir.path / "no-logs").string();
  auto o = log_analytics({"--input", missing, "--no-watch"});
  BOOST_TEST(o.exit_code == 1, o.err);
  BOOST_TEST(contains(o.err, "log_analytics: job failed: "), o.err);
  BOOST_TEST(contains(o.err, missing), o.err);
}

BOOST_AUTO_TEST_SUITE_END()
