#pragma once
/// A progress log: each progress report as one JSON line in a file (`--progress FILE`),
/// written by a listener, flushed per line so that `tail -f` and a crash lose nothing
/// already reported.
#include "sluice/core/error.hpp"
#include "sluice/core/progress.hpp"

#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>

namespace sluice::monitor {

class progress_log final : public query_listener {
public:
  /// Opens (creates) `path`; `append` keeps earlier lines (a restarted job continues its
  /// log). Fails naming the path when it cannot be written.
  static result<std::shared_ptr<progress_log>> open(const std::filesystem::path& path,
                                                    bool append = false);

  void on_progress(const query_progress& p) override;

  /// The first write error, if any (the job goes on; the log is not worth failing it).
  std::optional<error> problem() const;

private:
  explicit progress_log(std::filesystem::path path) : path_(std::move(path)) {}
  std::filesystem::path path_;
  std::ofstream out_;
  mutable std::mutex mtx_;
  std::optional<error> problem_;
};

} // namespace sluice::monitor
