// The non-template halves of the connectors in sources/: file listing and line reading,
// and the POSIX socket code (kept out of the headers so users never include <sys/socket.h>).
#include "sluice/core/codec/record_text.hpp"
#include "sluice/core/log.hpp"
#include "sluice/sources/file.hpp"
#include "sluice/sources/malformed.hpp"
#include "sluice/sources/socket.hpp"
#include "sluice/sources/source.hpp"

#include <nlohmann/json.hpp>

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <limits>
#include <map>
#include <set>
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
  std::error_code ec;
  root_ = fs::canonical(options_.path, ec);
  if (ec)
    return make_error(error_code::io_error, "file source: cannot resolve '" +
                                              options_.path.string() + "': " + ec.message());
  single_file_ = !fs::is_directory(root_);
  if (!options_.watch) {
    // The set of files is fixed now, so a bounded job ends even if the directory grows.
    for (std::size_t k = 0; k < files->size(); ++k) {
      index_.emplace(name_of((*files)[k]), k);
      listing_.push_back(name_of((*files)[k]));
      if (owns({}, k))
        listed_.push_back(std::move((*files)[k]));
    }
  }
  return {};
}

std::string file_line_reader::name_of(const fs::path& file) const {
  // A single file's name is the root's: the typed path may be a link with another name.
  return single_file_ ? root_.filename().string() : file.filename().string();
}

fs::path file_line_reader::path_of(const std::string& name) const {
  return single_file_ ? options_.path : options_.path / name;
}

bool file_line_reader::owns(const std::string& name, std::optional<std::size_t> index) const noexcept {
  const auto p = static_cast<std::uint64_t>(parallelism_);
  const auto mine = static_cast<std::uint64_t>(instance_);
  if (index)
    return *index % p == mine;
  // Watching, or a name the bounded listing no longer holds: by the name's hash.
  return stable_hash(name) % p == mine;
}

result<std::size_t> file_line_reader::scan(bool unlimited) {
  const std::size_t cap = unlimited ? std::numeric_limits<std::size_t>::max()
                                    : options_.max_files_per_trigger.value_or(
                                        std::numeric_limits<std::size_t>::max());
  if (parallelism_ > 1 && cap != std::numeric_limits<std::size_t>::max())
    return take_window(cap);
  auto taken_so_far = scan_own(cap);
  if (taken_so_far)
    last_scan_found_ = *taken_so_far;
  return taken_so_far;
}

result<std::size_t> file_line_reader::scan_own(std::size_t cap) {
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
    auto name = name_of(f);
    if (!owns(name, std::nullopt))
      continue;
    if (!seen_.insert(std::move(name)).second)
      continue;
    pending_.push_back(std::move(f));
    ++taken;
  }
  files_taken_ += taken;
  return taken;
}

// Every instance computes the same window from the same listing, so the windows agree
// without a word between them. Where two instances' views differ (a file appearing between
// their listings, a record cap that delays one instance's next scan, the first trigger after
// a restore), a window holds other files than Spark's, never a file twice or none: a file is
// only ever taken by its owner, and an owned file leaves the candidates only when taken.
result<std::size_t> file_line_reader::take_window(std::size_t cap) {
  std::size_t in_window = 0, taken = 0;
  auto consider = [&](const std::string& name, std::optional<std::size_t> index) {
    if (!source_taken_.insert(name).second)
      return;
    ++in_window;
    if (!owns(name, index))
      return;
    const auto path = path_of(name);
    if (options_.watch) {
      if (!seen_.insert(name).second)
        return; // a restore took it already
    } else {
      auto it = std::find(listed_.begin(), listed_.end(), path);
      if (it == listed_.end())
        return; // read or begun before a restore: taken already
      listed_.erase(it);
    }
    pending_.push_back(path);
    ++taken;
  };
  if (options_.watch) {
    auto files = list_input_files(options_.path);
    if (!files)
      return std::move(files).error();
    for (auto& f : *files) {
      if (in_window == cap)
        break;
      consider(name_of(f), std::nullopt);
    }
  } else {
    for (auto k = listing_cursor_; k < listing_.size() && in_window < cap; ++k)
      consider(listing_[k], k);
    while (listing_cursor_ < listing_.size() && source_taken_.count(listing_[listing_cursor_]))
      ++listing_cursor_;
  }
  files_taken_ += taken;
  last_scan_found_ = in_window;
  return taken;
}

std::vector<std::string> file_line_reader::unread() const {
  std::vector<std::string> names;
  if (reading_)
    names.push_back(current_name_);
  for (auto& p : pending_)
    names.push_back(name_of(p));
  return names;
}

void file_line_reader::take(const std::vector<std::string>& names, bool only_owned) {
  auto unread_now = unread();
  std::set<std::string> skip{unread_now.begin(), unread_now.end()};
  skip.insert(done_.begin(), done_.end());
  for (auto& name : names) {
    source_taken_.insert(name); // for the next capped windows (take_window)
    if (!skip.insert(name).second)
      continue;
    if (only_owned) {
      auto at = index_.find(name);
      if (!owns(name, at == index_.end() ? std::nullopt : std::optional{at->second}))
        continue;
    }
    auto path = path_of(name);
    if (options_.watch) {
      seen_.insert(name);
    } else {
      auto it = std::find(listed_.begin(), listed_.end(), path);
      if (it != listed_.end())
        listed_.erase(it);
    }
    pending_.push_back(std::move(path));
    ++files_taken_;
  }
}

std::string file_names_json(const std::vector<std::string>& names) {
  return nlohmann::json{{"files", names}}.dump();
}

result<std::vector<std::string>> file_names_from_json(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("files") || !j["files"].is_array())
    return make_error(error_code::io_error,
                      "file source: a planned trigger in the offset log does not read: " +
                        std::string{text.substr(0, 200)});
  std::vector<std::string> names;
  for (auto& n : j["files"]) {
    if (!n.is_string())
      return make_error(error_code::io_error,
                        "file source: a planned trigger names a file that is not a string");
    auto name = n.get<std::string>();
    // Like positions: a name under the input root, never a path out of it.
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos)
      return make_error(error_code::io_error,
                        "file source: a planned trigger names '" + name +
                          "', which is not a file name under the input root");
    names.push_back(std::move(name));
  }
  return names;
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
  current_name_ = name_of(next);
  reading_ = true;
  line_number_ = 0;
  skip_lines_ = 0;
  if (auto it = skip_.find(current_name_); it != skip_.end()) {
    skip_lines_ = it->second;
    skip_.erase(it);
  }
  return true;
}

result<bool> file_line_reader::next_line() {
  if (!in_.is_open())
    return false;
  for (;;) {
    if (!std::getline(in_, line_)) {
      const bool failed = in_.bad();
      in_.close();
      if (failed)
        return make_error(error_code::io_error, "file source: cannot read '" + current_ + "'");
      reading_ = false;
      done_.push_back(current_name_);
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

// Position format 2: {"version": 2, "root": "/abs/in", "done": ["000.jsonl"], "reading":
// {"001.jsonl": 17}, "taken": ["001.jsonl", "002.jsonl"]}. Names are relative to the root.
// Format 1 (before the root): {"done": [typed paths], "current": typed path or null,
// "line": n}, one instance's paths as the listing spelled them under the typed `path`.

std::string file_line_reader::position() const {
  nlohmann::json reading = nlohmann::json::object();
  for (const auto& [name, lines] : skip_)
    reading[name] = lines; // restored, not reopened yet
  if (reading_) // a file just opened has not skipped what an earlier run read yet
    reading[current_name_] = std::max(line_number_, skip_lines_);
  std::vector<std::string> taken;
  taken.reserve(pending_.size());
  for (const auto& f : pending_)
    taken.push_back(name_of(f));
  nlohmann::json j;
  j["version"] = 2;
  j["root"] = root_.string();
  j["done"] = done_;
  j["reading"] = std::move(reading);
  j["taken"] = std::move(taken);
  return j.dump();
}

struct file_line_reader::merged_position {
  std::set<std::string> done;
  std::map<std::string, std::uint64_t> reading;
  std::set<std::string> taken;
};

namespace {

/// A name a position may hold: one directory entry, nothing that leaves the root.
bool plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
}

} // namespace

result<std::string> file_line_reader::name_of_typed_path(const std::string& typed) const {
  const fs::path old{typed};
  // The same spelling as this run: the listing produced exactly this path.
  if (single_file_ ? typed == options_.path.string()
                   : (options_.path / old.filename()).string() == typed)
    return single_file_ ? root_.filename().string() : old.filename().string();
  // Another spelling: it names this root if it leads there from the working directory.
  std::error_code ec;
  const fs::path dir = single_file_ ? old : (old.has_parent_path() ? old.parent_path() : ".");
  if (const auto resolved = fs::canonical(dir, ec); !ec && resolved == root_)
    return single_file_ ? root_.filename().string() : old.filename().string();
  return make_error(error_code::invalid_option,
                    "file source: the checkpointed position (written before positions named "
                    "their input root) holds '" + typed + "', which is not in the input root '" +
                      root_.string() + "' (path '" + options_.path.string() +
                      "'); restore from a checkpoint of this input, or read the old one");
}

result<void> file_line_reader::merge(std::string_view position, merged_position& into) const {
  auto unreadable = [&](const std::string& why) {
    return make_error(error_code::io_error, "file source: unreadable checkpointed position (" +
                                              why + "): " +
                                              std::string{position.substr(0, 200)});
  };
  auto j = nlohmann::json::parse(position, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return unreadable("not a JSON object");
  try {
    std::vector<std::string> done;
    std::map<std::string, std::uint64_t> reading;
    std::vector<std::string> taken;
    if (j.contains("version") && j.at("version") != 2)
      return unreadable("format " + j.at("version").dump() + " is not known to this version");
    if (j.contains("root")) {
      const auto root = j.at("root").get<std::string>();
      if (root != root_.string())
        return make_error(error_code::invalid_option,
                          "file source: the checkpoint was taken reading the input root '" + root +
                            "', but this run reads the input root '" + root_.string() +
                            "' (path '" + options_.path.string() +
                            "'); positions name files under their root, so they cannot be "
                            "used for another input");
      done = j.at("done").get<std::vector<std::string>>();
      if (!j.at("reading").is_object())
        return unreadable("'reading' is not an object");
      for (const auto& [name, lines] : j.at("reading").items()) {
        if (!lines.is_number_unsigned())
          return unreadable("bad line count for '" + name + "'");
        reading[name] = lines.get<std::uint64_t>();
      }
      taken = j.at("taken").get<std::vector<std::string>>();
      for (const auto* names : {&done, &taken})
        for (const auto& name : *names)
          if (!plain_file_name(name))
            return unreadable("bad file name '" + name + "'");
      for (const auto& [name, lines] : reading)
        if (!plain_file_name(name))
          return unreadable("bad file name '" + name + "'");
    } else {
      // Format 1: paths as this instance's listing spelled them.
      for (const auto& typed : j.at("done").get<std::vector<std::string>>()) {
        auto name = name_of_typed_path(typed);
        if (!name)
          return std::move(name).error();
        done.push_back(std::move(*name));
      }
      if (!j.at("current").is_null()) {
        auto name = name_of_typed_path(j.at("current").get<std::string>());
        if (!name)
          return std::move(name).error();
        if (!j.at("line").is_number_unsigned())
          return unreadable("bad line count");
        reading[*name] = j.at("line").get<std::uint64_t>();
      }
    }
    for (auto& name : done) {
      if (into.reading.count(name))
        return unreadable("'" + name + "' is both finished and begun");
      into.done.insert(std::move(name));
    }
    for (auto& [name, lines] : reading) {
      if (into.done.count(name) || !into.reading.emplace(name, lines).second)
        return unreadable("'" + name + "' is begun in two positions or also finished");
    }
    for (auto& name : taken)
      into.taken.insert(std::move(name));
  } catch (const std::exception& e) {
    return unreadable(e.what());
  }
  return {};
}

result<void> file_line_reader::seek(const std::vector<std::string>& positions) {
  merged_position merged;
  for (const auto& p : positions)
    if (auto ok = merge(p, merged); !ok)
      return ok;
  // Which of the named files are this instance's now: the bounded listing's index rule for
  // the files it holds, the name's hash for the rest (as when watching).
  auto owned = [&](const std::string& name) {
    if (options_.watch)
      return owns(name, std::nullopt);
    auto it = index_.find(name);
    return owns(name, it == index_.end() ? std::nullopt : std::optional{it->second});
  };
  done_.clear();
  for (const auto& name : merged.done) {
    if (owned(name)) {
      done_.push_back(name);
      seen_.insert(name); // watching: never taken again, even if it comes back
    }
  }
  for (const auto& [name, lines] : merged.reading)
    if (owned(name) && lines > 0)
      skip_[name] = lines;
  auto begun = [&](const std::string& name) {
    return merged.reading.count(name) > 0 || merged.taken.count(name) > 0;
  };

  // The files left to read, in name order as in a fresh run. Those an earlier run had begun
  // or taken at their head are taken again at once (`busy()` then finishes them before a
  // trigger takes new files, as the old run would have); begun files further on resume at
  // their line when their turn comes. So a restore at the same parallelism reads in the
  // same order, and a rescaled one never reads a later file before an earlier untouched one.
  std::vector<fs::path> left;
  std::unordered_set<std::string> present;
  if (options_.watch) {
    auto files = list_input_files(options_.path);
    if (!files)
      return std::move(files).error();
    for (auto& f : *files) {
      auto name = name_of(f);
      present.insert(name);
      if (!owned(name))
        continue;
      if (!merged.done.count(name))
        left.push_back(std::move(f));
    }
  } else {
    for (auto& [name, k] : index_)
      present.insert(name);
    for (auto& f : listed_)
      if (!merged.done.count(name_of(f)))
        left.push_back(std::move(f));
  }
  listed_.clear();
  pending_.clear();
  // Begun or taken files that are gone: taken first, so opening fails naming them (a file
  // that vanishes while it is read fails the same way), never silently skipped.
  std::set<std::string> gone;
  for (const auto& [name, lines] : merged.reading)
    if (!present.count(name) && owned(name))
      gone.insert(name);
  for (const auto& name : merged.taken)
    if (!present.count(name) && !merged.done.count(name) && owned(name))
      gone.insert(name);
  for (const auto& name : gone) {
    pending_.push_back(path_of(name));
    seen_.insert(name);
  }
  std::size_t k = 0;
  for (; k < left.size() && begun(name_of(left[k])); ++k) {
    seen_.insert(name_of(left[k]));
    pending_.push_back(std::move(left[k]));
  }
  if (!options_.watch)
    listed_.assign(std::make_move_iterator(left.begin() + static_cast<std::ptrdiff_t>(k)),
                   std::make_move_iterator(left.end()));
  // Watching: the rest are found by the next scans, in name order.
  files_taken_ = done_.size() + pending_.size();

  // Out of the next capped windows: what other instances read, began or took, and this
  // instance's files except those it still has to take (a begun file further on waits in
  // the listing or for a scan, and must stay a candidate).
  std::unordered_set<std::string> still_listed;
  for (const auto& f : listed_)
    still_listed.insert(name_of(f));
  auto out_of_windows = [&](const std::string& name) {
    if (!owned(name) || (options_.watch ? seen_.count(name) > 0 : !still_listed.count(name)))
      source_taken_.insert(name);
  };
  for (const auto& name : merged.done)
    out_of_windows(name);
  for (const auto& name : merged.taken)
    out_of_windows(name);
  for (const auto& [name, lines] : merged.reading)
    out_of_windows(name);
  return {};
}

bool file_line_reader::exhausted() const noexcept {
  return !options_.watch && listed_.empty() && pending_.empty() && !in_.is_open();
}

std::string file_line_reader::location() const {
  return current_ + ":" + std::to_string(line_number_);
}

void file_line_reader::close() {
  // Keeps what `position()` reports: a task sends its source's position after closing it.
  in_.close();
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

result<bool> line_socket::has_input() {
  if (fd_ < 0 && !eof_)
    return make_error(error_code::io_error, "socket source: " + peer_ + " is not connected");
  for (;;) {
    if (eof_ || buf_.find('\n', scanned_) != std::string::npos ||
        (!discarding_ && buf_.size() - pos_ > max_line_))
      return true;
    scanned_ = buf_.size(); // no newline up to here: next_line need not look again
    auto got = receive();
    if (!got)
      return std::move(got).error();
    if (!*got)
      return false;
  }
}

void note_available_now(const std::string& name, const socket_options& options) {
  logging::get().warn("socket source '{}' ({}:{}): under available_now it reads the lines that "
                      "have arrived when the first trigger starts, then the query stops (as "
                      "Spark's socket source under Trigger.AvailableNow); use processing_time "
                      "or continuous to keep reading",
                      name, options.host, options.port);
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
