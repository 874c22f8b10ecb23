// The non-template halves of the connectors in sources/: file listing and line reading,
// and the POSIX socket code (kept out of the headers so users never include <sys/socket.h>).
#include "core/codec/record_text.hpp"
#include "sources/file.hpp"
#include "sources/malformed.hpp"
#include "sources/socket.hpp"
#include "sources/source.hpp"

#include <nlohmann/json.hpp>

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <system_error>

namespace sluice::sources::detail {

// -- shared ---------------------------------------------------------------------------------

std::string truncate_raw(std::string_view raw, std::size_t limit) {
  if (raw.size() <= limit)
    return std::string{raw};
  // Back off over UTF-8 continuation bytes (10xxxxxx) so the cut lands on a boundary.
  std::size_t cut = limit;
  while (cut > 0 && (static_cast<unsigned char>(raw[cut]) & 0xC0) == 0x80)
    --cut;
  return std::string{raw.substr(0, cut)};
}

error located_error(std::string_view location, const error& cause) {
  std::string message{location};
  message += ": ";
  message += cause.message;
  return make_error(cause.code, std::move(message));
}

error located_error(std::string_view location, const error& cause, std::string_view raw) {
  auto located = located_error(location, cause);
  located.message += "; line: ";
  located.message += truncate_text(std::string{raw}, max_error_raw_chars);
  return located;
}

// -- file source ----------------------------------------------------------------------------

namespace fs = std::filesystem;

bool is_hidden_file_name(std::string_view name) noexcept {
  return !name.empty() && (name.front() == '.' || name.front() == '_');
}

std::uint64_t stable_hash(std::string_view text) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

result<std::vector<fs::path>> list_input_files(const fs::path& path) {
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (ec || !fs::exists(st))
    return make_error(error_code::io_error,
                      "file source: path '" + path.string() + "' does not exist");
  if (fs::is_regular_file(st))
    return std::vector<fs::path>{path};
  if (!fs::is_directory(st))
    return make_error(error_code::io_error, "file source: '" + path.string() +
                                              "' is neither a regular file nor a directory");
  std::vector<fs::path> files;
  fs::directory_iterator it{path, ec};
  for (; !ec && it != fs::directory_iterator{}; it.increment(ec)) {
    const auto name = it->path().filename().string();
    if (is_hidden_file_name(name))
      continue;
    std::error_code type_ec;
    // Follows symbolic links: a link to a regular file is read like the file.
    if (it->is_regular_file(type_ec))
      files.push_back(it->path());
  }
  if (ec)
    return make_error(error_code::io_error,
                      "file source: cannot list '" + path.string() + "': " + ec.message());
  std::sort(files.begin(), files.end(),
            [](const fs::path& a, const fs::path& b) { return a.filename() < b.filename(); });
  return files;
}

result<void> file_line_reader::open(const file_options& options, int instance, int parallelism) {
  options_ = options;
  instance_ = instance;
  parallelism_ = std::max(parallelism, 1);
  auto files = list_input_files(options_.path);
  if (!files)
    return std::move(files).error();
  if (!options_.watch) {
    // The set of files is fixed now, so a bounded job ends even if the directory grows.
    for (std::size_t k = 0; k < files->size(); ++k)
      if (k % static_cast<std::size_t>(parallelism_) == static_cast<std::size_t>(instance_))
        listed_.push_back(std::move((*files)[k]));
  }
  return {};
}

result<std::size_t> file_line_reader::scan(bool unlimited) {
  const std::size_t cap = unlimited ? std::numeric_limits<std::size_t>::max()
                                    : options_.max_files_per_trigger.value_or(
                                        std::numeric_limits<std::size_t>::max());
  std::size_t taken = 0;
  if (!options_.watch) {
    for (; taken < cap && !listed_.empty(); ++taken) {
      pending_.push_back(std::move(listed_.front()));
      listed_.pop_front();
    }
    files_taken_ += taken;
    return taken;
  }
  auto files = list_input_files(options_.path);
  if (!files)
    return std::move(files).error();
  for (auto& f : *files) {
    if (taken == cap)
      break;
    auto name = f.filename().string();
    if (stable_hash(name) % static_cast<std::uint64_t>(parallelism_) !=
        static_cast<std::uint64_t>(instance_))
      continue;
    if (!seen_.insert(std::move(name)).second)
      continue;
    pending_.push_back(std::move(f));
    ++taken;
  }
  files_taken_ += taken;
  return taken;
}

result<bool> file_line_reader::start_next_file() {
  if (pending_.empty())
    return false;
  auto next = std::move(pending_.front());
  pending_.pop_front();
  in_.close();
  in_.clear();
  in_.open(next, std::ios::in | std::ios::binary);
  if (!in_.is_open()) {
    const int err = errno;
    return make_error(error_code::io_error, "file source: cannot open '" + next.string() +
                                              "': " + std::generic_category().message(err));
  }
  current_ = next.string();
  line_number_ = 0;
  return true;
}

result<bool> file_line_reader::next_line() {
  if (!in_.is_open())
    return false;
  for (;;) {
    if (!std::getline(in_, line_)) {
      const bool failed = in_.bad();
      in_.close();
      if (!failed)
        done_.push_back(current_);
      if (failed)
        return make_error(error_code::io_error, "file source: cannot read '" + current_ + "'");
      return false;
    }
    ++line_number_;
    if (line_number_ <= skip_lines_)
      continue; // read before the checkpoint this run restarted from
    skip_lines_ = 0;
    if (!line_.empty() && line_.back() == '\r')
      line_.pop_back();
    if (line_number_ == 1) {
      if (line_.starts_with("\xEF\xBB\xBF"))
        line_.erase(0, 3);
      if (options_.format == file_format::csv && options_.csv_header)
        continue;
    }
    return true;
  }
}

std::string file_line_reader::position() const {
  nlohmann::json j;
  j["done"] = done_;
  j["current"] = in_.is_open() ? nlohmann::json(current_) : nlohmann::json(nullptr);
  j["line"] = in_.is_open() ? line_number_ : 0;
  return j.dump();
}

result<void> file_line_reader::seek(std::string_view position) {
  std::vector<std::string> done;
  std::optional<std::string> current;
  std::uint64_t line = 0;
  try {
    auto j = nlohmann::json::parse(position);
    done = j.at("done").get<std::vector<std::string>>();
    if (!j.at("current").is_null())
      current = j.at("current").get<std::string>();
    line = j.at("line").get<std::uint64_t>();
  } catch (const std::exception& e) {
    return make_error(error_code::io_error,
                      std::string{"file source: unreadable checkpointed position: "} + e.what());
  }
  std::unordered_set<std::string> finished(done.begin(), done.end());
  auto taken = [&](const fs::path& p) {
    return finished.count(p.string()) > 0 || (current && *current == p.string());
  };
  // Bounded: drop what was read from the list; watching: remember the names as seen.
  std::erase_if(listed_, taken);
  for (auto& name : done)
    seen_.insert(fs::path{name}.filename().string());
  if (current) {
    seen_.insert(fs::path{*current}.filename().string());
    pending_.push_front(*current);
    skip_lines_ = line;
  }
  done_ = std::move(done);
  files_taken_ = done_.size() + (current ? 1 : 0);
  return {};
}

bool file_line_reader::exhausted() const noexcept {
  return !options_.watch && listed_.empty() && pending_.empty() && !in_.is_open();
}

std::string file_line_reader::location() const {
  return current_ + ":" + std::to_string(line_number_);
}

void file_line_reader::close() {
  in_.close();
  listed_.clear();
  pending_.clear();
}

// -- socket source --------------------------------------------------------------------------

namespace {

std::string errno_text(int err) { return std::generic_category().message(err); }

/// Waits until a non-blocking connect finishes; returns 0 or the errno it failed with.
int finish_connect(int fd, std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLOUT, 0};
  int ready = 0;
  do {
    ready = ::poll(&p, 1, static_cast<int>(std::min<std::chrono::milliseconds::rep>(
                            timeout.count(), std::numeric_limits<int>::max())));
  } while (ready < 0 && errno == EINTR);
  if (ready < 0)
    return errno;
  if (ready == 0)
    return ETIMEDOUT;
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
    return errno;
  return err;
}

} // namespace

result<void> validate_socket_options(const socket_options& options) {
  if (options.host.empty())
    return make_error(error_code::invalid_option, "socket source: host is empty");
  if (options.port == 0)
    return make_error(error_code::invalid_option, "socket source: port must be set");
  if (options.poll_interval <= std::chrono::milliseconds::zero())
    return make_error(error_code::invalid_option, "socket source: poll_interval must be positive");
  if (options.connect_timeout <= std::chrono::milliseconds::zero())
    return make_error(error_code::invalid_option,
                      "socket source: connect_timeout must be positive");
  if (options.max_line_bytes == 0)
    return make_error(error_code::invalid_option, "socket source: max_line_bytes must be positive");
  return {};
}

result<void> line_socket::connect(const socket_options& options) {
  close();
  peer_ = options.host + ":" + std::to_string(options.port);
  max_line_ = options.max_line_bytes;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const auto service = std::to_string(options.port);
  if (int rc = ::getaddrinfo(options.host.c_str(), service.c_str(), &hints, &found); rc != 0)
    return make_error(error_code::io_error, "socket source: cannot resolve " + peer_ + ": " +
                                              ::gai_strerror(rc));
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> addresses{found, ::freeaddrinfo};
  int last_error = 0;
  for (auto* a = found; a != nullptr; a = a->ai_next) {
    // Non-blocking from the start: connect waits at most connect_timeout, and every later
    // recv returns at once when no data is waiting.
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last_error = errno;
      continue;
    }
    int err = 0;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) < 0)
      err = errno == EINPROGRESS ? finish_connect(fd, options.connect_timeout) : errno;
    if (err == 0) {
      fd_ = fd;
      return {};
    }
    last_error = err;
    ::close(fd);
  }
  return make_error(error_code::io_error,
                    "socket source: cannot connect to " + peer_ + ": " + errno_text(last_error));
}

result<bool> line_socket::receive() {
  if (pos_ > 0) {
    // Drop what has been returned, so the buffer holds at most one partial line plus a chunk.
    buf_.erase(0, pos_);
    scanned_ -= pos_;
    pos_ = 0;
  }
  constexpr std::size_t chunk = 64 * 1024;
  const auto old_size = buf_.size();
  buf_.resize(old_size + chunk);
  for (;;) {
    const auto n = ::recv(fd_, buf_.data() + old_size, chunk, MSG_DONTWAIT);
    if (n > 0) {
      buf_.resize(old_size + static_cast<std::size_t>(n));
      return true;
    }
    buf_.resize(old_size);
    if (n == 0) {
      eof_ = true;
      return true;
    }
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return false;
    return make_error(error_code::io_error,
                      "socket source: reading from " + peer_ + " failed: " + errno_text(errno));
  }
}

result<line_socket::status> line_socket::next_line(std::string_view& line) {
  if (fd_ < 0 && !eof_)
    return make_error(error_code::io_error, "socket source: " + peer_ + " is not connected");
  for (;;) {
    const auto nl = buf_.find('\n', scanned_);
    if (nl != std::string::npos) {
      const std::size_t begin = pos_;
      pos_ = nl + 1;
      scanned_ = pos_;
      if (discarding_) {
        discarding_ = false; // the rest of the over-long line, already reported
        continue;
      }
      ++line_number_;
      line = std::string_view{buf_}.substr(begin, nl - begin);
      if (!line.empty() && line.back() == '\r')
        line.remove_suffix(1);
      if (line.size() > max_line_) {
        line = line.substr(0, max_line_);
        return status::too_long;
      }
      return status::line;
    }
    scanned_ = buf_.size();
    if (discarding_) {
      pos_ = scanned_ = buf_.size();
    } else if (buf_.size() - pos_ > max_line_) {
      ++line_number_;
      line = std::string_view{buf_}.substr(pos_, max_line_);
      discarding_ = true;
      pos_ = scanned_ = buf_.size();
      return status::too_long;
    }
    if (eof_) {
      if (pos_ < buf_.size() && !discarding_) {
        ++line_number_;
        line = std::string_view{buf_}.substr(pos_);
        if (!line.empty() && line.back() == '\r')
          line.remove_suffix(1);
        pos_ = scanned_ = buf_.size();
        return status::line; // cannot exceed max_line_: the check above ran first
      }
      return status::closed;
    }
    auto got = receive();
    if (!got)
      return std::move(got).error();
    if (!*got)
      return status::would_block;
  }
}

std::string line_socket::location() const {
  return "socket " + peer_ + " line " + std::to_string(line_number_);
}

void line_socket::close() noexcept {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

} // namespace sluice::sources::detail
