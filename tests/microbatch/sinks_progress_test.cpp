// The sinks that work per epoch (the memory table, the console under an output mode) and
// the progress reports (Spark's StreamingQueryProgress): their numbers agree with each
// other and with what the sinks received, and their JSON has Spark's layout.
#include <boost/test/unit_test.hpp>

#include "microbatch_helpers.hpp"

#include "sluice/api/job.hpp"
#include "sluice/operators/window/window_operator.hpp"
#include "sluice/sinks/console.hpp"
#include "sluice/sinks/memory.hpp"
#include "sluice/sources/collection.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::mb;

namespace {

/// What a memory table held when each epoch's progress was reported (the sinks publish
/// before the tasks acknowledge the epoch, so the report sees the epoch's table).
template <class T>
struct table_snapshots {
  struct shared {
    std::mutex mtx;
    std::vector<std::pair<std::int64_t, std::vector<T>>> at; // (last_epoch, rows) per report
  };
  std::shared_ptr<shared> s = std::make_shared<shared>();

  std::function<void(const query_progress&)> callback(sinks::memory_table<T> table) {
    return [s = s, table](const query_progress&) {
      std::lock_guard guard{s->mtx};
      s->at.emplace_back(table.last_epoch(), table.rows());
    };
  }
  std::vector<std::pair<std::int64_t, std::vector<T>>> get() const {
    std::lock_guard guard{s->mtx};
    return s->at;
  }
};

} // namespace

// -- the memory table ----------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(memory_table)

BOOST_AUTO_TEST_CASE(append_accumulates_the_rows_of_every_epoch) {
  temp_dir dir;
  write_word_files(dir);
  auto table = sinks::memory_table<word_count>{};
  table_snapshots<word_count> snaps;
  job j{{.name = "words",
         .trigger = triggers::available_now(),
         .output_mode = output_mode::append,
         .on_progress = snaps.callback(table)}};
  word_count_job(j, files_in(dir), table);
  require_ok(j.run());
  auto at = snaps.get();
  BOOST_REQUIRE_EQUAL(at.size(), 5u);
  const strings after_3{"a[0,10)=2", "a[10,20)=2", "b[0,10)=3", "c[10,20)=1"};
  strings after_4 = after_3;
  after_4.push_back("a[20,30)=1");
  std::sort(after_4.begin(), after_4.end());
  const std::vector<strings> want{{}, {}, {}, after_3, after_4};
  for (std::size_t b = 0; b < at.size(); ++b) {
    BOOST_TEST_CONTEXT("epoch " << b) {
      BOOST_TEST(at[b].first == static_cast<std::int64_t>(b));
      BOOST_TEST(texts(at[b].second, row_text) == want[b], boost::test_tools::per_element());
    }
  }
  BOOST_TEST(texts(table.rows(), row_text) == after_4, boost::test_tools::per_element());
  BOOST_TEST(table.last_epoch() == 4);
  // where(): a SELECT over the result table.
  auto only_a = table.table->where([](const word_count& r) { return r.key == "a"; });
  BOOST_TEST(texts(only_a, row_text) == (strings{"a[0,10)=2", "a[10,20)=2", "a[20,30)=1"}),
             boost::test_tools::per_element());
  BOOST_TEST(table.table->size() == 5u);
}

BOOST_AUTO_TEST_CASE(complete_replaces_the_table_with_each_epoch) {
  auto table = sinks::memory_table<kv>{};
  table_snapshots<kv> snaps;
  auto opts = split_options(output_mode::complete);
  opts.on_progress = snaps.callback(table);
  job j{opts};
  // Two aggregating instances, two table instances: each replaces its own part.
  j.from(sources::collection<kv>{sales()})
    .key_by(key_of_kv)
    .reduce(sum_kv)
    .name("totals")
    .sink_to(table);
  require_ok(j.run());
  auto at = snaps.get();
  BOOST_REQUIRE_EQUAL(at.size(), 3u);
  const std::vector<strings> want{{"a=4", "b=2", "c=4"},
                                  {"a=5", "b=32", "c=4", "d=5"},
                                  {"a=7", "b=32", "c=4", "d=5", "e=7"}};
  for (std::size_t b = 0; b < at.size(); ++b) {
    BOOST_TEST_CONTEXT("epoch " << b) {
      BOOST_TEST(at[b].first == static_cast<std::int64_t>(b));
      BOOST_TEST(texts(at[b].second, kv_text) == want[b], boost::test_tools::per_element());
    }
  }
  // The table is the last epoch's result table, not every epoch's rows.
  BOOST_TEST(texts(table.rows(), kv_text) == want.back(), boost::test_tools::per_element());
  BOOST_TEST(table.last_epoch() == 2);
  auto big = table.table->where([](const kv& r) { return r.value > 5; });
  BOOST_TEST(texts(big, kv_text) == (strings{"a=7", "b=32", "e=7"}),
             boost::test_tools::per_element());
  BOOST_TEST(table.table->where([](const kv& r) { return r.key == "z"; }).empty());
}

BOOST_AUTO_TEST_SUITE_END()

// -- the console sink ----------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(console_batches)

namespace {

/// Splits console output into (batch id, lines) sections at Spark's batch headers; lines
/// before the first header go to batch -1.
std::vector<std::pair<std::int64_t, strings>> sections(const std::string& text) {
  const std::string rule = "-------------------------------------------";
  std::vector<std::pair<std::int64_t, strings>> out;
  std::istringstream in{text};
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);)
    lines.push_back(l);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i] == rule && i + 2 < lines.size() && lines[i + 1].starts_with("Batch: ") &&
        lines[i + 2] == rule) {
      out.emplace_back(std::stoll(lines[i + 1].substr(7)), strings{});
      i += 2;
      continue;
    }
    if (out.empty())
      out.emplace_back(-1, strings{});
    out.back().second.push_back(lines[i]);
  }
  for (auto& [id, rows] : out)
    std::sort(rows.begin(), rows.end());
  return out;
}

strings json_rows(std::vector<kv> rows) {
  strings out;
  for (auto& r : rows)
    out.push_back(codec::to_json_line(r));
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(prints_a_batch_header_per_epoch_under_an_output_mode) {
  for (auto mode : {output_mode::update, output_mode::complete}) {
    BOOST_TEST_CONTEXT(to_string(mode)) {
      std::ostringstream text;
      job j{split_options(mode)};
      j.from(sources::collection<kv>{sales()})
        .key_by(key_of_kv)
        .reduce(sum_kv)
        .sink_to(sinks::console<kv>{{.out = &text}})
        .parallelism(1);
      require_ok(j.run());
      auto got = sections(text.str());
      std::vector<std::pair<std::int64_t, strings>> want;
      if (mode == output_mode::update)
        want = {{0, json_rows({{"a", 4}, {"b", 2}, {"c", 4}})},
                {1, json_rows({{"a", 5}, {"b", 32}, {"d", 5}})},
                {2, json_rows({{"a", 7}, {"e", 7}})}};
      else
        want = {{0, json_rows({{"a", 4}, {"b", 2}, {"c", 4}})},
                {1, json_rows({{"a", 5}, {"b", 32}, {"c", 4}, {"d", 5}})},
                {2, json_rows({{"a", 7}, {"b", 32}, {"c", 4}, {"d", 5}, {"e", 7}})}};
      BOOST_REQUIRE_EQUAL(got.size(), want.size());
      for (std::size_t b = 0; b < want.size(); ++b) {
        BOOST_TEST(got[b].first == want[b].first);
        BOOST_TEST(got[b].second == want[b].second, boost::test_tools::per_element());
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(prints_empty_batches_and_tables_too) {
  // Append over the word files: batches 0-2 have no rows, and still get their header.
  temp_dir dir;
  write_word_files(dir);
  std::ostringstream text;
  job j{{.name = "words", .trigger = triggers::available_now(), .output_mode = output_mode::append}};
  word_count_job(j, files_in(dir),
                 sinks::console<word_count>{{.format = sinks::console_format::table, .out = &text}});
  require_ok(j.run());
  auto got = sections(text.str());
  BOOST_REQUIRE_EQUAL(got.size(), 5u);
  for (std::size_t b = 0; b < got.size(); ++b) {
    BOOST_TEST(got[b].first == static_cast<std::int64_t>(b));
    // A table: borders, a header line, and one line per row.
    const std::size_t rows = b == 3 ? 4 : b == 4 ? 1 : 0;
    BOOST_TEST(got[b].second.size() == (rows ? rows + 4 : 0u), "batch " << b);
  }
}

BOOST_AUTO_TEST_CASE(no_batch_headers_without_an_output_mode) {
  std::ostringstream text;
  job j{{.name = "flink", .trigger = triggers::continuous()}};
  j.from(sources::collection<kv>{sales()})
    .key_by(key_of_kv)
    .reduce(sum_kv)
    .sink_to(sinks::console<kv>{{.out = &text}});
  require_ok(j.run());
  BOOST_TEST(text.str().find("Batch:") == std::string::npos, text.str());
  // Flink's semantics: a running value per input record.
  auto got = sections(text.str());
  BOOST_REQUIRE_EQUAL(got.size(), 1u);
  BOOST_TEST(got[0].first == -1);
  BOOST_TEST(got[0].second.size() == sales().size());
}

BOOST_AUTO_TEST_SUITE_END()

// -- progress reports ----------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(progress)

namespace {

struct word_progress {
  std::vector<query_progress> reports;
  std::vector<std::string> json;
  std::vector<batch_log<word_count>::entry> batches;
};

word_progress run_word_progress(output_mode mode) {
  temp_dir dir;
  write_word_files(dir);
  progress_log progress;
  batch_log<word_count> log;
  job j{{.name = "words",
         .trigger = triggers::available_now(),
         .output_mode = mode,
         .on_progress = progress.callback()}};
  word_count_job(j, files_in(dir), log.sink());
  // recent_progress() and on_progress see the same reports.
  auto recent = run_until_it_ends(j).progress;
  auto reports = progress.reports();
  BOOST_REQUIRE_EQUAL(recent.size(), reports.size());
  for (std::size_t i = 0; i < recent.size(); ++i)
    BOOST_TEST(recent[i].to_json() == reports[i].to_json());
  return {reports, progress.json(), log.entries()};
}

} // namespace

BOOST_AUTO_TEST_CASE(numbers_agree_with_the_input_the_state_and_the_sink) {
  for (auto mode : {output_mode::append, output_mode::update, output_mode::complete}) {
    BOOST_TEST_CONTEXT(to_string(mode)) {
      auto r = run_word_progress(mode);
      const bool complete = mode == output_mode::complete;
      BOOST_REQUIRE_EQUAL(r.reports.size(), complete ? 4u : 5u);
      BOOST_REQUIRE_EQUAL(r.batches.size(), r.reports.size());
      // Windows each batch creates (complete keeps x@-2 in batch 3).
      const std::vector<std::uint64_t> created{2, 2, 1, complete ? 2u : 1u, 0};
      const std::vector<std::uint64_t> removed{0, 0, 0, complete ? 0u : 4u, complete ? 0u : 1u};
      std::uint64_t inputs = 0, total_before = 0;
      for (std::size_t b = 0; b < r.reports.size(); ++b) {
        BOOST_TEST_CONTEXT("batch " << b) {
          auto& p = r.reports[b];
          BOOST_TEST(p.batch_id == static_cast<std::int64_t>(b));
          inputs += p.num_input_rows;
          std::uint64_t per_source = 0;
          for (auto& s : p.sources)
            per_source += s.num_input_rows;
          BOOST_TEST(per_source == p.num_input_rows);
          BOOST_REQUIRE_EQUAL(p.state_operators.size(), 1u);
          auto& s = p.state_operators[0];
          BOOST_TEST(s.name == "counts");
          BOOST_TEST(s.num_rows_removed == removed[b]);
          BOOST_TEST(s.num_rows_total == total_before + created[b] - s.num_rows_removed);
          total_before = s.num_rows_total;
          BOOST_TEST(p.sink.num_output_rows == r.batches[b].rows.size());
          BOOST_TEST(r.batches[b].batch_id == p.batch_id);
        }
      }
      BOOST_TEST(inputs == word_rows);
    }
  }
}

BOOST_AUTO_TEST_CASE(offsets_chain_from_null) {
  auto r = run_word_progress(output_mode::append);
  BOOST_REQUIRE_EQUAL(r.reports.size(), 5u);
  std::string previous_end = "null";
  const std::vector<int> files{1, 2, 3, 4, 4};
  for (std::size_t b = 0; b < r.reports.size(); ++b) {
    BOOST_TEST_CONTEXT("batch " << b) {
      BOOST_REQUIRE_EQUAL(r.reports[b].sources.size(), 1u);
      auto& s = r.reports[b].sources[0];
      BOOST_TEST(nlohmann::json::parse(s.start_offset) == nlohmann::json::parse(previous_end));
      BOOST_TEST(nlohmann::json::parse(s.end_offset) ==
                 (nlohmann::json{{"files", files[b]}}));
      previous_end = s.end_offset;
    }
  }
  BOOST_TEST(r.reports[0].sources[0].start_offset == "null");
}

BOOST_AUTO_TEST_CASE(json_has_sparks_layout) {
  auto r = run_word_progress(output_mode::append);
  BOOST_REQUIRE_EQUAL(r.json.size(), 5u);
  const std::vector<std::string> top{"id", "runId", "name", "timestamp", "batchId", "numInputRows",
                                     "inputRowsPerSecond", "processedRowsPerSecond", "durationMs",
                                     "eventTime", "stateOperators", "sources", "sink",
                                     "sluice"}; // Sluice's own fields, after Spark's
  const std::regex uuid{"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"};
  const std::regex iso{R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"};
  // Watermarks and event-time statistics, in seconds after the base (2023-11-14T22:13:20Z).
  const std::vector<std::string> watermark{"1970-01-01T00:00:00.000Z", "2023-11-14T22:13:19.000Z",
                                           "2023-11-14T22:13:28.000Z", "2023-11-14T22:13:40.000Z",
                                           "2023-11-14T22:13:51.000Z"};
  std::string id, run_id;
  std::string previous_end = "null";
  for (std::size_t b = 0; b < r.json.size(); ++b) {
    BOOST_TEST_CONTEXT("batch " << b << ": " << r.json[b]) {
      auto j = nlohmann::ordered_json::parse(r.json[b]);
      std::vector<std::string> keys;
      for (auto& [k, v] : j.items())
        keys.push_back(k);
      BOOST_TEST(keys == top, boost::test_tools::per_element());
      BOOST_TEST(j["id"].is_string());
      BOOST_TEST(std::regex_match(j["id"].get<std::string>(), uuid));
      BOOST_TEST(std::regex_match(j["runId"].get<std::string>(), uuid));
      if (b == 0) {
        id = j["id"];
        run_id = j["runId"];
        BOOST_TEST(id != run_id);
      }
      BOOST_TEST(j["id"] == id, "the query's id is the same for every batch");
      BOOST_TEST(j["runId"] == run_id);
      BOOST_TEST(j["name"] == "words");
      BOOST_TEST(std::regex_match(j["timestamp"].get<std::string>(), iso));
      BOOST_TEST(j["batchId"] == b);
      BOOST_TEST(j["numInputRows"].is_number_unsigned());
      BOOST_TEST(j["inputRowsPerSecond"].is_number());
      BOOST_TEST(j["processedRowsPerSecond"].is_number());
      for (const char* phase : {"triggerExecution", "latestOffset", "addBatch"})
        BOOST_TEST(j["durationMs"][phase].is_number_integer(), phase);
      auto& et = j["eventTime"];
      BOOST_TEST(et["watermark"] == watermark[b]);
      if (b == 4) { // no data: only the watermark
        BOOST_TEST(et.size() == 1u);
      } else {
        for (const char* k : {"min", "max", "avg"})
          BOOST_TEST(std::regex_match(et[k].get<std::string>(), iso), k);
      }
      BOOST_REQUIRE_EQUAL(j["stateOperators"].size(), 1u);
      auto& st = j["stateOperators"][0];
      for (const char* k : {"numRowsTotal", "numRowsUpdated", "numRowsRemoved",
                            "numRowsDroppedByWatermark", "memoryUsedBytes"})
        BOOST_TEST(st[k].is_number_unsigned(), k);
      BOOST_TEST(st["operatorName"] == "counts");
      BOOST_REQUIRE_EQUAL(j["sources"].size(), 1u);
      auto& src = j["sources"][0];
      BOOST_TEST(src["description"].get<std::string>().find("file") != std::string::npos,
                 src["description"].dump());
      BOOST_TEST(src["startOffset"] == nlohmann::ordered_json::parse(previous_end));
      BOOST_TEST(src["endOffset"].is_object());
      BOOST_TEST(src["numInputRows"] == j["numInputRows"]);
      previous_end = src["endOffset"].dump();
      BOOST_TEST(j["sink"]["description"] == "foreach_batch");
      BOOST_TEST(j["sink"]["numOutputRows"] == r.batches[b].rows.size());
    }
  }
  // Batch 0 (a@1 b@2 a@4) and batch 3 (b@5 x@-2 a@36).
  auto b0 = nlohmann::json::parse(r.json[0])["eventTime"];
  BOOST_TEST(b0["min"] == "2023-11-14T22:13:21.000Z");
  BOOST_TEST(b0["max"] == "2023-11-14T22:13:24.000Z");
  BOOST_TEST(b0["avg"] == "2023-11-14T22:13:22.333Z");
  auto b3 = nlohmann::json::parse(r.json[3]);
  BOOST_TEST(b3["eventTime"]["min"] == "2023-11-14T22:13:18.000Z");
  BOOST_TEST(b3["eventTime"]["max"] == "2023-11-14T22:13:56.000Z");
  BOOST_TEST(b3["eventTime"]["avg"] == "2023-11-14T22:13:33.000Z");
  BOOST_TEST(b3["stateOperators"][0]["numRowsDroppedByWatermark"] == 1);
  BOOST_TEST(b3["stateOperators"][0]["numRowsRemoved"] == 4);
  BOOST_TEST(b3["sources"][0]["startOffset"] == (nlohmann::json{{"files", 3}}));
  BOOST_TEST(b3["sources"][0]["endOffset"] == (nlohmann::json{{"files", 4}}));
}

BOOST_AUTO_TEST_CASE(parallel_source_offsets_are_keyed_by_instance) {
  // Nine rows over two instances: instance 0 reads rows 0 2 4 6 8, instance 1 rows 1 3 5 7,
  // two per batch: offsets (records read) 2/2, 4/4, 5/4. The per-instance offsets must not
  // depend on which instance acknowledged first, so repeat a few times.
  auto rows = sales();
  rows.pop_back();
  for (int round = 0; round < 10; ++round) {
    BOOST_TEST_CONTEXT("round " << round) {
      progress_log progress;
      auto opts = split_options(output_mode::update);
      opts.on_progress = progress.callback();
      job j{opts};
      j.from(sources::collection<kv>{rows})
        .key_by(key_of_kv)
        .reduce(sum_kv)
        .sink_to(sinks::foreach_batch<kv>([](std::int64_t, std::vector<kv>&) {}));
      require_ok(j.run());
      auto ps = progress.reports();
      BOOST_REQUIRE_EQUAL(ps.size(), 3u);
      const std::vector<std::pair<int, int>> ends{{2, 2}, {4, 4}, {5, 4}};
      nlohmann::json previous = {{"0", nullptr}, {"1", nullptr}};
      for (std::size_t b = 0; b < ps.size(); ++b) {
        BOOST_REQUIRE_EQUAL(ps[b].sources.size(), 1u);
        auto start = nlohmann::json::parse(ps[b].sources[0].start_offset);
        auto end = nlohmann::json::parse(ps[b].sources[0].end_offset);
        BOOST_TEST(start == previous, "batch " << b << ": " << start.dump());
        const nlohmann::json want = {{"0", {{"records", ends[b].first}}},
                                     {"1", {{"records", ends[b].second}}}};
        BOOST_TEST(end == want, "batch " << b << ": " << end.dump());
        previous = end;
      }
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
