#pragma once
/// The operator-level rig of the keyed process checkpoint tests: `tally` (or another
/// function) under the harness, an in-memory checkpoint, a scripted run of batches,
/// watermarks and clock moves, and the instances of one parallelism that a keyed edge would
/// feed. Used by keyed_process_test.cpp (restores, damaged pieces) and
/// keyed_process_incremental_test.cpp (deltas).
#include "sluice/operators/harness.hpp"
#include "sluice/operators/keyed_process.hpp"
#include "sluice/tests/checkpoint/keyed_process_tally.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace sluice::test::ckpt {

/// A checkpoint in memory: what the writers put, for the readers.
struct memory_snapshot final : snapshot_writer, snapshot_reader {
  std::map<std::string, std::string> pieces;
  /// Holds `put_later` pieces until `finish`, as the writer thread would.
  bool defer = false;
  std::vector<std::pair<std::string, std::function<result<std::string>()>>> deferred;
  result<void> put(const std::string& piece, std::string bytes) override {
    pieces[piece] = std::move(bytes);
    return {};
  }
  result<void> put_later(const std::string& piece,
                         std::function<result<std::string>()> encode) override {
    if (!defer)
      return snapshot_writer::put_later(piece, std::move(encode));
    deferred.emplace_back(piece, std::move(encode));
    return {};
  }
  void finish() {
    for (auto& [piece, encode] : deferred)
      pieces[piece] = require_ok(encode());
    deferred.clear();
  }
  result<std::optional<std::string>> get(const std::string& piece) override {
    auto it = pieces.find(piece);
    if (it == pieces.end())
      return std::optional<std::string>{};
    return std::optional<std::string>{it->second};
  }
  /// The key group pieces, by name.
  std::vector<std::string> key_group_pieces() const {
    std::vector<std::string> out;
    for (auto& [name, bytes] : pieces)
      if (name.starts_with("kg/"))
        out.push_back(name);
    return out;
  }
};

using key_fn_ptr = std::int64_t (*)(const tick&);
template <class F>
using kp_op = keyed_process_function_operator<std::int64_t, tick, fired, key_fn_ptr, F>;

/// One instance of the operator under a harness whose clock starts at `clock_at`.
template <class F>
struct rig {
  kp_op<F>* op;
  operator_harness h;

  explicit rig(F fn, int instance = 0, int parallelism = 1,
               std::chrono::nanoseconds clock_at = std::chrono::nanoseconds{0})
    : rig(std::make_unique<kp_op<F>>(tick_key, std::move(fn), tick_ts), instance, parallelism,
          clock_at) {}

private:
  rig(std::unique_ptr<kp_op<F>> o, int instance, int parallelism, std::chrono::nanoseconds clock_at)
    : op(o.get()),
      h(std::move(o), harness_options{.name = "tally", .instance = instance,
                                       .parallelism = parallelism}) {
    require_ok(h.advance_processing_time(clock_at)); // nothing is open yet: only the clock moves
    require_ok(h.open());
  }
};

/// A step of a scripted run: a batch, a watermark, or processing time moving on.
using step = std::variant<std::vector<tick>, event_time, std::chrono::nanoseconds>;

/// 400 records in batches of 25; after each a watermark just behind it; the clock moves
/// 3 s every second batch (processing-time timers are 5 s after their record).
inline std::vector<step> script() {
  std::vector<step> out;
  for (std::uint64_t b = 0; b < 16; ++b) {
    std::vector<tick> batch;
    for (std::uint64_t i = 0; i < 25; ++i)
      batch.push_back(make_tick(b * 25 + i));
    const auto wm = batch.back().ts - duration{1};
    out.emplace_back(std::move(batch));
    out.emplace_back(wm);
    if (b % 2 == 1)
      out.emplace_back(std::chrono::nanoseconds{std::chrono::seconds{3}});
  }
  return out;
}

inline int instance_of(std::int64_t key, int parallelism) {
  return instance_of_key_group(key_group_of(key_hash<std::int64_t>{}(key), default_max_key_groups),
                               default_max_key_groups, parallelism);
}

template <class F>
using instances = std::vector<std::unique_ptr<rig<F>>>;

/// Runs `steps` on the instances of one parallelism, as a keyed edge and a task would:
/// each gets its keys' records, every watermark and every clock move.
template <class F>
void apply(instances<F>& all, std::vector<step>::const_iterator first,
           std::vector<step>::const_iterator last) {
  const int p = static_cast<int>(all.size());
  for (; first != last; ++first)
    for (int i = 0; i < p; ++i) {
      auto& h = all[static_cast<std::size_t>(i)]->h;
      if (auto* batch = std::get_if<std::vector<tick>>(&*first)) {
        std::vector<tick> mine;
        for (auto& t : *batch)
          if (instance_of(t.key, p) == i)
            mine.push_back(t);
        require_ok(h.push(std::move(mine)));
      } else if (auto* wm = std::get_if<event_time>(&*first)) {
        require_ok(h.watermark(*wm));
      } else {
        require_ok(h.advance_processing_time(std::get<std::chrono::nanoseconds>(*first)));
      }
    }
}

/// What the instances emitted so far (after the end of input when `end`).
template <class F>
std::vector<fired> emitted(instances<F>& all, bool end) {
  std::vector<fired> out;
  for (auto& r : all) {
    if (end)
      require_ok(r->h.end_input());
    auto got = r->h.template take<fired>();
    out.insert(out.end(), got.begin(), got.end());
  }
  return out;
}

template <class F>
instances<F> instances_of(const F& fn, int parallelism, std::chrono::nanoseconds clock_at = {}) {
  instances<F> out;
  for (int i = 0; i < parallelism; ++i)
    out.push_back(std::make_unique<rig<F>>(fn, i, parallelism, clock_at));
  return out;
}

/// One instance of `fn` fed a script `stride` steps (a batch) at a time, with everything it
/// emitted so far.
template <class F>
struct batch_runner {
  const std::vector<step>& steps;
  std::size_t stride;
  instances<F> run;
  std::vector<fired> so_far;

  batch_runner(const F& fn, const std::vector<step>& s, std::size_t n)
    : steps(s), stride(n), run(instances_of(fn, 1)) {}
  /// Where batch `b` ends in the script.
  std::vector<step>::const_iterator end_of(std::size_t b) const {
    return steps.begin() + static_cast<std::ptrdiff_t>(stride * (b + 1));
  }
  void run_batch(std::size_t b) {
    apply(run, steps.begin() + static_cast<std::ptrdiff_t>(stride * b), end_of(b));
    auto got = emitted(run, false);
    so_far.insert(so_far.end(), got.begin(), got.end());
  }
};

/// The steps before `cut` at parallelism `from`, a checkpoint, the rest at parallelism `to`
/// restored from it. Returns everything emitted, and the checkpoint.
inline std::pair<std::vector<fired>, memory_snapshot>
cut_and_resume(const std::vector<step>& steps, std::size_t cut, int from, int to) {
  const tally fn{nullptr, true};
  const auto at = steps.begin() + static_cast<std::ptrdiff_t>(cut);
  auto before = instances_of(fn, from);
  apply(before, steps.begin(), at);
  memory_snapshot snap;
  for (auto& r : before)
    require_ok(r->op->snapshot(1, snap));
  auto out = emitted(before, false);
  // The same clock: the restored instances start where the old ones stopped.
  const auto now = before.front()->h.processing_time().time_since_epoch();
  auto after = instances_of(fn, to, now);
  for (auto& r : after)
    require_ok(r->op->restore(snap));
  apply(after, at, steps.end());
  auto rest = emitted(after, true);
  out.insert(out.end(), rest.begin(), rest.end());
  return {out, std::move(snap)};
}

inline std::vector<fired> uninterrupted_steps(const std::vector<step>& steps) {
  auto one = instances_of(tally{nullptr, true}, 1);
  apply(one, steps.begin(), steps.end());
  return emitted(one, true);
}

} // namespace sluice::test::ckpt
