#include "sluice/actors/task_snapshot.hpp"

#include <utility>

namespace sluice {

namespace {

/// Collects one operator's pieces under `prefix` for the writer thread.
struct pending_writer final : snapshot_writer {
  std::string prefix;
  std::vector<pending_piece>* pieces = nullptr;
  bool has_previous = false;

  result<void> put(const std::string& piece, std::string bytes) override {
    pieces->push_back(pending_piece{prefix + piece, std::move(bytes), {}, false});
    return {};
  }
  result<void> put_later(const std::string& piece,
                         std::function<result<std::string>()> encode) override {
    pieces->push_back(pending_piece{prefix + piece, {}, std::move(encode), false});
    return {};
  }
  bool can_reuse() const noexcept override { return has_previous; }
  result<void> reuse(const std::string& piece) override {
    if (!has_previous)
      return snapshot_writer::reuse(piece);
    pieces->push_back(pending_piece{prefix + piece, {}, {}, true});
    return {};
  }
};

} // namespace

result<void> snapshot_chain(std::int64_t id, const chain_view& t, bool has_previous,
                            std::vector<pending_piece>& pieces) {
  pending_writer w;
  w.pieces = &pieces;
  w.has_previous = has_previous;
  for (std::size_t i = 0; i < t.ops->size(); ++i) {
    const auto& name = t.names[i];
    if (auto* op = t.ops->node(i)) {
      w.prefix = name + "/";
      if (auto r = op->snapshot(id, w); !r)
        return r;
    } else if (t.source) {
      if (auto pos = t.source->snapshot_position(id)) {
        w.prefix = source_piece_prefix(name);
        if (auto r = w.put(std::to_string(t.instance), std::move(*pos)); !r)
          return r;
      }
    }
  }
  return {};
}

result<std::vector<checkpoint_piece>>
store_pieces(checkpoint_store& store, std::int64_t id, std::vector<pending_piece>& pieces,
             std::unordered_map<std::string, checkpoint_piece>& previous) {
  std::vector<std::pair<std::string, std::string>> bytes;
  std::vector<checkpoint_piece> reused;
  for (auto& p : pieces) {
    if (p.reused) {
      auto it = previous.find(p.name);
      if (it == previous.end())
        return make_error(error_code::internal,
                          "piece '" + p.name + "' refers to a previous snapshot without it");
      reused.push_back(it->second);
      continue;
    }
    if (p.encode) {
      auto made = p.encode();
      if (!made)
        return make_error(made.error().code, "piece '" + p.name + "': " + made.error().message);
      p.bytes = std::move(*made);
      p.encode = nullptr; // frees the frozen state now
    }
    bytes.emplace_back(std::move(p.name), std::move(p.bytes));
  }
  auto written = store.put_all(id, bytes);
  if (!written)
    return std::move(written).error();
  written->insert(written->end(), reused.begin(), reused.end());
  previous.clear();
  for (auto& p : *written)
    previous.emplace(p.name, p);
  return written;
}

} // namespace sluice
