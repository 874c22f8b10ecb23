#include "sluice/net/cluster.hpp"

#include <fmt/format.h>
#include <xxhash.h>
#include <zmq.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
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
  if (heartbeat_timeout.count() <= 0)
    return invalid(fmt::format("heartbeat timeout must be positive, got {} ms",
                               heartbeat_timeout.count()));
  if (heartbeat_timeout <= heartbeat_interval)
    return invalid(fmt::format("heartbeat timeout ({} ms) must exceed the interval ({} ms)",
                               heartbeat_timeout.count(), heartbeat_interval.count()));
  if (join_timeout.count() <= 0)
    return invalid(fmt::format("join timeout must be positive, got {} ms", join_timeout.count()));
  if (rejoin_timeout && rejoin_timeout->count() <= 0)
    return invalid(fmt::format("rejoin timeout must be positive, got {} ms",
                               rejoin_timeout->count()));
  return {};
}

namespace {

// A cluster file lists a few nodes, each a line of a host name (at most 253 characters) and
// a port: anything far larger is not one, and reading it whole (/dev/zero, a log file given
// by mistake) must not take the memory.
constexpr std::uintmax_t max_cluster_file_bytes = 1 << 20;
constexpr std::size_t max_cluster_line = 1024;
// A key file is two lines of 51 characters, perhaps with comments.
constexpr std::uintmax_t max_key_file_bytes = 4096;

/// Refuses what is not a regular file of at most `max_bytes`: `what` names the file.
result<void> check_small_regular_file(const std::filesystem::path& file, const std::string& what,
                                      std::uintmax_t max_bytes) {
  std::error_code ec;
  const auto st = std::filesystem::status(file, ec);
  if (ec || !std::filesystem::exists(st))
    return make_error(error_code::io_error, what + ": cannot be read" +
                                              (ec ? " (" + ec.message() + ")" : std::string{}));
  if (!std::filesystem::is_regular_file(st))
    return make_error(error_code::io_error, what + ": not a regular file");
  const auto size = std::filesystem::file_size(file, ec);
  if (ec)
    return make_error(error_code::io_error, what + ": cannot be read (" + ec.message() + ")");
  if (size > max_bytes)
    return make_error(error_code::invalid_option,
                      fmt::format("{}: larger than {} bytes ({} bytes)", what, max_bytes, size));
  return {};
}

} // namespace

result<std::vector<std::string>> read_cluster_file(const std::filesystem::path& file) {
  const auto what = "cluster file " + file.string();
  if (auto ok = check_small_regular_file(file, what, max_cluster_file_bytes); !ok)
    return ok.error();
  std::ifstream in(file);
  if (!in)
    return make_error(error_code::io_error, what + ": cannot be read");
  std::vector<std::string> nodes;
  std::string line;
  // The size was checked, but the file may grow meanwhile: the lines read are bounded too.
  std::uintmax_t bytes = 0;
  for (int number = 1; std::getline(in, line); ++number) {
    bytes += line.size() + 1;
    if (bytes > max_cluster_file_bytes)
      return make_error(error_code::invalid_option,
                        fmt::format("{}: larger than {} bytes", what, max_cluster_file_bytes));
    if (line.size() > max_cluster_line)
      return make_error(error_code::invalid_option,
                        fmt::format("{}: line {}: longer than {} characters", what, number,
                                    max_cluster_line));
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#')
      continue;
    const auto last = line.find_last_not_of(" \t\r");
    auto entry = line.substr(first, last - first + 1);
    auto e = parse_endpoint(entry);
    if (!e || e->port == 0)
      return make_error(error_code::invalid_option,
                        fmt::format("{}: line {}: '{}' is not host:port with a port in 1..65535",
                                    what, number, entry));
    nodes.push_back(std::move(entry));
  }
  if (in.bad())
    return make_error(error_code::io_error, what + ": cannot be read");
  if (nodes.empty())
    return make_error(error_code::invalid_option, what + ": lists no node");
  return nodes;
}

std::string cluster_digest(const std::vector<std::string>& nodes) {
  std::string all;
  for (const auto& n : nodes)
    all += n + '\n';
  return fmt::format("{:016x}", XXH64(all.data(), all.size(), 0));
}

result<curve_keypair> write_key_file(const std::filesystem::path& file) {
  const auto what = "key file " + file.string();
  auto keys = make_curve_keypair();
  if (!keys)
    return keys.error();
  // O_EXCL: an existing file, a link (even one pointing nowhere yet) or a file created
  // meanwhile by another process is never written, so the secret lands only in a new file
  // that was owner-only from its first byte.
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, S_IRUSR | S_IWUSR);
  if (fd < 0) {
    const int err = errno;
    if (err == EEXIST)
      return make_error(error_code::io_error, what + ": exists already; not overwritten");
    return make_error(error_code::io_error,
                      what + ": cannot be written (" + std::strerror(err) + ")");
  }
  const auto text = "public-key=" + keys->public_key + "\nsecret-key=" + keys->secret_key + "\n";
  std::size_t done = 0;
  int err = 0;
  while (done < text.size()) {
    const auto n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      err = n < 0 ? errno : EIO;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  if (err == 0 && ::fsync(fd) != 0)
    err = errno;
  if (::close(fd) != 0 && err == 0)
    err = errno;
  if (err != 0) {
    // A half-written key would be refused as "exists already" by the next attempt.
    ::unlink(file.c_str());
    return make_error(error_code::io_error,
                      what + ": cannot be written (" + std::strerror(err) + ")");
  }
  return keys;
}

result<curve_keypair> read_key_file(const std::filesystem::path& file) {
  auto bad = [&](std::string m) {
    return make_error(error_code::invalid_option, "key file " + file.string() + ": " + m);
  };
  if (auto ok = check_small_regular_file(file, "key file " + file.string(), max_key_file_bytes);
      !ok)
    return ok.error();
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
    // A key given twice may be an edit gone wrong: which one is meant is not guessed.
    if (line.rfind("public-key=", 0) == 0) {
      if (!keys.public_key.empty())
        return bad("public-key is given twice");
      keys.public_key = line.substr(11);
    } else if (line.rfind("secret-key=", 0) == 0) {
      if (!keys.secret_key.empty())
        return bad("secret-key is given twice");
      keys.secret_key = line.substr(11);
    } else if (!line.empty() && line[0] != '#') {
      return bad("unexpected line (expected public-key=... and secret-key=...)");
    }
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
