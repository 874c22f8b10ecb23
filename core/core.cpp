#include "core/batch.hpp"
#include "core/time.hpp"

#include <cxxabi.h>

#include <cstdlib>

namespace sluice {

std::string demangle(const std::type_info& info) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name{
    abi::__cxa_demangle(info.name(), nullptr, nullptr, &status), std::free};
  return status == 0 && name ? std::string{name.get()} : std::string{info.name()};
}

std::shared_ptr<const clock> default_clock() {
  static const auto instance = std::make_shared<const system_clock>();
  return instance;
}

} // namespace sluice
