#include "sluice/sinks/kafka.hpp"

#include "sluice/core/codec/binary.hpp"

#include <deque>
#include <random>

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
  return {};
}

namespace detail {
namespace {

/// The output of one checkpoint that is not known to be committed yet.
struct pending_txn {
  std::int64_t id = 0;
  /// The run that wrote it: markers match only within a run (see docs/kafka.md).
  std::uint64_t token = 0;
  std::vector<kafka_out_record> records;
};

template <class Inspector>
bool inspect(Inspector& f, pending_txn& x) {
  return f.object("pending_txn")
    .fields(f.field("id", x.id), f.field("token", x.token), f.field("records", x.records));
}

/// What an instance keeps in a checkpoint.
struct writer_state {
  std::int32_t parallelism = 0;
  std::vector<pending_txn> pending;
};

template <class Inspector>
bool inspect(Inspector& f, writer_state& x) {
  return f.object("kafka_sink_state")
    .fields(f.field("parallelism", x.parallelism), f.field("pending", x.pending));
}

std::uint64_t fresh_token() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

} // namespace

struct kafka_writer::impl {
  kafka_sink_settings s;
  sink_context ctx;
  std::string label;
  std::optional<kc::producer> producer;
  int partitions = 0;
  std::uint64_t token = 0;
  bool txn_open = false;
  /// Records since the last pre-commit; `current_in_kafka`: all of them are in the open
  /// Kafka transaction.
  std::vector<kafka_out_record> current;
  bool current_in_kafka = false;
  /// Pre-committed, waiting for their checkpoint to complete; only the front can be in the
  /// open Kafka transaction (librdkafka has one transaction per producer).
  std::deque<pending_txn> sealed;
  bool front_in_kafka = false;

  bool eo() const { return s.delivery == kafka_delivery::exactly_once; }
  std::string txid(int instance) const {
    return s.transactional_id_prefix + "-" + ctx.name + "-" + std::to_string(instance);
  }
  /// The marker: group `txid` commits offset <checkpoint id> on partition 0 of the topic.
  kc::topic_partition marker_partition() const { return {s.topic, 0}; }

  result<kc::producer> make_producer(std::optional<std::string> id) const {
    kc::properties props = s.properties;
    if (id) {
      props.try_emplace("transaction.timeout.ms", std::to_string(s.transaction_timeout.count()));
    } else if (s.delivery == kafka_delivery::at_least_once) {
      props.try_emplace("enable.idempotence", "true"); // retries do not duplicate
      props.try_emplace("acks", "all");
    }
    return kc::producer::open({.bootstrap_servers = s.bootstrap_servers,
                                  .transactional_id = std::move(id),
                                  .connect_timeout = s.connect_timeout,
                                  .extra = std::move(props),
                                  .label = label});
  }

  result<void> produce(kc::producer& p, const kafka_out_record& r) {
    return p.produce(s.topic, r.partition,
                     r.key ? std::optional<std::string_view>{*r.key} : std::nullopt, r.value);
  }

  result<void> begin_if_needed() {
    if (txn_open)
      return {};
    if (auto ok = producer->begin_transaction(); !ok)
      return ok;
    txn_open = true;
    return {};
  }

  result<void> send_marker(kc::producer& p, const std::string& group, std::int64_t id,
                           std::uint64_t tok) {
    return p.send_offset(group, marker_partition(), id, std::to_string(tok), s.flush_timeout);
  }

  /// Whether the output of (token, id) written under `group` is in Kafka, from the marker.
  result<bool> committed(const std::string& group, std::uint64_t tok, std::int64_t id) {
    auto m = kc::committed_offset(s.bootstrap_servers, s.properties, group, marker_partition(),
                                     s.flush_timeout);
    if (!m)
      return std::move(m).error();
    return *m && (*m)->metadata == std::to_string(tok) && (*m)->offset >= id;
  }

  /// Writes `t` in a transaction of its own with `p` and commits it.
  result<void> write_whole(kc::producer& p, const std::string& group, const pending_txn& t) {
    if (auto ok = p.begin_transaction(); !ok)
      return ok;
    for (const auto& r : t.records)
      if (auto ok = produce(p, r); !ok)
        return ok;
    if (auto ok = send_marker(p, group, t.id, t.token); !ok)
      return ok;
    return p.commit_transaction(s.flush_timeout);
  }

  /// Commits the front pending transaction. On a failure the producer is replaced (which
  /// settles whatever Kafka had of the transaction), the marker says whether it committed,
  /// and if not it is written again from memory.
  result<void> settle_front() {
    auto& t = sealed.front();
    const std::string group = txid(ctx.instance);
    if (front_in_kafka) {
      auto ok = producer->commit_transaction(s.flush_timeout);
      txn_open = false;
      front_in_kafka = false;
      if (ok)
        return {};
      if (producer->last_failure() == kc::producer::failure::fenced)
        return ok;
    } else if (!txn_open) {
      if (auto ok = write_whole(*producer, group, t); ok)
        return {};
      else if (producer->last_failure() == kc::producer::failure::fenced)
        return ok;
    }
    std::optional<error> last;
    for (int attempt = 0; attempt < 3; ++attempt) {
      txn_open = false;
      producer.reset();
      auto p = make_producer(group);
      if (!p)
        return std::move(p).error();
      producer.emplace(std::move(*p));
      if (auto ok = producer->init_transactions(s.flush_timeout); !ok) {
        last = std::move(ok).error();
        continue;
      }
      auto done = committed(group, t.token, t.id);
      if (!done) {
        last = std::move(done).error();
        continue;
      }
      if (*done)
        return {};
      auto ok = write_whole(*producer, group, t);
      if (ok)
        return {};
      if (producer->last_failure() == kc::producer::failure::fenced)
        return ok;
      last = std::move(ok).error();
    }
    return error{error_code::connector_failed,
                 label + ": cannot commit the output of checkpoint " + std::to_string(t.id) +
                   " after 3 attempts: " + last->message};
  }

  /// Puts `current` into the open transaction once nothing older waits for a commit.
  result<void> catch_up() {
    if (!sealed.empty() || current_in_kafka || current.empty())
      return {};
    if (auto ok = begin_if_needed(); !ok)
      return ok;
    for (const auto& r : current)
      if (auto ok = produce(*producer, r); !ok)
        return ok;
    current_in_kafka = true;
    return {};
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
  auto prod = p.make_producer(p.eo() ? std::optional{p.txid(ctx.instance)} : std::nullopt);
  if (!prod)
    return std::move(prod).error();
  p.producer.emplace(std::move(*prod));
  auto n = p.producer->partition_count(settings.topic, settings.connect_timeout);
  if (!n)
    return std::move(n).error();
  p.partitions = *n;
  p.token = fresh_token();
  return {};
}

result<void> kafka_writer::write(kafka_out_record r) {
  auto& p = *p_;
  if (!p.eo())
    return p.produce(*p.producer, r);
  if (p.sealed.empty()) {
    if (auto ok = p.begin_if_needed(); !ok)
      return ok;
    if (auto ok = p.produce(*p.producer, r); !ok)
      return ok;
    p.current_in_kafka = true;
  }
  p.current.push_back(std::move(r));
  return {};
}

result<void> kafka_writer::flush() {
  auto& p = *p_;
  if (p.eo()) {
    p.producer->poll();
    return {};
  }
  return p.producer->flush(p.s.flush_timeout);
}

result<void> kafka_writer::pre_commit(std::int64_t id) {
  auto& p = *p_;
  if (!p.eo())
    return p.s.delivery == kafka_delivery::at_least_once ? flush() : result<void>{};
  if (p.current.empty())
    return {};
  const bool in_kafka = p.current_in_kafka;
  p.sealed.push_back(pending_txn{id, p.token, std::move(p.current)});
  p.current.clear();
  p.current_in_kafka = false;
  if (in_kafka) {
    p.front_in_kafka = true;
    if (auto ok = p.send_marker(*p.producer, p.txid(p.ctx.instance), id, p.token); !ok) {
      if (p.producer->last_failure() == kc::producer::failure::fenced)
        return ok;
      // The transaction is lost; the records are not: commit() writes them again.
      (void)p.producer->abort_transaction(p.s.flush_timeout);
      p.txn_open = false;
      p.front_in_kafka = false;
    }
  }
  return {};
}

result<void> kafka_writer::snapshot(std::int64_t, snapshot_writer& w) {
  auto& p = *p_;
  if (!p.eo())
    return {};
  writer_state st;
  st.parallelism = p.ctx.parallelism;
  st.pending.assign(p.sealed.begin(), p.sealed.end());
  std::vector<std::byte> bytes;
  codec::to_binary(st, bytes);
  return w.put(instance_piece(p.ctx.instance),
               std::string{reinterpret_cast<const char*>(bytes.data()), bytes.size()});
}

result<void> kafka_writer::commit(std::int64_t id) {
  auto& p = *p_;
  if (!p.eo())
    return {};
  while (!p.sealed.empty() && p.sealed.front().id <= id) {
    if (auto ok = p.settle_front(); !ok)
      return ok;
    p.sealed.pop_front();
  }
  return p.catch_up();
}

result<void> kafka_writer::restore(std::int64_t id, snapshot_reader& r) {
  auto& p = *p_;
  if (!p.eo())
    return {};
  auto read_state = [&](int instance) -> result<std::optional<writer_state>> {
    auto bytes = r.get(instance_piece(instance));
    if (!bytes)
      return std::move(bytes).error();
    if (!*bytes)
      return std::optional<writer_state>{};
    writer_state st;
    std::span<const std::byte> in{reinterpret_cast<const std::byte*>((*bytes)->data()),
                                  (*bytes)->size()};
    if (auto ok = codec::from_binary(in, st); !ok)
      return error{error_code::io_error, p.label + ": checkpoint " + std::to_string(id) +
                                           " holds a corrupt sink state: " + ok.error().message};
    return std::optional<writer_state>{std::move(st)};
  };
  // The old parallelism, from any piece: instance i settles old instances j with
  // j % parallelism == i, so nothing is orphaned when the job shrank.
  int old_parallelism = p.ctx.parallelism;
  std::map<int, writer_state> states;
  if (id >= 0) {
    auto own = read_state(p.ctx.instance);
    if (!own)
      return std::move(own).error();
    if (!*own) {
      auto first = read_state(0);
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
  for (int j = p.ctx.instance; j < std::max(old_parallelism, p.ctx.parallelism);
       j += p.ctx.parallelism) {
    if (id >= 0 && !states.contains(j) && j < old_parallelism) {
      auto st = read_state(j);
      if (!st)
        return std::move(st).error();
      if (*st)
        states[j] = std::move(**st);
    }
    // Fences the old producer of this id and settles its open transaction.
    std::optional<kc::producer> other;
    kc::producer* prod = &*p.producer;
    if (j != p.ctx.instance) {
      auto made = p.make_producer(p.txid(j));
      if (!made)
        return std::move(made).error();
      other.emplace(std::move(*made));
      prod = &*other;
    }
    if (auto ok = prod->init_transactions(p.s.flush_timeout); !ok)
      return ok;
    auto it = states.find(j);
    if (it == states.end())
      continue;
    for (const auto& t : it->second.pending) {
      if (t.id > id)
        continue; // belongs to a checkpoint that never completed: replayed from sources
      auto done = p.committed(p.txid(j), t.token, t.id);
      if (!done)
        return std::move(done).error();
      if (!*done)
        if (auto ok = p.write_whole(*prod, p.txid(j), t); !ok)
          return ok;
    }
  }
  return {};
}

result<void> kafka_writer::close() {
  auto& p = *p_;
  if (!p.producer)
    return {};
  if (!p.eo())
    return p.producer->flush(p.s.flush_timeout); // a graceful end loses nothing, even with `none`
  // Whatever is still open belongs to no completed checkpoint: a restart writes it again.
  if (p.txn_open)
    (void)p.producer->abort_transaction(p.s.flush_timeout);
  p.txn_open = false;
  return {};
}

} // namespace detail
} // namespace sluice::sinks
