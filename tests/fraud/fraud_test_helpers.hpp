#pragma once
/// Shared by the fraud tests: whether the rules can be checkpointed yet, and reading the
/// committed alerts of the exactly-once file sink.
#include <boost/test/unit_test.hpp>

#include "core/codec/json.hpp"
#include "operators/keyed_process.hpp"
#include "samples/fraud_detection/rules.hpp"
#include "samples/fraud_detection/types.hpp"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace sluice::fraud::test {

template <class F>
bool can_checkpoint(F fn) {
  using key_fn = std::uint64_t (*)(const transaction&);
  keyed_process_function_operator<std::uint64_t, transaction, alert, key_fn, F> op{
    [](const transaction& t) { return t.account_id; }, std::move(fn)};
  return op.can_checkpoint();
}

/// True when every rule operator can be checkpointed (asserted by the checkpointed tests,
/// so a rule that loses that ability fails them rather than skipping them).
inline bool rules_can_checkpoint() {
  return can_checkpoint(small_then_large{}) && can_checkpoint(velocity{}) &&
         can_checkpoint(impossible_travel{}) && can_checkpoint(spend_spike{});
}

/// The alerts in the visible part files of `dir` (names starting with `.` or `_` are not).
inline std::vector<alert> committed_alerts(const std::filesystem::path& dir) {
  std::vector<alert> out;
  if (!std::filesystem::exists(dir))
    return out;
  for (auto& e : std::filesystem::directory_iterator{dir}) {
    const auto name = e.path().filename().string();
    if (name.starts_with(".") || name.starts_with("_"))
      continue;
    std::ifstream in{e.path()};
    for (std::string line; std::getline(in, line);) {
      auto a = codec::from_json_line<alert>(line);
      BOOST_REQUIRE_MESSAGE(a.has_value(), name << ": " << line);
      out.push_back(std::move(*a));
    }
  }
  return out;
}

} // namespace sluice::fraud::test
