// Exact replay of micro-batches (issue 23, defect 7): a batch that ran (a foreach_batch
// function saw its rows) but never completed its checkpoint is read again with exactly the
// same rows after a restart, whatever its sources would plan now; Spark's offset log.
#include <boost/test/unit_test.hpp>

#include "sluice/checkpoint/offset_log.hpp"
#include "sluice/sources/collection.hpp"
#include "sluice/sources/file.hpp"
#include "sluice/sources/generator.hpp"
#include "sluice/tests/microbatch/microbatch_helpers.hpp"

#include <algorithm>
#include <fstream>
#include <map>
#include <mutex>
#include <stdexcept>

using namespace sluice;
using namespace sluice::test;
namespace fs = std::filesystem;

namespace {

/// Each batch's rows as the foreach_batch function saw them, as bytes (JSON lines), per run.
struct batch_bytes {
  std::mutex m;
  std::map<std::int64_t, std::string> seen;
  void record(std::int64_t id, const std::vector<std::uint64_t>& rows) {
    std::string bytes;
    for (auto r : rows)
      bytes += std::to_string(r) + "\n";
    std::lock_guard guard{m};
    seen[id] = bytes;
  }
  std::map<std::int64_t, std::string> take() {
    std::lock_guard guard{m};
    return seen;
  }
};

/// generator(1000) -> foreach_batch, available-now, at most `cap` records per batch; the
/// function fails once, after recording, in batch `fail_in` (-1: never).
result<job_result> run_generator(const fs::path& ckpt, std::size_t cap, std::int64_t fail_in,
                                 batch_bytes& out) {
  auto o = mb::replay_options("replay", ckpt);
  o.runtime.max_records_per_trigger = cap;
  o.runtime.batch_size = 64;
  job j{o};
  auto* sink_out = &out;
  j.from(sources::generator({.count = 1000}, [](std::uint64_t n) { return n; }))
    .name("numbers")
    .sink_to(sinks::foreach_batch<std::uint64_t>(
      [sink_out, fail_in](std::int64_t id, std::vector<std::uint64_t>& rows) {
        sink_out->record(id, rows);
        if (id == fail_in)
          throw std::runtime_error("the batch function failed");
      }))
    .name("each-batch");
  return j.run();
}

} // namespace

BOOST_AUTO_TEST_SUITE(exact_replay)

BOOST_AUTO_TEST_CASE(a_batch_that_ran_but_did_not_complete_is_read_again_byte_for_byte) {
  temp_dir dir;
  batch_bytes first, second;
  // Run 1: batches of 100 records; batch 3 fails after its function saw records 300..399.
  auto failed = run_generator(dir.path, 100, 3, first);
  BOOST_REQUIRE(!failed.has_value());
  BOOST_TEST(failed.error().message.find("the batch function failed") != std::string::npos);
  auto seen1 = first.take();
  BOOST_REQUIRE(seen1.count(3));
  // Run 2 restores checkpoint 2 and, with another cap, would plan batch 3 as 250 records:
  // the offset log makes it read exactly what batch 3 read before.
  auto done = require_ok(run_generator(dir.path, 250, -1, second));
  BOOST_TEST(done.restored_from.value() == 2);
  auto seen2 = second.take();
  BOOST_REQUIRE(seen2.count(3));
  BOOST_TEST(seen2[3] == seen1[3]);
  // Later batches are planned afresh, with the new cap: 400..649, 650..899, 900..999.
  BOOST_TEST(seen2.size() == 4u);
  std::string all;
  for (auto& [id, bytes] : seen1)
    if (id < 3)
      all += bytes;
  for (auto& [id, bytes] : seen2)
    all += bytes;
  std::string expected;
  for (int n = 0; n < 1000; ++n)
    expected += std::to_string(n) + "\n";
  BOOST_TEST(all == expected);
}

BOOST_AUTO_TEST_CASE(a_watched_directorys_batch_reads_the_same_files_again) {
  temp_dir input, ckpt;
  auto write = [&](const std::string& name, int value) {
    std::ofstream out{input.path / name};
    out << "{\"key\": \"" << name << "\", \"value\": " << value << "}\n";
  };
  write("a.json", 1);
  write("b.json", 2);
  write("c.json", 3);
  write("d.json", 4);
  std::mutex m;
  std::map<std::int64_t, std::vector<std::string>> first, second;
  auto run = [&](std::map<std::int64_t, std::vector<std::string>>& seen, std::int64_t fail_in) {
    job j{mb::replay_options("files", ckpt.path)};
    j.from(sources::file<mb::kv>{{.path = input.path, .watch = true, .max_files_per_trigger = 2}})
      .name("files")
      .sink_to(sinks::foreach_batch<mb::kv>([&, fail_in](std::int64_t id, std::vector<mb::kv>& rows) {
        {
          std::lock_guard guard{m};
          for (auto& r : rows)
            seen[id].push_back(r.key);
        }
        if (id == fail_in)
          throw std::runtime_error("the batch function failed");
      }))
      .name("each-batch");
    return j.run();
  };
  BOOST_REQUIRE(!run(first, 1).has_value()); // batch 1 saw c and d, then failed
  BOOST_TEST(first[1] == (std::vector<std::string>{"c.json", "d.json"}),
             boost::test_tools::per_element());
  // New files arrive before the restart; "0.json" sorts first and a new plan would take it.
  write("0.json", 0);
  write("e.json", 5);
  auto done = require_ok(run(second, -1));
  BOOST_TEST(done.restored_from.value() == 0);
  BOOST_TEST(second[1] == first[1], boost::test_tools::per_element());
  BOOST_TEST(second[2] == (std::vector<std::string>{"0.json", "e.json"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_file_batch_planned_at_one_parallelism_is_split_anew_at_another) {
  temp_dir input, ckpt;
  auto write = [&](const std::string& name) {
    std::ofstream out{input.path / name};
    out << "{\"key\": \"" << name << "\", \"value\": 1}\n";
  };
  for (const char* name : {"a", "b", "c", "d", "e", "f", "g", "h"})
    write(std::string{name} + ".json");
  std::mutex m;
  std::map<std::int64_t, std::vector<std::string>> first, second;
  auto run = [&](std::map<std::int64_t, std::vector<std::string>>& seen, int parallelism,
                 std::int64_t fail_in) {
    auto o = mb::replay_options("files", ckpt.path);
    o.parallelism = parallelism;
    job j{o};
    j.from(sources::file<mb::kv>{{.path = input.path, .max_files_per_trigger = 2}})
      .name("files")
      .sink_to(sinks::foreach_batch<mb::kv>([&, fail_in](std::int64_t id, std::vector<mb::kv>& rows) {
        {
          std::lock_guard guard{m};
          for (auto& r : rows)
            seen[id].push_back(r.key);
          std::sort(seen[id].begin(), seen[id].end());
        }
        if (id == fail_in)
          throw std::runtime_error("the batch function failed");
      }))
      .name("each-batch");
    return j.run();
  };
  // The cap is the source's (Spark's maxFilesPerTrigger), not each instance's: two files
  // per batch between the two instances.
  BOOST_REQUIRE(!run(first, 2, 1).has_value()); // batch 1 read c and d, then failed
  BOOST_TEST(first[0] == (std::vector<std::string>{"a.json", "b.json"}),
             boost::test_tools::per_element());
  BOOST_TEST(first[1] == (std::vector<std::string>{"c.json", "d.json"}),
             boost::test_tools::per_element());
  // A new file sorts first: a fresh plan at parallelism 3 would take it into batch 1.
  write("0.json");
  auto done = require_ok(run(second, 3, -1));
  BOOST_TEST(done.restored_from.value() == 0);
  BOOST_TEST(second[1] == first[1], boost::test_tools::per_element());
  // Then two files per batch again, the three instances together, the new one first.
  BOOST_TEST(second[2] == (std::vector<std::string>{"0.json", "e.json"}),
             boost::test_tools::per_element());
  BOOST_TEST(second[3] == (std::vector<std::string>{"f.json", "g.json"}),
             boost::test_tools::per_element());
  BOOST_TEST(second[4] == (std::vector<std::string>{"h.json"}), boost::test_tools::per_element());
  BOOST_TEST(second.size() == 4u);
}

BOOST_AUTO_TEST_CASE(a_plan_made_at_another_parallelism_is_refused_by_name) {
  temp_dir dir;
  offset_log log{dir.path};
  require_ok(log.write(batch_plan{0, {{"numbers/0", "100"}}, {{"numbers", 1}}}));
  auto o = mb::replay_options("replay", dir.path);
  o.parallelism = 2;
  job j{o};
  j.from(sources::collection<std::uint64_t>{{1, 2, 3}})
    .name("numbers")
    .sink_to(sinks::foreach_batch<std::uint64_t>([](std::int64_t, std::vector<std::uint64_t>&) {}))
    .name("each-batch");
  auto done = j.run();
  BOOST_REQUIRE(!done.has_value());
  const auto& text = done.error().message;
  BOOST_TEST(text.find("micro-batch 0 was planned with source 'numbers' at parallelism 1") !=
               std::string::npos,
             text);
  BOOST_TEST(text.find("at parallelism 2") != std::string::npos, text);
}

BOOST_AUTO_TEST_CASE(the_log_is_written_durably_and_damage_is_an_error_not_an_empty_plan) {
  temp_dir dir;
  offset_log log{dir.path};
  batch_plan p{7, {{"files/0", "[\"a.csv\"]"}, {"kafka/1", "{\"t\":{\"0\":5}}"}}, {{"files", 1}, {"kafka", 2}}};
  require_ok(log.write(p));
  auto back = require_ok(log.read(7));
  BOOST_REQUIRE(back);
  BOOST_TEST((*back == p));
  BOOST_TEST(!require_ok(log.read(8)));
  {
    std::ofstream damaged{dir.path / "offsets" / "8"};
    damaged << "{\"version\": 1, \"batch\": ";
  }
  auto bad = log.read(8);
  BOOST_REQUIRE(!bad.has_value());
  BOOST_TEST(bad.error().message.find("offsets/8") != std::string::npos, bad.error().message);
  require_ok(log.purge_before(8));
  BOOST_TEST(!require_ok(log.read(7)));
}

BOOST_AUTO_TEST_CASE(a_damaged_position_or_planned_end_of_a_numbered_source_is_refused) {
  // The generator and collection sources checkpoint their position, and log a trigger's end,
  // as a sequence number. Text that is not one (a sign, spaces, trailing bytes, too many
  // digits) is damage: read as some other number, it would skip or repeat records silently.
  source_context ctx; // instance 0 of 1
  auto gen = sources::generator({.count = 100}, [](std::uint64_t n) { return n; }).create(ctx);
  auto col = sources::collection<std::uint64_t>{{1, 2, 3}}.create(ctx);
  for (source_base* s : {static_cast<source_base*>(gen.get()), static_cast<source_base*>(col.get())}) {
    require_ok(s->open(ctx));
    const std::string name = s == gen.get() ? "generator" : "collection";
    BOOST_TEST_CONTEXT(name) {
      for (std::string bad : {"-1", "+2", " 2", "2 ", "2x", "", "99999999999999999999"}) {
        BOOST_TEST_CONTEXT("'" << bad << "'") {
          auto sought = s->seek(bad);
          BOOST_TEST(!sought.has_value(), "seek accepted it");
          if (!sought)
            BOOST_TEST(sought.error().message.find("bad position '" + bad + "'") != std::string::npos,
                       sought.error().message);
          auto replayed = s->replay_trigger(bad);
          BOOST_TEST(!replayed.has_value(), "replay_trigger accepted it");
          if (!replayed)
            BOOST_TEST(replayed.error().message.find("bad planned end '" + bad + "'") !=
                         std::string::npos,
                       replayed.error().message);
        }
      }
      require_ok(s->seek("2"));
      BOOST_TEST(s->position().value_or("none") == "2");
      require_ok(s->replay_trigger("3"));
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
