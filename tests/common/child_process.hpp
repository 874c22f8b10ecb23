#pragma once
/// Runs a program as a child process for crash and command-line tests: optionally with
/// SLUICE_CRASH_AT set (samples kill themselves at a step of the checkpoint protocol, see
/// samples/common/cli.hpp) or killed with SIGKILL after a delay; or to its exit, with what
/// it wrote.
#include "temp_dir.hpp"

#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

extern char** environ;

namespace sluice::test {

/// The argument and environment arrays `posix_spawn` takes: `args` (args[0] is the program),
/// and this process's environment with `SLUICE_CRASH_AT=crash_at` in place of its own when
/// `crash_at` is not empty (samples/common/cli.hpp). Not copyable: the arrays point into it.
class spawn_arrays {
public:
  spawn_arrays(const std::vector<std::string>& args, const std::string& crash_at) {
    for (auto& a : args)
      argv_.push_back(const_cast<char*>(a.c_str()));
    argv_.push_back(nullptr);
    for (char** e = environ; *e; ++e)
      if (!std::string_view{*e}.starts_with("SLUICE_CRASH_AT="))
        env_text_.emplace_back(*e);
    if (!crash_at.empty())
      env_text_.push_back("SLUICE_CRASH_AT=" + crash_at);
    for (auto& e : env_text_)
      envp_.push_back(e.data());
    envp_.push_back(nullptr);
  }
  spawn_arrays(const spawn_arrays&) = delete;
  spawn_arrays& operator=(const spawn_arrays&) = delete;

  char* program() const { return argv_[0]; }
  char* const* argv() const { return argv_.data(); }
  char* const* envp() const { return envp_.data(); }

private:
  std::vector<char*> argv_;
  std::vector<std::string> env_text_;
  std::vector<char*> envp_;
};

/// Runs `args` (args[0] is the program) with `SLUICE_CRASH_AT=crash_at` when not empty, its
/// stdout and stderr to the files given (empty: this process's); `kill_after` kills it after
/// that long. Returns the wait status.
inline int run_child(const std::vector<std::string>& args, const std::string& crash_at = {},
                     std::optional<std::chrono::milliseconds> kill_after = {},
                     const std::string& stdout_file = {}, const std::string& stderr_file = {}) {
  const spawn_arrays arrays{args, crash_at};
  posix_spawn_file_actions_t io;
  posix_spawn_file_actions_init(&io);
  if (!stdout_file.empty())
    posix_spawn_file_actions_addopen(&io, 1, stdout_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!stderr_file.empty())
    posix_spawn_file_actions_addopen(&io, 2, stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, arrays.program(), &io, nullptr, arrays.argv(), arrays.envp());
  posix_spawn_file_actions_destroy(&io);
  BOOST_REQUIRE_EQUAL(spawned, 0);
  if (kill_after) {
    // Only picks the moment of the kill; the outcome asserted does not depend on it.
    std::this_thread::sleep_for(*kill_after);
    ::kill(pid, SIGKILL);
  }
  int status = 0;
  BOOST_REQUIRE_EQUAL(::waitpid(pid, &status, 0), pid);
  return status;
}

/// How a child process run to its end exited, and what it wrote to stdout and stderr.
struct child_outcome {
  int exit_code = -1;
  std::string out, err;
};

/// Runs `args` (args[0] is the program) to its end, its stdout and stderr captured; it must
/// exit, not die of a signal.
inline child_outcome run_to_exit(const std::vector<std::string>& args) {
  temp_dir tmp;
  const auto out = tmp.path / "out", err = tmp.path / "err";
  const int status = run_child(args, {}, {}, out.string(), err.string());
  BOOST_REQUIRE_MESSAGE(WIFEXITED(status), args[0] << " did not exit (wait status " << status << ")");
  auto text = [](const std::filesystem::path& p) {
    std::ifstream in{p, std::ios::binary};
    return std::string{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
  };
  return {WEXITSTATUS(status), text(out), text(err)};
}

} // namespace sluice::test
