// The fraud-detection job of samples/fraud_detection as a whole: the generator and its
// ground truth, the complete job on the generator under seeded random parallelism and batch
// sizes (alerts must equal the ground truth exactly: every injected pattern detected, no
// false positive, no duplicate), the walkthrough replay, checkpoints and restarts, and the
// summary's arithmetic.
#define BOOST_TEST_MODULE fraud_job
#include <boost/test/unit_test.hpp>

#include "sluice/api/job.hpp"
#include "sluice/core/codec/json.hpp"
#include "sluice/samples/fraud_detection/alert_sink.hpp"
#include "sluice/samples/fraud_detection/generator.hpp"
#include "sluice/samples/fraud_detection/pipeline.hpp"
#include "sluice/samples/fraud_detection/summary.hpp"
#include "sluice/sinks/file.hpp"
#include "sluice/sinks/memory.hpp"
#include "sluice/tests/common/loopback.hpp"
#include "sluice/tests/common/temp_dir.hpp"
#include "sluice/tests/engine/test_helpers.hpp"
#include "sluice/tests/fraud/fraud_test_helpers.hpp"

#include <algorithm>
#include <map>
#include <numeric>
#include <ostream>
#include <random>
#include <set>

using namespace sluice;
using namespace sluice::fraud;
using namespace sluice::test;
using sluice::fraud::test::committed_alerts;
using sluice::test::loopback_cluster;

namespace sluice::fraud {
inline std::ostream& operator<<(std::ostream& os, const expected_alert& e) {
  os << rule_name(e.rule) << "[";
  for (std::size_t i = 0; i < e.txn_ids.size(); ++i)
    os << (i ? "," : "") << e.txn_ids[i];
  return os << "]";
}
} // namespace sluice::fraud

namespace {

transaction_generator make_generator(generator_options o = {}, generator_rules r = {}) {
  auto g = transaction_generator::make(o, r);
  BOOST_REQUIRE_MESSAGE(g.has_value(), error_text(g));
  return *g;
}

std::set<expected_alert> only(const std::vector<expected_alert>& truth,
                              const std::vector<rule_kind>& rules) {
  std::set<expected_alert> out;
  for (auto& e : truth)
    if (std::find(rules.begin(), rules.end(), e.rule) != rules.end())
      out.insert(e);
  return out;
}

/// One run of the whole job on the generator.
struct job_setup {
  std::uint64_t seed = 42;
  std::uint64_t count = 30'000;
  int parallelism = 1;
  std::array<int, 4> rule_parallelism{};
  int sink_parallelism = 1;
  std::size_t batch = 1024;
  std::vector<rule_kind> rules{all_rules.begin(), all_rules.end()};
  time_mode time = time_mode::processing;
};

std::ostream& operator<<(std::ostream& os, const job_setup& s) {
  os << "seed " << s.seed << ", parallelism " << s.parallelism << ", rules";
  for (auto r : s.rules)
    os << ' ' << rule_name(r) << '/' << s.rule_parallelism[static_cast<std::size_t>(r)];
  return os << ", sink " << s.sink_parallelism << ", batch " << s.batch << ", "
            << (s.time == time_mode::event ? "event" : "processing") << " time";
}

struct job_outcome {
  std::vector<alert> alerts;       ///< as delivered, duplicates included
  std::vector<expected_alert> truth; ///< over what the source read
  std::size_t latencies = 0;
  job_result result;
};

rules_options rules_of(const job_setup& s) {
  rules_options r;
  r.enabled = s.rules;
  r.small_then_large.time = s.time;
  r.parallelism = s.rule_parallelism;
  return r;
}

/// Runs the job to the end of its bounded input. Processing time comes from a manual clock
/// that never moves, so small-then-large's one minute can never run out under a slow run.
/// With `nodes` > 1 the job runs as that many nodes of a cluster on loopback (each an
/// execution of its own in this process, sharing the sink's store); the outcome is node 0's.
job_outcome run_job(const job_setup& s, int nodes = 1) {
  const auto rules = rules_of(s);
  auto gen = make_generator({.seed = s.seed}, rules.for_generator());
  auto progress = std::make_shared<generator_progress>();
  auto out = sinks::collect<alert>{};
  auto stats = std::make_shared<alert_stats>();
  const auto clock = std::make_shared<manual_clock>();
  const auto cluster = nodes > 1 ? loopback_cluster(nodes) : std::vector<std::string>{};
  std::vector<job> jobs;
  for (int n = 0; n < nodes; ++n) {
    job_options opts{.name = "fraud-test", .parallelism = s.parallelism};
    opts.runtime.batch_size = s.batch;
    opts.runtime.processing_clock = clock;
    opts.runtime.cluster.nodes = cluster;
    opts.runtime.cluster.node = n;
    job& j = jobs.emplace_back(opts);
    auto txns = from_generator(j, gen, {.count = s.count}, progress);
    auto alerts = require_ok(detect_fraud(txns, rules));
    alerts.sink_to(measured(out, stats)).name("alerts").parallelism(s.sink_parallelism);
  }
  std::vector<std::unique_ptr<job_execution>> runs;
  for (auto& j : jobs)
    runs.push_back(require_ok(j.start()));
  job_outcome o;
  for (auto& r : runs) {
    BOOST_REQUIRE_MESSAGE(r->wait_for(std::chrono::minutes{2}), "the job did not finish");
    auto done = require_ok(r->wait());
    if (&r == &runs.front())
      o.result = std::move(done);
  }
  o.alerts = out.records();
  o.latencies = stats->latencies_us().size();
  BOOST_REQUIRE_EQUAL(progress->first.load(), 0u);
  BOOST_REQUIRE_EQUAL(progress->end.load(), s.count);
  o.truth = gen.ground_truth(0, s.count);
  return o;
}

/// The job's alerts must be exactly the ground truth of its rules, each once.
void require_exact(const job_outcome& o, const std::vector<rule_kind>& rules) {
  const auto want = only(o.truth, rules);
  BOOST_REQUIRE_GT(want.size(), 10u);
  const auto got = identities(o.alerts);
  std::vector<expected_alert> missed, false_positives;
  std::set_difference(want.begin(), want.end(), got.begin(), got.end(), std::back_inserter(missed));
  std::set_difference(got.begin(), got.end(), want.begin(), want.end(),
                      std::back_inserter(false_positives));
  BOOST_TEST(missed.empty(), "missed: " << missed.size() << (missed.empty() ? "" : ", first ")
                                        << (missed.empty() ? expected_alert{} : missed.front()));
  BOOST_TEST(false_positives.empty(),
             "false positives: " << false_positives.size()
                                 << (false_positives.empty() ? "" : ", first ")
                                 << (false_positives.empty() ? expected_alert{} : false_positives.front()));
  BOOST_TEST(o.alerts.size() == want.size(), "each alert exactly once");
  BOOST_TEST(o.latencies == o.alerts.size(), "the sink measured every alert");
  for (const auto& a : o.alerts)
    BOOST_TEST(a.alert_id == a.rule + "-" + std::to_string(a.txn_ids.back()));
}

} // namespace

// ---------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(cluster)

BOOST_AUTO_TEST_CASE(alerts_equal_the_ground_truth_on_two_and_three_nodes) {
  // Transactions cross nodes to the rules' key groups; alerts to the sink's instances.
  for (int nodes : {2, 3}) {
    job_setup s;
    s.seed = 9;
    s.parallelism = 3;
    s.sink_parallelism = 2;
    BOOST_TEST_CONTEXT(nodes << " nodes: " << s) {
      const auto o = run_job(s, nodes);
      require_exact(o, s.rules);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(generator)

BOOST_AUTO_TEST_CASE(transactions_are_a_function_of_seed_and_number) {
  auto a = make_generator({.seed = 7});
  auto b = make_generator({.seed = 7});
  auto c = make_generator({.seed = 8});
  std::vector<std::string> seq;
  for (std::uint64_t n = 0; n < 3000; ++n)
    seq.push_back(codec::to_json_line(a(n)));
  // Out of order, as after a restore: the same records.
  std::mt19937_64 rng{3};
  for (int i = 0; i < 2000; ++i) {
    const auto n = rng() % seq.size();
    BOOST_TEST_REQUIRE(codec::to_json_line(b(n)) == seq[n], "transaction " << n);
  }
  int differ = 0;
  for (std::uint64_t n = 0; n < seq.size(); ++n)
    differ += codec::to_json_line(c(n)) != seq[n];
  BOOST_TEST(differ > 2900, "another seed, other transactions");
  BOOST_TEST(a(12).txn_id == 12u);
}

BOOST_AUTO_TEST_CASE(ground_truth_patterns_have_the_shape_of_their_rule) {
  const generator_rules rules{};
  auto g = make_generator({}, rules);
  constexpr std::uint64_t n = 60'000;
  std::vector<transaction> t;
  for (std::uint64_t i = 0; i < n; ++i)
    t.push_back(g(i));
  std::map<rule_kind, int> per_rule;
  for (const auto& e : g.ground_truth(0, n)) {
    ++per_rule[e.rule];
    const auto& ids = e.txn_ids;
    const auto& last = t[ids.back()];
    for (auto id : ids)
      BOOST_TEST_REQUIRE(t[id].account_id == last.account_id);
    switch (e.rule) {
      case rule_kind::small_then_large:
        BOOST_TEST_REQUIRE(ids.size() == 2u);
        BOOST_TEST_REQUIRE(ids[1] == ids[0] + 1, "nothing in between");
        BOOST_TEST_REQUIRE(t[ids[0]].amount < 1.00);
        BOOST_TEST_REQUIRE(t[ids[1]].amount > 500.00);
        break;
      case rule_kind::velocity:
        BOOST_TEST_REQUIRE(ids.size() == rules.velocity.max_transactions + 1u);
        for (auto id : ids)
          BOOST_TEST_REQUIRE(t[id].card_id == last.card_id);
        BOOST_TEST_REQUIRE((last.timestamp - t[ids.front()].timestamp < rules.velocity.window));
        break;
      case rule_kind::impossible_travel: {
        BOOST_TEST_REQUIRE(ids.size() == 2u);
        const auto& a = t[ids[0]];
        const double km = distance_km(a.lat, a.lon, last.lat, last.lon);
        const double h = std::chrono::duration<double, std::ratio<3600>>(last.timestamp - a.timestamp).count();
        BOOST_TEST_REQUIRE(km / h > rules.impossible_travel.max_speed_kmh);
        break;
      }
      case rule_kind::spend_spike:
        BOOST_TEST_REQUIRE(ids.size() == 1u);
        BOOST_TEST_REQUIRE(last.amount > rules.spend_spike.factor * 500.0);
        BOOST_TEST_REQUIRE(last.card_id < 1'000'000'000'000ULL, "on one of the account's cards");
        break;
    }
  }
  for (auto r : all_rules)
    BOOST_TEST(per_rule[r] > 10, rule_name(r) << ": " << per_rule[r]);
}

BOOST_AUTO_TEST_CASE(background_traffic_stays_clear_of_rules_1_to_3) {
  // Every transaction outside an episode is checked against what rules 1-3 look for.
  const generator_rules rules{};
  auto g = make_generator({.seed = 11}, rules);
  constexpr std::uint64_t n = 80'000;
  std::map<std::uint64_t, std::vector<transaction>> by_card;
  std::uint64_t in_episodes = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    const auto t = g(i);
    const auto b = g.block_at(i);
    if (i < b.first_slot + b.length) {
      ++in_episodes;
      continue;
    }
    BOOST_TEST_REQUIRE(t.amount >= 1.00, "transaction " << i);
    BOOST_TEST_REQUIRE(t.amount <= 500.00, "transaction " << i);
    by_card[t.card_id].push_back(t);
  }
  BOOST_TEST(by_card.size() == 400u, "200 accounts x 2 cards");
  double fastest = 0;
  std::size_t busiest = 0;
  for (const auto& [card, ts] : by_card) {
    for (std::size_t i = 1; i < ts.size(); ++i) {
      const double h = std::chrono::duration<double, std::ratio<3600>>(ts[i].timestamp - ts[i - 1].timestamp).count();
      BOOST_TEST_REQUIRE(h > 0);
      fastest = std::max(fastest, distance_km(ts[i - 1].lat, ts[i - 1].lon, ts[i].lat, ts[i].lon) / h);
      std::size_t first = i;
      while (first > 0 && ts[i].timestamp - ts[first - 1].timestamp < rules.velocity.window)
        --first;
      busiest = std::max(busiest, i - first + 1);
    }
  }
  BOOST_TEST(fastest < 20.0, "background cards drift at about 12.6 km/h, got " << fastest);
  BOOST_TEST(busiest + 1 <= rules.velocity.max_transactions, "busiest card: " << busiest);
  const double share = static_cast<double>(in_episodes) / n;
  BOOST_TEST(share > 0.008);
  BOOST_TEST(share < 0.012);
}

BOOST_AUTO_TEST_CASE(ground_truth_of_ranges_adds_up) {
  auto g = make_generator({.seed = 5});
  const auto all = g.ground_truth(0, 50'000);
  std::vector<expected_alert> parts;
  std::uint64_t from = 0;
  for (std::uint64_t to : {1u, 777u, 778u, 20'000u, 50'000u}) {
    for (auto& e : g.ground_truth(from, to))
      parts.push_back(e);
    from = to;
  }
  BOOST_TEST(parts == all, boost::test_tools::per_element());
  BOOST_TEST(g.ground_truth(0, 0).empty());
}

BOOST_AUTO_TEST_CASE(options_that_cannot_keep_background_clean_are_rejected) {
  auto err = require_error(transaction_generator::make({.accounts = 1}));
  BOOST_TEST(err.code == error_code::invalid_option);
  BOOST_TEST(err.message.find("velocity") != std::string::npos, err.message);
  err = require_error(transaction_generator::make({}, {.spend_spike = {.factor = 1.2}}));
  BOOST_TEST(err.message.find("spend-spike") != std::string::npos, err.message);
  err = require_error(transaction_generator::make({.fraud_share = 0.5}));
  BOOST_TEST(err.message.find("fraud_share") != std::string::npos, err.message);
  err = require_error(transaction_generator::make({.interval = std::chrono::hours{1}}));
  BOOST_TEST(err.message.find("interval") != std::string::npos, err.message);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(whole_job)

BOOST_AUTO_TEST_CASE(alerts_equal_the_ground_truth_under_random_parallelism) {
  std::mt19937 rng{20261127u};
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>{lo, hi}(rng); };
  for (int iteration = 0; iteration < 8; ++iteration) {
    job_setup s;
    s.seed = static_cast<std::uint64_t>(pick(1, 1'000'000));
    s.parallelism = pick(1, 4);
    for (auto& p : s.rule_parallelism)
      p = pick(0, 4); // 0: the job's
    s.sink_parallelism = pick(1, 4);
    s.batch = static_cast<std::size_t>(pick(1, 512));
    s.time = pick(0, 1) ? time_mode::event : time_mode::processing;
    if (iteration >= 4) { // a random non-empty subset of the rules
      s.rules.clear();
      while (s.rules.empty())
        for (auto r : all_rules)
          if (pick(0, 1))
            s.rules.push_back(r);
    }
    BOOST_TEST_CONTEXT("iteration " << iteration << ": " << s) {
      const auto o = run_job(s);
      require_exact(o, s.rules);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_near_miss_heavy_seed_is_still_exact_at_parallelism_4) {
  // Many accounts, more cards, a higher fraud share: more episodes per account.
  job_options opts{.name = "fraud-test", .parallelism = 4};
  opts.runtime.processing_clock = std::make_shared<manual_clock>();
  opts.runtime.batch_size = 7;
  job j{opts};
  rules_options rules;
  const generator_options go{.seed = 99, .accounts = 500, .cards_per_account = 3, .fraud_share = 0.05};
  auto gen = make_generator(go, rules.for_generator());
  auto txns = from_generator(j, gen, {.count = 40'000}, nullptr);
  auto out = sinks::collect<alert>{};
  require_ok(detect_fraud(txns, rules)).sink_to(out).name("alerts");
  require_ok(j.run());
  job_outcome o;
  o.alerts = out.records();
  o.latencies = o.alerts.size();
  o.truth = gen.ground_truth(0, 40'000);
  require_exact(o, rules.enabled);
}

BOOST_AUTO_TEST_CASE(no_rule_is_an_error) {
  job j;
  auto txns = from_generator(j, make_generator(), {.count = 10}, nullptr);
  rules_options none;
  none.enabled.clear();
  auto err = require_error(detect_fraud(txns, none));
  BOOST_TEST(err.code == error_code::invalid_option);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(walkthrough_job)

BOOST_AUTO_TEST_CASE(one_alert_for_account_3_per_cycle) {
  auto rows = load_walkthrough(SLUICE_WALKTHROUGH_CSV);
  BOOST_REQUIRE_MESSAGE(rows.has_value(), error_text(rows));
  for (int parallelism : {1, 3}) {
    BOOST_TEST_CONTEXT("parallelism " << parallelism) {
      job j{{.name = "walkthrough", .parallelism = parallelism}};
      auto progress = std::make_shared<generator_progress>();
      // Faster than Flink's 10/s to keep the test short; gaps stay far below a minute.
      auto txns = from_walkthrough(j, *rows, 2000.0, 200, progress);
      auto out = sinks::collect<alert>{};
      require_ok(detect_fraud(txns, rules_options{})).sink_to(out).name("alerts");
      require_ok(j.run());
      auto alerts = out.records();
      std::sort(alerts.begin(), alerts.end(),
                [](const alert& a, const alert& b) { return a.txn_ids < b.txn_ids; });
      BOOST_REQUIRE_EQUAL(alerts.size(), 4u);
      for (std::uint64_t c = 0; c < 4; ++c) {
        BOOST_TEST(alerts[c].rule == "small-then-large");
        BOOST_TEST(alerts[c].account_id == 3u);
        BOOST_TEST((alerts[c].txn_ids == std::vector<std::uint64_t>{c * 50 + 22, c * 50 + 27}));
      }
      const auto truth = walkthrough_ground_truth(*rows, progress->first, progress->end);
      const auto got = identities(alerts);
      BOOST_TEST((got == std::set<expected_alert>(truth.begin(), truth.end())));
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(checkpointed)

BOOST_AUTO_TEST_CASE(alerts_equal_the_ground_truth_with_checkpoints_on) {
  std::mt19937 rng{77u};
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>{lo, hi}(rng); };
  for (int iteration = 0; iteration < 4; ++iteration) {
    sluice::test::temp_dir tmp;
    const int parallelism = pick(1, 4);
    const std::uint64_t seed = static_cast<std::uint64_t>(pick(1, 1000));
    BOOST_TEST_CONTEXT("iteration " << iteration << ": parallelism " << parallelism << ", seed " << seed) {
      job_options opts{.name = "fraud-test", .parallelism = parallelism};
      opts.checkpoints.dir = (tmp.path / "cp").string();
      opts.checkpoints.interval = std::chrono::milliseconds{10};
      opts.trigger = triggers::continuous(std::chrono::milliseconds{10}); // barriers as often
      job j{opts};
      rules_options rules;
      auto gen = make_generator({.seed = seed}, rules.for_generator());
      auto txns = from_generator(j, gen, {.count = 30'000, .rate = 100'000.0}, nullptr);
      auto out = sinks::collect<alert>{};
      require_ok(detect_fraud(txns, rules)).sink_to(out).name("alerts");
      const auto result = require_ok(j.run());
      BOOST_TEST(result.checkpoints_completed > 1);
      job_outcome o;
      o.alerts = out.records();
      o.latencies = o.alerts.size();
      o.truth = gen.ground_truth(0, 30'000);
      require_exact(o, rules.enabled);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_stop_and_restart_loses_and_duplicates_no_alert) {
  std::mt19937 rng{78u};
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>{lo, hi}(rng); };
  for (int iteration = 0; iteration < 3; ++iteration) {
    sluice::test::temp_dir tmp;
    constexpr std::uint64_t count = 40'000;
    rules_options rules;
    auto gen = make_generator({.seed = 3}, rules.for_generator());
    // Each run with another parallelism: state moves by key group.
    auto run = [&](int parallelism, std::optional<std::uint64_t> stop_after) {
      job_options opts{.name = "fraud-test", .parallelism = parallelism};
      opts.checkpoints.dir = (tmp.path / "cp").string();
      opts.checkpoints.interval = std::chrono::milliseconds{10};
      opts.trigger = triggers::continuous(std::chrono::milliseconds{10}); // barriers as often
      job j{opts};
      auto progress = std::make_shared<generator_progress>();
      auto txns = from_generator(j, gen, {.count = count, .rate = 40'000.0}, progress);
      require_ok(detect_fraud(txns, rules))
        .sink_to(sinks::file<alert>{{.path = tmp.path / "out", .prefix = "alerts", .transactional = true}})
        .name("alerts");
      auto exec = require_ok(j.start());
      if (stop_after)
        BOOST_REQUIRE(wait_until(*exec, [&] { return progress->end.load() >= *stop_after; }));
      if (stop_after)
        exec->cancel();
      return require_ok(exec->wait());
    };
    const auto stop = static_cast<std::uint64_t>(pick(5'000, 30'000));
    BOOST_TEST_CONTEXT("iteration " << iteration << ": stop after " << stop) {
      auto first = run(pick(1, 4), stop);
      BOOST_TEST(first.cancelled);
      auto second = run(pick(1, 4), std::nullopt);
      BOOST_TEST(second.restored_from.has_value(), "the second run resumes");
      const auto alerts = committed_alerts(tmp.path / "out");
      std::set<std::string> ids;
      for (auto& a : alerts)
        BOOST_TEST(ids.insert(a.alert_id).second, "duplicate " << a.alert_id);
      job_outcome o;
      o.alerts = alerts;
      o.latencies = alerts.size();
      o.truth = gen.ground_truth(0, count);
      require_exact(o, rules.enabled);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(summary)

BOOST_AUTO_TEST_CASE(percentiles_are_nearest_rank) {
  std::vector<std::int64_t> v(1000);
  std::iota(v.begin(), v.end(), 1);
  BOOST_TEST(percentile(v, 50) == 500);
  BOOST_TEST(percentile(v, 99) == 990);
  BOOST_TEST(percentile(v, 99.9) == 999);
  BOOST_TEST(percentile(v, 100) == 1000);
  BOOST_TEST(percentile(std::vector<std::int64_t>{7}, 99.9) == 7);
}

BOOST_AUTO_TEST_CASE(precision_and_recall_per_rule) {
  auto a = [](rule_kind r, std::vector<std::uint64_t> ids) {
    transaction t;
    t.txn_id = ids.back();
    return make_alert(r, t, std::move(ids), "");
  };
  const std::vector<alert> alerts{a(rule_kind::small_then_large, {1, 2}),
                                  a(rule_kind::small_then_large, {5, 6}),  // false positive
                                  a(rule_kind::velocity, {1, 2, 3, 4, 5, 6})};
  const std::vector<expected_alert> truth{{rule_kind::small_then_large, {1, 2}},
                                          {rule_kind::small_then_large, {8, 9}}, // missed
                                          {rule_kind::velocity, {1, 2, 3, 4, 5, 6}},
                                          {rule_kind::spend_spike, {4}}};        // missed
  const auto s = summarize({rule_kind::small_then_large, rule_kind::velocity, rule_kind::spend_spike},
                           alerts, truth, {30, 10, 20});
  BOOST_REQUIRE_EQUAL(s.rules.size(), 3u);
  BOOST_TEST(s.rules[0].alerts == 2u);
  BOOST_TEST(s.rules[0].expected == 2u);
  BOOST_TEST(s.rules[0].matched == 1u);
  BOOST_TEST(*s.rules[0].precision == 0.5);
  BOOST_TEST(*s.rules[0].recall == 0.5);
  BOOST_TEST(*s.rules[1].precision == 1.0);
  BOOST_TEST(*s.rules[1].recall == 1.0);
  BOOST_TEST(!s.rules[2].precision.has_value(), "no alerts: no precision");
  BOOST_TEST(*s.rules[2].recall == 0.0);
  BOOST_TEST(s.latency.count == 3u);
  BOOST_TEST(s.latency.p50 == 20);
  BOOST_TEST(s.latency.max == 30);
  const auto text = format_summary(s);
  BOOST_TEST(text.find("small-then-large") != std::string::npos, text);
  BOOST_TEST(text.find("p99.9 30 us") != std::string::npos, text);

  const auto none = summarize({rule_kind::velocity}, alerts, std::nullopt, {});
  BOOST_TEST(!none.rules[0].precision.has_value());
  BOOST_TEST(format_summary(none).find("no ground truth") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_alert_sink_measures_latency_and_counts_redeliveries_once) {
  auto inner = sinks::collect<alert>{};
  auto stats = std::make_shared<alert_stats>();
  auto desc = measured(inner, stats);
  require_ok(validate_sink(desc));
  auto s = desc.create(sink_context{});
  require_ok(s->open(sink_context{}));
  transaction t;
  t.txn_id = 9;
  t.ingested = std::chrono::steady_clock::now() - std::chrono::milliseconds{5};
  std::vector<alert> batch{make_alert(rule_kind::spend_spike, t, {9}, "x"),
                           make_alert(rule_kind::spend_spike, t, {9}, "x")};
  const auto before = std::chrono::system_clock::now();
  require_ok(s->write(batch));
  require_ok(s->close());
  const auto got = inner.records();
  BOOST_REQUIRE_EQUAL(got.size(), 2u);
  BOOST_TEST(got[0].latency_us >= 5000);
  BOOST_TEST(got[0].latency_us < 5'000'000);
  BOOST_TEST((got[0].detected_at.time_since_epoch() >=
              std::chrono::duration_cast<std::chrono::microseconds>(before.time_since_epoch())));
  BOOST_TEST(stats->alerts().size() == 1u);
  BOOST_TEST(stats->redelivered() == 1u);
  BOOST_TEST(stats->latencies_us().size() == 2u);
  // The codec form leaves the process-local ingest time out.
  const auto line = codec::to_json_line(got[0]);
  BOOST_TEST(line.find("ingest") == std::string::npos, line);
  BOOST_TEST(line.find("\"alert_id\":\"spend-spike-9\"") != std::string::npos, line);
}

BOOST_AUTO_TEST_SUITE_END()
