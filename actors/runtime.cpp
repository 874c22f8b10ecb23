#include "sluice/actors/runtime.hpp"

#include "sluice/actors/blueprint.hpp"
#include "sluice/actors/checkpoint_writer.hpp"
#include "sluice/actors/coordinator.hpp"
#include "sluice/actors/messages.hpp"
#include "sluice/actors/placement.hpp"
#include "sluice/actors/progress_builder.hpp"
#include "sluice/actors/remote.hpp"
#include "sluice/actors/replan.hpp"
#include "sluice/actors/restore.hpp"
#include "sluice/actors/tsan.hpp"

#include "sluice/core/codec/time_format.hpp"
#include "sluice/core/log.hpp"

#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <map>
#include <random>
#include <set>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

namespace sluice {

namespace {

/// Far above any useful frame, and it keeps a batch of small records under the frame limit.
constexpr std::size_t max_remote_batch_size = std::size_t{1} << 20;

class execution final : public job_execution {
public:
  execution(std::shared_ptr<blueprint> bp, int threads, scheduler_policy policy,
            std::shared_ptr<const restore_point> from, std::vector<std::string> skipped,
            std::shared_ptr<cluster_context> cluster)
    : bp_(std::move(bp)), state_(std::make_shared<job_state>()), cluster_(std::move(cluster)) {
    cfg_.set("scheduler.max-threads", static_cast<std::size_t>(threads));
    // CAF 0.17 lets an actor keep its worker thread for as long as its mailbox is not
    // empty (max-throughput is unlimited by default). A source task that re-sends itself
    // `poll` without ever running out of credit (seen with a source instance that polls
    // "more" but yields no records) then never empties its mailbox: the coordinator and
    // tasks queued behind it on that worker starved, so cancel() and failures went
    // unhandled while the rest of the job ran on. Yielding after 64 messages (batches)
    // lets them run; W1/W2 throughput is unchanged within noise.
    cfg_.set("scheduler.max-throughput", std::size_t{64});
    cfg_.set("scheduler.policy", policy == scheduler_policy::sharing ? caf::atom("sharing")
                                                                     : caf::atom("stealing"));
    system_.emplace(cfg_);
    // Node 0 of a cluster coordinates; every other node runs an agent for its tasks, which
    // takes `cancel` like the coordinator (and passes it on to node 0).
    if (cluster_ && cluster_->node != 0)
      coordinator_ = spawn_node_agent(*system_, bp_, cluster_, state_);
    else
      coordinator_ = spawn_coordinator(*system_, bp_, state_, std::move(from), std::move(skipped),
                                       cluster_);
  }

  ~execution() override {
    if (!finished()) {
      cancel();
      permit_unchecked(wait());
    }
    coordinator_ = nullptr;
    // The outcome is published before the tasks a failure killed have stopped: one may still
    // be in a handler that submits a snapshot to the writer (ThreadSanitizer saw the reset
    // below race with send_ack's read of bp_->writer, and the task then crash on the null
    // writer). So every actor stops first; the writer is still there to answer them.
    system_->await_all_actors_done();
    // Snapshots still queued for the writer (of tasks a failure killed) are written now. Its
    // jobs hold those tasks, which hold the blueprint: left to itself, the writer thread
    // could drop the blueprint's last reference and join itself in its destructor
    // (std::terminate), and keep the store open after the job has ended.
    if (bp_->writer)
      bp_->writer.reset();
    // The job's last frames (its end, the last acknowledgements) reach the other nodes.
    const bool node = cluster_ != nullptr;
    if (cluster_)
      cluster_->link->drain(std::chrono::seconds{2});
    cluster_.reset();
    // The process is about to exit: its job has ended and the other nodes have heard.
    if (bp_->options.sync_point)
      bp_->options.sync_point("ended", 0);
    if (node)
      forget_job_end();
    // CAF's shutdown of its own actors is hidden from ThreadSanitizer (actors/tsan.hpp,
    // docs/sanitizers.md).
    tsan_unchecked([this] { system_.reset(); });
  }

  /// A node's record that its job ended (coordinator.cpp, `record_job_end`) served until
  /// now: its process exits, and its supervisor does not start it again. A later start of
  /// the whole cluster runs the job anew.
  void forget_job_end() {
    if (!bp_->store || !finished() || !*state_->outcome)
      return;
    if (auto ok = bp_->store->clear_job_end(); !ok)
      logging::get().warn("job '{}': {}", bp_->options.query_name, ok.error().message);
  }

  void cancel() override { caf::anon_send(coordinator_, msg::cancel::value); }

  result<std::int64_t> savepoint(bool stop) override {
    result<std::int64_t> out = make_error(error_code::internal, "no answer");
    tsan_unchecked([&] { // CAF's blocking actor (actors/tsan.hpp)
      caf::scoped_actor self{*system_};
      self->request(coordinator_, caf::infinite, msg::savepoint::value, stop)
        .receive([&](std::int64_t id) { out = id; },
                 [&](caf::error& e) {
                   out = make_error(error_code::invalid_option,
                                    "savepoint failed: " + system_->render(e));
                 });
    });
    return out;
  }

  result<job_result> wait() override {
    std::unique_lock lock{state_->mtx};
    state_->cv.wait(lock, [this] { return state_->outcome.has_value(); });
    return *state_->outcome;
  }

  bool wait_for(std::chrono::nanoseconds timeout) override {
    std::unique_lock lock{state_->mtx};
    return state_->cv.wait_for(lock, timeout, [this] { return state_->outcome.has_value(); });
  }

  std::vector<task_stats> metrics() const override { return collect_stats(*bp_); }

  std::vector<query_progress> recent_progress() const override {
    std::lock_guard guard{state_->mtx};
    return {state_->progress.begin(), state_->progress.end()};
  }

  result<void> tap(const std::string& operator_name, double max_per_second,
                   std::function<void(const std::string& line)> out) override {
    return bp_->taps->tap(operator_name, max_per_second, std::move(out));
  }

  void untap(const std::string& operator_name) override { bp_->taps->untap(operator_name); }

  query_status status() const override {
    std::lock_guard guard{state_->mtx};
    return state_->status;
  }

  std::optional<query_progress> last_progress() const override {
    std::lock_guard guard{state_->mtx};
    if (state_->progress.empty())
      return std::nullopt;
    return state_->progress.back();
  }

  std::optional<error> exception() const override {
    std::lock_guard guard{state_->mtx};
    return state_->failure;
  }

  job_snapshot snapshot() const override {
    job_snapshot s;
    s.tasks = collect_stats(*bp_);
    s.name = bp_->options.query_name;
    s.plan_json = plan_json_;
    s.now_us = std::chrono::duration_cast<duration>(
                 bp_->options.processing_clock->now().time_since_epoch())
                 .count();
    std::lock_guard guard{state_->mtx};
    s.id = state_->id;
    s.run_id = state_->run_id;
    s.state = state_->phase;
    s.status = state_->status;
    s.uptime = std::chrono::steady_clock::now() - state_->started;
    s.restarts = state_->restarts;
    s.checkpoints_completed = state_->checkpoints_completed;
    s.checkpoint_failures = state_->checkpoint_failures;
    s.last_failure = state_->last_failure;
    s.checkpoints.assign(state_->checkpoints.begin(), state_->checkpoints.end());
    if (cluster_)
      s.remote_channels = remote_channels();
    return s;
  }

private:
  /// The in-flight meter's channels, named by their tasks.
  std::vector<remote_channel_stats> remote_channels() const {
    std::vector<remote_channel_stats> out;
    const auto where = cluster_->where();
    for (const auto& f : cluster_->inflight.snapshot()) {
      remote_channel_stats r;
      r.channel = f.channel;
      r.node = cluster_->node;
      r.window = bp_->options.remote_credits;
      r.inflight_bytes = f.bytes;
      r.inflight_batches = f.batches;
      r.max_inflight_bytes = f.max_bytes;
      r.max_inflight_batches = f.max_batches;
      r.largest_batch_bytes = f.largest_batch;
      for (std::size_t t = 0; t < bp_->tasks.size(); ++t)
        for (std::size_t i = 0; i < bp_->tasks[t].inputs.size(); ++i)
          if (where->channel(static_cast<int>(t), static_cast<int>(i)) == f.channel) {
            const auto& to = bp_->tasks[t];
            const auto& from = bp_->tasks[static_cast<std::size_t>(to.inputs[i].from_task)];
            r.to = bp_->plan.chains[static_cast<std::size_t>(to.chain)].name;
            r.to_instance = to.instance;
            r.to_node = where->node_of_task[t];
            r.from = bp_->plan.chains[static_cast<std::size_t>(from.chain)].name;
            r.from_instance = from.instance;
          }
      out.push_back(std::move(r));
    }
    return out;
  }

  bool finished() {
    std::lock_guard guard{state_->mtx};
    return state_->outcome.has_value();
  }

  std::shared_ptr<blueprint> bp_;
  std::shared_ptr<job_state> state_;
  std::shared_ptr<cluster_context> cluster_; ///< this node's link, in a multi-node run
  std::string plan_json_ = explain_json(bp_->logical, bp_->plan);
  caf::actor_system_config cfg_;
  std::optional<caf::actor_system> system_;
  caf::actor coordinator_;
};

void tune_malloc_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
    mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024);
  });
}

} // namespace

result<std::unique_ptr<job_execution>> execute(const graph& g, const physical_plan& plan,
                                               const runtime_options& opts) {
  if (opts.batch_size == 0)
    return make_error(error_code::invalid_option, "batch_size must be at least 1");
  if (opts.credits < 1)
    return make_error(error_code::invalid_option, "credits must be at least 1");
  if (opts.remote_credits < 1)
    return make_error(error_code::invalid_option, "remote_credits must be at least 1");
  if (opts.remote_batch_size == 0 || opts.remote_batch_size > max_remote_batch_size)
    return make_error(error_code::invalid_option,
                      "remote_batch_size must be between 1 and " +
                        std::to_string(max_remote_batch_size) + ", got " +
                        std::to_string(opts.remote_batch_size));
  if (opts.linger.count() < 0)
    return make_error(error_code::invalid_option, "linger must not be negative");
  if (opts.threads < 0)
    return make_error(error_code::invalid_option, "threads must not be negative");
  if (!opts.processing_clock)
    return make_error(error_code::invalid_option, "processing_clock must be set");
  if (opts.tune_malloc)
    tune_malloc_once();
  auto bp = std::make_shared<blueprint>();
  bp->logical = g;
  bp->plan = plan;
  bp->tasks = wire(plan);
  bp->options = opts;
  bp->metrics = std::make_unique<task_metrics[]>(bp->tasks.size());
  {
    std::vector<tap_registry::node> tappable;
    for (const auto& n : g.nodes()) {
      auto& t = tappable.emplace_back(tap_registry::node{n.name, "out", {}});
      if (n.outputs.empty())
        continue; // a sink: nothing to tap
      const auto& port = n.outputs.front();
      t.port_name = port.name;
      t.describe = port.describe ? port.describe
                                 : [type = port.type.name](const batch_base&, std::size_t) {
                                     return "<record of type " + type + ">";
                                   };
    }
    bp->taps = std::make_shared<tap_registry>(tappable, opts.processing_clock);
    for (const auto& t : opts.taps)
      if (auto ok = bp->taps->tap(t.operator_name, t.max_per_second, t.out); !ok)
        return std::move(ok).error();
  }
  for (std::size_t i = 0; i < bp->tasks.size(); ++i) {
    auto& m = bp->metrics[i];
    m.node_count = plan.chains[static_cast<std::size_t>(bp->tasks[i].chain)].nodes.size();
    m.nodes = std::make_unique<node_metrics[]>(m.node_count);
  }
  auto from = std::make_shared<restore_point>();
  std::vector<std::string> skipped;
  if (!opts.checkpoints.dir.empty()) {
    auto opened = open_checkpoints(g, plan, opts);
    if (!opened)
      return std::move(opened).error();
    bp->store = std::move(opened->store);
    bp->writer = std::make_shared<checkpoint_writer>();
    *from = std::move(opened->from);
    skipped = std::move(opened->skipped);
  }
  std::shared_ptr<cluster_context> cluster;
  if (opts.cluster.enabled()) {
    // A restored checkpoint written after a re-plan runs placed as it ran.
    const int nodes = static_cast<int>(opts.cluster.nodes.size());
    std::optional<recorded_placement> recorded;
    if (from->meta) {
      auto of = recorded_placement_of(*from->meta);
      if (!of)
        return std::move(of).error();
      recorded = std::move(*of);
    }
    // Node 0 keeps a re-plan's placement at once (replan.hpp): it wins over the checkpoint's.
    if (opts.cluster.node == 0 && !opts.checkpoints.dir.empty()) {
      auto kept = read_placement_file(opts.checkpoints.dir);
      if (!kept)
        return std::move(kept).error();
      if (*kept)
        recorded = std::move(*kept);
    }
    auto where = recorded ? place_as(bp->logical, bp->plan, bp->tasks, nodes,
                                     std::move(recorded->live), std::move(recorded->node_of_task))
                          : place(bp->logical, bp->plan, bp->tasks, nodes);
    if (!where && recorded)
      return make_error(error_code::restore_conflict,
                        "the placement of a re-planned run (in " +
                          opts.checkpoints.dir.string() +
                          ") does not fit this job and cluster: " + where.error().message);
    if (!where)
      return std::move(where).error();
    auto started = start_cluster(*bp, std::move(*where));
    if (!started)
      return std::move(started).error();
    cluster = std::move(*started);
  }
  auto threads = opts.threads > 0
                   ? opts.threads
                   : std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
  return std::unique_ptr<job_execution>{std::make_unique<execution>(
    std::move(bp), threads, opts.scheduler, std::move(from), std::move(skipped),
    std::move(cluster))};
}

} // namespace sluice
