// Exactly-once alerts under SIGKILL: the fraud_detection sample runs as a child process on
// the bounded generator with a checkpoint directory and the exactly-once file sink, and is
// killed at seeded random moments (after a random time, or at a chosen step of the
// checkpoint protocol), then restarted with the same arguments (and another parallelism)
// until it finishes. The committed alerts must equal the generator's ground truth: no
// alert lost, none duplicated. Mirrors tests/recovery/crash_test.cpp.
#define BOOST_TEST_MODULE fraud_sample
#include <boost/test/unit_test.hpp>

#include "sluice/samples/fraud_detection/generator.hpp"
#include "sluice/samples/fraud_detection/summary.hpp"
#include "sluice/tests/common/temp_dir.hpp"
#include "sluice/tests/fraud/fraud_test_helpers.hpp"

#include "sluice/tests/fraud/sample_process.hpp"

#include <chrono>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using namespace sluice::fraud;
using sluice::fraud::test::run_sample;

namespace {

constexpr std::uint64_t transactions = 30'000;

std::vector<std::string> sample_args(const fs::path& out, const fs::path& checkpoints,
                                     std::uint64_t seed, int parallelism) {
  return {SLUICE_FRAUD_BIN, "--seed", std::to_string(seed), "--count",
          std::to_string(transactions), "--rate", "20000", "--duration", "0", "--sink", "file",
          "--output", out.string(), "--checkpoint-dir", checkpoints.string(),
          "--checkpoint-interval", "20ms", "--parallelism", std::to_string(parallelism)};
}

void crash_until_done(std::uint64_t seed) {
  sluice::test::temp_dir tmp;
  auto gen = transaction_generator::make({.seed = seed});
  BOOST_REQUIRE(gen.has_value());
  const auto truth = gen->ground_truth(0, transactions);
  const std::set<expected_alert> want(truth.begin(), truth.end());
  BOOST_REQUIRE_GT(want.size(), 50u);

  std::mt19937_64 rng{seed};
  const char* steps[] = {"snapshot", "snapshotted", "completed", "commit"};
  constexpr int target = 10;
  int kills = 0;
  bool finished = false;
  for (int attempt = 0; attempt < 3 * target && !finished; ++attempt) {
    const auto args = sample_args(tmp.path / "out", tmp.path / "cp", seed,
                                  1 + static_cast<int>(rng() % 4));
    std::string crash_at;
    std::optional<std::chrono::milliseconds> after;
    if (kills < target) {
      if (rng() % 2 == 0) // at a step of the checkpoint protocol
        crash_at = std::string{steps[rng() % 4]} + ":" + std::to_string(1 + rng() % 8);
      else // while processing, at a random moment
        after = std::chrono::milliseconds{100 + rng() % 400};
    }
    const int status = run_sample(args, crash_at, after);
    if (WIFEXITED(status)) {
      BOOST_REQUIRE_MESSAGE(WEXITSTATUS(status) == 0, "the sample failed on attempt " << attempt);
      finished = kills >= target;
    } else {
      BOOST_REQUIRE_MESSAGE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                            "attempt " << attempt << " ended by signal " << WTERMSIG(status));
      ++kills;
    }
  }
  BOOST_REQUIRE(finished);
  BOOST_TEST_MESSAGE("seed " << seed << ": " << kills << " kills");
  const auto alerts = sluice::fraud::test::committed_alerts(tmp.path / "out");
  std::set<std::string> ids;
  for (const auto& a : alerts)
    BOOST_TEST(ids.insert(a.alert_id).second, "duplicate alert " << a.alert_id);
  BOOST_TEST(alerts.size() == want.size());
  BOOST_TEST((identities(alerts) == want), "committed alerts differ from the ground truth");
}

} // namespace

BOOST_AUTO_TEST_SUITE(kill9)

BOOST_AUTO_TEST_CASE(a_killed_and_restarted_sample_loses_and_duplicates_no_alert) {
  BOOST_REQUIRE(sluice::fraud::test::rules_can_checkpoint());
  for (std::uint64_t seed : {1, 2})
    crash_until_done(seed);
}

BOOST_AUTO_TEST_SUITE_END()
