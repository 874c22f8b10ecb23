// The non-template halves of the file sink: part files and the moves of the transactional
// sink between their states.
#include "sluice/sinks/file.hpp"

#include "sluice/core/log.hpp"

#include <map>
#include <set>
#include <system_error>
#include <utility>

namespace sluice::sinks::detail {

namespace fs = std::filesystem;

std::string file_extension(file_format format) {
  return format == file_format::text ? ".txt" : ".jsonl";
}

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
  // The attempt keeps a failed attempt's unfinished file apart from the next attempt's.
  return "." + prefix_ + "-" + std::to_string(instance_) + ".a" + std::to_string(attempt_) +
         ".inprogress";
}

std::string part_transactions::visible_name(int instance, std::int64_t id) const {
  return prefix_ + "-" + std::to_string(instance) + "-" + std::to_string(id) + extension_;
}

result<void> part_transactions::prepare() {
  const auto manifest = manifest_path(dir_);
  std::error_code ec;
  const bool existed = fs::is_directory(manifest, ec);
  fs::create_directories(manifest, ec);
  if (ec)
    return make_error(error_code::io_error, "file sink: cannot create directory '" +
                                              manifest.string() + "': " + ec.message());
  // From the first commit on, readers follow the manifest: its directory must not vanish
  // in a power loss while committed files stay.
  return existed ? result<void>{} : io_->sync_directory(dir_);
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
  std::vector<std::int64_t> committed;
  for (fs::directory_iterator it{dir_, ec}; !ec && it != fs::directory_iterator{}; it.increment(ec)) {
    const auto name = it->path().filename().string();
    int instance = 0;
    std::int64_t pid = 0;
    if (!name.starts_with(".") || !parse_part(name.substr(1), prefix_, ".pending", instance, pid))
      continue;
    if (instance != instance_ || pid > id)
      continue;
    if (auto r = io_->rename(it->path(), dir_ / visible_name(instance, pid)); !r)
      return r;
    committed.push_back(pid);
  }
  if (ec)
    return make_error(error_code::io_error,
                      "file sink: cannot list '" + dir_.string() + "': " + ec.message());
  if (committed.empty())
    return {};
  if (auto r = io_->sync_directory(dir_); !r)
    return r;
  for (auto pid : committed)
    if (auto r = write_manifest_entry(*io_, dir_, prefix_, instance_, pid,
                                      dir_ / visible_name(instance_, pid));
        !r)
      return r;
  return io_->sync_directory(manifest_path(dir_));
}

namespace {

/// "3", "3 and 4", "3, 4 and 7".
std::string id_list(const std::set<std::int64_t>& ids) {
  std::string out;
  std::size_t i = 0;
  for (auto id : ids) {
    if (i > 0)
      out += i + 1 == ids.size() ? " and " : ", ";
    out += std::to_string(id);
    ++i;
  }
  return out;
}

} // namespace

result<void> part_transactions::recover(std::int64_t id, newer_output newer) {
  // Instance i looks after the files of every old instance j with j % parallelism == i.
  auto mine = [&](int j) { return j % parallelism_ == instance_; };
  using key = std::pair<int, std::int64_t>; // writer instance, checkpoint
  std::map<key, fs::path> pending, visible, listed;
  std::vector<fs::path> in_progress;
  std::error_code ec;
  for (fs::directory_iterator it{dir_, ec}; !ec && it != fs::directory_iterator{}; it.increment(ec)) {
    const auto name = it->path().filename().string();
    int j = 0;
    std::int64_t pid = 0;
    if (name.starts_with(".")) {
      if (parse_part(name.substr(1), prefix_, ".pending", j, pid)) {
        if (mine(j))
          pending[{j, pid}] = it->path();
        continue;
      }
      const auto in_progress_prefix = "." + prefix_ + "-";
      if (name.starts_with(in_progress_prefix) && name.ends_with(".inprogress")) {
        try {
          if (mine(std::stoi(name.substr(in_progress_prefix.size()))))
            in_progress.push_back(it->path());
        } catch (const std::exception&) {
        }
      }
    } else if (parse_part(name, prefix_, extension_, j, pid) && mine(j)) {
      visible[{j, pid}] = it->path();
    }
  }
  if (ec)
    return make_error(error_code::io_error,
                      "file sink: cannot list '" + dir_.string() + "': " + ec.message());
  auto entries = list_manifest(dir_, prefix_);
  if (!entries)
    return std::move(entries).error();
  for (auto& e : *entries)
    if (mine(e.instance))
      listed[{e.instance, e.checkpoint}] = e.entry;

  // Output committed after the restored checkpoint: listed, or renamed into place by a
  // commit that crashed before listing it.
  std::set<key> ahead;
  for (auto* m : {&visible, &listed})
    for (auto& [k, path] : *m)
      if (k.second > id)
        ahead.insert(k);
  if (!ahead.empty()) {
    std::set<std::int64_t> ids;
    for (auto& k : ahead)
      ids.insert(k.second);
    if (newer == newer_output::fail) {
      const auto from =
        id < 0 ? std::string{"without a checkpoint (none is usable, or the checkpoint directory "
                             "is another one); replaying from the start"}
               : "from checkpoint " + std::to_string(id) +
                   ", the latest usable one, not one it was asked for (the newer checkpoints "
                   "are missing or unusable); replaying from there";
      const auto how =
        id < 0 ? std::string{"set file_sink_options::roll_back_on_fallback"}
               : "restore checkpoint " + std::to_string(id) +
                   " explicitly (checkpoint_options::restore_from = " + std::to_string(id) +
                   ") or set file_sink_options::roll_back_on_fallback";
      return make_error(error_code::restore_conflict,
                        "file sink '" + sink_name_ + "': '" + dir_.string() +
                          "' holds output committed for checkpoint" +
                          (ids.size() > 1 ? "s " : " ") + id_list(ids) + ", but the job starts " +
                          from + " would commit that output again. To roll it back and write it "
                          "again once, " + how + "; to keep it, move the directory aside");
    }
    // Unlisted first: a reader that follows the manifest never sees a listed file vanish.
    for (auto& k : ahead)
      if (auto it = listed.find(k); it != listed.end())
        if (auto r = io_->remove(it->second); !r)
          return r;
    if (auto r = io_->sync_directory(manifest_path(dir_)); !r)
      return r;
    for (auto& k : ahead) {
      if (auto it = visible.find(k); it != visible.end())
        if (auto r = io_->remove(it->second); !r)
          return r;
      visible.erase(k);
      listed.erase(k);
    }
    auto& log = logging::get();
    const auto level = newer == newer_output::replace ? spdlog::level::info : spdlog::level::warn;
    log.log(level,
            "file sink '{}' (instance {}): rolled back the output of checkpoint{} {} in '{}': "
            "the run starts from {}",
            sink_name_, instance_, ids.size() > 1 ? "s" : "", id_list(ids), dir_.string(),
            id < 0 ? std::string{"no checkpoint"} : "checkpoint " + std::to_string(id));
  }

  bool changed = !ahead.empty();
  for (auto& [k, path] : pending) {
    if (k.second <= id) { // pre-committed for a completed checkpoint: commit (idempotent)
      if (auto r = io_->rename(path, dir_ / visible_name(k.first, k.second)); !r)
        return r;
      visible[k] = dir_ / visible_name(k.first, k.second);
    } else if (auto r = io_->remove(path); !r) { // after the restored checkpoint: written again
      return r;
    }
    changed = true;
  }
  for (auto& path : in_progress) {
    if (auto r = io_->remove(path); !r)
      return r;
    changed = true;
  }
  if (changed)
    if (auto r = io_->sync_directory(dir_); !r)
      return r;

  // Committed up to the restored checkpoint but not (yet) listed: finish the commit.
  bool listed_any = false;
  for (auto& [k, path] : visible) {
    if (listed.count(k))
      continue;
    if (auto r = write_manifest_entry(*io_, dir_, prefix_, k.first, k.second, path); !r)
      return r;
    listed_any = true;
  }
  return listed_any ? io_->sync_directory(manifest_path(dir_)) : result<void>{};
}

} // namespace sluice::sinks::detail
