// Exactly-once under SIGKILL: the windowed_wordcount sample runs as a child process with a
// checkpoint directory and the exactly-once file sink, and is killed at seeded random
// moments (after a random time, or at a chosen step of the checkpoint protocol: while a
// task snapshots, after its pieces are written, after the checkpoint's metadata is durable
// but before any sink committed, while sinks commit). It is restarted with the same
// arguments (or with the input directory spelled another way) until it finishes. The
// committed output must equal an uninterrupted run's: no row missing, none duplicated.
// Micro-batch (available-now) and continuous mode.
#define BOOST_TEST_MODULE recovery
#include <boost/test/unit_test.hpp>

#include "sluice/tests/common/child_process.hpp"
#include "sluice/tests/common/temp_dir.hpp"
#include "sluice/tests/recovery/wordcount_input.hpp"

#include "sluice/sinks/file_manifest.hpp"

#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;

namespace {

using sluice::test::committed_rows;
using sluice::test::run_child;
using sluice::test::write_input;

std::vector<std::string> sample_args(const fs::path& input, const fs::path& out,
                                     const fs::path& checkpoints, const std::string& trigger) {
  std::vector<std::string> a{SLUICE_WORDCOUNT_BIN, "--input", input.string(), "--output-dir",
                             out.string(), "--checkpoint-dir", checkpoints.string(),
                             "--checkpoint-interval", "20ms", "--window", "10m", "--slide", "5m",
                             "--watermark", "5m", "--output-mode", "append", "--trigger", trigger,
                             "--max-files-per-trigger", "1", "--bounded"};
  return a;
}

/// How a restarted run spells the input directory.
enum class spelling { same, varied };

/// The input directory as attempt `attempt` spells it: always `input`, or in turn absolute,
/// relative to the working directory, with a trailing slash and through a symbolic link.
fs::path spelled(const fs::path& input, spelling how, int attempt) {
  if (how == spelling::same)
    return input;
  switch (attempt % 4) {
    case 0:
      return input;
    case 1:
      return fs::relative(input);
    case 2:
      return input.string() + "/";
    default:
      return input.parent_path() / "in-link";
  }
}

/// `parallelisms`: the restarts run with `--parallelism` taken from it in turn (empty: 1).
void crash_until_done(const std::string& trigger, std::uint64_t seed,
                      spelling how = spelling::same, const std::vector<int>& parallelisms = {}) {
  sluice::test::temp_dir tmp;
  const auto input = tmp.path / "in";
  write_input(input);
  fs::create_directory_symlink(input, tmp.path / "in-link");

  const auto reference = [&] {
    const auto status = run_child(sample_args(input, tmp.path / "ref", tmp.path / "ref-cp", trigger), "", {});
    BOOST_REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return committed_rows(tmp.path / "ref");
  }();
  BOOST_REQUIRE_GT(reference.size(), 100u);

  std::mt19937_64 rng{seed};
  const char* steps[] = {"snapshot", "snapshotted", "completed", "commit"};
  // Kill it `target` times (a run that ends before its kill also counts as an attempt),
  // then let it run to the end.
  constexpr int target = 10;
  int kills = 0;
  bool finished = false;
  for (int attempt = 0; attempt < 3 * target && !finished; ++attempt) {
    std::string crash_at;
    std::optional<std::chrono::milliseconds> after;
    if (kills < target) {
      if (rng() % 2 == 0) // at a step of the checkpoint protocol
        crash_at = std::string{steps[rng() % 4]} + ":" + std::to_string(1 + rng() % 8);
      else // while processing, at a random moment
        after = std::chrono::milliseconds{rng() % 60};
    }
    auto args =
      sample_args(spelled(input, how, attempt), tmp.path / "out", tmp.path / "cp", trigger);
    if (!parallelisms.empty()) {
      args.push_back("--parallelism");
      args.push_back(std::to_string(parallelisms[static_cast<std::size_t>(attempt) % parallelisms.size()]));
    }
    const int status = run_child(args, crash_at, after);
    if (WIFEXITED(status)) {
      BOOST_REQUIRE_MESSAGE(WEXITSTATUS(status) == 0, "the sample failed on attempt " << attempt);
      // A run ends before its kill only when the input is consumed; restarting then must
      // change nothing, so the loop goes on to the target number of kills.
      finished = kills >= target;
    } else {
      BOOST_REQUIRE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
      ++kills;
    }
  }
  BOOST_REQUIRE(finished);
  BOOST_TEST_MESSAGE(trigger << " seed " << seed << ": " << kills << " kills");
  BOOST_TEST(kills >= target);
  const auto got = committed_rows(tmp.path / "out");
  BOOST_TEST(got.size() == reference.size());
  BOOST_TEST(got == reference, boost::test_tools::per_element());
}

} // namespace

BOOST_AUTO_TEST_SUITE(kill9)

BOOST_AUTO_TEST_CASE(micro_batch_available_now_loses_and_duplicates_nothing) {
  for (std::uint64_t seed : {1, 2, 3})
    crash_until_done("available-now", seed);
}

BOOST_AUTO_TEST_CASE(continuous_mode_loses_and_duplicates_nothing) {
  for (std::uint64_t seed : {4, 5, 6})
    crash_until_done("continuous:20ms", seed);
}

BOOST_AUTO_TEST_CASE(restarts_with_the_input_spelled_differently_lose_and_duplicate_nothing) {
  // Each restart spells the input directory another way (relative, trailing slash, symbolic
  // link): the checkpointed positions name files under the canonical input root, so no
  // file is read again.
  crash_until_done("available-now", 7, spelling::varied);
  crash_until_done("continuous:20ms", 8, spelling::varied);
}

BOOST_AUTO_TEST_CASE(restarts_at_another_parallelism_lose_and_duplicate_nothing) {
  // Each restart runs every operator, the file source included, at parallelism 1, 2 or 3:
  // the source merges the positions of every old instance.
  crash_until_done("available-now", 9, spelling::same, {1, 2, 3, 2});
  crash_until_done("continuous:20ms", 10, spelling::varied, {2, 3, 1});
}

BOOST_AUTO_TEST_SUITE_END()
