#include "sluice/checkpoint/durable_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <iterator>

namespace sluice::durable_file {

namespace {

std::string errno_text() { return std::strerror(errno); }

} // namespace

result<void> sync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return make_error(error_code::io_error, "cannot open directory " + dir.string() + ": " + errno_text());
  const bool synced = ::fsync(fd) == 0;
  const auto why = errno_text();
  ::close(fd);
  if (!synced)
    return make_error(error_code::io_error, "cannot sync directory " + dir.string() + ": " + why);
  return {};
}

result<void> write_durable(const std::filesystem::path& path, const std::vector<std::string_view>& parts) {
  const auto what = "cannot write checkpoint file " + path.string() + ": ";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    return make_error(error_code::io_error, what + errno_text());
  for (auto bytes : parts) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      const auto n = ::write(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        const auto why = errno_text();
        ::close(fd);
        return make_error(error_code::io_error, what + why);
      }
      done += static_cast<std::size_t>(n);
    }
  }
  if (::fdatasync(fd) != 0) {
    const auto why = errno_text();
    ::close(fd);
    return make_error(error_code::io_error, what + why);
  }
  if (::close(fd) != 0)
    return make_error(error_code::io_error, what + errno_text());
  if (auto synced = sync_directory(path.parent_path()); !synced)
    return make_error(error_code::io_error, what + synced.error().message);
  return {};
}

result<std::string> read_range(const std::filesystem::path& path, std::uint64_t offset,
                               std::uint64_t length) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return make_error(error_code::io_error, "cannot open checkpoint file " + path.string() + ": " +
                                              errno_text());
  // Checked before allocating: a damaged record may name any length.
  struct stat st {};
  if (::fstat(fd, &st) != 0 || static_cast<std::uint64_t>(st.st_size) < offset ||
      static_cast<std::uint64_t>(st.st_size) - offset < length) {
    ::close(fd);
    return make_error(error_code::io_error, "cannot read checkpoint file " + path.string() +
                                              ": file too short (truncated)");
  }
  std::string out(length, '\0');
  std::size_t done = 0;
  while (done < length) {
    const auto n = ::pread(fd, out.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      const auto why = n == 0 ? std::string{"file too short (truncated)"} : errno_text();
      ::close(fd);
      return make_error(error_code::io_error, "cannot read checkpoint file " + path.string() + ": " + why);
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return out;
}

std::optional<std::int64_t> read_marker(const std::filesystem::path& path, std::string& problem) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    return std::nullopt;
  std::ifstream in{path, std::ios::binary};
  std::string text{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
  if (!text.empty() && text.back() == '\n')
    text.pop_back();
  std::int64_t id = -1;
  const auto [end, ec2] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (text.empty() || ec2 != std::errc{} || end != text.data() + text.size() || id < 0) {
    problem = path.string() + " does not hold a checkpoint id; it is ignored";
    return std::nullopt;
  }
  return id;
}

result<void> write_marker(const std::filesystem::path& path, std::int64_t id, bool sync) {
  const auto tmp = path.parent_path() / ("." + path.filename().string() + ".tmp");
  std::error_code ec;
  std::filesystem::remove(tmp, ec);
  const auto text = std::to_string(id) + "\n";
  if (sync) {
    if (auto ok = write_durable(tmp, {text}); !ok)
      return ok;
  } else {
    std::ofstream out{tmp, std::ios::binary | std::ios::trunc};
    out << text;
    out.close();
    if (!out)
      return make_error(error_code::io_error, "cannot write " + tmp.string());
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec)
    return make_error(error_code::io_error, "cannot replace " + path.string() + ": " + ec.message());
  if (sync)
    return sync_directory(path.parent_path());
  return {};
}

} // namespace sluice::durable_file
