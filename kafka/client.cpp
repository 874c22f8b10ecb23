#include "sluice/kafka/client.hpp"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

namespace sluice::kafka {
namespace {

using namespace std::chrono_literals;

int ms(std::chrono::milliseconds d) { return static_cast<int>(d.count()); }

/// What librdkafka reported through its callbacks: the last log lines (quoted in errors,
/// never printed), the last client error and the first failed delivery.
struct reports {
  std::mutex mutex;
  std::deque<std::string> log;
  std::string last_error;
  std::optional<std::string> delivery_failure;
  rd_kafka_resp_err_t delivery_code = RD_KAFKA_RESP_ERR_NO_ERROR;

  void add_log(std::string line) {
    std::lock_guard lock{mutex};
    log.push_back(std::move(line));
    if (log.size() > 5)
      log.pop_front();
  }
  std::string context() {
    std::lock_guard lock{mutex};
    std::string s;
    if (!last_error.empty())
      s += " (last client error: " + last_error + ")";
    return s;
  }
};

void on_log(const rd_kafka_t* rk, int, const char* facility, const char* line) {
  if (auto* r = static_cast<reports*>(rd_kafka_opaque(rk)))
    r->add_log(std::string{facility} + ": " + line);
}

void on_error(rd_kafka_t*, int err, const char* reason, void* opaque) {
  auto* r = static_cast<reports*>(opaque);
  std::lock_guard lock{r->mutex};
  r->last_error = std::string{rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err))} + ": " +
                  reason;
}

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  if (!m->err)
    return;
  auto* r = static_cast<reports*>(opaque);
  std::lock_guard lock{r->mutex};
  if (!r->delivery_failure) {
    r->delivery_code = m->err;
    r->delivery_failure = std::string{"delivery to "} + rd_kafka_topic_name(m->rkt) + "/" +
                          std::to_string(m->partition) + " failed: " + rd_kafka_err2str(m->err);
  }
}

error fail(const std::string& label, const std::string& what) {
  return error{error_code::connector_failed, label + ": " + what};
}

/// Builds a configuration; a rejected property is an `invalid_option` naming it.
result<rd_kafka_conf_t*> make_conf(const std::string& label, const properties& props,
                                   reports* opaque) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  std::array<char, 512> err{};
  for (const auto& [k, v] : props)
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err.data(), err.size()) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return error{error_code::invalid_option,
                   label + ": property '" + k + "' = '" + v + "': " + err.data()};
    }
  rd_kafka_conf_set_opaque(conf, opaque);
  rd_kafka_conf_set_log_cb(conf, on_log);
  rd_kafka_conf_set_error_cb(conf, on_error);
  return conf;
}

/// Asks for the cluster's metadata: fails when no broker answers within `timeout`.
result<void> check_reachable(rd_kafka_t* rk, const std::string& label, const std::string& servers,
                             std::chrono::milliseconds timeout, reports& r) {
  const rd_kafka_metadata_t* md = nullptr;
  auto e = rd_kafka_metadata(rk, 0, nullptr, &md, ms(timeout));
  if (e) {
    return fail(label, "cannot reach the brokers at '" + servers + "' within " +
                         std::to_string(timeout.count()) + " ms: " + rd_kafka_err2str(e) +
                         r.context());
  }
  rd_kafka_metadata_destroy(md);
  return {};
}

struct partition_list {
  rd_kafka_topic_partition_list_t* p;
  explicit partition_list(int n) : p(rd_kafka_topic_partition_list_new(n)) {}
  ~partition_list() { rd_kafka_topic_partition_list_destroy(p); }
  partition_list(const partition_list&) = delete;
  partition_list& operator=(const partition_list&) = delete;
  rd_kafka_topic_partition_t& add(const topic_partition& tp) {
    return *rd_kafka_topic_partition_list_add(p, tp.topic.c_str(), tp.partition);
  }
};

/// The broker's and librdkafka's ways of saying another producer with this transactional
/// id took over; a transactional call and a failed delivery report it alike.
bool is_fenced(rd_kafka_resp_err_t code) {
  return code == RD_KAFKA_RESP_ERR__FENCED || code == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
         code == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH;
}
constexpr const char* fenced_explanation =
  " (another producer with the same transactional id took over: a restarted job, a zombie "
  "instance, or two jobs sharing a transactional id prefix)";

/// Turns a transactional API error into an `error` and remembers its kind.
error txn_error(rd_kafka_error_t* e, const std::string& label, const char* what,
                producer::failure& kind) {
  const auto code = rd_kafka_error_code(e);
  if (is_fenced(code))
    kind = producer::failure::fenced;
  else if (rd_kafka_error_is_fatal(e))
    kind = producer::failure::fatal;
  else if (rd_kafka_error_txn_requires_abort(e))
    kind = producer::failure::abortable;
  else if (rd_kafka_error_is_retriable(e))
    kind = producer::failure::retriable;
  else
    kind = producer::failure::fatal;
  std::string msg = std::string{what} + ": " + rd_kafka_error_string(e);
  if (kind == producer::failure::fenced)
    msg += fenced_explanation;
  rd_kafka_error_destroy(e);
  return fail(label, msg);
}

} // namespace

// -- message_view ------------------------------------------------------------------------

header_list message_view::headers() const {
  header_list out;
  rd_kafka_headers_t* hdrs = nullptr;
  auto* m = static_cast<rd_kafka_message_t*>(const_cast<void*>(raw_));
  if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return out;
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == 0; ++i)
    out.emplace_back(name, value ? std::string{static_cast<const char*>(value), size} : "");
  return out;
}

// -- consumer ----------------------------------------------------------------------------

struct consumer::impl {
  reports r;
  std::string label;
  rd_kafka_t* rk = nullptr;
  rd_kafka_queue_t* queue = nullptr;
  std::vector<rd_kafka_message_t*> batch;
  std::function<void()> on_arrival; ///< options::on_arrival

  /// librdkafka's queue event callback, on its thread with the queue locked. An exception
  /// must not cross into C; a lost wake-up costs the caller only its own poll interval.
  static void arrived(rd_kafka_t*, void* self) noexcept {
    try {
      static_cast<impl*>(self)->on_arrival();
    } catch (...) {
    }
  }

  ~impl() {
    // Disabling takes the queue's lock, so no callback runs past this line.
    if (queue && on_arrival)
      rd_kafka_queue_cb_event_enable(queue, nullptr, nullptr);
    if (queue)
      rd_kafka_queue_destroy(queue);
    // No consumer close: it waits for the group coordinator, forever when the brokers are
    // gone, and this consumer has no subscription to leave (offsets are committed by hand).
    if (rk)
      rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  }
};

consumer::consumer(std::unique_ptr<impl> p) : p_(std::move(p)) {}
consumer::consumer(consumer&&) noexcept = default;
consumer& consumer::operator=(consumer&&) noexcept = default;
consumer::~consumer() = default;
const std::string& consumer::label() const noexcept { return p_->label; }

result<consumer> consumer::open(const options& o) {
  auto p = std::make_unique<impl>();
  p->label = o.label;
  properties props{
    {"bootstrap.servers", o.bootstrap_servers},
    {"group.id", o.group_id},
    {"isolation.level", o.read_committed ? "read_committed" : "read_uncommitted"},
    {"enable.auto.commit", "false"},
    {"enable.auto.offset.store", "false"},
    {"enable.partition.eof", o.report_end ? "true" : "false"},
    {"auto.offset.reset", "earliest"},
  };
  for (const auto& [k, v] : o.extra)
    props[k] = v;
  auto conf = make_conf(o.label, props, &p->r);
  if (!conf)
    return std::move(conf).error();
  std::array<char, 512> err{};
  p->rk = rd_kafka_new(RD_KAFKA_CONSUMER, *conf, err.data(), err.size());
  if (!p->rk) {
    rd_kafka_conf_destroy(*conf);
    return error{error_code::invalid_option, o.label + ": cannot create the consumer: " + err.data()};
  }
  rd_kafka_poll_set_consumer(p->rk);
  p->queue = rd_kafka_queue_get_consumer(p->rk);
  if (o.on_arrival) {
    p->on_arrival = o.on_arrival;
    rd_kafka_queue_cb_event_enable(p->queue, &impl::arrived, p.get());
  }
  if (auto ok = check_reachable(p->rk, o.label, o.bootstrap_servers, o.connect_timeout, p->r); !ok)
    return std::move(ok).error();
  return consumer{std::move(p)};
}

result<std::vector<topic_partition>> consumer::partitions(const std::vector<std::string>& topics,
                                                          const std::string& pattern,
                                                          std::chrono::milliseconds timeout) {
  const rd_kafka_metadata_t* md = nullptr;
  if (auto e = rd_kafka_metadata(p_->rk, 1, nullptr, &md, ms(timeout)))
    return fail(p_->label, std::string{"cannot list topics: "} + rd_kafka_err2str(e) + p_->r.context());
  std::optional<std::regex> re;
  if (!pattern.empty())
    re.emplace(pattern);
  std::set<std::string> wanted(topics.begin(), topics.end());
  std::set<std::string> found;
  std::vector<topic_partition> out;
  for (int i = 0; i < md->topic_cnt; ++i) {
    const auto& t = md->topics[i];
    const std::string name = t.topic;
    const bool listed = wanted.contains(name);
    if (!listed && !(re && !name.starts_with("__") && std::regex_match(name, *re)))
      continue;
    if (t.err)
      continue;
    found.insert(name);
    for (int k = 0; k < t.partition_cnt; ++k)
      out.push_back(topic_partition{name, t.partitions[k].id});
  }
  rd_kafka_metadata_destroy(md);
  for (const auto& t : wanted)
    if (!found.contains(t))
      return fail(p_->label, "topic '" + t + "' does not exist");
  std::sort(out.begin(), out.end());
  return out;
}

result<void> consumer::assign(const std::vector<std::pair<topic_partition, std::int64_t>>& start) {
  if (start.empty())
    return {};
  partition_list list{static_cast<int>(start.size())};
  for (const auto& [tp, offset] : start)
    list.add(tp).offset = offset;
  if (auto* e = rd_kafka_incremental_assign(p_->rk, list.p)) {
    std::string msg = rd_kafka_error_string(e);
    rd_kafka_error_destroy(e);
    return fail(p_->label, "cannot assign partitions: " + msg);
  }
  return {};
}

result<std::size_t> consumer::poll(
  std::size_t max, const std::function<void(const message_view&)>& fn,
  const std::function<void(const topic_partition&, std::int64_t)>& at_end,
  std::chrono::milliseconds wait) {
  p_->batch.resize(std::max<std::size_t>(max, 1));
  auto n = rd_kafka_consume_batch_queue(p_->queue, 0, p_->batch.data(), max);
  if (n < 0)
    return fail(p_->label, std::string{"poll failed: "} + rd_kafka_err2str(rd_kafka_last_error()));
  if (n == 0 && wait.count() > 0) {
    // rd_kafka_consume_batch_queue would wait for a full batch; this returns with the first
    // message (or end report).
    if (auto* first = rd_kafka_consume_queue(p_->queue, ms(wait))) {
      p_->batch[0] = first;
      n = 1;
    }
  }
  std::size_t delivered = 0;
  std::optional<error> failure;
  for (ssize_t i = 0; i < n; ++i) {
    auto* m = p_->batch[static_cast<std::size_t>(i)];
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (at_end && m->rkt)
        at_end(topic_partition{rd_kafka_topic_name(m->rkt), m->partition}, m->offset);
      rd_kafka_message_destroy(m);
      continue;
    }
    if (m->err) {
      // Broker outages are reported here too; librdkafka reconnects by itself.
      const bool transient = m->err == RD_KAFKA_RESP_ERR__TRANSPORT ||
                             m->err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ||
                             m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF ||
                             m->err == RD_KAFKA_RESP_ERR__TIMED_OUT;
      if (!transient && !failure)
        failure = fail(p_->label, std::string{"consuming "} +
                                    (m->rkt ? rd_kafka_topic_name(m->rkt) : "?") + "/" +
                                    std::to_string(m->partition) + " failed: " +
                                    rd_kafka_message_errstr(m));
      rd_kafka_message_destroy(m);
      continue;
    }
    if (!failure) {
      message_view v;
      v.raw_ = m;
      v.topic_ = rd_kafka_topic_name(m->rkt);
      v.partition_ = m->partition;
      v.offset_ = m->offset;
      rd_kafka_timestamp_type_t type{};
      const auto ts = rd_kafka_message_timestamp(m, &type);
      if (ts >= 0)
        v.timestamp_ms_ = ts;
      if (m->key)
        v.key_ = std::string_view{static_cast<const char*>(m->key), m->key_len};
      v.value_ = m->payload ? std::string_view{static_cast<const char*>(m->payload), m->len}
                            : std::string_view{};
      fn(v);
      ++delivered;
    }
    rd_kafka_message_destroy(m);
  }
  std::array<char, 512> fatal{};
  if (!failure && rd_kafka_fatal_error(p_->rk, fatal.data(), fatal.size()))
    failure = fail(p_->label, std::string{"fatal client error: "} + fatal.data());
  if (failure)
    return std::move(*failure);
  return delivered;
}

result<void> consumer::pause(const std::vector<topic_partition>& partitions) {
  if (partitions.empty())
    return {};
  partition_list list{static_cast<int>(partitions.size())};
  for (const auto& tp : partitions)
    list.add(tp);
  if (auto e = rd_kafka_pause_partitions(p_->rk, list.p))
    return fail(p_->label, std::string{"cannot pause partitions: "} + rd_kafka_err2str(e));
  for (int i = 0; i < list.p->cnt; ++i)
    if (const auto& e = list.p->elems[i]; e.err)
      return fail(p_->label, std::string{"cannot pause "} + e.topic + "/" +
                               std::to_string(e.partition) + ": " + rd_kafka_err2str(e.err));
  return {};
}

result<void> consumer::resume_at(const std::vector<std::pair<topic_partition, std::int64_t>>& start,
                                 std::chrono::milliseconds timeout) {
  if (start.empty())
    return {};
  partition_list list{static_cast<int>(start.size())};
  for (const auto& [tp, offset] : start)
    list.add(tp).offset = offset;
  // Seek while paused, then resume: librdkafka (since 1.9) resumes at the sought offset. A
  // seek with a timeout is confirmed before it returns, so nothing fetched earlier for the
  // old position reaches the application.
  if (auto* e = rd_kafka_seek_partitions(p_->rk, list.p, std::max(ms(timeout), 1))) {
    std::string msg = rd_kafka_error_string(e);
    rd_kafka_error_destroy(e);
    return fail(p_->label, "cannot seek partitions: " + msg + p_->r.context());
  }
  for (int i = 0; i < list.p->cnt; ++i)
    if (const auto& e = list.p->elems[i]; e.err)
      return fail(p_->label, std::string{"cannot seek "} + e.topic + "/" +
                               std::to_string(e.partition) + ": " + rd_kafka_err2str(e.err));
  if (auto e = rd_kafka_resume_partitions(p_->rk, list.p))
    return fail(p_->label, std::string{"cannot resume partitions: "} + rd_kafka_err2str(e));
  for (int i = 0; i < list.p->cnt; ++i)
    if (const auto& e = list.p->elems[i]; e.err)
      return fail(p_->label, std::string{"cannot resume "} + e.topic + "/" +
                               std::to_string(e.partition) + ": " + rd_kafka_err2str(e.err));
  return {};
}

result<void> consumer::commit(const std::vector<std::pair<topic_partition, std::int64_t>>& offsets,
                              bool wait) {
  if (offsets.empty())
    return {};
  partition_list list{static_cast<int>(offsets.size())};
  for (const auto& [tp, offset] : offsets)
    list.add(tp).offset = offset;
  if (!wait) {
    if (auto e = rd_kafka_commit(p_->rk, list.p, 1))
      return fail(p_->label, std::string{"cannot commit offsets: "} + rd_kafka_err2str(e));
    return {};
  }
  // A synchronous rd_kafka_commit has no timeout: wait for the result on a queue instead.
  rd_kafka_queue_t* q = rd_kafka_queue_new(p_->rk);
  result<void> out;
  if (auto e = rd_kafka_commit_queue(p_->rk, list.p, q, nullptr, nullptr)) {
    out = fail(p_->label, std::string{"cannot commit offsets: "} + rd_kafka_err2str(e));
  } else if (rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 5000)) {
    if (rd_kafka_event_error(ev))
      out = fail(p_->label, std::string{"cannot commit offsets: "} + rd_kafka_event_error_string(ev));
    rd_kafka_event_destroy(ev);
  } else {
    out = fail(p_->label, "committing offsets was not confirmed within 5 s" + p_->r.context());
  }
  rd_kafka_queue_destroy(q);
  return out;
}

result<std::map<topic_partition, std::int64_t>>
consumer::committed(const std::vector<topic_partition>& partitions, std::chrono::milliseconds timeout) {
  std::map<topic_partition, std::int64_t> out;
  if (partitions.empty())
    return out;
  partition_list list{static_cast<int>(partitions.size())};
  for (const auto& tp : partitions)
    list.add(tp);
  if (auto e = rd_kafka_committed(p_->rk, list.p, ms(timeout)))
    return fail(p_->label, std::string{"cannot read committed offsets: "} + rd_kafka_err2str(e) +
                             p_->r.context());
  for (int i = 0; i < list.p->cnt; ++i) {
    const auto& e = list.p->elems[i];
    if (e.err)
      return fail(p_->label, std::string{"cannot read the committed offset of "} + e.topic + "/" +
                               std::to_string(e.partition) + ": " + rd_kafka_err2str(e.err));
    if (e.offset >= 0)
      out[{e.topic, e.partition}] = e.offset;
  }
  return out;
}

namespace {

/// One ListOffsets request per leader (librdkafka's offsets_for_times), asking each
/// partition for `query`: a timestamp, or the logical offset "end". It carries the
/// consumer's isolation level, so under read_committed "end" is the last stable offset.
/// The answer per partition: an offset, or -1 when none is at or after the timestamp. A
/// partition the broker could not answer for is an error naming it.
result<std::map<topic_partition, std::int64_t>>
list_offsets(rd_kafka_t* rk, const std::string& label, const std::string& context,
             const std::vector<topic_partition>& partitions, std::int64_t query,
             std::chrono::milliseconds timeout, const std::string& what) {
  std::map<topic_partition, std::int64_t> out;
  if (partitions.empty())
    return out;
  partition_list list{static_cast<int>(partitions.size())};
  for (const auto& tp : partitions)
    list.add(tp).offset = query;
  if (auto e = rd_kafka_offsets_for_times(rk, list.p, ms(timeout)))
    return fail(label, "cannot look up " + what + ": " + rd_kafka_err2str(e) + context);
  for (int i = 0; i < list.p->cnt; ++i) {
    const auto& e = list.p->elems[i];
    if (e.err)
      return fail(label, "cannot look up " + what + " of " + e.topic + "/" +
                           std::to_string(e.partition) + ": " + rd_kafka_err2str(e.err));
    out[{e.topic, e.partition}] = e.offset;
  }
  return out;
}

} // namespace

result<std::map<topic_partition, std::int64_t>>
consumer::offsets_for_time(const std::vector<topic_partition>& partitions, std::int64_t timestamp_ms,
                           std::chrono::milliseconds timeout) {
  auto got = list_offsets(p_->rk, p_->label, p_->r.context(), partitions, timestamp_ms, timeout,
                          "the offsets at " + std::to_string(timestamp_ms) + " ms");
  if (!got)
    return got;
  for (auto& [tp, offset] : *got)
    if (offset < 0) // no record at or after the time
      offset = logical_offset::end;
  return got;
}

result<std::map<topic_partition, std::int64_t>>
consumer::end_offsets(const std::vector<topic_partition>& partitions,
                      std::chrono::milliseconds timeout) {
  auto got = list_offsets(p_->rk, p_->label, p_->r.context(), partitions, RD_KAFKA_OFFSET_END,
                          timeout, "the latest offsets");
  if (!got)
    return got;
  for (const auto& [tp, offset] : *got)
    if (offset < 0)
      return fail(p_->label, "cannot look up the latest offset of " + tp.topic + "/" +
                               std::to_string(tp.partition) + ": the broker gave none");
  return got;
}

result<std::pair<std::int64_t, std::int64_t>>
consumer::watermark_offsets(const topic_partition& tp, std::chrono::milliseconds timeout) {
  std::int64_t lo = 0;
  std::int64_t hi = 0;
  if (auto e = rd_kafka_query_watermark_offsets(p_->rk, tp.topic.c_str(), tp.partition, &lo, &hi,
                                                ms(timeout)))
    return fail(p_->label, "cannot query offsets of " + tp.to_string() + ": " + rd_kafka_err2str(e));
  return std::pair{lo, hi};
}

// -- producer ----------------------------------------------------------------------------

struct producer::impl {
  reports r;
  std::string label;
  rd_kafka_t* rk = nullptr;
  failure last = failure::none;

  ~impl() {
    if (rk)
      rd_kafka_destroy(rk);
  }

  /// The first failed delivery since the last call, if any.
  std::optional<error> take_delivery_failure() {
    std::lock_guard lock{r.mutex};
    if (!r.delivery_failure)
      return std::nullopt;
    const bool fenced = is_fenced(r.delivery_code);
    auto e = fail(label, *r.delivery_failure + (fenced ? fenced_explanation : ""));
    r.delivery_failure.reset();
    last = fenced ? failure::fenced : failure::abortable;
    return e;
  }
};

producer::producer(std::unique_ptr<impl> p) : p_(std::move(p)) {}
producer::producer(producer&&) noexcept = default;
producer& producer::operator=(producer&&) noexcept = default;
producer::~producer() = default;
const std::string& producer::label() const noexcept { return p_->label; }
producer::failure producer::last_failure() const noexcept { return p_->last; }

result<producer> producer::open(const options& o) {
  auto p = std::make_unique<impl>();
  p->label = o.label;
  properties props{{"bootstrap.servers", o.bootstrap_servers}, {"linger.ms", "1"}};
  if (o.transactional_id)
    props["transactional.id"] = *o.transactional_id;
  for (const auto& [k, v] : o.extra)
    props[k] = v;
  auto conf = make_conf(o.label, props, &p->r);
  if (!conf)
    return std::move(conf).error();
  rd_kafka_conf_set_dr_msg_cb(*conf, on_delivery);
  std::array<char, 512> err{};
  p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, *conf, err.data(), err.size());
  if (!p->rk) {
    rd_kafka_conf_destroy(*conf);
    return error{error_code::invalid_option, o.label + ": cannot create the producer: " + err.data()};
  }
  if (auto ok = check_reachable(p->rk, o.label, o.bootstrap_servers, o.connect_timeout, p->r); !ok)
    return std::move(ok).error();
  return producer{std::move(p)};
}

result<void> producer::produce(const std::string& topic, int partition,
                               std::optional<std::string_view> key, std::string_view value,
                               const header_list* headers) {
  if (auto e = p_->take_delivery_failure())
    return std::move(*e);
  for (;;) {
    rd_kafka_headers_t* hdrs = nullptr;
    if (headers && !headers->empty()) {
      hdrs = rd_kafka_headers_new(headers->size());
      for (const auto& [k, v] : *headers)
        rd_kafka_header_add(hdrs, k.data(), static_cast<ssize_t>(k.size()), v.data(),
                            static_cast<ssize_t>(v.size()));
    }
    const void* key_ptr = key ? key->data() : nullptr;
    const size_t key_len = key ? key->size() : 0;
    auto e = rd_kafka_producev(
      p_->rk, RD_KAFKA_V_TOPIC(topic.c_str()),
      RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
      RD_KAFKA_V_KEY(key_ptr, key_len),
      RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
    if (!e)
      return {};
    if (hdrs)
      rd_kafka_headers_destroy(hdrs);
    if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      p_->last = e == RD_KAFKA_RESP_ERR__FENCED ? failure::fenced
               : e == RD_KAFKA_RESP_ERR__STATE  ? failure::abortable
                                                : failure::fatal;
      return fail(p_->label, "cannot produce to '" + topic + "': " + rd_kafka_err2str(e) +
                               p_->r.context());
    }
    // librdkafka's queue is full: wait for acknowledgements, which is the backpressure.
    rd_kafka_poll(p_->rk, 10);
  }
}

void producer::poll() { rd_kafka_poll(p_->rk, 0); }

result<void> producer::flush(std::chrono::milliseconds timeout) {
  const auto e = rd_kafka_flush(p_->rk, ms(timeout));
  if (auto d = p_->take_delivery_failure())
    return std::move(*d);
  if (e) {
    p_->last = failure::retriable;
    return fail(p_->label, std::to_string(rd_kafka_outq_len(p_->rk)) +
                             " records still unacknowledged after " +
                             std::to_string(timeout.count()) + " ms" + p_->r.context());
  }
  return {};
}

result<int> producer::partition_count(const std::string& topic, std::chrono::milliseconds timeout) {
  // A broker that creates topics on first use answers "unknown topic" while it creates
  // one: ask again until `timeout`.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  rd_kafka_topic_t* t = rd_kafka_topic_new(p_->rk, topic.c_str(), nullptr);
  for (;;) {
    const rd_kafka_metadata_t* md = nullptr;
    auto e = rd_kafka_metadata(p_->rk, 0, t, &md, ms(timeout));
    if (e) {
      rd_kafka_topic_destroy(t);
      return fail(p_->label, "cannot read metadata of topic '" + topic + "': " + rd_kafka_err2str(e));
    }
    int n = 0;
    rd_kafka_resp_err_t terr = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (md->topic_cnt == 1) {
      n = md->topics[0].partition_cnt;
      terr = md->topics[0].err;
    }
    rd_kafka_metadata_destroy(md);
    if (!terr && n > 0) {
      rd_kafka_topic_destroy(t);
      return n;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      rd_kafka_topic_destroy(t);
      return fail(p_->label, "topic '" + topic + "' is not available: " +
                               rd_kafka_err2str(terr ? terr : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART));
    }
    std::this_thread::sleep_for(100ms);
  }
}

result<void> producer::init_transactions(std::chrono::milliseconds timeout) {
  if (auto* e = rd_kafka_init_transactions(p_->rk, ms(timeout)))
    return txn_error(e, p_->label, "cannot initialise transactions", p_->last);
  return {};
}

result<void> producer::begin_transaction() {
  if (auto* e = rd_kafka_begin_transaction(p_->rk))
    return txn_error(e, p_->label, "cannot begin a transaction", p_->last);
  return {};
}

result<void> producer::send_offset(const std::string& group_id, const topic_partition& tp,
                                   std::int64_t offset, const std::string& metadata,
                                   std::chrono::milliseconds timeout) {
  partition_list list{1};
  auto& e0 = list.add(tp);
  e0.offset = offset;
  // The list frees its metadata with free(): give it malloc'ed bytes.
  e0.metadata = std::malloc(metadata.size());
  std::memcpy(e0.metadata, metadata.data(), metadata.size());
  e0.metadata_size = metadata.size();
  auto* group = rd_kafka_consumer_group_metadata_new(group_id.c_str());
  auto* e = rd_kafka_send_offsets_to_transaction(p_->rk, list.p, group, ms(timeout));
  rd_kafka_consumer_group_metadata_destroy(group);
  if (e)
    return txn_error(e, p_->label, "cannot add the checkpoint marker to the transaction", p_->last);
  return {};
}

result<void> producer::commit_transaction(std::chrono::milliseconds timeout) {
  if (auto* e = rd_kafka_commit_transaction(p_->rk, ms(timeout))) {
    auto err = txn_error(e, p_->label, "cannot commit the transaction", p_->last);
    if (auto d = p_->take_delivery_failure())
      err.message += "; " + d->message;
    return err;
  }
  p_->take_delivery_failure(); // a retried delivery that still made it in
  return {};
}

result<void> producer::abort_transaction(std::chrono::milliseconds timeout) {
  if (auto* e = rd_kafka_abort_transaction(p_->rk, ms(timeout)))
    return txn_error(e, p_->label, "cannot abort the transaction", p_->last);
  p_->take_delivery_failure();
  return {};
}

// -- checkpoint markers --------------------------------------------------------------------

result<std::optional<committed_entry>> committed_offset(const std::string& bootstrap_servers,
                                                     const properties& extra,
                                                     const std::string& group_id,
                                                     const topic_partition& tp,
                                                     std::chrono::milliseconds timeout) {
  auto c = consumer::open({.bootstrap_servers = bootstrap_servers,
                           .group_id = group_id,
                           .read_committed = true,
                           .connect_timeout = timeout,
                           .extra = extra,
                           .label = "kafka marker reader for group '" + group_id + "'"});
  if (!c)
    return std::move(c).error();
  return c->committed_entry_of(tp, timeout);
}

result<std::optional<committed_entry>> consumer::committed_entry_of(const topic_partition& tp,
                                                                    std::chrono::milliseconds timeout) {
  partition_list list{1};
  list.add(tp);
  if (auto e = rd_kafka_committed(p_->rk, list.p, ms(timeout)))
    return fail(p_->label, std::string{"cannot read the committed offset: "} + rd_kafka_err2str(e) +
                             p_->r.context());
  const auto& e = list.p->elems[0];
  if (e.err)
    return fail(p_->label, "cannot read the committed offset of " + tp.to_string() + ": " +
                             rd_kafka_err2str(e.err));
  if (e.offset < 0)
    return std::optional<committed_entry>{};
  committed_entry out{e.offset, {}};
  if (e.metadata)
    out.metadata.assign(static_cast<const char*>(e.metadata), e.metadata_size);
  return std::optional<committed_entry>{std::move(out)};
}

// -- administration ------------------------------------------------------------------------

namespace {

/// Runs one admin request on a short-lived client and waits for its result event.
template <class Make, class Check>
result<void> admin(const std::string& servers, const std::string& what,
                   std::chrono::milliseconds timeout, Make make, Check check) {
  reports r;
  auto conf = make_conf("kafka admin", {{"bootstrap.servers", servers}}, &r);
  if (!conf)
    return std::move(conf).error();
  std::array<char, 512> err{};
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, *conf, err.data(), err.size());
  if (!rk) {
    rd_kafka_conf_destroy(*conf);
    return error{error_code::invalid_option, "kafka admin: " + std::string{err.data()}};
  }
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
  auto* opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_ANY);
  rd_kafka_AdminOptions_set_request_timeout(opts, ms(timeout), nullptr, 0);
  make(rk, opts, q);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, ms(timeout) + 1000);
  result<void> out;
  if (!ev)
    out = fail("kafka admin", what + ": no answer within " + std::to_string(timeout.count()) +
                                " ms from '" + servers + "'" + r.context());
  else if (rd_kafka_event_error(ev))
    out = fail("kafka admin", what + ": " + rd_kafka_event_error_string(ev));
  else
    out = check(ev);
  if (ev)
    rd_kafka_event_destroy(ev);
  rd_kafka_AdminOptions_destroy(opts);
  rd_kafka_queue_destroy(q);
  rd_kafka_destroy(rk);
  return out;
}

result<void> topic_results(const rd_kafka_topic_result_t** res, size_t n, const std::string& what) {
  for (size_t i = 0; i < n; ++i)
    if (rd_kafka_topic_result_error(res[i]))
      return fail("kafka admin", what + ": " + rd_kafka_topic_result_error_string(res[i]));
  return {};
}

} // namespace

result<void> create_topic(const std::string& bootstrap_servers, const std::string& topic,
                          int partitions, std::chrono::milliseconds timeout,
                          const properties& topic_config) {
  const std::string what = "cannot create topic '" + topic + "'";
  return admin(
    bootstrap_servers, what, timeout,
    [&](rd_kafka_t* rk, rd_kafka_AdminOptions_t* opts, rd_kafka_queue_t* q) {
      std::array<char, 512> err{};
      auto* nt = rd_kafka_NewTopic_new(topic.c_str(), partitions, 1, err.data(), err.size());
      for (const auto& [k, v] : topic_config)
        rd_kafka_NewTopic_set_config(nt, k.c_str(), v.c_str());
      rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
      rd_kafka_NewTopic_destroy(nt);
    },
    [&](rd_kafka_event_t* ev) {
      size_t n = 0;
      auto* res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
      return topic_results(res, n, what);
    });
}

result<void> add_partitions(const std::string& bootstrap_servers, const std::string& topic,
                            int partitions, std::chrono::milliseconds timeout) {
  const std::string what = "cannot grow topic '" + topic + "' to " + std::to_string(partitions) +
                           " partitions";
  return admin(
    bootstrap_servers, what, timeout,
    [&](rd_kafka_t* rk, rd_kafka_AdminOptions_t* opts, rd_kafka_queue_t* q) {
      std::array<char, 512> err{};
      auto* np = rd_kafka_NewPartitions_new(topic.c_str(), static_cast<size_t>(partitions),
                                            err.data(), err.size());
      rd_kafka_CreatePartitions(rk, &np, 1, opts, q);
      rd_kafka_NewPartitions_destroy(np);
    },
    [&](rd_kafka_event_t* ev) {
      size_t n = 0;
      auto* res =
        rd_kafka_CreatePartitions_result_topics(rd_kafka_event_CreatePartitions_result(ev), &n);
      return topic_results(res, n, what);
    });
}

} // namespace sluice::kafka
