#pragma once
/// The offset log of micro-batch mode (Spark's `offsets/` directory): before batch N runs,
/// where each source instance's input for it ends, written durably. A run restarted after a
/// crash during batch N reads batch N again to exactly those ends, so the batch holds the
/// same rows as before, whatever arrived meanwhile (a file dropped into a watched directory,
/// records a rate-limited generator has made since, messages produced to Kafka). Without it
/// a sink that has seen batch N's rows (foreach_batch) would see other rows under the same
/// batch id.
///
/// One small JSON file per batch under `<checkpoint dir>/offsets/`, written to a temporary
/// file, synced, renamed and the directory synced: a crash leaves either the whole plan or
/// none.
#include "sluice/core/error.hpp"

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

namespace sluice {

/// Where every source instance's input of one micro-batch ends.
struct batch_plan {
  std::int64_t batch = 0;
  /// By "<source node>/<instance>": the end as the source wrote it (`trigger_plan::end`).
  /// Sources that cannot replay a batch exactly are absent.
  std::map<std::string, std::string> ends;
  /// The parallelism of each source node the plan was made at ("<source node>" -> p): a
  /// plan made at another parallelism cannot be replayed instance by instance.
  std::map<std::string, int> parallelism;
  friend bool operator==(const batch_plan&, const batch_plan&) = default;
};

class offset_log {
public:
  /// The log under `checkpoint_dir` (its `offsets/` folder is made when first written).
  explicit offset_log(std::filesystem::path checkpoint_dir);

  /// Writes batch `plan.batch`'s plan durably, replacing one written before. Fails with
  /// `io_error` naming the file.
  [[nodiscard]] result<void> write(const batch_plan& plan) const;
  /// Batch `batch`'s plan, if one was written. A file that does not read is an `io_error`
  /// naming it (never an empty plan).
  [[nodiscard]] result<std::optional<batch_plan>> read(std::int64_t batch) const;
  /// Removes the plans of batches before `batch` (Spark keeps the last 100,
  /// `minBatchesToRetain`). Fails with `io_error` naming the file it could not remove.
  [[nodiscard]] result<void> purge_before(std::int64_t batch) const;

  const std::filesystem::path& dir() const noexcept { return dir_; }

private:
  std::filesystem::path file_of(std::int64_t batch) const;
  std::filesystem::path dir_;
};

} // namespace sluice
