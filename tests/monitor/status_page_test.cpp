#define BOOST_TEST_MODULE status_page_test
// The monitor against real clients: the status page rendered by headless Chromium (its DOM
// and a screenshot, kept as an artifact) and `/metrics` checked by Prometheus's promtool,
// with counters compared to the known input of a bounded job.
#include <boost/test/unit_test.hpp>

#include "sluice/api/job.hpp"
#include "sluice/monitor/exposition.hpp"
#include "sluice/monitor/server.hpp"
#include "sluice/sinks/memory.hpp"
#include "sluice/sources/generator.hpp"
#include "sluice/tests/common/child_process.hpp"
#include "sluice/tests/common/temp_dir.hpp"
#include "sluice/tests/engine/test_helpers.hpp"

#include <httplib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#ifndef SLUICE_ARTIFACTS_DIR
#error "SLUICE_ARTIFACTS_DIR must name the directory for test artifacts"
#endif

using namespace sluice;
using namespace sluice::test;
namespace fs = std::filesystem;

namespace mon_test {

/// A click counted per user: the record of the jobs below.
struct visit {
  std::string user;
  std::int64_t clicks = 0;
};
template <class Inspector>
bool inspect(Inspector& f, visit& x) {
  return f.object("visit").fields(f.field("user", x.user), f.field("clicks", x.clicks));
}

/// generator "numbers" -> map "enrich" -> key_by user -> reduce "count-per-key" -> memory
/// sink "collect <all>" (a name with markup: the page must show it as text).
void build(job& j, sources::generator_options input, sinks::collect<visit>& out) {
  j.from(sources::generator(input, [](std::uint64_t n) { return n; }))
    .name("numbers")
    .map([](const std::uint64_t& n) { return visit{"user-" + std::to_string(n % 7), 1}; })
    .name("enrich")
    .key_by([](const visit& v) { return v.user; })
    .reduce([](const visit& a, const visit& b) { return visit{a.user, a.clicks + b.clicks}; })
    .name("count-per-key")
    .sink_to(out)
    .name("collect <all>");
}

/// The program `name` on PATH, or "" (run_child needs a path: it does not search PATH).
std::string find_program(std::initializer_list<const char*> names) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs{path ? path : "/usr/local/bin:/usr/bin:/bin"};
  std::vector<std::string> dir_list;
  for (std::string d; std::getline(dirs, d, ':');)
    if (!d.empty())
      dir_list.push_back(d);
  for (auto* name : names)
    for (auto& d : dir_list) {
      const auto candidate = fs::path{d} / name;
      if (::access(candidate.c_str(), X_OK) == 0)
        return candidate.string();
    }
  return {};
}

std::string require_program(std::initializer_list<const char*> names, const std::string& hint) {
  auto p = find_program(names);
  BOOST_REQUIRE_MESSAGE(!p.empty(), "'" << *names.begin() << "' is not on PATH: " << hint);
  return p;
}

std::string read_file(const fs::path& p) {
  std::ifstream in{p, std::ios::binary};
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

bool exited_ok(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

std::string describe_status(int status) {
  if (WIFEXITED(status))
    return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return "signal " + std::to_string(WTERMSIG(status));
  return "wait status " + std::to_string(status);
}

/// Headless Chromium on `url` with `extra` arguments (--dump-dom, --screenshot=...), in its
/// own profile directory. coreutils' `timeout` bounds it: a hung browser fails the test
/// with a message rather than hitting the CTest timeout. Returns the wait status.
int run_chromium(const fs::path& work, const std::string& tag, const std::string& url,
                 std::vector<std::string> extra, const fs::path& stdout_file) {
  const auto chromium = require_program(
    {"chromium", "chromium-browser", "google-chrome"},
    "the status page test needs Chromium (Debian: apt-get install chromium)");
  const auto timeout = require_program({"timeout"}, "coreutils' timeout is needed");
  const auto profile = work / ("chromium-profile-" + tag);
  fs::create_directories(profile);
  std::vector<std::string> args{timeout,          "-k",
                                "10",             "180",
                                chromium,         "--headless=new",
                                "--no-sandbox",   "--disable-gpu",
                                "--no-first-run", "--disable-dev-shm-usage",
                                "--user-data-dir=" + profile.string(),
                                "--virtual-time-budget=5000"};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(url);
  return run_child(args, {}, {}, stdout_file.string(), (work / ("chromium-" + tag + ".err")).string());
}

/// The checkpoint ids shown in the page's checkpoints table.
std::set<std::int64_t> checkpoint_ids_in(const std::string& dom) {
  std::set<std::int64_t> ids;
  static const std::regex row{R"re(<tr class="checkpoint" data-id="(\d+)")re"};
  const std::sregex_iterator none;
  for (auto it = std::sregex_iterator(dom.begin(), dom.end(), row); it != none; ++it)
    ids.insert(std::stoll((*it)[1].str()));
  return ids;
}

/// The part of `dom` from the element with `id` to the end of its table or svg (enough to
/// tell which section a text is in; sections do not nest).
std::string section(const std::string& dom, const std::string& id, const std::string& end_tag) {
  const auto from = dom.find("id=\"" + id + "\"");
  if (from == std::string::npos)
    return {};
  const auto to = dom.find(end_tag, from);
  return dom.substr(from, to == std::string::npos ? std::string::npos : to - from);
}

/// One sample of the Prometheus text format.
struct sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

/// Parses the samples (not the comments) of a Prometheus exposition; label values are
/// unescaped (\\, \", \n). Fails the test on a malformed line.
std::vector<sample> parse_samples(const std::string& text) {
  std::vector<sample> out;
  std::istringstream lines{text};
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#')
      continue;
    sample s;
    std::size_t i = line.find_first_of("{ ");
    BOOST_REQUIRE_MESSAGE(i != std::string::npos, "malformed sample: " << line);
    s.name = line.substr(0, i);
    if (line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        const auto eq = line.find('=', i);
        BOOST_REQUIRE_MESSAGE(eq != std::string::npos && eq + 1 < line.size() && line[eq + 1] == '"',
                              "malformed labels: " << line);
        const auto key = line.substr(i, eq - i);
        std::string value;
        std::size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\' && j + 1 < line.size()) {
            ++j;
            value += line[j] == 'n' ? '\n' : line[j];
          } else {
            value += line[j];
          }
        }
        BOOST_REQUIRE_MESSAGE(j < line.size(), "unterminated label value: " << line);
        s.labels[key] = value;
        i = j + 1;
        if (i < line.size() && line[i] == ',')
          ++i;
      }
      BOOST_REQUIRE_MESSAGE(i < line.size(), "unterminated labels: " << line);
      ++i; // the '}'
    }
    s.value = std::stod(line.substr(i + 1));
    out.push_back(std::move(s));
  }
  return out;
}

/// The sum of `metric` over the samples whose operator label is `op`, and how many there are.
std::pair<double, int> sum_for_operator(const std::vector<sample>& samples, const std::string& metric,
                                        const std::string& op) {
  double sum = 0;
  int n = 0;
  for (auto& s : samples)
    if (s.name == metric && s.labels.count("operator") && s.labels.at("operator") == op) {
      sum += s.value;
      ++n;
    }
  return {sum, n};
}

/// Waits until the job completed a checkpoint (bounded by safety_timeout; false when the
/// job ended first). Polls every 20 ms: a snapshot copies every counter and the plan.
bool checkpoint_completed(job_execution& exec) {
  const auto deadline = std::chrono::steady_clock::now() + safety_timeout;
  while (exec.snapshot().checkpoints_completed < 1) {
    if (std::chrono::steady_clock::now() > deadline || exec.wait_for(std::chrono::milliseconds{20}))
      return exec.snapshot().checkpoints_completed >= 1;
  }
  return true;
}

/// The svg of the chart `id` in `html`, or "".
std::string chart_in(const std::string& html, const std::string& id) {
  const auto from = html.find("data-chart=\"" + id + "\"");
  if (from == std::string::npos)
    return {};
  return html.substr(from, html.find("</svg>", from) - from);
}

std::string http_get(const std::string& url, const std::string& path) {
  httplib::Client client{url};
  client.set_read_timeout(30, 0);
  auto res = client.Get(path);
  BOOST_REQUIRE_MESSAGE(res, "GET " << url << path << " failed: " << httplib::to_string(res.error()));
  BOOST_REQUIRE_EQUAL(res->status, 200);
  return res->body;
}

} // namespace mon_test

using namespace mon_test;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(status_page)

BOOST_AUTO_TEST_CASE(the_page_is_self_contained_and_gets_its_refresh_period) {
  // Offline use: nothing the page loads may come from elsewhere.
  sinks::collect<visit> out;
  job j{{.name = "self-contained"}};
  build(j, {.count = 10}, out);
  auto exec = require_ok(j.start());
  auto mon = require_ok(monitor::server::start(*exec, {.port = 0, .page_refresh = 1234ms}));
  const auto page = http_get(mon->url(), "/");
  BOOST_TEST(contains(page, "const REFRESH_MS = 1234;"));
  BOOST_TEST(!contains(page, "__SLUICE_REFRESH_MS__"));
  for (const char* external : {"<script src", "<link", "<img", "<iframe", "url(http", "import(",
                               "src=\"http", "href=\"http", "href=\"//", "src=\"//"})
    BOOST_TEST(!contains(page, external), "the page refers to something outside: " << external);
  for (const char* id : {"id=\"graph\"", "id=\"operators\"", "id=\"checkpoints\"",
                         "id=\"progress\"", "id=\"failure\"", "id=\"charts\""})
    BOOST_TEST(contains(page, id), id);
  // The charts without JavaScript: server-rendered SVG, nothing loaded from elsewhere.
  const auto charts = http_get(mon->url(), "/charts");
  BOOST_TEST(contains(charts, "<meta http-equiv=\"refresh\" content=\"2\">"));
  BOOST_TEST(contains(charts, "data-chart=\"records-per-second\""));
  for (const char* external : {"<script", "<link", "<img", "<iframe", "src=\"http", "href=\"http"})
    BOOST_TEST(!contains(charts, external), "the charts page refers to something: " << external);
  // Pages of the application (a dashboard) beside the monitor's own; none may take a
  // route of the monitor's or be a pattern.
  auto with_page = require_ok(monitor::server::start(
    *exec, {.port = 0, .pages = {{"/board", "text/plain", [] { return std::string{"hello"}; }}}}));
  BOOST_TEST(http_get(with_page->url(), "/board") == "hello");
  with_page.reset();
  for (const char* bad : {"/metrics", "/api/charts", "board", "/x.*", "/"}) {
    auto refused = monitor::server::start(*exec, {.port = 0, .pages = {{bad, "text/plain", [] { return std::string{}; }}}});
    BOOST_REQUIRE_MESSAGE(!refused.has_value(), bad);
    BOOST_TEST(contains(refused.error().message, "must be a plain path"), refused.error().message);
  }
  mon.reset();
  BOOST_TEST(exec->wait_for(safety_timeout));
}

BOOST_AUTO_TEST_CASE(chromium_renders_the_running_job) {
  temp_dir dir;
  sinks::collect<visit> out;
  job_options opts{.name = "monitor-demo",
                   .parallelism = 2,
                   .trigger = triggers::continuous(200ms),
                   .progress_interval = 200ms,
                   .checkpoints = {.dir = dir.path / "ckpt", .interval = 200ms}};
  job j{opts};
  // Unbounded but paced: the job is still running while Chromium polls it.
  build(j, {.rate = 20'000.0}, out);
  auto exec = require_ok(j.start());
  BOOST_REQUIRE_MESSAGE(checkpoint_completed(*exec), "no checkpoint completed in time");
  // Page refresh shorter than the virtual time budget: the page polls several times (few
  // enough that a loaded machine still answers them quickly).
  auto mon = require_ok(monitor::server::start(
    *exec, {.port = 0, .page_refresh = 1s, .chart_interval = 100ms}));
  const auto url = mon->url() + "/";
  // The charts have rates and a checkpoint once the sampler took a few samples.
  {
    const auto deadline = std::chrono::steady_clock::now() + safety_timeout;
    std::string fragment;
    while (!(contains(fragment = http_get(mon->url(), "/api/charts"), "<polyline class=\"series\" data-series=\"numbers\"") &&
             contains(chart_in(fragment, "checkpoint-size"), "class=\"series\""))) {
      BOOST_REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                            "the charts never showed data: " << fragment);
      BOOST_REQUIRE_MESSAGE(!exec->wait_for(20ms), "the job ended");
    }
  }

  // -- the DOM after the scripts ran ---------------------------------------------------
  const auto dom_file = dir.path / "dom.html";
  const int dumped = run_chromium(dir.path, "dom", url, {"--dump-dom"}, dom_file);
  const auto dom = read_file(dom_file);
  fs::create_directories(SLUICE_ARTIFACTS_DIR);
  std::ofstream{fs::path{SLUICE_ARTIFACTS_DIR} / "status_page_dom.html", std::ios::binary} << dom;
  BOOST_REQUIRE_MESSAGE(exited_ok(dumped), "chromium --dump-dom: " << describe_status(dumped) << "\n"
                                             << read_file(dir.path / "chromium-dom.err"));
  const auto after = exec->snapshot();
  BOOST_TEST_MESSAGE("dumped DOM: " << dom.size() << " bytes");
  BOOST_TEST(contains(dom, "<span id=\"connection\" class=\"live\">live</span>"),
             "the page never reached the API (see " SLUICE_ARTIFACTS_DIR "/status_page_dom.html)");
  BOOST_TEST(contains(dom, "<h1 id=\"job-name\">monitor-demo</h1>"));
  BOOST_TEST(contains(dom, "class=\"badge state-running\">running</span>"));
  BOOST_TEST(contains(dom, "<div id=\"failure\" class=\"none\">none</div>"));

  const auto graph = section(dom, "graph", "</svg>");
  const auto operators = section(dom, "operators", "</table>");
  for (const std::string name : {"numbers", "enrich", "count-per-key"}) {
    BOOST_TEST(contains(graph, "data-name=\"" + name + "\""), name << " in the graph");
    BOOST_TEST(contains(operators, "<span class=\"opname\">" + name + "</span>"), name << " in the table");
  }
  BOOST_TEST(contains(graph, ">hash by key</text>"), "the key_by edge is labelled");
  BOOST_TEST(contains(graph, "\u00d72</text>"), "the parallelism is shown");
  // User text is shown as text, never parsed as markup.
  BOOST_TEST(contains(operators, "<span class=\"opname\">collect &lt;all&gt;</span>"));
  BOOST_TEST(!contains(dom, "</all>"), "an operator name was inserted as HTML");

  // The table shows completed checkpoints: ids the job really completed.
  const auto shown = checkpoint_ids_in(section(dom, "checkpoints", "</table>"));
  BOOST_REQUIRE_MESSAGE(!shown.empty(), "no checkpoint row in the page");
  std::set<std::int64_t> completed;
  for (auto& c : after.checkpoints)
    completed.insert(c.id);
  BOOST_REQUIRE(!completed.empty());
  BOOST_TEST(*shown.rbegin() <= *completed.rbegin());
  bool any_known = false;
  for (auto id : shown)
    any_known = any_known || completed.count(id) > 0;
  BOOST_TEST(any_known, "the page's checkpoint ids are not among the job's completed ones");
  // (Searched in the table: the page's script holds the same markup without the numbers.)
  static const std::regex report_row{R"re(<tr class="report" data-batch="\d+")re"};
  const auto progress = section(dom, "progress", "</table>");
  BOOST_TEST(std::regex_search(progress, report_row), "no progress report in the page");

  // The charts, rendered by the server into the page: one svg each, with a line per
  // operator in the records chart and the checkpoints drawn.
  const auto charts = section(dom, "charts", "</section>");
  for (const std::string chart : {"records-per-second", "watermark-lag", "checkpoint-duration", "checkpoint-size"})
    BOOST_TEST(contains(charts, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" data-chart=\"" + chart + "\""),
               chart << " chart in the page");
  const auto records = chart_in(charts, "records-per-second");
  for (const std::string name : {"numbers", "enrich", "count-per-key"})
    BOOST_TEST(contains(records, "<polyline class=\"series\" data-series=\"" + name + "\""), name << "'s records line");
  BOOST_TEST(contains(records, "data-series=\"collect &lt;all&gt;\""), "names in the charts are text");
  BOOST_TEST(!contains(records, "no data yet"));
  for (const std::string chart : {"checkpoint-duration", "checkpoint-size"})
    BOOST_TEST(contains(chart_in(charts, chart), "class=\"series\""), chart << " has points");
  // (The generator has no watermark strategy: the lag chart has nothing to show.)
  BOOST_TEST(contains(chart_in(charts, "watermark-lag"), "no data yet"));

  // -- the screenshot, kept as an artifact ---------------------------------------------
  const auto shot = dir.path / "status_page.png";
  const int captured = run_chromium(dir.path, "shot", url,
                                    {"--window-size=1400,1000", "--screenshot=" + shot.string()},
                                    dir.path / "chromium-shot.out");
  BOOST_REQUIRE_MESSAGE(exited_ok(captured), "chromium --screenshot: " << describe_status(captured) << "\n"
                                               << read_file(dir.path / "chromium-shot.err"));
  BOOST_REQUIRE_MESSAGE(fs::exists(shot), "no screenshot written");
  const auto png = read_file(shot);
  BOOST_TEST(png.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8), "not a PNG");
  // A blank 1400x1000 page compresses to a few KB; the rendered page is far larger.
  BOOST_TEST(png.size() > 20'000u, "screenshot of " << png.size() << " bytes: a blank page?");
  if (png.size() >= 24) {
    auto be32 = [&](std::size_t at) {
      return (static_cast<unsigned>(static_cast<unsigned char>(png[at])) << 24) |
             (static_cast<unsigned>(static_cast<unsigned char>(png[at + 1])) << 16) |
             (static_cast<unsigned>(static_cast<unsigned char>(png[at + 2])) << 8) |
             static_cast<unsigned>(static_cast<unsigned char>(png[at + 3]));
    };
    BOOST_TEST(be32(16) == 1400u, "width");
    BOOST_TEST(be32(20) == 1000u, "height");
  }
  fs::copy_file(shot, fs::path{SLUICE_ARTIFACTS_DIR} / "status_page.png",
                fs::copy_options::overwrite_existing);
  BOOST_TEST_MESSAGE("screenshot: " SLUICE_ARTIFACTS_DIR "/status_page.png");

  mon.reset();
  exec->cancel();
  auto done = require_ok(exec->wait());
  BOOST_TEST(done.cancelled);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(metrics_promtool)

BOOST_AUTO_TEST_CASE(promtool_accepts_the_metrics_and_the_counters_match_the_input) {
  constexpr std::uint64_t n = 10'000;
  temp_dir dir;
  sinks::collect<visit> out;
  job j{{.name = "metrics \"demo\"", .parallelism = 2}};
  build(j, {.count = n}, out);
  auto exec = require_ok(j.start());
  auto mon = require_ok(monitor::server::start(*exec, {.port = 0}));
  BOOST_REQUIRE_MESSAGE(exec->wait_for(safety_timeout), "the bounded job did not finish");
  require_ok(exec->wait());
  BOOST_REQUIRE_EQUAL(exec->snapshot().state, "finished");
  BOOST_REQUIRE_EQUAL(out.size(), n); // reduce emits one running count per record

  const auto text = http_get(mon->url(), "/metrics");
  const auto file = dir.write("metrics.txt", text);
  fs::create_directories(SLUICE_ARTIFACTS_DIR);
  std::ofstream{fs::path{SLUICE_ARTIFACTS_DIR} / "metrics.txt", std::ios::binary} << text;

  // promtool reads the exposition from stdin; it also lints names, types and help.
  const auto promtool = require_program({"promtool"}, "Debian: apt-get install prometheus");
  const auto report = dir.path / "promtool.out";
  const int checked = run_child({"/bin/sh", "-c", "exec \"$0\" check metrics < \"$1\"", promtool,
                                 file.string()},
                                {}, {}, report.string(), report.string());
  BOOST_TEST(exited_ok(checked), "promtool check metrics: " << describe_status(checked) << "\n"
                                                              << read_file(report));

  // The job label is escaped as the format requires.
  BOOST_TEST(contains(text, "sluice_records_in_total{job=\"metrics \\\"demo\\\"\",operator=\"enrich\""));
  const auto samples = parse_samples(text);
  const auto [source_out, source_instances] = sum_for_operator(samples, "sluice_records_out_total", "numbers");
  BOOST_TEST(source_instances == 2);
  BOOST_TEST(source_out == static_cast<double>(n), "records out of the source");
  const auto [enrich_in, enrich_instances] = sum_for_operator(samples, "sluice_records_in_total", "enrich");
  BOOST_TEST(enrich_instances == 2);
  BOOST_TEST(enrich_in == static_cast<double>(n), "records into enrich");
  BOOST_TEST(sum_for_operator(samples, "sluice_records_in_total", "count-per-key").first == static_cast<double>(n));
  BOOST_TEST(sum_for_operator(samples, "sluice_records_in_total", "collect <all>").first == static_cast<double>(n));
  // The job ended: its state gauge says so.
  for (auto& s : samples)
    if (s.name == "sluice_job_state")
      BOOST_TEST(s.value == (s.labels.at("state") == "finished" ? 1.0 : 0.0), s.labels.at("state"));
}

BOOST_AUTO_TEST_CASE(promtool_accepts_non_finite_values_as_written) {
  // No sluice metric is NaN or infinite today; a gauge that becomes one must still parse.
  temp_dir dir;
  std::string text = "# HELP sluice_test_value A value of each kind.\n# TYPE sluice_test_value gauge\n";
  const std::pair<const char*, double> values[] = {{"nan", std::numeric_limits<double>::quiet_NaN()},
                                                   {"plus_inf", std::numeric_limits<double>::infinity()},
                                                   {"minus_inf", -std::numeric_limits<double>::infinity()},
                                                   {"tenth", 0.1}};
  for (auto& [kind, v] : values)
    text += std::string{"sluice_test_value{kind=\""} + kind + "\"} " + monitor::prometheus_value(v) + "\n";
  const auto file = dir.write("non_finite.txt", text);
  const auto promtool = require_program({"promtool"}, "Debian: apt-get install prometheus");
  const auto report = dir.path / "promtool.out";
  const int checked = run_child({"/bin/sh", "-c", "exec \"$0\" check metrics < \"$1\"", promtool,
                                 file.string()},
                                {}, {}, report.string(), report.string());
  BOOST_TEST(exited_ok(checked), "promtool check metrics: " << describe_status(checked) << "\n"
                                                              << read_file(report) << "\n" << text);
  BOOST_TEST(contains(text, "{kind=\"nan\"} NaN\n"), text);
  BOOST_TEST(contains(text, "{kind=\"plus_inf\"} +Inf\n"), text);
  BOOST_TEST(contains(text, "{kind=\"minus_inf\"} -Inf\n"), text);
}

BOOST_AUTO_TEST_SUITE_END()
