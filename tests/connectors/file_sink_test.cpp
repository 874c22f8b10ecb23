// The exactly-once file sink on its own, outside any job: the order of its file operations
// (what is durable when a checkpoint is acknowledged) and its manifest of committed files.
#include <boost/test/unit_test.hpp>

#include "tests/common/temp_dir.hpp"

#include "core/codec/json.hpp"
#include "sinks/file.hpp"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

using namespace sluice;
namespace fs = std::filesystem;

namespace file_sink_records {

struct row {
  std::int64_t id = 0;
  std::string text;
  friend bool operator==(const row&, const row&) = default;
  friend auto operator<=>(const row&, const row&) = default;
  friend std::ostream& operator<<(std::ostream& os, const row& r) {
    return os << "row{" << r.id << ", " << r.text << "}";
  }
};

template <class Inspector>
bool inspect(Inspector& f, row& x) {
  return f.object("row").fields(f.field("id", x.id), f.field("text", x.text));
}

} // namespace file_sink_records

using file_sink_records::row;

namespace {

using sluice::test::temp_dir;

std::string error_text(const auto& r) { return r ? std::string{} : r.error().to_string(); }

/// The file operations as they happen, as lines such as `sync .part-0.inprogress` or
/// `rename .part-0.inprogress .part-0-1.pending` (file names only; directories as
/// `sync_dir out`), with marks the test adds between calls. Passes every call on to the
/// real file system.
class recording_io final : public sinks::file_io {
public:
  explicit recording_io(fs::path root) : root_(std::move(root)) {}

  result<std::unique_ptr<sinks::writable_file>> create(const fs::path& path) override {
    record("create " + name(path));
    auto f = real_->create(path);
    if (!f)
      return f;
    return std::unique_ptr<sinks::writable_file>{
      std::make_unique<recording_file>(*this, path, std::move(*f))};
  }
  result<void> rename(const fs::path& from, const fs::path& to) override {
    record("rename " + name(from) + " " + name(to));
    return real_->rename(from, to);
  }
  result<void> remove(const fs::path& path) override {
    record("remove " + name(path));
    return real_->remove(path);
  }
  result<void> sync_directory(const fs::path& dir) override {
    record("sync_dir " + relative(dir));
    return real_->sync_directory(dir);
  }

  void mark(const std::string& text) { record("-- " + text); }
  std::vector<std::string> calls() const {
    std::lock_guard guard{mtx_};
    return calls_;
  }
  void clear() {
    std::lock_guard guard{mtx_};
    calls_.clear();
  }

private:
  class recording_file final : public sinks::writable_file {
  public:
    recording_file(recording_io& io, fs::path path, std::unique_ptr<sinks::writable_file> real)
      : io_(io), path_(std::move(path)), real_(std::move(real)) {}
    result<void> append(std::string_view bytes) override {
      io_.record("append " + name(path_));
      return real_->append(bytes);
    }
    result<void> sync() override {
      io_.record("sync " + name(path_));
      return real_->sync();
    }
    result<void> close() override {
      io_.record("close " + name(path_));
      return real_->close();
    }

  private:
    recording_io& io_;
    fs::path path_;
    std::unique_ptr<sinks::writable_file> real_;
  };

  static std::string name(const fs::path& p) { return p.filename().string(); }
  std::string relative(const fs::path& p) const { return p.lexically_relative(root_).string(); }
  void record(std::string line) {
    std::lock_guard guard{mtx_};
    calls_.push_back(std::move(line));
  }

  fs::path root_;
  std::shared_ptr<sinks::file_io> real_ = sinks::posix_file_io();
  mutable std::mutex mtx_;
  std::vector<std::string> calls_;
};

std::string lines(const std::vector<std::string>& calls) {
  std::string out;
  for (auto& c : calls)
    out += "\n  " + c;
  return out;
}

/// The index of the first call equal to `call` at or after `from`; nullopt if none.
std::optional<std::size_t> find(const std::vector<std::string>& calls, const std::string& call,
                                std::size_t from = 0) {
  for (auto i = from; i < calls.size(); ++i)
    if (calls[i] == call)
      return i;
  return std::nullopt;
}

/// Every rename and removal in `calls` is followed by a sync of its directory before the
/// next mark (before the sink's call returns); returns the first that is not, or "".
std::string unsynced_directory_change(const std::vector<std::string>& calls,
                                      const std::string& dir) {
  for (std::size_t i = 0; i < calls.size(); ++i) {
    if (!calls[i].starts_with("rename ") && !calls[i].starts_with("remove "))
      continue;
    bool synced = false;
    for (auto k = i + 1; k < calls.size() && !calls[k].starts_with("-- "); ++k)
      if (calls[k] == "sync_dir " + dir) {
        synced = true;
        break;
      }
    if (!synced)
      return calls[i];
  }
  return {};
}

/// No-op snapshot pieces: the file sink keeps its state on disk.
struct null_writer final : snapshot_writer {
  result<void> put(const std::string&, std::string) override { return {}; }
};
struct null_reader final : snapshot_reader {
  result<std::optional<std::string>> get(const std::string&) override {
    return std::optional<std::string>{};
  }
};

/// One instance of the transactional file sink driven as its task drives it with
/// checkpoints: open, restore, then batches, snapshots and commits.
struct driven_sink {
  sluice::sink<row>* sink = nullptr;
  std::unique_ptr<sink_operator<row>> op;

  driven_sink(const sinks::file<row>& d, std::int64_t restored = -1, int instance = 0,
              int parallelism = 1) {
    operator_info info;
    info.name = "out";
    info.instance = instance;
    info.parallelism = parallelism;
    info.checkpoints = true;
    info.restored = restored;
    const sink_context ctx{info.name, instance, parallelism, std::nullopt, true};
    auto s = d.create(ctx);
    sink = s.get();
    op = std::make_unique<sink_operator<row>>(std::move(s));
    open_result = op->open(info);
    if (open_result) {
      null_reader r;
      open_result = op->restore(r);
    }
  }
  result<void> write(std::vector<row> rows) { return sink->write(rows); }
  result<void> snapshot(std::int64_t id) {
    null_writer w;
    return op->snapshot(id, w);
  }
  result<void> commit(std::int64_t id) { return op->notify_checkpoint_complete(id); }
  result<void> open_result;
};

std::vector<row> rows(std::int64_t first, std::int64_t count) {
  std::vector<row> out;
  for (auto i = first; i < first + count; ++i)
    out.push_back({i, "r" + std::to_string(i)});
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(file_sink_durability)

BOOST_AUTO_TEST_CASE(a_part_file_is_synced_before_its_snapshot_returns_and_every_rename_is_synced) {
  temp_dir dir;
  const auto out = dir.path / "out";
  auto io = std::make_shared<recording_io>(dir.path);
  const sinks::file<row> d{{.path = out, .transactional = true, .io = io}};
  driven_sink s{d};
  BOOST_REQUIRE_MESSAGE(s.open_result, error_text(s.open_result));

  io->clear();
  BOOST_REQUIRE(s.write(rows(0, 3)));
  BOOST_REQUIRE(s.write(rows(3, 2)));
  io->mark("snapshot 1");
  BOOST_REQUIRE(s.snapshot(1));
  io->mark("snapshot 1 returned");
  BOOST_REQUIRE(s.commit(1));
  io->mark("commit 1 returned");
  const auto calls = io->calls();
  BOOST_TEST_MESSAGE("calls:" << lines(calls));

  // The checkpoint may be acknowledged once the snapshot returns: by then the part file's
  // bytes and its pending name are durable.
  const auto snap = find(calls, "-- snapshot 1");
  const auto snap_done = find(calls, "-- snapshot 1 returned");
  BOOST_REQUIRE(snap && snap_done);
  const auto last_append = [&] {
    std::optional<std::size_t> at;
    for (std::size_t i = 0; i < *snap_done; ++i)
      if (calls[i] == "append .part-0.inprogress")
        at = i;
    return at;
  }();
  BOOST_REQUIRE_MESSAGE(last_append, "the rows were never written:" << lines(calls));
  const auto synced = find(calls, "sync .part-0.inprogress", *last_append);
  BOOST_TEST((synced && *synced < *snap_done),
             "the part file is synced after its last write and before the snapshot returns:"
               << lines(calls));
  const auto sealed = find(calls, "rename .part-0.inprogress .part-0-1.pending");
  BOOST_TEST((sealed && synced && *synced < *sealed && *sealed < *snap_done),
             "synced, then sealed as pending, within the snapshot:" << lines(calls));
  const auto sealed_synced = sealed ? find(calls, "sync_dir out", *sealed) : std::nullopt;
  BOOST_TEST((sealed_synced && *sealed_synced < *snap_done),
             "the pending name is durable before the snapshot returns:" << lines(calls));

  // The commit's rename too is durable before the commit returns, and so is every other
  // change of the directory.
  BOOST_TEST(find(calls, "rename .part-0-1.pending part-0-1.jsonl").has_value(), lines(calls));
  const auto unsynced = unsynced_directory_change(calls, "out");
  BOOST_TEST(unsynced.empty(), "not followed by a directory sync: " << unsynced << lines(calls));
  BOOST_TEST(fs::exists(out / "part-0-1.jsonl"));
}

BOOST_AUTO_TEST_CASE(recovery_syncs_the_directory_after_its_renames_and_removals) {
  temp_dir dir;
  const auto out = dir.path / "out";
  auto io = std::make_shared<recording_io>(dir.path);
  const sinks::file<row> d{{.path = out, .transactional = true, .io = io}};
  {
    driven_sink s{d};
    BOOST_REQUIRE(s.open_result);
    BOOST_REQUIRE(s.write(rows(0, 3)));
    BOOST_REQUIRE(s.snapshot(1)); // pending for 1, never committed: the crash came first
    BOOST_REQUIRE(s.write(rows(3, 3)));
    BOOST_REQUIRE(s.snapshot(2)); // pending for 2, which never completed
    BOOST_REQUIRE(s.write(rows(6, 3))); // in progress
    BOOST_REQUIRE(s.sink->flush());
  }
  io->clear();
  io->mark("restore 1");
  driven_sink again{d, 1};
  BOOST_REQUIRE_MESSAGE(again.open_result, error_text(again.open_result));
  io->mark("restore 1 returned");
  const auto calls = io->calls();
  BOOST_TEST_MESSAGE("calls:" << lines(calls));
  BOOST_TEST(find(calls, "rename .part-0-1.pending part-0-1.jsonl").has_value(), lines(calls));
  BOOST_TEST(find(calls, "remove .part-0-2.pending").has_value(), lines(calls));
  BOOST_TEST(find(calls, "remove .part-0.inprogress").has_value(), lines(calls));
  const auto unsynced = unsynced_directory_change(calls, "out");
  BOOST_TEST(unsynced.empty(), "not followed by a directory sync: " << unsynced << lines(calls));
}

BOOST_AUTO_TEST_SUITE_END()
