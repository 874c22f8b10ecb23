// The nexmark sample binary: its CSV output, its refusals, and a kill -9 at a checkpoint
// followed by a resume from the checkpoint directory.
#include "sluice/samples/nexmark/generator.hpp"
#include "sluice/samples/nexmark/pipeline.hpp"
#include "sluice/samples/nexmark/queries.hpp"
#include "sluice/sinks/file_manifest.hpp"
#include "sluice/sinks/memory.hpp"
#include "sluice/tests/common/child_process.hpp"
#include "sluice/tests/common/temp_dir.hpp"

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <fstream>
#include <sys/wait.h>

using namespace sluice::nexmark;
namespace test = sluice::test;

namespace {

std::vector<std::string> lines_of(const std::filesystem::path& p) {
  std::ifstream in{p};
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

std::string error_text(const auto& r) { return r ? std::string{} : r.error().to_string(); }

test::child_outcome nexmark(std::vector<std::string> args) {
  args.insert(args.begin(), SLUICE_NEXMARK_BIN);
  return test::run_to_exit(args);
}

} // namespace

BOOST_AUTO_TEST_SUITE(nexmark_sample)

BOOST_AUTO_TEST_CASE(output_is_csv_with_the_header_and_every_row) {
  test::temp_dir dir;
  const auto file = dir.path / "q2.csv";
  auto o = nexmark({"--query", "2", "--events", "30000", "--parallelism", "2", "--output",
                    file.string()});
  BOOST_TEST_REQUIRE(o.exit_code == 0, o.err);
  BOOST_TEST(o.out.find("30000 events") != std::string::npos, o.out);
  auto lines = lines_of(file);
  BOOST_TEST_REQUIRE(!lines.empty());
  BOOST_TEST(lines.front() == "auction,price");
  std::vector<std::string> want;
  generator_config c;
  c.max_events = 30'000;
  for (generator g{c}; g.has_next();)
    if (const auto e = g.next(); e.value.as_bid() && e.value.as_bid()->auction % 123 == 0)
      want.push_back(csv::line(e.value.as_bid()->auction, e.value.as_bid()->price));
  lines.erase(lines.begin());
  std::sort(lines.begin(), lines.end());
  std::sort(want.begin(), want.end());
  BOOST_TEST(!want.empty());
  BOOST_TEST(lines == want, boost::test_tools::per_element());
  BOOST_TEST(o.out.find(std::to_string(want.size()) + " result rows") != std::string::npos, o.out);
}

BOOST_AUTO_TEST_CASE(bad_flags_are_refused_by_name) {
  auto o = nexmark({"--query", "16", "--events", "10"});
  BOOST_TEST(o.exit_code == 2);
  BOOST_TEST(o.err.find("no query 16") != std::string::npos, o.err);
  o = nexmark({"--query", "0", "--events", "0"});
  BOOST_TEST(o.exit_code == 2);
  BOOST_TEST(o.err.find("--events: must be positive, got 0") != std::string::npos, o.err);
  o = nexmark({"--query", "0", "--events", "10", "--rate", "0"});
  BOOST_TEST(o.exit_code != 0); // CLI11's own exit code for a value out of range
  BOOST_TEST(o.err.find("--rate") != std::string::npos, o.err);
  test::temp_dir dir;
  o = nexmark({"--query", "0", "--events", "10", "--output", (dir.path / "no" / "such" / "x.csv").string()});
  BOOST_TEST(o.exit_code == 2);
  BOOST_TEST(o.err.find("--output") != std::string::npos, o.err);
  const auto side = (dir.path / "side.csv").string();
  o = nexmark({"--query", "13", "--events", "10", "--side-input", side});
  BOOST_TEST(o.exit_code == 2);
  BOOST_TEST(o.err.find("--side-input: cannot read " + side) != std::string::npos, o.err);
  std::ofstream{side} << "1,one\n";
  o = nexmark({"--query", "0", "--events", "10", "--side-input", side});
  BOOST_TEST(o.exit_code == 2);
  BOOST_TEST(o.err.find("q13 only, not q0") != std::string::npos, o.err);
}

// q6 and q17 emit only at the end of input, so the resumed run's rows must equal an
// uninterrupted run's exactly (q6 keys by seller over winning bids, q17 by a struct of
// auction and day). Throttled to 3 s so that checkpoints complete well before the end.
BOOST_DATA_TEST_CASE(killed_at_a_checkpoint_it_resumes_to_the_same_result,
                     boost::unit_test::data::make({6, 17}), query) {
  test::temp_dir dir;
  const std::vector<std::string> common{SLUICE_NEXMARK_BIN, "--query", std::to_string(query), "--events", "135000",
                                        "--rate", "45000", "--parallelism", "2",
                                        "--checkpoint-interval", "100ms", "--checkpoint-dir",
                                        (dir.path / "ckpt").string(), "--output"};
  auto args = common;
  args.push_back((dir.path / "killed.csv").string());
  const int status = test::run_child(args, "completed:1", {}, (dir.path / "o1").string(),
                                     (dir.path / "e1").string());
  BOOST_TEST_REQUIRE(WIFSIGNALED(status), "it was to die at the first completed checkpoint");
  // The checkpoint holds ranges of events: an interleaved split cannot take it over.
  args = common;
  args.push_back((dir.path / "refused.csv").string());
  args.erase(args.begin());
  args.insert(args.end(), {"--split", "interleaved"});
  auto refused = nexmark(args);
  BOOST_TEST(refused.exit_code == 1);
  BOOST_TEST(refused.err.find("belongs to other events than this instance's") != std::string::npos,
             refused.err);
  args = common;
  args.push_back((dir.path / "resumed.csv").string());
  args.erase(args.begin());
  auto resumed = nexmark(args);
  BOOST_TEST_REQUIRE(resumed.exit_code == 0, resumed.err);
  // It generated only the events after the checkpoint.
  BOOST_TEST(resumed.out.find(" 135000 events") == std::string::npos, resumed.out);
  // The uninterrupted run, in this process and unthrottled: the same timeline.
  sluice::job j{sluice::job_options{}};
  auto rows = add_query(j, {.query = query, .events = 135'000, .events_per_second = 45'000});
  BOOST_TEST_REQUIRE(rows.has_value());
  sluice::sinks::collect<row> out;
  rows->sink_to(out);
  BOOST_TEST_REQUIRE(j.run().has_value());
  auto a = lines_of(dir.path / "resumed.csv");
  BOOST_TEST_REQUIRE(!a.empty());
  BOOST_TEST(a.front() == find_query(query)->header);
  a.erase(a.begin());
  auto b = out.records();
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  BOOST_TEST(b.size() > 100u);
  BOOST_TEST(a == b);
}

BOOST_AUTO_TEST_CASE(output_dir_is_exactly_once_across_a_kill_and_resume) {
  // q3 emits its join results all along, so a kill at a sink's commit leaves committed
  // output behind it and uncommitted output after it; the resumed run must neither repeat
  // the one nor lose the other.
  test::temp_dir dir;
  const auto out_dir = dir.path / "out";
  const std::vector<std::string> args{SLUICE_NEXMARK_BIN, "--query", "3", "--events", "135000",
                                      "--rate", "45000", "--parallelism", "2",
                                      "--checkpoint-interval", "100ms", "--checkpoint-dir",
                                      (dir.path / "ckpt").string(), "--output-dir",
                                      out_dir.string()};
  const int status = test::run_child(args, "commit:25", {}, (dir.path / "o1").string(),
                                     (dir.path / "e1").string());
  BOOST_TEST_REQUIRE(WIFSIGNALED(status), "it was to die at the 25th commit (checkpoint 3 or so)");
  auto before = sluice::sinks::read_committed_files(out_dir);
  BOOST_TEST_REQUIRE(before.has_value(), error_text(before));
  BOOST_TEST(!before->empty(), "output was committed before the kill");
  auto resumed = nexmark({args.begin() + 1, args.end()});
  BOOST_TEST_REQUIRE(resumed.exit_code == 0, resumed.err);

  auto files = sluice::sinks::read_committed_files(out_dir);
  BOOST_TEST_REQUIRE(files.has_value(), error_text(files));
  std::vector<std::string> got;
  for (const auto& f : *files) {
    BOOST_TEST(f.path.extension() == ".txt");
    auto lines = lines_of(f.path);
    BOOST_TEST_REQUIRE(!lines.empty());
    BOOST_TEST(lines.front() == "name,city,state,id", f.path);
    got.insert(got.end(), lines.begin() + 1, lines.end());
  }
  sluice::job j{sluice::job_options{}};
  auto rows = add_query(j, {.query = 3, .events = 135'000, .events_per_second = 45'000});
  BOOST_TEST_REQUIRE(rows.has_value());
  sluice::sinks::collect<row> out;
  rows->sink_to(out);
  BOOST_TEST_REQUIRE(j.run().has_value());
  auto want = out.records();
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  BOOST_TEST(want.size() > 100u);
  BOOST_TEST(got == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
