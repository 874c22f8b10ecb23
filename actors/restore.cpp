#include "actors/restore.hpp"

#include "core/log.hpp"

#include <set>

namespace sluice {

std::string describe_restore(std::optional<std::int64_t> restored,
                             const std::vector<std::string>& skipped) {
  std::string out;
  if (restored)
    out = ", restored from checkpoint " + std::to_string(*restored);
  else if (!skipped.empty())
    out = ", from no checkpoint";
  if (skipped.empty())
    return out;
  out += ", a fallback: the newer checkpoint";
  out += skipped.size() > 1 ? "s are" : " is";
  out += " unusable (";
  for (std::size_t i = 0; i < skipped.size(); ++i)
    out += (i > 0 ? "; " : "") + skipped[i];
  return out + ")";
}

result<void> check_checkpointable(const graph& g, const physical_plan&) {
  std::set<std::string> names;
  for (auto& n : g.nodes()) {
    if (!names.insert(n.name).second)
      return make_error(error_code::invalid_graph,
                        "checkpoints: two nodes are named '" + n.name +
                          "'; names key the state in a checkpoint, so give them distinct names");
    if (n.kind == node_kind::source || !n.make_operator)
      continue;
    if (!n.make_operator()->can_checkpoint())
      return make_error(error_code::invalid_graph,
                        "checkpoints: operator '" + n.name + "' (" + n.kind_name +
                          ") cannot be checkpointed yet, or its state types have no "
                          "inspect(); run it without a checkpoint directory");
  }
  return {};
}

result<std::optional<checkpoint_meta>> find_restore_point(checkpoint_store& store,
                                                          const checkpoint_options& o,
                                                          const physical_plan& plan,
                                                          std::vector<std::string>& skipped) {
  std::optional<checkpoint_meta> meta;
  if (o.restore_from) {
    auto m = store.find(*o.restore_from);
    if (!m)
      return make_error(error_code::io_error, "cannot restore checkpoint " +
                                                std::to_string(*o.restore_from) + ": " +
                                                m.error().message);
    meta = std::move(*m);
  } else {
    auto latest = store.latest(skipped);
    if (!latest)
      return std::move(latest).error();
    if (!*latest && !skipped.empty()) {
      std::string why;
      for (auto& s : skipped)
        why += "\n  " + s;
      return make_error(error_code::io_error, "checkpoint directory " + o.dir.string() +
                                                " holds checkpoints but none is usable:" + why);
    }
    meta = std::move(*latest);
  }
  if (meta && meta->max_key_groups != plan.max_key_groups)
    return make_error(error_code::invalid_option,
                      "checkpoint " + std::to_string(meta->id) + " was written with " +
                        std::to_string(meta->max_key_groups) + " key groups, the job has " +
                        std::to_string(plan.max_key_groups) +
                        "; key groups (max_key_groups) cannot change across a restore");
  return meta;
}

result<opened_checkpoints> open_checkpoints(const graph& g, const physical_plan& plan,
                                            const runtime_options& opts) {
  if (auto ok = check_checkpointable(g, plan); !ok)
    return std::move(ok).error();
  auto store = checkpoint_store::open(opts.checkpoints.dir,
                                      {.retained = opts.checkpoints.retained,
                                       .file_threshold = opts.checkpoints.file_threshold,
                                       .compress = opts.checkpoints.compression});
  if (!store)
    return std::move(store).error();
  opened_checkpoints out;
  out.store = std::shared_ptr<checkpoint_store>{std::move(*store)};
  auto point = find_restore_point(*out.store, opts.checkpoints, plan, out.skipped);
  if (!point)
    return std::move(point).error();
  out.from.meta = std::move(*point);
  out.from.requested = opts.checkpoints.restore_from.has_value();
  if (opts.checkpoints.restore_from) {
    // A new history starts at the restored checkpoint: the newer ones must never be
    // restored by a later restart (Spark users delete the later offsets for this).
    auto gone = out.store->discard_after(*opts.checkpoints.restore_from);
    if (!gone)
      return std::move(gone).error();
    for (auto id : *gone)
      logging::get().warn("job '{}': restored from checkpoint {}: deleted the newer "
                          "checkpoint {}",
                          opts.query_name, *opts.checkpoints.restore_from, id);
    // Newer savepoints stay; epochs number after them so that none is overwritten.
    auto high = out.store->highest_id();
    if (!high)
      return std::move(high).error();
    if (*high > *opts.checkpoints.restore_from)
      out.from.first_epoch = *high + 1;
  }
  return out;
}

} // namespace sluice
