// Multi-node runs through the runtime (actors/remote, actors/placement): the nodes of a
// cluster run as separate `execute` calls in one test process, each with its own actor
// system and link on loopback, and must give the one-process answer. (Separate processes:
// tests/samples' cluster tests.)
#define BOOST_TEST_MODULE cluster_run_test
#include <boost/test/unit_test.hpp>

#include "sluice/api/job.hpp"
#include "sluice/tests/common/loopback.hpp"
#include "sluice/core/log.hpp"
#include "sluice/net/cluster.hpp"
#include "sluice/net/frame.hpp"
#include "sluice/sinks/callback.hpp"
#include "sluice/sinks/foreach_batch.hpp"
#include "sluice/sinks/memory.hpp"
#include "sluice/sources/generator.hpp"
#include "sluice/sources/rate.hpp"

#include <unistd.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string_view>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace sluice;
using namespace std::chrono_literals;
using sluice::test::loopback_cluster;

namespace {



struct reading {
  std::int64_t sensor = 0;
  std::int64_t value = 0;
};

template <class Inspector>
bool inspect(Inspector& f, reading& x) {
  return f.object("reading").fields(f.field("sensor", x.sensor), f.field("value", x.value));
}

constexpr std::uint64_t records = 200'000;

/// A failure to inject once: thrown by the keyed operator of one node after node 0 has
/// completed `after` checkpoints.
struct injected_failure {
  int after = 2;
  std::atomic<int> completed{0};
  std::atomic<bool> thrown{false};
  std::atomic<int> completed_when_thrown{-1};
};

/// Running sums per sensor over a generator, keyed across instances, into `out`; with
/// `fail`, the keyed operator fails once (tests of restarts build it so on one node only).
job sums_job(job_options o, sinks::collect<reading> out,
             std::shared_ptr<injected_failure> fail = nullptr,
             std::optional<double> rate = std::nullopt) {
  job j{std::move(o)};
  j.from(sources::generator({.count = records, .rate = rate}, [](std::uint64_t n) {
     return reading{static_cast<std::int64_t>(splitmix64(n) % 97),
                    static_cast<std::int64_t>(n % 1000)};
   }))
    .name("readings")
    .key_by([](const reading& r) { return r.sensor; }, "sensor")
    .reduce([fail](const reading& a, const reading& b) {
      if (fail && fail->completed.load() >= fail->after && !fail->thrown.exchange(true)) {
        fail->completed_when_thrown = fail->completed.load();
        throw std::runtime_error("injected failure");
      }
      return reading{a.sensor, a.value + b.value};
    })
    .name("sums")
    .sink_to(out)
    .name("out");
  return j;
}

/// The final sum per sensor: the largest running sum (values are not negative).
std::map<std::int64_t, std::int64_t> finals(const std::vector<reading>& rows) {
  std::map<std::int64_t, std::int64_t> m;
  for (const auto& r : rows)
    m[r.sensor] = std::max(m[r.sensor], r.value);
  return m;
}

/// The final sums of a one-process run at `parallelism`: what every cluster run must give.
std::map<std::int64_t, std::int64_t> one_process_sums(int parallelism) {
  sinks::collect<reading> alone;
  job_options single;
  single.parallelism = parallelism;
  auto r = sums_job(single, alone).run();
  BOOST_REQUIRE_MESSAGE(r, (r ? "" : r.error().to_string()));
  return finals(alone.records());
}

/// An empty directory under the temp directory, named `prefix` and this process's id.
std::filesystem::path fresh_dir(const std::string& prefix) {
  const auto dir = std::filesystem::temp_directory_path() / (prefix + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  return dir;
}

/// Starts `jobs` (one per node) at once.
std::vector<std::unique_ptr<job_execution>> start_all(std::vector<job>& jobs) {
  std::vector<std::unique_ptr<job_execution>> runs;
  for (auto& j : jobs) {
    auto started = j.start();
    BOOST_REQUIRE_MESSAGE(started, (started ? "" : started.error().to_string()));
    runs.push_back(std::move(*started));
  }
  return runs;
}

/// Cancels the job (through node 0) and requires every node to stop cleanly within a minute.
void cancel_all(std::vector<std::unique_ptr<job_execution>>& runs) {
  runs[0]->cancel();
  for (auto& r : runs) {
    BOOST_REQUIRE_MESSAGE(r->wait_for(60s), "a node did not stop within a minute");
    auto res = r->wait();
    BOOST_REQUIRE_MESSAGE(res, (res ? "" : res.error().to_string()));
  }
}

/// Runs `jobs` (one per node) at once and waits for each, at most a minute.
std::vector<result<job_result>> run_all(std::vector<job>& jobs) {
  auto runs = start_all(jobs);
  std::vector<result<job_result>> out;
  for (auto& r : runs) {
    BOOST_REQUIRE_MESSAGE(r->wait_for(60s), "a node did not finish within a minute");
    out.push_back(r->wait());
  }
  return out;
}

/// SLUICE_TEST_LOG=1 shows the runtime's log on stderr while debugging.
struct log_to_stderr {
  log_to_stderr() {
    if (std::getenv("SLUICE_TEST_LOG")) {
      logging::add_sink(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
      logging::get().set_level(spdlog::level::debug);
    }
  }
};

/// `sources::rate` that counts its instances once they are open, so that a test moves the
/// clocks only after every instance has read its own.
struct counted_rate {
  using record_type = sources::rate_row;
  sources::rate inner;
  std::shared_ptr<std::atomic<int>> opened = std::make_shared<std::atomic<int>>(0);

  struct instance final : source<sources::rate_row> {
    std::unique_ptr<source<sources::rate_row>> s;
    std::shared_ptr<std::atomic<int>> opened;
    result<void> open(const source_context& c) override {
      auto ok = s->open(c);
      ++*opened;
      return ok;
    }
    result<poll_result> poll(source_output<sources::rate_row>& out, std::size_t max) override {
      return s->poll(out, max);
    }
  };
  std::unique_ptr<source<sources::rate_row>> create(const source_context& c) const {
    auto i = std::make_unique<instance>();
    i->s = inner.create(c);
    i->opened = opened;
    return i;
  }
  std::string describe() const { return inner.describe(); }
};

/// An event of `drifting`: which instance made it, and its event time in µs.
struct tick {
  std::int64_t instance = 0;
  std::int64_t us = 0;
};

template <class Inspector>
bool inspect(Inspector& f, tick& x) {
  return f.object("tick").fields(f.field("instance", x.instance), f.field("us", x.us));
}

/// Two instances over the same 2 s of event time: instance 0 in 200 polls of 10 records
/// 1 ms apart, instance 1 ten times faster, in 20 polls of 10 records 10 ms apart (a poll
/// moves its watermark 100 ms).
struct drifting {
  using record_type = tick;
  struct instance final : source<tick> {
    int id = 0;
    int polls = 0;
    result<void> open(const source_context& c) override {
      id = c.instance;
      return {};
    }
    result<poll_result> poll(source_output<tick>& out, std::size_t) override {
      const std::int64_t step = id == 0 ? 1'000 : 10'000;
      for (std::int64_t i = 0; i < 10; ++i)
        out.records.push_back({id, (polls * 10 + i) * step});
      return ++polls == (id == 0 ? 200 : 20) ? poll_result::end() : poll_result::more();
    }
  };
  std::unique_ptr<source<tick>> create(const source_context&) const {
    return std::make_unique<instance>();
  }
  std::string describe() const { return "drifting"; }
  int max_parallelism() const { return 2; }
};

/// Seen by the one instance downstream of both: each instance's newest event time and the
/// widest spread between them.
struct spread_seen {
  std::mutex m;
  std::int64_t max[2] = {-1, -1};
  std::int64_t widest = 0;
  std::uint64_t n = 0;
};

} // namespace

BOOST_TEST_GLOBAL_FIXTURE(log_to_stderr);

BOOST_AUTO_TEST_SUITE(cluster_run)

BOOST_AUTO_TEST_CASE(keyed_sums_on_two_and_three_nodes_equal_one_process) {
  sinks::collect<reading> alone;
  job_options single;
  single.parallelism = 3;
  auto r = sums_job(single, alone).run();
  BOOST_REQUIRE_MESSAGE(r, (r ? "" : r.error().to_string()));
  const auto expected = finals(alone.records());
  BOOST_REQUIRE_EQUAL(expected.size(), 97u);
  BOOST_REQUIRE_EQUAL(alone.size(), records);

  for (int nodes : {2, 3}) {
    BOOST_TEST_CONTEXT(nodes << " nodes") {
      sinks::collect<reading> out; // one store: every node's sink instances append to it
      const auto cluster = loopback_cluster(nodes);
      std::vector<job> jobs;
      for (int n = 0; n < nodes; ++n) {
        job_options o;
        o.parallelism = 3;
        o.runtime.cluster.nodes = cluster;
        o.runtime.cluster.node = n;
        jobs.push_back(sums_job(o, out));
      }
      auto results = run_all(jobs);
      for (int n = 0; n < nodes; ++n)
        BOOST_TEST_MESSAGE("node " << n << ": "
                                   << (results[static_cast<std::size_t>(n)]
                                         ? "ok"
                                         : results[static_cast<std::size_t>(n)].error().to_string()));
      for (auto& res : results)
        BOOST_REQUIRE(res);
      BOOST_TEST(out.size() == records);
      BOOST_TEST(finals(out.records()) == expected);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_rate_source_over_two_nodes_has_one_creation_time) {
  // Spark's rate source has one creation time: row v is stamped creation + v / rows_per_second
  // whichever partition emits it. Each node builds its own descriptor (as separate processes
  // do) and reads its own clock; node 1's runs 750 ms ahead (another machine, or a later
  // start). The union of the instances must still be Spark's output.
  const auto cluster = loopback_cluster(2);
  sinks::collect<sources::rate_row> out;
  std::vector<std::shared_ptr<manual_clock>> clocks;
  std::vector<job> jobs;
  std::vector<counted_rate> rates;
  for (int n = 0; n < 2; ++n) {
    rates.push_back(counted_rate{sources::rate({.rows_per_second = 10})});
    clocks.push_back(std::make_shared<manual_clock>(
      clock::time_point{std::chrono::milliseconds{1'000'000 + 750 * n}}));
    job_options o;
    o.parallelism = 2;
    o.runtime.processing_clock = clocks.back();
    o.runtime.cluster.nodes = cluster;
    o.runtime.cluster.node = n;
    job j{o};
    j.from(rates.back()).name("rate").sink_to(out).name("out");
    jobs.push_back(std::move(j));
  }
  auto runs = start_all(jobs);
  const auto until = std::chrono::steady_clock::now() + 60s;
  while ((*rates[0].opened < 1 || *rates[1].opened < 1) &&
         std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(5ms); // polling a condition, bounded by `until`
  BOOST_REQUIRE_MESSAGE(*rates[0].opened == 1 && *rates[1].opened == 1,
                        "the instances did not open within a minute");
  // Two seconds on every clock: each instance emits the rows due by its own clock, at least
  // values 0..19 between them.
  for (auto& c : clocks)
    c->advance(2s);
  auto have_first_20 = [&] {
    std::set<std::int64_t> seen;
    for (const auto& r : out.records())
      if (r.value < 20)
        seen.insert(r.value);
    return seen.size() == 20;
  };
  while (!have_first_20() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(5ms); // polling a condition, bounded by `until`
  BOOST_REQUIRE_MESSAGE(have_first_20(), "values 0..19 did not arrive within a minute");
  cancel_all(runs);
  std::map<std::int64_t, int> times_seen;
  std::set<std::int64_t> creations; // timestamp - value * 100 ms: one, as in Spark
  for (const auto& r : out.records()) {
    ++times_seen[r.value];
    creations.insert(
      std::chrono::duration_cast<std::chrono::milliseconds>(r.timestamp.time_since_epoch()).count() -
      r.value * 100);
  }
  for (const auto& [value, n] : times_seen)
    BOOST_TEST(n == 1, "value " << value << " emitted " << n << " times");
  BOOST_TEST(creations.size() == 1u, "rows stamped from " << creations.size()
                                                          << " creation times: "
                                                          << *creations.begin() << " and "
                                                          << *creations.rbegin() << " ms");
  BOOST_TEST(*creations.begin() == 1'000'000, "not node 0's clock when the job started");
}

BOOST_AUTO_TEST_CASE(a_rate_source_over_two_nodes_cuts_each_micro_batch_at_one_second) {
  // Spark's driver computes a micro-batch's latest offset once, from its clock. Here node 1's
  // clock runs 1.5 s ahead: its instance must still end each batch at the second node 0's
  // coordinator chose (its trigger time), or a batch holds one instance's rows of a second
  // the other's rows are missing from.
  const auto cluster = loopback_cluster(2);
  std::mutex mtx;
  std::map<std::int64_t, std::vector<std::int64_t>> batches; // values per batch id
  std::size_t calls = 0;                                     // batches ended, empty ones too
  std::vector<std::shared_ptr<manual_clock>> clocks;
  std::vector<job> jobs;
  for (int n = 0; n < 2; ++n) {
    clocks.push_back(std::make_shared<manual_clock>(
      clock::time_point{std::chrono::milliseconds{1'000'000 + 1'500 * n}}));
    job_options o;
    o.parallelism = 2;
    o.trigger = triggers::processing_time(1s);
    o.runtime.processing_clock = clocks.back();
    o.runtime.cluster.nodes = cluster;
    o.runtime.cluster.node = n;
    job j{o};
    j.from(sources::rate({.rows_per_second = 10}))
      .name("rate")
      .sink_to(sinks::foreach_batch<sources::rate_row>(
        [&](std::int64_t id, std::vector<sources::rate_row>& rows) {
          std::lock_guard guard{mtx};
          ++calls;
          for (const auto& r : rows)
            batches[id].push_back(r.value);
        }))
      .name("out");
    jobs.push_back(std::move(j));
  }
  auto runs = start_all(jobs);
  const auto rows = [&] {
    std::lock_guard guard{mtx};
    std::size_t n = 0;
    for (const auto& [id, values] : batches)
      n += values.size();
    return n;
  };
  const auto ended = [&] {
    std::lock_guard guard{mtx};
    return calls;
  };
  const auto until = std::chrono::steady_clock::now() + 60s;
  // Batch 0 (at the start: no rows) ends before the clocks move: the next trigger is then
  // due at second 1 of the coordinator's clock, and each later one a second on.
  while (ended() < 1 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(5ms); // polling a condition, bounded by `until`
  for (std::size_t second = 1; second <= 3; ++second) {
    const auto before = ended();
    for (auto& c : clocks)
      c->advance(1s);
    while ((rows() < 10 * second || ended() == before) && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(5ms); // polling a condition, bounded by `until`
    BOOST_REQUIRE_MESSAGE(rows() >= 10 * second, "second " << second << "'s rows did not arrive");
  }
  cancel_all(runs);
  std::lock_guard guard{mtx};
  std::int64_t next = 0; // batches hold whole seconds, in order, every value once
  for (auto& [id, values] : batches) {
    if (values.empty())
      continue;
    std::sort(values.begin(), values.end());
    BOOST_TEST_CONTEXT("batch " << id) {
      BOOST_TEST(values.front() == next);
      BOOST_TEST(values.size() % 10 == 0u, values.size() << " rows: not whole seconds");
      for (std::size_t i = 0; i < values.size(); ++i)
        BOOST_TEST(values[i] == next + static_cast<std::int64_t>(i));
    }
    next = values.back() + 1;
  }
  BOOST_TEST(next >= 30);
}

BOOST_AUTO_TEST_CASE(a_failure_on_node_1_restarts_every_node_from_the_last_checkpoint) {
  const auto expected = one_process_sums(2);
  const auto dir = fresh_dir("sluice-cluster-restart-");
  const auto cluster = loopback_cluster(2);
  sinks::collect<reading> out;
  auto fail = std::make_shared<injected_failure>();
  std::vector<job> jobs;
  for (int n = 0; n < 2; ++n) {
    job_options o;
    o.parallelism = 2;
    o.trigger = triggers::continuous(20ms);
    o.runtime.cluster.nodes = cluster;
    o.runtime.cluster.node = n;
    o.checkpoints.dir = dir;
    o.checkpoints.interval = 20ms;
    if (n == 0)
      o.runtime.sync_point = [fail](const char* step, std::int64_t) {
        if (std::string_view{step} == "completed")
          ++fail->completed;
      };
    // 200,000 records at 200,000 a second: the failure comes after two checkpoints, with
    // input left to read (a failure after the input ends would not be one).
    jobs.push_back(sums_job(o, out, n == 1 ? fail : nullptr, 200'000.0));
  }
  auto results = run_all(jobs);
  for (auto& res : results)
    BOOST_REQUIRE_MESSAGE(res, (res ? "" : res.error().to_string()));
  BOOST_REQUIRE(fail->thrown.load());
  BOOST_TEST(fail->completed_when_thrown.load() >= 2);
  BOOST_TEST(results[0]->restarts == 1);
  BOOST_TEST(results[0]->checkpoints_completed > 2);
  // Restored state and positions: every record counted exactly once in the final sums
  // (the running sums in between are emitted again after the restart: the memory sink is
  // not transactional).
  BOOST_TEST(finals(out.records()) == expected);
  BOOST_TEST(std::filesystem::exists(dir / "node-1"));
  std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(a_savepoint_of_a_two_node_run_outlives_retention_on_every_node) {
  const auto expected = one_process_sums(2);
  const auto dir = fresh_dir("sluice-cluster-savepoint-");
  const auto cluster = loopback_cluster(2);
  auto completed = std::make_shared<std::atomic<std::int64_t>>(-1); // node 0's newest
  auto options = [&](int n, std::optional<std::int64_t> restore) {
    job_options o;
    o.parallelism = 2;
    o.trigger = triggers::continuous(20ms);
    o.runtime.cluster.nodes = cluster;
    o.runtime.cluster.node = n;
    o.checkpoints.dir = dir;
    o.checkpoints.interval = 20ms;
    o.checkpoints.retained = 2;
    o.checkpoints.restore_from = restore;
    if (n == 0)
      o.runtime.sync_point = [completed](const char* step, std::int64_t id) {
        if (std::string_view{step} == "completed")
          completed->store(id);
      };
    return o;
  };
  // The first run: a savepoint while the input is read, then checkpoints enough for
  // retention (2 kept) to remove every older checkpoint of every node's store.
  std::int64_t savepoint = -1;
  {
    sinks::collect<reading> out;
    std::vector<std::unique_ptr<job_execution>> runs;
    for (int n = 0; n < 2; ++n) {
      auto started = sums_job(options(n, std::nullopt), out, nullptr, 100'000.0).start();
      BOOST_REQUIRE_MESSAGE(started, (started ? "" : started.error().to_string()));
      runs.push_back(std::move(*started));
    }
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (completed->load() < 2 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(1ms);
    auto id = runs[0]->savepoint(false);
    BOOST_REQUIRE_MESSAGE(id, (id ? "" : id.error().to_string()));
    savepoint = *id;
    while (completed->load() < savepoint + 4 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(1ms);
    BOOST_REQUIRE_MESSAGE(completed->load() >= savepoint + 4,
                          "fewer than 4 checkpoints after the savepoint: retention was not tried");
    cancel_all(runs);
  }
  // The second run restores the savepoint on both nodes: every record counted once.
  sinks::collect<reading> out;
  std::vector<job> jobs;
  for (int n = 0; n < 2; ++n)
    jobs.push_back(sums_job(options(n, savepoint), out));
  auto results = run_all(jobs);
  for (auto& res : results)
    BOOST_REQUIRE_MESSAGE(res, (res ? "" : res.error().to_string()));
  BOOST_TEST(finals(out.records()) == expected);
  std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(garbage_sent_to_the_nodes_ports_while_the_job_runs_changes_nothing) {
  sinks::collect<reading> alone;
  job_options single;
  single.parallelism = 2;
  BOOST_REQUIRE(sums_job(single, alone).run());
  const auto expected = finals(alone.records());

  const auto cluster = loopback_cluster(2);
  sinks::collect<reading> out;
  std::vector<std::unique_ptr<job_execution>> runs;
  std::vector<job> jobs;
  for (int n = 0; n < 2; ++n) {
    job_options o;
    o.parallelism = 2;
    o.runtime.cluster.nodes = cluster;
    o.runtime.cluster.node = n;
    jobs.push_back(sums_job(o, out, nullptr, 400'000.0)); // about half a second
  }
  for (auto& j : jobs) {
    auto started = j.start();
    BOOST_REQUIRE(started);
    runs.push_back(std::move(*started));
  }
  // A stranger on both ports: a ZeroMQ peer that never says hello sending random messages,
  // multi-part messages and a well-formed data frame, and raw TCP noise. Bounded loops.
  zmq::context_t ctx;
  std::mt19937 rng{5};
  for (const auto& endpoint : cluster) {
    zmq::socket_t dealer{ctx, zmq::socket_type::dealer};
    dealer.set(zmq::sockopt::linger, 0);
    dealer.connect("tcp://" + endpoint);
    for (int i = 0; i < 500; ++i) {
      std::vector<std::uint8_t> bytes(1 + rng() % 100);
      for (auto& b : bytes)
        b = static_cast<std::uint8_t>(rng());
      dealer.send(zmq::buffer(bytes.data(), bytes.size()), zmq::send_flags::dontwait);
    }
    dealer.send(zmq::str_buffer("two"), zmq::send_flags::sndmore);
    dealer.send(zmq::str_buffer("parts"), zmq::send_flags::dontwait);
    std::vector<std::byte> frame;
    net::encode_frame({0, 0, net::data_body{{std::byte{1}, std::byte{7}}}}, frame);
    dealer.send(zmq::buffer(frame.data(), frame.size()), zmq::send_flags::dontwait);
    zmq::socket_t stream{ctx, zmq::socket_type::stream};
    stream.set(zmq::sockopt::linger, 0);
    stream.connect("tcp://" + endpoint);
    const auto rid = stream.get(zmq::sockopt::routing_id);
    for (int i = 0; i < 50; ++i) {
      std::vector<std::uint8_t> bytes(1 + rng() % 200);
      for (auto& b : bytes)
        b = static_cast<std::uint8_t>(rng() | 1);
      stream.send(zmq::buffer(rid), zmq::send_flags::sndmore);
      stream.send(zmq::buffer(bytes.data(), bytes.size()), zmq::send_flags::dontwait);
    }
  }
  for (auto& r : runs) {
    BOOST_REQUIRE_MESSAGE(r->wait_for(60s), "a node did not finish within a minute");
    auto res = r->wait();
    BOOST_REQUIRE_MESSAGE(res, (res ? "" : res.error().to_string()));
  }
  BOOST_TEST(out.size() == records);
  BOOST_TEST(finals(out.records()) == expected);
}

BOOST_AUTO_TEST_CASE(a_node_without_the_cluster_key_cannot_join) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("sluice-cluster-key-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  BOOST_REQUIRE(net::write_key_file(dir / "cluster.key"));
  BOOST_REQUIRE(net::write_key_file(dir / "other.key"));
  const auto cluster = loopback_cluster(2);
  sinks::collect<reading> a, b;
  std::vector<job> jobs;
  for (int n = 0; n < 2; ++n) {
    job_options o;
    o.parallelism = 2;
    o.runtime.cluster.nodes = cluster;
    o.runtime.cluster.node = n;
    o.runtime.cluster.key_file = dir / (n == 0 ? "cluster.key" : "other.key");
    o.runtime.cluster.heartbeat_interval = 100ms;
    o.runtime.cluster.heartbeat_timeout = 1s;
    o.runtime.cluster.join_timeout = 2s;
    jobs.push_back(sums_job(o, n == 0 ? a : b));
  }
  auto results = run_all(jobs);
  BOOST_REQUIRE(!results[0]);
  const auto text = results[0].error().to_string();
  BOOST_TEST_MESSAGE(text);
  BOOST_TEST(text.find("node 1 (127.0.0.1:") != std::string::npos);
  BOOST_TEST(text.find("did not join within 2000 ms") != std::string::npos);
  BOOST_REQUIRE(!results[1]); // nor does node 1 start anything
  BOOST_TEST(a.size() == 0u);
  BOOST_TEST(b.size() == 0u);
  std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(a_slow_sink_on_node_1_slows_node_0_within_the_credits) {
  // Node 1's sink instance takes a millisecond per record: node 0's source must wait for
  // credit instead of queueing, and never have more batches in flight on a channel than
  // its window (remote_credits across nodes, credits within a node).
  const auto cluster = loopback_cluster(2);
  constexpr std::uint64_t n = 2'000;
  std::atomic<std::uint64_t> seen{0};
  std::vector<job> jobs;
  for (int node = 0; node < 2; ++node) {
    job_options o;
    o.parallelism = 2;
    o.runtime.batch_size = 8;
    o.runtime.credits = 2;
    o.runtime.remote_credits = 3;
    o.runtime.cluster.nodes = cluster;
    o.runtime.cluster.node = node;
    job j{o};
    j.from(sources::generator({.count = n}, [](std::uint64_t i) {
       return reading{static_cast<std::int64_t>(i % 50), 1};
     }))
      .name("readings")
      .rebalance()
      .map([](const reading& r) { return r; })
      .name("pass")
      .sink_to(sinks::for_each<reading>([&seen, node](const reading&) {
        ++seen;
        if (node == 1) // a throttled sink: it makes the node slow, nothing waits on it
          std::this_thread::sleep_for(std::chrono::microseconds{300});
      }))
      .name("out");
    jobs.push_back(std::move(j));
  }
  auto results = run_all(jobs);
  for (auto& res : results)
    BOOST_REQUIRE_MESSAGE(res, (res ? "" : res.error().to_string()));
  BOOST_TEST(seen.load() == n);
  std::uint64_t waited = 0;
  for (const auto& t : results[0]->tasks) {
    if (t.chain.find("readings") != 0)
      continue;
    BOOST_TEST_MESSAGE("node 0 " << t.chain << "[" << t.instance << "]: max in flight "
                                 << t.max_in_flight << ", backpressure events "
                                 << t.backpressure_events);
    BOOST_TEST(t.max_in_flight <= 3u); // the remote window bounds every channel
    waited += t.backpressure_events;
  }
  BOOST_TEST(waited > 0u); // node 1's slowness reached node 0's source
  for (const auto& t : results[1]->tasks)
    BOOST_TEST(t.max_input_queue <= 2u * 3u * 2u); // credits of its inputs, nothing more
}

// Watermark alignment across nodes: the source instances run on different nodes, report to
// node 0's coordinator and get their allowances back as control messages. The fast
// instance never gets further ahead downstream than the drift plus one poll; without the
// remote path it would wait for its first allowance forever.
BOOST_AUTO_TEST_CASE(watermark_alignment_holds_across_nodes) {
  const auto cluster = loopback_cluster(2);
  auto seen = std::make_shared<spread_seen>();
  std::vector<job> jobs;
  for (int node = 0; node < 2; ++node) {
    job_options o;
    o.parallelism = 2;
    o.runtime.batch_size = 16;
    o.runtime.cluster.nodes = cluster;
    o.runtime.cluster.node = node;
    job j{o};
    j.from(drifting{}, watermarks::monotonous<tick>([](const tick& t) {
                         return event_time{duration{t.us}};
                       }).with_watermark_alignment("g", 300ms, 1ms))
      .name("ticks")
      .rebalance()
      .map([seen](const tick& t) {
        std::lock_guard lk{seen->m};
        auto& mx = seen->max[t.instance];
        mx = std::max(mx, t.us);
        ++seen->n;
        if (seen->max[0] >= 0 && seen->max[1] >= 0)
          seen->widest = std::max({seen->widest, seen->max[1] - seen->max[0],
                                   seen->max[0] - seen->max[1]});
        return t;
      })
      .name("spread")
      .parallelism(1)
      .sink_to(sinks::for_each<tick>([](const tick&) {}))
      .name("out");
    jobs.push_back(std::move(j));
  }
  {
    auto explained = jobs[0].explain();
    BOOST_REQUIRE(explained);
    BOOST_TEST_MESSAGE(*explained);
  }
  auto results = run_all(jobs);
  for (auto& res : results)
    BOOST_REQUIRE_MESSAGE(res, (res ? "" : res.error().to_string()));
  std::lock_guard lk{seen->m};
  BOOST_TEST(seen->n == 2200u);
  BOOST_TEST(seen->widest <= 400'000); // drift 300 ms + one poll of the fast instance
}

BOOST_AUTO_TEST_CASE(explain_names_the_node_of_every_instance) {
  job_options o;
  o.parallelism = 3;
  o.runtime.cluster.nodes = {"127.0.0.1:7001", "127.0.0.1:7002"};
  sinks::collect<reading> out;
  auto text = sums_job(o, out).explain();
  BOOST_REQUIRE_MESSAGE(text, (text ? "" : text.error().to_string()));
  BOOST_TEST_MESSAGE(*text);
  // Instances i of p run on node i * nodes / p: 0, 0, 1.
  BOOST_TEST(text->find("Placement on 2 nodes") != std::string::npos);
  BOOST_TEST(text->find("'readings' instance 2 of 3: node 0") != std::string::npos);
  BOOST_TEST(text->find("'readings' instance 3 of 3: node 1") != std::string::npos);
  BOOST_TEST(text->find("node 0: 127.0.0.1:7001 (coordinator)") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(an_edge_whose_type_cannot_cross_nodes_is_refused_naming_it) {
  struct opaque {
    std::int64_t v = 0;
  };
  const auto cluster = loopback_cluster(2);
  job_options o;
  o.parallelism = 2;
  o.runtime.cluster.nodes = cluster;
  o.runtime.cluster.node = 0;
  job j{o};
  sinks::collect<opaque> out;
  j.from(sources::generator({.count = 10}, [](std::uint64_t n) {
     return static_cast<std::int64_t>(n);
   }))
    .map([](const std::int64_t& x) { return opaque{x}; })
    .name("wrap")
    .rebalance()
    .map([](const opaque& x) { return x; })
    .name("unwrap")
    .sink_to(out);
  auto started = j.start();
  BOOST_REQUIRE(!started);
  const auto text = started.error().to_string();
  BOOST_TEST_MESSAGE(text);
  BOOST_TEST(text.find("'wrap' -> 'unwrap' crosses nodes") != std::string::npos);
  BOOST_TEST(text.find("opaque") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(another_job_on_a_peer_is_refused_naming_the_difference) {
  const auto cluster = loopback_cluster(2);
  sinks::collect<reading> a, b;
  job_options o0, o1;
  o0.parallelism = o1.parallelism = 2;
  o0.runtime.cluster.nodes = o1.runtime.cluster.nodes = cluster;
  o0.runtime.cluster.heartbeat_interval = o1.runtime.cluster.heartbeat_interval = 100ms;
  o0.runtime.cluster.heartbeat_timeout = o1.runtime.cluster.heartbeat_timeout = 5s;
  o1.runtime.cluster.node = 1;
  o1.parallelism = 3; // another plan: another fingerprint
  std::vector<job> jobs;
  jobs.push_back(sums_job(o0, a));
  jobs.push_back(sums_job(o1, b));
  auto results = run_all(jobs);
  BOOST_REQUIRE(!results[0]);
  BOOST_TEST_MESSAGE(results[0].error().to_string());
  BOOST_TEST(results[0].error().to_string().find("fingerprint differs") != std::string::npos);
  BOOST_TEST(results[0].error().to_string().find("node 1 (127.0.0.1:") != std::string::npos);
  BOOST_REQUIRE(!results[1]);
}

BOOST_AUTO_TEST_SUITE_END()
