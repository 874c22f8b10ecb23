#pragma once
/// Runs the fraud_detection sample as a child process (for the command-line and kill -9
/// tests), its output to files (or /dev/null), optionally killed with SIGKILL after a while.
#include "sluice/tests/common/child_process.hpp"

namespace sluice::fraud::test {

inline int run_sample(const std::vector<std::string>& args, const std::string& crash_at = {},
                      std::optional<std::chrono::milliseconds> kill_after = {},
                      const std::string& stdout_file = "/dev/null",
                      const std::string& stderr_file = "/dev/null") {
  return sluice::test::run_child(args, crash_at, kill_after, stdout_file, stderr_file);
}

} // namespace sluice::fraud::test
