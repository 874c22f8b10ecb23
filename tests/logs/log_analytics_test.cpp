#define BOOST_TEST_MODULE log_analytics_test
// samples/log_analytics: the Common Log Format parser, and the job with its live dashboard
// on the monitor's server, rendered by headless Chromium while the job runs (the DOM and a
// screenshot are kept as artifacts under the build directory).
#include <boost/test/unit_test.hpp>

#include "sluice/api/job.hpp"
#include "sluice/core/codec/time_format.hpp"
#include "sluice/monitor/server.hpp"
#include "sluice/samples/log_analytics/analytics.hpp"
#include "sluice/samples/log_analytics/clf.hpp"
#include "sluice/tests/common/chromium.hpp"
#include "sluice/tests/common/temp_dir.hpp"
#include "sluice/tests/engine/test_helpers.hpp"

#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <string>

#ifndef SLUICE_ARTIFACTS_DIR
#error "SLUICE_ARTIFACTS_DIR must name the directory for test artifacts"
#endif

using namespace sluice;
using namespace sluice::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string iso(event_time t) { return codec::format_iso8601(t); }

/// Writes `lines` as the file `name` of `dir` whole: written under a hidden name, then
/// renamed in (the file source skips names starting with '.').
void drop_file(const fs::path& dir, const std::string& name, const std::string& lines) {
  const auto hidden = dir / ("." + name);
  std::ofstream{hidden} << lines;
  fs::rename(hidden, dir / name);
}

} // namespace

BOOST_AUTO_TEST_SUITE(clf_format)

BOOST_AUTO_TEST_CASE(a_line_is_parsed_field_by_field_in_utc) {
  auto r = logs::parse_clf(R"(127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326)");
  BOOST_REQUIRE_MESSAGE(r.has_value(), (r ? std::string{} : r.error().message));
  BOOST_TEST(r->host == "127.0.0.1");
  BOOST_TEST(r->user == "frank");
  BOOST_TEST(iso(r->time) == "2000-10-10T20:55:36Z"); // -0700: seven hours behind UTC
  BOOST_TEST(r->method == "GET");
  BOOST_TEST(r->url == "/apache_pb.gif");
  BOOST_TEST(r->protocol == "HTTP/1.0");
  BOOST_TEST(r->status == 200);
  BOOST_TEST(r->bytes == 2326u);

  auto dash = logs::parse_clf(R"(::1 - - [01/Jan/2026:00:30:00 +0100] "HEAD / HTTP/1.1" 304 -)");
  BOOST_REQUIRE(dash.has_value());
  BOOST_TEST(dash->bytes == 0u);
  BOOST_TEST(iso(dash->time) == "2025-12-31T23:30:00Z");
  BOOST_TEST((logs::clf_time(R"(h - - [01/Jan/2026:00:30:00 +0100] "x")") == dash->time));
}

BOOST_AUTO_TEST_CASE(malformed_lines_are_refused_naming_the_problem) {
  const std::pair<const char*, const char*> cases[] = {
    {"", "expected 'host ident user [time]"},
    {R"(h - - [01/Jan/2026:00:30:00 +0000 "GET / HTTP/1.1" 200 1)", "no closing ']'"},
    {R"(h - - [32/Jan/2026:00:30:00 +0000] "GET / HTTP/1.1" 200 1)", "time '32/Jan/2026:00:30:00 +0000'"},
    {R"(h - - [01/Foo/2026:00:30:00 +0000] "GET / HTTP/1.1" 200 1)", "is not dd/Mon/yyyy:HH:MM:SS +hhmm"},
    {R"(h - - [01/Jan/2026:00:30:00 +0000] "GET / HTTP/1.1 200 1)", "no closing '\"'"},
    {R"(h - - [01/Jan/2026:00:30:00 +0000] "GET / HTTP/1.1" 2x0 1)", "status '2x0'"},
    {R"(h - - [01/Jan/2026:00:30:00 +0000] "GET / HTTP/1.1" 700 1)", "status '700' is not a number from 100 to 599"},
    {R"(h - - [01/Jan/2026:00:30:00 +0000] "GET / HTTP/1.1" 200 -5)", "size '-5'"},
    {R"(h - - [01/Jan/2026:00:30:00 +0000] "" 200 1)", "has no method and URL"},
    {R"(h - - [01/Jan/2026:00:30:00 +0000] "GET / HTTP/1.1" 200 1 extra)", "unexpected text after the size"},
  };
  for (const auto& [line, why] : cases) {
    auto r = logs::parse_clf(line);
    BOOST_TEST_CONTEXT(line) {
      BOOST_REQUIRE(!r.has_value());
      BOOST_TEST(r.error().code == error_code::malformed_record);
      BOOST_TEST(contains(r.error().message, why), r.error().message);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(live_dashboard)

// The job watches a directory. A first file (minute 10:00 and a malformed line) shows on
// the dashboard as live totals while no minute is closed yet; a second file moves the
// watermark past 10:02, and the page then shows the closed minutes, their error rates and
// the top URLs. Each state is checked in the DOM Chromium renders after the page's script
// fetched the figures; the second state is also kept as a screenshot.
BOOST_AUTO_TEST_CASE(the_dashboard_follows_the_logs_while_the_job_runs) {
  temp_dir dir;
  const auto in = dir.path / "logs";
  fs::create_directories(in);
  drop_file(in, "a.log",
            "10.0.0.1 - - [01/Jan/2026:10:00:03 +0000] \"GET /index.html HTTP/1.1\" 200 100\n"
            "10.0.0.2 - - [01/Jan/2026:10:00:10 +0000] \"GET /cart HTTP/1.1\" 500 10\n"
            "not a log line <b>\n"
            "10.0.0.3 - - [01/Jan/2026:10:00:20 +0000] \"GET /index.html HTTP/1.1\" 404 0\n"
            "10.0.0.1 - - [01/Jan/2026:10:00:50 +0000] \"GET /index.html HTTP/1.1\" 200 100\n");

  auto board = std::make_shared<logs::dashboard>(logs::dashboard_options{.refresh = 200ms});
  job j{{.name = "log-analytics-test"}};
  logs::analyze(j, {.input = in, .watch = true, .out_of_orderness = 0s, .poll_interval = 20ms}, board);
  auto exec = require_ok(j.start());
  auto mon = require_ok(monitor::server::start(*exec, {.port = 0, .pages = board->pages(board)}));
  const auto url = mon->url() + "/dashboard";
  fs::create_directories(SLUICE_ARTIFACTS_DIR);
  const fs::path artifacts{SLUICE_ARTIFACTS_DIR};

  BOOST_REQUIRE(wait_until(*exec, [&] {
    const auto t = board->current();
    return t.requests == 4 && t.malformed == 1;
  }));
  auto dump = [&](const std::string& tag) {
    const auto file = dir.path / (tag + ".html");
    const int status = run_chromium(dir.path, tag, url, {"--dump-dom"}, file);
    const auto dom = read_text_file(file);
    std::ofstream{artifacts / ("log_dashboard_" + tag + ".html"), std::ios::binary} << dom;
    BOOST_REQUIRE_MESSAGE(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                          "chromium --dump-dom failed: " << read_text_file(dir.path / ("chromium-" + tag + ".err")));
    return dom;
  };
  const auto first = dump("first");
  BOOST_TEST(contains(first, "<dd id=\"total-requests\">4</dd>"));
  BOOST_TEST(contains(first, "<dd id=\"total-4xx\">1</dd>"));
  BOOST_TEST(contains(first, "<dd id=\"total-5xx\">1</dd>"));
  BOOST_TEST(contains(first, "<dd id=\"error-rate\">50.0%</dd>"));
  BOOST_TEST(contains(first, "<dd id=\"total-malformed\">1</dd>"));
  BOOST_TEST(contains(first, "<dd id=\"minutes-closed\">0</dd>"));
  BOOST_TEST(contains(first, "no minute closed yet"));
  BOOST_TEST(contains(first, "<code>not a log line &lt;b&gt;</code>")); // shown as text
  BOOST_TEST(contains(first, "id=\"state\">live, updated"), "the page's script did not refresh it");

  drop_file(in, "b.log",
            "10.0.0.4 - - [01/Jan/2026:10:01:05 +0000] \"GET /index.html HTTP/1.1\" 200 100\n"
            "10.0.0.5 - - [01/Jan/2026:10:01:30 +0000] \"GET /products HTTP/1.1\" 200 300\n"
            "10.0.0.6 - - [01/Jan/2026:10:01:40 +0000] \"GET /products HTTP/1.1\" 503 0\n"
            "10.0.0.7 - - [01/Jan/2026:10:02:05 +0000] \"GET /index.html HTTP/1.1\" 200 100\n");
  BOOST_REQUIRE(wait_until(*exec, [&] {
    const auto t = board->current();
    return t.requests == 8 && t.minutes == 2;
  }));
  const auto second = dump("second");
  BOOST_TEST(contains(second, "<dd id=\"total-requests\">8</dd>"));
  BOOST_TEST(contains(second, "<dd id=\"minutes-closed\">2</dd>"));
  BOOST_TEST(contains(second, "<tr class=\"minute\" data-start=\"2026-01-01T10:00:00Z\"><td>2026-01-01T10:00:00Z</td>"
                              "<td>4</td><td>1</td><td>1</td><td>50.0%</td></tr>"));
  BOOST_TEST(contains(second, "<tr class=\"minute\" data-start=\"2026-01-01T10:01:00Z\"><td>2026-01-01T10:01:00Z</td>"
                              "<td>3</td><td>0</td><td>1</td><td>33.3%</td></tr>"));
  BOOST_TEST(!contains(second, "data-start=\"2026-01-01T10:02:00Z\"")); // still open
  // Top URLs, most requested first: /index.html (5), /products (2), /cart (1).
  const auto top = second.substr(second.find("id=\"top-urls\""));
  const auto index = top.find("/index.html</td><td>5</td>");
  const auto products = top.find("/products</td><td>2</td>");
  const auto cart = top.find("/cart</td><td>1</td>");
  BOOST_TEST((index != std::string::npos && products != std::string::npos && cart != std::string::npos));
  BOOST_TEST((index < products && products < cart));
  BOOST_TEST(contains(second, "data-chart=\"requests-per-minute\""));
  BOOST_TEST(contains(second, "<polyline class=\"series\" data-series=\"requests\""));

  const auto png = artifacts / "log_dashboard.png";
  fs::remove(png);
  const int shot = run_chromium(dir.path, "shot", url,
                                {"--window-size=1200,900", "--screenshot=" + png.string()},
                                dir.path / "shot.out");
  BOOST_TEST((WIFEXITED(shot) && WEXITSTATUS(shot) == 0));
  BOOST_TEST(fs::exists(png));
  BOOST_TEST_MESSAGE("screenshot: " << png.string());

  mon.reset();
  exec->cancel();
  require_ok(exec->wait());
}

BOOST_AUTO_TEST_SUITE_END()
