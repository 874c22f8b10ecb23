#pragma once
/// Keyed state as user functions see it: `value_state<V>`, `list_state<V>`,
/// `map_state<UK, UV>`, their TTL options and descriptors.
///
/// A handle is scoped to the key of the record (or timer) being processed and is valid only
/// during the call that obtained it from its context (`keyed_process_context`). Handles do
/// not depend on the key type: the per-key storage behind them (operators/state/backend.hpp)
/// does, and reaches it through one virtual call per access.
#include "sluice/core/key_group.hpp"
#include "sluice/core/time.hpp"
#include "sluice/operators/keyed_state.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sluice {

/// Which clock a timer or a TTL follows.
enum class time_domain : std::uint8_t {
  event_time,      ///< the watermark
  processing_time, ///< the job's (injectable) processing clock
};

/// When the time-to-live of a state entry restarts (Flink's `StateTtlConfig.UpdateType`).
enum class ttl_update : std::uint8_t {
  on_create_and_write, ///< every write (update, add, put, remove) restarts it
  on_read_and_write,   ///< reads of a live entry restart it too
};

/// Time-to-live of one state. An entry whose TTL ran out is invisible at once (reads see
/// no value) and its memory is freed later (see docs/state-and-timers.md).
///
/// - processing time: an entry written at processing time p expires when the clock
///   reaches p + ttl.
/// - event time: an entry written while processing a record with event time e expires when
///   the watermark reaches e + ttl. In `on_timer` the write time is the timer's time
///   (event-time timers) or the current watermark (processing-time timers). Writes never
///   move an entry's expiry backwards, so an out-of-order record cannot shorten it.
struct state_ttl {
  std::chrono::nanoseconds ttl{};                      ///< must be positive
  time_domain domain = time_domain::processing_time;   ///< which clock expires entries
  ttl_update update = ttl_update::on_create_and_write; ///< what restarts the TTL

  static state_ttl processing(std::chrono::nanoseconds ttl,
                              ttl_update u = ttl_update::on_create_and_write) {
    return {ttl, time_domain::processing_time, u};
  }
  static state_ttl event(std::chrono::nanoseconds ttl,
                         ttl_update u = ttl_update::on_create_and_write) {
    return {ttl, time_domain::event_time, u};
  }
};

/// A misuse of the state or timer API by a user function (a state name registered twice
/// with different types, an event-time TTL on a stream without event time, a timer without
/// a matching `on_timer`). The operator turns it into an `invalid_option` error naming the
/// operator; it is thrown only from the context calls that detect it.
class state_usage_error : public std::logic_error {
public:
  using std::logic_error::logic_error;
};

namespace detail {

/// Access to the cell of the current key in one named state. `P` is the stored payload:
/// `V` for a value, `std::vector<V>` for a list, a hash map for a map.
template <class P>
class cell_access {
public:
  /// The live payload of the current key, or null (absent or expired), to change it in
  /// place. With `on_read_and_write` a hit restarts the TTL.
  virtual P* find() = 0;
  /// `find` for reading only: a group frozen for a checkpoint stays frozen (unless the
  /// read restarts a TTL or drops an expired entry, which change the group).
  virtual const P* get() = 0;
  /// The payload of the current key, created empty when absent or expired; counts as a
  /// write (restarts the TTL).
  virtual P& write() = 0;
  /// Sets the payload of the current key; a write.
  virtual void put(P value) = 0;
  /// Drops the current key's entry.
  virtual void erase() = 0;

protected:
  ~cell_access() = default;
};

} // namespace detail

/// One value per key (Flink's `ValueState`).
template <class V>
class value_state {
public:
  using payload_type = V;
  explicit value_state(detail::cell_access<V>* cell) noexcept : cell_(cell) {}

  /// The value of the current key, or nothing.
  std::optional<V> value() const {
    if (auto* v = cell_->get())
      return *v;
    return std::nullopt;
  }
  /// The value of the current key without a copy, or null. The pointer is valid until the
  /// next access to this state (other states may be used meanwhile), as Flink's heap state
  /// hands out the stored object: for values whose copy costs (strings, vectors).
  const V* get() const { return cell_->get(); }
  /// The value of the current key, or `fallback`.
  V value_or(V fallback) const {
    if (auto* v = cell_->get())
      return *v;
    return fallback;
  }
  bool exists() const { return cell_->get() != nullptr; }
  void update(V v) { cell_->put(std::move(v)); }
  void clear() { cell_->erase(); }

private:
  detail::cell_access<V>* cell_;
};

/// A list per key (Flink's `ListState`). The TTL covers the whole list: `add` restarts it.
template <class V>
class list_state {
public:
  using payload_type = std::vector<V>;
  explicit list_state(detail::cell_access<payload_type>* cell) noexcept : cell_(cell) {}

  void add(V v) { cell_->write().push_back(std::move(v)); }
  /// The elements of the current key in insertion order (empty when none). The reference
  /// is valid until the next access to this state.
  const std::vector<V>& get() const {
    static const std::vector<V> none;
    auto* l = cell_->get();
    return l ? *l : none;
  }
  /// Replaces the list; an empty list clears the key.
  void update(std::vector<V> values) {
    if (values.empty())
      cell_->erase();
    else
      cell_->put(std::move(values));
  }
  void clear() { cell_->erase(); }

private:
  detail::cell_access<payload_type>* cell_;
};

/// A map per key (Flink's `MapState`). The TTL covers the key's whole map: every `put` or
/// `remove` restarts it. Removing the last entry frees the key.
template <class UK, class UV>
class map_state {
public:
  using payload_type = std::unordered_map<UK, UV, key_hasher<UK>>;
  explicit map_state(detail::cell_access<payload_type>* cell) noexcept : cell_(cell) {}

  std::optional<UV> get(const UK& k) const {
    if (auto* m = cell_->get())
      if (auto it = m->find(k); it != m->end())
        return it->second;
    return std::nullopt;
  }
  bool contains(const UK& k) const {
    auto* m = cell_->get();
    return m && m->contains(k);
  }
  void put(UK k, UV v) { cell_->write().insert_or_assign(std::move(k), std::move(v)); }
  /// Removes `k`; true when it was there.
  bool remove(const UK& k) {
    auto* m = cell_->find();
    if (!m || m->erase(k) == 0)
      return false;
    if (m->empty())
      cell_->erase();
    else
      cell_->write(); // a write: restarts the TTL
    return true;
  }
  /// A copy of the current key's entries, in unspecified order.
  std::vector<std::pair<UK, UV>> entries() const {
    std::vector<std::pair<UK, UV>> out;
    if (auto* m = cell_->get())
      out.assign(m->begin(), m->end());
    return out;
  }
  bool is_empty() const { return cell_->get() == nullptr; }
  void clear() { cell_->erase(); }

private:
  detail::cell_access<payload_type>* cell_;
};

/// Declares a named state in a function's members (Flink's `StateDescriptor`):
/// `state_descriptor<value_state<long>> count{"count"};`, then `ctx.state(count)` in a
/// call. The descriptor remembers where its state lives in the operator instance that
/// last used it, so a lookup after the first is one comparison, not a name search.
template <class State>
struct state_descriptor {
  std::string name;
  std::optional<state_ttl> ttl{};

  state_descriptor(std::string n, std::optional<state_ttl> t = std::nullopt)
    : name(std::move(n)), ttl(t) {}

  // Cache of the last lookup: the id of the backend that resolved it (ids are never
  // reused, unlike addresses) and the slot index there.
  mutable std::uint64_t cached_owner = 0;
  mutable int cached_slot = -1;
};

} // namespace sluice
