#include "sluice/monitor/progress_log.hpp"

#include "sluice/core/log.hpp"

namespace sluice::monitor {

result<std::shared_ptr<progress_log>> progress_log::open(const std::filesystem::path& path,
                                                         bool append) {
  std::shared_ptr<progress_log> log{new progress_log{path}};
  log->out_.open(path, append ? std::ios::app : std::ios::trunc);
  if (!log->out_)
    return make_error(error_code::io_error,
                      "progress log: cannot write " + path.string());
  return log;
}

void progress_log::on_progress(const query_progress& p) {
  std::lock_guard guard{mtx_};
  out_ << p.to_json() << '\n' << std::flush;
  if (!out_ && !problem_) {
    problem_ = make_error(error_code::io_error, "progress log: writing " + path_.string() +
                                                  " failed (disk full?)");
    logging::get().error("{}", problem_->message);
  }
}

std::optional<error> progress_log::problem() const {
  std::lock_guard guard{mtx_};
  return problem_;
}

} // namespace sluice::monitor
