// Each case of tests/golden/spark, run as a child process, must print exactly what Apache
// Spark 4.x printed for the same query: the same rows in the same batches, in every output
// mode Spark accepts (and Sluice must refuse the modes Spark refuses), under available-now
// (one file per trigger or as the case says) and once, for both of Spark's late-row rules.
// Its progress reports must agree with Spark's on the batch ids, input rows, watermarks and
// state counts. The word count cases run the windowed_wordcount sample; the other query
// kinds run spark_query_runner (tests/golden/spark_query_runner.cpp).
//
// `SLUICE_GOLDEN_CASES=DIR spark_golden_test --run_test=cases_from_env` checks every case in
// DIR instead (scripts/spark-diff.sh: random cases fresh from Spark).
#define BOOST_TEST_MODULE spark_golden
#include <boost/test/unit_test.hpp>

#include "sluice/tests/common/temp_dir.hpp"

#include <nlohmann/json.hpp>

#include <sys/wait.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string read_text(const fs::path& p) {
  std::ifstream in{p, std::ios::binary};
  BOOST_REQUIRE_MESSAGE(in, "cannot read " << p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<json> read_json_lines(const fs::path& p) {
  std::vector<json> out;
  std::istringstream in{read_text(p)};
  for (std::string line; std::getline(in, line);)
    if (!line.empty())
      out.push_back(json::parse(line));
  return out;
}

/// "10 minutes" -> "10m", as the programs' flags take durations.
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

std::string quoted(const fs::path& p) {
  return "'" + p.string() + "'";
}

struct variant {
  const char* dir;       // expected files
  const char* late_rows; // the programs' --late-rows
};

/// The command line of one run: the sample for the word count, else the runner with the
/// case's parameters as flags (`max_files_per_trigger` -> `--max-files-per-trigger`).
std::string command(const fs::path& dir, const json& spec, const std::string& mode,
                    const std::string& trigger, const variant& v, const fs::path& out,
                    const fs::path& progress) {
  const std::string query = spec.value("query", "wordcount");
  std::ostringstream cmd;
  cmd << (query == "wordcount" ? SLUICE_WORDCOUNT_BIN : SLUICE_QUERY_RUNNER_BIN);
  if (query != "wordcount")
    cmd << " --query " << query;
  cmd << " --input " << quoted(dir / "input");
  if (fs::exists(dir / "input_right"))
    cmd << " --input-right " << quoted(dir / "input_right");
  for (const char* table : {"static.jsonl", "static.csv"})
    if (fs::exists(dir / table))
      cmd << " --static " << quoted(dir / table);
  for (auto& [k, value] : spec.items()) {
    if (k == "query" || k == "seed" || k == "triggers" || k == "variants" || k == "notes")
      continue;
    std::string flag = k;
    std::replace(flag.begin(), flag.end(), '_', '-');
    std::string text = value.is_string() ? value.get<std::string>() : value.dump();
    if (value.is_string() && text.find(' ') != std::string::npos)
      text = flag_duration(text);
    cmd << " --" << flag << " " << text;
  }
  cmd << " --output-mode " << mode << " --trigger " << trigger << " --late-rows " << v.late_rows
      << " --output " << quoted(out) << " --progress " << quoted(progress);
  return cmd.str();
}

/// Output lines in a comparable form: keys sorted, rows of a batch sorted (Spark gives a
/// batch no order; the word count is compared byte for byte instead).
std::vector<std::string> normalized(const fs::path& p) {
  std::vector<std::pair<std::int64_t, std::string>> rows;
  for (auto& r : read_json_lines(p))
    rows.emplace_back(r["batchId"].get<std::int64_t>(), r.dump());
  std::sort(rows.begin(), rows.end());
  std::vector<std::string> out;
  for (auto& [_, s] : rows)
    out.push_back(s);
  return out;
}

/// Empty when equal, else where and how the two first differ.
std::string first_difference(const std::vector<std::string>& ours,
                             const std::vector<std::string>& spark) {
  for (std::size_t i = 0; i < std::max(ours.size(), spark.size()); ++i) {
    const std::string a = i < ours.size() ? ours[i] : "(none)";
    const std::string b = i < spark.size() ? spark[i] : "(none)";
    if (a != b)
      return "row " + std::to_string(i) + " (of ours " + std::to_string(ours.size()) +
             ", Spark's " + std::to_string(spark.size()) + "): ours " + a + ", Spark " + b;
  }
  return {};
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

const char* const state_fields[] = {"numRowsTotal", "numRowsUpdated", "numRowsRemoved",
                                    "numRowsDroppedByWatermark"};

json state_tuple(const json& op) {
  json t = json::array();
  for (const char* f : state_fields)
    t.push_back(op.value(f, json{}));
  return t;
}

/// How our progress reports differ from Spark's: one text per difference, empty if none.
std::vector<std::string> progress_differences(const fs::path& out, const fs::path& progress,
                                              const fs::path& expected) {
  std::vector<std::string> found;
  auto differ = [&](bool same, const std::string& what) {
    if (!same)
      found.push_back(what);
  };
  const auto ours = read_json_lines(progress);
  const auto spark = read_json_lines(expected);
  std::map<std::int64_t, std::uint64_t> rows_per_batch;
  for (auto& row : read_json_lines(out))
    ++rows_per_batch[row["batchId"].get<std::int64_t>()];
  differ(ours.size() == spark.size(), "batches: ours " + std::to_string(ours.size()) +
                                        ", Spark " + std::to_string(spark.size()));
  if (ours.size() != spark.size())
    return found;
  for (std::size_t i = 0; i < ours.size(); ++i) {
    const auto& p = ours[i];
    const auto& s = spark[i];
    const std::string at = " [batch " + std::to_string(i) + "]";
    differ(p["batchId"] == s["batchId"],
           "batchId: ours " + p["batchId"].dump() + ", Spark " + s["batchId"].dump() + at);
    differ(p["numInputRows"] == s["numInputRows"], "numInputRows: ours " +
                                                     p["numInputRows"].dump() + ", Spark " +
                                                     s["numInputRows"].dump() + at);
    const json watermark = p.contains("eventTime") ? p["eventTime"].value("watermark", json{})
                                                   : json{};
    differ(watermark == s["watermark"],
           "watermark: ours " + watermark.dump() + ", Spark " + s["watermark"].dump() + at);
    const json ops = p.value("stateOperators", json::array());
    if (s.contains("stateOperators")) {
      // Several stateful operators: the same counts, whatever order each lists them in.
      std::multiset<std::string> a, b;
      for (auto& op : ops)
        a.insert(state_tuple(op).dump());
      for (auto& op : s["stateOperators"])
        b.insert(state_tuple(op).dump());
      differ(a == b, "state operators [total, updated, removed, dropped]: ours " +
                       json(a).dump() + ", Spark " + json(b).dump() + at);
    } else if (s["numRowsTotal"].is_null()) {
      differ(ops.empty(), "Spark has no stateful operator, ours " + ops.dump() + at);
    } else {
      differ(ops.size() == 1u, "Spark has one stateful operator, ours " + ops.dump() + at);
      if (ops.size() == 1u)
        for (const char* f : state_fields)
          differ(ops[0][f] == s[f], std::string{f} + ": ours " + ops[0][f].dump() + ", Spark " +
                                      s[f].dump() + at);
    }
    // Spark reports -1 for foreachBatch; ours counts the rows actually written.
    differ(p["sink"]["numOutputRows"].get<std::uint64_t>() ==
             rows_per_batch[p["batchId"].get<std::int64_t>()],
           "sink numOutputRows " + p["sink"]["numOutputRows"].dump() + " is not the rows written" +
             at);
  }
  return found;
}

/// Differences from Spark that are known, each with its reason (docs/micro-batch.md lists
/// them): tests/golden/spark/known_differences.json. An entry names a case, an aspect
/// ("rows" or "progress") and optionally a variant, trigger and mode; a difference it
/// covers is reported, not failed. An entry that covers no difference fails the case, so
/// the list shrinks as the engine catches up and never hides a fixed difference, unless it
/// says `"sometimes": true` (a difference that depends on timing, its reason says how).
struct known_differences {
  json entries = json::array();
  std::vector<bool> seen;

  explicit known_differences(const std::string& case_name) {
    const fs::path file = fs::path{SLUICE_GOLDEN_DIR}.parent_path() / "known_differences.json";
    if (!fs::exists(file))
      return;
    for (auto& e : json::parse(read_text(file)))
      if (e.at("case") == case_name)
        entries.push_back(e);
    seen.assign(entries.size(), false);
  }

  /// Whether a difference in `aspect` of this run is a known one (and notes it seen).
  bool covers(const std::string& aspect, const std::string& variant, const std::string& trigger,
              const std::string& mode) {
    bool any = false;
    for (std::size_t i = 0; i < entries.size(); ++i) {
      const auto& e = entries[i];
      auto matches = [&](const char* field, const std::string& value) {
        return !e.contains(field) || e[field] == value;
      };
      if (e.at("aspect") == aspect && matches("variant", variant) &&
          matches("trigger", trigger) && matches("mode", mode)) {
        seen[i] = true;
        any = true;
      }
    }
    return any;
  }

  void require_all_seen() const {
    for (std::size_t i = 0; i < entries.size(); ++i)
      BOOST_TEST((seen[i] || entries[i].value("sometimes", false)),
                 "known difference no longer occurs, remove it from "
                          "known_differences.json: "
                            << entries[i].dump());
  }
};

void check_case(const fs::path& dir) {
  const std::string name = dir.filename().string();
  const auto spec = json::parse(read_text(dir / "case.json"));
  const bool wordcount = spec.value("query", "wordcount") == "wordcount";
  const json triggers = spec.value("triggers", json{"availableNow", "once"});
  known_differences known{name};
  sluice::test::temp_dir tmp;
  for (variant v : {variant{"expected", "previous"}, variant{"expected_single_watermark", "epoch"}}) {
    const auto expected_dir = dir / v.dir;
    if (!fs::exists(expected_dir))
      continue;
    const json refused = fs::exists(expected_dir / "refused.json")
                           ? json::parse(read_text(expected_dir / "refused.json"))
                           : json::object();
    for (auto [spark_trigger, trigger] : {std::pair{"availableNow", "available-now"},
                                          std::pair{"once", "once"}}) {
      if (std::find(triggers.begin(), triggers.end(), spark_trigger) == triggers.end())
        continue;
      for (const char* mode : {"append", "update", "complete"}) {
        BOOST_TEST_CONTEXT(name << " " << v.dir << " " << spark_trigger << " " << mode) {
          const auto out = tmp.path / "out.jsonl";
          const auto progress = tmp.path / "progress.jsonl";
          const auto err = tmp.path / "stderr.txt";
          fs::remove(out);
          fs::remove(progress);
          const auto cmd = command(dir, spec, mode, trigger, v, out, progress) + " 2> " +
                           quoted(err);
          const int status = std::system(cmd.c_str());
          const int rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
          auto errors = fs::exists(err) ? read_text(err) : std::string{};
          while (!errors.empty() && std::isspace(static_cast<unsigned char>(errors.back())))
            errors.pop_back();
          if (refused.contains(mode)) {
            // Spark refuses the query at start (an AnalysisException): so must we (exit 3).
            BOOST_TEST(rc == 3, "Spark refuses " << mode << " (" << refused[mode]["errorClass"]
                                                 << "); ours exits " << rc << " " << errors);
            continue;
          }
          BOOST_TEST(rc == 0, "exit " << rc << ": " << errors);
          if (rc != 0)
            continue;

          const auto stem = std::string{spark_trigger} + "-" + mode;
          // The sample writes Spark's layout and order (compared byte for byte); the runner's
          // rows are compared as a set per batch.
          const auto diff =
            wordcount ? first_difference(split_lines(read_text(out)),
                                         split_lines(read_text(expected_dir / (stem + ".jsonl"))))
                      : first_difference(normalized(out),
                                         normalized(expected_dir / (stem + ".jsonl")));
          if (!diff.empty() && known.covers("rows", v.dir, spark_trigger, mode))
            BOOST_TEST_MESSAGE("known difference: rows differ at " << diff);
          else
            BOOST_TEST(diff.empty(), "rows differ at " << diff);
          const auto progress_diffs =
            progress_differences(out, progress, expected_dir / (stem + ".progress.jsonl"));
          const bool known_progress =
            !progress_diffs.empty() && known.covers("progress", v.dir, spark_trigger, mode);
          for (auto& d : progress_diffs) {
            if (known_progress)
              BOOST_TEST_MESSAGE("known difference: " << d);
            else
              BOOST_ERROR(d);
          }
        }
      }
    }
  }
  known.require_all_seen();
}

} // namespace

#define GOLDEN_CASE(name)                                                                          \
  BOOST_AUTO_TEST_SUITE(name)                                                                      \
  BOOST_AUTO_TEST_CASE(matches_spark) { check_case(fs::path{SLUICE_GOLDEN_DIR} / #name); }         \
  BOOST_AUTO_TEST_SUITE_END()

// The word count (the programming guide's query).
GOLDEN_CASE(guide)
GOLDEN_CASE(out_of_order)
GOLDEN_CASE(late)
GOLDEN_CASE(late_sliding)
GOLDEN_CASE(multi_file)
GOLDEN_CASE(no_data)
GOLDEN_CASE(multi_words)
// The other stateful operators (README.md, "Cases").
GOLDEN_CASE(session_fixed)
GOLDEN_CASE(session_dynamic)
GOLDEN_CASE(dedup_window)
GOLDEN_CASE(dedup_event_time)
GOLDEN_CASE(dedup_forever)
GOLDEN_CASE(static_join_inner)
GOLDEN_CASE(static_join_left)
GOLDEN_CASE(static_join_csv)
GOLDEN_CASE(window_filter)
GOLDEN_CASE(stream_join)
GOLDEN_CASE(stream_join_left)
GOLDEN_CASE(chained)
GOLDEN_CASE(keyed_timer)
// The randomized differential test's fixed seeds (generate.py --random KIND SEED).
GOLDEN_CASE(random_session_s1)
GOLDEN_CASE(random_session_s2)
GOLDEN_CASE(random_session_s3)
GOLDEN_CASE(random_session_s4)
GOLDEN_CASE(random_session_s5)
GOLDEN_CASE(random_session_s6)
GOLDEN_CASE(random_dedup_window_s1)
GOLDEN_CASE(random_dedup_window_s2)
GOLDEN_CASE(random_dedup_window_s3)
GOLDEN_CASE(random_dedup_window_s4)
GOLDEN_CASE(random_dedup_window_s5)
GOLDEN_CASE(random_dedup_window_s6)

// Every case in $SLUICE_GOLDEN_CASES (scripts/spark-diff.sh): runs only when named with
// --run_test, and is not registered with CTest.
BOOST_AUTO_TEST_SUITE(cases_from_env, *boost::unit_test::disabled())
BOOST_AUTO_TEST_CASE(matches_spark) {
  const char* dir = std::getenv("SLUICE_GOLDEN_CASES");
  BOOST_TEST_REQUIRE(dir != nullptr, "set SLUICE_GOLDEN_CASES to a directory of cases");
  std::vector<fs::path> cases;
  for (auto& e : fs::directory_iterator{dir})
    if (fs::exists(e.path() / "case.json"))
      cases.push_back(e.path());
  std::sort(cases.begin(), cases.end());
  BOOST_TEST_REQUIRE(!cases.empty(), "no cases in " << dir);
  for (auto& c : cases)
    check_case(c);
}
BOOST_AUTO_TEST_SUITE_END()
