#include "sluice/net/cluster.hpp"

#include <fmt/format.h>
#include <xxhash.h>
#include <zmq.h>

#include <sys/stat.h>

#include <array>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

namespace sluice::net {

std::optional<endpoint> parse_endpoint(const std::string& s) {
  const auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size())
    return std::nullopt;
  int port = -1;
  const char* first = s.data() + colon + 1;
  const char* last = s.data() + s.size();
  auto [end, ec] = std::from_chars(first, last, port);
  if (ec != std::errc{} || end != last || port < 0 || port > 65535)
    return std::nullopt;
  return endpoint{s.substr(0, colon), port};
}

bool is_z85_key(const std::string& key) {
  if (key.size() != 40)
    return false;
  std::array<std::uint8_t, 32> bin{};
  return zmq_z85_decode(bin.data(), key.c_str()) != nullptr;
}

result<void> cluster_options::validate() const {
  auto invalid = [](std::string m) {
    return make_error(error_code::invalid_option, "cluster: " + std::move(m));
  };
  if (nodes.empty())
    return invalid("no nodes (the cluster file lists none)");
  if (node < 0 || static_cast<std::size_t>(node) >= nodes.size())
    return invalid(fmt::format("node {} is not in the cluster of {} node{} (0..{})", node,
                               nodes.size(), nodes.size() == 1 ? "" : "s", nodes.size() - 1));
  std::set<std::string> seen;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    auto e = parse_endpoint(nodes[i]);
    if (!e || e->port == 0)
      return invalid(fmt::format("node {}: '{}' is not host:port with a port in 1..65535", i,
                                 nodes[i]));
    if (!seen.insert(nodes[i]).second)
      return invalid(fmt::format("node {}: '{}' is listed twice", i, nodes[i]));
  }
  if (heartbeat_interval.count() <= 0)
    return invalid(fmt::format("heartbeat interval must be positive, got {} ms",
                               heartbeat_interval.count()));
  if (heartbeat_timeout <= heartbeat_interval)
    return invalid(fmt::format("heartbeat timeout ({} ms) must exceed the interval ({} ms)",
                               heartbeat_timeout.count(), heartbeat_interval.count()));
  if (join_timeout.count() <= 0)
    return invalid(fmt::format("join timeout must be positive, got {} ms", join_timeout.count()));
  return {};
}

result<std::vector<std::string>> read_cluster_file(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in)
    return make_error(error_code::io_error,
                      "cluster file " + file.string() + ": cannot be read");
  std::vector<std::string> nodes;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#')
      continue;
    const auto last = line.find_last_not_of(" \t\r");
    auto entry = line.substr(first, last - first + 1);
    auto e = parse_endpoint(entry);
    if (!e || e->port == 0)
      return make_error(error_code::invalid_option,
                        fmt::format("cluster file {}: line {}: '{}' is not host:port with a "
                                    "port in 1..65535",
                                    file.string(), number, entry));
    nodes.push_back(std::move(entry));
  }
  if (nodes.empty())
    return make_error(error_code::invalid_option,
                      "cluster file " + file.string() + ": lists no node");
  return nodes;
}

std::string cluster_digest(const std::vector<std::string>& nodes) {
  std::string all;
  for (const auto& n : nodes)
    all += n + '\n';
  return fmt::format("{:016x}", XXH64(all.data(), all.size(), 0));
}

result<curve_keypair> write_key_file(const std::filesystem::path& file) {
  if (std::filesystem::exists(file))
    return make_error(error_code::io_error,
                      "key file " + file.string() + ": exists already; not overwritten");
  auto keys = make_curve_keypair();
  if (!keys)
    return keys.error();
  {
    std::ofstream out(file);
    if (!out)
      return make_error(error_code::io_error, "key file " + file.string() + ": cannot be written");
  }
  // Restrict before writing the secret, so it is never readable by others.
  std::filesystem::permissions(file, std::filesystem::perms::owner_read |
                                       std::filesystem::perms::owner_write);
  std::ofstream out(file, std::ios::trunc);
  out << "public-key=" << keys->public_key << "\nsecret-key=" << keys->secret_key << "\n";
  out.close();
  if (!out)
    return make_error(error_code::io_error, "key file " + file.string() + ": cannot be written");
  return keys;
}

result<curve_keypair> read_key_file(const std::filesystem::path& file) {
  auto bad = [&](std::string m) {
    return make_error(error_code::invalid_option, "key file " + file.string() + ": " + m);
  };
  struct stat st{};
  if (::stat(file.c_str(), &st) != 0)
    return make_error(error_code::io_error, "key file " + file.string() + ": cannot be read");
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
    return bad(fmt::format("group or others may access it (mode {:o}); it holds the cluster's "
                           "secret: chmod 600 it",
                           st.st_mode & 0777));
  std::ifstream in(file);
  if (!in)
    return make_error(error_code::io_error, "key file " + file.string() + ": cannot be read");
  curve_keypair keys;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line.rfind("public-key=", 0) == 0)
      keys.public_key = line.substr(11);
    else if (line.rfind("secret-key=", 0) == 0)
      keys.secret_key = line.substr(11);
    else if (!line.empty() && line[0] != '#')
      return bad("unexpected line (expected public-key=... and secret-key=...)");
  }
  if (keys.public_key.empty() || keys.secret_key.empty())
    return bad(keys.public_key.empty() ? "no public-key line" : "no secret-key line");
  if (!is_z85_key(keys.public_key))
    return bad("public-key is not 40 characters of Z85");
  if (!is_z85_key(keys.secret_key))
    return bad("secret-key is not 40 characters of Z85");
  std::array<char, 41> derived{};
  if (zmq_curve_public(derived.data(), keys.secret_key.c_str()) != 0 ||
      keys.public_key != derived.data())
    return bad("public-key does not belong to secret-key");
  return keys;
}

} // namespace sluice::net
