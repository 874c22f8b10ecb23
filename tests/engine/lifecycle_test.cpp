// Job lifecycle: completion with stats, cancellation, failures named by operator and
// instance, no hang on failure, and destroying a running execution.
#include <boost/test/unit_test.hpp>

#include "sluice/api/job.hpp"
#include "sluice/tests/engine/test_helpers.hpp"
#include "sluice/sinks/callback.hpp"
#include "sluice/sinks/memory.hpp"
#include "sluice/sources/collection.hpp"
#include "sluice/sources/generator.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <vector>

using namespace sluice;
using namespace sluice::test;
using namespace std::chrono_literals;

namespace {

/// "Unbounded" for the jobs below that run several generator instances: unbounded
/// generators with parallelism > 1 hit a known bug (see
/// `unbounded_generator_instances_all_produce`), so these use a count no test reaches.
constexpr std::uint64_t practically_unbounded = std::uint64_t{1} << 40;

std::vector<int> iota_vec(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i)
    v[static_cast<std::size_t>(i)] = i;
  return v;
}

/// Records arriving at a sink, shared with the test; the test can wait for a count.
struct arrivals {
  std::mutex m;
  std::vector<std::uint64_t> records;
  counter_gate count;
};

auto arrivals_sink(std::shared_ptr<arrivals> a) {
  return sinks::for_each<std::uint64_t>([a](const std::uint64_t& x) {
    {
      std::lock_guard lk{a->m};
      a->records.push_back(x);
    }
    a->count.add(1);
  });
}

/// A sink that fails on its first write, by error or by exception.
struct failing_sink final : sink<int> {
  bool throws = false;
  result<void> write(std::vector<int>&) override {
    if (throws)
      throw std::runtime_error("sink exploded");
    return make_error(error_code::connector_failed, "disk full");
  }
};
struct failing_sink_desc {
  using record_type = int;
  bool throws = false;
  std::unique_ptr<sink<int>> create(const sink_context&) const {
    auto s = std::make_unique<failing_sink>();
    s->throws = throws;
    return s;
  }
  std::string describe() const { return "failing"; }
};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// Checks that per source instance (`i` of `p`, emitting i, i+p, ...) the received
/// numbers form a prefix without gap or duplicate, and that they add up to `total`.
void require_prefixes(std::vector<std::uint64_t> got, std::uint64_t p, std::uint64_t total) {
  BOOST_REQUIRE_EQUAL(got.size(), total);
  std::sort(got.begin(), got.end());
  BOOST_REQUIRE(std::adjacent_find(got.begin(), got.end()) == got.end());
  std::vector<std::uint64_t> next(p);
  for (std::uint64_t i = 0; i < p; ++i)
    next[i] = i;
  int gaps = 0;
  for (auto x : got) {
    auto& expected = next[x % p];
    gaps += x != expected ? 1 : 0;
    expected = x + p;
  }
  BOOST_TEST(gaps == 0, "every source instance's output arrived as a prefix");
}

/// Input the test hands to `fed_source` from its own thread, as a client library's thread
/// would: each `feed` calls the source's `source_context::wake`.
struct fed_input {
  std::mutex m;
  std::deque<std::uint64_t> queue;
  bool end = false;
  std::function<void()> wake;
  counter_gate idle_polls; ///< polls that found nothing

  void feed(std::uint64_t x, bool last = false) {
    std::function<void()> w;
    {
      std::lock_guard lk{m};
      queue.push_back(x);
      end = last;
      w = wake;
    }
    w();
  }
};

/// Answers an empty poll with an hour's wait: what it is fed later arrives within the
/// test's bounds only if `wake` makes the task poll again.
class fed_source final : public source<std::uint64_t> {
public:
  explicit fed_source(std::shared_ptr<fed_input> in) : in_(std::move(in)) {}
  result<void> open(const source_context& ctx) override {
    std::lock_guard lk{in_->m};
    in_->wake = ctx.wake;
    return {};
  }
  result<poll_result> poll(source_output<std::uint64_t>& out, std::size_t max) override {
    std::unique_lock lk{in_->m};
    for (; !in_->queue.empty() && out.records.size() < max; in_->queue.pop_front())
      out.records.push_back(in_->queue.front());
    if (!out.records.empty())
      return poll_result::more();
    if (in_->end)
      return poll_result::end();
    lk.unlock();
    in_->idle_polls.add(1);
    return poll_result::idle(std::chrono::hours{1});
  }

private:
  std::shared_ptr<fed_input> in_;
};

struct fed {
  using record_type = std::uint64_t;
  std::shared_ptr<fed_input> in;
  std::unique_ptr<source<std::uint64_t>> create(const source_context&) const {
    return std::make_unique<fed_source>(in);
  }
  std::string describe() const { return "fed"; }
  int max_parallelism() const { return 1; }
};

} // namespace

BOOST_AUTO_TEST_SUITE(lifecycle)

BOOST_AUTO_TEST_CASE(a_bounded_job_completes_with_its_stats) {
  job j{{.runtime = {.batch_size = 100}}};
  auto out = sinks::collect<int>{};
  j.from(sources::collection<int>{iota_vec(1000)})
    .name("numbers")
    .parallelism(2)
    .filter([](const int& x) { return x % 4 != 0; })
    .name("drop-quarter")
    .parallelism(2)
    .rebalance()
    .map([](const int& x) { return x * 2; })
    .name("double")
    .parallelism(3)
    .sink_to(out)
    .name("out")
    .parallelism(3);
  auto done = require_ok(j.run());
  BOOST_TEST(!done.cancelled);
  BOOST_TEST(done.elapsed.count() > 0);
  BOOST_TEST(out.size() == 750u);
  // Two chains: numbers -> drop-quarter (x2) and double -> out (x3).
  BOOST_REQUIRE_EQUAL(done.tasks.size(), 5u);
  const std::string head = "numbers -> drop-quarter", tail = "double -> out";
  BOOST_TEST(sum_of(done.tasks, head, &task_stats::records_in) == 1000u, "polled");
  BOOST_TEST(sum_of(done.tasks, head, &task_stats::records_out) == 750u, "sent after the filter");
  BOOST_TEST(sum_of(done.tasks, tail, &task_stats::records_in) == 750u);
  BOOST_TEST(sum_of(done.tasks, tail, &task_stats::records_out) == 0u, "the sink is fused");
  BOOST_TEST(sum_of(done.tasks, head, &task_stats::batches_out) ==
             sum_of(done.tasks, tail, &task_stats::batches_in));
  for (auto& t : done.tasks) {
    BOOST_TEST(!t.backpressured);
    BOOST_TEST(t.input_queue == 0u, "nothing left queued");
  }
  BOOST_TEST(stats_of(done.tasks, head, 1).records_in == 500u, "instance 1 reads every other");
}

/// Holds the coordinator's start of task 1 (the downstream chain) until `items` pieces of
/// input (data, watermarks, end of input) reached that task before its start. CAF orders
/// messages per sender only, so this interleaving happens by chance in any run; here it is
/// forced. The input must wait in the gate until the task made its chain.
struct early_input {
  explicit early_input(std::uint64_t n) : items(n) {}
  std::uint64_t items;
  counter_gate queued;
  std::atomic<bool> held_in_time{true};

  std::function<void(const char*, std::int64_t)> callback() {
    return [this](const char* step, std::int64_t task) {
      if (task != 1)
        return;
      if (std::string_view{step} == "queued")
        queued.add(1);
      else if (std::string_view{step} == "start" && !queued.wait_at_least(items))
        held_in_time = false;
    };
  }
};

/// Numbers 0..n-1 from one source task into a second task (a map and a collecting sink).
std::vector<int> run_with_early_input(int n, early_input& early) {
  job j{{.runtime = {.threads = 2, .batch_size = 10, .sync_point = early.callback()}}};
  auto out = sinks::collect<int>{};
  j.from(sources::collection<int>{iota_vec(n)})
    .name("numbers")
    .rebalance()
    .map([](const int& x) { return x; })
    .name("same")
    .sink_to(out)
    .name("out");
  auto done = require_ok(j.run());
  BOOST_TEST(early.held_in_time.load(), "the source's input reached the second task first");
  auto got = out.records();
  std::sort(got.begin(), got.end());
  return got;
}

BOOST_AUTO_TEST_CASE(input_that_arrives_before_a_task_starts_waits_for_the_start) {
  early_input early{3}; // three batches of 10, within the 4 credits
  BOOST_TEST(run_with_early_input(1000, early) == iota_vec(1000));
}

BOOST_AUTO_TEST_CASE(a_watermark_that_arrives_before_a_task_starts_waits_for_the_start) {
  // The only batch and the final watermark; the end of input waits for the coordinator's
  // final barrier, so it cannot come before the start.
  early_input early{2};
  BOOST_TEST(run_with_early_input(5, early) == iota_vec(5));
}

BOOST_AUTO_TEST_CASE(cancelling_an_unbounded_job_flushes_everything_read) {
  auto a = std::make_shared<arrivals>();
  job j{{.runtime = {.batch_size = 256}}};
  j.from(sources::generator({.count = practically_unbounded}, [](std::uint64_t n) { return n; }))
    .name("src")
    .parallelism(2)
    .map([](const std::uint64_t& x) { return x; })
    .parallelism(3) // rebalanced: separate tasks, records in flight when cancelled
    .sink_to(arrivals_sink(a))
    .name("sink")
    .parallelism(2);
  auto exec = require_ok(j.start());
  BOOST_REQUIRE(a->count.wait_at_least(20000));
  exec->cancel();
  auto done = require_ok(exec->wait());
  BOOST_TEST(done.cancelled);
  const auto emitted = sum_of(done.tasks, "src", &task_stats::records_in);
  BOOST_TEST(emitted >= 20000u);
  BOOST_TEST(sum_of(done.tasks, "sink", &task_stats::records_in) == emitted);
  std::lock_guard lk{a->m};
  require_prefixes(a->records, 2, emitted);
  // wait() gives the same outcome again.
  auto again = require_ok(exec->wait());
  BOOST_TEST(again.cancelled);
}

BOOST_AUTO_TEST_CASE(a_throwing_map_fails_the_job_naming_operator_and_instance) {
  // Source, map and sink all run 3 instances and fuse; the collection's instance i reads
  // elements i, i+3, ..., so element 7 reaches instance 1: "instance 2 of 3".
  job j{{.parallelism = 3}};
  auto out = sinks::collect<int>{};
  j.from(sources::collection<int>{iota_vec(100)})
    .map([](const int& x) {
      if (x == 7)
        throw std::runtime_error("boom");
      return x;
    })
    .name("exploder")
    .sink_to(out);
  auto err = require_error(j.run());
  BOOST_TEST_MESSAGE(err.to_string());
  BOOST_TEST(err.code == error_code::user_function_failed);
  BOOST_TEST(contains(err.message, "'exploder'"), err.message);
  BOOST_TEST(contains(err.message, "instance 2 of 3"), err.message);
  BOOST_TEST(contains(err.message, "boom"), err.message);
  BOOST_TEST(err.message == "operator 'exploder' (instance 2 of 3) threw: boom; record: 7");
}

BOOST_AUTO_TEST_CASE(a_failing_sink_fails_the_job_naming_the_sink) {
  for (bool throws : {false, true}) {
    BOOST_TEST_CONTEXT((throws ? "throws" : "returns an error")) {
      job j;
      j.from(sources::collection<int>{iota_vec(10)})
        .rebalance()
        .sink_to(failing_sink_desc{throws})
        .name("bad-sink");
      auto err = require_error(j.run());
      if (throws) {
        BOOST_TEST(err.code == error_code::user_function_failed);
        BOOST_TEST(err.message == "operator 'bad-sink' (instance 1 of 1) threw: sink exploded");
      } else {
        BOOST_TEST(err.code == error_code::connector_failed);
        BOOST_TEST(err.message == "operator 'bad-sink' (instance 1 of 1): disk full");
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(a_throwing_source_fails_the_job_naming_the_source) {
  // The source head has no operator object; the failure must still be charged to it, not
  // to the last node of its chain.
  job j;
  auto out = sinks::collect<std::uint64_t>{};
  j.from(sources::generator({.count = 10000}, [](std::uint64_t n) {
     if (n == 5000)
       throw std::runtime_error("bad sequence number");
     return n;
   }))
    .name("numbers")
    .map([](const std::uint64_t& x) { return x; })
    .name("identity")
    .sink_to(out)
    .name("out");
  auto err = require_error(j.run());
  BOOST_TEST(err.code == error_code::user_function_failed);
  BOOST_TEST(err.message == "operator 'numbers' (instance 1 of 1) threw: bad sequence number");
}

BOOST_AUTO_TEST_CASE(a_failure_under_load_does_not_hang) {
  // Unbounded input, several tasks with data and credits in flight, and a user function
  // that throws deep into the run: run() must return the failure. The test ending is the
  // proof that nothing hangs.
  job j{{.runtime = {.batch_size = 128, .credits = 2}}};
  auto out = sinks::collect<std::uint64_t>{};
  j.from(sources::generator({.count = practically_unbounded}, [](std::uint64_t n) { return n; }))
    .parallelism(2)
    .rebalance()
    .map([](const std::uint64_t& x) {
      if (x == 300000)
        throw std::runtime_error("late boom");
      return x;
    })
    .name("late")
    .parallelism(3)
    .key_by([](const std::uint64_t& x) { return x % 10; })
    .reduce([](const std::uint64_t& a, const std::uint64_t& b) { return a + b; })
    .parallelism(2)
    .sink_to(out);
  auto err = require_error(j.run());
  BOOST_TEST(err.code == error_code::user_function_failed);
  BOOST_TEST(contains(err.message, "operator 'late' (instance "), err.message);
  BOOST_TEST(contains(err.message, " of 3) threw: late boom"), err.message);
}

BOOST_AUTO_TEST_CASE(a_source_with_more_at_hand_sends_full_batches_on_a_keyed_edge) {
  // 40 polls of a full batch of 64, hashed over two instances: each poll gives each target
  // about 32 records. Sending at the end of every poll made about 80 half-full batches; a
  // source with more at hand fills them first: about 40 full ones (and the last two partly).
  job j{{.runtime = {.batch_size = 64}}};
  auto out = sinks::collect<std::uint64_t>{};
  j.from(sources::generator({.count = 40 * 64}, [](std::uint64_t n) { return n; }))
    .name("numbers")
    .key_by([](const std::uint64_t& x) { return x; })
    .reduce([](const std::uint64_t& a, const std::uint64_t& b) { return a + b; })
    .name("keyed")
    .parallelism(2)
    .sink_to(out)
    .name("out")
    .parallelism(2);
  auto done = require_ok(j.run());
  BOOST_TEST(out.size() == 40u * 64u);
  const auto batches = sum_of(done.tasks, "keyed -> out", &task_stats::batches_in);
  BOOST_TEST(batches <= 42u, batches << " batches for 40 batches' worth of records");
}

BOOST_AUTO_TEST_CASE(destroying_a_running_execution_cancels_it_cleanly) {
  auto a = std::make_shared<arrivals>();
  auto produced = std::make_shared<std::atomic<std::uint64_t>>(0);
  {
    job j{{.runtime = {.batch_size = 64}}};
    j.from(sources::generator({}, [produced](std::uint64_t n) {
       produced->fetch_add(1, std::memory_order_relaxed);
       return n;
     }))
      .rebalance()
      .sink_to(arrivals_sink(a));
    auto exec = require_ok(j.start());
    BOOST_REQUIRE(a->count.wait_at_least(1000));
    // `exec` goes out of scope without cancel() or wait().
  }
  // The destructor cancelled and drained: everything generated reached the sink.
  std::lock_guard lk{a->m};
  BOOST_TEST(a->records.size() == produced->load());
  require_prefixes(a->records, 1, produced->load());
}

BOOST_AUTO_TEST_CASE(destroying_an_execution_right_after_start_is_clean) {
  auto a = std::make_shared<arrivals>();
  job j;
  j.from(sources::generator({}, [](std::uint64_t n) { return n; })).sink_to(arrivals_sink(a));
  for (int i = 0; i < 5; ++i) {
    auto exec = require_ok(j.start());
    exec.reset();
  }
  BOOST_TEST(true, "five executions started and destroyed");
}

// A source that found nothing waits `retry_after` before its next poll, unless it calls
// `source_context::wake` (as the Kafka source does when a record arrives): each record
// below is fed only after the source went idle for an hour, and must arrive at once.
BOOST_AUTO_TEST_CASE(a_waiting_source_that_wakes_is_polled_at_once) {
  auto in = std::make_shared<fed_input>();
  auto a = std::make_shared<arrivals>();
  job j{{.name = "woken"}};
  j.from(fed{in}).name("src").sink_to(arrivals_sink(a)).name("sink");
  auto exec = require_ok(j.start());
  for (std::uint64_t i = 1; i <= 3; ++i) {
    BOOST_REQUIRE(in->idle_polls.wait_at_least(i, 10s));
    in->feed(i, i == 3);
    BOOST_REQUIRE_MESSAGE(a->count.wait_at_least(i, 10s),
                          "record " << i << " waited for the source's hour-long retry");
  }
  auto done = require_ok(exec->wait());
  BOOST_TEST(!done.cancelled);
  std::lock_guard lk{a->m};
  BOOST_TEST(a->records == (std::vector<std::uint64_t>{1, 2, 3}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_rate_limited_source_follows_the_injected_clock) {
  // 1000 records/s on a manual clock: at t=0 one record is due; after advancing 1 s,
  // 1001 are. The real time between polls does not matter.
  auto clk = std::make_shared<manual_clock>();
  auto a = std::make_shared<arrivals>();
  job j{{.runtime = {.processing_clock = clk}}};
  j.from(sources::generator({.rate = 1000.0}, [](std::uint64_t n) { return n; }))
    .name("paced")
    .sink_to(arrivals_sink(a));
  auto exec = require_ok(j.start());
  BOOST_REQUIRE(a->count.wait_at_least(1));
  // The source keeps polling (idle, retrying about every millisecond) and finds nothing
  // due: give it a few rounds, then the count must still be 1.
  for (int i = 0; i < 5; ++i)
    BOOST_REQUIRE(!exec->wait_for(5ms));
  BOOST_TEST(a->count.value() == 1u);
  clk->advance(1s);
  BOOST_REQUIRE(a->count.wait_at_least(1001));
  for (int i = 0; i < 5; ++i)
    BOOST_REQUIRE(!exec->wait_for(5ms));
  BOOST_TEST(a->count.value() == 1001u);
  exec->cancel();
  auto done = require_ok(exec->wait());
  BOOST_TEST(done.cancelled);
  BOOST_TEST(stats_of(done.tasks, "paced -> foreach").records_in == 1001u);
}

// Regression: the records left of an unbounded generator were computed from end_ = 2^64-1
// and wrapped to 0 for instances i <= p-2, which then never emitted and spun.
BOOST_AUTO_TEST_CASE(unbounded_generator_instances_all_produce) {
  sources::generator desc{{}, [](std::uint64_t n) { return n; }};
  std::vector<std::uint64_t> first_of_instance;
  for (int i = 0; i < 3; ++i) {
    source_context ctx{"gen", i, 3, default_clock()};
    auto src = desc.create(ctx);
    require_ok(src->open(ctx));
    batch_ptr records, dead;
    auto polled = require_ok(src->poll_batches(8, records, dead));
    BOOST_TEST((polled.state == poll_result::status::more));
    BOOST_TEST_CONTEXT("instance " << i << " of 3") {
      BOOST_TEST(records != nullptr, "an unbounded generator instance emitted nothing");
      if (records)
        BOOST_TEST(records_of<std::uint64_t>(*records) ==
                   (std::vector<std::uint64_t>{std::uint64_t(i), std::uint64_t(i) + 3,
                                               std::uint64_t(i) + 6, std::uint64_t(i) + 9,
                                               std::uint64_t(i) + 12, std::uint64_t(i) + 15,
                                               std::uint64_t(i) + 18, std::uint64_t(i) + 21}),
                 boost::test_tools::per_element());
    }
  }
}

BOOST_AUTO_TEST_CASE(invalid_runtime_options_are_rejected_before_start) {
  auto try_with = [](runtime_options o) {
    job j{{.runtime = o}};
    j.from(sources::collection<int>{{1}}).sink_to(sinks::collect<int>{});
    return require_error(j.run());
  };
  BOOST_TEST(try_with({.batch_size = 0}).code == error_code::invalid_option);
  BOOST_TEST(try_with({.credits = 0}).code == error_code::invalid_option);
  BOOST_TEST(try_with({.linger = std::chrono::microseconds{-1}}).code == error_code::invalid_option);
  BOOST_TEST(try_with({.threads = -1}).code == error_code::invalid_option);
  BOOST_TEST(try_with({.processing_clock = nullptr}).code == error_code::invalid_option);
  runtime_options absurd;
  absurd.remote_batch_size = std::size_t{1} << 30;
  const auto e = try_with(absurd);
  BOOST_TEST((e.code == error_code::invalid_option));
  BOOST_TEST(e.message == "remote_batch_size must be between 1 and 1048576, got 1073741824");
  absurd.remote_batch_size = 0;
  BOOST_TEST((try_with(absurd).code == error_code::invalid_option));
}

BOOST_AUTO_TEST_SUITE_END()
