#pragma once
/// Shared pieces of the incremental checkpoint tests (incremental_*_test.cpp): what a
/// checkpoint wrote, read back from the in-memory writer, and the delta pieces a checkpoint
/// of some changed keys must write. The window and interval join tests check their key
/// group chains the same way, so they count pieces and entries with the same code.
#include "sluice/operators/harness.hpp"
#include "sluice/operators/state/snapshot_codec.hpp"
#include "sluice/tests/checkpoint/job_helpers.hpp"
#include "sluice/tests/checkpoint/memory_checkpoints.hpp"

#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace sluice::test::ckpt {

/// Whether every piece among `names` is a delta.
inline bool all_deltas(const std::set<std::string>& names) {
  for (auto& n : names)
    if (n.find("/d") == std::string::npos)
      return false;
  return true;
}

/// The key group of an operator's `std::int64_t` key among 128.
inline int window_group_of(std::int64_t key) {
  return key_group_of(key_hash<std::int64_t>{}(key), 128);
}

/// One checkpoint of an operator: its snapshot, then the writer thread's part.
inline void checkpoint(operator_harness& h, memory_checkpoints& w) {
  w.begin();
  auto ok = h.op().snapshot(1, w);
  BOOST_REQUIRE_MESSAGE(ok, (ok ? "" : ok.error().to_string()));
  w.finish();
}

/// The key group pieces among `names` (not the per-instance pieces).
inline std::set<std::string> group_pieces(const std::set<std::string>& names) {
  std::set<std::string> out;
  for (auto& n : names)
    if (n.starts_with("kg/"))
      out.insert(n);
  return out;
}

/// The number of entries a delta piece lists (its leading count, without the flag of a
/// delta that lists changes).
inline std::uint64_t delta_entries(const std::string& bytes) {
  detail::state_decoder dec{bytes};
  std::uint64_t n = 0;
  BOOST_REQUIRE(dec.get(n));
  return n & ~detail::changes_flag;
}

inline reading rec(std::int64_t key, std::int64_t value, std::int64_t ms) {
  return {key, value, at_ms(ms)};
}

/// The delta pieces a checkpoint of `changed` keys must write: the next link of each one's
/// key group chain (`chains` counts the deltas written so far per key group).
inline std::set<std::string> next_deltas(const std::vector<std::int64_t>& changed,
                                         std::map<int, int>& chains) {
  std::set<int> groups;
  for (auto k : changed)
    groups.insert(window_group_of(k));
  std::set<std::string> out;
  for (int g : groups)
    out.insert(detail::delta_piece(g, ++chains[g]));
  return out;
}

/// The entries of the key group pieces the last checkpoint wrote.
inline std::uint64_t entries_written(memory_checkpoints& w) {
  std::uint64_t n = 0;
  for (auto& name : group_pieces(w.written))
    n += delta_entries(w.current.at(name));
  return n;
}

/// `s` as one line, for failure messages.
inline std::string names(const std::set<std::string>& s) {
  std::string out;
  for (auto& n : s)
    out += n + " ";
  return out;
}

} // namespace sluice::test::ckpt
