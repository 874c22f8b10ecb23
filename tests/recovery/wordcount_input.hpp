#pragma once
// The windowed_wordcount sample's input and committed output, for the crash tests of one
// process (crash_test.cpp) and of a cluster (cluster_test.cpp).
#include "sluice/sinks/file_manifest.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace sluice::test {

/// 60 files of 400 lines: words from a small vocabulary, event times rising over the
/// files and out of order by less than the watermark delay (so no row is late, whatever
/// the batching after a restart).
inline void write_input(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  std::mt19937_64 rng{7};
  const char* words[] = {"cat", "dog", "owl", "emu", "yak", "gnu", "elk", "fox", "bee", "ant"};
  long t = 0; // seconds after 2026-01-01T00:00:00Z
  for (int f = 0; f < 60; ++f) {
    char name[16];
    std::snprintf(name, sizeof name, "%03d.jsonl", f);
    std::ofstream out{dir / name};
    for (int i = 0; i < 400; ++i) {
      t += 3;
      const long jitter = static_cast<long>(rng() % 120); // < the 5 min delay
      const long s = std::max(0L, t - jitter);
      char ts[32];
      std::snprintf(ts, sizeof ts, "2026-01-01T%02ld:%02ld:%02ldZ", s / 3600, (s / 60) % 60, s % 60);
      out << "{\"timestamp\": \"" << ts << "\", \"line\": \"" << words[rng() % 10] << ' '
          << words[rng() % 10] << "\"}\n";
    }
  }
}

/// The committed output, as a reader that follows the sink's manifest sees it.
inline std::vector<std::string> committed_rows(const std::filesystem::path& dir) {
  std::vector<std::string> rows;
  if (!std::filesystem::exists(dir))
    return rows;
  auto files = sluice::sinks::read_committed_files(dir);
  BOOST_REQUIRE_MESSAGE(files.has_value(), (files ? std::string{} : files.error().to_string()));
  for (auto& f : *files) {
    std::ifstream in{f.path};
    for (std::string line; std::getline(in, line);)
      rows.push_back(line);
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

} // namespace sluice::test
