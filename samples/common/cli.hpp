#pragma once
// Command-line flags every sample shares, parsed with CLI11 into typed options (the end of
// a sample's main() is in run.hpp).
#include "sluice/api/job.hpp"
#include "sluice/core/codec/time_format.hpp"
#include "sluice/core/log.hpp"
#include "sluice/monitor/progress_log.hpp"
#include "sluice/net/cluster.hpp"

#include <CLI/CLI.hpp>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <memory>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace sluice::samples {

/// Flags common to all samples.
struct common_flags {
  int parallelism = 1;
  std::size_t batch_size = 1024;
  std::string linger = "0";
  int threads = 0;
  std::string scheduler = "stealing";
  std::string duration = "0"; ///< 0: until the input ends or Ctrl-C
  bool explain = false;
  std::string checkpoint_dir;
  std::string checkpoint_interval; ///< empty: 1s (only with a checkpoint directory)
  /// refuse, repair or start-fresh; empty: refuse (only with a checkpoint directory)
  std::string on_unreadable_checkpoints;
  bool allow_non_restored_state = false; ///< only with a checkpoint directory
  std::int64_t restore_from = -1;  ///< -1: the latest usable checkpoint
  int max_restarts = -1; ///< -1: the restart strategy's default (3)
  int metrics_port = -1; ///< -1: no monitor; 0: any free port
  std::string progress;  ///< progress log file
  std::string progress_interval = "10s";
  std::string log_level = "warn";
  std::vector<std::string> taps; ///< OPERATOR[:PER_SECOND]
  // A multi-node run (docs/cluster.md); without `cluster` the job runs in this process.
  std::string cluster;            ///< cluster file: one host:port per line, node 0 first
  std::optional<int> node;        ///< this process's line in the cluster file, from 0
  std::string cluster_key;        ///< CurveZMQ key file (sluice-cluster-key); empty: none
  std::string heartbeat_interval; ///< empty: 1s (only with --cluster)
  std::string heartbeat_timeout;  ///< empty: 10s (only with --cluster)
  std::string rejoin_timeout;     ///< empty: 60s; "never" (only with --cluster)
  std::string join_timeout;       ///< empty: 60s (only with --cluster)
};

inline void add_common_flags(CLI::App& app, common_flags& f) {
  app.add_option("--parallelism", f.parallelism, "default parallel instances per operator")
    ->check(CLI::Range(1, 128));
  app.add_option("--batch-size", f.batch_size, "records per batch between tasks")
    ->check(CLI::Range(1, 1 << 20));
  app.add_option("--linger", f.linger, "how long a partial batch may wait, e.g. 0, 100us, 5ms");
  app.add_option("--threads", f.threads, "worker threads (0: one per core)");
  app.add_option("--scheduler", f.scheduler, "stealing (fastest) or sharing (idles at 0% CPU)")
    ->check(CLI::IsMember({"stealing", "sharing"}));
  app.add_option("--duration", f.duration, "stop after this long, e.g. 10s (0: run to the end)");
  app.add_flag("--explain", f.explain, "print the logical and physical plans and exit");
  app.add_option("--checkpoint-dir", f.checkpoint_dir,
                 "checkpoint into this directory and resume from it (exactly-once)");
  app.add_option("--checkpoint-interval", f.checkpoint_interval,
                 "time between checkpoints in continuous mode, e.g. 1s (default 1s; needs "
                 "--checkpoint-dir)");
  app.add_option("--on-unreadable-checkpoints", f.on_unreadable_checkpoints,
                 "when --checkpoint-dir holds checkpoint files that cannot be read: refuse "
                 "(the default: fail and change nothing), repair (rebuild them with LevelDB's "
                 "RepairDB, restore the newest checkpoint that verifies) or start-fresh "
                 "(delete them and start from scratch)")
    ->check(CLI::IsMember({"refuse", "repair", "start-fresh"}));
  app.add_flag("--allow-non-restored-state", f.allow_non_restored_state,
               "restore a checkpoint that holds state of operators this job no longer has, "
               "dropping that state (Flink's --allowNonRestoredState; needs --checkpoint-dir)");
  app.add_option("--restore-from", f.restore_from,
                 "restore this checkpoint or savepoint id instead of the latest; a new history "
                 "starts there: newer checkpoints, and the output the exactly-once file sink "
                 "committed for them, are rolled back (needs --checkpoint-dir)");
  app.add_option("--max-restarts", f.max_restarts,
                 "restarts after failures before the job fails (default 3; Flink's "
                 "restart-strategy attempts; needs --checkpoint-dir)")
    ->check(CLI::Range(0, 1000000));
  app.add_option("--metrics-port", f.metrics_port,
                 "serve Prometheus /metrics and the status page / on this port (0: any free)")
    ->check(CLI::Range(0, 65535));
  app.add_option("--progress", f.progress, "append each progress report as a JSON line to FILE");
  app.add_option("--progress-interval", f.progress_interval,
                 "continuous mode: time between progress reports, e.g. 10s (0: every epoch)");
  app.add_option("--log-level", f.log_level,
                 "log to stderr from this level: trace, debug, info, warn, error, critical, off")
    ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--tap", f.taps,
                 "print a sample of the records leaving OPERATOR to stderr, at most "
                 "PER_SECOND a second (default 5): OPERATOR[:PER_SECOND]; repeatable");
  app.add_option("--cluster", f.cluster,
                 "run as one node of a multi-node job: FILE lists every node's host:port, one "
                 "a line, node 0 (the coordinator) first (docs/cluster.md)");
  app.add_option("--node", f.node, "this process's line in the --cluster file, from 0");
  app.add_option("--cluster-key", f.cluster_key,
                 "authenticate and encrypt the traffic between nodes (CurveZMQ) with the key "
                 "FILE made by sluice-cluster-key (needs --cluster)");
  app.add_option("--heartbeat-interval", f.heartbeat_interval,
                 "time between heartbeats to each node, e.g. 1s (default 1s; needs --cluster)");
  app.add_option("--heartbeat-timeout", f.heartbeat_timeout,
                 "a node silent this long is lost and fails the job, e.g. 10s (default 10s; "
                 "longer than the interval; needs --cluster)");
  app.add_option("--rejoin-timeout", f.rejoin_timeout,
                 "a lost node not back within this long is left out: node 0 re-plans the job "
                 "onto the other nodes from the last checkpoint (needs --checkpoint-dir shared "
                 "by the nodes), e.g. 60s (the default), or never (needs --cluster)");
  app.add_option("--join-timeout", f.join_timeout,
                 "a node that has not joined within this long fails the attempt; node 0 "
                 "restarted after the job had ended ends too, e.g. 60s (the default; needs "
                 "--cluster)");
}

/// What a duration flag may be.
enum class duration_rule {
  positive,     ///< more than zero (sizes, slides, intervals)
  not_negative, ///< zero or more (delays, lingers; 0 often means "off")
};

/// Parses the duration flag `flag` (e.g. "--watermark") from `text`; errors name the flag
/// and repeat the text: "--watermark: must not be negative, got -5m".
inline result<std::chrono::microseconds> duration_flag(const std::string& flag,
                                                       const std::string& text,
                                                       duration_rule rule) {
  auto d = codec::parse_duration(text);
  if (!d)
    return make_error(error_code::invalid_option, flag + ": " + d.error().message);
  if (rule == duration_rule::positive && d->count() <= 0)
    return make_error(error_code::invalid_option, flag + ": must be positive, got " + text);
  if (rule == duration_rule::not_negative && d->count() < 0)
    return make_error(error_code::invalid_option, flag + ": must not be negative, got " + text);
  return *d;
}

/// A heartbeat (or rejoin) flag as whole milliseconds (the link's unit): positive, at least 1ms.
inline result<std::chrono::milliseconds> heartbeat_flag(const std::string& flag,
                                                        const std::string& text) {
  auto d = duration_flag(flag, text, duration_rule::positive);
  if (!d)
    return d.error();
  if (*d < std::chrono::milliseconds{1})
    return make_error(error_code::invalid_option, flag + ": must be at least 1ms, got " + text);
  return std::chrono::duration_cast<std::chrono::milliseconds>(*d);
}

/// Fills `c` from `--cluster`, `--node`, `--cluster-key` and the heartbeat flags. Errors
/// name the flag; those of the cluster file, the key file and `cluster_options::validate`
/// are returned as they are (they name the file, the line or the field).
inline result<void> apply_cluster_flags(const common_flags& f, net::cluster_options& c) {
  if (f.cluster.empty()) {
    // Without a cluster file these would be ignored in silence.
    const std::pair<bool, const char*> alone[] = {
      {f.node.has_value(), "--node"},
      {!f.cluster_key.empty(), "--cluster-key"},
      {!f.heartbeat_interval.empty(), "--heartbeat-interval"},
      {!f.heartbeat_timeout.empty(), "--heartbeat-timeout"},
      {!f.rejoin_timeout.empty(), "--rejoin-timeout"},
      {!f.join_timeout.empty(), "--join-timeout"},
    };
    for (const auto& [given, flag] : alone)
      if (given)
        return make_error(error_code::invalid_option,
                          std::string{flag} + ": needs --cluster (the file listing the nodes)");
    return {};
  }
  // Two processes both taking node 0 by default would both coordinate.
  if (!f.node)
    return make_error(error_code::invalid_option,
                      "--cluster: needs --node N, this process's line in the cluster file "
                      "(0: the coordinator)");
  auto nodes = net::read_cluster_file(f.cluster);
  if (!nodes)
    return nodes.error();
  c.nodes = std::move(*nodes);
  c.node = *f.node;
  if (!f.cluster_key.empty()) {
    // Read now, so a bad key file fails before anything starts (also with --explain).
    if (auto keys = net::read_key_file(f.cluster_key); !keys)
      return keys.error();
    c.key_file = f.cluster_key;
  }
  if (!f.heartbeat_interval.empty()) {
    auto every = heartbeat_flag("--heartbeat-interval", f.heartbeat_interval);
    if (!every)
      return every.error();
    c.heartbeat_interval = *every;
  }
  if (!f.heartbeat_timeout.empty()) {
    auto silent = heartbeat_flag("--heartbeat-timeout", f.heartbeat_timeout);
    if (!silent)
      return silent.error();
    c.heartbeat_timeout = *silent;
  }
  if (f.rejoin_timeout == "never") {
    c.rejoin_timeout.reset();
  } else if (!f.rejoin_timeout.empty()) {
    auto wait = heartbeat_flag("--rejoin-timeout", f.rejoin_timeout);
    if (!wait)
      return wait.error();
    c.rejoin_timeout = *wait;
  }
  if (!f.join_timeout.empty()) {
    auto wait = heartbeat_flag("--join-timeout", f.join_timeout);
    if (!wait)
      return wait.error();
    c.join_timeout = *wait;
  }
  return c.validate();
}

/// Applies the flags to job options; errors name the offending flag.
inline result<std::optional<std::chrono::nanoseconds>> apply_common_flags(const common_flags& f,
                                                                          job_options& o) {
  o.parallelism = f.parallelism;
  o.runtime.batch_size = f.batch_size;
  o.runtime.threads = f.threads;
  o.runtime.scheduler = f.scheduler == "sharing" ? scheduler_policy::sharing
                                                 : scheduler_policy::stealing;
  auto linger = duration_flag("--linger", f.linger, duration_rule::not_negative);
  if (!linger)
    return linger.error();
  o.runtime.linger = *linger;
  if (auto ok = apply_cluster_flags(f, o.runtime.cluster); !ok)
    return ok.error();
  // An interval without a directory would silently take no checkpoints at all.
  if (f.checkpoint_dir.empty() && !f.checkpoint_interval.empty())
    return make_error(error_code::invalid_option,
                      "--checkpoint-interval: needs --checkpoint-dir (without a directory the "
                      "job takes no checkpoints)");
  // Without a directory these would be ignored in silence.
  if (f.checkpoint_dir.empty() && !f.on_unreadable_checkpoints.empty())
    return make_error(error_code::invalid_option,
                      "--on-unreadable-checkpoints: needs --checkpoint-dir");
  if (f.checkpoint_dir.empty() && f.allow_non_restored_state)
    return make_error(error_code::invalid_option,
                      "--allow-non-restored-state: needs --checkpoint-dir");
  if (f.restore_from != -1 && (f.checkpoint_dir.empty() || f.restore_from < 0))
    return make_error(error_code::invalid_option,
                      f.checkpoint_dir.empty()
                        ? "--restore-from: needs --checkpoint-dir"
                        : "--restore-from " + std::to_string(f.restore_from) +
                            ": a checkpoint id is 0 or more");
  if (f.restore_from >= 0)
    o.checkpoints.restore_from = f.restore_from;
  if (f.max_restarts >= 0) {
    if (f.checkpoint_dir.empty()) // restarts resume from checkpoints: none without them
      return make_error(error_code::invalid_option, "--max-restarts: needs --checkpoint-dir");
    o.checkpoints.restart.max_restarts = f.max_restarts;
  }
  if (!f.checkpoint_dir.empty()) {
    o.checkpoints.on_unreadable = f.on_unreadable_checkpoints == "repair"
                                    ? unreadable_checkpoints::repair
                                  : f.on_unreadable_checkpoints == "start-fresh"
                                    ? unreadable_checkpoints::start_fresh
                                    : unreadable_checkpoints::refuse;
    o.checkpoints.allow_non_restored_state = f.allow_non_restored_state;
    auto every = duration_flag("--checkpoint-interval",
                               f.checkpoint_interval.empty() ? "1s" : f.checkpoint_interval,
                               duration_rule::positive);
    if (!every)
      return every.error();
    o.checkpoints.dir = f.checkpoint_dir;
    o.checkpoints.interval = std::chrono::duration_cast<std::chrono::milliseconds>(*every);
  }
  if (auto ok = logging::to_stderr(f.log_level); !ok)
    return make_error(error_code::invalid_option, "--log-level: " + ok.error().message);
  auto every = duration_flag("--progress-interval", f.progress_interval,
                             duration_rule::not_negative);
  if (!every)
    return every.error();
  o.progress_interval = std::chrono::duration_cast<std::chrono::milliseconds>(*every);
  if (!f.progress.empty()) {
    // A job resuming from a checkpoint continues its log.
    auto log = monitor::progress_log::open(f.progress, !f.checkpoint_dir.empty());
    if (!log)
      return make_error(error_code::invalid_option, "--progress: " + log.error().message);
    o.listeners.push_back(std::move(*log));
  }
  for (auto& t : f.taps) {
    const auto colon = t.rfind(':');
    tap_spec spec;
    spec.operator_name = t.substr(0, colon);
    spec.max_per_second = 5;
    if (colon != std::string::npos) {
      try {
        spec.max_per_second = std::stod(t.substr(colon + 1));
      } catch (const std::exception&) {
        return make_error(error_code::invalid_option,
                          "--tap " + t + ": the rate after ':' must be a number");
      }
    }
    spec.out = [](const std::string& line) { std::cerr << "tap: " << line << "\n"; };
    o.taps.push_back(std::move(spec));
  }
  // A negative duration used to mean "run to the end", like 0: refused, not guessed.
  auto duration = duration_flag("--duration", f.duration, duration_rule::not_negative);
  if (!duration)
    return duration.error();
  if (duration->count() == 0)
    return std::optional<std::chrono::nanoseconds>{};
  return std::optional<std::chrono::nanoseconds>{*duration};
}

/// Crash tests only: SLUICE_CRASH_AT=<step>:<n> kills the process with SIGKILL the n-th
/// time the checkpoint protocol reaches <step> (see runtime_options::sync_point).
inline void install_crash_hook(job_options& o) {
  const char* at = std::getenv("SLUICE_CRASH_AT");
  if (!at)
    return;
  const std::string spec = at;
  const auto colon = spec.find(':');
  auto step = spec.substr(0, colon);
  auto left = std::make_shared<std::atomic<long>>(
    colon == std::string::npos ? 1 : std::stol(spec.substr(colon + 1)));
  o.runtime.sync_point = [step, left](const char* s, std::int64_t) {
    if (step == s && --*left == 0)
      ::kill(::getpid(), SIGKILL);
  };
}

} // namespace sluice::samples
