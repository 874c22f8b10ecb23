// Restart strategies: a task failure restarts the job from its latest complete checkpoint
// (exactly-once output with the transactional file sink); a failure that keeps coming fails
// the job after `max_restarts` with the last cause; `none()` and a job without checkpoints
// fail at the first failure.
#include <boost/test/unit_test.hpp>

#include "sluice/core/time.hpp"
#include "sluice/sources/source.hpp"
#include "sluice/tests/checkpoint/job_helpers.hpp"

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <memory>
#include <stdexcept>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::ckpt;

namespace {

/// Throws on record `at` the first time any run sees it.
struct fail_once {
  std::uint64_t at;
  std::shared_ptr<std::atomic<bool>> failed = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<std::atomic<int>> throws = std::make_shared<std::atomic<int>>(0);
};

/// Throws on every record; the message counts the attempts.
struct fail_always {
  std::shared_ptr<std::atomic<int>> throws = std::make_shared<std::atomic<int>>(0);
};

/// Record n, with its sequence number as event time (for the maps that fail on one).
reading numbered(std::uint64_t n) {
  auto r = make_reading(n);
  r.ts = at_ms(static_cast<std::int64_t>(n));
  return r;
}

/// Records `numbered(0..n-1)`, replayable; counts how often an instance was closed (the
/// runtime closes a source when its task stops, also when a failure kills it).
class closing_source final : public source<reading> {
public:
  closing_source(std::uint64_t n, std::shared_ptr<std::atomic<int>> closed)
    : n_(n), closed_(std::move(closed)) {}
  result<void> open(const source_context&) override { return {}; }
  result<poll_result> poll(source_output<reading>& out, std::size_t max) override {
    for (std::size_t i = 0; i < max && next_ < n_; ++i, ++next_)
      out.records.push_back(numbered(next_));
    return next_ >= n_ ? poll_result::end() : poll_result::more();
  }
  std::optional<std::string> position() const override { return std::to_string(next_); }
  result<void> seek(std::string_view pos) override {
    next_ = std::stoull(std::string{pos});
    return {};
  }
  void close() override { closed_->fetch_add(1); }

private:
  std::uint64_t n_;
  std::uint64_t next_ = 0;
  std::shared_ptr<std::atomic<int>> closed_;
};

struct closing {
  using record_type = reading;
  std::uint64_t n;
  std::shared_ptr<std::atomic<int>> closed = std::make_shared<std::atomic<int>>(0);
  std::unique_ptr<source<reading>> create(const source_context&) const {
    return std::make_unique<closing_source>(n, closed);
  }
  std::string describe() const { return "closing"; }
  int max_parallelism() const { return 1; }
};

/// generator (sequence numbers in `reading::ts`) -> map (may throw) -> key_by -> reduce ->
/// transactional file sink.
struct restart_job {
  fs::path out;
  fs::path checkpoints{};
  std::uint64_t count = 1'000;
  restart_strategy restart{};
  sluice::trigger trigger = triggers::continuous(1h);
  std::function<void(const char*, std::int64_t)> sync_point{};
  std::shared_ptr<const sluice::clock> clock{};

  job_options options() const {
    job_options o;
    o.name = "restarts";
    o.trigger = trigger;
    o.checkpoints.dir = checkpoints;
    o.checkpoints.interval = 0ms;
    o.checkpoints.restart = restart;
    o.runtime.batch_size = 100;
    o.runtime.max_records_per_trigger = 100;
    o.runtime.threads = 4;
    o.runtime.sync_point = sync_point;
    if (clock)
      o.runtime.processing_clock = clock;
    return o;
  }

  template <class F>
  void build(job& j, F fn) const {
    build_from(j, sources::generator({.count = count}, numbered), std::move(fn));
  }

  template <class Source, class F>
  void build_from(job& j, Source src, F fn) const {
    j.from(std::move(src))
      .name("readings")
      .map(std::move(fn))
      .name("check")
      .disable_chaining() // a map that waits must not hold up the source's task
      .key_by(key_of)
      .reduce(sum_values)
      .name("totals")
      .sink_to(sinks::file<reading>{{.path = out, .transactional = true}})
      .name("out");
  }
};

std::uint64_t seq_of(const reading& r) {
  return static_cast<std::uint64_t>(
    std::chrono::duration_cast<std::chrono::milliseconds>(r.ts - at_ms(0)).count());
}

auto once_fn(const fail_once& f) {
  return [f](const reading& r) {
    if (seq_of(r) == f.at && !f.failed->exchange(true)) {
      f.throws->fetch_add(1);
      throw std::runtime_error("poison record " + std::to_string(f.at));
    }
    return r;
  };
}

auto always_fn(const fail_always& f) {
  return [f](const reading& r) -> reading {
    const auto n = f.throws->fetch_add(1) + 1;
    throw std::runtime_error("cannot parse, attempt " + std::to_string(n));
    return r;
  };
}

} // namespace

BOOST_AUTO_TEST_SUITE(restart)

BOOST_AUTO_TEST_CASE(a_micro_batch_failure_resumes_from_the_last_checkpoint_exactly_once) {
  // Ten micro-batches of 100 records, each a checkpoint; record 550 fails in batch 5, once.
  temp_dir dir;
  restart_job spec{dir.path / "out", dir.path / "ckpt"};
  spec.trigger = triggers::available_now();
  spec.restart = restart_strategy::fixed(3, 10ms);
  fail_once f{550};
  job j{spec.options()};
  spec.build(j, once_fn(f));
  auto r = require_ok(j.run());
  BOOST_TEST(f.throws->load() == 1);
  BOOST_TEST(r.restarts == 1);
  BOOST_TEST(!r.cancelled);
  // Batches 0-4 before the failure, 5-9 after it: batch 5 was not completed twice, and
  // the restart did not start over from batch 0.
  BOOST_TEST(r.checkpoints_completed == 10);
  const auto out = read_committed<reading>(spec.out);
  BOOST_TEST(out.size() == spec.count, "every running sum exactly once");
  BOOST_TEST((per_key(out) == expected_sums(spec.count)));
  BOOST_TEST(hidden_files(spec.out).empty());
}

BOOST_AUTO_TEST_CASE(a_continuous_failure_restarts_and_the_output_is_exactly_once) {
  // Checkpoints every 2 ms epoch (or none yet when the record fails): either way the
  // committed output is each running sum once.
  temp_dir dir;
  restart_job spec{dir.path / "out", dir.path / "ckpt"};
  spec.count = 20'000;
  spec.trigger = triggers::continuous(2ms);
  spec.restart = restart_strategy::fixed(3, 10ms);
  fail_once f{12'345};
  job j{spec.options()};
  spec.build(j, once_fn(f));
  auto exec = require_ok(j.start());
  if (!exec->wait_for(safety_timeout)) {
    (void)exec.release(); // hung: leak it rather than hang the test binary in its destructor
    BOOST_FAIL("the restarted job never finished");
  }
  auto r = require_ok(exec->wait());
  BOOST_TEST(f.throws->load() == 1);
  BOOST_TEST(r.restarts == 1);
  const auto out = read_committed<reading>(spec.out);
  BOOST_TEST(out.size() == spec.count, "every running sum exactly once");
  BOOST_TEST((per_key(out) == expected_sums(spec.count)));
  BOOST_TEST(hidden_files(spec.out).empty());
}

BOOST_AUTO_TEST_CASE(a_failure_before_the_first_checkpoint_completes_restarts_from_scratch) {
  // A manual clock drives the epochs. The map holds record 500 until the source has
  // snapshotted epoch 0 (the first tick, a checkpoint), then throws: epoch 0 never
  // completes, so the job restarts with no checkpoint. The clock then stands still, so
  // the restarted run reaches the end of its input before any further epoch begins.
  temp_dir dir;
  sync_log log;
  auto clock = std::make_shared<manual_clock>();
  restart_job spec{dir.path / "out", dir.path / "ckpt"};
  spec.count = 2'000;
  spec.trigger = triggers::continuous(1s);
  spec.restart = restart_strategy::fixed(3, 10ms);
  spec.sync_point = log.callback();
  spec.clock = clock;
  auto failed = std::make_shared<std::atomic<bool>>(false);
  job j{spec.options()};
  spec.build(j, [failed, log](const reading& r) {
    if (seq_of(r) == 500 && !failed->exchange(true)) {
      log.wait_for("snapshot");
      throw std::runtime_error("poison record 500");
    }
    return r;
  });
  auto exec = require_ok(j.start());
  // The first epoch (a checkpoint barrier into the source) begins once the clock passed the
  // coordinator's first tick; the clock stops as soon as the source snapshotted it.
  for (int i = 0; i < 600 && !log.wait_for("snapshot", 1, 100ms); ++i)
    clock->advance(1s);
  BOOST_REQUIRE_MESSAGE(log.count("snapshot") >= 1, "no epoch began");
  if (!exec->wait_for(safety_timeout)) {
    (void)exec.release(); // hung: leak it rather than hang the test binary in its destructor
    BOOST_FAIL("the job restarted without a checkpoint never finished");
  }
  auto r = require_ok(exec->wait());
  BOOST_TEST(failed->load());
  BOOST_TEST(r.restarts == 1);
  BOOST_TEST(!r.restored_from.has_value());
  const auto out = read_committed<reading>(spec.out);
  BOOST_TEST(out.size() == spec.count, "every running sum exactly once");
  BOOST_TEST((per_key(out) == expected_sums(spec.count)));
  BOOST_TEST(hidden_files(spec.out).empty());
}

BOOST_AUTO_TEST_CASE(cancel_while_a_restart_waits_ends_the_job) {
  // The restart waits 10 minutes; the source's close (its task was killed by the failure)
  // says the coordinator is in that wait. cancel() must end the job now, as cancelled, and
  // a later run resumes from the last checkpoint.
  temp_dir dir;
  restart_job spec{dir.path / "out", dir.path / "ckpt"};
  spec.trigger = triggers::available_now();
  spec.restart = restart_strategy::fixed(3, std::chrono::minutes{10});
  fail_once f{550};
  closing src{spec.count};
  {
    job j{spec.options()};
    spec.build_from(j, src, once_fn(f));
    auto exec = require_ok(j.start());
    BOOST_REQUIRE(wait_until(*exec, [&] { return src.closed->load() >= 1; }));
    BOOST_TEST(f.throws->load() == 1);
    exec->cancel();
    if (!exec->wait_for(safety_timeout)) {
      (void)exec.release(); // hung: leak it rather than hang the test binary in its destructor
      BOOST_FAIL("cancel() during a restart's delay did not end the job");
    }
    auto r = require_ok(exec->wait());
    BOOST_TEST(r.cancelled);
    BOOST_TEST(r.restarts == 1);
    BOOST_TEST(r.checkpoints_completed == 5); // batches 0-4; batch 5 failed
  }
  job j{spec.options()};
  spec.build_from(j, closing{spec.count}, once_fn(f));
  auto r = require_ok(j.run());
  BOOST_REQUIRE(r.restored_from.has_value());
  BOOST_TEST(*r.restored_from == 4);
  const auto out = read_committed<reading>(spec.out);
  BOOST_TEST(out.size() == spec.count, "every running sum exactly once");
  BOOST_TEST((per_key(out) == expected_sums(spec.count)));
}

BOOST_AUTO_TEST_CASE(a_savepoint_asked_for_while_a_restart_waits_is_refused) {
  // As above, the coordinator waits 10 minutes to restart: there are no tasks to take a
  // savepoint, so the request fails at once (as Flink's does when tasks are not running),
  // and cancel() then ends the job.
  temp_dir dir;
  restart_job spec{dir.path / "out", dir.path / "ckpt"};
  spec.trigger = triggers::continuous(1h);
  spec.restart = restart_strategy::fixed(3, std::chrono::minutes{10});
  fail_once f{550};
  closing src{spec.count};
  job j{spec.options()};
  spec.build_from(j, src, once_fn(f));
  auto exec = require_ok(j.start());
  BOOST_REQUIRE(wait_until(*exec, [&] { return src.closed->load() >= 1; }));
  // savepoint() blocks until answered: ask from a thread, so that no answer fails the test.
  std::promise<result<std::int64_t>> answer;
  auto answered = answer.get_future();
  std::thread asking{[&exec, &answer] { answer.set_value(exec->savepoint(false)); }};
  if (answered.wait_for(safety_timeout) != std::future_status::ready) {
    asking.detach();
    (void)exec.release(); // hung: leak it rather than hang the test binary
    BOOST_FAIL("a savepoint asked for while the job restarts never got an answer");
  }
  asking.join();
  auto sp = answered.get();
  BOOST_REQUIRE_MESSAGE(!sp.has_value(), "a savepoint while no task runs");
  BOOST_TEST(mentions(sp.error().message, "restart"), sp.error().message);
  exec->cancel();
  if (!exec->wait_for(safety_timeout)) {
    (void)exec.release(); // hung: leak it rather than hang the test binary in its destructor
    BOOST_FAIL("cancel() during a restart's delay did not end the job");
  }
  BOOST_TEST(require_ok(exec->wait()).cancelled);
}

BOOST_AUTO_TEST_CASE(a_failure_that_keeps_coming_fails_after_max_restarts_with_the_last_cause) {
  temp_dir dir;
  restart_job spec{dir.path / "out", dir.path / "ckpt"};
  spec.restart = restart_strategy::fixed(3, 10ms);
  fail_always f;
  job j{spec.options()};
  spec.build(j, always_fn(f));
  auto e = require_error(j.run());
  BOOST_TEST(f.throws->load() == 4, "the first run and three restarts");
  BOOST_TEST(mentions(e.message, "cannot parse, attempt 4"), e.message);
  BOOST_TEST(mentions(e.message, "after 3 restarts"), e.message);
  BOOST_TEST(mentions(e.message, "'check'"), e.message);
  BOOST_TEST(read_committed<reading>(spec.out).empty());
}

BOOST_AUTO_TEST_CASE(exponential_backoff_also_gives_up_after_max_restarts) {
  temp_dir dir;
  restart_job spec{dir.path / "out", dir.path / "ckpt"};
  spec.restart = {restart_strategy::kind::exponential_backoff, 2, 1ms, 4ms};
  fail_always f;
  job j{spec.options()};
  spec.build(j, always_fn(f));
  auto e = require_error(j.run());
  BOOST_TEST(f.throws->load() == 3);
  BOOST_TEST(mentions(e.message, "cannot parse, attempt 3"), e.message);
  BOOST_TEST(mentions(e.message, "after 2 restarts"), e.message);
}

BOOST_AUTO_TEST_CASE(the_default_strategy_is_exponential_backoff_doubling_up_to_its_cap) {
  const restart_strategy d{};
  BOOST_TEST((d.how == restart_strategy::kind::exponential_backoff));
  BOOST_TEST(d.max_restarts == 3);
  BOOST_TEST(d.delay_before(0).count() == 100);
  BOOST_TEST(d.delay_before(1).count() == 200);
  BOOST_TEST(d.delay_before(2).count() == 400);
  BOOST_TEST(d.delay_before(7).count() == 10'000, "capped at max_delay");
  BOOST_TEST(d.delay_before(1'000'000).count() == 10'000);
  const auto fixed = restart_strategy::fixed(5, 30ms);
  BOOST_TEST(fixed.delay_before(0).count() == 30);
  BOOST_TEST(fixed.delay_before(4).count() == 30);
}

BOOST_AUTO_TEST_CASE(exponential_backoff_waits_longer_before_each_restart_and_then_succeeds) {
  // Record 500 fails the first three runs; the fourth finishes, exactly once.
  temp_dir dir;
  restart_job spec{dir.path / "out", dir.path / "ckpt"};
  spec.restart = {restart_strategy::kind::exponential_backoff, 4, 2ms, 5ms};
  auto throws = std::make_shared<std::atomic<int>>(0);
  job j{spec.options()};
  spec.build(j, [throws](const reading& r) {
    if (seq_of(r) == 500 && throws->load() < 3) {
      throws->fetch_add(1);
      throw std::runtime_error("poison record 500");
    }
    return r;
  });
  auto r = require_ok(j.run());
  BOOST_TEST(throws->load() == 3);
  BOOST_TEST(r.restarts == 3);
  BOOST_TEST((r.restart_delays == std::vector<std::chrono::milliseconds>{2ms, 4ms, 5ms}));
  const auto out = read_committed<reading>(spec.out);
  BOOST_TEST(out.size() == spec.count, "every running sum exactly once");
  BOOST_TEST((per_key(out) == expected_sums(spec.count)));
}

BOOST_AUTO_TEST_CASE(restart_strategy_none_fails_at_the_first_failure) {
  temp_dir dir;
  restart_job spec{dir.path / "out", dir.path / "ckpt"};
  spec.restart = restart_strategy::none();
  fail_once f{500};
  job j{spec.options()};
  spec.build(j, once_fn(f));
  auto e = require_error(j.run());
  BOOST_TEST(f.throws->load() == 1);
  BOOST_TEST(mentions(e.message, "poison record 500"), e.message);
  BOOST_TEST(!mentions(e.message, "restart"), e.message);
}

BOOST_AUTO_TEST_CASE(without_checkpoints_a_failure_is_not_restarted) {
  temp_dir dir;
  restart_job spec{dir.path / "out"};
  spec.restart = restart_strategy::fixed(3, 1ms); // needs checkpoints: ignored
  fail_once f{500};
  job j{spec.options()};
  spec.build(j, once_fn(f));
  auto e = require_error(j.run());
  BOOST_TEST(f.throws->load() == 1);
  BOOST_TEST(mentions(e.message, "poison record 500"), e.message);
}

// -- attempts are fenced: a restart waits for every task of the failed attempt ----------

namespace {

/// Blocks the first record it sees until `release` (bounded by the safety timeout), as a
/// user function stuck on a lock or a connector stuck on a network call would.
struct blocker {
  std::mutex m;
  std::condition_variable cv;
  bool blocked = false, released = false;
  std::atomic<int> passes{0};

  void pass() {
    passes.fetch_add(1);
    std::unique_lock lk{m};
    if (blocked || released)
      return;
    blocked = true;
    cv.notify_all();
    cv.wait_for(lk, safety_timeout, [&] { return released; });
  }
  bool wait_blocked() {
    std::unique_lock lk{m};
    return cv.wait_for(lk, safety_timeout, [&] { return blocked; });
  }
  void release() {
    {
      std::lock_guard guard{m};
      released = true;
    }
    cv.notify_all();
  }
};

/// Two independent branches: one blocks in its map (`b`), the other fails once at record 50
/// (`fails`), only once the first is blocked. Both write with the transactional file sink.
void build_fenced_job(job& j, const fs::path& dir, std::shared_ptr<blocker> b,
                      fail_once fails) {
  j.from(sources::generator({.count = 200}, numbered))
    .name("slow-source")
    .map([b](const reading& r) {
      b->pass();
      return r;
    })
    .name("stuck")
    .sink_to(sinks::file<reading>{{.path = dir / "stuck", .transactional = true}})
    .name("stuck-out");
  j.from(sources::generator({.count = 2'000}, numbered))
    .name("source")
    .map([fails, b](const reading& r) {
      if (r.ts == at_ms(static_cast<std::int64_t>(fails.at)) && !fails.failed->load()) {
        // The other attempt's task is stuck by now. Not BOOST_REQUIRE: this runs on a
        // worker thread, and Boost.Test's log is not thread-safe (ThreadSanitizer saw the
        // race); an exception fails the job, and the test, with this message.
        if (!b->wait_blocked())
          throw std::runtime_error("test setup: the 'stuck' map never blocked");
        fails.failed->store(true);
        throw std::runtime_error("injected failure");
      }
      return r;
    })
    .name("fails")
    .sink_to(sinks::file<reading>{{.path = dir / "out", .transactional = true}})
    .name("out");
}

job_options fenced_options(const fs::path& dir, std::chrono::milliseconds stop_timeout) {
  job_options o;
  o.name = "fenced";
  o.trigger = triggers::continuous(1h);
  o.checkpoints.dir = dir / "checkpoints";
  o.checkpoints.interval = 0ms;
  o.checkpoints.restart = restart_strategy::fixed(3, 1ms);
  o.checkpoints.restart.stop_timeout = stop_timeout;
  o.runtime.batch_size = 10;
  o.runtime.threads = 4; // the blocked map holds one worker
  return o;
}

/// The fenced job with `stop_timeout`, started and held until its 'stuck' map blocked. The
/// map is released when the run goes out of scope, before its execution.
struct fenced_run {
  temp_dir dir;
  std::shared_ptr<blocker> b = std::make_shared<blocker>();
  fail_once fails{50};
  job j;
  std::unique_ptr<job_execution> exec;
  struct release_at_exit {
    std::shared_ptr<blocker> b;
    ~release_at_exit() { b->release(); }
  } releaser{b};

  explicit fenced_run(std::chrono::milliseconds stop_timeout)
      : j{fenced_options(dir.path, stop_timeout)} {
    build_fenced_job(j, dir.path, b, fails);
    exec = require_ok(j.start());
    BOOST_REQUIRE(b->wait_blocked());
  }
};

} // namespace

BOOST_AUTO_TEST_CASE(a_task_of_the_failed_attempt_that_never_stops_fails_the_job_naming_it) {
  fenced_run run{300ms};
  auto done = run.exec->wait();
  // Without the fence the restart would start a second attempt beside the stuck task (and
  // the job would finish, both attempts writing the same files).
  BOOST_REQUIRE(!done.has_value());
  const auto& text = done.error().message;
  BOOST_TEST(text.find("did not stop within 300 ms") != std::string::npos, text);
  BOOST_TEST(text.find("'slow-source -> stuck -> stuck-out' (instance 1 of 1)") != std::string::npos,
             text);
  BOOST_TEST(text.find("injected failure") != std::string::npos, text);
}

BOOST_AUTO_TEST_CASE(a_restart_waits_until_the_failed_attempt_stopped_then_ends_exactly_once) {
  fenced_run run{std::chrono::minutes{10}};
  BOOST_REQUIRE(wait_until(*run.exec, [&] { return run.fails.failed->load(); }));
  // The failure is in, the restart delay (1 ms) long over once the job reports restarting;
  // the stuck task of the first attempt still runs, so no second attempt may start: the
  // first attempt's blocked map is the only one to have seen a record.
  BOOST_REQUIRE(wait_until(*run.exec, [&] { return run.exec->snapshot().state == "restarting"; }));
  BOOST_TEST(run.b->passes.load() == 1);
  run.b->release(); // the stuck task now handles its exit; the next attempt starts
  auto done = require_ok(run.exec->wait());
  BOOST_TEST(done.restarts == 1);
  auto out = read_committed<reading>(run.dir.path / "out");
  auto stuck = read_committed<reading>(run.dir.path / "stuck");
  BOOST_TEST(out.size() == 2'000u);
  BOOST_TEST(stuck.size() == 200u);
  std::set<std::int64_t> distinct;
  for (auto& r : out)
    distinct.insert(r.ts.time_since_epoch().count());
  BOOST_TEST(distinct.size() == 2'000u);
}

BOOST_AUTO_TEST_SUITE_END()
