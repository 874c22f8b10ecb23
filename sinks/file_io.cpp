// The POSIX file operations of the file sink.
#include "sluice/sinks/file_io.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <system_error>
#include <utility>

namespace sluice::sinks {

namespace {

namespace fs = std::filesystem;

error os_error(const std::string& what, const fs::path& path, int err) {
  return make_error(error_code::io_error, "file sink: cannot " + what + " '" + path.string() +
                                            "': " + std::generic_category().message(err));
}

class posix_file final : public writable_file {
public:
  posix_file(int fd, fs::path path) : fd_(fd), path_(std::move(path)) {}
  ~posix_file() override {
    if (fd_ >= 0)
      ::close(fd_);
  }

  result<void> append(std::string_view bytes) override {
    if (fd_ < 0)
      return make_error(error_code::io_error, "file sink: '" + path_.string() + "' is not open");
    while (!bytes.empty()) {
      const auto n = ::write(fd_, bytes.data(), bytes.size());
      if (n < 0) {
        if (errno == EINTR)
          continue;
        return os_error("write", path_, errno);
      }
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return {};
  }

  result<void> sync() override {
    if (fd_ < 0)
      return make_error(error_code::io_error, "file sink: '" + path_.string() + "' is not open");
    if (::fsync(fd_) != 0)
      return os_error("sync", path_, errno);
    return {};
  }

  result<void> close() override {
    if (fd_ < 0)
      return {};
    const int fd = std::exchange(fd_, -1);
    // Linux closes the descriptor even when close() fails (EINTR included): never retry.
    if (::close(fd) != 0)
      return os_error("close", path_, errno);
    return {};
  }

private:
  int fd_;
  fs::path path_;
};

class posix_io final : public file_io {
public:
  result<std::unique_ptr<writable_file>> create(const fs::path& path) override {
    int fd;
    do
      fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
      return os_error("open", path, errno);
    return std::unique_ptr<writable_file>{std::make_unique<posix_file>(fd, path)};
  }

  result<void> rename(const fs::path& from, const fs::path& to) override {
    if (std::rename(from.c_str(), to.c_str()) != 0) {
      const int err = errno;
      return make_error(error_code::io_error, "file sink: cannot rename '" + from.string() +
                                                "' to '" + to.string() +
                                                "': " + std::generic_category().message(err));
    }
    return {};
  }

  result<void> remove(const fs::path& path) override {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      return os_error("remove", path, errno);
    return {};
  }

  result<void> sync_directory(const fs::path& dir) override {
    int fd;
    do
      fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
      return os_error("open the directory", dir, errno);
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0)
      return os_error("sync the directory", dir, err);
    return {};
  }
};

} // namespace

std::shared_ptr<file_io> posix_file_io() {
  static const auto io = std::make_shared<posix_io>();
  return io;
}

} // namespace sluice::sinks
