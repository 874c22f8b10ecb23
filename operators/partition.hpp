#pragma once
/// Partitioning: how records of one edge are spread over the downstream instances, and
/// how they are re-batched on the way (batch size; the task decides when to flush).
#include "sluice/core/batch.hpp"
#include "sluice/core/key_group.hpp"

#include <algorithm>
#include <cstddef>
#include <functional>
#include <iterator>
#include <memory>
#include <string_view>
#include <type_traits>
#include <vector>

namespace sluice {

/// How an edge distributes records.
enum class partition_kind {
  forward,   ///< instance i sends to instance i; needs equal parallelism; fuses into a chain
  hash,      ///< by key group of the record's key
  rebalance, ///< round-robin, one batch at a time
  broadcast, ///< every record to every instance
};

std::string_view to_string(partition_kind kind) noexcept;

/// Receives batches that are ready to go to one downstream target.
class channel_writer {
public:
  virtual ~channel_writer() = default;
  virtual void send(int target, batch_ptr records) = 0;
};

/// What a router needs to know about its edge.
struct router_config {
  int targets = 1;              ///< downstream channels of this router
  std::size_t batch_size = 1024; ///< a buffer is sent as soon as it holds this many records
  int max_key_groups = default_max_key_groups;
  /// Per target, whether it runs on another node of a multi-node run (empty: none does).
  /// Each batch to such a target is one frame, and frames cost more per frame than per
  /// byte, so flat records (trivially copyable: their encoding is their memory) go there
  /// in batches of up to `remote_batch_size` records and `remote_batch_bytes` bytes. Other
  /// records go in batches of `batch_size`: their encoded size is not known beforehand.
  std::vector<bool> remote_targets{};
  std::size_t remote_batch_size = 4096;
  std::size_t remote_batch_bytes = std::size_t{1} << 20;

  /// The batch size of target `t` for records of type `T`.
  template <class T>
  std::size_t batch_size_of(int t) const noexcept {
    const auto i = static_cast<std::size_t>(t);
    if (i >= remote_targets.size() || !remote_targets[i])
      return batch_size;
    if constexpr (std::is_trivially_copyable_v<T>)
      return std::max(batch_size, std::min(remote_batch_size, remote_batch_bytes / sizeof(T)));
    else
      return batch_size;
  }
};

/// Splits and re-batches the records of one edge of one task.
class router_base {
public:
  virtual ~router_base() = default;
  /// Takes a batch; sends every buffer that becomes full.
  virtual void push(batch_ptr records, channel_writer& out) = 0;
  /// Sends every non-empty buffer (linger expired, end of input, or linger 0).
  virtual void flush(channel_writer& out) = 0;
  /// True when some records wait in a buffer.
  virtual bool buffered() const noexcept = 0;
};

using router_factory = std::function<std::unique_ptr<router_base>(const router_config&)>;

namespace detail {

/// Per-target buffers shared by all router kinds.
template <class T>
class buffers {
public:
  /// `targets` buffers, sized as `cfg` says for targets 0, 1, ...
  buffers(int targets, const router_config& cfg) : bufs_(static_cast<std::size_t>(targets)) {
    for (int t = 0; t < targets; ++t)
      limits_.push_back(cfg.template batch_size_of<T>(t));
  }

  /// Adopts `in` as target's buffer when possible (zero copy), else appends its records.
  void take(int target, batch_ptr in, channel_writer& out) {
    auto& buf = bufs_[static_cast<std::size_t>(target)];
    if (!buf && in.use_count() == 1) {
      buf = std::static_pointer_cast<batch<T>>(std::move(in));
    } else {
      auto& dst = slot(target)->records;
      auto& src = records_of<T>(*in);
      if (in.use_count() == 1)
        std::move(src.begin(), src.end(), std::back_inserter(dst));
      else
        dst.insert(dst.end(), src.begin(), src.end());
    }
    if (buf->records.size() >= limit(target))
      send(target, out);
  }

  /// The buffer of `target`, created on demand.
  batch<T>* slot(int target) {
    auto& buf = bufs_[static_cast<std::size_t>(target)];
    if (!buf) [[unlikely]]
      buf = make_batch<T>(limit(target));
    return buf.get();
  }

  void send(int target, channel_writer& out) {
    auto& buf = bufs_[static_cast<std::size_t>(target)];
    if (buf && !buf->records.empty())
      out.send(target, std::move(buf));
    buf.reset();
  }

  void flush(channel_writer& out) {
    for (int t = 0; t < static_cast<int>(bufs_.size()); ++t)
      send(t, out);
  }

  bool buffered() const noexcept {
    for (auto& b : bufs_)
      if (b && !b->records.empty())
        return true;
    return false;
  }

  /// The records after which target `t`'s buffer is sent.
  std::size_t limit(int t) const noexcept { return limits_[static_cast<std::size_t>(t)]; }

private:
  std::vector<std::shared_ptr<batch<T>>> bufs_;
  std::vector<std::size_t> limits_;
};

} // namespace detail

/// Forward (one target) and rebalance (round-robin over whole batches).
template <class T>
class round_robin_router final : public router_base {
public:
  explicit round_robin_router(const router_config& cfg)
    : bufs_(cfg.targets, cfg), targets_(cfg.targets) {}

  void push(batch_ptr in, channel_writer& out) override {
    bufs_.take(next_, std::move(in), out);
    next_ = (next_ + 1) % targets_;
  }
  void flush(channel_writer& out) override { bufs_.flush(out); }
  bool buffered() const noexcept override { return bufs_.buffered(); }

private:
  detail::buffers<T> bufs_;
  int targets_;
  int next_ = 0;
};

/// Sends each record to the instance that owns its key group.
///
/// The owner of each key group is looked up in a table made once (Flink's formula holds a
/// division). Records that are trivially copyable are copied into a staging array per
/// target and leave in one copy when the array is full; others are appended to the
/// target's batch one by one. Both keep the order of records per target and send batches
/// of at most `batch_size` records (profile: an integer division and an out-of-line
/// `vector::push_back` per record were a quarter of W2's CPU, BENCHMARKS.md).
template <class T, class K, class KeyFn>
class hash_router final : public router_base {
  static constexpr bool staged =
    std::is_trivially_copyable_v<T> && std::is_default_constructible_v<T>;

public:
  hash_router(const router_config& cfg, KeyFn key_fn)
    : bufs_(cfg.targets, cfg), targets_(cfg.targets),
      max_key_groups_(cfg.max_key_groups), key_fn_(std::move(key_fn)) {
    owner_.reserve(static_cast<std::size_t>(std::max(cfg.max_key_groups, 0)));
    for (int kg = 0; kg < cfg.max_key_groups; ++kg)
      owner_.push_back(instance_of_key_group(kg, cfg.max_key_groups, cfg.targets));
    if constexpr (staged)
      if (targets_ > 1)
        for (int t = 0; t < targets_; ++t)
          stages_.push_back(
            {std::make_unique_for_overwrite<T[]>(bufs_.limit(t)), 0, bufs_.limit(t)});
  }

  void push(batch_ptr in, channel_writer& out) override {
    if (targets_ == 1) {
      // Every key group belongs to the one target: pass the batch on whole, uncopied.
      bufs_.take(0, std::move(in), out);
      return;
    }
    auto& src = records_of<T>(*in);
    const int* owner = owner_.data();
    if constexpr (staged) {
      stage* stages = stages_.data();
      for (const auto& r : src) {
        const auto kg = key_group_of(key_hash<K>{}(key_fn_(r)), max_key_groups_);
        auto& st = stages[owner[kg]];
        st.records[st.fill++] = r;
        if (st.fill == st.capacity) [[unlikely]]
          send_stage(owner[kg], out);
      }
    } else {
      const bool owned = in.use_count() == 1;
      // The loop body is kept small enough to inline: one slot lookup, one push_back, and
      // the rare full-buffer send out of line.
      for (auto& r : src) {
        const auto kg = key_group_of(key_hash<K>{}(key_fn_(r)), max_key_groups_);
        const auto target = owner[kg];
        auto& records = bufs_.slot(target)->records;
        if (owned)
          records.push_back(std::move(r));
        else
          records.push_back(r);
        if (records.size() >= bufs_.limit(target)) [[unlikely]]
          bufs_.send(target, out);
      }
    }
  }
  void flush(channel_writer& out) override {
    if constexpr (staged)
      for (int t = 0; t < static_cast<int>(stages_.size()); ++t)
        if (stages_[static_cast<std::size_t>(t)].fill > 0)
          send_stage(t, out);
    bufs_.flush(out);
  }
  bool buffered() const noexcept override {
    if constexpr (staged)
      for (auto& st : stages_)
        if (st.fill > 0)
          return true;
    return bufs_.buffered();
  }

private:
  struct stage {
    std::unique_ptr<T[]> records; ///< `capacity` records, the first `fill` in use
    std::size_t fill = 0;
    std::size_t capacity = 0; ///< the target's batch size
  };

  /// Sends what target `t`'s stage holds, as one batch.
  [[gnu::noinline]] void send_stage(int t, channel_writer& out) {
    auto& st = stages_[static_cast<std::size_t>(t)];
    auto b = std::make_shared<batch<T>>(std::vector<T>(st.records.get(), st.records.get() + st.fill));
    st.fill = 0;
    out.send(t, std::move(b));
  }

  detail::buffers<T> bufs_;
  int targets_;
  int max_key_groups_;
  KeyFn key_fn_;
  std::vector<int> owner_;    ///< key group -> target
  std::vector<stage> stages_; ///< per target, when `staged` and there are several targets
};

/// Sends every batch to every target (copies for all but the last).
template <class T>
class broadcast_router final : public router_base {
public:
  explicit broadcast_router(const router_config& cfg)
    : buf_(1, router_config{1, cfg.batch_size}), targets_(cfg.targets) {}

  void push(batch_ptr in, channel_writer& out) override {
    fan_out_writer w{*this, out};
    buf_.take(0, std::move(in), w);
  }
  void flush(channel_writer& out) override {
    fan_out_writer w{*this, out};
    buf_.flush(w);
  }
  bool buffered() const noexcept override { return buf_.buffered(); }

private:
  struct fan_out_writer final : channel_writer {
    fan_out_writer(broadcast_router& self, channel_writer& out) : self(self), out(out) {}
    void send(int, batch_ptr records) override {
      for (int t = 0; t + 1 < self.targets_; ++t)
        out.send(t, std::make_shared<batch<T>>(records_of<T>(*records)));
      out.send(self.targets_ - 1, std::move(records));
    }
    broadcast_router& self;
    channel_writer& out;
  };

  detail::buffers<T> buf_;
  int targets_;
};

/// A router factory for the non-keyed kinds.
template <class T>
router_factory make_router_factory(partition_kind kind) {
  if (kind == partition_kind::broadcast)
    return [](const router_config& cfg) -> std::unique_ptr<router_base> {
      return std::make_unique<broadcast_router<T>>(cfg);
    };
  return [](const router_config& cfg) -> std::unique_ptr<router_base> {
    return std::make_unique<round_robin_router<T>>(cfg);
  };
}

/// A router factory for hash partitioning by `key_fn`.
template <class T, class K, class KeyFn>
router_factory make_hash_router_factory(KeyFn key_fn) {
  return [key_fn](const router_config& cfg) -> std::unique_ptr<router_base> {
    return std::make_unique<hash_router<T, K, KeyFn>>(cfg, key_fn);
  };
}

} // namespace sluice
