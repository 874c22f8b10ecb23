// The fraud_detection sample's command line: a bounded run on the generator prints exact
// precision and recall, an unreachable Kafka broker is named, and bad options are refused
// with a message naming them. The Kafka variant against a real broker: kafka_variant. (The module is defined in crash_test.cpp.)
#include <boost/test/unit_test.hpp>

#include "sluice/core/codec/json.hpp"
#include "sluice/samples/fraud_detection/types.hpp"
#include "sluice/tests/common/child_process.hpp"
#include "sluice/tests/common/temp_dir.hpp"
#include "sluice/tests/kafka/kafka_helpers.hpp"
#include "sluice/samples/fraud_detection/generator.hpp"
#include "sluice/samples/fraud_detection/summary.hpp"

#include <set>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using outcome = sluice::test::child_outcome;

outcome sample(std::vector<std::string> args) {
  args.insert(args.begin(), SLUICE_FRAUD_BIN);
  return sluice::test::run_to_exit(args);
}

} // namespace

BOOST_AUTO_TEST_SUITE(cli)

BOOST_AUTO_TEST_CASE(a_bounded_generator_run_prints_alerts_and_an_exact_summary) {
  const auto o = sample({"--count", "20000", "--rate", "50000", "--duration", "0",
                         "--parallelism", "3"});
  BOOST_REQUIRE_MESSAGE(o.exit_code == 0, o.err);
  // Alerts as JSON lines on stdout.
  std::istringstream lines{o.out};
  int alerts = 0;
  for (std::string line; std::getline(lines, line);) {
    auto a = sluice::codec::from_json_line<sluice::fraud::alert>(line);
    BOOST_REQUIRE_MESSAGE(a.has_value(), line);
    BOOST_TEST(a->latency_us > 0);
    ++alerts;
  }
  BOOST_TEST(alerts > 20);
  // The summary on stderr: every rule at precision and recall 1.
  BOOST_TEST(o.err.find("finished after") != std::string::npos, o.err);
  BOOST_TEST(o.err.find(std::to_string(alerts) + " alerts") != std::string::npos, o.err);
  for (const char* rule : {"small-then-large", "velocity", "impossible-travel", "spend-spike"}) {
    const auto at = o.err.find(std::string{"\n"} + rule);
    BOOST_REQUIRE_MESSAGE(at != std::string::npos, rule << " missing in\n" << o.err);
    const auto row = o.err.substr(at + 1, o.err.find('\n', at + 1) - at - 1);
    BOOST_TEST(row.find("1.000   1.000") != std::string::npos, row);
  }
  BOOST_TEST(o.err.find("p99.9") != std::string::npos, o.err);
}

BOOST_AUTO_TEST_CASE(an_unreachable_kafka_broker_is_named) {
  auto o = sample({"--source", "kafka", "--bootstrap", "127.0.0.1:1", "--duration", "0"});
  BOOST_TEST(o.exit_code == 1);
  BOOST_TEST(o.err.find("cannot reach the brokers at '127.0.0.1:1'") != std::string::npos, o.err);
}

BOOST_AUTO_TEST_CASE(bad_options_are_refused_naming_them) {
  auto o = sample({"--rules", "small-then-large,teleport"});
  BOOST_TEST(o.exit_code == 2);
  BOOST_TEST(o.err.find("unknown rule 'teleport'") != std::string::npos, o.err);
  o = sample({"--within", "soon"});
  BOOST_TEST(o.exit_code == 2);
  BOOST_TEST(o.err.find("--within") != std::string::npos, o.err);
  o = sample({"--accounts", "2"});
  BOOST_TEST(o.exit_code == 2);
  BOOST_TEST(o.err.find("velocity") != std::string::npos, o.err);
  o = sample({"--source", "file"});
  BOOST_TEST(o.exit_code == 2);
  BOOST_TEST(o.err.find("--input") != std::string::npos, o.err);
  o = sample({"--checkpoint-interval", "5s"}); // no directory: no checkpoints, so refused
  BOOST_TEST(o.exit_code == 2);
  BOOST_TEST(o.err.find("--checkpoint-interval: needs --checkpoint-dir") != std::string::npos, o.err);
  o = sample({"--allow-non-restored-state"});
  BOOST_TEST(o.exit_code == 2);
  BOOST_TEST(o.err.find("--allow-non-restored-state: needs --checkpoint-dir") != std::string::npos, o.err);
  o = sample({"--on-unreadable-checkpoints", "repair"});
  BOOST_TEST(o.exit_code == 2);
  BOOST_TEST(o.err.find("--on-unreadable-checkpoints: needs --checkpoint-dir") != std::string::npos, o.err);
  o = sample({"--on-unreadable-checkpoints", "ignore", "--checkpoint-dir", "x"});
  BOOST_TEST(o.exit_code != 0); // CLI11's own check
  BOOST_TEST(o.err.find("--on-unreadable-checkpoints") != std::string::npos, o.err);
  o = sample({"--restore-from", "3"});
  BOOST_TEST(o.exit_code == 2);
  BOOST_TEST(o.err.find("--restore-from: needs --checkpoint-dir") != std::string::npos, o.err);
  o = sample({"--restore-from", "-2", "--checkpoint-dir", "unused"});
  BOOST_TEST(o.exit_code == 2);
  BOOST_TEST(o.err.find("--restore-from -2: a checkpoint id is 0 or more") != std::string::npos,
             o.err);
  o = sample({"--help"});
  BOOST_TEST(o.exit_code == 0);
  BOOST_TEST(o.out.find("--fraud-share") != std::string::npos, o.out);
}

// Issue 23: windowed_wordcount started on fraud_detection's checkpoint directory restored
// its checkpoint without a word (and fraud_detection then re-processed all its input).
BOOST_AUTO_TEST_CASE(another_samples_checkpoint_directory_is_refused_naming_both_jobs) {
  sluice::test::temp_dir tmp;
  const auto cp = (tmp.path / "cp").string();
  auto o = sample({"--count", "2000", "--rate", "1000000", "--quiet", "--duration", "0",
                   "--checkpoint-dir", cp});
  BOOST_REQUIRE_MESSAGE(o.exit_code == 0, o.err);
  std::filesystem::create_directories(tmp.path / "in");
  tmp.write("in/0.jsonl", R"({"timestamp": "2026-01-01T00:00:00Z", "line": "cat dog"})" "\n");
  const auto wc = sluice::test::run_to_exit(
    {SLUICE_WORDCOUNT_BIN, "--input", (tmp.path / "in").string(), "--output-dir",
     (tmp.path / "out").string(), "--bounded", "--trigger", "available-now", "--checkpoint-dir", cp});
  const auto& err = wc.err;
  BOOST_TEST(wc.exit_code == 2, err); // the sample's exit code for a job error
  BOOST_TEST(err.find("'fraud-detection'") != std::string::npos, err);
  BOOST_TEST(err.find("'windowed_wordcount'") != std::string::npos, err);
  BOOST_TEST(err.find(cp) != std::string::npos, err);
  // Its own job still resumes from it.
  o = sample({"--count", "2000", "--rate", "1000000", "--quiet", "--duration", "0",
              "--checkpoint-dir", cp});
  BOOST_TEST(o.exit_code == 0, o.err);
}

BOOST_AUTO_TEST_CASE(json_lines_files_are_a_source) {
  sluice::test::temp_dir tmp;
  // Account 4: a small one then a large one; card 9: Berlin, then Paris a minute later.
  tmp.write("txns.jsonl",
            R"({"txn_id":1,"account_id":4,"card_id":40,"amount":0.5,"merchant":"m","country":"DE","lat":52.52,"lon":13.405,"timestamp":"2024-01-01T00:00:00Z"})" "\n"
            R"({"txn_id":2,"account_id":4,"card_id":40,"amount":750.0,"merchant":"m","country":"DE","lat":52.52,"lon":13.405,"timestamp":"2024-01-01T00:00:10Z"})" "\n"
            R"({"txn_id":3,"account_id":5,"card_id":9,"amount":20.0,"merchant":"m","country":"DE","lat":52.52,"lon":13.405,"timestamp":"2024-01-01T00:01:00Z"})" "\n"
            R"({"txn_id":4,"account_id":5,"card_id":9,"amount":20.0,"merchant":"m","country":"FR","lat":48.857,"lon":2.352,"timestamp":"2024-01-01T00:02:00Z"})" "\n");
  const auto o = sample({"--source", "file", "--input", tmp.path.string(), "--duration", "0"});
  BOOST_REQUIRE_MESSAGE(o.exit_code == 0, o.err);
  BOOST_TEST(o.out.find(R"("alert_id":"small-then-large-2")") != std::string::npos, o.out);
  BOOST_TEST(o.out.find(R"("alert_id":"impossible-travel-4")") != std::string::npos, o.out);
  BOOST_TEST(o.err.find("no ground truth") != std::string::npos, o.err);
}

BOOST_AUTO_TEST_SUITE_END()

// The Kafka variant through the real broker of the kafka_broker fixture: the generator's
// transactions go to a topic (keyed by account), the rules read them from there and write
// their alerts to another topic with exactly-once transactions; a read_committed reader
// sees exactly the generator's ground truth.
BOOST_AUTO_TEST_SUITE(kafka_variant)

BOOST_AUTO_TEST_CASE(kafka_in_and_out_gives_exactly_the_ground_truth) {
  const auto broker = sluice::test::kafka_tests::real_broker();
  BOOST_REQUIRE_MESSAGE(broker, "no real Kafka broker: run through ctest (fixture kafka_broker)");
  const auto txns = sluice::test::kafka_tests::unique_topic("fraud-txns");
  const auto alerts = sluice::test::kafka_tests::unique_topic("fraud-alerts");
  sluice::test::kafka_tests::must(sluice::kafka::create_topic(*broker, txns, 3, std::chrono::seconds{30}));
  sluice::test::kafka_tests::must(sluice::kafka::create_topic(*broker, alerts, 2, std::chrono::seconds{30}));
  constexpr std::uint64_t count = 20'000;
  auto o = sample({"--sink", "kafka-transactions", "--bootstrap", *broker, "--topic", txns,
                   "--count", std::to_string(count), "--rate", "1000000", "--duration", "0"});
  BOOST_REQUIRE_MESSAGE(o.exit_code == 0, o.err);
  sluice::test::temp_dir cp;
  o = sample({"--source", "kafka", "--bounded", "--bootstrap", *broker, "--topic", txns, "--sink",
              "kafka", "--alerts-topic", alerts, "--quiet", "--parallelism", "2",
              "--checkpoint-dir", (cp.path / "cp").string(), "--checkpoint-interval", "50ms",
              "--duration", "0"});
  BOOST_REQUIRE_MESSAGE(o.exit_code == 0, o.err);
  std::vector<sluice::fraud::alert> got;
  for (auto& m : sluice::test::kafka_tests::read_topic(*broker, alerts, true))
    got.push_back(sluice::test::kafka_tests::must(sluice::codec::from_json_line<sluice::fraud::alert>(m.value)));
  auto gen = sluice::fraud::transaction_generator::make({});
  BOOST_REQUIRE(gen.has_value());
  const auto truth = gen->ground_truth(0, count);
  const std::set<sluice::fraud::expected_alert> want(truth.begin(), truth.end());
  BOOST_TEST(got.size() == want.size());
  BOOST_TEST((sluice::fraud::identities(got) == want), "alerts in Kafka differ from the ground truth");
}

BOOST_AUTO_TEST_SUITE_END()
