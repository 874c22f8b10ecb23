#pragma once
/// Running a job from a program's `main`: stop cleanly on Ctrl-C, SIGTERM or a deadline.
#include "sluice/api/job.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>

namespace sluice {

/// Runs `j` until its input ends, `duration` passes, or SIGINT/SIGTERM arrives. A stop
/// drains and flushes: every record already read reaches the sinks.
///
/// Blocks SIGINT and SIGTERM in the calling thread before the job's threads start (they
/// inherit the mask) and takes them with `sigtimedwait`; installs no signal handler. Meant
/// for `main`: call it from the main thread of a program.
///
/// `attach`, when set, is called with the running job; what it returns (a monitor server,
/// say) lives until the job has ended and is released before the job's handle is.
[[nodiscard]] result<job_result> run_until_stopped(
  job& j, std::optional<std::chrono::nanoseconds> duration = {},
  std::function<result<std::shared_ptr<void>>(job_execution&)> attach = {});

} // namespace sluice
