// The non-template halves of the connectors in sinks/: table rendering, console writes and
// part files.
#include "sinks/console.hpp"
#include "sinks/file.hpp"
#include "sinks/sink.hpp"

#include <algorithm>
#include <cerrno>
#include <system_error>

namespace sluice::sinks::detail {

namespace {

bool is_continuation(char c) noexcept { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

/// Characters (UTF-8 code points) in `s`.
std::size_t width(std::string_view s) noexcept {
  return static_cast<std::size_t>(
    std::count_if(s.begin(), s.end(), [](char c) { return !is_continuation(c); }));
}

/// `s` cut to `limit` characters, the last three replaced by `...` (as Spark's show()).
std::string truncated(const std::string& s, std::size_t limit) { return truncate_text(s, limit); }

} // namespace

std::string render_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows, std::size_t truncate) {
  const std::size_t columns = header.size();
  std::vector<std::vector<std::string>> cells;
  cells.reserve(rows.size() + 1);
  cells.push_back(header);
  for (const auto& row : rows) {
    auto& out = cells.emplace_back();
    out.reserve(columns);
    for (std::size_t c = 0; c < columns; ++c)
      out.push_back(c < row.size() ? truncated(row[c], truncate) : std::string{});
  }
  // Spark's minimum column width is 3, so a short header still gets a visible border.
  std::vector<std::size_t> widths(columns, 3);
  for (const auto& row : cells)
    for (std::size_t c = 0; c < columns; ++c)
      widths[c] = std::max(widths[c], width(row[c]));

  std::string border = "+";
  for (auto w : widths)
    border.append(w, '-').push_back('+');
  border.push_back('\n');

  std::string out = border;
  for (std::size_t r = 0; r < cells.size(); ++r) {
    out.push_back('|');
    for (std::size_t c = 0; c < columns; ++c) {
      out.append(widths[c] - width(cells[r][c]), ' ');
      out += cells[r][c];
      out.push_back('|');
    }
    out.push_back('\n');
    if (r == 0)
      out += border;
  }
  out += border;
  return out;
}

result<void> write_console(std::ostream& out, const std::string& text) {
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.flush();
  if (!out)
    return make_error(error_code::io_error, "console sink: writing to the output stream failed");
  return {};
}

result<void> part_file::open(const std::filesystem::path& directory, const std::string& name) {
  path_ = directory / name;
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  if (ec)
    return make_error(error_code::io_error, "file sink: cannot create directory '" +
                                              directory.string() + "': " + ec.message());
  out_.open(path_, std::ios::out | std::ios::trunc | std::ios::binary);
  if (!out_.is_open()) {
    const int err = errno;
    return make_error(error_code::io_error, "file sink: cannot open '" + path_.string() +
                                              "': " + std::generic_category().message(err));
  }
  return {};
}

result<void> part_file::write(const std::string& text) {
  if (!out_.is_open())
    return make_error(error_code::io_error, "file sink: '" + path_.string() + "' is not open");
  out_.write(text.data(), static_cast<std::streamsize>(text.size()));
  if (!out_)
    return make_error(error_code::io_error, "file sink: writing '" + path_.string() + "' failed");
  return {};
}

result<void> part_file::flush() {
  if (!out_.is_open())
    return {};
  out_.flush();
  if (!out_)
    return make_error(error_code::io_error, "file sink: flushing '" + path_.string() + "' failed");
  return {};
}

result<void> part_file::close() {
  if (!out_.is_open())
    return {};
  out_.close();
  if (!out_)
    return make_error(error_code::io_error, "file sink: closing '" + path_.string() + "' failed");
  return {};
}

namespace {

namespace fs = std::filesystem;

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

result<void> rename_file(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec)
    return make_error(error_code::io_error, "file sink: cannot rename '" + from.string() +
                                              "' to '" + to.string() + "': " + ec.message());
  return {};
}

} // namespace

std::string part_transactions::in_progress_name() const {
  return "." + prefix_ + "-" + std::to_string(instance_) + ".inprogress";
}

result<void> part_transactions::seal(std::int64_t id) {
  return rename_file(dir_ / in_progress_name(),
                     dir_ / ("." + prefix_ + "-" + std::to_string(instance_) + "-" +
                             std::to_string(id) + ".pending"));
}

result<void> part_transactions::commit(std::int64_t id) {
  std::error_code ec;
  for (fs::directory_iterator it{dir_, ec}; !ec && it != fs::directory_iterator{}; it.increment(ec)) {
    const auto name = it->path().filename().string();
    int instance = 0;
    std::int64_t pid = 0;
    if (!name.starts_with(".") || !parse_part(name.substr(1), prefix_, ".pending", instance, pid))
      continue;
    if (instance != instance_ || pid > id)
      continue;
    if (auto r = rename_file(it->path(), dir_ / (prefix_ + "-" + std::to_string(instance) + "-" +
                                                 std::to_string(pid) + ".jsonl"));
        !r)
      return r;
  }
  if (ec)
    return make_error(error_code::io_error,
                      "file sink: cannot list '" + dir_.string() + "': " + ec.message());
  return {};
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
  for (auto& path : entries) {
    const auto name = path.filename().string();
    if (!name.starts_with("."))
      continue;
    int j = 0;
    std::int64_t pid = 0;
    if (parse_part(name.substr(1), prefix_, ".pending", j, pid) && mine(j)) {
      if (pid <= id) { // pre-committed for a completed checkpoint: commit (idempotent)
        if (auto r = rename_file(path, dir_ / (prefix_ + "-" + std::to_string(j) + "-" +
                                               std::to_string(pid) + ".jsonl"));
            !r)
          return r;
      } else { // written after the restored checkpoint: it will be written again
        fs::remove(path, ec);
      }
      continue;
    }
    const auto in_progress_prefix = "." + prefix_ + "-";
    if (name.starts_with(in_progress_prefix) && name.ends_with(".inprogress")) {
      try {
        const int k = std::stoi(name.substr(in_progress_prefix.size()));
        if (mine(k))
          fs::remove(path, ec);
      } catch (const std::exception&) {
      }
    }
  }
  return {};
}

} // namespace sluice::sinks::detail
