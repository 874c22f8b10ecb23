#pragma once
/// What the multi-node benchmarks (cluster_bench, cluster_recovery) share: the workload
/// record's form between nodes, the clock that stamps records, and starting this binary again
/// as the node processes of a loopback cluster (`<binary> node --index I --cluster A,B,...`
/// followed by the run's own flags).
#include "sluice/bench/workload.hpp"

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace sluice::bench {

/// What crosses nodes is encoded by these fields (the binary record codec).
template <class Inspector>
bool inspect(Inspector& f, record& x) {
  return f.object("record").fields(f.field("key", x.key), f.field("value", x.value),
                                   f.field("ts", x.ts));
}

/// Nanoseconds on the steady clock (CLOCK_MONOTONIC): one clock for every process on this
/// machine, so a stamp made on one node is compared on another. Inline: W3 stamps every record.
inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

/// The median of `v` (the mean of the middle two for an even count); `v` is not empty.
double median(std::vector<double> v);

/// Where a node process sits in its cluster: the `node` subcommand's `--index` and
/// `--cluster`, parsed by the node and written by the process that starts it.
struct node_placement {
  int index = 0;
  std::string cluster; ///< every node's endpoint, comma-separated, node 0 first

  /// Adds `--index` and `--cluster`, both required, to the `node` subcommand.
  void add_flags(CLI::App& node);
  /// The endpoints of `cluster`, node 0 first.
  std::vector<std::string> nodes() const;
  /// The command line that starts this binary as this node: the caller appends the flags
  /// of its run.
  std::vector<std::string> command() const;
};

/// `nodes` endpoints as `--cluster` takes them: comma-separated, node 0 first.
std::string cluster_flag(const std::vector<std::string>& nodes);

/// Starts `args` (`args[0]` is the binary) with this process's environment, its stdout and
/// stderr appended to the files `out` and `err` when they are given (else this process's).
/// Empty when the process cannot be started.
std::optional<pid_t> start_process(const std::vector<std::string>& args, const std::string& out = {},
                                   const std::string& err = {});

} // namespace sluice::bench
