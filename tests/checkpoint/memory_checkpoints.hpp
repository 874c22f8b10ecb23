#pragma once
/// An in-memory stand-in for the task's checkpoint writer and reader, with references to
/// the previous checkpoint (incremental checkpoints): what operator-level tests snapshot
/// into and restore from.
#include "sluice/core/error.hpp"
#include "sluice/operators/operator.hpp"

#include <boost/test/unit_test.hpp>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace sluice::test::ckpt {

/// Plays the task's part: deferred encodes run at `finish`, references resolve to the
/// previous snapshot's pieces (as the task's writer does through the store).
struct memory_checkpoints final : snapshot_writer, snapshot_reader {
  bool reuse_ok = true;
  bool started = false;
  std::map<std::string, std::string> current, previous;
  std::set<std::string> written, reused;
  std::vector<std::pair<std::string, std::function<result<std::string>()>>> deferred;

  void begin() {
    previous = std::exchange(current, {});
    written.clear();
    reused.clear();
  }
  void finish() {
    for (auto& [name, encode] : deferred) {
      auto bytes = encode();
      BOOST_REQUIRE(bytes);
      current[name] = *bytes;
    }
    deferred.clear();
    started = true;
  }

  result<void> put(const std::string& piece, std::string bytes) override {
    written.insert(piece);
    current[piece] = std::move(bytes);
    return {};
  }
  result<void> put_later(const std::string& piece,
                         std::function<result<std::string>()> encode) override {
    written.insert(piece);
    deferred.emplace_back(piece, std::move(encode));
    return {};
  }
  bool can_reuse() const noexcept override { return reuse_ok && started; }
  result<void> reuse(const std::string& piece) override {
    auto it = previous.find(piece);
    if (it == previous.end())
      return make_error(error_code::internal, "no previous piece " + piece);
    reused.insert(piece);
    current[piece] = it->second;
    return {};
  }
  result<std::optional<std::string>> get(const std::string& piece) override {
    auto it = current.find(piece);
    if (it == current.end())
      return std::optional<std::string>{};
    return std::optional<std::string>{it->second};
  }
};

} // namespace sluice::test::ckpt
