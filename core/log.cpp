#include "core/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <mutex>

namespace sluice::logging {

namespace {
std::shared_ptr<spdlog::logger>& instance() {
  // Not registered in spdlog's global registry: an application's own spdlog setup (or
  // `spdlog::drop_all`) cannot take it away from us, nor we from them.
  static auto logger = std::make_shared<spdlog::logger>("sluice");
  return logger;
}
} // namespace

spdlog::logger& get() { return *instance(); }

result<void> to_stderr(std::string_view level) {
  const std::string name{level};
  const auto lvl = spdlog::level::from_str(name);
  // from_str maps anything unknown to `off`: only "off" itself may mean off.
  if (lvl == spdlog::level::off && name != "off")
    return make_error(error_code::invalid_option,
                      "log level '" + name +
                        "' is not one of trace, debug, info, warn, error, critical, off");
  auto& logger = get();
  static std::once_flag once;
  std::call_once(once, [&] {
    logger.sinks().push_back(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    logger.set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v");
  });
  logger.set_level(lvl);
  return {};
}

} // namespace sluice::logging
