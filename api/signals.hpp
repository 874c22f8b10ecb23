#pragma once
/// Running a job from a program's `main`: stop cleanly on Ctrl-C, SIGTERM or a deadline.
#include "api/job.hpp"

#include <chrono>
#include <optional>

namespace sluice {

/// Runs `j` until its input ends, `duration` passes, or SIGINT/SIGTERM arrives. A stop
/// drains and flushes: every record already read reaches the sinks.
///
/// Blocks SIGINT and SIGTERM in the calling thread before the job's threads start (they
/// inherit the mask) and takes them with `sigtimedwait`; installs no signal handler. Meant
/// for `main`: call it from the main thread of a program.
[[nodiscard]] result<job_result> run_until_stopped(job& j,
                                                   std::optional<std::chrono::nanoseconds> duration = {});

} // namespace sluice
