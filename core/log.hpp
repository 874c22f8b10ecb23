#pragma once
/// The library's structured log, through spdlog. The logger is named "sluice" and has no
/// sinks until the application gives it some: the library never prints on its own.
/// Samples call `logging::to_stderr(level)` for `--log-level`.
#include "sluice/core/error.hpp"

#include <spdlog/logger.h>

#include <string_view>

namespace sluice::logging {

/// The "sluice" logger (created on first use, silent until configured). Log through it from
/// any thread; do not change its `sinks()` (spdlog does not lock them): use `add_sink`.
spdlog::logger& get();

/// Adds a sink to the logger. Thread-safe: other threads may be logging.
void add_sink(spdlog::sink_ptr sink);

/// Sends the log to stderr from `level` up: trace, debug, info, warn, error, critical or
/// off. An unknown level is an error naming it and the valid ones. Thread-safe: other
/// threads may be logging.
[[nodiscard]] result<void> to_stderr(std::string_view level);

} // namespace sluice::logging
