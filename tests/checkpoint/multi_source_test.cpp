// Jobs with several source tasks of different lengths (bounded ones that end early and
// unbounded ones that never end by themselves), unions and an interval join, epochs every
// few milliseconds and checkpoints down to 10 ms, failed at random moments and restored from
// their latest checkpoint: the committed output equals an uninterrupted run's, and every
// completed checkpoint holds every piece (issue 23, defect 1: a source that reached its end
// used to pick its own barrier id, and a checkpoint could complete with pieces missing).
//
// CI runs a fixed set of seeds; SLUICE_MULTI_SOURCE_SEEDS=N runs N more (scripts/soak.sh).
#include <boost/test/unit_test.hpp>

#include "job_helpers.hpp"

#include <cstdlib>
#include <random>
#include <set>

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::ckpt;

namespace {

/// One source: records n in [first, first + count) at `rate` per second (processing time),
/// then the end (bounded) or nothing forever (unbounded: the job ends by cancel).
struct range_spec {
  std::uint64_t first = 0;
  std::uint64_t count = 0;
  double rate = 10'000;
  bool bounded = true;
  int parallelism = 1;
};

/// Record n of a range starting at `first`: a key among 50, a value, and an event time 10 ms
/// per record from the range's start, so that ranges overlap in event time.
reading range_reading(std::uint64_t first, std::uint64_t n) {
  const auto h = splitmix64(n);
  return {static_cast<std::int64_t>(h % key_count), static_cast<std::int64_t>(1 + (h >> 20) % 1000),
          at_ms(static_cast<std::int64_t>(n - first) * 10)};
}

template <class T = reading>
class range_source final : public source<T> {
public:
  explicit range_source(range_spec spec) : spec_(spec) {}
  result<void> open(const source_context& ctx) override {
    clock_ = ctx.processing_clock;
    step_ = static_cast<std::uint64_t>(ctx.parallelism);
    next_ = spec_.first + static_cast<std::uint64_t>(ctx.instance);
    started_ = clock_->now();
    emitted_ = 0;
    return {};
  }
  result<poll_result> poll(source_output<T>& out, std::size_t max) override {
    const auto end = spec_.first + spec_.count;
    if (next_ >= end)
      return spec_.bounded ? poll_result::end() : poll_result::idle(std::chrono::milliseconds{5});
    // Paced: at most rate/parallelism records per second of processing time since open.
    const double per_instance = spec_.rate / static_cast<double>(step_);
    const auto elapsed = std::chrono::duration<double>(clock_->now() - started_).count();
    const auto allowed = static_cast<std::uint64_t>(elapsed * per_instance) + 1;
    std::size_t n = 0;
    while (n < max && next_ < end && emitted_ < allowed) {
      out.records.push_back(range_reading(spec_.first, next_));
      next_ += step_;
      ++emitted_;
      ++n;
    }
    if (n == 0)
      return poll_result::idle(std::chrono::microseconds{500});
    return poll_result::more();
  }
  std::optional<std::string> position() const override { return std::to_string(next_); }
  result<void> seek(std::string_view pos) override {
    next_ = std::stoull(std::string{pos});
    return {};
  }

private:
  range_spec spec_;
  std::shared_ptr<const sluice::clock> clock_;
  std::uint64_t step_ = 1, next_ = 0, emitted_ = 0;
  sluice::clock::time_point started_{};
};

struct ranges {
  using record_type = reading;
  range_spec spec;
  std::unique_ptr<source<reading>> create(const source_context&) const {
    return std::make_unique<range_source<>>(spec);
  }
  std::string describe() const {
    return "ranges(" + std::to_string(spec.first) + "+" + std::to_string(spec.count) + ")";
  }
};

/// An interval join's match, identified by both sides' keys and event times.
struct match {
  std::int64_t key = 0;
  std::int64_t left_ms = 0;
  std::int64_t right_ms = 0;
  friend bool operator==(const match&, const match&) = default;
  friend auto operator<=>(const match&, const match&) = default;
};
template <class Inspector>
bool inspect(Inspector& f, match& x) {
  return f.object("match").fields(f.field("key", x.key), f.field("left_ms", x.left_ms),
                                  f.field("right_ms", x.right_ms));
}

enum class shape { union_windows_and_sums, interval_join };

/// One configuration of the test.
struct scenario {
  std::string name;
  shape what = shape::union_windows_and_sums;
  std::vector<range_spec> sources;
  std::chrono::milliseconds epoch{5};
  std::chrono::milliseconds checkpoint_interval{10};
  int parallelism = 2; ///< of the keyed operators and sinks
  int failures = 3;    ///< injected at random records
  unsigned seed = 1;

  std::uint64_t total() const {
    std::uint64_t n = 0;
    for (auto& s : sources)
      n += s.count;
    return n;
  }
  bool bounded() const {
    return std::all_of(sources.begin(), sources.end(), [](auto& s) { return s.bounded; });
  }
};

/// What a run shares with the code inside its job: the records seen so far (to know when an
/// unbounded job has read everything) and the records at which it fails.
struct run_control {
  std::mutex m;
  std::set<std::pair<std::uint64_t, std::int64_t>> seen; ///< (source index, ts) pairs
  std::atomic<std::uint64_t> passed{0};
  std::vector<std::uint64_t> fail_at; ///< ascending counts of `passed`; each fires once
  std::size_t next_failure = 0;
  std::size_t failures_fired = 0;

  void pass(std::uint64_t source, const reading& r) {
    const auto n = passed.fetch_add(1) + 1;
    std::lock_guard guard{m};
    seen.emplace(source, r.ts.time_since_epoch().count());
    if (next_failure < fail_at.size() && n >= fail_at[next_failure]) {
      ++next_failure;
      ++failures_fired;
      throw std::runtime_error("injected failure at record " + std::to_string(n));
    }
  }
  std::size_t seen_count() {
    std::lock_guard guard{m};
    return seen.size();
  }
};

struct outputs {
  std::vector<window_count> windows;
  std::vector<reading> sums;
  std::vector<match> matches;
  job_result result;
};

outputs run(const scenario& sc, const fs::path& dir, bool with_failures) {
  auto control = std::make_shared<run_control>();
  if (with_failures) {
    std::mt19937_64 rng{sc.seed};
    std::uniform_int_distribution<std::uint64_t> at{1, sc.total() * 9 / 10};
    for (int i = 0; i < sc.failures; ++i)
      control->fail_at.push_back(at(rng));
    std::sort(control->fail_at.begin(), control->fail_at.end());
  }
  job_options o;
  o.name = "multi-source";
  o.parallelism = sc.parallelism;
  o.trigger = triggers::continuous(sc.epoch);
  o.checkpoints.dir = dir / "checkpoints";
  o.checkpoints.interval = sc.checkpoint_interval;
  o.checkpoints.retained = 10'000; // keep every checkpoint for the invariant check
  o.checkpoints.restart = restart_strategy::fixed(sc.failures + 2, std::chrono::milliseconds{1});
  o.runtime.batch_size = 64;
  o.runtime.threads = 3;
  job j{o};
  std::vector<stream<reading>> streams;
  for (std::size_t i = 0; i < sc.sources.size(); ++i) {
    auto s = j.from(ranges{sc.sources[i]},
                    watermarks::bounded_out_of_orderness<reading>(duration{0}, ts_of))
               .name("src-" + std::to_string(i))
               .parallelism(sc.sources[i].parallelism);
    streams.push_back(s.map([control, i](const reading& r) {
                         control->pass(i, r);
                         return r;
                       })
                        .name("pass-" + std::to_string(i))
                        .parallelism(sc.sources[i].parallelism)
                        .with_timestamps(ts_of));
  }
  if (sc.what == shape::union_windows_and_sums) {
    auto all = streams[0];
    for (std::size_t i = 1; i < streams.size(); ++i)
      all = all.union_with(streams[i]);
    all.key_by(key_of)
      .window(windows::tumbling{.size = 1s})
      .count()
      .name("counts")
      .sink_to(sinks::file<window_count>{{.path = dir / "windows", .transactional = true}})
      .name("counts-out");
    all.key_by(key_of)
      .reduce(sum_values)
      .name("totals")
      .sink_to(sinks::file<reading>{{.path = dir / "sums", .transactional = true}})
      .name("totals-out");
  } else {
    auto left = streams[0];
    auto right = streams[1];
    for (std::size_t i = 2; i < streams.size(); ++i)
      right = right.union_with(streams[i]);
    left.key_by(key_of)
      .interval_join(right.key_by(key_of))
      .between(-15ms, 15ms)
      .apply([](const reading& l, const reading& r) {
        return match{l.key, l.ts.time_since_epoch().count() / 1000,
                     r.ts.time_since_epoch().count() / 1000};
      })
      .name("join")
      .sink_to(sinks::file<match>{{.path = dir / "matches", .transactional = true}})
      .name("matches-out");
  }
  auto exec = require_ok(j.start());
  if (!sc.bounded()) {
    // Unbounded sources never end: stop once every record has passed (the cancel's final
    // barrier then commits everything).
    BOOST_REQUIRE_MESSAGE(wait_until(*exec, [&] { return control->seen_count() >= sc.total(); }),
                          sc.name << ": the job never read all " << sc.total() << " records");
    exec->cancel();
  }
  outputs out;
  out.result = require_ok(exec->wait());
  if (with_failures)
    BOOST_TEST(control->failures_fired == control->fail_at.size(), sc.name);
  out.windows = sorted(read_committed<window_count>(dir / "windows"));
  out.sums = read_committed<reading>(dir / "sums");
  out.matches = sorted(read_committed<match>(dir / "matches"));
  return out;
}

/// Every complete checkpoint left in `dir` holds the position of every source instance: the
/// running ones snapshotted it, the finished ones' final positions were carried forward.
void check_every_checkpoint_is_whole(const scenario& sc, const fs::path& dir) {
  auto store = require_ok(checkpoint_store::open(dir / "checkpoints"));
  auto ids = require_ok(store->complete_ids());
  BOOST_TEST(!ids.empty(), sc.name);
  for (auto id : ids) {
    auto meta = require_ok(store->find(id));
    std::set<std::string> names;
    for (auto& p : meta.pieces)
      names.insert(p.name);
    for (std::size_t i = 0; i < sc.sources.size(); ++i)
      for (int inst = 0; inst < sc.sources[i].parallelism; ++inst) {
        const auto piece = "source/src-" + std::to_string(i) + "/" + std::to_string(inst);
        BOOST_TEST(names.count(piece) == 1u,
                   sc.name << ": checkpoint " << id << " lacks the position " << piece);
      }
  }
}

/// For each key, the running sums' steps are exactly that key's input values (each record
/// counted once, whatever order the union delivered them in), and the last sum is the total.
void check_sums(const scenario& sc, const std::vector<reading>& sums) {
  std::map<std::int64_t, std::multiset<std::int64_t>> expected, got;
  for (auto& src : sc.sources)
    for (auto n = src.first; n < src.first + src.count; ++n) {
      auto r = range_reading(src.first, n);
      expected[r.key].insert(r.value);
    }
  std::map<std::int64_t, std::int64_t> last;
  for (auto& r : sums) {
    got[r.key].insert(r.value - last[r.key]);
    last[r.key] = r.value;
  }
  BOOST_TEST(got.size() == expected.size(), sc.name);
  for (auto& [key, values] : expected)
    BOOST_TEST((got[key] == values), sc.name << ": key " << key << " saw " << got[key].size()
                                             << " steps for " << values.size() << " records");
}

std::vector<scenario> scenarios(unsigned extra_seeds) {
  std::vector<scenario> out;
  auto add = [&](std::string name, shape what, std::vector<range_spec> srcs,
                 std::chrono::milliseconds epoch, std::chrono::milliseconds interval, unsigned seed) {
    out.push_back(scenario{std::move(name), what, std::move(srcs), epoch, interval, 2, 3, seed});
  };
  // Two bounded sources of very different lengths: the short one ends long before the other.
  add("two bounded", shape::union_windows_and_sums,
      {{0, 600, 8'000, true, 1}, {1'000'000, 4'000, 8'000, true, 1}}, 5ms, 10ms, 11);
  // Four source tasks: a short bounded, a long bounded with two instances, an unbounded.
  add("bounded and unbounded", shape::union_windows_and_sums,
      {{0, 300, 6'000, true, 1},
       {1'000'000, 3'000, 8'000, true, 2},
       {2'000'000, 2'000, 6'000, false, 1}},
      7ms, 10ms, 12);
  add("three bounded, checkpoint every epoch", shape::union_windows_and_sums,
      {{0, 1'000, 8'000, true, 1}, {1'000'000, 200, 8'000, true, 1}, {2'000'000, 2'500, 8'000, true, 1}},
      10ms, 10ms, 13);
  add("join of bounded and unbounded", shape::interval_join,
      {{0, 2'000, 8'000, true, 1}, {1'000'000, 2'500, 8'000, false, 1}, {2'000'000, 500, 8'000, true, 1}},
      5ms, 20ms, 14);
  for (unsigned i = 0; i < extra_seeds; ++i) {
    auto base = out[i % 4];
    base.seed = 1000 + i;
    base.name += " seed " + std::to_string(base.seed);
    out.push_back(base);
  }
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(multi_source)

BOOST_AUTO_TEST_CASE(killed_and_restored_at_random_equals_an_uninterrupted_run) {
  unsigned extra = 0;
  if (const char* env = std::getenv("SLUICE_MULTI_SOURCE_SEEDS"))
    extra = static_cast<unsigned>(std::stoul(env));
  for (const auto& sc : scenarios(extra)) {
    BOOST_TEST_MESSAGE("scenario: " << sc.name);
    temp_dir plain, failed;
    auto reference = run(sc, plain.path, false);
    auto restored = run(sc, failed.path, true);
    // Two instances may fail in the same run: one restart serves both.
    BOOST_TEST(restored.result.restarts >= 1, sc.name);
    BOOST_TEST((restored.windows == reference.windows), sc.name << ": window counts differ ("
                                                               << restored.windows.size() << " vs "
                                                               << reference.windows.size() << ")");
    BOOST_TEST((restored.matches == reference.matches), sc.name << ": join matches differ ("
                                                               << restored.matches.size() << " vs "
                                                               << reference.matches.size() << ")");
    if (sc.what == shape::union_windows_and_sums) {
      check_sums(sc, reference.sums);
      check_sums(sc, restored.sums);
    }
    check_every_checkpoint_is_whole(sc, failed.path);
    check_every_checkpoint_is_whole(sc, plain.path);
  }
}

BOOST_AUTO_TEST_SUITE_END()
