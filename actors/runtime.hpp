#pragma once
/// The runtime's entry point, free of CAF: runs a physical plan on actors.
#include "sluice/checkpoint/store.hpp"
#include "sluice/core/epoch.hpp"
#include "sluice/core/metrics.hpp"
#include "sluice/core/error.hpp"
#include "sluice/core/progress.hpp"
#include "sluice/core/time.hpp"
#include "sluice/graph/plan.hpp"
#include "sluice/net/cluster.hpp"
#include "sluice/operators/tap.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <memory>
#include <vector>

namespace sluice {

/// CAF's scheduler policies. `stealing` polls (about 1.5% of a core when idle) and moves
/// messages fastest; `sharing` idles at 0% but moves messages 3-5x slower.
enum class scheduler_policy { stealing, sharing };

/// What a job does after a task fails (Flink's restart strategies). Restarts need
/// checkpoints: the job resumes from the latest complete one.
struct restart_strategy {
  enum class kind {
    none,                ///< the first failure fails the job
    fixed_delay,         ///< wait `delay` before each restart
    exponential_backoff, ///< wait `delay`, then twice as long each time, up to `max_delay`
  };
  kind how = kind::exponential_backoff;
  /// Restarts within one run before the job fails with the last cause. Default 3.
  int max_restarts = 3;
  std::chrono::milliseconds delay{100};
  std::chrono::milliseconds max_delay{10'000};
  /// How long a failed attempt's tasks may take to stop. The next attempt starts only when
  /// every one of them has stopped, so that no two attempts write the same checkpoint pieces
  /// or output files; a task still running after this (blocked in a user function or a
  /// connector) fails the job, naming it. Flink's `task.cancellation.timeout`. Default 3 min.
  std::chrono::milliseconds stop_timeout{180'000};

  /// The wait before restart `n` (0: the first of the run): `delay`, under exponential
  /// backoff doubled for each earlier restart, up to `max_delay`.
  std::chrono::milliseconds delay_before(int n) const noexcept {
    auto d = delay;
    if (how == kind::exponential_backoff)
      for (int i = 0; i < n && d < max_delay; ++i)
        d = std::min(d * 2, max_delay);
    return d;
  }

  static restart_strategy none() { return {kind::none, 0, {}, {}}; }
  static restart_strategy fixed(int times, std::chrono::milliseconds delay) {
    return {kind::fixed_delay, times, delay, delay};
  }
};

/// Checkpoints (Flink's asynchronous barrier snapshots, stored in LevelDB). Off unless
/// `dir` is set. See docs/checkpoints.md.
struct checkpoint_options {
  /// Where checkpoints live. Empty: no checkpoints. A job started with a directory that
  /// holds a complete checkpoint resumes from the latest one.
  std::filesystem::path dir{};
  /// Time between checkpoints in continuous mode (every micro-batch is one), counted from
  /// the run's start, whatever the epochs' interval (Flink's): a checkpoint due between two
  /// epoch boundaries starts an epoch of its own. 0: every epoch boundary is a checkpoint,
  /// and none comes between. Default 1 s.
  std::chrono::milliseconds interval{1000};
  /// Continuous mode: a checkpoint not complete this long after its barriers left the
  /// sources is given up and counts as a failure (`tolerable_failures`); 0 never gives up.
  /// Micro-batch mode: every batch is its checkpoint and always completes. Default 10 min
  /// (Flink's).
  std::chrono::milliseconds timeout{600'000};
  /// Least time between the end of one checkpoint and the start of the next. Default 0.
  std::chrono::milliseconds min_pause{0};
  /// Checkpoints that may fail in a row before the job fails with `checkpoint_failed`: a
  /// task's store error (it declines the checkpoint), the metadata's, or a timeout. Default 0.
  int tolerable_failures = 0;
  /// Complete checkpoints kept; older ones are deleted (savepoints never). Default 3.
  std::size_t retained = 3;
  /// Pieces of state at least this large (in bytes, compressed) go to files beside the
  /// database, smaller ones into it (Flink's `state.storage.fs.memory-threshold`). Default
  /// 20 KiB, Flink's.
  std::size_t file_threshold = 20 << 10;
  /// Compress pieces of state with Snappy where that makes them smaller (Flink's
  /// `execution.checkpointing.snapshot-compression`). Default on: about a third of the
  /// bytes, for a few percent of CPU with large state changing fast (BENCHMARKS.md).
  bool compression = true;
  /// Start from this checkpoint or savepoint instead of the latest.
  std::optional<std::int64_t> restore_from{};
  /// What a start does when `dir` holds checkpoint files that cannot be read (LevelDB
  /// cannot open the database: its CURRENT or MANIFEST deleted, a table truncated, missing
  /// or corrupt; or piece files without a database). Default `refuse`: the job fails,
  /// naming the directory and what is wrong, and nothing is changed. `repair` rebuilds the
  /// database with LevelDB's RepairDB and restores the newest checkpoint that verifies;
  /// `start_fresh` deletes the checkpoint files and starts from scratch, as a Spark user
  /// deletes the checkpoint directory. Either is reported in `job_result::skipped_checkpoints`.
  unreadable_checkpoints on_unreadable = unreadable_checkpoints::refuse;
  /// Flink's `--allowNonRestoredState`: a checkpoint holding state of an operator this job
  /// does not have (removed, renamed, or now keeping no state) is restored without that
  /// state, which is logged at warn. Default false: such a restore is refused, naming the
  /// operators. An operator whose state changed (layout or types) is refused either way; a
  /// new stateful operator starts empty (logged).
  bool allow_non_restored_state = false;
  /// What a task failure does. Default: exponential backoff, 3 restarts.
  restart_strategy restart{};

  /// Continuous mode, with no checkpoint in flight: whether the epoch starting `now` is
  /// also a checkpoint, given when the last one started and when the last one ended
  /// (completed, failed or expired). `interval` counts from a start, `min_pause` from an end.
  bool due(clock::time_point now, std::optional<clock::time_point> last_started,
           std::optional<clock::time_point> last_done) const noexcept {
    return (!last_started || now - *last_started >= interval) &&
           (!last_done || now - *last_done >= min_pause);
  }
};

/// How a job executes. Defaults favour throughput with bounded memory.
struct runtime_options {
  /// Worker threads; 0 means one per core (at least 2).
  int threads = 0;
  scheduler_policy scheduler = scheduler_policy::stealing;
  /// Records per batch on the wire: a buffer is sent as soon as it holds this many.
  std::size_t batch_size = 1024;
  /// How long a partly filled buffer may wait for more records. 0: send at the end of
  /// every input batch, for the lowest latency, except that a source with more input at
  /// hand (its poll filled a whole batch and it polls again at once) fills its buffers
  /// first: they leave full, or before its next watermark, barrier or idle mark, or after
  /// its next poll that is not full.
  std::chrono::microseconds linger{0};
  /// Batches a channel may have in flight (the credit window). Bounds memory.
  int credits = 4;
  /// The same for a channel between two nodes of a multi-node run: a round trip over the
  /// network takes far longer than between actors, so more batches in flight keep the wire
  /// busy (Flink gives remote channels floating buffers for this). W2 on two nodes of this
  /// machine: 0.28x one process with 4, 0.56x with 16 (BENCHMARKS.md). Default 16.
  int remote_credits = 16;
  /// Records per batch on a channel to another node (each batch is one frame), for flat
  /// records (trivially copyable), up to 1 MiB a batch; other records cross in batches of
  /// `batch_size`, their encoded size unknown beforehand. Frames cost more per frame than
  /// per byte (wake-ups of the threads they pass): W2 on two nodes spent 88 ns of CPU per
  /// record with 1024 records per frame and 60 with 4096 (BENCHMARKS.md). Memory in flight
  /// per channel is up to `remote_credits` such batches. Default 4096; at most 1 048 576.
  std::size_t remote_batch_size = 4096;
  /// Processing time; inject a `manual_clock` in tests.
  std::shared_ptr<const clock> processing_clock = default_clock();
  /// Per-operator counters (records, bytes, batches) and busy/backpressured time. Off,
  /// only the per-task record counters remain (for benchmarks of the metrics' cost).
  bool collect_metrics = true;
  /// Raise glibc's trim and mmap thresholds once per process: batches freed on another
  /// thread than the one that allocated them otherwise return memory to the kernel on
  /// every batch (5-25x slower; see docs/architecture.md).
  bool tune_malloc = true;

  // -- epochs (set from job_options; see core/epoch.hpp) ---------------------------------

  /// When epochs begin.
  trigger epochs = triggers::continuous();
  /// Spark's output mode, when the job sets one.
  std::optional<output_mode> mode{};
  late_row_rule late_rows = late_row_rule::previous_watermark;
  /// Micro-batch mode: records one source instance may read in one trigger, for sources
  /// that never run dry (an unthrottled generator). Files are capped by
  /// `max_files_per_trigger` instead.
  std::size_t max_records_per_trigger = 1'000'000;
  /// Called with every progress report, on a runtime thread: keep it short.
  std::function<void(const query_progress&)> on_progress{};
  /// Spark-like listeners (started, progress, idle, terminated), called in order.
  std::vector<std::shared_ptr<query_listener>> listeners{};
  /// Continuous mode: one progress report per this interval, covering every epoch that
  /// ended in it (Spark reports each micro-batch; a continuous job would flood). 0: one
  /// report per epoch. Default 10 s.
  std::chrono::milliseconds progress_interval{10'000};
  /// The query's name in progress reports.
  std::string query_name = "sluice-job";
  /// Whether a stateful event-time operator that the watermark releases in this output
  /// mode exists (an aggregation not in complete mode; deduplication, a join or keyed
  /// state in any): micro-batch mode then runs an epoch without data when the watermark
  /// moved (set by `job`).
  bool has_event_time_state = false;
  /// Checkpoints and restarts (set from job_options).
  checkpoint_options checkpoints{};
  /// Tests only (RocksDB's SyncPoint): called at each step of the checkpoint protocol with
  /// the step's name and checkpoint id: "snapshot" (a task is about to snapshot),
  /// "snapshotted" (its pieces are written), "completed" (the metadata is durable, no sink
  /// has committed; on a node other than 0 of a cluster: node 0 said so and the node's
  /// store completed its part, before its tasks commit), "commit" (a task is about to
  /// commit). Outside checkpoints, with the
  /// task's index as id: "start" (the coordinator is about to start a task) and "queued"
  /// (input reached a task before its start); and "ended", id 0, when the job's execution
  /// is destroyed after its end (a cluster node's last frames sent). Runs on runtime
  /// threads (or the one destroying the execution); it may block to force
  /// an interleaving, or kill the process to test recovery.
  std::function<void(const char* step, std::int64_t id)> sync_point{};
  /// Taps active from the start (see `job_execution::tap`); an unknown operator name makes
  /// the job fail to start. Default: none.
  std::vector<tap_spec> taps{};
  /// A multi-node run: this process is one node of the cluster (docs/cluster.md). Default:
  /// none, the whole job runs in this process.
  net::cluster_options cluster{};
};

/// One completed checkpoint, measured.
struct checkpoint_stats {
  std::int64_t id = 0;
  /// From the barrier's injection (or the micro-batch's trigger) to the durable metadata.
  std::chrono::microseconds duration{0};
  /// The bytes it wrote (Flink's "checkpointed data size"): less than `full_bytes` when
  /// it is incremental and refers to unchanged pieces of earlier checkpoints.
  std::uint64_t bytes = 0;
  /// The bytes of all the pieces it stands for (Flink's "full checkpoint data size").
  std::uint64_t full_bytes = 0;
  /// Each task's synchronous pause to snapshot.
  std::vector<std::chrono::microseconds> pauses;
  /// The longest barrier alignment of any task (inputs blocked behind a barrier).
  std::chrono::microseconds alignment{0};
  /// When it completed, ISO-8601 with milliseconds.
  std::string completed_at;
  bool savepoint = false;
};

/// Everything a monitor shows about a job, copied at one moment.
/// A channel from a task of this node to a task on another node, in a multi-node run
/// (docs/cluster.md). The bytes are the encoded data frames sent and not credited back yet
/// (net/inflight.hpp says what that covers); they are at most `window` times the largest.
struct remote_channel_stats {
  std::uint32_t channel = 0; ///< the global channel number
  std::string from;          ///< the sending task's chain
  int from_instance = 0;
  std::string to;            ///< the receiving task's chain
  int to_instance = 0;
  int node = 0;    ///< this node, which sends
  int to_node = 0; ///< the receiver's node
  int window = 0;  ///< the channel's credits: batches it may have in flight
  std::uint64_t inflight_bytes = 0;
  std::uint64_t inflight_batches = 0;
  std::uint64_t max_inflight_bytes = 0;   ///< the most so far in this attempt
  std::uint64_t max_inflight_batches = 0; ///< the most so far in this attempt
  std::uint64_t largest_batch_bytes = 0;  ///< the largest data frame sent in this attempt
};

struct job_snapshot {
  std::string name;
  std::string id;     ///< the query id (kept across restarts from a checkpoint)
  std::string run_id; ///< new for every run
  /// "running", "restarting", "finished", "cancelled" or "failed".
  std::string state = "running";
  query_status status;
  std::chrono::nanoseconds uptime{0};
  int restarts = 0;
  std::int64_t checkpoints_completed = 0;
  std::int64_t checkpoint_failures = 0;
  /// The last failure: a task failure that caused a restart, or the job's own failure.
  std::optional<std::string> last_failure;
  std::vector<task_stats> tasks;
  /// The newest completed checkpoints (up to 100), oldest first.
  std::vector<checkpoint_stats> checkpoints;
  /// The logical and physical plans as JSON (`explain_json`).
  std::string plan_json;
  /// Processing time now, in µs since the epoch (for watermark lags).
  std::int64_t now_us = 0;
  /// Multi-node runs: this node's channels to other nodes that carried data in the current
  /// attempt (empty in a one-process run).
  std::vector<remote_channel_stats> remote_channels;
};

/// How a finished job ended.
struct job_result {
  bool cancelled = false; ///< stopped by `cancel()`; all input read so far was flushed
  std::chrono::nanoseconds elapsed{0};
  std::vector<task_stats> tasks;
  /// The checkpoint the run started from (unset: it started empty).
  std::optional<std::int64_t> restored_from;
  /// Newer checkpoints that could not be used, and why (corrupt, partial, lost by the
  /// database), and what opening the checkpoint directory repaired, deleted or kept. The
  /// runtime logs each at warn.
  std::vector<std::string> skipped_checkpoints;
  /// Checkpoints completed during the run.
  std::int64_t checkpoints_completed = 0;
  /// Their measurements (the last 1000).
  std::vector<checkpoint_stats> checkpoints;
  /// Restarts after task failures during the run.
  int restarts = 0;
  /// The wait before each of them, in order (`restart_strategy::delay_before`).
  std::vector<std::chrono::milliseconds> restart_delays;
};

/// A running job. Destroying it cancels the job and waits for it to stop.
class job_execution {
public:
  virtual ~job_execution() = default;
  /// Stops the sources; everything already read is processed and flushed. Thread-safe.
  virtual void cancel() = 0;
  /// Blocks until the job ends; returns its outcome (the same on every call).
  virtual result<job_result> wait() = 0;
  /// Waits at most `timeout`; true when the job has ended.
  virtual bool wait_for(std::chrono::nanoseconds timeout) = 0;
  /// The counters of every task, now.
  virtual std::vector<task_stats> metrics() const = 0;
  /// Takes a savepoint: the next checkpoint, made never to be deleted by retention; with
  /// `stop`, the job then stops (Flink's stop-with-savepoint). Blocks until it is
  /// complete; returns its id, to start a job from with `checkpoint_options::restore_from`.
  virtual result<std::int64_t> savepoint(bool stop = false) = 0;
  /// The progress reports of the last (up to 100) epochs, oldest first (Spark's
  /// `recentProgress`).
  virtual std::vector<query_progress> recent_progress() const = 0;

  // -- debugging ---------------------------------------------------------------------------

  /// Starts (or replaces) a tap on the operator named `operator_name`: `out` receives
  /// `operator NAME[INSTANCE] out: RECORD` for at most `max_per_second` records per second
  /// leaving it on its main output, over all its instances (processing time of
  /// `runtime_options::processing_clock`). The job goes on unchanged. Thread-safe.
  /// Fails with `invalid_option` naming the operator and listing the valid names when no
  /// node has that name, or on a sink or a rate that is not positive. See operators/tap.hpp.
  virtual result<void> tap(const std::string& operator_name, double max_per_second,
                           std::function<void(const std::string& line)> out) {
    static_cast<void>(max_per_second);
    static_cast<void>(out);
    return make_error(error_code::invalid_option,
                      "tap '" + operator_name + "': this execution does not support taps");
  }
  /// Stops the tap on `operator_name`, if any: no line of it arrives after this returns.
  virtual void untap(const std::string& /*operator_name*/) {}

  // -- Spark's StreamingQuery ------------------------------------------------------------

  /// What the query does now (Spark's `status`).
  virtual query_status status() const = 0;
  /// The newest progress report, if any (Spark's `lastProgress`).
  virtual std::optional<query_progress> last_progress() const = 0;
  /// Waits at most `timeout` for the job to end; true when it has. `exception()` tells
  /// whether it failed.
  bool await_termination(std::chrono::nanoseconds timeout) { return wait_for(timeout); }
  /// Waits for the job to end.
  void await_termination() { permit_unchecked(wait()); }
  /// Stops the job (as `cancel()`) and waits until it has stopped.
  void stop() {
    cancel();
    await_termination();
  }
  /// The error the job failed with; unset while it runs and after a clean end.
  virtual std::optional<error> exception() const = 0;
  /// Metrics, checkpoint history, failures and plan, for monitors (monitor/).
  virtual job_snapshot snapshot() const = 0;
};

/// Starts the plan's tasks and returns at once.
result<std::unique_ptr<job_execution>> execute(const graph& g, const physical_plan& plan,
                                               const runtime_options& opts);

} // namespace sluice
