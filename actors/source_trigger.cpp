#include "sluice/actors/source_trigger.hpp"

namespace sluice {

result<trigger_plan> source_trigger::prepare(source_base& source, const request& r,
                                             bool finishing) {
  trigger_plan plan{false, {}};
  unlimited_ = r.unlimited;
  if (!exhausted_ && !finishing) {
    if (r.step == trigger_plans::step::replay) {
      if (auto ok = source.replay_trigger(r.end); !ok)
        return std::move(ok).error();
      plan = trigger_plan{true, r.end};
    } else if (r.step == trigger_plans::step::replay_merged) {
      auto merged = trigger_plans::merged_plan::decode(r.end);
      if (!merged)
        return std::move(merged).error();
      if (!source.restores_from_all_instances())
        return merged->cannot_replay_at(r.parallelism);
      // The merged ends are logged already; this instance's share needs no own end, but it
      // must stop there: mark the plan as made.
      if (auto ok = source.replay_trigger_all(merged->ends); !ok)
        return std::move(ok).error();
      plan = trigger_plan{true, r.end};
    } else {
      if (r.wall)
        source.trigger_time(*r.wall);
      auto planned = source.plan_trigger(r.unlimited, r.max_records);
      if (!planned)
        return std::move(planned).error();
      plan = std::move(*planned);
    }
  }
  // A source that planned its end stops there by itself: the record cap must not cut a
  // replayed batch shorter than it was.
  planned_ = !plan.end.empty();
  return plan;
}

} // namespace sluice
