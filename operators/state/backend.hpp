#pragma once
/// The per-key storage behind state handles: one table per named state, each split into
/// key groups (keyed_state_table), with TTL bookkeeping.
///
/// Memory: a state without TTL stores its key and payload per key in a slot of a flat
/// hash map (absl, one per key group: one control byte per slot, 7/16 to 7/8 of the slots
/// in use), with no allocation per key. A state with TTL keeps a hash-map node per key
/// holding the payload and two 64-bit times (expiry, and the time of its entry in the
/// cleanup queue), plus one cleanup-queue entry (a time and a copy of the key). Payload
/// references stay valid until the next access to the same state (an insertion may move
/// a flat group's entries).
///
/// Checkpoints: the backend writes and reads its states per key group as `state_section`s
/// (keyed_process.hpp frames them into a piece). States are created by name on first use,
/// so at a restore their payload types are not known yet: a restored section waits, as
/// bytes, until its state is first used and is decoded then (and a checkpoint taken before
/// that writes it on unchanged).
#include "sluice/core/key_group.hpp"
#include "sluice/core/time.hpp"
#include "sluice/operators/keyed_state.hpp"
#include "sluice/operators/state/snapshot_codec.hpp"
#include "sluice/operators/state/state.hpp"

#if __has_include(<cxxabi.h>)
#include <cxxabi.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <typeindex>
#include <type_traits>
#include <typeinfo>
#include <unordered_set>
#include <utility>
#include <vector>

namespace sluice {

/// What the state backend needs to know about time. The keyed operator implements it.
class state_clock {
public:
  /// The operator's current watermark.
  virtual event_time watermark() const noexcept = 0;
  /// Processing time as the operator last read it (once per batch and per timer pass).
  virtual clock::time_point processing_now() const noexcept = 0;
  /// The event time that stamps a write for event-time TTL: the record's event time, the
  /// firing event-time timer's time, or the watermark in a processing-time timer. Nothing
  /// when the stream has no event time.
  virtual std::optional<event_time> write_time() const = 0;
  /// Whether the operator's input stream declares event time.
  virtual bool has_event_time() const noexcept = 0;
  /// A processing-time TTL entry expires at `t`: the operator should wake up then.
  virtual void ttl_deadline(clock::time_point t) = 0;

protected:
  ~state_clock() = default;
};

/// A state a checkpoint holds cannot be taken back: the function now uses it with another
/// payload type or TTL domain, or its bytes do not decode. Thrown by the state call that
/// first uses the state after a restore (only then is its type known); the operator turns
/// it into an `io_error` naming itself. The message names the key group and the state.
class state_restore_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

namespace detail {

/// The changes of one state in one key group since the piece before (an incremental
/// checkpoint's delta): a count, then per changed key the key, 1 and the entry (expiry with
/// TTL, payload) or 0 for an erased or expired key.
struct section_delta {
  std::int64_t clock_ref = 0; ///< as `state_section::clock_ref`, for this delta's entries
  std::string entries;
};

template <class Inspector>
bool inspect(Inspector& f, section_delta& x) {
  return f.object("section_delta")
    .fields(f.field("clock_ref", x.clock_ref), f.field("entries", x.entries));
}

/// One named state of one key group in a checkpoint.
struct state_section {
  std::string name;
  /// The payload's type (`typeid(P).name()`): a restore into another type is refused, not
  /// misread (the binary codec carries no schema).
  std::string type;
  std::uint8_t ttl = 0; ///< 0: none, 1: processing time, 2: event time (`ttl_tag`)
  std::uint8_t update = 0;
  std::int64_t ttl_ns = 0;
  /// The processing time `entries` are relative to: their processing-time expiries are
  /// offsets from it, so a restore can re-anchor them on another clock (see keyed_process).
  std::int64_t clock_ref = 0;
  /// A count, then per key: the key, its expiry (with TTL; event time in microseconds),
  /// the payload. Empty when the state had no entry in the group's last full piece.
  std::string entries;
  /// Changes to apply after `entries`, oldest first: a delta piece holds one; a restored
  /// section not yet decoded when a checkpoint writes it again carries all of its chain's.
  std::vector<section_delta> deltas;
};

template <class Inspector>
bool inspect(Inspector& f, state_section& x) {
  return f.object("state_section")
    .fields(f.field("name", x.name), f.field("type", x.type), f.field("ttl", x.ttl),
            f.field("update", x.update), f.field("ttl_ns", x.ttl_ns),
            f.field("clock_ref", x.clock_ref), f.field("entries", x.entries),
            f.field("deltas", x.deltas));
}

inline std::uint8_t ttl_tag(const std::optional<state_ttl>& t) noexcept {
  if (!t)
    return 0;
  return t->domain == time_domain::processing_time ? 1 : 2;
}
inline std::string ttl_text(std::uint8_t tag) {
  return tag == 0 ? "no TTL" : tag == 1 ? "a processing-time TTL" : "an event-time TTL";
}

/// A type name for messages: demangled where the ABI offers it.
inline std::string readable_type(const std::string& mangled) {
#if __has_include(<cxxabi.h>)
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> s{abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr,
                                                               &status),
                                           std::free};
  if (status == 0 && s)
    return s.get();
#endif
  return mangled;
}

/// A strict weak order on keys, for ordered timer sets: `<` where it exists, else the
/// bytes, but only for keys whose bytes are their value (no padding, no floating point:
/// equal keys with different padding would be two keys to the timer set).
template <class K>
struct key_less {
  bool operator()(const K& a, const K& b) const noexcept {
    if constexpr (std::totally_ordered<K>) {
      return a < b;
    } else {
      static_assert(std::has_unique_object_representations_v<K>,
                    "timers need keys with operator< (e.g. a defaulted operator<=>), or keys "
                    "without padding or floating-point members");
      return std::memcmp(&a, &b, sizeof(K)) < 0;
    }
  }
};

inline std::int64_t saturating_add(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t r;
  if (__builtin_add_overflow(a, b, &r))
    return b > 0 ? std::numeric_limits<std::int64_t>::max() : std::numeric_limits<std::int64_t>::min();
  return r;
}

/// A time as a 64-bit tick count of its domain: microseconds since the epoch for event
/// time, the steady clock's ticks for processing time.
inline std::int64_t ticks(event_time t) noexcept { return t.time_since_epoch().count(); }
inline std::int64_t ticks(clock::time_point t) noexcept { return t.time_since_epoch().count(); }
inline event_time event_time_of(std::int64_t t) noexcept { return event_time{duration{t}}; }
inline clock::time_point processing_time_of(std::int64_t t) noexcept {
  return clock::time_point{clock::time_point::duration{t}};
}

/// Where the current key is; shared by every slot of one backend.
template <class K>
struct key_cursor {
  const K* key = nullptr;
  int key_group = 0;
};

/// One named state of one operator instance, whatever its kind.
template <class K>
class state_slot {
public:
  state_slot(std::string name, std::type_index type, std::optional<state_ttl> ttl)
    : name_(std::move(name)), type_(type), ttl_(ttl) {}
  virtual ~state_slot() = default;

  /// Keys holding an entry, expired ones not yet freed included.
  virtual std::size_t size() const noexcept = 0;

  /// Writes and removals by the function since the last call (Spark's numRowsUpdated and
  /// numRowsRemoved of a stateful processor), then starts counting anew.
  std::pair<std::uint64_t, std::uint64_t> take_write_counts() noexcept {
    const std::uint64_t written = distinct_ ? distinct_->size() : std::exchange(writes_, 0);
    if (distinct_)
      distinct_->clear();
    return {written, std::exchange(removals_, 0)};
  }
  /// Counts keys written rather than writes: Spark hands a processor all of a key's rows
  /// of a batch at once, so it writes a key's state once per batch where a function called
  /// per record writes it per record.
  void count_keys_written() { distinct_.emplace(); }

protected:
  void count_write(const K& key) {
    if (distinct_)
      distinct_->insert(key);
    else
      ++writes_;
  }
  std::uint64_t writes_ = 0, removals_ = 0;
  std::optional<std::unordered_set<K, key_hash<K>>> distinct_;

public:
  /// Frees the entries whose TTL in `domain` ran out by `now` (ticks); returns how many.
  virtual std::size_t expire(time_domain domain, std::int64_t now) = 0;
  /// The earliest time the cleanup queue wants to look at again (maybe early), or nothing.
  virtual std::optional<std::int64_t> next_expiry() const = 0;

  /// The live entries of `key_group` as a section's `entries`, made later on another thread
  /// from the group as it is now (frozen: keyed_state_table::freeze); nothing when it holds
  /// no entry.
  /// Expired entries (by the time now) are left out: they are invisible already and must
  /// stay so after a restore, whose clocks start behind. Processing-time expiries become
  /// offsets from `clock_ref`. The function fails when the key or payload type has no
  /// codec form.
  using frozen_entries = std::function<result<std::optional<std::string>>()>;
  virtual std::optional<frozen_entries> freeze(int key_group, std::int64_t clock_ref) = 0;
  /// Adds the entries `freeze` wrote for `key_group`, processing-time expiries re-anchored
  /// at `clock_ref`. Fails on bytes that do not decode.
  virtual result<void> decode(int key_group, std::string_view entries, std::int64_t clock_ref) = 0;

  // Incremental checkpoints: writes note the keys they change (keyed_state_table's change
  // log), and a checkpoint writes only those keys' entries when they are few.

  /// Whether `freeze_changes` works (else every checkpoint writes the state in full).
  virtual bool can_freeze_changes() const noexcept = 0;
  /// The keys of `key_group` changed since the last call (see `change_log`).
  virtual change_log<K> take_changes(int key_group) = 0;
  /// Entries held in `key_group`.
  virtual std::size_t group_size(int key_group) const noexcept = 0;
  /// The entries of `keys` as they are now, copied now and encoded later as a
  /// `section_delta`'s entries (an expired entry counts as erased).
  virtual frozen_entries freeze_changes(int key_group, std::vector<K> keys,
                                        std::int64_t clock_ref) const = 0;
  /// Applies a `section_delta`'s entries written by `freeze_changes`.
  virtual result<void> decode_delta(int key_group, std::string_view entries,
                                    std::int64_t clock_ref) = 0;

  const std::string& name() const noexcept { return name_; }
  std::type_index type() const noexcept { return type_; }
  const std::optional<state_ttl>& ttl() const noexcept { return ttl_; }

private:
  std::string name_;
  std::type_index type_;
  std::optional<state_ttl> ttl_;
};

template <class P, bool Ttl>
struct cell {
  P payload;
};
template <class P>
struct cell<P, true> {
  P payload;
  std::int64_t expires = 0;   ///< invisible once the domain's time reaches this
  std::int64_t queued_at = 0; ///< the time of this key's live entry in the cleanup queue
};

/// The storage of one named state: `P` per key, with TTL when `Ttl`.
///
/// Cleanup queue (TTL only): per key group a min-heap of (time, key) with one live entry
/// per stored key, pushed when the key is inserted. Popping an entry whose key was
/// refreshed re-queues it at the new expiry; entries of keys erased meanwhile (cleared, or
/// lazily dropped on read) are recognised by `queued_at` and discarded. So the queue holds
/// at most one entry per key plus one per erase since the last pass, and a pass costs
/// O(log n) per due entry.
template <class K, class P, bool Ttl>
class slot final : public state_slot<K>, public cell_access<P> {
public:
  using cell_type = cell<P, Ttl>;
  /// Flat (one slot per key, no allocation) without TTL. With TTL a node per key: a slot of
  /// key and cell (32 bytes for an int64 payload) in a table at about half load cost more
  /// than the node (state-memory: 86 against 76 bytes per key at 1M keys).
  using table_type =
    std::conditional_t<Ttl, keyed_state_table<K, cell_type>, flat_state_table<K, cell_type>>;

  slot(std::string name, std::optional<state_ttl> ttl, key_group_range range,
       const key_cursor<K>& cursor, state_clock& clk)
    : state_slot<K>(std::move(name), typeid(P), ttl),
      cursor_(&cursor),
      clock_(&clk),
      table_(range) {
    if constexpr (Ttl) {
      heaps_.resize(static_cast<std::size_t>(range.size()));
      domain_ = ttl->domain;
      update_on_read_ = ttl->update == ttl_update::on_read_and_write;
      ttl_ticks_ = domain_ == time_domain::event_time
                     ? std::chrono::ceil<duration>(ttl->ttl).count()
                     : std::chrono::ceil<clock::time_point::duration>(ttl->ttl).count();
    }
  }

  // -- cell_access ------------------------------------------------------------------------

  P* find() override {
    auto& g = group();
    auto it = g.find(*cursor_->key);
    if (it == g.end())
      return nullptr;
    if constexpr (Ttl) {
      if (now() >= it->second.expires) {
        g.erase(it); // lazy cleanup; the queue entry goes stale (see queued_at)
        note_change();
        return nullptr;
      }
      if (update_on_read_) {
        it->second.expires = std::max(it->second.expires, new_expiry());
        note_change();
      }
    }
    return &it->second.payload;
  }

  const P* get() override {
    const auto& g = table_.view(cursor_->key_group);
    auto it = g.find(*cursor_->key);
    if (it == g.end())
      return nullptr;
    if constexpr (Ttl)
      if (update_on_read_ || now() >= it->second.expires)
        return find(); // restarts the TTL or drops the entry: a change
    return &it->second.payload;
  }

  P& write() override {
    auto& g = group();
    this->count_write(*cursor_->key);
    auto [it, fresh] = g.try_emplace(*cursor_->key);
    if constexpr (Ttl)
      stamp(it->second, fresh, [&](cell_type& c) { c.payload = P{}; });
    note_change(); // the caller changes the payload through the reference
    return it->second.payload;
  }

  void put(P value) override {
    auto& g = group();
    this->count_write(*cursor_->key);
    note_change();
    auto it = g.find(*cursor_->key);
    if (it == g.end()) {
      it = g.try_emplace(*cursor_->key, cell_type{std::move(value)}).first;
      if constexpr (Ttl)
        stamp(it->second, true, [](cell_type&) {});
      return;
    }
    it->second.payload = std::move(value);
    if constexpr (Ttl)
      stamp(it->second, false, [](cell_type&) {});
  }

  void erase() override {
    if (group().erase(*cursor_->key)) {
      ++this->removals_;
      note_change();
    }
  }

  // -- state_slot -------------------------------------------------------------------------

  std::size_t size() const noexcept override { return table_.size(); }

  std::size_t expire(time_domain domain, std::int64_t now) override {
    if constexpr (!Ttl) {
      return 0;
    } else {
      if (domain != domain_)
        return 0;
      std::size_t freed = 0;
      const auto range = table_.range();
      for (int kg = range.first; kg < range.last; ++kg) {
        auto& heap = heaps_[static_cast<std::size_t>(kg - range.first)];
        if (heap.empty() || heap.front().first > now)
          continue; // leaves the group shared with a checkpoint still writing it
        auto& g = table_.group(kg);
        while (!heap.empty() && heap.front().first <= now) {
          std::pop_heap(heap.begin(), heap.end(), later);
          auto [at, key] = std::move(heap.back());
          heap.pop_back();
          auto it = g.find(key);
          if (it == g.end() || it->second.queued_at != at)
            continue; // stale: the key was erased (and maybe re-created) since
          if (now >= it->second.expires) {
            table_.note_change(kg, key);
            g.erase(it);
            ++freed;
          } else {
            it->second.queued_at = it->second.expires;
            heap.emplace_back(it->second.expires, std::move(key));
            std::push_heap(heap.begin(), heap.end(), later);
          }
        }
      }
      return freed;
    }
  }

  std::optional<std::int64_t> next_expiry() const override {
    std::optional<std::int64_t> best;
    if constexpr (Ttl)
      for (auto& h : heaps_)
        if (!h.empty() && (!best || h.front().first < *best))
          best = h.front().first;
    return best;
  }

  static constexpr bool snapshottable = snapshottable_v<K> && snapshottable_v<P>;
  /// Deltas copy the changed entries in the pause: the payload must be copyable.
  static constexpr bool deltas_possible = snapshottable && std::is_copy_constructible_v<P>;

  std::optional<typename state_slot<K>::frozen_entries> freeze(int key_group,
                                                               std::int64_t clock_ref) override {
    if (table_.view(key_group).empty())
      return std::nullopt;
    using made = result<std::optional<std::string>>;
    auto frozen = table_.template freeze<made>(
      key_group, [at = Ttl ? now() : 0, clock_ref, domain = domain_,
                  name = this->name()](const typename decltype(table_)::map_type& map) {
        return encode_entries(map, at, clock_ref, domain, name);
      });
    return take_later(std::move(frozen));
  }

  /// The live entries of `map` (expired ones, by `at` in `domain`, left out) as a section's
  /// `entries`, or nothing when none is live. Touches nothing of the slot.
  template <class Map>
  static result<std::optional<std::string>> encode_entries(const Map& map, std::int64_t at,
                                                           std::int64_t clock_ref,
                                                           time_domain domain,
                                                           const std::string& name) {
    if constexpr (!snapshottable) {
      return make_error(error_code::invalid_graph,
                        "state '" + name + "' cannot be checkpointed: give its key and "
                        "value types an inspect() function");
    } else {
      state_encoder body;
      std::uint64_t n = 0;
      for (const auto& [key, c] : map) {
        if constexpr (Ttl)
          if (at >= c.expires)
            continue;
        body.put(key);
        if constexpr (Ttl)
          body.put(domain == time_domain::processing_time ? c.expires - clock_ref : c.expires);
        body.put(c.payload);
        ++n;
      }
      if (n == 0)
        return std::optional<std::string>{};
      state_encoder head;
      head.put(n);
      return std::optional<std::string>{head.take() + body.take()};
    }
  }

  change_log<K> take_changes(int key_group) override { return table_.take_changes(key_group); }
  std::size_t group_size(int key_group) const noexcept override {
    return table_.view(key_group).size();
  }

  bool can_freeze_changes() const noexcept override { return deltas_possible; }

  typename state_slot<K>::frozen_entries freeze_changes(int key_group, std::vector<K> keys,
                                                        std::int64_t clock_ref) const override {
    if constexpr (!deltas_possible) {
      return [name = this->name()]() -> result<std::optional<std::string>> {
        return make_error(error_code::internal,
                          "state '" + name + "': no incremental checkpoint for this type");
      };
    } else {
      // The pause: copy each changed key's cell as of the barrier (an expired one counts
      // as erased).
      const auto at = Ttl ? now() : 0;
      auto changes = copy_changes(table_.view(key_group), std::move(keys), [at](const cell_type& c) {
        if constexpr (Ttl)
          return at < c.expires;
        else
          return true;
      });
      return [changes = std::move(changes), clock_ref,
              domain = domain_]() -> result<std::optional<std::string>> {
        return std::optional<std::string>{
          encode_changes(changes, [&](state_encoder& enc, const cell_type& c) {
            if constexpr (Ttl)
              enc.put(domain == time_domain::processing_time ? c.expires - clock_ref : c.expires);
            enc.put(c.payload);
          })};
      };
    }
  }

  result<void> decode_delta(int key_group, std::string_view entries,
                            std::int64_t clock_ref) override {
    return read_entries(key_group, entries, clock_ref, true);
  }

  result<void> decode(int key_group, std::string_view entries, std::int64_t clock_ref) override {
    return read_entries(key_group, entries, clock_ref, false);
  }

  /// Reads a section's entries or, with `delta`, a delta's (a flag per key: 1 and the
  /// entry, or 0 for an erasure) into `key_group`.
  result<void> read_entries(int key_group, std::string_view entries, std::int64_t clock_ref,
                            bool delta) {
    if constexpr (!snapshottable) {
      return make_error(error_code::invalid_graph,
                        "state '" + this->name() + "' cannot be checkpointed: give its key and "
                        "value types an inspect() function");
    } else {
      state_decoder dec{entries};
      std::uint64_t n = 0;
      if (auto ok = dec.get(n); !ok)
        return ok;
      if (n > 1 && n > dec.remaining()) // every entry takes at least a byte
        return make_error(error_code::malformed_record,
                          std::to_string(n) + " entries in " + std::to_string(dec.remaining()) +
                            " bytes");
      auto& g = table_.group(key_group);
      std::optional<std::int64_t> earliest;
      for (std::uint64_t i = 0; i < n; ++i) {
        K key{};
        P payload{};
        std::int64_t expires = 0;
        if (auto ok = dec.get(key); !ok)
          return ok;
        if (delta) {
          bool present = false;
          if (auto ok = get_change_flag(dec, present); !ok)
            return ok;
          if (!present) {
            g.erase(key); // its cleanup-queue entry goes stale (see queued_at)
            continue;
          }
        }
        if constexpr (Ttl) {
          if (auto ok = dec.get(expires); !ok)
            return ok;
          if (domain_ == time_domain::processing_time)
            expires = saturating_add(clock_ref, expires);
        }
        if (auto ok = dec.get(payload); !ok)
          return ok;
        if constexpr (Ttl) {
          auto& heap = heaps_[static_cast<std::size_t>(key_group - table_.range().first)];
          heap.emplace_back(expires, key);
          std::push_heap(heap.begin(), heap.end(), later);
          if (!earliest || expires < *earliest)
            earliest = expires;
        }
        auto& c = g.insert_or_assign(std::move(key), cell_type{std::move(payload)}).first->second;
        if constexpr (Ttl)
          c.expires = c.queued_at = expires;
      }
      if (!dec.done())
        return make_error(error_code::malformed_record,
                          std::to_string(dec.remaining()) + " bytes after the last entry");
      if (earliest && domain_ == time_domain::processing_time)
        clock_->ttl_deadline(processing_time_of(*earliest));
      return {};
    }
  }

private:
  using queue_entry = std::pair<std::int64_t, K>;
  static bool later(const queue_entry& a, const queue_entry& b) noexcept {
    return a.first > b.first;
  }

  typename table_type::map_type& group() {
    return table_.group(cursor_->key_group);
  }
  void note_change() { table_.note_change(cursor_->key_group, *cursor_->key); }

  std::int64_t now() const {
    return domain_ == time_domain::event_time ? ticks(clock_->watermark())
                                              : ticks(clock_->processing_now());
  }
  std::int64_t new_expiry() const {
    std::int64_t at;
    if (domain_ == time_domain::event_time) {
      auto w = clock_->write_time();
      at = ticks(w ? *w : clock_->watermark());
    } else {
      at = ticks(clock_->processing_now());
    }
    return saturating_add(at, ttl_ticks_);
  }

  /// A write to `c`: a fresh or expired cell starts over (`reset` empties an expired
  /// payload that is about to be appended to), a live one only moves its expiry forward.
  template <class Reset>
  void stamp(cell_type& c, bool fresh, Reset reset) {
    const auto exp = new_expiry();
    if (fresh) {
      c.expires = exp;
      c.queued_at = exp;
      auto& heap = heaps_[static_cast<std::size_t>(cursor_->key_group - table_.range().first)];
      heap.emplace_back(exp, *cursor_->key);
      std::push_heap(heap.begin(), heap.end(), later);
      if (domain_ == time_domain::processing_time)
        clock_->ttl_deadline(processing_time_of(exp));
      return;
    }
    if (now() >= c.expires) {
      // Expired but not yet freed: a new entry. Its queue entry (at or before the old
      // expiry) is due and will re-queue it at the new expiry.
      reset(c);
      c.expires = exp;
    } else {
      c.expires = std::max(c.expires, exp);
    }
  }

  const key_cursor<K>* cursor_;
  state_clock* clock_;
  table_type table_;
  std::vector<std::vector<queue_entry>> heaps_; // per key group; TTL only
  time_domain domain_ = time_domain::processing_time;
  bool update_on_read_ = false;
  std::int64_t ttl_ticks_ = 0;
};

inline std::uint64_t next_backend_id() noexcept {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

inline bool same_ttl(const std::optional<state_ttl>& a, const std::optional<state_ttl>& b) {
  if (a.has_value() != b.has_value())
    return false;
  return !a || (a->ttl == b->ttl && a->domain == b->domain && a->update == b->update);
}

} // namespace detail

/// Every named state of one keyed operator instance.
///
/// Concurrency: owned by one operator instance, used only from its task's thread.
template <class K>
class keyed_state_backend {
public:
  keyed_state_backend(key_group_range range, state_clock& clk) : range_(range), clock_(&clk) {}
  keyed_state_backend(const keyed_state_backend&) = delete;
  keyed_state_backend& operator=(const keyed_state_backend&) = delete;

  /// Scopes every state to `key` (which must outlive the call using the state).
  void set_current_key(const K& key, int key_group) noexcept {
    cursor_.key = &key;
    cursor_.key_group = key_group;
  }
  const K* current_key() const noexcept { return cursor_.key; }
  int current_key_group() const noexcept { return cursor_.key_group; }

  /// The storage of the state `name` with payload `P`, created on first use.
  /// `cache` (a descriptor's) skips the name lookup after the first call.
  /// Throws `state_usage_error` when `name` exists with another payload type or TTL, when
  /// the TTL is not positive, or for an event-time TTL without event time.
  template <class P>
  detail::cell_access<P>* resolve(std::string_view name, const std::optional<state_ttl>& ttl,
                                  std::uint64_t* cache_owner = nullptr, int* cache_slot = nullptr) {
    if (cache_owner && *cache_owner == id_ && *cache_slot >= 0)
      return access<P>(static_cast<std::size_t>(*cache_slot));
    std::size_t i = 0;
    while (i < slots_.size() && slots_[i]->name() != name)
      ++i;
    if (i < slots_.size()) {
      if (slots_[i]->type() != std::type_index{typeid(P)} || !detail::same_ttl(slots_[i]->ttl(), ttl))
        throw state_usage_error{"state '" + std::string{name} +
                                "' is already registered with another type or TTL"};
    } else {
      if (ttl && ttl->ttl.count() <= 0)
        throw state_usage_error{"state '" + std::string{name} + "': the TTL must be positive"};
      if (ttl && ttl->domain == time_domain::event_time && !clock_->has_event_time())
        throw state_usage_error{"state '" + std::string{name} +
                                "' has an event-time TTL, but the stream has no event time "
                                "(give the source a watermark strategy or call "
                                "with_timestamps before key_by)"};
      if (checkpointed_ && !detail::snapshottable_v<P>)
        throw state_usage_error{"state '" + std::string{name} +
                                "' cannot be checkpointed: its type has no inspect() function "
                                "(give it one, or run the job without checkpoints)"};
      std::unique_ptr<detail::state_slot<K>> s;
      if (ttl)
        s = std::make_unique<detail::slot<K, P, true>>(std::string{name}, ttl, range_, cursor_,
                                                       *clock_);
      else
        s = std::make_unique<detail::slot<K, P, false>>(std::string{name}, ttl, range_, cursor_,
                                                        *clock_);
      take_restored(*s);
      if (count_keys_written_)
        s->count_keys_written();
      slots_.push_back(std::move(s));
    }
    if (cache_owner) {
      *cache_owner = id_;
      *cache_slot = static_cast<int>(i);
    }
    return access<P>(i);
  }

  /// Keys holding an entry in state `name` (expired but not yet freed ones included); 0
  /// for an unknown name.
  std::size_t size(std::string_view name) const noexcept {
    for (auto& s : slots_)
      if (s->name() == name)
        return s->size();
    std::size_t n = 0;
    if (auto it = restored_.find(name); it != restored_.end())
      for (auto& [kg, section] : it->second) {
        detail::state_decoder dec{section.entries}; // starts with the entry count
        std::uint64_t count = 0;
        if (dec.get(count))
          n += static_cast<std::size_t>(count);
      }
    return n;
  }

  /// Entries over all states (for metrics).
  std::size_t total_entries() const noexcept {
    std::size_t n = 0;
    for (auto& s : slots_)
      n += s->size();
    return n;
  }

  /// Every state counts keys written, not writes (state_slot::count_keys_written).
  void count_keys_written() {
    count_keys_written_ = true;
    for (auto& s : slots_)
      s->count_keys_written();
  }

  /// Writes and removals over all states since the last call (state_slot::take_write_counts).
  std::pair<std::uint64_t, std::uint64_t> take_write_counts() noexcept {
    std::pair<std::uint64_t, std::uint64_t> n{};
    for (auto& s : slots_) {
      auto [w, r] = s->take_write_counts();
      n.first += w;
      n.second += r;
    }
    return n;
  }

  /// Frees every entry whose TTL in `domain` ran out by `now`; returns how many.
  std::size_t expire(time_domain domain, std::int64_t now) {
    std::size_t n = 0;
    for (auto& s : slots_)
      n += s->expire(domain, now);
    return n;
  }

  /// The earliest time (ticks) a processing-time TTL cleanup pass is due, or nothing.
  std::optional<std::int64_t> next_processing_expiry() const {
    std::optional<std::int64_t> best;
    for (auto& s : slots_)
      if (s->ttl() && s->ttl()->domain == time_domain::processing_time)
        if (auto t = s->next_expiry(); t && (!best || *t < *best))
          best = t;
    return best;
  }

  key_group_range key_groups() const noexcept { return range_; }

  // -- checkpoints ------------------------------------------------------------------------

  /// In a job with checkpoints a state whose type has no codec form is refused when it is
  /// first used (states are declared by use, so the operator cannot refuse it at start).
  void set_checkpointed(bool on) noexcept { checkpointed_ = on; }

  using frozen_sections = std::function<result<std::vector<detail::state_section>>()>;

  /// The sections of `key_group`, to be made later (on the writer thread) as they are now:
  /// every state with live entries there, plus sections restored earlier whose state has
  /// not been used since (written on unchanged, so a checkpoint right after a restore loses
  /// nothing). Nothing when the key group holds no state. `clock_ref` is the processing
  /// time now. The states' groups are frozen (keyed_state_table::freeze), so the call costs
  /// a reference per state, not the state's size.
  std::optional<frozen_sections> freeze_group(int key_group, std::int64_t clock_ref) {
    struct part {
      typename detail::state_slot<K>::frozen_entries entries;
      detail::state_section head;
    };
    std::vector<part> parts;
    for (auto& s : slots_) {
      auto entries = s->freeze(key_group, clock_ref);
      if (!entries)
        continue;
      parts.push_back(part{std::move(*entries), section_head(*s, clock_ref)});
    }
    std::vector<detail::state_section> restored;
    for (auto& [name, groups] : restored_)
      if (auto it = groups.find(key_group); it != groups.end())
        restored.push_back(it->second);
    if (parts.empty() && restored.empty())
      return std::nullopt;
    return [parts = std::move(parts),
            restored = std::move(restored)]() -> result<std::vector<detail::state_section>> {
      std::vector<detail::state_section> out = restored;
      for (auto& p : parts) {
        auto entries = p.entries();
        if (!entries)
          return std::move(entries).error();
        if (!*entries)
          continue; // every entry expired
        out.push_back(p.head);
        out.back().entries = std::move(**entries);
      }
      // By name: the same state gives the same bytes, whatever order the function used it in.
      std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.name < b.name; });
      return out;
    };
  }

  /// What the states of one key group changed since the last call to `take_changes`.
  struct group_changes {
    std::vector<change_log<K>> logs; ///< per state, in registration order
    std::size_t keys = 0;            ///< changed keys listed, repeats included
    /// Some state cannot list its changes (too many, new since, or no delta form): the
    /// key group must be written in full.
    bool full = false;
  };
  group_changes take_changes(int key_group) {
    group_changes out;
    for (auto& s : slots_) {
      auto log = s->take_changes(key_group);
      out.full = out.full || log.overflowed || !s->can_freeze_changes();
      out.keys += log.keys.size();
      out.logs.push_back(std::move(log));
    }
    return out;
  }
  /// Entries held in `key_group` by the states in use.
  std::size_t group_entries(int key_group) const noexcept {
    std::size_t n = 0;
    for (auto& s : slots_)
      n += s->group_size(key_group);
    return n;
  }

  /// The changes `take_changes` listed (not `full`), as sections holding one delta each,
  /// made later on another thread from the entries as they are now (copied now). Nothing
  /// when no state changed.
  std::optional<frozen_sections> freeze_changes(int key_group, group_changes changes,
                                                std::int64_t clock_ref) const {
    struct part {
      typename detail::state_slot<K>::frozen_entries entries;
      detail::state_section head;
    };
    std::vector<part> parts;
    for (std::size_t i = 0; i < changes.logs.size(); ++i) {
      auto& keys = changes.logs[i].keys;
      if (keys.empty())
        continue;
      parts.push_back(part{slots_[i]->freeze_changes(key_group, std::move(keys), clock_ref),
                           section_head(*slots_[i], clock_ref)});
    }
    if (parts.empty())
      return std::nullopt;
    return [parts = std::move(parts), clock_ref]() -> result<std::vector<detail::state_section>> {
      std::vector<detail::state_section> out;
      for (auto& p : parts) {
        auto entries = p.entries();
        if (!entries)
          return std::move(entries).error();
        out.push_back(p.head);
        out.back().deltas.push_back(detail::section_delta{clock_ref, std::move(**entries)});
      }
      std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.name < b.name; });
      return out;
    };
  }

  /// `freeze_group`, made now.
  result<std::vector<detail::state_section>> snapshot_group(int key_group,
                                                            std::int64_t clock_ref) {
    auto frozen = freeze_group(key_group, clock_ref);
    if (!frozen)
      return std::vector<detail::state_section>{};
    return (*frozen)();
  }

  /// Takes the sections a checkpoint holds for `key_group` (with the deltas of its chain
  /// appended, see keyed_process). Each waits until its state is first used. Their clock
  /// references must be re-anchored already: processing-time expiries are kept as they
  /// are on the same clock, else moved so that each keeps the time it had left. Throws
  /// nothing; a duplicate name is an error.
  result<void> restore_group(int key_group, std::vector<detail::state_section> sections) {
    for (auto& sec : sections) {
      const auto name = sec.name;
      if (std::any_of(slots_.begin(), slots_.end(), [&](auto& s) { return s->name() == name; }))
        return make_error(error_code::internal,
                          "state '" + name + "' is restored after its first use");
      if (!restored_[name].emplace(key_group, std::move(sec)).second)
        return make_error(error_code::malformed_record, "state '" + name + "' appears twice");
    }
    return {};
  }

private:
  /// Decodes the restored sections of `s`'s name into `s`. Throws `state_restore_error`.
  void take_restored(detail::state_slot<K>& s) {
    auto it = restored_.find(s.name());
    if (it == restored_.end())
      return;
    for (auto& [kg, sec] : it->second) {
      const auto where = "key group " + std::to_string(kg) + ", state '" + s.name() + "': ";
      if (sec.type != s.type().name())
        throw state_restore_error{where + "the checkpoint holds type " +
                                  detail::readable_type(sec.type) + ", the function uses " +
                                  detail::readable_type(s.type().name())};
      if (sec.ttl != detail::ttl_tag(s.ttl()))
        throw state_restore_error{where + "the checkpoint holds it with " +
                                  detail::ttl_text(sec.ttl) + ", the function declares " +
                                  detail::ttl_text(detail::ttl_tag(s.ttl()))};
      if (!sec.entries.empty())
        if (auto ok = s.decode(kg, sec.entries, sec.clock_ref); !ok)
          throw state_restore_error{where + "unreadable state: " + ok.error().message};
      for (std::size_t d = 0; d < sec.deltas.size(); ++d)
        if (auto ok = s.decode_delta(kg, sec.deltas[d].entries, sec.deltas[d].clock_ref); !ok)
          throw state_restore_error{where + "unreadable state (delta " + std::to_string(d + 1) +
                                    "): " + ok.error().message};
    }
    restored_.erase(it);
  }

  static detail::state_section section_head(const detail::state_slot<K>& s,
                                            std::int64_t clock_ref) {
    detail::state_section head;
    head.name = s.name();
    head.type = s.type().name();
    head.ttl = detail::ttl_tag(s.ttl());
    if (s.ttl()) {
      head.update = static_cast<std::uint8_t>(s.ttl()->update);
      head.ttl_ns = s.ttl()->ttl.count();
    }
    head.clock_ref = clock_ref;
    return head;
  }

  template <class P>
  detail::cell_access<P>* access(std::size_t i) {
    auto* s = slots_[i].get();
    // The payload type was checked at registration; the TTL flag picks the class.
    if (s->ttl())
      return static_cast<detail::slot<K, P, true>*>(s);
    return static_cast<detail::slot<K, P, false>*>(s);
  }

  key_group_range range_;
  state_clock* clock_;
  detail::key_cursor<K> cursor_;
  std::vector<std::unique_ptr<detail::state_slot<K>>> slots_;
  bool count_keys_written_ = false;
  /// Restored sections by state name, then key group, until the state is first used.
  std::map<std::string, std::map<int, detail::state_section>, std::less<>> restored_;
  bool checkpointed_ = false;
  std::uint64_t id_ = detail::next_backend_id();
};

} // namespace sluice
