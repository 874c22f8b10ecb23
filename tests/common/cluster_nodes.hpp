#pragma once
/// The node processes of one multi-node run on loopback, supervised as scripts/cluster.sh or
/// a StatefulSet would: a node that dies is started again. Shared by the process tests of
/// multi-node runs (tests/recovery/cluster_test.cpp, tests/kafka/kafka_cluster_test.cpp).
#include "child_process.hpp"
#include "loopback.hpp"

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

namespace sluice::test {

/// A cluster file of `nodes` loopback endpoints on free ports.
inline std::filesystem::path cluster_file(const std::filesystem::path& dir, int nodes) {
  const auto file = dir / "cluster.txt";
  std::ofstream out{file};
  for (int n = 0; n < nodes; ++n)
    out << "127.0.0.1:" << free_port() << "\n";
  return file;
}

/// Starts `args` with its stderr appended to `log`, and `SLUICE_CRASH_AT=crash_at` in its
/// environment when not empty (samples/common/cli.hpp); returns the pid.
inline pid_t spawn_node(const std::vector<std::string>& args, const std::filesystem::path& log,
                        const std::string& crash_at = {}) {
  const spawn_arrays arrays{args, crash_at};
  posix_spawn_file_actions_t io;
  posix_spawn_file_actions_init(&io);
  posix_spawn_file_actions_addopen(&io, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, arrays.program(), &io, nullptr, arrays.argv(), arrays.envp());
  posix_spawn_file_actions_destroy(&io);
  BOOST_REQUIRE_EQUAL(rc, 0);
  return pid;
}

inline std::string read_all(const std::filesystem::path& p) {
  std::ifstream in{p, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

/// The end of each node's log, for a failure's message.
inline std::string log_tails(const std::filesystem::path& dir, std::size_t nodes) {
  std::string out;
  for (std::size_t n = 0; n < nodes; ++n) {
    const auto text = read_all(dir / ("node-" + std::to_string(n) + ".log"));
    out += "\n--- node " + std::to_string(n) + " ---\n" +
           text.substr(text.size() > 60000 ? text.size() - 60000 : 0);
  }
  return out;
}

inline std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& more) {
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

/// The nodes of one cluster run, supervised: a node that dies is started again, as
/// scripts/cluster.sh or a StatefulSet would. Node n's stderr goes to `logs/node-n.log`.
struct cluster_nodes {
  std::vector<std::vector<std::string>> args; ///< per node
  std::filesystem::path logs;
  std::vector<std::optional<pid_t>> pids;
  std::vector<bool> done;
  std::vector<bool> gone; ///< killed for good: never started again
  /// Per node (may be shorter than `args`): SLUICE_CRASH_AT for its first start only, so
  /// that it kills itself once at a step of the checkpoint protocol and its restarts run on.
  std::vector<std::string> crash_at;
  /// Per node: the runs that died of SIGKILL (their own crash hook, or `kill`).
  std::vector<int> killed;
  /// Start a node that dies again even after node 0 ended the job, as scripts/cluster.sh
  /// and a StatefulSet do (by default a node that dies then has nothing left to do).
  bool restart_after_end = false;
  int restarts = 0;

  void start(std::size_t n) {
    const bool first = !started_[n];
    started_[n] = true;
    pids[n] = spawn_node(args[n], logs / ("node-" + std::to_string(n) + ".log"),
                         first && n < crash_at.size() ? crash_at[n] : std::string{});
  }
  void start_all() {
    pids.assign(args.size(), std::nullopt);
    done.assign(args.size(), false);
    gone.assign(args.size(), false);
    killed.assign(args.size(), 0);
    started_.assign(args.size(), false);
    for (std::size_t n = 0; n < args.size(); ++n)
      start(n);
  }
  void kill(std::size_t n) {
    if (pids[n])
      ::kill(*pids[n], SIGKILL);
  }
  /// Reaps what exited: 0 is done, anything else is started again (at most 40 times in
  /// all) unless it is `gone`. Returns true when every node is done or gone.
  bool step() {
    for (std::size_t n = 0; n < args.size(); ++n) {
      if (!pids[n])
        continue;
      int status = 0;
      if (::waitpid(*pids[n], &status, WNOHANG) != *pids[n])
        continue;
      pids[n].reset();
      if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        ++killed[n];
      if (gone[n])
        continue;
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        done[n] = true;
        continue;
      }
      // Node 0 ended the job: a node that dies after that has nothing left to do.
      if (done[0] && !restart_after_end)
        continue;
      BOOST_REQUIRE_MESSAGE(++restarts <= 40, "node " << n << " keeps failing"
                                                       << log_tails(logs, args.size()));
      start(n);
    }
    for (std::size_t n = 0; n < args.size(); ++n)
      if (!done[n] && !gone[n] && (pids[n] || !done[0]))
        return false;
    return true;
  }
  /// Starts every node and supervises them (`step`) until all are done or `limit` has
  /// passed, then kills what still runs. Returns whether they finished.
  bool run_all(std::chrono::seconds limit) {
    start_all();
    const auto deadline = std::chrono::steady_clock::now() + limit;
    bool finished = false;
    while (!(finished = step()) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
    stop_all();
    return finished;
  }
  void stop_all() {
    for (auto& p : pids)
      if (p) {
        ::kill(*p, SIGKILL);
        int status = 0;
        ::waitpid(*p, &status, 0);
        p.reset();
      }
  }

private:
  std::vector<bool> started_;
};

} // namespace sluice::test
