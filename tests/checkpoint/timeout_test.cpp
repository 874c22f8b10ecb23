// The checkpoint timeout (Flink's): a checkpoint held up past `checkpoints.timeout` is given
// up and counted as a failure, the next one completes, and the output stays exactly-once;
// with no failures tolerated the job fails naming the timeout. The clock is a manual clock
// and a gate holds one task, so the checkpoint is late by construction, not by chance.
#include <boost/test/unit_test.hpp>

#include "job_helpers.hpp"

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::ckpt;

namespace {

struct held_job {
  temp_dir dir;
  sync_log log;
  std::shared_ptr<manual_clock> clk = std::make_shared<manual_clock>();
  generator_job spec{dir.path / "totals", dir.path / "windows", 20'000};

  explicit held_job(int tolerable) : tolerable_(tolerable) {
    spec.checkpoints = dir.path / "ckpt";
    spec.sync_point = log.callback();
    spec.epoch = 1s;
    spec.checkpoint_interval = 1s;
    spec.hold = std::make_shared<gate>(3'000);
  }
  job_options options() const {
    auto o = spec.options();
    o.runtime.processing_clock = clk;
    o.checkpoints.timeout = 5s;
    o.checkpoints.tolerable_failures = tolerable_;
    return o;
  }

private:
  int tolerable_;
};

} // namespace

BOOST_AUTO_TEST_SUITE(checkpoint_timeout)

BOOST_AUTO_TEST_CASE(a_checkpoint_held_past_the_timeout_is_given_up_and_the_next_completes) {
  held_job h{1};
  job j{h.options()};
  h.spec.build(j);
  auto exec = require_ok(j.start());
  open_at_exit opener{h.spec.hold};
  BOOST_REQUIRE(h.spec.hold->wait_reached());
  // Checkpoint 0 starts; the held task cannot pass its barrier.
  h.clk->advance(1s);
  BOOST_REQUIRE(h.log.wait_for("snapshot")); // another task took it: it is on its way
  BOOST_TEST(exec->snapshot().checkpoint_failures == 0);
  h.clk->advance(5s); // past the timeout
  BOOST_REQUIRE(wait_until(*exec, [&] { return exec->snapshot().checkpoint_failures == 1; }));
  BOOST_TEST(!exec->await_termination(std::chrono::nanoseconds{0}), "one failure is tolerated");
  const auto failure = exec->snapshot().last_failure.value_or("");
  BOOST_TEST(failure.find("checkpoint timeout") != std::string::npos, failure);
  BOOST_TEST(h.log.count("completed") == 0u);
  h.spec.hold->release();
  // The late acknowledgements of checkpoint 0 complete nothing; the next checkpoint does.
  h.clk->advance(1s);
  auto r = require_ok(exec->wait());
  const auto completed = h.log.ids("completed");
  BOOST_REQUIRE(!completed.empty());
  BOOST_TEST((std::find(completed.begin(), completed.end(), 0) == completed.end()),
             "the expired checkpoint must never complete");
  BOOST_TEST(r.checkpoints_completed == static_cast<std::int64_t>(completed.size()));
  // Exactly-once: what the sinks pre-committed for the expired checkpoint was committed with
  // a later one; nothing is missing or repeated.
  expect_every_sum_once(h.spec);
}

BOOST_AUTO_TEST_CASE(with_no_failure_tolerated_the_job_fails_naming_the_timeout) {
  held_job h{0};
  job j{h.options()};
  h.spec.build(j);
  auto exec = require_ok(j.start());
  open_at_exit opener{h.spec.hold};
  BOOST_REQUIRE(h.spec.hold->wait_reached());
  h.clk->advance(1s);
  BOOST_REQUIRE(h.log.wait_for("snapshot"));
  h.clk->advance(5s);
  auto err = require_error(exec->wait());
  BOOST_TEST(err.code == error_code::checkpoint_failed);
  BOOST_TEST(err.message.find("checkpoint 0") != std::string::npos, err.message);
  BOOST_TEST(err.message.find("checkpoint timeout") != std::string::npos, err.message);
  h.spec.hold->release();
}

BOOST_AUTO_TEST_CASE(interval_counts_from_a_start_and_min_pause_from_an_end) {
  using tp = sluice::clock::time_point;
  auto at = [](int s) { return tp{std::chrono::seconds{s}}; };
  checkpoint_options o;
  o.interval = 2s;
  o.min_pause = 3s;
  BOOST_TEST(o.due(at(0), std::nullopt, std::nullopt), "the first is due at once");
  // Started at 10 s, ended at 14 s: the interval has passed at 12 s, the pause at 17 s.
  BOOST_TEST(!o.due(at(11), at(10), std::nullopt), "in flight since 10 s: interval not over");
  BOOST_TEST(o.due(at(12), at(10), std::nullopt));
  BOOST_TEST(!o.due(at(14), at(10), at(14)));
  BOOST_TEST(!o.due(at(16), at(10), at(14)), "the interval is over, the pause is not");
  BOOST_TEST(o.due(at(17), at(10), at(14)));
  // Without a pause, a checkpoint that took longer than the interval is followed at once.
  o.min_pause = 0s;
  BOOST_TEST(o.due(at(14), at(10), at(14)));
  // The defaults: every second, no pause.
  const checkpoint_options d;
  BOOST_TEST(d.interval.count() == 1'000);
  BOOST_TEST(d.min_pause.count() == 0);
  BOOST_TEST(!d.due(at(5) + std::chrono::milliseconds{999}, at(5), at(5)));
  BOOST_TEST(d.due(at(6), at(5), at(5)));
}

BOOST_AUTO_TEST_SUITE_END()
