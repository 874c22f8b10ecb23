#define BOOST_TEST_MODULE monitor_errors_test
// Debugging aids: record_text, failures that name the offending record, and taps.
#include <boost/test/unit_test.hpp>

#include "sluice/api/job.hpp"
#include "sluice/core/codec/record_text.hpp"
#include "sluice/operators/filter.hpp"
#include "sluice/operators/map.hpp"
#include "sluice/operators/record_loop.hpp"
#include "sluice/operators/tap.hpp"
#include "sluice/sinks/memory.hpp"
#include "sluice/sources/collection.hpp"
#include "sluice/sources/file.hpp"
#include "sluice/sources/generator.hpp"
#include "sluice/tests/common/temp_dir.hpp"
#include "sluice/tests/engine/test_helpers.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

using namespace sluice;
using namespace sluice::test;

namespace rt_test {

struct item {
  std::int64_t id = 0;
  std::string name;
  friend bool operator==(const item&, const item&) = default;
};
template <class Inspector>
bool inspect(Inspector& f, item& x) {
  return f.object("item").fields(f.field("id", x.id), f.field("name", x.name));
}

struct point {
  int x = 0, y = 0;
  friend std::ostream& operator<<(std::ostream& os, const point& p) {
    return os << "point(" << p.x << "," << p.y << ")";
  }
};

struct opaque {
  int hidden = 0;
};

/// Inspectable, but with a field no codec supports: must still compile and show.
struct odd {
  int n = 0;
  std::map<int, int> m;
};
template <class Inspector>
bool inspect(Inspector& f, odd& x) {
  return f.object("odd").fields(f.field("n", x.n), f.field("m", x.m));
}

} // namespace rt_test

using rt_test::item;

namespace {

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::vector<item> items(int n) {
  std::vector<item> v;
  for (int i = 0; i < n; ++i)
    v.push_back(item{i, "n" + std::to_string(i)});
  return v;
}

/// Lines a tap delivered, shared with the test thread.
struct tap_lines {
  mutable std::mutex m;
  std::vector<std::string> lines;

  tap_callback callback() {
    return [this](const std::string& line) {
      std::lock_guard lk{m};
      lines.push_back(line);
    };
  }
  std::size_t size() const {
    std::lock_guard lk{m};
    return lines.size();
  }
  std::vector<std::string> copy() const {
    std::lock_guard lk{m};
    return lines;
  }
};

} // namespace

// ------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(record_text_suite)

BOOST_AUTO_TEST_CASE(shows_every_kind_of_record) {
  BOOST_TEST(record_text(item{7, "seven"}) == R"({"id":7,"name":"seven"})");
  BOOST_TEST(record_text(std::string{"plain text"}) == "plain text");
  BOOST_TEST(record_text(42) == "42");
  BOOST_TEST(record_text(std::int64_t{-5}) == "-5");
  BOOST_TEST(record_text(true) == "true");
  BOOST_TEST(record_text(rt_test::point{1, 2}) == "point(1,2)");
  BOOST_TEST(record_text(rt_test::opaque{}) == "<record of type rt_test::opaque>");
  BOOST_TEST(record_text(std::optional<int>{}) == "null");
  BOOST_TEST(record_text(std::optional<int>{3}) == "3");
  BOOST_TEST(record_text(std::pair<int, std::string>{1, "x"}) == "(1, x)");
  BOOST_TEST(record_text(std::tuple<int, item, rt_test::point>{1, {2, "b"}, {3, 4}}) ==
             R"((1, {"id":2,"name":"b"}, point(3,4)))");
  BOOST_TEST(record_text(std::vector<int>{1, 2, 3}) == "[1,2,3]");
  const auto odd = record_text(rt_test::odd{5, {{1, 2}}}, 0);
  BOOST_TEST(odd.starts_with(R"({"n":5,"m":"<record of type std::map<int, int)"), odd);
  BOOST_TEST(odd.ends_with(R"(>>"})"), odd);
  // The same text as the JSON codec for codec types.
  BOOST_TEST(record_text(item{1, "a\"b"}) == codec::to_json_line(item{1, "a\"b"}));
}

BOOST_AUTO_TEST_CASE(stays_on_one_line) {
  BOOST_TEST(record_text(std::string{"a\nb\r\nc"}) == "a\\nb\\r\\nc");
  BOOST_TEST(record_text(item{1, "x\ny"}) == R"({"id":1,"name":"x\ny"})");
}

BOOST_AUTO_TEST_CASE(truncates_by_characters_never_inside_one) {
  const std::string long_text(300, 'a');
  const auto cut = record_text(long_text);
  BOOST_TEST(cut.size() == default_record_text_chars);
  BOOST_TEST(cut.ends_with("..."));
  BOOST_TEST(cut == std::string(197, 'a') + "...");
  BOOST_TEST(record_text(long_text, 10) == "aaaaaaa...");
  BOOST_TEST(record_text(long_text, 0) == long_text); // no bound
  BOOST_TEST(record_text(std::string{"short"}, 5) == "short");
  BOOST_TEST(record_text(std::string{"short!"}, 5) == "sh...");
  // "é" is two bytes, "€" three: characters are counted, sequences are never split.
  BOOST_TEST(record_text(std::string{"ééééé"}, 5) == "ééééé");
  BOOST_TEST(record_text(std::string{"éééééé"}, 5) == "éé...");
  BOOST_TEST(record_text(std::string{"€€€€€€"}, 4) == "€...");
  BOOST_TEST(record_text(std::string{"€€€€€€"}, 2) == "€€");
  const auto json = record_text(item{1, std::string(500, 'z')}, 30);
  BOOST_TEST(json == R"({"id":1,"name":"zzzzzzzzzzz...)");
}

BOOST_AUTO_TEST_CASE(describes_type_erased_batches) {
  batch<item> b{items(3)};
  const auto describe = describe_records<item>();
  BOOST_TEST(describe(b, 2) == R"({"id":2,"name":"n2"})");
  BOOST_TEST(describe_records<item>(8)(b, 0) == R"({"id"...)");
}

BOOST_AUTO_TEST_SUITE_END()

// ------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(record_errors)

BOOST_AUTO_TEST_CASE(for_each_record_names_the_record_and_keeps_the_cause) {
  std::vector<item> v = items(5);
  try {
    for_each_record(v, [](const item& r) {
      if (r.id == 3)
        throw std::invalid_argument("bad id");
    });
    BOOST_FAIL("expected a record_failure");
  } catch (const record_failure& e) {
    BOOST_TEST(e.cause() == "bad id");
    BOOST_TEST(e.record() == R"({"id":3,"name":"n3"})");
    BOOST_TEST(std::string{e.what()} == R"(bad id; record: {"id":3,"name":"n3"})");
    BOOST_TEST(static_cast<bool>(e.original()));
  }
  // Non-standard exceptions too.
  try {
    for_each_record(v, [](const item& r) {
      if (r.id == 1)
        throw 17;
    });
    BOOST_FAIL("expected a record_failure");
  } catch (const record_failure& e) {
    BOOST_TEST(e.cause() == "unknown exception");
    BOOST_TEST(e.record() == R"({"id":1,"name":"n1"})");
  }
}

BOOST_AUTO_TEST_CASE(an_inner_record_failure_passes_unchanged) {
  // What a fused downstream operator threw through `out.emit` already names its record.
  std::vector<int> v{1, 2, 3};
  try {
    for_each_record(v, [](int x) {
      if (x == 2)
        throw record_failure("inner cause", "inner record");
    });
    BOOST_FAIL("expected a record_failure");
  } catch (const record_failure& e) {
    BOOST_TEST(e.cause() == "inner cause");
    BOOST_TEST(e.record() == "inner record");
  }
}

BOOST_AUTO_TEST_CASE(pass_through_types_and_result_errors) {
  std::vector<int> v{1, 2, 3};
  BOOST_CHECK_THROW(for_each_record<std::logic_error>(v,
                                                      [](int x) {
                                                        if (x == 2)
                                                          throw std::domain_error("misuse");
                                                      }),
                    std::domain_error);
  int seen = 0;
  auto r = for_each_record(v, [&](int x) -> result<void> {
    ++seen;
    if (x == 2)
      return make_error(error_code::invalid_option, "two");
    return {};
  });
  BOOST_TEST(!r);
  BOOST_TEST(seen == 2);
  auto ok = for_each_record(v, [](int) -> result<void> { return {}; });
  BOOST_TEST(static_cast<bool>(ok));
}

BOOST_AUTO_TEST_CASE(operators_report_the_record_in_place_and_copied) {
  // map and filter have an in-place path (sole owner) and a copying one (shared batch).
  for (bool shared : {false, true}) {
    BOOST_TEST_CONTEXT("shared batch: " << shared) {
      map_operator<item, item, std::function<item(const item&)>> m{[](const item& r) {
        if (r.id == 2)
          throw std::runtime_error("map boom");
        return item{r.id, r.name + "!"};
      }};
      filter_operator<item, std::function<bool(const item&)>> f{[](const item& r) {
        if (r.id == 4)
          throw std::runtime_error("filter boom");
        return r.id % 2 == 0;
      }};
      capture_output out;
      for (auto* op : {static_cast<operator_base*>(&m), static_cast<operator_base*>(&f)}) {
        batch_ptr in = batch_of(items(6));
        batch_ptr keep = shared ? in : nullptr;
        try {
          permit_unchecked(op->process(0, std::move(in), out));
          BOOST_FAIL("expected a record_failure");
        } catch (const record_failure& e) {
          if (op == &m) {
            BOOST_TEST(e.cause() == "map boom");
            BOOST_TEST(e.record() == R"({"id":2,"name":"n2"})");
          } else {
            BOOST_TEST(e.cause() == "filter boom");
            BOOST_TEST(e.record() == R"({"id":4,"name":"n4"})");
          }
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(the_branch_free_filter_reports_the_record) {
  // Trivially copyable records take the branch-free compaction.
  filter_operator<int, std::function<bool(const int&)>> f{[](const int& x) {
    if (x == 5)
      throw std::runtime_error("five");
    return x % 2 == 0;
  }};
  capture_output out;
  try {
    permit_unchecked(f.process(0, batch_of(std::vector<int>{0, 1, 2, 3, 4, 5, 6}), out));
    BOOST_FAIL("expected a record_failure");
  } catch (const record_failure& e) {
    BOOST_TEST(e.cause() == "five");
    BOOST_TEST(e.record() == "5");
  }
  // And keeps the right records when nothing throws.
  permit_unchecked(f.process(0, batch_of(std::vector<int>{0, 1, 2, 3, 4, 6, 7, 8}), out));
  BOOST_TEST((out.records<int>() == std::vector<int>{0, 2, 4, 6, 8}));
}

BOOST_AUTO_TEST_CASE(a_throwing_map_names_operator_instance_cause_and_record) {
  // The collection's instance i reads elements i, i+2, ...: element 7 reaches instance 1,
  // "instance 2 of 2".
  job j{{.parallelism = 2}};
  auto out = sinks::collect<item>{};
  j.from(sources::collection<item>{items(100)})
    .map([](const item& r) {
      if (r.id == 7)
        throw std::runtime_error("bad item 7");
      return r;
    })
    .name("parse")
    .sink_to(out);
  auto err = require_error(j.run());
  BOOST_TEST_MESSAGE(err.to_string());
  BOOST_TEST(err.code == error_code::user_function_failed);
  BOOST_TEST(err.message ==
               R"(operator 'parse' (instance 2 of 2) threw: bad item 7; record: {"id":7,"name":"n7"})",
             err.message);
}

BOOST_AUTO_TEST_CASE(a_throwing_filter_after_a_map_names_the_filter_and_its_input) {
  // map -> filter fuse into one chain: the filter's own input (the map's output) is named.
  job j;
  auto out = sinks::collect<item>{};
  j.from(sources::collection<item>{items(20)})
    .map([](const item& r) { return item{r.id * 10, "mapped-" + r.name}; })
    .name("enrich")
    .filter([](const item& r) {
      if (r.id == 50)
        throw std::out_of_range("no fifty");
      return true;
    })
    .name("check")
    .sink_to(out);
  auto err = require_error(j.run());
  BOOST_TEST_MESSAGE(err.to_string());
  BOOST_TEST(err.code == error_code::user_function_failed);
  BOOST_TEST(err.message ==
               R"(operator 'check' (instance 1 of 1) threw: no fifty; record: {"id":50,"name":"mapped-n5"})",
             err.message);
}

BOOST_AUTO_TEST_CASE(a_keyed_reduce_names_the_record) {
  job j;
  auto out = sinks::collect<item>{};
  j.from(sources::collection<item>{items(20)})
    .key_by([](const item& r) { return r.id % 3; })
    .reduce([](const item& a, const item& b) {
      if (b.id == 13)
        throw std::runtime_error("thirteen");
      return item{a.id + b.id, a.name};
    })
    .name("sum")
    .sink_to(out);
  auto err = require_error(j.run());
  BOOST_TEST(contains(err.message, "operator 'sum' (instance 1 of 1) threw: thirteen; record: "
                                   R"({"id":13,"name":"n13"})"),
             err.message);
}

BOOST_AUTO_TEST_CASE(a_malformed_json_line_names_file_line_and_text) {
  temp_dir dir;
  const std::string bad = R"({"id": 2, "name": )" + std::string(300, 'x');
  auto file = dir.write("in.jsonl", R"({"id": 1, "name": "a"})" "\n" + bad + "\n" +
                                      R"({"id": 3, "name": "c"})" "\n");
  job j;
  auto out = sinks::collect<item>{};
  j.from(sources::file<item>{{.path = file}}).name("in").sink_to(out);
  auto err = require_error(j.run());
  BOOST_TEST_MESSAGE(err.to_string());
  BOOST_TEST(err.code == error_code::malformed_record);
  BOOST_TEST(contains(err.message, "operator 'in'"), err.message);
  BOOST_TEST(contains(err.message, file.string() + ":2: "), err.message);
  // The line, cut to 200 characters.
  BOOST_TEST(contains(err.message, "; line: " + bad.substr(0, 197) + "..."), err.message);
  BOOST_TEST(!contains(err.message, bad.substr(0, 198)), err.message);
}

BOOST_AUTO_TEST_SUITE_END()

// ------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(tap)

BOOST_AUTO_TEST_CASE(token_bucket_is_deterministic_on_a_manual_clock) {
  auto clk = std::make_shared<manual_clock>();
  int calls = 0;
  tap_state s{5, [&](const std::string&) { ++calls; }, clk};
  BOOST_TEST(s.take(3) == 3u);
  BOOST_TEST(s.take(3) == 2u);
  BOOST_TEST(s.take(100) == 0u);
  clk->advance(std::chrono::milliseconds{400}); // 2 tokens
  BOOST_TEST(s.take(100) == 2u);
  clk->advance(std::chrono::seconds{10}); // refills to the burst, not beyond
  BOOST_TEST(s.take(100) == 5u);
  // Rates below one per second still let one line through.
  tap_state slow{0.5, [](const std::string&) {}, clk};
  BOOST_TEST(slow.take(10) == 1u);
  BOOST_TEST(slow.take(10) == 0u);
  clk->advance(std::chrono::seconds{2});
  BOOST_TEST(slow.take(10) == 1u);
  s.write("x");
  s.stop();
  s.write("y");
  BOOST_TEST(calls == 1);
}

BOOST_AUTO_TEST_CASE(a_static_tap_shows_records_within_the_bound) {
  // A manual clock that never moves: the bucket's 5 tokens are all there is, over both
  // instances of the map.
  auto clk = std::make_shared<manual_clock>();
  tap_lines lines;
  job j{{.parallelism = 2,
         .runtime = {.batch_size = 64,
                     .processing_clock = clk,
                     .taps = {tap_spec{"double", 5, lines.callback()}}}}};
  auto out = sinks::collect<item>{};
  j.from(sources::generator({.count = 5000},
                            [](std::uint64_t n) {
                              return item{static_cast<std::int64_t>(n), "g" + std::to_string(n)};
                            }))
    .name("numbers")
    .map([](const item& r) { return item{r.id * 2, r.name}; })
    .name("double")
    .sink_to(out)
    .name("out");
  require_ok(j.run());

  const auto got = lines.copy();
  BOOST_TEST(got.size() == 5u);
  for (const auto& l : got) {
    BOOST_TEST_CONTEXT(l) {
      BOOST_TEST((l.starts_with("operator double[0] out: {\"id\":") ||
                  l.starts_with("operator double[1] out: {\"id\":")));
      BOOST_TEST(contains(l, ",\"name\":\"g"));
      // Real records of the map's output: even ids, the name of the id's half.
      const auto json = nlohmann::json::parse(l.substr(l.find(": ") + 2));
      const auto id = json["id"].get<std::int64_t>();
      BOOST_TEST(id % 2 == 0);
      BOOST_TEST(json["name"].get<std::string>() == "g" + std::to_string(id / 2));
    }
  }
  // The job's output is unchanged by the tap.
  auto records = out.records();
  std::sort(records.begin(), records.end(), [](auto& a, auto& b) { return a.id < b.id; });
  BOOST_REQUIRE(records.size() == 5000u);
  for (std::size_t i = 0; i < records.size(); ++i)
    BOOST_TEST((records[i] == item{static_cast<std::int64_t>(2 * i), "g" + std::to_string(i)}));
}

BOOST_AUTO_TEST_CASE(a_tap_started_at_run_time_follows_the_clock_and_untap_stops_it) {
  auto clk = std::make_shared<manual_clock>();
  job j{{.runtime = {.batch_size = 64, .processing_clock = clk}}};
  auto out = sinks::collect<std::uint64_t>{};
  j.from(sources::generator({}, [](std::uint64_t n) { return n; }))
    .name("numbers")
    .map([](const std::uint64_t& x) { return x + 1; })
    .name("plus-one")
    .sink_to(out);
  auto exec = require_ok(j.start());
  tap_lines lines;
  /// Waits until the sink has `more` records beyond what it has now.
  auto flow = [&](std::size_t more) {
    const auto target = out.size() + more;
    BOOST_REQUIRE(wait_until(*exec, [&] { return out.size() >= target; }));
  };

  require_ok(exec->tap("plus-one", 3, lines.callback()));
  BOOST_REQUIRE(wait_until(*exec, [&] { return lines.size() >= 3; }));
  flow(20'000); // the clock stands still: no more tokens
  BOOST_TEST(lines.size() == 3u);

  clk->advance(std::chrono::seconds{1});
  BOOST_REQUIRE(wait_until(*exec, [&] { return lines.size() >= 6; }));
  flow(20'000);
  BOOST_TEST(lines.size() == 6u);

  exec->untap("plus-one");
  const auto after_untap = lines.size();
  clk->advance(std::chrono::seconds{10});
  flow(20'000);
  BOOST_TEST(lines.size() == after_untap);
  BOOST_TEST(after_untap == 6u);

  // Replacing a tap starts a fresh bucket.
  require_ok(exec->tap("numbers", 2, lines.callback()));
  BOOST_REQUIRE(wait_until(*exec, [&] { return lines.size() >= 8; }));
  exec->untap("numbers");

  exec->cancel();
  auto done = require_ok(exec->wait());
  BOOST_TEST(done.cancelled);

  const auto got = lines.copy();
  BOOST_REQUIRE(got.size() == 8u);
  for (std::size_t i = 0; i < 6; ++i)
    BOOST_TEST(got[i].starts_with("operator plus-one[0] out: "), got[i]);
  for (std::size_t i = 6; i < 8; ++i)
    BOOST_TEST(got[i].starts_with("operator numbers[0] out: "), got[i]);
  // Output unchanged: 1, 2, 3, ... in order.
  const auto records = out.records();
  BOOST_REQUIRE(!records.empty());
  for (std::size_t i = 0; i < records.size(); ++i)
    if (records[i] != i + 1) {
      BOOST_FAIL("record " << i << " is " << records[i]);
      break;
    }
}

BOOST_AUTO_TEST_CASE(an_unknown_operator_fails_clearly) {
  auto clk = std::make_shared<manual_clock>();
  {
    job j{{.runtime = {.processing_clock = clk}}};
    auto out = sinks::collect<std::uint64_t>{};
    j.from(sources::generator({}, [](std::uint64_t n) { return n; }))
      .name("numbers")
      .map([](const std::uint64_t& x) { return x; })
      .name("same")
      .sink_to(out)
      .name("out");
    auto exec = require_ok(j.start());
    auto err = require_error(exec->tap("nope", 5, [](const std::string&) {}));
    BOOST_TEST(err.code == error_code::invalid_option);
    BOOST_TEST(err.message == "tap: no operator named 'nope'; operators with output: "
                              "'numbers', 'same'",
               err.message);
    err = require_error(exec->tap("out", 5, [](const std::string&) {}));
    BOOST_TEST(contains(err.message, "'out' has no output"), err.message);
    err = require_error(exec->tap("same", 0, [](const std::string&) {}));
    BOOST_TEST(contains(err.message, "max_per_second must be positive"), err.message);
    exec->untap("nope"); // harmless
    exec->cancel();
    BOOST_TEST(require_ok(exec->wait()).cancelled);
  }
  // The static form refuses to start.
  job j{{.runtime = {.processing_clock = clk, .taps = {tap_spec{"missing", 1, [](auto&) {}}}}}};
  auto out = sinks::collect<int>{};
  j.from(sources::collection<int>{{1, 2, 3}}).name("ints").sink_to(out);
  auto err = require_error(j.run());
  BOOST_TEST(err.code == error_code::invalid_option);
  BOOST_TEST(contains(err.message, "no operator named 'missing'"), err.message);
  BOOST_TEST(contains(err.message, "'ints'"), err.message);
}

BOOST_AUTO_TEST_SUITE_END()
