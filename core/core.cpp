#include "sluice/core/batch.hpp"
#include "sluice/core/time.hpp"

#include <cxxabi.h>

#include <cstdlib>

namespace sluice {

std::string demangle(const std::type_info& info) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name{
    abi::__cxa_demangle(info.name(), nullptr, nullptr, &status), std::free};
  return status == 0 && name ? std::string{name.get()} : std::string{info.name()};
}

event_time clock::wall_time(time_point t) const noexcept {
  const auto wall_now = std::chrono::system_clock::now();
  const auto steady_now = std::chrono::steady_clock::now();
  return std::chrono::time_point_cast<duration>(wall_now) +
         std::chrono::duration_cast<duration>(t - steady_now);
}

std::shared_ptr<const clock> default_clock() {
  static const auto instance = std::make_shared<const system_clock>();
  return instance;
}

} // namespace sluice
