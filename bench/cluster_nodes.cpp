#include "sluice/bench/cluster_nodes.hpp"

#include <CLI/CLI.hpp>

#include <fcntl.h>
#include <spawn.h>

#include <algorithm>

extern char** environ;

namespace sluice::bench {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

void node_placement::add_flags(CLI::App& node) {
  node.add_option("--index", index)->required();
  node.add_option("--cluster", cluster)->required();
}

std::vector<std::string> node_placement::nodes() const {
  std::vector<std::string> out;
  for (std::size_t at = 0; at <= cluster.size();) {
    const auto comma = std::min(cluster.find(',', at), cluster.size());
    out.push_back(cluster.substr(at, comma - at));
    at = comma + 1;
  }
  return out;
}

std::vector<std::string> node_placement::command() const {
  return {"/proc/self/exe", "node", "--index", std::to_string(index), "--cluster", cluster};
}

std::string cluster_flag(const std::vector<std::string>& nodes) {
  std::string joined;
  for (std::size_t n = 0; n < nodes.size(); ++n)
    joined += (n ? "," : "") + nodes[n];
  return joined;
}

std::optional<pid_t> start_process(const std::vector<std::string>& args, const std::string& out,
                                   const std::string& err) {
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t io;
  posix_spawn_file_actions_init(&io);
  if (!out.empty())
    posix_spawn_file_actions_addopen(&io, 1, out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (!err.empty())
    posix_spawn_file_actions_addopen(&io, 2, err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0], &io, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&io);
  if (rc != 0)
    return std::nullopt;
  return pid;
}

} // namespace sluice::bench
