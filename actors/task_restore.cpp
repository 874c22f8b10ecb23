#include "sluice/actors/task_restore.hpp"

#include <algorithm>
#include <optional>
#include <unordered_set>
#include <utility>

namespace sluice {

namespace {

/// Reads pieces of the restored checkpoint (none when starting fresh).
struct store_reader final : snapshot_reader {
  checkpoint_store* store = nullptr;
  const checkpoint_meta* meta = nullptr;
  const std::unordered_set<std::string>* names = nullptr;
  std::string prefix;
  result<std::optional<std::string>> get(const std::string& piece) override {
    if (!meta || !names->count(prefix + piece))
      return std::optional<std::string>{};
    auto bytes = store->get(*meta, prefix + piece);
    if (!bytes)
      return std::move(bytes).error();
    return std::optional<std::string>{std::move(*bytes)};
  }
};

} // namespace

result<bool> restore_chain(checkpoint_store& store, const checkpoint_meta* meta,
                           const chain_view& t) {
  std::unordered_set<std::string> names;
  if (meta)
    for (auto& p : meta->pieces)
      names.insert(p.name);
  store_reader r;
  r.store = &store;
  r.meta = meta;
  r.names = &names;
  bool positioned = false;
  for (std::size_t i = 0; i < t.ops->size(); ++i) {
    const auto& name = t.names[i];
    if (auto* op = t.ops->node(i)) {
      r.prefix = name + "/";
      if (auto ok = op->restore(r); !ok)
        return std::move(ok).error();
    } else if (t.source && meta) {
      r.prefix = source_piece_prefix(name);
      if (t.source->restores_from_all_instances()) {
        // Every old instance's position, whatever the old parallelism was.
        std::vector<std::string> all;
        for (const auto& piece : meta->pieces) {
          if (!piece.name.starts_with(r.prefix))
            continue;
          auto pos = r.get(piece.name.substr(r.prefix.size()));
          if (!pos)
            return std::move(pos).error();
          if (*pos)
            all.push_back(std::move(**pos));
        }
        if (auto ok = t.source->seek_all(all); !ok)
          return std::move(ok).error();
        positioned = true;
        continue;
      }
      // One position per instance: a checkpoint written at another parallelism cannot be
      // split again (its instances read other records), so it is refused, never guessed.
      const auto stored = std::count_if(meta->pieces.begin(), meta->pieces.end(),
                                        [&](const checkpoint_piece& p) {
                                          return p.name.starts_with(r.prefix);
                                        });
      if (stored > 0 && stored != t.parallelism)
        return make_error(error_code::restore_conflict,
                          "source '" + name + "' restores one position per instance: checkpoint " +
                            std::to_string(meta->id) + " was taken at parallelism " +
                            std::to_string(stored) + ", this run has " +
                            std::to_string(t.parallelism) + "; restart it at parallelism " +
                            std::to_string(stored));
      auto pos = r.get(std::to_string(t.instance));
      if (!pos)
        return std::move(pos).error();
      if (*pos) {
        if (auto ok = t.source->seek(**pos); !ok)
          return std::move(ok).error();
        positioned = true;
      }
    }
  }
  return positioned;
}

} // namespace sluice
