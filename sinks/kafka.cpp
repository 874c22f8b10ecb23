#include "sluice/sinks/kafka.hpp"

#include "sluice/core/codec/binary.hpp"
#include "sluice/core/log.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <random>
#include <span>

namespace sluice::sinks {

namespace kc = sluice::kafka; // `kafka` alone names the sink descriptor here

result<void> validate_kafka_sink(const kafka_sink_settings& s) {
  auto bad = [](const std::string& what) {
    return make_error(error_code::invalid_option, "kafka sink: " + what);
  };
  if (s.bootstrap_servers.empty())
    return bad("bootstrap_servers is empty");
  if (s.topic.empty())
    return bad("topic is empty");
  if (s.delivery == kafka_delivery::exactly_once && s.transactional_id_prefix.empty())
    return bad("exactly_once needs a transactional_id_prefix unique to the job (it names the "
               "transactions a restarted job takes over)");
  if (s.transaction_timeout.count() <= 0 || s.flush_timeout.count() <= 0 ||
      s.connect_timeout.count() <= 0)
    return bad("timeouts must be positive");
  if (s.producer_pool_size < 1 || s.producer_pool_size > max_kafka_producer_pool)
    return bad("producer_pool_size must be between 1 and " +
               std::to_string(max_kafka_producer_pool) + ", not " +
               std::to_string(s.producer_pool_size));
  return {};
}

namespace detail {
namespace {

using steady = std::chrono::steady_clock;

long micros_since(steady::time_point t0) {
  return static_cast<long>(
    std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - t0).count());
}

/// The output of one checkpoint that is not known to be committed yet.
struct pending_txn {
  std::int64_t id = 0;
  /// The run that wrote it: markers match only within a run (see docs/kafka.md).
  std::uint64_t token = 0;
  /// The producer of the pool whose transactional id writes it (and names its marker group).
  std::int32_t slot = 0;
  /// Its marker: the transaction's number within the run, increasing in every slot.
  std::int64_t seq = 0;
  std::vector<kafka_out_record> records;
};

template <class Inspector>
bool inspect(Inspector& f, pending_txn& x) {
  return f.object("pending_txn")
    .fields(f.field("id", x.id), f.field("token", x.token), f.field("slot", x.slot),
            f.field("seq", x.seq), f.field("records", x.records));
}

/// What an instance keeps in a checkpoint (piece `pool_piece`).
struct writer_state {
  std::int32_t parallelism = 0;
  std::int32_t producers = 1; ///< the pool size that wrote it: restore fences every slot
  std::vector<pending_txn> pending;
};

template <class Inspector>
bool inspect(Inspector& f, writer_state& x) {
  return f.object("kafka_sink_state")
    .fields(f.field("parallelism", x.parallelism), f.field("producers", x.producers),
            f.field("pending", x.pending));
}

/// The state before the producer pool (piece `instance_piece`): one producer, the marker
/// offset is the checkpoint id. Still read, so a job restores from such a checkpoint.
struct pending_txn_v1 {
  std::int64_t id = 0;
  std::uint64_t token = 0;
  std::vector<kafka_out_record> records;
};

template <class Inspector>
bool inspect(Inspector& f, pending_txn_v1& x) {
  return f.object("pending_txn")
    .fields(f.field("id", x.id), f.field("token", x.token), f.field("records", x.records));
}

struct writer_state_v1 {
  std::int32_t parallelism = 0;
  std::vector<pending_txn_v1> pending;
};

template <class Inspector>
bool inspect(Inspector& f, writer_state_v1& x) {
  return f.object("kafka_sink_state")
    .fields(f.field("parallelism", x.parallelism), f.field("pending", x.pending));
}

std::string pool_piece(int instance) { return "pool/" + std::to_string(instance); }

std::uint64_t fresh_token() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

} // namespace

kc::properties producer_properties(const kafka_sink_settings& s, bool transactional) {
  kc::properties props = s.properties;
  if (transactional) {
    props.try_emplace("transaction.timeout.ms", std::to_string(s.transaction_timeout.count()));
    // Transactional producers must be idempotent, so they keep librdkafka 2.0.2's limit
    // described below; its spinning starts only once waiting records are older than
    // linger.ms. Nobody reads a transaction's records before its commit, and the flush at
    // each barrier sends what lingers at once, so 100 ms costs no visible latency and keeps
    // the spin to responses slower than that.
    props.try_emplace("linger.ms", "100");
  } else if (s.delivery == kafka_delivery::at_least_once) {
    // Not idempotent: librdkafka 2.0.2 caps an idempotent producer's partition at 5
    // *messages* in flight (its per-request limit compared with a message count), so a
    // partition waits for each response, and once the waiting records pass linger.ms its
    // broker thread polls with a zero timeout until the response comes: a core per producer
    // while the broker answers late. On 2 cores shared with a broker that fed back into
    // stalls of 2-5 s at 50k records/s (BENCHMARKS.md, session 25). At least once allows the
    // duplicates a retry may bring. One request in flight per connection keeps a partition's
    // records in order across retries, as idempotence did; the next request waits in the
    // output queue, where it does not spin. 5 in flight measured no faster.
    props.try_emplace("enable.idempotence", "false");
    props.try_emplace("max.in.flight.requests.per.connection", "1");
    props.try_emplace("acks", "all");
  }
  return props;
}

struct kafka_writer::impl {
  kafka_sink_settings s;
  sink_context ctx;
  std::string label;
  int partitions = 0;
  std::uint64_t token = 0;
  std::int64_t next_seq = 1;

  /// One producer of the pool. Without exactly_once there is one, not transactional.
  struct slot {
    std::optional<kc::producer> producer;
    bool txn_open = false; ///< holds `current` or a sealed transaction
  };
  std::vector<slot> slots;

  /// The records since the last pre-commit. `slot` >= 0: all of them are in that slot's
  /// open transaction, whose marker is `seq`; -1: they wait here for a free producer.
  struct open_txn {
    int slot = -1;
    std::int64_t seq = 0;
    std::vector<kafka_out_record> records;
  };
  open_txn current;
  /// Pre-committed, waiting for their checkpoint to complete, oldest first. `in_kafka`: the
  /// records are in the open transaction of slot `t.slot`; otherwise they are written at
  /// the commit, in a transaction of their own on slot 0.
  struct sealed_txn {
    pending_txn t;
    bool in_kafka = false;
  };
  std::deque<sealed_txn> sealed;

  bool eo() const { return s.delivery == kafka_delivery::exactly_once; }
  /// Slot 0 keeps the id of the single-producer sink, so its checkpoints restore.
  std::string txid(int instance, int slot) const {
    auto id = s.transactional_id_prefix + "-" + ctx.name + "-" + std::to_string(instance);
    return slot == 0 ? id : id + "." + std::to_string(slot);
  }
  /// The marker: group `txid` commits offset <seq> on partition 0 of the topic.
  kc::topic_partition marker_partition() const { return {s.topic, 0}; }

  result<kc::producer> make_producer(std::optional<std::string> id) const {
    return kc::producer::open({.bootstrap_servers = s.bootstrap_servers,
                                  .transactional_id = id,
                                  .connect_timeout = s.connect_timeout,
                                  .extra = producer_properties(s, id.has_value()),
                                  .label = label});
  }

  result<void> produce(kc::producer& p, const kafka_out_record& r) {
    return p.produce(s.topic, r.partition,
                     r.key ? std::optional<std::string_view>{*r.key} : std::nullopt, r.value);
  }

  result<void> send_marker(kc::producer& p, const std::string& group, std::int64_t seq,
                           std::uint64_t tok) {
    return p.send_offset(group, marker_partition(), seq, std::to_string(tok), s.flush_timeout);
  }

  /// Whether the transaction (token, seq) written under `group` is in Kafka, from the marker.
  /// A slot's transactions commit in the order of their numbers, so a later one's marker
  /// also says an earlier one committed.
  result<bool> committed(const std::string& group, std::uint64_t tok, std::int64_t seq) {
    auto m = kc::committed_offset(s.bootstrap_servers, s.properties, group, marker_partition(),
                                     s.flush_timeout);
    if (!m)
      return std::move(m).error();
    return *m && (*m)->metadata == std::to_string(tok) && (*m)->offset >= seq;
  }

  /// Writes `t` in a transaction of its own with `p` and commits it.
  result<void> write_whole(kc::producer& p, const std::string& group, const pending_txn& t) {
    if (auto ok = p.begin_transaction(); !ok)
      return ok;
    if (auto ok = send_marker(p, group, t.seq, t.token); !ok)
      return ok;
    for (const auto& r : t.records)
      if (auto ok = produce(p, r); !ok)
        return ok;
    return p.commit_transaction(s.flush_timeout);
  }

  /// Starts `current`'s transaction on a free producer and writes what waited for one.
  /// None is free while an older transaction waits outside Kafka (it is written first, at
  /// its commit, so that each slot's markers keep increasing): `current` goes on waiting.
  result<bool> acquire() {
    for (const auto& t : sealed)
      if (!t.in_kafka)
        return false;
    for (std::size_t i = 0; i < slots.size(); ++i) {
      auto& sl = slots[i];
      if (sl.txn_open)
        continue;
      if (auto ok = sl.producer->begin_transaction(); !ok)
        return std::move(ok).error();
      sl.txn_open = true;
      current.slot = static_cast<int>(i);
      current.seq = next_seq++;
      // The marker now, not at the barrier: its round trips stay off the path from a
      // checkpoint's barrier to its commit.
      const auto t0 = steady::now();
      if (auto ok = send_marker(*sl.producer, txid(ctx.instance, current.slot), current.seq, token);
          !ok)
        return std::move(ok).error();
      logging::get().debug("{}: transaction {} began on producer {}, marker in {} us", label,
                           current.seq, current.slot, micros_since(t0));
      for (const auto& r : current.records)
        if (auto ok = produce(*sl.producer, r); !ok)
          return std::move(ok).error();
      return true;
    }
    return false;
  }

  /// Commits the oldest sealed transaction. On a failure its producer is replaced (which
  /// settles whatever Kafka had of the transaction), the marker says whether it committed,
  /// and if not it is written again from memory.
  result<void> settle_front() {
    auto& f = sealed.front();
    const auto& t = f.t;
    auto& sl = slots[static_cast<std::size_t>(t.slot)];
    const std::string group = txid(ctx.instance, t.slot);
    if (f.in_kafka) {
      auto ok = sl.producer->commit_transaction(s.flush_timeout);
      sl.txn_open = false;
      f.in_kafka = false;
      if (ok)
        return {};
      if (sl.producer->last_failure() == kc::producer::failure::fenced)
        return ok;
    } else if (!sl.txn_open) {
      if (auto ok = write_whole(*sl.producer, group, t); ok)
        return {};
      else if (sl.producer->last_failure() == kc::producer::failure::fenced)
        return ok;
    }
    std::optional<error> last;
    for (int attempt = 0; attempt < 3; ++attempt) {
      sl.txn_open = false;
      sl.producer.reset();
      auto p = make_producer(group);
      if (!p)
        return std::move(p).error();
      sl.producer.emplace(std::move(*p));
      if (auto ok = sl.producer->init_transactions(s.flush_timeout); !ok) {
        last = std::move(ok).error();
        continue;
      }
      auto done = committed(group, t.token, t.seq);
      if (!done) {
        last = std::move(done).error();
        continue;
      }
      if (*done)
        return {};
      auto ok = write_whole(*sl.producer, group, t);
      if (ok)
        return {};
      if (sl.producer->last_failure() == kc::producer::failure::fenced)
        return ok;
      last = std::move(ok).error();
    }
    return error{error_code::connector_failed,
                 label + ": cannot commit the output of checkpoint " + std::to_string(t.id) +
                   " after 3 attempts: " + last->message};
  }

  /// Decodes old instance `instance`'s piece of the checkpoint being restored, in either
  /// format; unset when it wrote none.
  result<std::optional<writer_state>> read_state(snapshot_reader& r, std::int64_t id,
                                                 int instance) {
    auto corrupt = [&](const error& e) {
      return error{error_code::io_error, label + ": checkpoint " + std::to_string(id) +
                                           " holds a corrupt sink state: " + e.message};
    };
    auto bytes = r.get(pool_piece(instance));
    if (!bytes)
      return std::move(bytes).error();
    if (*bytes) {
      writer_state st;
      std::span<const std::byte> in{reinterpret_cast<const std::byte*>((*bytes)->data()),
                                    (*bytes)->size()};
      if (auto ok = codec::from_binary(in, st); !ok)
        return corrupt(ok.error());
      return std::optional<writer_state>{std::move(st)};
    }
    bytes = r.get(instance_piece(instance));
    if (!bytes)
      return std::move(bytes).error();
    if (!*bytes)
      return std::optional<writer_state>{};
    writer_state_v1 old;
    std::span<const std::byte> in{reinterpret_cast<const std::byte*>((*bytes)->data()),
                                  (*bytes)->size()};
    if (auto ok = codec::from_binary(in, old); !ok)
      return corrupt(ok.error());
    writer_state st;
    st.parallelism = old.parallelism;
    st.producers = 1;
    for (auto& t : old.pending) // one producer (slot 0), marked with the checkpoint id
      st.pending.push_back(pending_txn{t.id, t.token, 0, t.id, std::move(t.records)});
    return std::optional<writer_state>{std::move(st)};
  }
};

kafka_writer::kafka_writer() : p_(std::make_unique<impl>()) {}
kafka_writer::~kafka_writer() = default;
int kafka_writer::partitions() const noexcept { return p_->partitions; }
bool kafka_writer::exactly_once() const noexcept { return p_->eo(); }

result<void> kafka_writer::open(const kafka_sink_settings& settings, const sink_context& ctx) {
  auto& p = *p_;
  p.s = settings;
  p.ctx = ctx;
  p.label = "kafka sink '" + ctx.name + "' instance " + std::to_string(ctx.instance);
  if (p.eo() && !ctx.checkpoints)
    return make_error(error_code::invalid_option,
                      p.label + ": exactly_once delivery needs checkpoints (give the job a "
                                "checkpoint directory), since transactions commit per checkpoint");
  if (p.eo() && (settings.producer_pool_size < 1 || settings.producer_pool_size > max_kafka_producer_pool))
    return make_error(error_code::invalid_option,
                      p.label + ": producer_pool_size must be between 1 and " +
                        std::to_string(max_kafka_producer_pool) + ", not " +
                        std::to_string(settings.producer_pool_size));
  const int n = p.eo() ? settings.producer_pool_size : 1;
  p.slots.resize(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    auto prod = p.make_producer(p.eo() ? std::optional{p.txid(ctx.instance, i)} : std::nullopt);
    if (!prod)
      return std::move(prod).error();
    p.slots[static_cast<std::size_t>(i)].producer.emplace(std::move(*prod));
  }
  auto parts = p.slots[0].producer->partition_count(settings.topic, settings.connect_timeout);
  if (!parts)
    return std::move(parts).error();
  p.partitions = *parts;
  p.token = fresh_token();
  return {};
}

result<void> kafka_writer::write(kafka_out_record r) {
  auto& p = *p_;
  if (!p.eo())
    return p.produce(*p.slots[0].producer, r);
  if (p.current.slot >= 0) {
    if (auto ok = p.produce(*p.slots[static_cast<std::size_t>(p.current.slot)].producer, r); !ok)
      return ok;
    p.current.records.push_back(std::move(r));
    return {};
  }
  p.current.records.push_back(std::move(r));
  if (auto got = p.acquire(); !got)
    return std::move(got).error();
  return {};
}

result<void> kafka_writer::flush() {
  auto& p = *p_;
  if (p.eo()) {
    for (auto& sl : p.slots)
      sl.producer->poll();
    return {};
  }
  return p.slots[0].producer->flush(p.s.flush_timeout);
}

result<void> kafka_writer::pre_commit(std::int64_t id) {
  auto& p = *p_;
  if (!p.eo())
    return p.s.delivery == kafka_delivery::at_least_once ? flush() : result<void>{};
  if (p.current.records.empty())
    return {};
  // The marker went with the transaction's first record, and the records are kept in the
  // checkpoint. But they must be on the broker before the next transaction's, which go out
  // on another producer of the pool: a read_committed consumer reads a partition only up to
  // its first open transaction, so a record of the next transaction landing before one of
  // this transaction's would hide this one after its commit until the next commits
  // (real_broker_test caught it under load). Flink's KafkaWriter flushes here too.
  const bool in_kafka = p.current.slot >= 0;
  if (in_kafka)
    if (auto ok = p.slots[static_cast<std::size_t>(p.current.slot)].producer->flush(p.s.flush_timeout);
        !ok)
      return ok;
  pending_txn t{id, p.token, in_kafka ? p.current.slot : 0,
                in_kafka ? p.current.seq : p.next_seq++, std::move(p.current.records)};
  logging::get().debug("{}: pre-commit {}: {} records, {}", p.label, id, t.records.size(),
                       in_kafka ? "transaction of producer " + std::to_string(t.slot)
                                : std::string{"waiting for a free producer"});
  p.sealed.push_back({std::move(t), in_kafka});
  p.current = {};
  return {};
}

result<void> kafka_writer::snapshot(std::int64_t, snapshot_writer& w) {
  auto& p = *p_;
  if (!p.eo())
    return {};
  writer_state st;
  st.parallelism = p.ctx.parallelism;
  st.producers = static_cast<std::int32_t>(p.slots.size());
  for (const auto& t : p.sealed)
    st.pending.push_back(t.t);
  std::vector<std::byte> bytes;
  codec::to_binary(st, bytes);
  return w.put(pool_piece(p.ctx.instance),
               std::string{reinterpret_cast<const char*>(bytes.data()), bytes.size()});
}

result<void> kafka_writer::commit(std::int64_t id) {
  auto& p = *p_;
  if (!p.eo())
    return {};
  const auto t0 = steady::now();
  int settled = 0;
  while (!p.sealed.empty() && p.sealed.front().t.id <= id) {
    if (auto ok = p.settle_front(); !ok)
      return ok;
    p.sealed.pop_front();
    ++settled;
  }
  if (settled > 0)
    logging::get().debug("{}: commit {}: {} transaction(s) took {} us", p.label, id, settled,
                         micros_since(t0));
  if (p.current.slot < 0 && !p.current.records.empty())
    if (auto got = p.acquire(); !got)
      return std::move(got).error();
  return {};
}

result<void> kafka_writer::restore(std::int64_t id, snapshot_reader& r) {
  auto& p = *p_;
  if (!p.eo())
    return {};
  // The old parallelism, from any piece: instance i settles old instances j with
  // j % parallelism == i, so nothing is orphaned when the job shrank.
  int old_parallelism = p.ctx.parallelism;
  std::map<int, writer_state> states;
  if (id >= 0) {
    auto own = p.read_state(r, id, p.ctx.instance);
    if (!own)
      return std::move(own).error();
    if (!*own) {
      auto first = p.read_state(r, id, 0);
      if (!first)
        return std::move(first).error();
      own = std::move(first);
      if (*own)
        states[0] = **own;
    } else {
      states[p.ctx.instance] = **own;
    }
    if (*own)
      old_parallelism = (*own)->parallelism;
  }
  const int own_slots = static_cast<int>(p.slots.size());
  for (int j = p.ctx.instance; j < std::max(old_parallelism, p.ctx.parallelism);
       j += p.ctx.parallelism) {
    if (id >= 0 && !states.contains(j) && j < old_parallelism) {
      auto st = p.read_state(r, id, j);
      if (!st)
        return std::move(st).error();
      if (*st)
        states[j] = std::move(**st);
    }
    auto it = states.find(j);
    // Fences the old producers of these ids and settles their open transactions: every
    // slot the old instance had and this one has (a larger pool before is fenced too).
    const int old_slots = it == states.end() ? 1 : std::max(1, it->second.producers);
    const int n = std::max(old_slots, own_slots);
    std::vector<std::optional<kc::producer>> others(static_cast<std::size_t>(n));
    auto producer_of = [&](int slot) -> kc::producer& {
      if (j == p.ctx.instance && slot < own_slots)
        return *p.slots[static_cast<std::size_t>(slot)].producer;
      return *others[static_cast<std::size_t>(slot)];
    };
    for (int slot = 0; slot < n; ++slot) {
      if (j != p.ctx.instance || slot >= own_slots) {
        auto made = p.make_producer(p.txid(j, slot));
        if (!made)
          return std::move(made).error();
        others[static_cast<std::size_t>(slot)].emplace(std::move(*made));
      }
      if (auto ok = producer_of(slot).init_transactions(p.s.flush_timeout); !ok)
        return ok;
    }
    if (it == states.end())
      continue;
    for (const auto& t : it->second.pending) {
      if (t.id > id)
        continue; // belongs to a checkpoint that never completed: replayed from sources
      if (t.slot < 0 || t.slot >= n)
        return error{error_code::io_error,
                     p.label + ": checkpoint " + std::to_string(id) +
                       " holds a sink transaction of producer " + std::to_string(t.slot) +
                       " of a pool of " + std::to_string(old_slots)};
      auto done = p.committed(p.txid(j, t.slot), t.token, t.seq);
      if (!done)
        return std::move(done).error();
      if (!*done)
        if (auto ok = p.write_whole(producer_of(t.slot), p.txid(j, t.slot), t); !ok)
          return ok;
    }
  }
  return {};
}

result<void> kafka_writer::close() {
  auto& p = *p_;
  if (p.slots.empty() || !p.slots[0].producer)
    return {};
  if (!p.eo())
    return p.slots[0].producer->flush(p.s.flush_timeout); // a graceful end loses nothing, even with `none`
  // Whatever is still open belongs to no completed checkpoint: a restart writes it again.
  for (auto& sl : p.slots) {
    if (sl.txn_open && sl.producer)
      (void)sl.producer->abort_transaction(p.s.flush_timeout);
    sl.txn_open = false;
  }
  return {};
}

} // namespace detail
} // namespace sluice::sinks
