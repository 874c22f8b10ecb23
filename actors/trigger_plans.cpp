#include "actors/trigger_plans.hpp"

namespace sluice {

trigger_plans::trigger_plans(std::optional<offset_log> log, std::vector<source_task> sources)
  : log_(std::move(log)), sources_(std::move(sources)) {}

std::string trigger_plans::key(std::size_t i) const {
  return sources_[i].node + "/" + std::to_string(sources_[i].instance);
}

result<std::vector<trigger_plans::instruction>> trigger_plans::begin(std::int64_t batch) {
  plan_ = batch_plan{batch, {}, {}};
  for (auto& s : sources_)
    plan_.parallelism[s.node] = s.parallelism;
  replaying_ = false;
  std::vector<instruction> out(sources_.size());
  if (!log_)
    return out;
  auto logged = log_->read(batch);
  if (!logged)
    return std::move(logged).error();
  if (!*logged)
    return out;
  for (auto& [node, p] : plan_.parallelism) {
    auto it = (*logged)->parallelism.find(node);
    if (it != (*logged)->parallelism.end() && it->second != p)
      return make_error(error_code::invalid_option,
                        "micro-batch " + std::to_string(batch) + " was planned with source '" +
                          node + "' at parallelism " + std::to_string(it->second) +
                          " and ran without completing; it cannot be read again exactly at "
                          "parallelism " + std::to_string(p) + ". Restart once at parallelism " +
                          std::to_string(it->second) + " (then rescale), or delete " +
                          (log_->dir() / std::to_string(batch)).string() +
                          " to plan the batch anew (it may then hold other rows)");
  }
  replaying_ = true;
  plan_ = std::move(**logged);
  for (std::size_t i = 0; i < sources_.size(); ++i)
    if (auto it = plan_.ends.find(key(i)); it != plan_.ends.end())
      out[i] = instruction{true, it->second};
  return out;
}

void trigger_plans::planned(std::size_t i, std::string end) {
  if (!replaying_ && !end.empty())
    plan_.ends[key(i)] = std::move(end);
}

result<void> trigger_plans::log() {
  if (!log_ || replaying_)
    return {};
  return log_->write(plan_);
}

result<void> trigger_plans::completed(std::int64_t batch) {
  if (!log_)
    return {};
  return log_->purge_before(batch - retained + 1);
}

} // namespace sluice
