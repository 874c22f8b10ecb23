#pragma once
/// Headless Chromium for page tests: the DOM after the page's scripts ran, and screenshots.
/// (The same steps as tests/monitor/status_page_test.cpp, for tests outside it.)
#include <boost/test/unit_test.hpp>

#include "sluice/tests/common/child_process.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

namespace sluice::test {

/// The first of `names` found on PATH, or "".
inline std::string find_on_path(std::initializer_list<const char*> names) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs{path ? path : "/usr/local/bin:/usr/bin:/bin"};
  std::vector<std::string> dir_list;
  for (std::string d; std::getline(dirs, d, ':');)
    if (!d.empty())
      dir_list.push_back(d);
  for (auto* name : names)
    for (auto& d : dir_list) {
      const auto candidate = std::filesystem::path{d} / name;
      if (::access(candidate.c_str(), X_OK) == 0)
        return candidate.string();
    }
  return {};
}

/// Headless Chromium on `url` with `extra` arguments (--dump-dom, --screenshot=FILE), its
/// profile and stderr under `work`, its stdout to `stdout_file`; `timeout` bounds it (a
/// hung browser fails the test with a message). Returns the wait status. Fails the test
/// when Chromium is not installed, naming the package.
inline int run_chromium(const std::filesystem::path& work, const std::string& tag, const std::string& url,
                        std::vector<std::string> extra, const std::filesystem::path& stdout_file,
                        int virtual_time_ms = 3000) {
  const auto chromium = find_on_path({"chromium", "chromium-browser", "google-chrome"});
  BOOST_REQUIRE_MESSAGE(!chromium.empty(), "this test needs Chromium (Debian: apt-get install chromium)");
  const auto timeout = find_on_path({"timeout"});
  BOOST_REQUIRE_MESSAGE(!timeout.empty(), "coreutils' timeout is needed");
  const auto profile = work / ("chromium-profile-" + tag);
  std::filesystem::create_directories(profile);
  std::vector<std::string> args{timeout, "-k", "10", "180", chromium, "--headless=new", "--no-sandbox",
                                "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                                "--user-data-dir=" + profile.string(),
                                "--virtual-time-budget=" + std::to_string(virtual_time_ms)};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(url);
  return run_child(args, {}, {}, stdout_file.string(), (work / ("chromium-" + tag + ".err")).string());
}

inline std::string read_text_file(const std::filesystem::path& p) {
  std::ifstream in{p, std::ios::binary};
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

} // namespace sluice::test
