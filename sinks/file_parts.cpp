// The non-template halves of the file sink: part files and the moves of the transactional
// sink between their states.
#include "sinks/file.hpp"

#include <system_error>

namespace sluice::sinks::detail {

namespace fs = std::filesystem;

namespace {

/// Buffered text is handed to the operating system once it reaches this size.
constexpr std::size_t buffer_limit = 64 << 10;

} // namespace

result<void> part_file::open(file_io& io, const fs::path& directory, const std::string& name) {
  path_ = directory / name;
  std::error_code ec;
  fs::create_directories(directory, ec);
  if (ec)
    return make_error(error_code::io_error, "file sink: cannot create directory '" +
                                              directory.string() + "': " + ec.message());
  buffer_.clear();
  auto f = io.create(path_);
  if (!f)
    return std::move(f).error();
  file_ = std::move(*f);
  return {};
}

result<void> part_file::write(const std::string& text) {
  if (!file_)
    return make_error(error_code::io_error, "file sink: '" + path_.string() + "' is not open");
  buffer_ += text;
  return buffer_.size() >= buffer_limit ? flush() : result<void>{};
}

result<void> part_file::flush() {
  if (!file_ || buffer_.empty())
    return {};
  auto r = file_->append(buffer_);
  buffer_.clear();
  return r;
}

result<void> part_file::sync() {
  if (!file_)
    return {};
  if (auto r = flush(); !r)
    return r;
  return file_->sync();
}

result<void> part_file::close() {
  if (!file_)
    return {};
  auto flushed = flush();
  auto closed = file_->close();
  file_.reset();
  if (!flushed)
    return flushed;
  return closed;
}

namespace {

/// Parses `<prefix>-<instance>-<id><suffix>` (after an optional leading dot).
bool parse_part(const std::string& name, const std::string& prefix, std::string_view suffix,
                int& instance, std::int64_t& id) {
  if (!name.ends_with(suffix) || !name.starts_with(prefix + "-"))
    return false;
  const auto body = name.substr(prefix.size() + 1, name.size() - prefix.size() - 1 - suffix.size());
  const auto dash = body.find('-');
  if (dash == std::string::npos)
    return false;
  try {
    std::size_t used = 0;
    instance = std::stoi(body.substr(0, dash), &used);
    if (used != dash)
      return false;
    const auto rest = body.substr(dash + 1);
    id = std::stoll(rest, &used);
    return used == rest.size();
  } catch (const std::exception&) {
    return false;
  }
}

} // namespace

std::string part_transactions::in_progress_name() const {
  return "." + prefix_ + "-" + std::to_string(instance_) + ".inprogress";
}

result<void> part_transactions::seal(std::int64_t id) {
  if (auto r = io_->rename(dir_ / in_progress_name(),
                           dir_ / ("." + prefix_ + "-" + std::to_string(instance_) + "-" +
                                   std::to_string(id) + ".pending"));
      !r)
    return r;
  return io_->sync_directory(dir_);
}

result<void> part_transactions::commit(std::int64_t id) {
  std::error_code ec;
  bool moved = false;
  for (fs::directory_iterator it{dir_, ec}; !ec && it != fs::directory_iterator{}; it.increment(ec)) {
    const auto name = it->path().filename().string();
    int instance = 0;
    std::int64_t pid = 0;
    if (!name.starts_with(".") || !parse_part(name.substr(1), prefix_, ".pending", instance, pid))
      continue;
    if (instance != instance_ || pid > id)
      continue;
    if (auto r = io_->rename(it->path(), dir_ / (prefix_ + "-" + std::to_string(instance) + "-" +
                                                 std::to_string(pid) + ".jsonl"));
        !r)
      return r;
    moved = true;
  }
  if (ec)
    return make_error(error_code::io_error,
                      "file sink: cannot list '" + dir_.string() + "': " + ec.message());
  return moved ? io_->sync_directory(dir_) : result<void>{};
}

result<void> part_transactions::recover(std::int64_t id) {
  std::error_code ec;
  std::vector<fs::path> entries;
  for (fs::directory_iterator it{dir_, ec}; !ec && it != fs::directory_iterator{}; it.increment(ec))
    entries.push_back(it->path());
  if (ec)
    return make_error(error_code::io_error,
                      "file sink: cannot list '" + dir_.string() + "': " + ec.message());
  // Instance i looks after the files of every old instance j with j % parallelism == i, so
  // nothing is orphaned when the parallelism shrank.
  auto mine = [&](int j) { return j % parallelism_ == instance_; };
  bool changed = false;
  for (auto& path : entries) {
    const auto name = path.filename().string();
    if (!name.starts_with("."))
      continue;
    int j = 0;
    std::int64_t pid = 0;
    if (parse_part(name.substr(1), prefix_, ".pending", j, pid) && mine(j)) {
      if (pid <= id) { // pre-committed for a completed checkpoint: commit (idempotent)
        if (auto r = io_->rename(path, dir_ / (prefix_ + "-" + std::to_string(j) + "-" +
                                               std::to_string(pid) + ".jsonl"));
            !r)
          return r;
      } else { // written after the restored checkpoint: it will be written again
        if (auto r = io_->remove(path); !r)
          return r;
      }
      changed = true;
      continue;
    }
    const auto in_progress_prefix = "." + prefix_ + "-";
    if (name.starts_with(in_progress_prefix) && name.ends_with(".inprogress")) {
      try {
        const int k = std::stoi(name.substr(in_progress_prefix.size()));
        if (mine(k)) {
          if (auto r = io_->remove(path); !r)
            return r;
          changed = true;
        }
      } catch (const std::exception&) {
      }
    }
  }
  return changed ? io_->sync_directory(dir_) : result<void>{};
}

} // namespace sluice::sinks::detail
