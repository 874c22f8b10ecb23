#include "sluice/actors/watermark_alignment.hpp"

#include "sluice/actors/blueprint.hpp"

#include <algorithm>

namespace sluice {

alignment_groups::alignment_groups(std::vector<member> members) {
  for (auto& m : members)
    members_.push_back(slot{std::move(m)});
}

std::vector<alignment_groups::member> alignment_groups::members_of(const blueprint& bp) {
  std::vector<member> out;
  if (bp.options.epochs.micro_batch())
    return out;
  for (std::size_t t = 0; t < bp.tasks.size(); ++t) {
    const auto& chain = bp.plan.chains[static_cast<std::size_t>(bp.tasks[t].chain)];
    if (!chain.is_source)
      continue;
    const auto& spec = bp.logical.node(chain.nodes.front());
    if (spec.alignment)
      out.push_back({static_cast<int>(t), spec.alignment->group, spec.alignment->max_drift});
  }
  return out;
}

void alignment_groups::restart() {
  for (auto& s : members_) {
    s.state = alignment_state::waiting;
    s.watermark = min_watermark;
    s.sent.reset();
  }
}

std::optional<event_time> alignment_groups::minimum(const std::string& group, int except) const {
  auto low = max_watermark;
  for (const auto& s : members_) {
    if (s.m.group != group || s.m.task == except)
      continue;
    switch (s.state) {
      case alignment_state::waiting: return std::nullopt;
      case alignment_state::active: low = std::min(low, s.watermark); break;
      case alignment_state::idle:
      case alignment_state::ended: break;
    }
  }
  return low;
}

std::vector<alignment_groups::allowance>
alignment_groups::report(int task, alignment_state state, event_time wm) {
  std::vector<allowance> out;
  auto it = std::find_if(members_.begin(), members_.end(),
                         [&](const slot& s) { return s.m.task == task; });
  if (it == members_.end())
    return out;
  it->state = state;
  if (state == alignment_state::active)
    it->watermark = std::max(it->watermark, wm); // reports may only lag, never go back
  const auto& group = it->m.group;
  for (auto& s : members_) {
    if (s.m.group != group || s.state == alignment_state::ended)
      continue;
    // Over the others only: an instance is never ahead of itself, and counting its own
    // lagging report would cap it at `max_drift` per update interval (FLINK-37399).
    const auto low = minimum(group, s.m.task);
    if (!low)
      continue; // unknown: what was sent stands, nothing is raised
    const auto allowed = *low == max_watermark ? max_watermark
                                               : detail::saturating_add(*low, s.m.max_drift);
    if (s.sent == allowed)
      continue;
    s.sent = allowed;
    out.push_back({s.m.task, allowed});
  }
  return out;
}

bool alignment_reporter::holds(event_time wm) const {
  if (wm == min_watermark)
    return false;
  return !allowed_ || wm > *allowed_;
}

alignment_reporter::step alignment_reporter::update(alignment_state state, event_time wm,
                                                    time_point now) {
  if (last_.state == alignment_state::ended)
    return {};
  if (state != last_.state)
    return {sent(state, wm, now), {}};
  if (state != alignment_state::active || wm == last_.watermark || wake_pending_)
    return {};
  const auto due = last_at_ + interval_;
  if (now >= due)
    return {sent(state, wm, now), {}};
  wake_pending_ = true;
  return {{}, due};
}

std::optional<alignment_report> alignment_reporter::end(event_time wm, time_point now) {
  if (last_.state == alignment_state::ended)
    return std::nullopt;
  return sent(alignment_state::ended, wm, now);
}

alignment_report alignment_reporter::sent(alignment_state state, event_time wm, time_point now) {
  last_ = {state, wm};
  last_at_ = now;
  return last_;
}

} // namespace sluice
