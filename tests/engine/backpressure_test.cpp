// Backpressure: a sink that corks stops the source after a bounded number of batches,
// and nothing is lost or duplicated when it uncorks.
#include <boost/test/unit_test.hpp>

#include "sluice/api/job.hpp"
#include "sluice/tests/engine/test_helpers.hpp"
#include "sluice/sinks/sink.hpp"
#include "sluice/sources/generator.hpp"

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

using namespace sluice;
using namespace sluice::test;

namespace {

/// Shared by the test and every instance of the corked sink.
struct cork_state {
  std::mutex m;
  std::condition_variable cv;
  bool corked = true;
  int blocked = 0; ///< writes waiting on the cork now
  std::vector<std::uint64_t> received;

  void uncork() {
    {
      std::lock_guard lk{m};
      corked = false;
    }
    cv.notify_all();
  }
  bool is_blocked() {
    std::lock_guard lk{m};
    return blocked > 0;
  }
  std::size_t size() {
    std::lock_guard lk{m};
    return received.size();
  }
  std::vector<std::uint64_t> records() {
    std::lock_guard lk{m};
    return received;
  }
};

/// A sink whose `write` takes the records, then blocks while corked: the task's thread
/// stays inside `write`, so no credit goes back upstream.
class corked_sink final : public sink<std::uint64_t> {
public:
  explicit corked_sink(std::shared_ptr<cork_state> s) : s_(std::move(s)) {}
  result<void> write(std::vector<std::uint64_t>& records) override {
    std::unique_lock lk{s_->m};
    s_->received.insert(s_->received.end(), records.begin(), records.end());
    if (!s_->corked)
      return {};
    ++s_->blocked;
    s_->cv.notify_all();
    // Bounded only as a safety net; the test uncorks long before.
    const bool uncorked = s_->cv.wait_for(lk, safety_timeout, [&] { return !s_->corked; });
    --s_->blocked;
    if (!uncorked)
      return make_error(error_code::connector_failed, "corked sink: never uncorked");
    return {};
  }

private:
  std::shared_ptr<cork_state> s_;
};

/// Descriptor of the corked sink.
struct corked {
  using record_type = std::uint64_t;
  std::shared_ptr<cork_state> state = std::make_shared<cork_state>();
  std::unique_ptr<sink<std::uint64_t>> create(const sink_context&) const {
    return std::make_unique<corked_sink>(state);
  }
  std::string describe() const { return "corked"; }
};

auto sequence = [](std::uint64_t n) { return n; };

/// Checks that `got` is exactly 0..n-1 in order.
void require_sequence(const std::vector<std::uint64_t>& got, std::uint64_t n) {
  BOOST_REQUIRE_EQUAL(got.size(), n);
  std::uint64_t mismatches = 0;
  for (std::uint64_t i = 0; i < n; ++i)
    mismatches += got[i] != i ? 1 : 0;
  BOOST_TEST(mismatches == 0u, "the sink received 0.." << n - 1 << " in order, no gap, no duplicate");
}

} // namespace

BOOST_AUTO_TEST_SUITE(backpressure)

BOOST_AUTO_TEST_CASE(a_corked_sink_stops_the_source_within_the_credit_window) {
  constexpr int credits = 2;
  constexpr std::uint64_t batch = 64;
  // threads = 4: the corked sink holds one worker thread while it blocks.
  job j{{.runtime = {.threads = 4, .batch_size = batch, .credits = credits}}};
  corked out;
  j.from(sources::generator({}, sequence)) // unbounded
    .name("src")
    .rebalance() // a separate sink task, fed over a credited channel
    .sink_to(out)
    .name("corked-sink");
  auto exec = require_ok(j.start());

  auto source = [&] { return stats_of(exec->metrics(), "src"); };
  auto sink = [&] { return stats_of(exec->metrics(), "corked-sink"); };
  BOOST_REQUIRE_MESSAGE(
    wait_until(*exec, [&] { return source().backpressured && out.state->is_blocked(); }),
    "the source never reported backpressure");

  // Why the numbers below are exact, from actors/task.cpp:
  // - The generator fills one full batch (`batch_size` records) per poll. The router sends a
  //   full buffer at once and linger 0 flushes after every poll: nothing stays buffered in
  //   the router, so `queued` = 0.
  // - The source transmits while it holds credit: `credits` batches go out. The sink task
  //   returns a credit only after `write` returns, and its first `write` blocks.
  // - The next poll's batch finds no credit: it waits in the source's pending queue
  //   (+1), `backpressured` turns true, and `on_poll` returns at once while anything is
  //   pending, so the source polls no more.
  // So emitted - received <= (credits + 1 + queued) * batch_size = (credits + 1) * batch
  // (received counted when `write` is entered). Here it is exactly: emitted
  // (credits + 1) * batch, received 1 * batch (the blocked write), so the difference is
  // credits * batch.
  const auto s1 = source();
  const auto k1 = sink();
  const auto received1 = out.state->size();
  BOOST_TEST_MESSAGE("source emitted " << s1.records_in << ", transmitted " << s1.records_out
                                       << ", sink received " << received1);
  BOOST_TEST(s1.records_in - received1 <= (credits + 1) * batch);
  BOOST_TEST(s1.records_in == (credits + 1) * batch);
  BOOST_TEST(s1.records_out == credits * batch, "in flight: exactly the credit window");
  BOOST_TEST(received1 == batch);
  BOOST_TEST(k1.records_in == batch);
  BOOST_TEST(s1.max_in_flight <= static_cast<std::uint64_t>(credits));
  BOOST_TEST(s1.max_in_flight == static_cast<std::uint64_t>(credits));
  BOOST_TEST(k1.max_input_queue <= static_cast<std::uint64_t>(credits));
  BOOST_TEST(s1.backpressure_events >= 1u);

  // The source stays stopped: a few more bounded wait cycles change nothing.
  for (int i = 0; i < 5; ++i)
    BOOST_REQUIRE_MESSAGE(!exec->wait_for(10ms), "the job ended while corked");
  const auto s2 = source();
  BOOST_TEST(s2.records_in == s1.records_in, "the source produced nothing while corked");
  BOOST_TEST(s2.records_out == s1.records_out);
  BOOST_TEST(s2.backpressured);
  BOOST_TEST(out.state->size() == received1);

  out.state->uncork();
  exec->cancel();
  auto done = require_ok(exec->wait());
  BOOST_TEST(done.cancelled);
  const auto emitted = stats_of(done.tasks, "src").records_in;
  BOOST_TEST(emitted >= s1.records_in);
  BOOST_TEST(stats_of(done.tasks, "src").records_out == emitted, "everything polled was sent");
  BOOST_TEST(stats_of(done.tasks, "corked-sink").records_in == emitted);
  BOOST_TEST(stats_of(done.tasks, "src").max_in_flight <= static_cast<std::uint64_t>(credits));
  BOOST_TEST(stats_of(done.tasks, "corked-sink").max_input_queue <=
             static_cast<std::uint64_t>(credits));
  require_sequence(out.state->records(), emitted);
}

BOOST_AUTO_TEST_CASE(backpressure_propagates_through_an_intermediate_task) {
  constexpr int credits = 3;
  constexpr std::uint64_t batch = 32;
  job j{{.runtime = {.threads = 4, .batch_size = batch, .credits = credits}}};
  corked out;
  j.from(sources::generator({}, sequence))
    .name("src")
    .rebalance()
    .map([](const std::uint64_t& x) { return x; })
    .name("middle")
    .rebalance()
    .sink_to(out)
    .name("corked-sink");
  auto exec = require_ok(j.start());
  auto metrics = [&] { return exec->metrics(); };
  // Wait for the final corked state, not a passing one: the middle task may have returned
  // credits that the source has not seen yet (it can be backpressured for a moment and
  // then resume). Once all `credits` batches the source sent wait in the middle's input
  // queue, no credit is on its way back and nothing can move any more.
  BOOST_REQUIRE(wait_until(*exec, [&] {
    auto m = metrics();
    return stats_of(m, "src").backpressured && stats_of(m, "middle").backpressured &&
           stats_of(m, "middle").input_queue == static_cast<std::uint64_t>(credits) &&
           out.state->is_blocked();
  }));

  // Each stage holds at most (credits + 1) batches beyond the next one: `credits` in
  // flight towards it and one pending. The middle task processed credits + 1 batches
  // (credits sent to the sink, one pending) and stopped taking input; `credits` more wait
  // in its input queue; the source has one pending. The sink's blocked write holds one.
  const auto m = metrics();
  const auto src = stats_of(m, "src");
  const auto mid = stats_of(m, "middle");
  BOOST_TEST(src.records_in == 2 * (credits + 1) * batch);
  BOOST_TEST(mid.records_in == (credits + 1) * batch);
  BOOST_TEST(mid.records_out == credits * batch);
  BOOST_TEST(mid.input_queue == static_cast<std::uint64_t>(credits));
  BOOST_TEST(mid.max_input_queue <= static_cast<std::uint64_t>(credits));
  BOOST_TEST(src.max_in_flight <= static_cast<std::uint64_t>(credits));
  BOOST_TEST(mid.max_in_flight <= static_cast<std::uint64_t>(credits));
  BOOST_TEST(out.state->size() == batch);

  for (int i = 0; i < 5; ++i)
    BOOST_REQUIRE(!exec->wait_for(10ms));
  BOOST_TEST(stats_of(metrics(), "src").records_in == src.records_in);

  out.state->uncork();
  exec->cancel();
  auto done = require_ok(exec->wait());
  BOOST_TEST(done.cancelled);
  require_sequence(out.state->records(), stats_of(done.tasks, "src").records_in);
}

BOOST_AUTO_TEST_SUITE_END()
