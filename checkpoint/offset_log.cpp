#include "sluice/checkpoint/offset_log.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace sluice {

namespace {

namespace fs = std::filesystem;

constexpr int format_version = 1;

error io_failure(const fs::path& file, const std::string& what) {
  return make_error(error_code::io_error, "offset log " + file.string() + ": " + what);
}

/// fsync of a file or directory by path; the errno text on failure.
std::optional<std::string> sync_path(const fs::path& p, bool directory) {
  const int fd = ::open(p.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0)
    return std::string{std::strerror(errno)};
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0)
    return std::string{std::strerror(err)};
  return std::nullopt;
}

} // namespace

offset_log::offset_log(fs::path checkpoint_dir) : dir_(std::move(checkpoint_dir) / "offsets") {}

fs::path offset_log::file_of(std::int64_t batch) const { return dir_ / std::to_string(batch); }

result<void> offset_log::write(const batch_plan& plan) const {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec)
    return io_failure(dir_, "cannot create the directory: " + ec.message());
  nlohmann::json j;
  j["version"] = format_version;
  j["batch"] = plan.batch;
  j["ends"] = plan.ends;
  j["parallelism"] = plan.parallelism;
  const auto target = file_of(plan.batch);
  auto temp = target;
  temp += ".tmp";
  {
    std::ofstream out{temp, std::ios::trunc};
    out << j.dump() << '\n';
    out.flush();
    if (!out)
      return io_failure(temp, "cannot write");
  }
  if (auto err = sync_path(temp, false))
    return io_failure(temp, "cannot sync: " + *err);
  fs::rename(temp, target, ec);
  if (ec)
    return io_failure(target, "cannot rename into place: " + ec.message());
  if (auto err = sync_path(dir_, true))
    return io_failure(dir_, "cannot sync the directory: " + *err);
  return {};
}

result<std::optional<batch_plan>> offset_log::read(std::int64_t batch) const {
  const auto file = file_of(batch);
  std::error_code ec;
  if (!fs::exists(file, ec))
    return std::optional<batch_plan>{};
  std::ifstream in{file};
  std::stringstream text;
  text << in.rdbuf();
  if (!in && !in.eof())
    return io_failure(file, "cannot read");
  auto j = nlohmann::json::parse(text.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return io_failure(file, "not a JSON object (damaged)");
  try {
    if (j.at("version").get<int>() != format_version)
      return io_failure(file, "format version " + j.at("version").dump() + ", this build reads " +
                                std::to_string(format_version));
    batch_plan plan;
    plan.batch = j.at("batch").get<std::int64_t>();
    if (plan.batch != batch)
      return io_failure(file, "holds batch " + std::to_string(plan.batch));
    plan.ends = j.at("ends").get<std::map<std::string, std::string>>();
    plan.parallelism = j.at("parallelism").get<std::map<std::string, int>>();
    return std::optional<batch_plan>{std::move(plan)};
  } catch (const nlohmann::json::exception& e) {
    return io_failure(file, std::string{"damaged: "} + e.what());
  }
}

result<void> offset_log::purge_before(std::int64_t batch) const {
  std::error_code ec;
  if (!fs::exists(dir_, ec))
    return {};
  for (auto& entry : fs::directory_iterator{dir_, ec}) {
    const auto name = entry.path().filename().string();
    char* end = nullptr;
    const auto id = std::strtoll(name.c_str(), &end, 10);
    if (name.empty() || *end != '\0' || id >= batch)
      continue; // not a plan (a temporary file a crash left is replaced on the next write)
    fs::remove(entry.path(), ec);
    if (ec)
      return io_failure(entry.path(), "cannot remove: " + ec.message());
  }
  if (ec)
    return io_failure(dir_, "cannot list: " + ec.message());
  return {};
}

} // namespace sluice
