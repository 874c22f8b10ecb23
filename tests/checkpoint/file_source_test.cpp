// The file source across restores, as whole jobs: files -> rebalance -> map (a gate) ->
// transactional file sink. Runs cancelled at seeded random points and restored with the
// source at another parallelism, or with the input directory spelled another way, commit
// every input line exactly once, as one uninterrupted run does; a restore on another input
// directory fails naming both directories and commits nothing.
#include <boost/test/unit_test.hpp>

#include "sluice/tests/checkpoint/job_helpers.hpp"

#include <random>
#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::ckpt;

namespace {

constexpr int file_count = 12;
constexpr int lines_per_file = 400;

/// `file_count` files of `lines_per_file` readings: key = file, value = line.
std::vector<reading> write_inputs(const fs::path& dir) {
  std::vector<reading> all;
  for (int f = 0; f < file_count; ++f) {
    std::vector<reading> rows;
    for (int i = 0; i < lines_per_file; ++i)
      rows.push_back({f, i, at_ms(f * 1'000'000 + i)});
    char name[16];
    std::snprintf(name, sizeof name, "%03d.jsonl", f);
    drop_file(dir, name, rows);
    all.insert(all.end(), rows.begin(), rows.end());
  }
  return all;
}

struct copy_job {
  fs::path input;  ///< as this run spells it
  fs::path output; ///< the transactional file sink's directory
  fs::path checkpoints{};
  int source_parallelism = 1;
  std::shared_ptr<gate> hold{};
  std::function<void(const char*, std::int64_t)> sync_point{};

  job_options options() const {
    job_options o;
    o.name = "file-copy";
    o.parallelism = 2; // the map and the sink
    o.trigger = triggers::continuous(1h); // only a source's last barrier is a checkpoint
    o.checkpoints.dir = checkpoints;
    o.checkpoints.interval = 1h;
    o.checkpoints.restart = restart_strategy::none();
    o.runtime.batch_size = 16;
    o.runtime.threads = 4; // a gate blocks one worker
    o.runtime.sync_point = sync_point;
    return o;
  }

  void build(job& j) const {
    auto g = hold;
    j.from(sources::file<reading>{{.path = input}})
      .name("files")
      .parallelism(source_parallelism)
      .rebalance()
      .map([g](const reading& r) {
        if (g)
          g->pass();
        return r;
      })
      .name("hold")
      .sink_to(sinks::file<reading>{{.path = output, .transactional = true}})
      .name("out");
  }

  result<job_result> run() const {
    job j{options()};
    build(j);
    return j.run();
  }

  /// Runs until the gate holds, cancels, waits until a task snapshotted the cancel's
  /// checkpoint, then opens the gate (`cancel_at_gate`).
  job_result run_cancelled(sync_log& log) const {
    job j{options()};
    build(j);
    return cancel_at_gate(j, hold, &log);
  }
};

/// One run per entry of `inputs`/`parallelisms`, on one checkpoint directory: every run but
/// the last is cancelled once its gate was passed a seeded random number of times; the last
/// runs to the end. The committed rows must be the input, each once.
void run_restored_sequence(const std::vector<fs::path>& inputs, const std::vector<int>& parallelisms,
                           const std::vector<reading>& all, std::uint64_t seed) {
  BOOST_REQUIRE_EQUAL(inputs.size(), parallelisms.size());
  temp_dir dir;
  sync_log log;
  std::mt19937_64 rng{seed};
  copy_job spec{inputs[0], dir.path / "out", dir.path / "ckpt"};
  spec.sync_point = log.callback();
  std::size_t committed = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const bool last = i + 1 == inputs.size();
    BOOST_TEST_CONTEXT("run " << i + 1 << ": source parallelism " << parallelisms[i] << ", input '"
                              << inputs[i].string() << "', seed " << seed) {
      spec.input = inputs[i];
      spec.source_parallelism = parallelisms[i];
      const auto remaining = committed < all.size() ? all.size() - committed : 0;
      spec.hold = last ? nullptr
                       : std::make_shared<gate>(1 + rng() % std::max<std::size_t>(remaining / 3, 1));
      const auto r = last ? require_ok(spec.run()) : spec.run_cancelled(log);
      BOOST_TEST(r.cancelled == !last);
      BOOST_TEST((r.restored_from.has_value() == (i > 0)));
      const auto now = read_committed<reading>(spec.output).size();
      if (!last)
        BOOST_TEST(now < all.size(), "run " << i + 1 << " stopped midway");
      BOOST_TEST(now >= committed);
      committed = now;
      BOOST_TEST(hidden_files(spec.output).empty());
    }
  }
  const auto got = sorted(read_committed<reading>(spec.output));
  std::size_t twice = 0;
  for (std::size_t k = 1; k < got.size(); ++k)
    twice += got[k] == got[k - 1] ? 1 : 0;
  BOOST_TEST(twice == 0u, twice << " rows committed twice");
  BOOST_TEST(got.size() == all.size());
  BOOST_TEST((got == sorted(all)), "every input line exactly once");
}

} // namespace

BOOST_AUTO_TEST_SUITE(file_source_checkpoint)

BOOST_AUTO_TEST_CASE(an_uninterrupted_run_copies_every_line_once) {
  temp_dir dir;
  const auto all = write_inputs(dir.path / "in");
  for (int p : {1, 3}) {
    BOOST_TEST_CONTEXT("source parallelism " << p) {
      copy_job spec{dir.path / "in", dir.path / ("out" + std::to_string(p))};
      spec.source_parallelism = p;
      require_ok(spec.run());
      BOOST_TEST((sorted(read_committed<reading>(spec.output)) == sorted(all)));
    }
  }
}

BOOST_AUTO_TEST_CASE(restored_at_parallelism_2_then_3_then_1_every_line_once) {
  temp_dir in;
  const auto all = write_inputs(in.path);
  for (std::uint64_t seed : {1, 2, 3})
    run_restored_sequence(std::vector<fs::path>(4, in.path), {1, 2, 3, 1}, all, seed);
  run_restored_sequence(std::vector<fs::path>(3, in.path), {3, 1, 2}, all, 4);
}

BOOST_AUTO_TEST_CASE(restarted_with_the_input_spelled_differently_every_line_once) {
  temp_dir tmp;
  const auto input = tmp.path / "in";
  const auto all = write_inputs(input);
  fs::create_directory_symlink(input, tmp.path / "link");
  const std::vector<fs::path> spellings{input, fs::relative(input), input.string() + "/",
                                        tmp.path / "link", input};
  for (std::uint64_t seed : {5, 6})
    run_restored_sequence(spellings, {1, 1, 1, 1, 1}, all, seed);
  // Spelled differently and rescaled at once.
  run_restored_sequence(spellings, {2, 1, 3, 2, 1}, all, 7);
}

BOOST_AUTO_TEST_CASE(a_restore_on_another_input_directory_fails_naming_both) {
  temp_dir tmp;
  write_inputs(tmp.path / "a");
  write_inputs(tmp.path / "b");
  sync_log log;
  copy_job spec{tmp.path / "a", tmp.path / "out", tmp.path / "ckpt"};
  spec.sync_point = log.callback();
  spec.hold = std::make_shared<gate>(500);
  BOOST_TEST(spec.run_cancelled(log).cancelled);
  const auto before = listing(spec.output);

  spec.input = tmp.path / "b";
  spec.hold = nullptr;
  auto e = require_error(spec.run());
  BOOST_TEST_MESSAGE(e.message);
  BOOST_TEST(mentions(e.message, fs::canonical(tmp.path / "a").string()), e.message);
  BOOST_TEST(mentions(e.message, fs::canonical(tmp.path / "b").string()), e.message);
  BOOST_TEST(mentions(e.message, "files"), "names the operator: " << e.message);
  BOOST_TEST((listing(spec.output) == before), "nothing was committed");
}

BOOST_AUTO_TEST_SUITE_END()
