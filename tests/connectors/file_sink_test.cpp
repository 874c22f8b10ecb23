// The exactly-once file sink on its own, outside any job: the order of its file operations
// (what is durable when a checkpoint is acknowledged) and its manifest of committed files.
#include <boost/test/unit_test.hpp>

#include "sluice/tests/common/temp_dir.hpp"

#include "sluice/core/codec/json.hpp"
#include "sluice/sinks/file.hpp"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
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

/// The file operations as they happen, as lines such as `sync .part-0.a0.inprogress` (a file's
/// name), `rename out/.part-0.a0.inprogress out/.part-0-1.pending` or `sync_dir out` (paths
/// relative to the test's directory), with marks the test adds between calls. Passes every
/// call on to the real file system.
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
    record("rename " + relative(from) + " " + relative(to));
    return real_->rename(from, to);
  }
  result<void> remove(const fs::path& path) override {
    record("remove " + relative(path));
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
std::string unsynced_directory_change(const std::vector<std::string>& calls) {
  for (std::size_t i = 0; i < calls.size(); ++i) {
    if (!calls[i].starts_with("rename ") && !calls[i].starts_with("remove "))
      continue;
    const auto path = calls[i].substr(7, calls[i].find(' ', 7) - 7);
    const auto dir = fs::path{path}.parent_path().string();
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
template <class T>
struct driven_sink {
  sluice::sink<T>* sink = nullptr;
  std::unique_ptr<sink_operator<T>> op;

  driven_sink(const sinks::file<T>& d, std::int64_t restored = -1, bool requested = false,
              int instance = 0, int parallelism = 1, int attempt = 0) {
    operator_info info;
    info.name = "out";
    info.instance = instance;
    info.parallelism = parallelism;
    info.checkpoints = true;
    info.restored = restored;
    info.restore_requested = requested;
    info.attempt = attempt;
    const sink_context ctx{info.name, instance, parallelism, std::nullopt, true, requested, attempt};
    auto s = d.create(ctx);
    sink = s.get();
    op = std::make_unique<sink_operator<T>>(std::move(s));
    open_result = op->open(info);
    if (open_result) {
      null_reader r;
      open_result = op->restore(r);
    }
  }
  result<void> write(std::vector<T> rows) { return sink->write(rows); }
  result<void> snapshot(std::int64_t id) {
    null_writer w;
    return op->snapshot(id, w);
  }
  result<void> commit(std::int64_t id) { return op->notify_checkpoint_complete(id); }
  result<void> open_result;
};

/// A file_io that fails the creation of files whose name contains `fail_on`, once armed.
class failing_io final : public sinks::file_io {
public:
  std::string fail_on;
  result<std::unique_ptr<sinks::writable_file>> create(const fs::path& path) override {
    if (!fail_on.empty() && path.filename().string().find(fail_on) != std::string::npos)
      return make_error(error_code::io_error, "injected: cannot create " + path.string());
    return real_->create(path);
  }
  result<void> rename(const fs::path& from, const fs::path& to) override {
    return real_->rename(from, to);
  }
  result<void> remove(const fs::path& path) override { return real_->remove(path); }
  result<void> sync_directory(const fs::path& dir) override { return real_->sync_directory(dir); }

private:
  std::shared_ptr<sinks::file_io> real_ = sinks::posix_file_io();
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
      if (calls[i] == "append .part-0.a0.inprogress")
        at = i;
    return at;
  }();
  BOOST_REQUIRE_MESSAGE(last_append, "the rows were never written:" << lines(calls));
  const auto synced = find(calls, "sync .part-0.a0.inprogress", *last_append);
  BOOST_TEST((synced && *synced < *snap_done),
             "the part file is synced after its last write and before the snapshot returns:"
               << lines(calls));
  const auto sealed = find(calls, "rename out/.part-0.a0.inprogress out/.part-0-1.pending");
  BOOST_TEST((sealed && synced && *synced < *sealed && *sealed < *snap_done),
             "synced, then sealed as pending, within the snapshot:" << lines(calls));
  const auto sealed_synced = sealed ? find(calls, "sync_dir out", *sealed) : std::nullopt;
  BOOST_TEST((sealed_synced && *sealed_synced < *snap_done),
             "the pending name is durable before the snapshot returns:" << lines(calls));

  // The commit's rename too is durable before the commit returns, and so is every other
  // change of the directory.
  BOOST_TEST(find(calls, "rename out/.part-0-1.pending out/part-0-1.jsonl").has_value(), lines(calls));
  const auto unsynced = unsynced_directory_change(calls);
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
  BOOST_TEST(find(calls, "rename out/.part-0-1.pending out/part-0-1.jsonl").has_value(), lines(calls));
  BOOST_TEST(find(calls, "remove out/.part-0-2.pending").has_value(), lines(calls));
  BOOST_TEST(find(calls, "remove out/.part-0.a0.inprogress").has_value(), lines(calls));
  const auto unsynced = unsynced_directory_change(calls);
  BOOST_TEST(unsynced.empty(), "not followed by a directory sync: " << unsynced << lines(calls));
}

BOOST_AUTO_TEST_SUITE_END()

// -- the manifest ---------------------------------------------------------------------------

namespace {

/// `<name>@<checkpoint>` of each committed file, in the reader's order.
std::vector<std::string> committed_names(const fs::path& dir) {
  auto files = sinks::read_committed_files(dir);
  BOOST_REQUIRE_MESSAGE(files.has_value(), error_text(files));
  std::vector<std::string> out;
  for (auto& f : *files)
    out.push_back(f.path.filename().string() + "@" + std::to_string(f.checkpoint));
  return out;
}

std::vector<row> committed_rows(const fs::path& dir) {
  auto r = sinks::read_committed<row>(dir);
  BOOST_REQUIRE_MESSAGE(r.has_value(), error_text(r));
  return *r;
}

/// Every name under `dir` with its size, the manifest's entries included.
std::map<std::string, std::uintmax_t> tree(const fs::path& dir) {
  std::map<std::string, std::uintmax_t> out;
  for (auto& e : fs::recursive_directory_iterator{dir})
    if (e.is_regular_file())
      out[e.path().lexically_relative(dir).string()] = e.file_size();
  return out;
}

/// Checkpoints 0..3 committed by one instance, `per` rows each (ids 10 * checkpoint + i).
void commit_four(const sinks::file<row>& d, std::int64_t per = 2) {
  driven_sink s{d};
  BOOST_REQUIRE_MESSAGE(s.open_result, error_text(s.open_result));
  for (std::int64_t id = 0; id < 4; ++id) {
    BOOST_REQUIRE(s.write(rows(10 * id, per)));
    BOOST_REQUIRE(s.snapshot(id));
    BOOST_REQUIRE(s.commit(id));
  }
}

std::vector<row> rows_of(std::initializer_list<std::int64_t> checkpoints, std::int64_t per = 2) {
  std::vector<row> out;
  for (auto id : checkpoints)
    for (auto& r : rows(10 * id, per))
      out.push_back(r);
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(file_sink_manifest)

BOOST_AUTO_TEST_CASE(each_commit_is_listed_and_readers_follow_the_manifest) {
  temp_dir dir;
  const sinks::file<row> d{{.path = dir.path, .transactional = true}};
  driven_sink a{d, -1, false, 0, 2}, b{d, -1, false, 1, 2};
  BOOST_REQUIRE(a.open_result && b.open_result);
  BOOST_TEST(fs::is_directory(dir.path / "_sluice_metadata"), "created when the sink opens");
  BOOST_TEST(committed_names(dir.path).empty());
  BOOST_REQUIRE(a.write(rows(0, 2)) && b.write(rows(2, 1)));
  BOOST_REQUIRE(a.snapshot(0) && b.snapshot(0));
  BOOST_TEST(committed_names(dir.path).empty(), "pre-committed is not committed");
  BOOST_REQUIRE(b.commit(0) && a.commit(0));
  BOOST_REQUIRE(b.write(rows(3, 2)));
  BOOST_REQUIRE(a.snapshot(1) && b.snapshot(1)); // a wrote nothing for 1: no file
  BOOST_REQUIRE(a.commit(1) && b.commit(1));
  BOOST_TEST((committed_names(dir.path) ==
              std::vector<std::string>{"part-0-0.jsonl@0", "part-1-0.jsonl@0", "part-1-1.jsonl@1"}),
             boost::test_tools::per_element());
  BOOST_TEST(committed_rows(dir.path) == rows(0, 5), boost::test_tools::per_element());
  BOOST_TEST(a.commit(1).has_value(), "a repeated commit changes nothing");
  BOOST_TEST(committed_rows(dir.path) == rows(0, 5), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(text_part_files_hold_the_header_and_the_rows_as_they_are) {
  temp_dir dir;
  const sinks::file<std::string> d{{.path = dir.path, .format = sinks::file_format::text,
                                    .header = "id,name", .transactional = true}};
  BOOST_REQUIRE(d.validate().has_value());
  {
    driven_sink s{d};
    BOOST_REQUIRE(s.open_result);
    BOOST_REQUIRE(s.write({"1,a", "2,\"b,c\""}));
    BOOST_REQUIRE(s.snapshot(0) && s.commit(0));
    BOOST_REQUIRE(s.write({"3,d"}));
    BOOST_REQUIRE(s.snapshot(1) && s.commit(1));
    BOOST_REQUIRE(s.write({"4,e"})); // not committed: a crash here loses nothing committed
  }
  BOOST_TEST((committed_names(dir.path) == std::vector<std::string>{"part-0-0.txt@0", "part-0-1.txt@1"}),
             boost::test_tools::per_element());
  BOOST_TEST(sluice::test::read_text(dir.path / "part-0-0.txt") == "id,name\n1,a\n2,\"b,c\"\n");
  BOOST_TEST(sluice::test::read_text(dir.path / "part-0-1.txt") == "id,name\n3,d\n");
  // A restart from checkpoint 1 finds its own committed .txt files and keeps them.
  driven_sink again{d, 1};
  BOOST_REQUIRE_MESSAGE(again.open_result, error_text(again.open_result));
  BOOST_TEST(committed_names(dir.path).size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_text_record_with_a_line_break_and_text_of_other_records_are_refused) {
  temp_dir dir;
  const sinks::file<std::string> d{{.path = dir.path, .format = sinks::file_format::text}};
  driven_sink s{d};
  BOOST_REQUIRE(s.open_result);
  auto bad = s.write({"fine", "two\nlines"});
  BOOST_REQUIRE(!bad);
  BOOST_TEST((bad.error().code == error_code::malformed_record));
  BOOST_TEST(bad.error().message.find("line break") != std::string::npos, bad.error().message);
  const sinks::file<row> rows_as_text{{.path = dir.path, .format = sinks::file_format::text}};
  auto refused = rows_as_text.validate();
  BOOST_REQUIRE(!refused);
  BOOST_TEST(refused.error().message.find("std::string records") != std::string::npos);
  const sinks::file<std::string> two_line_header{{.path = dir.path, .header = "a\nb"}};
  BOOST_TEST(!two_line_header.validate());
}

BOOST_AUTO_TEST_CASE(a_file_committed_but_not_yet_listed_is_not_output_until_recovery_lists_it) {
  temp_dir dir;
  auto io = std::make_shared<failing_io>();
  const sinks::file<row> d{{.path = dir.path, .transactional = true, .io = io}};
  {
    driven_sink s{d};
    BOOST_REQUIRE(s.open_result);
    BOOST_REQUIRE(s.write(rows(0, 3)) && s.snapshot(0) && s.commit(0));
    BOOST_REQUIRE(s.write(rows(3, 3)) && s.snapshot(1));
    io->fail_on = "part-0-1.json.tmp"; // the commit renames the file, then cannot list it
    auto r = s.commit(1);
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.error().message.find("injected") != std::string::npos, r.error().message);
  }
  BOOST_TEST(fs::exists(dir.path / "part-0-1.jsonl"), "renamed into place");
  BOOST_TEST(committed_rows(dir.path) == rows(0, 3), boost::test_tools::per_element());
  io->fail_on.clear();
  driven_sink again{d, 1};
  BOOST_REQUIRE_MESSAGE(again.open_result, error_text(again.open_result));
  BOOST_TEST(committed_rows(dir.path) == rows(0, 6), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(an_explicit_restore_of_an_older_checkpoint_rolls_back_the_newer_output) {
  temp_dir dir;
  auto io = std::make_shared<recording_io>(dir.path);
  const sinks::file<row> d{{.path = dir.path / "out", .transactional = true, .io = io}};
  commit_four(d);
  BOOST_REQUIRE(committed_rows(dir.path / "out") == rows_of({0, 1, 2, 3}));

  io->clear();
  driven_sink s{d, 1, true}; // checkpoint_options::restore_from = 1
  BOOST_REQUIRE_MESSAGE(s.open_result, error_text(s.open_result));
  const auto calls = io->calls();
  BOOST_TEST((committed_names(dir.path / "out") ==
              std::vector<std::string>{"part-0-0.jsonl@0", "part-0-1.jsonl@1"}),
             boost::test_tools::per_element());
  BOOST_TEST(!fs::exists(dir.path / "out" / "part-0-2.jsonl"));
  BOOST_TEST(!fs::exists(dir.path / "out" / "part-0-3.jsonl"));
  // Unlisted (durably) before removed: a reader never meets a listed file that is gone.
  const auto unlisted = find(calls, "remove out/_sluice_metadata/part-0-3.json");
  const auto synced = unlisted ? find(calls, "sync_dir out/_sluice_metadata", *unlisted) : std::nullopt;
  const auto removed = find(calls, "remove out/part-0-3.jsonl");
  BOOST_TEST((unlisted && synced && removed && *synced < *removed), lines(calls));
  BOOST_TEST(unsynced_directory_change(calls).empty(), lines(calls));

  // The replay commits the checkpoints after 1 again, with what they hold now.
  BOOST_REQUIRE(s.write(rows(100, 3)) && s.snapshot(2) && s.commit(2));
  BOOST_TEST(committed_rows(dir.path / "out") == [] {
    auto v = rows_of({0, 1});
    for (auto& r : rows(100, 3))
      v.push_back(r);
    return v;
  }(), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_fallback_behind_committed_output_is_a_restore_conflict_that_changes_nothing) {
  temp_dir dir;
  const auto out = dir.path / "out";
  const sinks::file<row> d{{.path = out, .transactional = true}};
  commit_four(d);
  {
    // A pending file of checkpoint 4 and an in-progress file: a crash after the barrier.
    driven_sink s{d, 3};
    BOOST_REQUIRE(s.open_result);
    BOOST_REQUIRE(s.write(rows(40, 2)) && s.snapshot(4) && s.write(rows(50, 2)));
    BOOST_REQUIRE(s.sink->flush());
  }
  const auto before = tree(out);
  for (const std::int64_t restored : {1, -1}) {
    BOOST_TEST_CONTEXT("restored " << restored) {
      driven_sink s{d, restored};
      BOOST_REQUIRE(!s.open_result);
      const auto& e = s.open_result.error();
      BOOST_TEST((e.code == error_code::restore_conflict), e.to_string());
      BOOST_TEST(!restart_can_help(e.code));
      for (const auto& part : std::vector<std::string>{
             "file sink 'out'", out.string(), "file_sink_options::roll_back_on_fallback",
             restored == 1 ? "checkpoints 2 and 3" : "checkpoints 0, 1, 2 and 3"})
        BOOST_TEST(e.message.find(part) != std::string::npos, "names " << part << ": " << e.message);
      if (restored == 1) {
        BOOST_TEST(e.message.find("starts from checkpoint 1, the latest usable one") !=
                     std::string::npos,
                   e.message);
        BOOST_TEST(e.message.find("restore_from = 1") != std::string::npos, e.message);
      } else {
        BOOST_TEST(e.message.find("starts without a checkpoint") != std::string::npos, e.message);
      }
      BOOST_TEST((tree(out) == before), "nothing changed");
    }
  }
  // Allowed by the option: rolled back, like an explicit restore.
  const sinks::file<row> allowed{{.path = out, .transactional = true, .roll_back_on_fallback = true}};
  driven_sink s{allowed, 1};
  BOOST_REQUIRE_MESSAGE(s.open_result, error_text(s.open_result));
  BOOST_TEST(committed_rows(out) == rows_of({0, 1}), boost::test_tools::per_element());
  BOOST_TEST(!fs::exists(out / ".part-0-4.pending"));
  BOOST_TEST(!fs::exists(out / ".part-0.a0.inprogress"));
}

BOOST_AUTO_TEST_CASE(each_attempt_writes_its_own_in_progress_file_and_recovery_drops_old_ones) {
  temp_dir dir;
  const fs::path out = dir.path / "out";
  const sinks::file<row> d{{.path = out, .transactional = true}};
  {
    driven_sink first{d, -1, false, 0, 1, 0};
    BOOST_REQUIRE_MESSAGE(first.open_result, error_text(first.open_result));
    BOOST_REQUIRE(first.write(rows(0, 2)));
    BOOST_TEST(fs::exists(out / ".part-0.a0.inprogress"));
    // Attempt 1 starts while attempt 0's file still exists (attempt 0 failed mid-epoch):
    // its file is another, and recovery removes the failed attempt's leftover.
    driven_sink second{d, -1, false, 0, 1, 1};
    BOOST_REQUIRE_MESSAGE(second.open_result, error_text(second.open_result));
    BOOST_REQUIRE(second.write(rows(100, 1)));
    BOOST_TEST(fs::exists(out / ".part-0.a1.inprogress"));
    BOOST_TEST(!fs::exists(out / ".part-0.a0.inprogress"));
    BOOST_REQUIRE(second.snapshot(0));
    BOOST_REQUIRE(second.commit(0));
  }
  BOOST_TEST(committed_rows(out) == rows(100, 1), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(without_checkpoints_a_run_replaces_the_output_of_earlier_runs) {
  temp_dir dir;
  const sinks::file<row> d{{.path = dir.path, .transactional = true}};
  commit_four(d);
  auto s = d.create(sink_context{"out"});
  BOOST_REQUIRE(s->open(sink_context{"out"}));
  BOOST_TEST(committed_names(dir.path).empty());
  auto batch = rows(7, 2);
  BOOST_REQUIRE(s->write(batch) && s->end_epoch(0));
  BOOST_TEST((committed_names(dir.path) == std::vector<std::string>{"part-0-0.jsonl@0"}));
  BOOST_TEST(committed_rows(dir.path) == rows(7, 2), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_manifest_that_does_not_match_the_directory_is_an_error_naming_it) {
  temp_dir dir;
  const sinks::file<row> d{{.path = dir.path, .transactional = true}};
  commit_four(d);
  const auto entry = dir.path / "_sluice_metadata" / "part-0-2.json";
  {
    std::ofstream{dir.path / "part-0-2.jsonl", std::ios::app} << "{\"id\": 99}\n";
    auto e = sinks::read_committed_files(dir.path);
    BOOST_REQUIRE(!e);
    BOOST_TEST((e.error().code == error_code::io_error));
    BOOST_TEST(e.error().message.find("part-0-2.jsonl") != std::string::npos, e.error().message);
    BOOST_TEST(e.error().message.find("says") != std::string::npos, e.error().message);
  }
  fs::remove(dir.path / "part-0-2.jsonl");
  {
    auto e = sinks::read_committed_files(dir.path);
    BOOST_REQUIRE(!e);
    BOOST_TEST(e.error().message.find("part-0-2.jsonl") != std::string::npos, e.error().message);
  }
  for (const std::string bad : {"not json", R"({"version": 1, "file": "../etc/passwd",
      "checkpoint": 2, "prefix": "part", "instance": 0, "size": 1})"}) {
    std::ofstream{entry, std::ios::trunc} << bad;
    auto e = sinks::read_committed_files(dir.path);
    BOOST_REQUIRE(!e);
    BOOST_TEST(e.error().message.find(entry.string()) != std::string::npos, e.error().message);
    BOOST_TEST(e.error().message.find("corrupt") != std::string::npos, e.error().message);
  }
  auto missing = sinks::read_committed_files(dir.path / "nope");
  BOOST_REQUIRE(!missing);
  BOOST_TEST(missing.error().message.find("nope") != std::string::npos, missing.error().message);
}

BOOST_AUTO_TEST_CASE(a_directory_without_a_manifest_is_read_by_spark_s_rule) {
  temp_dir dir;
  dir.write("b.jsonl", "{\"id\": 2, \"text\": \"b\"}\n");
  dir.write("a.jsonl", "{\"id\": 1, \"text\": \"a\"}\n");
  dir.write(".hidden.jsonl", "{\"id\": 3, \"text\": \"h\"}\n");
  dir.write("_SUCCESS", "");
  fs::create_directories(dir.path / "sub");
  BOOST_TEST((committed_names(dir.path) == std::vector<std::string>{"a.jsonl@-1", "b.jsonl@-1"}));
  BOOST_TEST((committed_rows(dir.path) == std::vector<row>{{1, "a"}, {2, "b"}}));
}

BOOST_AUTO_TEST_SUITE_END()
