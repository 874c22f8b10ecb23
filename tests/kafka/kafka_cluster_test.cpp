// kafka_pipeline (Kafka -> running total per account -> Kafka, exactly once) as 2 and 3 node
// processes on loopback (issue 24): the committed output topic holds exactly the records of
// the one-process run, each once, and every account's totals in the same order in the same
// partition. Kafka is librdkafka's mock cluster, in this test's process; the pipelines reach
// it over loopback TCP like any broker. (The mock shows a read_committed consumer the
// records of aborted transactions too, shared/DEPENDENCY-FACTS.md: a run that aborted one
// would show up here as duplicates, so the comparison is if anything stricter than a real
// broker's. Exactly-once under kills is tests/kafka/kafka_crash_test.cpp, on a real broker.)
#define BOOST_TEST_MODULE kafka_cluster
#include <boost/test/unit_test.hpp>

#include "sluice/tests/common/child_process.hpp"
#include "sluice/tests/common/cluster_nodes.hpp"
#include "sluice/tests/common/temp_dir.hpp"
#include "sluice/tests/kafka/kafka_helpers.hpp"
#include "sluice/samples/kafka_pipeline/payments.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

namespace fs = std::filesystem;
using namespace sluice;
using namespace sluice::test::kafka_tests;
using namespace std::chrono_literals;
using sluice::samples::account_total;
using sluice::samples::payment;
using sluice::test::cluster_file;
using sluice::test::cluster_nodes;
using sluice::test::log_tails;
using sluice::test::with;

namespace {

constexpr int accounts = 37;
constexpr int in_partitions = 4;
constexpr int out_partitions = 3;

/// SLUICE_KAFKA_CLUSTER_PAYMENTS=N runs a longer input (scripts/soak.sh).
int payments() {
  const char* env = std::getenv("SLUICE_KAFKA_CLUSTER_PAYMENTS");
  return env ? std::stoi(env) : 3000;
}

payment make_payment(int i) {
  return {i, i % accounts, 1 + (i * 7919) % 1000, 0, "p" + std::to_string(i)};
}

/// What a read_committed consumer sees of an output topic: every record's value, sorted,
/// and per (partition, account) the payment ids in the order the partition holds them (the
/// order a keyed running total defines; accounts interleave in a partition as they happen to).
struct topic_content {
  std::vector<std::string> values;
  std::map<std::pair<int, std::int64_t>, std::vector<std::int64_t>> order;
};

topic_content read_output(const std::string& bootstrap, const std::string& topic) {
  topic_content c;
  for (auto& m : read_topic(bootstrap, topic, true)) {
    auto t = must(codec::from_json_line<account_total>(m.value));
    c.order[{m.partition, t.account}].push_back(t.id);
    c.values.push_back(m.value);
  }
  std::sort(c.values.begin(), c.values.end());
  return c;
}

/// The running totals after each payment, sorted by payment: an account's payments stay in
/// one input partition, so each total is fixed whatever runs where.
std::vector<std::tuple<std::int64_t, std::int64_t, std::int64_t>> expected(int n) {
  std::map<std::int64_t, std::int64_t> totals;
  std::vector<std::tuple<std::int64_t, std::int64_t, std::int64_t>> out;
  for (int i = 0; i < n; ++i) {
    auto p = make_payment(i);
    out.emplace_back(p.id, p.account, totals[p.account] += p.cents);
  }
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(kafka_cluster)

BOOST_AUTO_TEST_CASE(two_and_three_nodes_commit_exactly_the_one_process_output) {
  mock_fixture kafka;
  const int n = payments();
  must(kafka.cluster.create_topic("payments", in_partitions));
  std::vector<std::string> values;
  for (int i = 0; i < n; ++i)
    values.push_back(codec::to_json_line(make_payment(i)));
  produce_all(kafka.bootstrap, "payments", values,
              [](std::size_t i) { return int(make_payment(int(i)).account % in_partitions); });

  sluice::test::temp_dir tmp;
  // Parallelism 3 everywhere: on 3 nodes each node runs one instance of every chain, on 2
  // the instances split 2 and 1; the keyed hop crosses nodes either way.
  const auto pipeline = [&](const std::string& out) {
    must(kafka.cluster.create_topic(out, out_partitions));
    return std::vector<std::string>{SLUICE_KAFKA_PIPELINE_BIN, "--bootstrap", kafka.bootstrap,
                                    "--input", "payments", "--output", out,
                                    "--transactional-id-prefix", out, "--group", out,
                                    "--checkpoint-dir", (tmp.path / ("cp-" + out)).string(),
                                    "--checkpoint-interval", "100ms", "--parallelism", "3",
                                    "--bounded"};
  };

  const auto alone = sluice::test::run_to_exit(pipeline("alone"));
  BOOST_REQUIRE_MESSAGE(alone.exit_code == 0, alone.err);
  const auto reference = read_output(kafka.bootstrap, "alone");
  { // the one-process run itself is right: one total per payment, the expected ones
    std::vector<std::tuple<std::int64_t, std::int64_t, std::int64_t>> got;
    for (auto& v : reference.values) {
      auto t = must(codec::from_json_line<account_total>(v));
      got.emplace_back(t.id, t.account, t.total_cents);
    }
    std::sort(got.begin(), got.end());
    BOOST_REQUIRE_EQUAL(got.size(), std::size_t(n));
    BOOST_REQUIRE(got == expected(n));
  }

  for (int nodes : {2, 3}) {
    BOOST_TEST_CONTEXT(nodes << " nodes") {
      const auto out = "nodes-" + std::to_string(nodes);
      const auto dir = tmp.path / out;
      fs::create_directories(dir);
      const auto file = cluster_file(dir, nodes);
      cluster_nodes c;
      c.logs = dir;
      const auto args = pipeline(out);
      for (int node = 0; node < nodes; ++node)
        c.args.push_back(with(args, {"--cluster", file.string(), "--node", std::to_string(node)}));
      const bool finished = c.run_all(120s);
      BOOST_REQUIRE_MESSAGE(finished, "the cluster did not finish" << log_tails(dir, c.args.size()));
      BOOST_TEST(c.restarts == 0);
      const auto got = read_output(kafka.bootstrap, out);
      BOOST_TEST(got.values.size() == reference.values.size());
      BOOST_TEST(got.values == reference.values); // the same records, each once
      BOOST_TEST(got.order == reference.order);   // in the same partitions, in order
      if (got.values != reference.values)
        BOOST_TEST_MESSAGE(log_tails(dir, c.args.size()));
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
