#pragma once
/// Shared by the fraud tests: whether the rules can be checkpointed yet, and reading the
/// committed alerts of the exactly-once file sink.
#include <boost/test/unit_test.hpp>

#include "sluice/core/codec/json.hpp"
#include "sluice/operators/keyed_process.hpp"
#include "sluice/sinks/file_manifest.hpp"
#include "sluice/samples/fraud_detection/rules.hpp"
#include "sluice/samples/fraud_detection/types.hpp"

#include <filesystem>
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

/// The alerts the exactly-once file sink committed in `dir`, read through its manifest
/// (sinks::read_committed): what a reader sees; none when `dir` does not exist.
inline std::vector<alert> committed_alerts(const std::filesystem::path& dir) {
  if (!std::filesystem::exists(dir))
    return {};
  auto alerts = sinks::read_committed<alert>(dir);
  BOOST_REQUIRE_MESSAGE(alerts.has_value(), (alerts ? std::string{} : alerts.error().to_string()));
  return std::move(*alerts);
}

} // namespace sluice::fraud::test
