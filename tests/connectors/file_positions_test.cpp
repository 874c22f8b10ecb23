// The file source's checkpointed positions, at unit level (no actor system): a position names
// files relative to the canonical input root, so another spelling of the same directory
// restores exactly and another directory is refused; positions of every old instance merge,
// so any parallelism restores any other; positions written before (typed paths) still read.
//
// Sources are restored the way the task does it (actors/task.cpp `restore()`): every old
// instance's position through `seek_all` when the source `restores_from_all_instances()`,
// else the position of the instance with the same index through `seek`.
#include <boost/test/unit_test.hpp>

#include "sluice/tests/common/temp_dir.hpp"
#include "sluice/sources/file.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

using namespace sluice;
namespace fs = std::filesystem;

namespace position_records {

struct numbered {
  std::int64_t id = 0;
};

template <class Inspector>
bool inspect(Inspector& f, numbered& x) {
  return f.object("numbered").fields(f.field("id", x.id));
}

} // namespace position_records

using position_records::numbered;

namespace {

using sluice::test::temp_dir;

std::string text_of(const auto& r) { return r ? std::string{} : r.error().to_string(); }

/// Writes `sizes.size()` files `000.jsonl`, `001.jsonl`, ... of `sizes[f]` lines; the ids
/// count up from 0 over all files. Returns the number of lines.
std::int64_t write_files(const fs::path& dir, const std::vector<int>& sizes) {
  fs::create_directories(dir);
  std::int64_t id = 0;
  for (std::size_t f = 0; f < sizes.size(); ++f) {
    char name[32];
    std::snprintf(name, sizeof name, "%03zu.jsonl", f);
    std::ofstream out{dir / name, std::ios::binary};
    for (int i = 0; i < sizes[f]; ++i)
      out << "{\"id\": " << id++ << "}\n";
  }
  return id;
}

/// How a run takes new files: every poll scans (continuous), or only `begin_trigger` does
/// (micro-batch).
enum class mode { continuous, triggers };

/// One source instance opened outside any job and restored as the task restores it.
struct instance {
  std::unique_ptr<source<numbered>> src;
  std::vector<std::int64_t> ids;
  bool ended = false;
  mode how = mode::continuous;
  bool watch = false;

  result<void> open(const sources::file_options& o, int index, int parallelism,
                    const std::vector<std::string>& positions) {
    watch = o.watch;
    source_context ctx{"files", index, parallelism};
    src = sources::file<numbered>{o}.create(ctx);
    if (auto ok = src->open(ctx); !ok)
      return ok;
    if (positions.empty())
      return {};
    if (src->restores_from_all_instances())
      return src->seek_all(positions);
    if (static_cast<std::size_t>(index) < positions.size())
      return src->seek(positions[static_cast<std::size_t>(index)]);
    return {}; // no piece for this instance: it starts fresh
  }

  /// Reads up to `n` records (one line per poll); stops early when the input is done
  /// (bounded: the end; watching: nothing new).
  void read(std::size_t n) {
    std::vector<numbered> recs;
    std::vector<dead_letter> dead;
    bool triggered = false;
    for (int guard = 0; guard < 100'000 && !ended && recs.size() < n; ++guard) {
      if (how == mode::triggers && !triggered) {
        auto more = src->begin_trigger(false);
        BOOST_REQUIRE_MESSAGE(more, text_of(more));
        triggered = true;
        if (!*more) {
          ended = true; // nothing left to take
          break;
        }
      }
      source_output<numbered> out{recs, dead};
      auto r = src->poll(out, 1);
      BOOST_REQUIRE_MESSAGE(r, text_of(r));
      if (r->state == poll_result::status::end)
        ended = true;
      else if (r->state == poll_result::status::idle) {
        if (how == mode::triggers)
          triggered = false; // the trigger's files are read: the next one takes more
        else
          ended = watch; // watching: nothing new; bounded polls never idle
      }
    }
    for (auto& r : recs)
      ids.push_back(r.id);
  }
};

/// Every id of `ids` once, and each of 0..total-1 among them.
void expect_each_once(std::vector<std::int64_t> ids, std::int64_t total) {
  std::sort(ids.begin(), ids.end());
  std::vector<std::int64_t> expected(static_cast<std::size_t>(total));
  for (std::int64_t i = 0; i < total; ++i)
    expected[static_cast<std::size_t>(i)] = i;
  std::map<std::int64_t, int> seen;
  for (auto id : ids)
    ++seen[id];
  std::size_t twice = 0;
  for (auto& [id, n] : seen)
    twice += n > 1 ? 1 : 0;
  BOOST_TEST(twice == 0u, twice << " ids read more than once");
  BOOST_TEST(ids.size() == expected.size(), ids.size() << " ids read, " << total << " in the files");
  BOOST_TEST((ids == expected), "every line exactly once");
}

/// Runs stages one after another, each at its parallelism, each restored from the positions
/// every instance of the stage before held when it stopped. In every stage but the last each
/// instance reads a random number of records; the last reads to the end.
std::vector<std::int64_t> run_stages(const std::vector<sources::file_options>& per_stage,
                                     const std::vector<int>& parallelisms, std::uint64_t seed,
                                     mode how = mode::continuous, std::size_t max_cut = 40) {
  std::mt19937_64 rng{seed};
  std::vector<std::int64_t> ids;
  std::vector<std::string> positions;
  for (std::size_t s = 0; s < parallelisms.size(); ++s) {
    const bool last = s + 1 == parallelisms.size();
    const auto& o = per_stage[std::min(s, per_stage.size() - 1)];
    std::vector<std::string> next;
    for (int i = 0; i < parallelisms[s]; ++i) {
      BOOST_TEST_CONTEXT("stage " << s << " (path '" << o.path.string() << "'), instance " << i
                                  << " of " << parallelisms[s]) {
        instance in;
        in.how = how;
        auto opened = in.open(o, i, parallelisms[s], positions);
        BOOST_REQUIRE_MESSAGE(opened, text_of(opened));
        in.read(last ? std::size_t{1} << 30 : static_cast<std::size_t>(rng() % (max_cut + 1)));
        ids.insert(ids.end(), in.ids.begin(), in.ids.end());
        auto pos = in.src->position();
        BOOST_REQUIRE(pos.has_value());
        next.push_back(std::move(*pos));
        in.src->close();
      }
    }
    positions = std::move(next);
  }
  return ids;
}

sources::file_options at(fs::path path, bool watch = false) {
  sources::file_options o;
  o.path = std::move(path);
  o.watch = watch;
  return o;
}

bool mentions(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

BOOST_AUTO_TEST_SUITE(file_source_positions)

BOOST_AUTO_TEST_CASE(another_spelling_of_the_input_directory_reads_nothing_twice) {
  temp_dir tmp;
  const auto input = tmp.path / "in";
  const auto total = write_files(input, {5, 7, 1, 6, 4, 9});
  fs::create_directory_symlink(input, tmp.path / "link");
  const std::vector<sources::file_options> spellings{
    at(input),                                      // absolute
    at(fs::relative(input)),                        // relative to the working directory
    at(input.string() + "/"),                       // a trailing slash
    at(tmp.path / "link"),                          // through a symbolic link
    at(input / "." / ".." / "in"),                  // dot segments
    at(input),
  };
  for (std::uint64_t seed : {1, 2, 3})
    BOOST_TEST_CONTEXT("seed " << seed) {
      expect_each_once(run_stages(spellings, std::vector<int>(spellings.size(), 1), seed,
                                  mode::continuous, 8),
                       total);
    }
  // Watching: the names read are remembered whatever the spelling.
  std::vector<sources::file_options> watching;
  for (auto o : spellings) {
    o.watch = true;
    watching.push_back(o);
  }
  expect_each_once(run_stages(watching, std::vector<int>(watching.size(), 1), 4,
                              mode::continuous, 8),
                   total);
}

BOOST_AUTO_TEST_CASE(a_position_of_another_input_root_is_refused_naming_both_roots) {
  temp_dir tmp;
  write_files(tmp.path / "a", {3, 3});
  write_files(tmp.path / "b", {3, 3});
  for (const bool watch : {false, true}) {
    BOOST_TEST_CONTEXT((watch ? "watching" : "bounded")) {
      instance first;
      BOOST_REQUIRE(first.open(at(tmp.path / "a", watch), 0, 1, {}));
      first.read(4);
      const auto pos = *first.src->position();

      instance second;
      auto r = second.open(at(tmp.path / "b", watch), 0, 1, {pos});
      BOOST_REQUIRE_MESSAGE(!r, "a position of input a restored into input b");
      const auto text = r.error().to_string();
      BOOST_TEST(mentions(text, fs::canonical(tmp.path / "a").string()), text);
      BOOST_TEST(mentions(text, fs::canonical(tmp.path / "b").string()), text);
      BOOST_TEST((r.error().code == error_code::invalid_option), text);
    }
  }
  // A single file is its own root: another file is another input.
  instance one;
  BOOST_REQUIRE(one.open(at(tmp.path / "a" / "000.jsonl"), 0, 1, {}));
  one.read(1);
  instance other;
  auto r = other.open(at(tmp.path / "a" / "001.jsonl"), 0, 1, {*one.src->position()});
  BOOST_REQUIRE(!r);
  BOOST_TEST(mentions(r.error().message, "000.jsonl"), r.error().message);
  BOOST_TEST(mentions(r.error().message, "001.jsonl"), r.error().message);
}

BOOST_AUTO_TEST_CASE(a_position_keyed_by_typed_paths_still_restores) {
  // Positions written before they were keyed by the input root: `done` and `current` hold
  // the paths as the directory listing spelled them (the typed path / the name).
  temp_dir tmp;
  const auto input = tmp.path / "in";
  const auto total = write_files(input, {5, 5, 5, 5}); // ids 0-19
  auto old_position = [](const fs::path& typed) {
    nlohmann::json j;
    j["done"] = std::vector<std::string>{(typed / "000.jsonl").string()};
    j["current"] = (typed / "001.jsonl").string();
    j["line"] = 2; // ids 5 and 6 read
    return j.dump();
  };
  auto rest_after = [&](const fs::path& written_with, const fs::path& read_with) {
    instance in;
    auto r = in.open(at(read_with), 0, 1, {old_position(written_with)});
    BOOST_REQUIRE_MESSAGE(r, text_of(r));
    in.read(1000);
    return in.ids;
  };
  std::vector<std::int64_t> rest;
  for (std::int64_t id = 7; id < total; ++id)
    rest.push_back(id);
  // The same spelling: converted on read.
  BOOST_TEST(rest_after(input, input) == rest, boost::test_tools::per_element());
  const auto relative = fs::relative(input);
  BOOST_TEST(rest_after(relative, relative) == rest, boost::test_tools::per_element());
  // Another spelling of the same directory: the old paths still lead there from the
  // working directory, so they are converted too.
  BOOST_TEST(rest_after(relative, input.string() + "/") == rest, boost::test_tools::per_element());
  BOOST_TEST(rest_after(input, relative) == rest, boost::test_tools::per_element());

  // Old paths that lead elsewhere are refused, naming them and the input root.
  write_files(tmp.path / "other", {5, 5});
  instance in;
  auto r = in.open(at(input), 0, 1, {old_position(tmp.path / "other")});
  BOOST_REQUIRE_MESSAGE(!r, "an old position of another directory restored");
  const auto text = r.error().to_string();
  BOOST_TEST(mentions(text, (tmp.path / "other").string()), text);
  BOOST_TEST(mentions(text, fs::canonical(input).string()), text);
}

BOOST_AUTO_TEST_CASE(any_parallelism_restores_any_other_exactly) {
  temp_dir tmp;
  const auto input = tmp.path / "in";
  const auto total = write_files(input, {7, 3, 12, 1, 9, 4, 6, 10, 2, 8, 5});
  const std::vector<std::vector<int>> sequences{
    {1, 2, 3, 1}, {3, 1}, {2, 3, 2, 1}, {1, 4}, {4, 2, 3}, {3, 3, 3}};
  std::uint64_t seed = 10;
  for (const bool watch : {false, true}) {
    for (auto& seq : sequences) {
      for (int round = 0; round < 4; ++round, ++seed) {
        BOOST_TEST_CONTEXT((watch ? "watching" : "bounded") << ", seed " << seed) {
          expect_each_once(run_stages({at(input, watch)}, seq, seed, mode::continuous, 20), total);
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(micro_batch_positions_rescale_with_max_files_per_trigger) {
  temp_dir tmp;
  const auto input = tmp.path / "in";
  const auto total = write_files(input, {7, 3, 12, 1, 9, 4, 6, 10, 2, 8, 5});
  std::uint64_t seed = 100;
  for (const bool watch : {false, true}) {
    for (std::size_t cap : {1, 2, 5}) {
      auto o = at(input, watch);
      o.max_files_per_trigger = cap;
      for (auto& seq : std::vector<std::vector<int>>{{1, 2, 3, 1}, {3, 2}, {2, 2}}) {
        BOOST_TEST_CONTEXT((watch ? "watching" : "bounded") << ", cap " << cap << ", seed "
                                                             << seed) {
          expect_each_once(run_stages({o}, seq, seed++, mode::triggers, 20), total);
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(an_unreadable_position_is_an_error_naming_the_source) {
  temp_dir tmp;
  write_files(tmp.path / "in", {2});
  const auto root = fs::canonical(tmp.path / "in").string();
  const std::vector<std::string> bad_positions{
    "", "{", "[1,2]", R"({"root": 3})", R"({"done": 3, "current": null, "line": 0})",
    R"({"version": 3, "root": "/", "done": [], "reading": {}, "taken": []})",
    R"({"version": 2, "root": ")" + root + R"(", "done": ["../x"], "reading": {}, "taken": []})",
    R"({"version": 2, "root": ")" + root + R"(", "done": [], "reading": {"000.jsonl": -1}, "taken": []})"};
  for (const auto& bad : bad_positions) {
    BOOST_TEST_CONTEXT("position '" << bad << "'") {
      instance in;
      auto r = in.open(at(tmp.path / "in"), 0, 1, {bad});
      BOOST_REQUIRE(!r);
      BOOST_TEST(mentions(r.error().message, "file source"), r.error().message);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
