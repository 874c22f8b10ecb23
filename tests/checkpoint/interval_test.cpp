// The checkpoint interval is its own (Flink's `execution.checkpointing.interval`): in
// continuous mode a checkpoint due before the next epoch boundary starts an epoch of its
// own, so a 1 s interval under epochs of an hour still checkpoints every second. The clock
// is a manual clock: a checkpoint starts because the clock says so, not by chance.
#include <boost/test/unit_test.hpp>

#include "job_helpers.hpp"

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::ckpt;

BOOST_AUTO_TEST_SUITE(checkpoint_interval)

BOOST_AUTO_TEST_CASE(checkpoints_keep_their_interval_between_epoch_boundaries) {
  paced_job p;
  p.spec.epoch = 1h; // no epoch boundary while the test runs, but the job's end
  p.spec.checkpoint_interval = 1s;
  p.spec.sync_point = p.log.callback();
  auto exec = p.start(p.options(0));
  for (int i = 0; i < 3; ++i)
    BOOST_REQUIRE_MESSAGE(p.next_checkpoint(*exec),
                          "no checkpoint " << i << " one interval after the last");
  BOOST_TEST(p.log.count("completed") == 3u);
  BOOST_TEST(exec->snapshot().checkpoint_failures == 0);
  // Half an interval on: nothing is due yet.
  p.clk->advance(500ms);
  exec->cancel(); // its final barrier is a checkpoint of its own
  auto r = require_ok(exec->wait());
  BOOST_TEST(r.checkpoints_completed == 4);
}

BOOST_AUTO_TEST_CASE(the_first_checkpoint_waits_one_interval_after_the_start) {
  paced_job p;
  p.spec.epoch = 1h;
  p.spec.checkpoint_interval = 2s;
  p.spec.sync_point = p.log.callback();
  auto exec = p.start(p.options(0));
  p.clk->advance(1s);
  // The next second brings it: had the first been due at the start, it would have begun
  // before this advance, and the wait below would see two.
  BOOST_REQUIRE(p.next_checkpoint(*exec));
  BOOST_TEST(p.log.count("completed") == 1u);
  BOOST_TEST(p.log.ids("completed").front() >= 0);
  exec->cancel();
  require_ok(exec->wait());
}

BOOST_AUTO_TEST_SUITE_END()
