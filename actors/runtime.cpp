#include "actors/runtime.hpp"

#include "actors/blueprint.hpp"
#include "actors/messages.hpp"
#include "actors/task.hpp"

#include <malloc.h>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

namespace sluice {

namespace {

/// What the coordinator and the caller's handle share.
struct job_state {
  std::mutex mtx;
  std::condition_variable cv;
  std::optional<result<job_result>> outcome;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

std::vector<task_stats> collect_stats(const blueprint& bp) {
  std::vector<task_stats> out;
  for (std::size_t i = 0; i < bp.tasks.size(); ++i) {
    auto s = snapshot(bp.metrics[i]);
    const auto& chain = bp.plan.chains[static_cast<std::size_t>(bp.tasks[i].chain)];
    s.chain = chain.name;
    s.chain_id = chain.id;
    s.instance = bp.tasks[i].instance;
    out.push_back(std::move(s));
  }
  return out;
}

/// Owns the job's lifecycle: spawns and wires the tasks, waits for them to finish,
/// turns the first failure into the job's outcome and stops everything else.
class coordinator_actor final : public caf::event_based_actor {
public:
  coordinator_actor(caf::actor_config& cfg, std::shared_ptr<const blueprint> bp,
                    std::shared_ptr<job_state> state)
    : caf::event_based_actor(cfg), bp_(std::move(bp)), state_(std::move(state)) {}

  caf::behavior make_behavior() override {
    const auto n = bp_->tasks.size();
    for (std::size_t i = 0; i < n; ++i) {
      auto t = spawn_task(this, bp_, static_cast<int>(i), this);
      link_to(t); // if the coordinator is killed, the tasks go with it
      tasks_.push_back(std::move(t));
    }
    set_exit_handler([this](caf::exit_msg& m) {
      if (m.reason && !completed_)
        complete(make_error(error_code::internal, "a task stopped unexpectedly: " +
                                                    to_string(m.reason)));
    });
    for (auto& t : tasks_)
      send(t, msg::wire::value, tasks_);
    for (auto& t : tasks_)
      send(t, msg::start::value);
    return {
      [this](msg::done, int) {
        if (++done_ == tasks_.size())
          complete(std::nullopt);
      },
      [this](msg::failed, int, int code, std::string& text) {
        complete(make_error(static_cast<error_code>(code), std::move(text)));
      },
      [this](msg::cancel) {
        cancelled_ = true;
        for (std::size_t i = 0; i < tasks_.size(); ++i)
          if (bp_->plan.chains[static_cast<std::size_t>(bp_->tasks[i].chain)].is_source)
            send(tasks_[i], msg::cancel::value);
      },
    };
  }

  void on_exit() override { tasks_.clear(); }

private:
  void complete(std::optional<error> err) {
    if (completed_)
      return;
    completed_ = true;
    if (err)
      for (auto& t : tasks_)
        send_exit(t, caf::exit_reason::kill);
    for (auto& t : tasks_)
      unlink_from(t);
    tasks_.clear();
    {
      std::lock_guard guard{state_->mtx};
      if (err) {
        state_->outcome.emplace(std::move(*err));
      } else {
        job_result r;
        r.cancelled = cancelled_;
        r.elapsed = std::chrono::steady_clock::now() - state_->started;
        r.tasks = collect_stats(*bp_);
        state_->outcome.emplace(std::move(r));
      }
    }
    state_->cv.notify_all();
    quit();
  }

  std::shared_ptr<const blueprint> bp_;
  std::shared_ptr<job_state> state_;
  std::vector<caf::actor> tasks_;
  std::size_t done_ = 0;
  bool cancelled_ = false;
  bool completed_ = false;
};

class execution final : public job_execution {
public:
  execution(std::shared_ptr<blueprint> bp, int threads, scheduler_policy policy)
    : bp_(std::move(bp)), state_(std::make_shared<job_state>()) {
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
    coordinator_ = system_->spawn<coordinator_actor>(bp_, state_);
  }

  ~execution() override {
    if (!finished()) {
      cancel();
      permit_unchecked(wait());
    }
    coordinator_ = nullptr;
    system_.reset(); // waits for every actor; all have quit by now
  }

  void cancel() override { caf::anon_send(coordinator_, msg::cancel::value); }

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

private:
  bool finished() {
    std::lock_guard guard{state_->mtx};
    return state_->outcome.has_value();
  }

  std::shared_ptr<blueprint> bp_;
  std::shared_ptr<job_state> state_;
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
  auto threads = opts.threads > 0
                   ? opts.threads
                   : std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
  return std::unique_ptr<job_execution>{std::make_unique<execution>(std::move(bp), threads,
                                                                    opts.scheduler)};
}

} // namespace sluice
