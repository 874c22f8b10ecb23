#include "sluice/core/log.hpp"

#include <spdlog/sinks/dist_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <mutex>

namespace sluice::logging {

namespace {

/// The logger and the one sink it is built with.
///
/// spdlog's logger reads its sinks vector, unlocked, on every call from every thread, so
/// adding a sink to it later (to_stderr, while runtime threads log) was a data race. The
/// alternatives: a logger built with its final sinks cannot be, since the application
/// chooses them after the runtime may have started logging; swapping in a new logger
/// breaks `get()`, whose callers keep a reference. A dist_sink_mt can: its add_sink takes
/// the mutex its log holds, so the logger's own vector never changes. The cost is one
/// uncontended lock per message that passes the level.
struct state {
  std::shared_ptr<spdlog::sinks::dist_sink_mt> sinks = std::make_shared<spdlog::sinks::dist_sink_mt>();
  // Not registered in spdlog's global registry: an application's own spdlog setup (or
  // `spdlog::drop_all`) cannot take it away from us, nor we from them.
  std::shared_ptr<spdlog::logger> logger = std::make_shared<spdlog::logger>("sluice", sinks);
};

state& instance() {
  static state s;
  return s;
}

} // namespace

spdlog::logger& get() { return *instance().logger; }

void add_sink(spdlog::sink_ptr sink) { instance().sinks->add_sink(std::move(sink)); }

result<void> to_stderr(std::string_view level) {
  const std::string name{level};
  const auto lvl = spdlog::level::from_str(name);
  // from_str maps anything unknown to `off`: only "off" itself may mean off.
  if (lvl == spdlog::level::off && name != "off")
    return make_error(error_code::invalid_option,
                      "log level '" + name +
                        "' is not one of trace, debug, info, warn, error, critical, off");
  static std::once_flag once;
  std::call_once(once, [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    sink->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v");
    add_sink(std::move(sink));
  });
  get().set_level(lvl);
  return {};
}

} // namespace sluice::logging
