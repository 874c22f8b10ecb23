// The samples' duration flags: negative durations and absurd window counts are refused with
// a message naming the flag, before any job is built (each run here is --explain, so a flag
// that slipped through would print a plan and exit 0).
#define BOOST_TEST_MODULE samples_cli_test
#include <boost/test/unit_test.hpp>

#include "sluice/tests/common/child_process.hpp"
#include "sluice/tests/common/temp_dir.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace {

using outcome = sluice::test::child_outcome;

outcome run(const char* bin, std::vector<std::string> args) {
  args.insert(args.begin(), bin);
  return sluice::test::run_to_exit(args);
}

/// windowed_wordcount --explain on an empty input directory, plus `args`.
outcome wordcount(std::vector<std::string> args) {
  static sluice::test::temp_dir input;
  std::vector<std::string> all{"--input", input.path.string(), "--output",
                               (input.path.parent_path() / "wordcount-out.jsonl").string(),
                               "--explain"};
  all.insert(all.end(), args.begin(), args.end());
  return run(SLUICE_WORDCOUNT_BIN, all);
}

outcome account_totals(std::vector<std::string> args) {
  args.push_back("--explain");
  return run(SLUICE_ACCOUNT_TOTALS_BIN, args);
}

void require_refused(const outcome& o, const std::string& flag, const std::string& problem) {
  BOOST_TEST(o.exit_code == 2, o.err);
  BOOST_TEST(o.err.find(flag) != std::string::npos, o.err);
  BOOST_TEST(o.err.find(problem) != std::string::npos, o.err);
}

} // namespace

BOOST_AUTO_TEST_SUITE(sample_flags)

BOOST_AUTO_TEST_CASE(the_flags_as_given_work) {
  auto o = wordcount({"--window", "10m", "--slide", "5m", "--watermark", "0"});
  BOOST_TEST(o.exit_code == 0, o.err);
  o = account_totals({"--window", "1m", "--out-of-orderness", "0"});
  BOOST_TEST(o.exit_code == 0, o.err);
}

BOOST_AUTO_TEST_CASE(a_negative_watermark_delay_is_refused) {
  // The newest rows would be dropped as late; Spark rejects a negative delay.
  require_refused(wordcount({"--watermark", "-5m"}), "--watermark",
                  "must not be negative, got -5m");
  require_refused(account_totals({"--out-of-orderness", "-1s"}), "--out-of-orderness",
                  "must not be negative, got -1s");
}

BOOST_AUTO_TEST_CASE(window_sizes_and_slides_must_be_positive) {
  require_refused(wordcount({"--window", "-10m"}), "--window", "must be positive, got -10m");
  require_refused(wordcount({"--slide", "0"}), "--slide", "must be positive, got 0");
  require_refused(account_totals({"--window", "-1m"}), "--window",
                  "must not be negative, got -1m");
}

BOOST_AUTO_TEST_CASE(a_slide_giving_absurdly_many_windows_per_record_is_refused) {
  // 600 million windows per record: memory grew by about 75 MB/s until the process died.
  auto o = wordcount({"--window", "10m", "--slide", "1us"});
  require_refused(o, "--window 10m --slide 1us", "600000000 windows per record");
  BOOST_TEST(o.err.find("limit of 10000") != std::string::npos, o.err);
}

BOOST_AUTO_TEST_CASE(common_duration_flags_are_refused_when_negative) {
  require_refused(wordcount({"--linger", "-1ms"}), "--linger", "must not be negative, got -1ms");
  require_refused(wordcount({"--duration", "-5s"}), "--duration", "must not be negative, got -5s");
  require_refused(wordcount({"--progress-interval", "-1s"}), "--progress-interval",
                  "must not be negative, got -1s");
  require_refused(wordcount({"--checkpoint-dir", "/nonexistent/x", "--checkpoint-interval", "-1s"}),
                  "--checkpoint-interval", "must be positive, got -1s");
  require_refused(wordcount({"--linger", "soon"}), "--linger", "soon");
}

BOOST_AUTO_TEST_SUITE_END()
