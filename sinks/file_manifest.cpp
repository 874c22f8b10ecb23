// The manifest of the exactly-once file sink: its entries and how readers follow it.
#include "sluice/sinks/file_manifest.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <sstream>
#include <system_error>
#include <tuple>

namespace sluice::sinks {

namespace fs = std::filesystem;

namespace {

constexpr int manifest_version = 1;
constexpr std::string_view entry_suffix = ".json";

error bad_entry(const fs::path& entry, const std::string& why) {
  return make_error(error_code::io_error, "file sink manifest: entry '" + entry.string() +
                                            "' is corrupt: " + why);
}

/// `<prefix>-<instance>-<checkpoint>.json` -> instance, checkpoint.
bool parse_entry_name(const std::string& name, const std::string& prefix, int& instance,
                      std::int64_t& checkpoint) {
  if (!name.starts_with(prefix + "-") || !name.ends_with(entry_suffix))
    return false;
  const auto body =
    name.substr(prefix.size() + 1, name.size() - prefix.size() - 1 - entry_suffix.size());
  const auto dash = body.find('-');
  if (dash == std::string::npos || dash == 0 || dash + 1 == body.size())
    return false;
  const auto digits = [](std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  const auto a = body.substr(0, dash), b = body.substr(dash + 1);
  if (!digits(a) || !digits(b) || a.size() > 9 || b.size() > 18)
    return false;
  instance = std::stoi(a);
  checkpoint = std::stoll(b);
  return true;
}

result<committed_file> read_entry(const fs::path& dir, const fs::path& entry) {
  std::ifstream in{entry, std::ios::binary};
  if (!in)
    return make_error(error_code::io_error,
                      "file sink manifest: cannot read entry '" + entry.string() + "'");
  std::ostringstream text;
  text << in.rdbuf();
  const auto j = nlohmann::json::parse(text.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return bad_entry(entry, "not a JSON object");
  try {
    if (j.at("version").get<int>() != manifest_version)
      return bad_entry(entry, "unknown version " + j.at("version").dump());
    committed_file f;
    const auto name = j.at("file").get<std::string>();
    // A plain name in `dir`: a damaged or hostile entry must not point anywhere else.
    if (name.empty() || name.starts_with(".") || name.find('/') != std::string::npos)
      return bad_entry(entry, "file '" + name + "' is not a file name of the directory");
    f.path = dir / name;
    f.checkpoint = j.at("checkpoint").get<std::int64_t>();
    f.prefix = j.at("prefix").get<std::string>();
    f.instance = j.at("instance").get<int>();
    f.size = j.at("size").get<std::uint64_t>();
    return f;
  } catch (const nlohmann::json::exception& e) {
    return bad_entry(entry, e.what());
  }
}

} // namespace

result<std::vector<committed_file>> read_committed_files(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return make_error(error_code::io_error,
                      "'" + dir.string() + "' is not a directory" +
                        (ec ? ": " + ec.message() : std::string{}));
  const auto manifest = detail::manifest_path(dir);
  std::vector<committed_file> out;
  auto listing_failed = [&](const fs::path& p) {
    return make_error(error_code::io_error, "cannot list '" + p.string() + "': " + ec.message());
  };
  if (!fs::is_directory(manifest, ec)) {
    // No manifest: Spark's rule, every visible regular file is output.
    for (fs::directory_iterator it{dir, ec}; !ec && it != fs::directory_iterator{}; it.increment(ec)) {
      const auto name = it->path().filename().string();
      std::error_code type_ec;
      if (name.starts_with(".") || name.starts_with("_") || !it->is_regular_file(type_ec))
        continue;
      out.push_back({it->path(), -1, {}, 0, static_cast<std::uint64_t>(it->file_size(type_ec))});
    }
    if (ec)
      return listing_failed(dir);
    std::sort(out.begin(), out.end(),
              [](const committed_file& a, const committed_file& b) { return a.path < b.path; });
    return out;
  }
  for (fs::directory_iterator it{manifest, ec}; !ec && it != fs::directory_iterator{};
       it.increment(ec)) {
    const auto name = it->path().filename().string();
    if (name.starts_with(".") || !name.ends_with(entry_suffix)) // temporary entries
      continue;
    auto f = read_entry(dir, it->path());
    if (!f)
      return std::move(f).error();
    std::error_code size_ec;
    const auto size = fs::file_size(f->path, size_ec);
    if (size_ec)
      return make_error(error_code::io_error, "file sink manifest: '" + f->path.string() +
                                                "', listed in '" + it->path().string() +
                                                "', cannot be read: " + size_ec.message());
    if (size != f->size)
      return make_error(error_code::io_error,
                        "file sink manifest: '" + f->path.string() + "' has " +
                          std::to_string(size) + " bytes, its entry '" + it->path().string() +
                          "' says " + std::to_string(f->size));
    out.push_back(std::move(*f));
  }
  if (ec)
    return listing_failed(manifest);
  std::sort(out.begin(), out.end(), [](const committed_file& a, const committed_file& b) {
    return std::tie(a.checkpoint, a.prefix, a.instance, a.path) <
           std::tie(b.checkpoint, b.prefix, b.instance, b.path);
  });
  return out;
}

namespace detail {

fs::path manifest_path(const fs::path& dir) { return dir / std::string{manifest_directory}; }

result<std::vector<manifest_entry>> list_manifest(const fs::path& dir, const std::string& prefix) {
  const auto manifest = manifest_path(dir);
  std::vector<manifest_entry> out;
  std::error_code ec;
  for (fs::directory_iterator it{manifest, ec}; !ec && it != fs::directory_iterator{};
       it.increment(ec)) {
    manifest_entry e;
    if (parse_entry_name(it->path().filename().string(), prefix, e.instance, e.checkpoint)) {
      e.entry = it->path();
      out.push_back(std::move(e));
    }
  }
  if (ec)
    return make_error(error_code::io_error,
                      "file sink: cannot list '" + manifest.string() + "': " + ec.message());
  return out;
}

result<void> write_manifest_entry(file_io& io, const fs::path& dir, const std::string& prefix,
                                  int instance, std::int64_t checkpoint, const fs::path& file) {
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  if (ec)
    return make_error(error_code::io_error,
                      "file sink: cannot read the size of '" + file.string() + "': " + ec.message());
  const nlohmann::json j{{"version", manifest_version},
                         {"checkpoint", checkpoint},
                         {"prefix", prefix},
                         {"instance", instance},
                         {"file", file.filename().string()},
                         {"size", size}};
  const auto name = prefix + "-" + std::to_string(instance) + "-" + std::to_string(checkpoint) +
                    std::string{entry_suffix};
  const auto manifest = manifest_path(dir);
  const auto tmp = manifest / ("." + name + ".tmp");
  auto f = io.create(tmp);
  if (!f)
    return std::move(f).error();
  auto& out = **f;
  if (auto r = out.append(j.dump() + "\n"); !r)
    return r;
  if (auto r = out.sync(); !r)
    return r;
  if (auto r = out.close(); !r)
    return r;
  return io.rename(tmp, manifest / name);
}

} // namespace detail

} // namespace sluice::sinks
