#pragma once
/// Network namespaces made by a test, so that a node of a multi-node run can be cut off by
/// the network while it keeps running (a partition, not a crash). Needs root (CAP_NET_ADMIN
/// and CAP_SYS_ADMIN) and iproute2's `ip`; `netns_unavailable()` says why not, for a
/// Boost.Test precondition that skips the test.
///
/// The layout: a hub namespace with a bridge, and one namespace per node joined to the
/// bridge by a veth pair, node n at 10.213.0.(n+1)/24 on its `eth0`. Every link and address
/// lives inside the test's own namespaces (nothing in the host's network changes, and two
/// tests at once do not collide: only the namespace names are global, and they carry the
/// pid). `cut(n)` sets the hub's end of node n's veth down: node n loses carrier and nothing
/// passes in either direction, established TCP connections stay open and silent, as behind
/// a real partition; `heal(n)` sets it up again.
///
/// Namespaces are `sluice-np-<pid>-<k>-hub` and `sluice-np-<pid>-<k>-<n>`; the destructor
/// deletes them, and the constructor deletes those of test processes that are gone (a test
/// killed with SIGKILL cannot clean up after itself).
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace sluice::test {

namespace netns_detail {

inline constexpr const char* prefix = "sluice-np-";

/// iproute2's `ip`, or "" when there is none.
inline std::string ip_program() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"})
    if (::access(p, X_OK) == 0)
      return p;
  return {};
}

/// How a command ended, and what it wrote (stdout and stderr together).
struct outcome {
  int exit_code = -1;
  std::string output;
};

/// Runs `args` (args[0] a path) to its end without Boost.Test assertions, so that a
/// destructor may call it. Nothing it does can throw past here.
inline outcome run(const std::vector<std::string>& args) noexcept {
  outcome o;
  try {
    char tmpl[] = "/tmp/sluice-netns-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    if (fd < 0)
      return o;
    ::unlink(tmpl);
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    posix_spawn_file_actions_t io;
    posix_spawn_file_actions_init(&io);
    posix_spawn_file_actions_adddup2(&io, fd, 1);
    posix_spawn_file_actions_adddup2(&io, fd, 2);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, argv[0], &io, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&io);
    if (rc != 0) {
      ::close(fd);
      o.output = args[0] + ": cannot start (errno " + std::to_string(rc) + ")";
      return o;
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    ::lseek(fd, 0, SEEK_SET);
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
      o.output.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
  } catch (...) {
  }
  return o;
}

/// `ip ARGS...`.
inline outcome ip(const std::vector<std::string>& args) {
  std::vector<std::string> all{ip_program()};
  all.insert(all.end(), args.begin(), args.end());
  return run(all);
}

/// Deletes the namespaces of test processes that no longer run.
inline void remove_stale() {
  std::istringstream list{ip({"netns", "list"}).output};
  for (std::string line; std::getline(list, line);) {
    const auto name = line.substr(0, line.find(' ')); // "NAME (id: 3)"
    if (!name.starts_with(prefix))
      continue;
    const auto rest = name.substr(std::string_view{prefix}.size());
    const auto dash = rest.find('-');
    pid_t pid = 0;
    try {
      pid = static_cast<pid_t>(std::stol(rest.substr(0, dash)));
    } catch (...) {
      continue;
    }
    if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH)
      ip({"netns", "del", name});
  }
}

/// Namespaces deleted with it: a member of `netns_cluster`, so that a constructor that fails
/// half-way deletes what it made too.
struct owned {
  std::vector<std::string> names;
  owned() = default;
  owned(const owned&) = delete;
  owned& operator=(const owned&) = delete;
  ~owned() {
    for (auto& ns : names)
      ip({"netns", "del", ns});
  }
};

} // namespace netns_detail

/// Why this process cannot make the namespaces `netns_cluster` needs, or nothing when it
/// can: it tries (a namespace with a bridge and a veth pair) and removes what it made.
inline std::optional<std::string> netns_unavailable() {
  if (netns_detail::ip_program().empty())
    return "no iproute2 'ip' program in /usr/sbin, /sbin, /usr/bin or /bin";
  if (::geteuid() != 0)
    return "not root: network namespaces need CAP_NET_ADMIN and CAP_SYS_ADMIN";
  const auto name = std::string{netns_detail::prefix} + std::to_string(::getpid()) + "-probe";
  auto step = [&](const std::vector<std::string>& args) -> std::optional<std::string> {
    const auto o = netns_detail::ip(args);
    if (o.exit_code == 0)
      return std::nullopt;
    std::string cmd = "ip";
    for (auto& a : args)
      cmd += " " + a;
    return "'" + cmd + "' failed: " + o.output;
  };
  std::optional<std::string> why = step({"netns", "add", name});
  if (!why)
    why = step({"-n", name, "link", "add", "br0", "type", "bridge"});
  if (!why)
    why = step({"-n", name, "link", "add", "a0", "type", "veth", "peer", "name", "b0"});
  netns_detail::ip({"netns", "del", name});
  return why;
}

/// Boost.Test precondition: the test is skipped, with the reason, where namespaces cannot
/// be made (a CI container without CAP_NET_ADMIN, a user without root).
struct netns_available {
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    const auto why = netns_unavailable();
    boost::test_tools::assertion_result r{!why};
    if (why)
      r.message() << "cannot make network namespaces: " << *why;
    return r;
  }
};

/// `nodes` network namespaces joined by a bridge (see the top of this file), removed with it.
class netns_cluster {
public:
  explicit netns_cluster(int nodes) : nodes_(nodes) {
    static std::atomic<int> counter{0};
    netns_detail::remove_stale();
    base_ = std::string{netns_detail::prefix} + std::to_string(::getpid()) + "-" +
            std::to_string(counter++);
    must({"netns", "add", hub()});
    must({"-n", hub(), "link", "set", "lo", "up"});
    must({"-n", hub(), "link", "add", "br0", "type", "bridge"});
    must({"-n", hub(), "link", "set", "br0", "up"});
    for (int n = 0; n < nodes_; ++n) {
      must({"netns", "add", name(n)});
      must({"-n", name(n), "link", "set", "lo", "up"});
      must({"-n", hub(), "link", "add", port(n), "type", "veth", "peer", "name", "eth0",
            "netns", name(n)});
      must({"-n", hub(), "link", "set", port(n), "master", "br0"});
      must({"-n", hub(), "link", "set", port(n), "up"});
      must({"-n", name(n), "addr", "add", address(n) + "/24", "dev", "eth0"});
      must({"-n", name(n), "link", "set", "eth0", "up"});
    }
  }
  netns_cluster(const netns_cluster&) = delete;
  netns_cluster& operator=(const netns_cluster&) = delete;
  ~netns_cluster() = default; // made_ deletes the namespaces

  std::string name(int n) const { return base_ + "-" + std::to_string(n); }
  std::string hub() const { return base_ + "-hub"; }
  /// Node n's address, in its own namespace only.
  static std::string address(int n) { return "10.213.0." + std::to_string(n + 1); }
  /// What runs a program in node n's namespace: `ip netns exec NAME` (which execs it: the
  /// pid is the program's).
  std::vector<std::string> exec(int n) const {
    return {netns_detail::ip_program(), "netns", "exec", name(n)};
  }
  /// Nothing passes to or from node n any more; its processes run on.
  void cut(int n) { must({"-n", hub(), "link", "set", port(n), "down"}); }
  void heal(int n) { must({"-n", hub(), "link", "set", port(n), "up"}); }

private:
  static std::string port(int n) { return "p" + std::to_string(n); }
  void must(const std::vector<std::string>& args) {
    if (args.size() >= 3 && args[0] == "netns" && args[1] == "add")
      made_.names.push_back(args[2]);
    const auto o = netns_detail::ip(args);
    std::string cmd = "ip";
    for (auto& a : args)
      cmd += " " + a;
    BOOST_REQUIRE_MESSAGE(o.exit_code == 0, "'" << cmd << "' failed: " << o.output);
  }

  int nodes_;
  std::string base_;
  netns_detail::owned made_;
};

} // namespace sluice::test
