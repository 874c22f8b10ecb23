#include "sluice/actors/replan.hpp"

#include "sluice/actors/task_restore.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <map>
#include <memory>
#include <optional>

namespace sluice {

namespace {

std::string joined(const std::vector<int>& v) { return fmt::format("{}", fmt::join(v, ",")); }

/// "0,1,2" -> {0, 1, 2}; none for anything else.
std::optional<std::vector<int>> numbers(const std::string& text) {
  std::vector<int> out;
  std::size_t at = 0;
  while (at <= text.size()) {
    const auto comma = std::min(text.find(',', at), text.size());
    int n = -1;
    const auto [end, ec] = std::from_chars(text.data() + at, text.data() + comma, n);
    if (ec != std::errc{} || end != text.data() + comma || n < 0)
      return std::nullopt;
    out.push_back(n);
    at = comma + 1;
  }
  return out;
}

} // namespace

void record_placement(const placement& p, std::map<std::string, std::string>& properties) {
  if (p.live.size() == static_cast<std::size_t>(p.nodes))
    return;
  properties[std::string{live_nodes_property}] = joined(p.live);
  properties[std::string{task_nodes_property}] = joined(p.node_of_task);
}

result<std::optional<recorded_placement>> recorded_placement_of(const checkpoint_meta& meta) {
  const auto live = meta.properties.find(std::string{live_nodes_property});
  const auto tasks = meta.properties.find(std::string{task_nodes_property});
  if (live == meta.properties.end() && tasks == meta.properties.end())
    return std::optional<recorded_placement>{};
  const auto bad = [&](std::string_view what) {
    return make_error(error_code::restore_conflict,
                      fmt::format("checkpoint {}: its placement ({}) is not a list of node "
                                  "numbers: '{}'",
                                  meta.id, what,
                                  (what == live_nodes_property ? live : tasks) ==
                                      meta.properties.end()
                                    ? std::string{"missing"}
                                    : (what == live_nodes_property ? live : tasks)->second));
  };
  if (live == meta.properties.end())
    return bad(live_nodes_property);
  if (tasks == meta.properties.end())
    return bad(task_nodes_property);
  auto l = numbers(live->second);
  if (!l)
    return bad(live_nodes_property);
  auto t = numbers(tasks->second);
  if (!t)
    return bad(task_nodes_property);
  return std::optional<recorded_placement>{recorded_placement{std::move(*l), std::move(*t)}};
}

namespace {

constexpr const char* placement_file = "cluster-placement";

} // namespace

result<void> write_placement_file(const std::filesystem::path& dir, const placement& p) {
  const auto file = dir / placement_file;
  const auto tmp = dir / (std::string{placement_file} + ".tmp");
  {
    std::ofstream out{tmp, std::ios::trunc};
    out << "live=" << joined(p.live) << "\ntasks=" << joined(p.node_of_task) << "\n";
    out.flush();
    if (!out)
      return make_error(error_code::io_error, "cannot write " + tmp.string());
  }
  std::error_code ec;
  std::filesystem::rename(tmp, file, ec);
  if (ec)
    return make_error(error_code::io_error,
                      "cannot rename " + tmp.string() + " to " + file.string() + ": " + ec.message());
  return {};
}

result<std::optional<recorded_placement>> read_placement_file(const std::filesystem::path& dir) {
  const auto file = dir / placement_file;
  std::error_code ec;
  if (!std::filesystem::exists(file, ec))
    return std::optional<recorded_placement>{};
  std::ifstream in{file};
  std::string live, tasks;
  const auto bad = [&] {
    return make_error(error_code::restore_conflict,
                      "cannot read the re-planned placement in " + file.string() +
                        " (two lines: live=0,1 and tasks=0,1,...); remove it to run on every node "
                        "from a new checkpoint directory");
  };
  if (!std::getline(in, live) || !std::getline(in, tasks) || !live.starts_with("live=") ||
      !tasks.starts_with("tasks="))
    return bad();
  auto l = numbers(live.substr(5));
  auto t = numbers(tasks.substr(6));
  if (!l || !t)
    return bad();
  return std::optional<recorded_placement>{recorded_placement{std::move(*l), std::move(*t)}};
}

std::filesystem::path node_store_dir(const std::filesystem::path& dir, int node) {
  return node == 0 ? dir : dir / ("node-" + std::to_string(node));
}

namespace {

error cannot_replan(std::int64_t id, int node, const std::string& what) {
  return make_error(error_code::restore_conflict,
                    fmt::format("re-planning{} without node {}: {} (re-planning needs the "
                                "checkpoint directory shared by every node, and the node "
                                "stopped: one cut off by the network still holds its store)",
                                id < 0 ? std::string{} : " checkpoint " + std::to_string(id),
                                node, what));
}

/// Node `node`'s store under `dir`, opened by node 0 (see `adopt_pieces`).
result<std::unique_ptr<checkpoint_store>> open_left_store(std::int64_t id, int node,
                                                          const std::filesystem::path& dir,
                                                          checkpoint_store_options options) {
  const auto where = node_store_dir(dir, node);
  std::error_code ec;
  if (!std::filesystem::is_directory(where, ec))
    return cannot_replan(id, node, fmt::format("its checkpoint store {} is not there", where.string()));
  options.node = node;
  auto store = checkpoint_store::open(where, options);
  if (!store)
    return cannot_replan(id, node, fmt::format("cannot open its checkpoint store: {}",
                                               store.error().message));
  return store;
}

} // namespace

result<void> can_take_over(int node, const std::filesystem::path& dir,
                           checkpoint_store_options options) {
  auto store = open_left_store(-1, node, dir, std::move(options));
  if (!store)
    return std::move(store).error();
  return {};
}

result<std::vector<control_message::shipped_piece>>
adopt_pieces(checkpoint_store& own, checkpoint_meta& meta, const std::vector<int>& live,
             const std::filesystem::path& dir, checkpoint_store_options options) {
  std::map<int, std::vector<checkpoint_piece*>> missing; // by the node that holds them
  for (auto& p : meta.pieces)
    if (!std::binary_search(live.begin(), live.end(), p.node) && !is_source_piece(p.name))
      missing[p.node].push_back(&p);
  std::vector<control_message::shipped_piece> out;
  for (auto& [node, pieces] : missing) {
    auto store = open_left_store(meta.id, node, dir, options);
    if (!store)
      return std::move(store).error();
    for (auto* p : pieces) {
      auto bytes = (*store)->get(meta, p->name); // found by name, checked against the metadata
      if (!bytes)
        return cannot_replan(meta.id, node, bytes.error().message);
      const auto in = p->stored_in >= 0 ? p->stored_in : meta.id;
      auto copy = own.put(in, p->name, *bytes);
      if (!copy)
        return cannot_replan(meta.id, node,
                             fmt::format("cannot copy piece '{}' into node 0's store: {}", p->name,
                                         copy.error().message));
      copy->stored_in = in;
      out.push_back({p->name, in, std::move(*bytes)});
      *p = *copy;
    }
  }
  return out;
}

} // namespace sluice
