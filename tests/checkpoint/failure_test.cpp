// Checkpoint failures other than timeouts, and the pause between checkpoints, end to end.
//
// A store that cannot take a task's snapshot declines that checkpoint (Flink's tolerable
// checkpoint failures): the job goes on, the failure is counted and named, and the next
// checkpoint stands on its own. The store error is real, not simulated: the directory the
// pieces go to is replaced by a plain file while the checkpoint starts, so creating a piece
// fails with "Not a directory" (even for root, which ignores permissions). A manual clock
// and a generator paced by it decide when each checkpoint starts.
#include <boost/test/unit_test.hpp>

#include "job_helpers.hpp"

#include <fstream>
#include <mutex>
#include <optional>
#include <set>

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::ckpt;

namespace {

/// Breaks the checkpoint store's piece directory for the checkpoints in `broken` (from the
/// first task's "snapshot" step of each) and mends it when any other checkpoint starts. Only
/// one checkpoint is in flight at a time, and it ends only after all its writes, so the
/// directory is broken exactly while the chosen checkpoints write.
class store_breaker {
public:
  store_breaker(fs::path dir, std::set<std::int64_t> broken)
      : pieces_(dir / "pieces"), away_(dir / "pieces.away"), broken_(std::move(broken)) {}

  std::function<void(const char*, std::int64_t)> callback(sync_log& log) {
    return [this, logged = log.callback()](const char* step, std::int64_t id) {
      if (std::string_view{step} == "snapshot") {
        std::lock_guard guard{mtx_};
        if (id != current_) {
          current_ = id;
          set_broken(broken_.count(id) > 0);
        }
      }
      logged(step, id);
    };
  }

private:
  void set_broken(bool broken) {
    if (broken == is_broken_)
      return;
    if (broken) {
      fs::rename(pieces_, away_);
      std::ofstream{pieces_} << "not a directory\n";
    } else {
      fs::remove(pieces_);
      fs::rename(away_, pieces_);
    }
    is_broken_ = broken;
  }

  fs::path pieces_, away_;
  std::set<std::int64_t> broken_;
  std::mutex mtx_;
  std::int64_t current_ = -1;
  bool is_broken_ = false;
};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

BOOST_AUTO_TEST_SUITE(checkpoint_failures)

BOOST_AUTO_TEST_CASE(a_store_error_declines_the_checkpoint_and_the_next_one_stands_alone) {
  paced_job p;
  store_breaker breaker{p.spec.checkpoints, {1, 3}};
  p.spec.sync_point = breaker.callback(p.log);
  {
    auto exec = p.start(p.options(1));
    // Checkpoints 0 to 4: 1 and 3 fail, each followed by one that completes, so no more
    // than one fails in a row and one is tolerated.
    for (int i = 0; i < 5; ++i)
      BOOST_REQUIRE_MESSAGE(p.next_checkpoint(*exec), "checkpoint " << i << " never ended");
    const auto s = exec->snapshot();
    BOOST_TEST(s.checkpoint_failures == 2);
    BOOST_TEST(s.state == "running", "the job goes on: " << s.state);
    BOOST_TEST(s.restarts == 0, "a declined checkpoint is not a task failure");
    const auto failure = s.last_failure.value_or("");
    BOOST_TEST(contains(failure, "checkpoint 3"), failure);
    BOOST_TEST(contains(failure, "could not store its snapshot"), failure);
    BOOST_TEST(contains(failure, (p.spec.checkpoints / "pieces").string()), failure);
    BOOST_TEST((p.log.ids("completed") == std::vector<std::int64_t>{0, 2, 4}));
    BOOST_TEST(p.log.count("snapshotted") > 0u);
    exec->cancel();
    auto r = require_ok(exec->wait());
    BOOST_TEST(r.cancelled);
    BOOST_TEST(r.restarts == 0);
  }
  // The second run restores the latest checkpoint. Had a checkpoint after a declined one
  // referred to pieces of the declined one (never stored) or, for unchanged key groups, to
  // older ones, the restore would fail or resume from stale sums.
  auto r = require_ok(p.unpaced().run());
  BOOST_REQUIRE(r.restored_from.has_value());
  BOOST_TEST(*r.restored_from >= 4);
  BOOST_TEST(r.restarts == 0);
  expect_every_sum_once(p.spec);
  expect_uninterrupted_windows(p.spec);
}

BOOST_AUTO_TEST_CASE(more_store_errors_in_a_row_than_tolerated_fail_the_job_naming_them) {
  paced_job p;
  store_breaker breaker{p.spec.checkpoints, {1, 2}};
  p.spec.sync_point = breaker.callback(p.log);
  auto exec = p.start(p.options(1));
  BOOST_REQUIRE(p.next_checkpoint(*exec));
  BOOST_REQUIRE(p.next_checkpoint(*exec));
  BOOST_TEST(!exec->await_termination(std::chrono::nanoseconds{0}), "one failure is tolerated");
  p.clk->advance(1s);
  auto err = require_error(exec->wait());
  BOOST_TEST(err.code == error_code::checkpoint_failed);
  BOOST_TEST(contains(err.message, "checkpoint 2"), err.message);
  BOOST_TEST(contains(err.message, "2 checkpoint failures in a row"), err.message);
  BOOST_TEST(contains(err.message, "could not store its snapshot"), err.message);
  BOOST_TEST(contains(err.message, "Not a directory"), err.message);
  BOOST_TEST((p.log.ids("completed") == std::vector<std::int64_t>{0}));
}

BOOST_AUTO_TEST_CASE(the_minimum_pause_counts_from_the_end_of_the_last_checkpoint) {
  // Epochs end every second; a checkpoint every second too, but at least 3 s after the
  // previous one ended. Checkpoint 0 (epoch 0, ending at 1 s) completes at once on the
  // stopped clock, so epochs 1 and 2 are no checkpoints and epoch 3 (ending at 4 s) is.
  paced_job p;
  std::mutex mtx;
  std::condition_variable cv;
  std::int64_t last_epoch = -1;
  p.spec.sync_point = p.log.callback();
  auto o = p.options(0);
  o.checkpoints.min_pause = 3s;
  o.progress_interval = 0ms;
  o.on_progress = [&](const query_progress& q) {
    {
      std::lock_guard guard{mtx};
      last_epoch = std::max(last_epoch, q.batch_id);
    }
    cv.notify_all();
  };
  auto exec = p.start(o);
  auto epoch_ended = [&](std::int64_t epoch) {
    std::unique_lock lk{mtx};
    return cv.wait_for(lk, safety_timeout, [&] { return last_epoch >= epoch; });
  };
  for (std::int64_t epoch = 0; epoch < 4; ++epoch) {
    p.clk->advance(1s);
    BOOST_REQUIRE_MESSAGE(epoch_ended(epoch), "epoch " << epoch << " never ended");
  }
  BOOST_REQUIRE(p.log.wait_for("completed", 2));
  BOOST_TEST((p.log.ids("completed") == std::vector<std::int64_t>{0, 3}));
  const auto snapshots = p.log.ids("snapshot");
  BOOST_TEST((std::set<std::int64_t>(snapshots.begin(), snapshots.end()) ==
              std::set<std::int64_t>{0, 3}));
  exec->cancel();
  BOOST_TEST(require_ok(exec->wait()).cancelled);
}

BOOST_AUTO_TEST_SUITE_END()
