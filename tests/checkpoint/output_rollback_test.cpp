// A run that starts from a checkpoint older than output the file sink already committed:
// asked for (`restore_from`), the newer output is rolled back and written again exactly once;
// a fallback (the newest checkpoints are corrupt or lost) never duplicates it: it fails the
// job with `restore_conflict` naming the sink (not retried by the restart strategy), or rolls
// back when the sink's option allows, and a fallback is logged as a warning with its reason.
//
// The first run is paced by a manual clock (paced_job): one checkpoint per second of the
// clock, each committing rows of its own to both file sinks, then a cancel (one more
// checkpoint). The checkpoint ids and what each committed are thus fixed.
#include <boost/test/unit_test.hpp>

#include "job_helpers.hpp"

#include "sluice/core/log.hpp"

#include <spdlog/sinks/base_sink.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::ckpt;

namespace {

/// Runs `p` for `checkpoints` clock seconds (a checkpoint each), then cancels it (one more
/// checkpoint); returns the completed ids, oldest first. Every checkpoint is retained.
std::vector<std::int64_t> first_history(paced_job& p, int checkpoints) {
  p.spec.sync_point = p.log.callback();
  auto o = p.options(0);
  o.checkpoints.retained = 100;
  auto exec = p.start(o);
  for (int i = 0; i < checkpoints; ++i)
    BOOST_REQUIRE_MESSAGE(p.next_checkpoint(*exec), "checkpoint " << i << " never ended");
  exec->cancel();
  auto r = require_ok(exec->wait());
  BOOST_REQUIRE(r.cancelled);
  return p.log.ids("completed");
}

/// The log lines of the "sluice" logger while it lives (info and up).
class log_capture {
public:
  struct line {
    spdlog::level::level_enum level;
    std::string text;
  };
  log_capture() {
    auto& l = logging::get();
    old_level_ = l.level();
    l.sinks().push_back(sink_);
    l.set_level(spdlog::level::info);
  }
  ~log_capture() {
    auto& l = logging::get();
    auto& sinks = l.sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
    l.set_level(old_level_);
  }
  void clear() {
    std::lock_guard guard{sink_->mtx};
    sink_->lines.clear();
  }
  /// The first line that contains `part`.
  std::optional<line> find(const std::string& part) const {
    std::lock_guard guard{sink_->mtx};
    for (auto& l : sink_->lines)
      if (l.text.find(part) != std::string::npos)
        return l;
    return std::nullopt;
  }
  std::string text() const {
    std::lock_guard guard{sink_->mtx};
    std::string out;
    for (auto& l : sink_->lines)
      out += "\n  " + l.text;
    return out;
  }

private:
  struct collector final : spdlog::sinks::base_sink<std::mutex> {
    std::mutex mtx;
    std::vector<line> lines;
    void sink_it_(const spdlog::details::log_msg& m) override {
      std::lock_guard guard{mtx};
      lines.push_back({m.level, std::string{m.payload.data(), m.payload.size()}});
    }
    void flush_() override {}
  };
  std::shared_ptr<collector> sink_ = std::make_shared<collector>();
  spdlog::level::level_enum old_level_;
};

std::unique_ptr<log_capture> capture_log() { return std::make_unique<log_capture>(); }

/// Flips a byte in the middle of every piece file that checkpoint `id` wrote (the paced job
/// stores every piece in a file), so that it no longer verifies.
void damage_pieces(const fs::path& checkpoints, std::int64_t id) {
  int damaged = 0;
  for (auto& e : fs::directory_iterator{checkpoints / "pieces"}) {
    if (!e.path().filename().string().starts_with(id_text(id) + "-"))
      continue;
    std::fstream f{e.path(), std::ios::in | std::ios::out | std::ios::binary};
    const auto at = static_cast<std::streamoff>(fs::file_size(e.path()) / 2);
    f.seekg(at);
    char c = 0;
    f.get(c);
    f.seekp(at);
    f.put(static_cast<char>(c ^ 0x5a));
    ++damaged;
  }
  BOOST_REQUIRE_MESSAGE(damaged > 0, "checkpoint " << id << " has no piece file");
}

/// The checkpoints whose output a sink's directory shows.
std::set<std::int64_t> committed_ids(const fs::path& dir, const std::string& prefix = "part") {
  std::set<std::int64_t> out;
  for (auto& p : committed_parts(dir, prefix))
    out.insert(p.checkpoint);
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(output_rollback)

// Which epoch a paced record falls into is not fixed: the records a clock step allows race
// with that step's barrier. But record n is allowed only from second n / 20 on, so at least
// the records from 60 on (allowed at 4 s, after barrier 2 at 3 s) are committed after
// checkpoint 2, and the tests rely on no more than that.

BOOST_AUTO_TEST_CASE(restore_from_an_older_checkpoint_rolls_back_the_newer_output_and_replays_it_once) {
  paced_job p;
  BOOST_REQUIRE((first_history(p, 5) == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5}));
  const auto first = committed_ids(p.spec.totals);
  BOOST_REQUIRE(!first.empty());
  BOOST_REQUIRE_GE(*first.rbegin(), 4); // the replay's one checkpoint (3) cannot hide it

  // Restored from 2: the output after 2 belongs to the abandoned history.
  auto rest = p.unpaced();
  job j{[&] {
    auto o = rest.options();
    o.checkpoints.restore_from = 2;
    return o;
  }()};
  rest.build(j);
  auto r = require_ok(j.run());
  BOOST_REQUIRE(r.restored_from.has_value());
  BOOST_TEST(*r.restored_from == 2);

  // One final checkpoint (3) wrote the rest; nothing of the old history after 2 is left.
  const auto after = committed_ids(p.spec.totals);
  BOOST_TEST(after.count(3) == 1u);
  BOOST_TEST(*after.rbegin() == 3, "the manifest lists nothing after the replay's checkpoint 3");
  for (std::int64_t id = 4; id <= 5; ++id)
    BOOST_TEST(!fs::exists(p.spec.totals / ("part-0-" + std::to_string(id) + ".jsonl")),
               "the file of checkpoint " << id << " is removed, not just unlisted");
  expect_every_sum_once(p.spec);
  expect_uninterrupted_windows(p.spec);
}

BOOST_AUTO_TEST_CASE(a_silent_fallback_behind_committed_output_fails_naming_it_and_duplicates_nothing) {
  // The checkpoints after 2 are lost (their metadata deleted through the store's own API,
  // as a torn log tail loses them without a trace), so the next run finds checkpoint 2 while
  // the sinks committed output after it.
  paced_job p;
  BOOST_REQUIRE((first_history(p, 5) == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5}));
  {
    auto store = open_store(p.spec.checkpoints);
    BOOST_REQUIRE(store->discard_after(2).has_value());
  }
  const auto totals_before = listing(p.spec.totals);
  const auto windows_before = listing(p.spec.windows);
  for (int attempt = 0; attempt < 2; ++attempt) { // and it stays that way
    auto e = require_error(p.unpaced().run());
    BOOST_TEST((e.code == error_code::restore_conflict), e.to_string());
    BOOST_TEST((mentions(e.message, "file sink 'totals-out'") ||
                mentions(e.message, "file sink 'counts-out'")),
               "names the sink: " << e.message);
    BOOST_TEST((mentions(e.message, p.spec.totals.string()) ||
                mentions(e.message, p.spec.windows.string())),
               "names the directory: " << e.message);
    BOOST_TEST(mentions(e.message, "holds output committed for checkpoint"), e.message);
    BOOST_TEST(mentions(e.message, "starts from checkpoint 2"), e.message);
    BOOST_TEST(mentions(e.message, "restore_from = 2"), e.message);
    BOOST_TEST(mentions(e.message, "roll_back_on_fallback"), e.message);
    BOOST_TEST(!mentions(e.message, "restarts)"), "not retried by the restart strategy: " << e.message);
    BOOST_TEST((listing(p.spec.totals) == totals_before), "the output is untouched");
    BOOST_TEST((listing(p.spec.windows) == windows_before), "the output is untouched");
  }

  // Allowed by the sinks' option: the newer output is rolled back and written again once.
  auto rest = p.unpaced();
  rest.roll_back_on_fallback = true;
  auto r = require_ok(rest.run());
  BOOST_REQUIRE(r.restored_from.has_value());
  BOOST_TEST(*r.restored_from == 2);
  expect_every_sum_once(p.spec);
  expect_uninterrupted_windows(p.spec);
}

BOOST_AUTO_TEST_CASE(a_fallback_past_a_corrupt_checkpoint_is_a_warning_and_never_duplicates) {
  // Checkpoint 5's piece files are damaged: the run falls back to 4. Whether 5 (the cancel's
  // checkpoint) committed rows depends on the race above: if it did not, nothing is replayed
  // twice and the run goes on; if it did, the run fails with restore_conflict. Either way
  // no row is duplicated, and the fallback is logged as a warning naming checkpoint 5.
  paced_job p;
  BOOST_REQUIRE((first_history(p, 5) == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5}));
  const bool five_committed = committed_ids(p.spec.totals).count(5) > 0 ||
                              committed_ids(p.spec.windows, "part").count(5) > 0;
  damage_pieces(p.spec.checkpoints, 5);
  const auto log = capture_log();
  auto r = p.unpaced().run();
  const auto line = log->find("restored from checkpoint 4");
  BOOST_REQUIRE_MESSAGE(line, "no log line names the restore:" << log->text());
  BOOST_TEST((line->level == spdlog::level::warn), line->text);
  BOOST_TEST(mentions(line->text, "a fallback"), line->text);
  BOOST_TEST(mentions(line->text, "checkpoint 5"), "names the skipped one: " << line->text);
  if (five_committed) {
    BOOST_TEST_MESSAGE("checkpoint 5 committed rows: the fallback must fail");
    BOOST_REQUIRE(!r);
    BOOST_TEST((r.error().code == error_code::restore_conflict), r.error().to_string());
    BOOST_TEST(mentions(r.error().message, "starts from checkpoint 4"), r.error().message);
    return;
  }
  BOOST_REQUIRE_MESSAGE(r, error_text(r));
  BOOST_REQUIRE(r->restored_from.has_value());
  BOOST_TEST(*r->restored_from == 4);
  BOOST_TEST(r->skipped_checkpoints.size() == 1u);
  expect_every_sum_once(p.spec);
  expect_uninterrupted_windows(p.spec);
}

BOOST_AUTO_TEST_CASE(a_fallback_at_a_restart_within_the_run_fails_the_job_without_more_restarts) {
  // Checkpoints 0..4 complete and commit; then the checkpoints from the newest one that
  // committed rows on are damaged, and a task fails. The restart falls back behind committed
  // output: the job fails at once (restore_conflict is not retried), naming the sink,
  // instead of duplicating that output.
  paced_job p;
  p.spec.fail_next = std::make_shared<std::atomic<bool>>(false);
  p.spec.sync_point = p.log.callback();
  const auto log = capture_log();
  auto o = p.options(0);
  o.checkpoints.retained = 100;
  o.checkpoints.restart = restart_strategy::fixed(3, 10ms);
  auto exec = p.start(o);
  for (int i = 0; i < 5; ++i)
    BOOST_REQUIRE_MESSAGE(p.next_checkpoint(*exec), "checkpoint " << i << " never ended");
  // Sinks commit after a checkpoint completes, on their own tasks: wait for the records
  // from 60 on (see above), committed after checkpoint 2.
  std::int64_t newest = -1;
  BOOST_REQUIRE(wait_until(*exec, [&] {
    const auto ids = committed_ids(p.spec.totals);
    newest = ids.empty() ? -1 : *ids.rbegin();
    return newest >= 3;
  }));
  for (auto id = newest; id <= 4; ++id)
    damage_pieces(p.spec.checkpoints, id);
  p.spec.fail_next->store(true);
  p.clk->advance(500ms); // records, but no epoch end: no checkpoint 5
  auto e = require_error(exec->wait());
  const auto fell_back_to = "checkpoint " + std::to_string(newest - 1);
  BOOST_TEST((e.code == error_code::restore_conflict), e.to_string());
  BOOST_TEST(mentions(e.message, "starts from " + fell_back_to), e.message);
  BOOST_TEST(exec->snapshot().restarts == 1, "the restart that fell back, and no other");
  const auto line = log->find("restarting, restored from " + fell_back_to);
  BOOST_REQUIRE_MESSAGE(line, "no log line names the restart's fallback:" << log->text());
  BOOST_TEST((line->level == spdlog::level::warn), line->text);
  BOOST_TEST(mentions(line->text, "a fallback"), line->text);
  BOOST_TEST(mentions(line->text, "checkpoint " + std::to_string(newest)), line->text);
  // Each key's committed running sums are the start of its true sums: none twice, none
  // missing in between.
  const auto expected = expected_sums(p.spec.count);
  for (auto& [key, sums] : per_key(read_committed<reading>(p.spec.totals))) {
    const auto& all = expected.at(key);
    BOOST_TEST_CONTEXT("key " << key) {
      BOOST_REQUIRE_LE(sums.size(), all.size());
      BOOST_TEST((sums == std::vector<std::int64_t>(all.begin(), all.begin() + sums.size())));
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
