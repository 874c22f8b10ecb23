// The windowed_wordcount sample, run as a child process on each case of tests/golden/spark,
// must print exactly what Apache Spark 3.5 printed for the same query: the same rows in the
// same batches, in every output mode, under available-now (one file per trigger or as the
// case says) and once, for both of Spark's late-row rules. Its progress reports must agree
// with Spark's on the batch ids, input rows, watermarks and state counts.
#define BOOST_TEST_MODULE spark_golden
#include <boost/test/unit_test.hpp>

#include "tests/common/temp_dir.hpp"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& p) {
  std::ifstream in{p, std::ios::binary};
  BOOST_REQUIRE_MESSAGE(in, "cannot read " << p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<nlohmann::json> read_json_lines(const fs::path& p) {
  std::vector<nlohmann::json> out;
  std::istringstream in{read_text(p)};
  for (std::string line; std::getline(in, line);)
    if (!line.empty())
      out.push_back(nlohmann::json::parse(line));
  return out;
}

/// "10 minutes" -> "10m", as the sample's flags take durations.
std::string flag_duration(const std::string& spark) {
  std::istringstream in{spark};
  std::string n, unit;
  in >> n >> unit;
  if (unit.starts_with("minute"))
    return n + "m";
  if (unit.starts_with("second"))
    return n + "s";
  if (unit.starts_with("hour"))
    return n + "h";
  BOOST_FAIL("unknown unit in " << spark);
  return {};
}

struct variant {
  const char* dir;       // expected files
  const char* late_rows; // the sample's --late-rows
};

void check_case(const std::string& name) {
  const fs::path dir = fs::path{SLUICE_GOLDEN_DIR} / name;
  const auto spec = nlohmann::json::parse(read_text(dir / "case.json"));
  sluice::test::temp_dir tmp;
  for (variant v : {variant{"expected", "previous"}, variant{"expected_single_watermark", "epoch"}})
    for (auto [spark_trigger, trigger] : {std::pair{"availableNow", "available-now"},
                                          std::pair{"once", "once"}})
      for (const char* mode : {"append", "update", "complete"}) {
        const std::string what = name + " " + v.dir + " " + spark_trigger + " " + mode;
        BOOST_TEST_CONTEXT(what) {
          const auto out = tmp.path / "out.jsonl";
          const auto progress = tmp.path / "progress.jsonl";
          std::ostringstream cmd;
          cmd << SLUICE_WORDCOUNT_BIN << " --input " << (dir / "input")
              << " --window " << flag_duration(spec["window"])
              << " --slide " << flag_duration(spec["slide"])
              << " --watermark " << flag_duration(spec["watermark"])
              << " --max-files-per-trigger " << spec["max_files_per_trigger"].get<int>()
              << " --output-mode " << mode << " --trigger " << trigger
              << " --late-rows " << v.late_rows << " --output " << out << " --progress "
              << progress;
          BOOST_REQUIRE_EQUAL(std::system(cmd.str().c_str()), 0);

          const auto stem = std::string{spark_trigger} + "-" + mode;
          const auto expected_dir = dir / v.dir;
          // The rows: byte for byte (the sample writes Spark's layout and order).
          BOOST_TEST(read_text(out) == read_text(expected_dir / (stem + ".jsonl")));

          // Progress: one report per batch, agreeing with Spark's.
          const auto ours = read_json_lines(progress);
          const auto spark = read_json_lines(expected_dir / (stem + ".progress.jsonl"));
          std::map<std::int64_t, std::uint64_t> rows_per_batch;
          for (auto& row : read_json_lines(out))
            ++rows_per_batch[row["batchId"].get<std::int64_t>()];
          BOOST_REQUIRE_EQUAL(ours.size(), spark.size());
          for (std::size_t i = 0; i < ours.size(); ++i) {
            const auto& p = ours[i];
            const auto& s = spark[i];
            BOOST_TEST_CONTEXT("batch " << i) {
              BOOST_TEST(p["batchId"] == s["batchId"]);
              BOOST_TEST(p["numInputRows"] == s["numInputRows"]);
              BOOST_TEST(p["eventTime"]["watermark"] == s["watermark"]);
              const auto& state = p["stateOperators"].at(0);
              for (const char* f : {"numRowsTotal", "numRowsUpdated", "numRowsRemoved",
                                    "numRowsDroppedByWatermark"})
                BOOST_TEST(state[f] == s[f], f << ": ours " << state[f] << ", Spark " << s[f]);
              // Spark reports -1 for foreachBatch; ours counts the rows actually written.
              BOOST_TEST(p["sink"]["numOutputRows"].get<std::uint64_t>() ==
                         rows_per_batch[p["batchId"].get<std::int64_t>()]);
            }
          }
        }
      }
}

} // namespace

#define GOLDEN_CASE(name)                                                                          \
  BOOST_AUTO_TEST_SUITE(name)                                                                      \
  BOOST_AUTO_TEST_CASE(matches_spark) { check_case(#name); }                                       \
  BOOST_AUTO_TEST_SUITE_END()

GOLDEN_CASE(guide)
GOLDEN_CASE(out_of_order)
GOLDEN_CASE(late)
GOLDEN_CASE(late_sliding)
GOLDEN_CASE(multi_file)
GOLDEN_CASE(no_data)
GOLDEN_CASE(multi_words)
