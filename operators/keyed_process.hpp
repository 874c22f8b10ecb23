#pragma once
/// Keyed process functions with state and timers (Flink's `KeyedProcessFunction`).
///
/// ```cpp
/// struct counter {
///   state_descriptor<value_state<long>> count{"count"};
///   void on_element(const txn& t, keyed_process_context<long>& ctx, collector<alert>& out) {
///     auto n = ctx.state(count);
///     n.update(n.value_or(0) + 1);
///     ctx.timers().register_event_time(t.ts + 1min);
///   }
///   void on_timer(event_time at, keyed_process_context<long>& ctx, collector<alert>& out) {
///     out.collect(alert{ctx.current_key(), ctx.state(count).value_or(0)});
///     ctx.state(count).clear();
///   }
/// };
/// ```
///
/// `on_timer(event_time, ctx, out)` receives event-time timers and
/// `on_timer(clock::time_point, ctx, out)` processing-time timers; a generic
/// `on_timer(auto, ...)` receives both and asks `ctx.timer_domain()`. A plain callable
/// `(const T&, keyed_context<K>&, collector<U>&)` is a process function without timers.
///
/// Checkpoints: one piece per non-empty key group (`kg/<n>`) holds that key group's state
/// and timers, so any instance of a later run restores the key groups it owns, whatever
/// parallelism wrote them:
///
///     "sluice.keyed_process", u32 version (3), the writer's watermark,
///     the writer's processing time (clock ticks),
///     the states (detail::state_section: name, payload type, TTL, entries, deltas),
///     u8 timers: 0 none, 1 all of them (always in a full piece), 2 their changes;
///     with 1: event-time timers: count, (time, key)...,
///             processing-time timers: count, (time - the writer's processing time, key)...
///     with 2: count, then per change in order: u8 kind (bit 0: registered, else removed;
///             bit 1: processing time), the time (processing time: as above), the key
///
/// plus `instance/<i>` per writing instance (tag, version, watermark), so that every new
/// instance learns the watermark the checkpoint was taken at.
///
/// Incremental checkpoints (as `detail::table_checkpoints`): a key group whose states list
/// few changed keys gets a delta piece `kg/<n>/d<k>` in the same format, whose sections
/// hold one delta each (the changed keys' entries or their erasure) and whose timers are
/// there only when they changed: their registrations and removals, or all of them when
/// those are too many; the earlier pieces of its chain are referred to. A restore applies
/// base and deltas in order.
#include "sluice/core/timestamp_fn.hpp"
#include "sluice/operators/collector.hpp"
#include "sluice/operators/context.hpp"
#include "sluice/operators/operator.hpp"
#include "sluice/operators/process.hpp"
#include "sluice/operators/record_loop.hpp"
#include "sluice/operators/state/backend.hpp"
#include "sluice/operators/state/snapshot_codec.hpp"
#include "sluice/operators/state/state.hpp"
#include "sluice/operators/state/timers.hpp"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace sluice {

/// Timers of the current key (Flink's `TimerService`). Valid only during the call whose
/// context returned it.
class keyed_timer_service {
public:
  /// Fires `on_timer` for the current key once the watermark reaches `t`. Registering the
  /// same (key, time) again has no effect. A time the watermark already reached fires at
  /// the next watermark.
  virtual void register_event_time(event_time t) = 0;
  virtual void delete_event_time(event_time t) = 0;
  /// Fires `on_timer` for the current key once processing time reaches `t`.
  virtual void register_processing_time(clock::time_point t) = 0;
  virtual void delete_processing_time(clock::time_point t) = 0;
  virtual event_time current_watermark() const noexcept = 0;
  virtual clock::time_point current_processing_time() const noexcept = 0;

protected:
  ~keyed_timer_service() = default;
};

/// The context of a stateful keyed process function: the key, its state and its timers.
template <class K>
class keyed_process_context : public keyed_context<K> {
public:
  keyed_process_context(const operator_info& info, keyed_state_backend<K>& state,
                        keyed_timer_service& timers, const state_clock& clk) noexcept
    : keyed_context<K>(info), state_(&state), timers_(&timers), clock_(&clk) {}

  /// The value state `name` of the current key, created on first use.
  template <class V>
  sluice::value_state<V> value_state(std::string_view name, std::optional<state_ttl> ttl = {}) {
    return sluice::value_state<V>{state_->template resolve<V>(name, ttl)};
  }
  template <class V>
  sluice::list_state<V> list_state(std::string_view name, std::optional<state_ttl> ttl = {}) {
    using S = sluice::list_state<V>;
    return S{state_->template resolve<typename S::payload_type>(name, ttl)};
  }
  template <class UK, class UV>
  sluice::map_state<UK, UV> map_state(std::string_view name, std::optional<state_ttl> ttl = {}) {
    using S = sluice::map_state<UK, UV>;
    return S{state_->template resolve<typename S::payload_type>(name, ttl)};
  }
  /// The state a descriptor declares, for the current key.
  template <class S>
  S state(const state_descriptor<S>& d) {
    return S{state_->template resolve<typename S::payload_type>(d.name, d.ttl, &d.cached_owner,
                                                                &d.cached_slot)};
  }

  keyed_timer_service& timers() noexcept { return *timers_; }
  event_time current_watermark() const noexcept { return clock_->watermark(); }
  /// The event time of the record being processed (when the stream declares event time),
  /// or the time of the firing event-time timer; nothing in a processing-time timer.
  std::optional<event_time> timestamp() const {
    if (domain_ == time_domain::processing_time)
      return std::nullopt;
    return clock_->write_time();
  }
  /// Which kind of timer is firing; nothing in `on_element`.
  std::optional<time_domain> timer_domain() const noexcept { return domain_; }

  void set_timer_domain(std::optional<time_domain> d) noexcept { domain_ = d; }

private:
  keyed_state_backend<K>* state_;
  keyed_timer_service* timers_;
  const state_clock* clock_;
  std::optional<time_domain> domain_;
};

/// Runs a keyed process function with per-key state and timers.
///
/// Order within a call: `process` runs `on_element` per record; `on_watermark(wm)` fires
/// the event-time timers with time <= wm in (time, key group, key) order, then frees
/// event-time TTL entries; `on_processing_time(now)` does the same for processing time and
/// asks for a wake-up at the next timer or TTL expiry. Timers registered while timers fire
/// wait for the next watermark or wake-up. Pending processing-time timers are dropped at
/// the end of input; event-time ones fire with the final (maximal) watermark.
///
/// Micro-batches under an output mode follow Spark's transformWithState: a batch's rows
/// come first, then the event-time timers its watermark passed fire (at the batch's end),
/// and with event-time timers and an event time, rows at or behind the late-row watermark
/// (the previous batch's by default, `late_row_rule`) are dropped and counted as late.
template <class K, class In, class Out, class KeyFn, class F>
class keyed_process_function_operator final : public operator_base,
                                              private state_clock,
                                              private keyed_timer_service {
public:
  /// Keys go into every piece (state and timers), so they need a codec form. State payload
  /// types are only known when the function first uses a state (by name, at run time), so
  /// the backend refuses one without a codec form then, naming it.
  static constexpr bool snapshottable = detail::snapshottable_v<K>;
  bool can_checkpoint() const noexcept override { return snapshottable; }

  using timestamp_fn = sluice::timestamp_fn<In>;
  using context_type = keyed_process_context<K>;

  static constexpr bool has_event_timer =
    requires(F& f, event_time t, context_type& c, collector<Out>& o) { f.on_timer(t, c, o); };
  static constexpr bool has_processing_timer =
    requires(F& f, clock::time_point t, context_type& c, collector<Out>& o) { f.on_timer(t, c, o); };

  keyed_process_function_operator(KeyFn key_fn, F fn, timestamp_fn ts = {})
    : key_fn_(std::move(key_fn)), fn_(std::move(fn)), ts_(std::move(ts)) {}

  result<void> open(const operator_info& info) override {
    info_ = info;
    state_.emplace(info.key_groups, static_cast<state_clock&>(*this));
    state_->set_checkpointed(info.checkpoints);
    if (spark_batches())
      state_->count_keys_written(); // Spark's numRowsUpdated (see count_keys_written)
    restored_watermark_ = late_watermark_ = min_watermark;
    epoch_dropped_ = 0;
    timers_ = timer_table<K>{info.key_groups};
    requested_.reset();
    proc_now_ = info_.processing_clock->now();
    return {};
  }

  result<void> process(int, batch_ptr in, output& out) override {
    proc_now_ = info_.processing_clock->now();
    auto produced = make_batch<Out>(in->size());
    collector<Out> c{produced->records};
    context_type ctx{info_, *state_, *this, *this};
    const bool drop_late = spark_batches() && has_event_timer && ts_;
    // Spark's watermark is one microsecond above the engine's.
    const auto late_at = detail::saturating_add(
      detail::ticks(info_.late_rows == late_row_rule::previous_watermark ? late_watermark_
                                                                         : current_watermark()),
      1);
    std::uint64_t late = 0;
    auto ok = guarded([&] {
      // API misuse and restore failures are engine errors: they pass unchanged.
      for_each_record<state_usage_error, state_restore_error>(
        std::as_const(records_of<In>(*in)), [&](const In& r) {
          if (drop_late && detail::ticks(ts_(r)) <= late_at) {
            ++late;
            return;
          }
          const K key = key_fn_(r);
          const int kg = key_group_of(key_hash<K>{}(key), info_.max_key_groups);
          set_key(ctx, key, kg);
          element_ = &r;
          invoke_on_element(fn_, r, ctx, c);
        });
    });
    element_ = nullptr;
    if (late > 0) {
      count_late(late, false);
      epoch_dropped_ += late;
    }
    if (!ok)
      return ok;
    return emit(out, std::move(produced));
  }

  result<void> on_watermark(event_time, output& out) override {
    if (spark_batches())
      return {}; // at the batch's end, after its rows (end_epoch)
    return fire_event_time(out);
  }

  result<void> on_processing_time(clock::time_point now, output& out) override {
    requested_.reset(); // this wake-up is used up
    proc_now_ = now;
    auto produced = make_batch<Out>(0);
    auto ok = fire(time_domain::processing_time, detail::ticks(now), produced->records);
    state_->expire(time_domain::processing_time, detail::ticks(now));
    auto next = timers_.earliest(time_domain::processing_time);
    if (auto t = state_->next_processing_expiry(); t && (!next || *t < *next))
      next = t;
    if (next)
      want_wakeup(detail::processing_time_of(*next));
    if (!ok)
      return ok;
    return emit(out, std::move(produced));
  }

  // -- inspection, for tests and metrics ---------------------------------------------------

  /// Spark's state-operator fields for metrics and progress: entries over all states,
  /// their memory estimated as (key + value slot) per entry, and the timers set.
  result<void> end_epoch(std::int64_t, output& out, operator_epoch_stats& stats) override {
    if (spark_batches())
      if (auto ok = fire_event_time(out); !ok)
        return ok;
    late_watermark_ = current_watermark();
    const auto entries = state_->total_entries();
    stats.state = state_epoch_report{};
    stats.state->rows_total = entries;
    stats.state->rows_dropped_by_watermark = std::exchange(epoch_dropped_, 0);
    std::tie(stats.state->rows_updated, stats.state->rows_removed) = state_->take_write_counts();
    stats.state->memory_used_bytes = entries * (sizeof(K) + 64);
    stats.state->timers_pending =
      timers_.size(time_domain::event_time) + timers_.size(time_domain::processing_time);
    return {};
  }

  /// Keys holding an entry in state `name` (expired entries not yet freed included).
  std::size_t state_size(std::string_view name) const noexcept { return state_->size(name); }
  /// Registered timers of one domain.
  std::size_t timer_count(time_domain d) const noexcept { return timers_.size(d); }

  // -- checkpoints (format in the file comment) ---------------------------------------------

  static constexpr std::string_view piece_tag = "sluice.keyed_process";
  static constexpr std::uint32_t piece_version = 3;

  result<void> snapshot(std::int64_t, snapshot_writer& w) override {
    if constexpr (snapshottable) {
      proc_now_ = info_.processing_clock->now(); // TTL expiry is judged at this time
      const auto now = detail::ticks(proc_now_);
      const auto range = info_.key_groups;
      if (chains_.size() != static_cast<std::size_t>(range.size()))
        chains_.assign(static_cast<std::size_t>(range.size()), detail::delta_chain{});
      const bool incremental = w.can_reuse();
      // The pause: freeze each key group's state (keyed_state_table::freeze), or copy its
      // changed entries, and copy its timers; the writer thread encodes them.
      for (int g = range.first; g < range.last; ++g) {
        auto& c = chains_[static_cast<std::size_t>(g - range.first)];
        auto changes = state_->take_changes(g);
        auto timer_log = timers_.take_changes(g);
        const auto changed = changes.keys;
        // Timers too many to list would go whole into the delta: as costly as a full piece.
        if (c.needs_full(incremental, changes.full || timer_log.all,
                         changed + timer_log.changes.size())) {
          auto sections = state_->freeze_group(g, now);
          piece_timers timers{all_timers(g), {}};
          // Restored sections not decoded yet are written too, but not counted as entries.
          const bool written = sections || timers.whole->size() > 0;
          c.restart(written, state_->group_entries(g) + timers.whole->size());
          if (!written)
            continue;
          if (auto r = w.put_later(key_group_piece(g),
                                   piece_encoder(g, std::move(sections), std::move(timers), now));
              !r)
            return r;
          continue;
        }
        if (auto r = c.reuse(g, w); !r)
          return r;
        if (changed == 0 && timer_log.empty())
          continue;
        piece_timers timers;
        if (timer_log.all)
          timers.whole = all_timers(g);
        else
          timers.changes = std::move(timer_log.changes);
        const auto piece = c.add_delta(g, changed + timers.size());
        if (auto r = w.put_later(piece,
                                 piece_encoder(g, state_->freeze_changes(g, std::move(changes), now),
                                               std::move(timers), now));
            !r)
          return r;
      }
      detail::state_encoder enc;
      put_header(enc, current_watermark());
      return w.put(instance_piece(info_.instance), enc.take());
    } else {
      return detail::not_snapshottable(info_.name);
    }
  }

  result<void> restore(snapshot_reader& r) override {
    if constexpr (snapshottable) {
      proc_now_ = info_.processing_clock->now();
      const auto now = detail::ticks(proc_now_);
      // The watermark the checkpoint was taken at, the lowest over the instances that wrote
      // it: the replayed input may bring a lower one first, and state and timers must not
      // see time go back (an entry that had expired stays expired).
      std::optional<event_time> floor;
      auto read = for_each_instance_piece(r, [&](int i, std::string_view bytes) -> result<void> {
        detail::state_decoder dec{bytes};
        event_time wm{};
        auto ok = get_header(dec, wm);
        if (ok && !dec.done())
          ok = make_error(error_code::malformed_record, "bytes after the watermark");
        if (!ok)
          return unreadable("instance " + std::to_string(i), ok.error());
        floor = floor ? std::min(*floor, wm) : wm;
        return {};
      });
      if (!read)
        return read;
      if (floor)
        late_watermark_ = restored_watermark_ = *floor; // a checkpoint follows an epoch's end
      chains_.clear(); // the next checkpoint writes every key group in full
      for (int g = info_.key_groups.first; g < info_.key_groups.last; ++g)
        if (auto ok = restore_group(g, r, now); !ok)
          return ok;
      timers_.forget_changes(); // the restored timers are in the checkpoint already
      if (auto t = timers_.earliest(time_domain::processing_time))
        want_wakeup(detail::processing_time_of(*t));
      return {};
    } else {
      return detail::not_snapshottable(info_.name);
    }
  }

private:
  // -- state_clock --------------------------------------------------------------------------

  event_time watermark() const noexcept override { return current_watermark(); }
  clock::time_point processing_now() const noexcept override { return proc_now_; }
  std::optional<event_time> write_time() const override {
    if (element_)
      return ts_ ? std::optional<event_time>{ts_(*element_)} : std::nullopt;
    if (firing_ == time_domain::event_time)
      return detail::event_time_of(firing_time_);
    return current_watermark();
  }
  bool has_event_time() const noexcept override { return static_cast<bool>(ts_); }
  void ttl_deadline(clock::time_point t) override { want_wakeup(t); }

  // -- keyed_timer_service ------------------------------------------------------------------

  void register_event_time(event_time t) override {
    if constexpr (!has_event_timer)
      throw state_usage_error{"register_event_time: the process function has no "
                              "on_timer(event_time, ctx, out)"};
    else
      timers_.add(time_domain::event_time, state_->current_key_group(), detail::ticks(t),
                  *state_->current_key());
  }
  void delete_event_time(event_time t) override {
    timers_.remove(time_domain::event_time, state_->current_key_group(), detail::ticks(t),
                   *state_->current_key());
  }
  void register_processing_time(clock::time_point t) override {
    if constexpr (!has_processing_timer)
      throw state_usage_error{"register_processing_time: the process function has no "
                              "on_timer(clock::time_point, ctx, out)"};
    else if (timers_.add(time_domain::processing_time, state_->current_key_group(),
                         detail::ticks(t), *state_->current_key()))
      want_wakeup(t);
  }
  void delete_processing_time(clock::time_point t) override {
    // The wake-up already requested stays: an early wake-up finds nothing due.
    timers_.remove(time_domain::processing_time, state_->current_key_group(), detail::ticks(t),
                   *state_->current_key());
  }
  /// The operator's watermark, but never behind the one restored from a checkpoint.
  event_time current_watermark() const noexcept override {
    return std::max(operator_base::current_watermark(), restored_watermark_);
  }
  clock::time_point current_processing_time() const noexcept override {
    return info_.processing_clock->now();
  }

  // -- helpers ------------------------------------------------------------------------------

  /// Spark's micro-batch order applies (see the class comment).
  bool spark_batches() const noexcept { return info_.micro_batch && info_.mode.has_value(); }

  /// Fires the event-time timers the watermark passed, then frees event-time TTL entries.
  result<void> fire_event_time(output& out) {
    proc_now_ = info_.processing_clock->now();
    const auto wm = current_watermark(); // not behind the restored one
    // Spark's watermark is one microsecond above the engine's, and a timer at it is due.
    const auto due = spark_batches() ? detail::saturating_add(detail::ticks(wm), 1)
                                     : detail::ticks(wm);
    auto produced = make_batch<Out>(0);
    if (auto ok = fire(time_domain::event_time, due, produced->records); !ok)
      return ok;
    state_->expire(time_domain::event_time, detail::ticks(wm));
    return emit(out, std::move(produced));
  }

  void set_key(context_type& ctx, const K& key, int kg) {
    ctx.set_current_key(key, kg);
    state_->set_current_key(key, kg);
  }

  /// Fires the timers of `d` due at `up_to` (a snapshot: timers registered meanwhile wait).
  result<void> fire(time_domain d, std::int64_t up_to, std::vector<Out>& sink) {
    collector<Out> c{sink};
    context_type ctx{info_, *state_, *this, *this};
    ctx.set_timer_domain(d);
    element_ = nullptr;
    firing_ = d;
    auto ok = guarded([&] {
      for (auto& t : timers_.due(d, up_to)) {
        if (!timers_.take(d, t))
          continue; // deleted by an earlier callback of this pass
        set_key(ctx, t.key, t.key_group);
        firing_time_ = t.time;
        if (d == time_domain::event_time) {
          if constexpr (has_event_timer)
            fn_.on_timer(detail::event_time_of(t.time), ctx, c);
        } else {
          if constexpr (has_processing_timer)
            fn_.on_timer(detail::processing_time_of(t.time), ctx, c);
        }
      }
    });
    firing_.reset();
    return ok;
  }

  /// Runs user code, turning API misuse into an error that names the operator. Other
  /// exceptions propagate to the task, which fails the job with the operator's name.
  template <class Fn>
  result<void> guarded(Fn&& f) {
    try {
      f();
    } catch (const state_usage_error& e) {
      return make_error(error_code::invalid_option, "'" + info_.name + "': " + e.what());
    } catch (const state_restore_error& e) {
      auto msg = "operator '" + info_.name + "', " + e.what();
      if (info_.restored >= 0)
        msg += " (restored from checkpoint " + std::to_string(info_.restored) + ")";
      return make_error(error_code::io_error, std::move(msg));
    }
    return {};
  }

  // -- checkpoint helpers -------------------------------------------------------------------

  using timer_list = std::vector<std::pair<std::int64_t, K>>;
  struct group_timers {
    timer_list events, wakeups;
    std::size_t size() const noexcept { return events.size() + wakeups.size(); }
  };
  using timer_change = typename timer_table<K>::change;
  /// What a piece holds of a key group's timers: all of them, their changes, or nothing.
  struct piece_timers {
    std::optional<group_timers> whole;
    std::vector<timer_change> changes;
    std::size_t size() const noexcept { return whole ? whole->size() : changes.size(); }
    std::uint8_t flag() const noexcept { return whole ? 1 : changes.empty() ? 0 : 2; }
  };

  group_timers all_timers(int g) const {
    return group_timers{timers_in(time_domain::event_time, g),
                        timers_in(time_domain::processing_time, g)};
  }

  /// The function the writer thread runs to make one piece (format in the file comment).
  auto piece_encoder(int g, std::optional<typename keyed_state_backend<K>::frozen_sections> sections,
                     piece_timers timers, std::int64_t now) const {
    return [sections = std::move(sections), timers = std::move(timers), now,
            wm = current_watermark(),
            where = "operator '" + info_.name + "', key group " + std::to_string(g)]()
             -> result<std::string> {
      std::vector<detail::state_section> made;
      if (sections) {
        auto s = (*sections)();
        if (!s)
          return make_error(s.error().code, where + ": " + s.error().message);
        made = std::move(*s);
      }
      detail::state_encoder enc;
      put_header(enc, wm);
      enc.put(now);
      enc.put(made);
      enc.put(timers.flag());
      if (timers.whole) {
        enc.put(static_cast<std::uint64_t>(timers.whole->events.size()));
        for (auto& [t, key] : timers.whole->events) {
          enc.put(t);
          enc.put(key);
        }
        enc.put(static_cast<std::uint64_t>(timers.whole->wakeups.size()));
        for (auto& [t, key] : timers.whole->wakeups) {
          enc.put(t - now);
          enc.put(key);
        }
      } else if (!timers.changes.empty()) {
        enc.put(static_cast<std::uint64_t>(timers.changes.size()));
        for (auto& c : timers.changes) {
          const bool processing = c.domain == time_domain::processing_time;
          enc.put(static_cast<std::uint8_t>((c.added ? 1 : 0) | (processing ? 2 : 0)));
          enc.put(processing ? c.time - now : c.time);
          enc.put(c.key);
        }
      }
      return enc.take();
    };
  }

  std::vector<std::pair<std::int64_t, K>> timers_in(time_domain d, int g) const {
    std::vector<std::pair<std::int64_t, K>> out;
    timers_.for_each_in_group(d, g,
                              [&](std::int64_t t, const K& key) { out.emplace_back(t, key); });
    return out;
  }

  static void put_header(detail::state_encoder& enc, event_time wm) {
    enc.put(std::string{piece_tag});
    enc.put(piece_version);
    enc.put(wm);
  }

  static result<void> get_header(detail::state_decoder& dec, event_time& wm) {
    std::string tag;
    if (auto ok = dec.get(tag); !ok)
      return ok;
    if (tag != piece_tag)
      return make_error(error_code::malformed_record,
                        "not a keyed process piece (was the node renamed or replaced?)");
    std::uint32_t version = 0;
    if (auto ok = dec.get(version); !ok)
      return ok;
    // Version 2 is version 3 without timer changes (flag 2), so this build reads both.
    if (version != piece_version && version != 2)
      return make_error(error_code::malformed_record,
                        "format version " + std::to_string(version) + ", this build reads 2 and " +
                          std::to_string(piece_version));
    return dec.get(wm);
  }

  /// Timers ordered by time, then key (as `timer_table` keeps them).
  struct timer_order {
    bool operator()(const std::pair<std::int64_t, K>& a,
                    const std::pair<std::int64_t, K>& b) const noexcept {
      if (a.first != b.first)
        return a.first < b.first;
      return detail::key_less<K>{}(a.second, b.second);
    }
  };

  /// One piece of a key group's chain, read.
  struct read_piece {
    std::int64_t clock_ref = 0;
    std::vector<detail::state_section> sections;
    std::optional<group_timers> timers; ///< processing-time ones as offsets from clock_ref
    std::vector<timer_change> timer_changes; ///< the same
  };

  static result<read_piece> read_group_piece(std::string_view bytes) {
    detail::state_decoder dec{bytes};
    event_time wm{};
    read_piece p;
    std::uint8_t has_timers = 0;
    result<void> ok = get_header(dec, wm);
    if (ok)
      ok = dec.get(p.clock_ref);
    if (ok)
      ok = dec.get(p.sections);
    if (ok)
      ok = dec.get(has_timers);
    if (ok && has_timers > 2)
      ok = make_error(error_code::malformed_record,
                      "timer flag " + std::to_string(has_timers) + " (expected 0, 1 or 2)");
    if (ok && has_timers == 2) {
      std::uint64_t n = 0;
      ok = dec.get(n);
      if (ok && n > dec.remaining()) // every change takes at least 9 bytes
        ok = make_error(error_code::malformed_record,
                        std::to_string(n) + " timer changes in " +
                          std::to_string(dec.remaining()) + " bytes");
      for (std::uint64_t i = 0; ok && i < n; ++i) {
        std::uint8_t kind = 0;
        timer_change c{time_domain::event_time, false, 0, K{}};
        if ((ok = dec.get(kind)) && kind > 3)
          ok = make_error(error_code::malformed_record,
                          "timer change kind " + std::to_string(kind) + " (expected 0 to 3)");
        if (ok && (ok = dec.get(c.time)) && (ok = dec.get(c.key))) {
          c.added = (kind & 1) != 0;
          c.domain = (kind & 2) != 0 ? time_domain::processing_time : time_domain::event_time;
          p.timer_changes.push_back(std::move(c));
        }
      }
    }
    if (ok && has_timers == 1) {
      p.timers.emplace();
      for (auto* list : {&p.timers->events, &p.timers->wakeups}) {
        std::uint64_t n = 0;
        if (ok)
          ok = dec.get(n);
        if (ok && n > dec.remaining()) // every timer takes at least 8 bytes
          ok = make_error(error_code::malformed_record,
                          std::to_string(n) + " timers in " + std::to_string(dec.remaining()) +
                            " bytes");
        for (std::uint64_t i = 0; ok && i < n; ++i) {
          std::int64_t t = 0;
          K key{};
          if ((ok = dec.get(t)) && (ok = dec.get(key)))
            list->emplace_back(t, std::move(key));
        }
      }
    }
    if (ok && !dec.done())
      ok = make_error(error_code::malformed_record,
                      std::to_string(dec.remaining()) + " bytes after the timers");
    if (!ok)
      return std::move(ok).error();
    return p;
  }

  /// Reads one key group's chain (its full piece, then its deltas): its states wait in the
  /// backend until first used, its timers (the last written) are registered now. Registers
  /// nothing unless every piece reads.
  result<void> restore_group(int g, snapshot_reader& r, std::int64_t now) {
    std::vector<detail::state_section> sections;
    // The group's timers as the chain leaves them, processing times on the writer's clock.
    using timer_set = std::set<std::pair<std::int64_t, K>, timer_order>;
    timer_set events, wakeups;
    std::int64_t last_ref = 0;
    bool any = false;
    for (int d = 0;; ++d) {
      const auto name = d == 0 ? key_group_piece(g) : detail::delta_piece(g, d);
      auto bytes = r.get(name);
      if (!bytes)
        return std::move(bytes).error();
      if (!*bytes) {
        if (d == 0)
          continue; // no full piece: the group was empty when last written in full
        break;
      }
      auto where = "key group " + std::to_string(g) + (d == 0 ? "" : " (" + name + ")");
      auto p = read_group_piece(**bytes);
      if (!p)
        return unreadable(where, p.error());
      any = true;
      last_ref = p->clock_ref;
      if (p->timers) {
        events = timer_set(p->timers->events.begin(), p->timers->events.end());
        wakeups.clear();
        for (auto& [t, key] : p->timers->wakeups)
          wakeups.emplace(detail::saturating_add(p->clock_ref, t), key);
      }
      for (auto& c : p->timer_changes) {
        const bool processing = c.domain == time_domain::processing_time;
        auto& set = processing ? wakeups : events;
        std::pair<std::int64_t, K> timer{
          processing ? detail::saturating_add(p->clock_ref, c.time) : c.time, c.key};
        if (c.added)
          set.insert(std::move(timer));
        else
          set.erase(timer);
      }
      for (auto& sec : p->sections) {
        auto it = std::find_if(sections.begin(), sections.end(),
                               [&](auto& s) { return s.name == sec.name; });
        if (it == sections.end()) {
          sections.push_back(std::move(sec));
          continue;
        }
        if (it->type != sec.type || it->ttl != sec.ttl || !sec.entries.empty())
          return unreadable(where, make_error(error_code::malformed_record,
                                              "state '" + sec.name + "' does not continue its "
                                              "earlier pieces"));
        for (auto& delta : sec.deltas)
          it->deltas.push_back(std::move(delta));
      }
    }
    if (!any)
      return {};
    // Processing times (TTL expiries, timers) are kept on the same clock; on a clock behind
    // the checkpoint's they keep the time they had left when the last piece was written.
    const auto shift = std::min<std::int64_t>(0, now - last_ref);
    for (auto& sec : sections) {
      sec.clock_ref = detail::saturating_add(sec.clock_ref, shift);
      for (auto& delta : sec.deltas)
        delta.clock_ref = detail::saturating_add(delta.clock_ref, shift);
    }
    for (auto& [t, key] : events)
      timers_.add(time_domain::event_time, g, t, key);
    for (auto& [t, key] : wakeups)
      timers_.add(time_domain::processing_time, g, detail::saturating_add(t, shift), key);
    if (auto ok = state_->restore_group(g, std::move(sections)); !ok)
      return unreadable("key group " + std::to_string(g), ok.error());
    return {};
  }

  error unreadable(const std::string& where, const error& e) const {
    return make_error(error_code::io_error, "operator '" + info_.name + "', " + where +
                                              ": unreadable checkpoint state: " + e.message);
  }

  void want_wakeup(clock::time_point t) {
    if (!info_.timers || (requested_ && *requested_ <= t))
      return;
    requested_ = t;
    info_.timers->request_wakeup(t);
  }

  static result<void> emit(output& out, std::shared_ptr<batch<Out>> produced) {
    if (produced->records.empty())
      return {};
    return out.emit(0, std::move(produced));
  }

  KeyFn key_fn_;
  F fn_;
  timestamp_fn ts_;
  std::optional<keyed_state_backend<K>> state_;
  timer_table<K> timers_;
  std::optional<clock::time_point> requested_; ///< the earliest wake-up asked for and not received
  clock::time_point proc_now_{};
  const In* element_ = nullptr;         ///< the record in on_element
  std::optional<time_domain> firing_;   ///< the domain of the firing timers
  std::int64_t firing_time_ = 0;        ///< the time of the firing timer
  /// The watermark of the checkpoint restored from (see `restore`).
  event_time restored_watermark_ = min_watermark;
  /// Micro-batches: the watermark at the last epoch's end (Spark 3.4+'s late-row rule).
  event_time late_watermark_ = min_watermark;
  std::uint64_t epoch_dropped_ = 0; ///< late rows dropped in this epoch
  std::vector<detail::delta_chain> chains_; ///< per key group of the range (incremental checkpoints)
};

} // namespace sluice
