#include "sluice/actors/trigger_plans.hpp"

#include <nlohmann/json.hpp>

#include <map>

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
  // A source node whose parallelism changed: its old instances' ends go, merged, to every
  // new instance. Nodes without logged ends (sources that cannot replay) plan afresh.
  std::map<std::string, merged_plan> merged;
  for (auto& [node, p] : plan_.parallelism) {
    auto it = (*logged)->parallelism.find(node);
    if (it == (*logged)->parallelism.end() || it->second == p)
      continue;
    merged_plan m{batch, node, it->second, {}, (log_->dir() / std::to_string(batch)).string()};
    for (auto& [k, end] : (*logged)->ends)
      if (k.size() > node.size() && k.starts_with(node) && k[node.size()] == '/')
        m.ends.push_back(end);
    if (!m.ends.empty())
      merged.emplace(node, std::move(m));
  }
  replaying_ = true;
  plan_ = std::move(**logged);
  for (std::size_t i = 0; i < sources_.size(); ++i) {
    if (auto m = merged.find(sources_[i].node); m != merged.end())
      out[i] = instruction{step::replay_merged, m->second.encode()};
    else if (auto it = plan_.ends.find(key(i)); it != plan_.ends.end())
      out[i] = instruction{step::replay, it->second};
  }
  return out;
}

std::string trigger_plans::merged_plan::encode() const {
  return nlohmann::json{{"batch", batch},
                        {"node", node},
                        {"parallelism", parallelism},
                        {"ends", ends},
                        {"log_file", log_file}}
    .dump();
}

result<trigger_plans::merged_plan> trigger_plans::merged_plan::decode(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  try {
    if (!j.is_discarded())
      return merged_plan{j.at("batch").get<std::int64_t>(), j.at("node").get<std::string>(),
                         j.at("parallelism").get<int>(),
                         j.at("ends").get<std::vector<std::string>>(),
                         j.at("log_file").get<std::string>()};
  } catch (const nlohmann::json::exception&) {
  }
  return make_error(error_code::internal, "a merged micro-batch plan does not read: " +
                                            std::string{text.substr(0, 200)});
}

error trigger_plans::merged_plan::cannot_replay_at(int now) const {
  return error{error_code::invalid_option,
               "micro-batch " + std::to_string(batch) + " was planned with source '" + node +
                 "' at parallelism " + std::to_string(parallelism) +
                 " and ran without completing; this source cannot read it again exactly at "
                 "parallelism " + std::to_string(now) + ". Restart once at parallelism " +
                 std::to_string(parallelism) + " (then rescale), or delete " + log_file +
                 " to plan the batch anew (it may then hold other rows)"};
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
