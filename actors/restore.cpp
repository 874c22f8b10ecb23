#include "sluice/actors/restore.hpp"

#include "sluice/actors/replan.hpp"

#include "sluice/core/log.hpp"

#include <algorithm>
#include <map>
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

namespace {

/// An operator that holds state in a checkpoint: its name, and whether it is a source
/// (whose positions are stored under "source/<name>/").
struct state_owner {
  std::string name;
  bool source = false;
  friend auto operator<=>(const state_owner&, const state_owner&) = default;
};

/// The operators that hold state in `meta`, from its pieces' names ("<name>/..." and
/// "source/<name>/..."). Names may contain '/': the longest known name that prefixes a
/// piece owns it; a piece no known name prefixes is owned by its first path segment.
std::set<state_owner> owners_of(const checkpoint_meta& meta, const std::vector<std::string>& known) {
  std::set<state_owner> out;
  for (auto& p : meta.pieces) {
    const bool source = p.name.starts_with("source/");
    const std::string_view rest = source ? std::string_view{p.name}.substr(7) : std::string_view{p.name};
    std::string owner;
    for (auto& n : known)
      if (n.size() > owner.size() && rest.size() > n.size() && rest.starts_with(n) &&
          rest[n.size()] == '/')
        owner = n;
    if (owner.empty())
      owner = std::string{rest.substr(0, rest.find('/'))};
    out.insert({owner, source});
  }
  return out;
}

std::string lines(const std::vector<std::string>& v, std::size_t max = 12) {
  std::string out;
  for (std::size_t i = 0; i < v.size() && i < max; ++i)
    out += "\n  " + v[i];
  if (v.size() > max)
    out += "\n  ... and " + std::to_string(v.size() - max) + " more";
  return out;
}

} // namespace

result<void> check_restorable(const checkpoint_meta& meta, const job_fingerprint& job,
                              const std::string& job_name, const checkpoint_options& o) {
  const auto which = "checkpoint " + std::to_string(meta.id) + " in " + o.dir.string();
  std::optional<job_fingerprint> old;
  if (!meta.graph.empty()) {
    auto f = job_fingerprint::from_json(meta.graph);
    if (!f)
      return make_error(error_code::io_error, which + ": " + f.error().message);
    old = std::move(*f);
  }
  std::vector<std::string> changed;
  if (old)
    for (auto& d : compare(*old, job))
      changed.push_back(d.text());
  if (!meta.job.empty() && meta.job != job_name) {
    if (!o.restore_from)
      return make_error(error_code::invalid_option,
                        which + " was written by job '" + meta.job + "', not by this job '" +
                          job_name + "': give each job its own checkpoint directory (to restore "
                          "another job's checkpoint on purpose, name it with restore_from)" +
                          (changed.empty() ? std::string{} : "; the jobs differ:" + lines(changed)));
    logging::get().warn("job '{}': restoring {} of job '{}' (restore_from names it)", job_name,
                        which, meta.job);
  }
  if (!old)
    logging::get().warn("job '{}': {} was written before job fingerprints: operators are "
                        "checked by the names of their state only, not by their state types",
                        job_name, which);
  std::vector<std::string> known;
  for (auto& n : job.nodes)
    known.push_back(n.name);
  if (old)
    for (auto& n : old->nodes)
      known.push_back(n.name);
  const auto owners = owners_of(meta, known);
  std::vector<std::string> not_restored, incompatible;
  for (auto& owner : owners) {
    const auto* now = job.find(owner.name);
    const auto* was = old ? old->find(owner.name) : nullptr;
    const auto old_state = was && !was->state.empty()
                             ? was->state
                             : std::string{"its types unknown: written before fingerprints"};
    if (!now || (now->kind == "source") != owner.source) {
      not_restored.push_back("'" + owner.name + "' (" + old_state + ")");
      continue;
    }
    if (!was || was->state.empty())
      continue; // nothing declared to compare
    if (!now->state.empty() && now->state != was->state)
      incompatible.push_back("'" + owner.name + "' kept " + was->state + " and now keeps " +
                             now->state);
    else if (now->state.empty() && now->kind_name != was->kind_name)
      not_restored.push_back("'" + owner.name + "' (" + was->state + "; now a " + now->kind_name +
                             " that keeps no state)");
  }
  if (!incompatible.empty())
    return make_error(error_code::invalid_option,
                      "cannot restore " + which + ": the state of " +
                        (incompatible.size() == 1 ? "an operator" : "operators") + " changed:" +
                        lines(incompatible) +
                        "\nState written by one cannot be read by the other. To start such an "
                        "operator empty, give it a new name and set allow_non_restored_state");
  if (!not_restored.empty()) {
    if (!o.allow_non_restored_state)
      return make_error(error_code::invalid_option,
                        "cannot restore " + which + ": it holds state of " +
                          (not_restored.size() == 1 ? "an operator" : "operators") +
                          " this job does not have (removed or renamed?):" + lines(not_restored) +
                          "\nSet allow_non_restored_state to restore without that state (Flink's "
                          "--allowNonRestoredState)");
    for (auto& n : not_restored)
      logging::get().warn("job '{}': {}: the state of operator {} is not restored "
                          "(allow_non_restored_state)",
                          job_name, which, n);
  }
  if (old)
    for (auto& n : job.nodes)
      if (!n.state.empty() && !old->find(n.name))
        logging::get().info("job '{}': operator '{}' ({}) is new since {}: it starts empty",
                            job_name, n.name, n.state, which);
  return {};
}

result<std::optional<checkpoint_meta>> find_restore_point(checkpoint_store& store,
                                                          const checkpoint_options& o,
                                                          const physical_plan& plan,
                                                          const job_fingerprint& job,
                                                          const std::string& job_name,
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
  if (meta)
    if (auto ok = check_restorable(*meta, job, job_name, o); !ok)
      return std::move(ok).error();
  return meta;
}

checkpoint_store_options store_options(const job_fingerprint& job, const runtime_options& opts,
                                       int node) {
  return {.retained = opts.checkpoints.retained,
          .file_threshold = opts.checkpoints.file_threshold,
          .compress = opts.checkpoints.compression,
          .on_unreadable = opts.checkpoints.on_unreadable,
          .graph = job.to_json(),
          .node = node};
}

result<opened_checkpoints> open_checkpoints(const graph& g, const physical_plan& plan,
                                            const runtime_options& opts) {
  if (auto ok = check_checkpointable(g, plan); !ok)
    return std::move(ok).error();
  const auto job = fingerprint_of(g, plan);
  // Multi-node runs: node 0 keeps the checkpoints' metadata and its pieces in the directory
  // itself, node N its pieces in `node-N` below it, so one shared directory serves the
  // cluster (docs/cluster.md).
  const auto& cluster = opts.cluster;
  const int node = cluster.enabled() ? cluster.node : 0;
  auto store = checkpoint_store::open(node_store_dir(opts.checkpoints.dir, node),
                                      store_options(job, opts, node));
  if (!store)
    return std::move(store).error();
  opened_checkpoints out;
  out.store = std::shared_ptr<checkpoint_store>{std::move(*store)};
  if (node != 0)
    return out; // node 0 names the checkpoint every node restores

  // What opening repaired, deleted or kept comes first; it is no reason to refuse a start.
  out.skipped = out.store->opening_notes();
  std::vector<std::string> skipped;
  auto point = find_restore_point(*out.store, opts.checkpoints, plan, job, opts.query_name, skipped);
  if (!point)
    return std::move(point).error();
  out.skipped.insert(out.skipped.end(), skipped.begin(), skipped.end());
  if (*point) {
    // Pieces lie in as many nodes' stores as the run that wrote them had nodes.
    const auto& props = (*point)->properties;
    const auto it = props.find("cluster_nodes");
    const std::string written = it == props.end() ? "1" : it->second;
    const auto nodes = std::to_string(cluster.enabled() ? cluster.nodes.size() : 1);
    if (written != nodes)
      return make_error(error_code::restore_conflict,
                        "checkpoint " + std::to_string((*point)->id) + " in " +
                          opts.checkpoints.dir.string() + " was written by a run on " + written +
                          " node(s); this run has " + nodes +
                          ": restoring onto another number of nodes is not supported yet "
                          "(docs/cluster.md)");
  }
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
