#include "sluice/tools/kafka_mock/mock_cluster.hpp"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <algorithm>
#include <deque>
#include <mutex>
#include <utility>

namespace sluice::kafka {

// The names in the header are librdkafka's numbers; a librdkafka that renumbered would break
// injected errors silently, so check at compile time.
static_assert(static_cast<int>(broker_error::not_leader_for_partition)
              == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
static_assert(static_cast<int>(broker_error::request_timed_out) == RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
static_assert(static_cast<int>(broker_error::not_enough_replicas_after_append)
              == RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND);
static_assert(static_cast<int>(broker_error::not_coordinator) == RD_KAFKA_RESP_ERR_NOT_COORDINATOR);
static_assert(static_cast<int>(broker_error::disconnect) == RD_KAFKA_RESP_ERR__TRANSPORT);

namespace {

struct handle_deleter {
  void operator()(rd_kafka_t* rk) const noexcept { rd_kafka_destroy(rk); }
};
struct cluster_deleter {
  void operator()(rd_kafka_mock_cluster_t* mc) const noexcept { rd_kafka_mock_cluster_destroy(mc); }
};

constexpr std::size_t kept_log_lines = 8;

} // namespace

struct mock_cluster::impl {
  // Declared first so they outlive the handle: librdkafka logs while it shuts down.
  std::mutex log_mutex;
  std::deque<std::string> log;

  int brokers = 0;
  // The cluster goes before the handle it was made with (members die in reverse order).
  std::unique_ptr<rd_kafka_t, handle_deleter> rk;
  std::unique_ptr<rd_kafka_mock_cluster_t, cluster_deleter> cluster;

  // librdkafka logs to stderr unless given a callback; a library must not print, so the last
  // lines are kept for error messages instead. Called on librdkafka's threads.
  static void on_log(const rd_kafka_t* rk, int /*level*/, const char* facility, const char* line) {
    auto* self = static_cast<impl*>(rd_kafka_opaque(rk));
    if (self == nullptr) return;
    std::lock_guard lock{self->log_mutex};
    if (self->log.size() == kept_log_lines) self->log.pop_front();
    self->log.push_back(std::string{facility} + ": " + line);
  }

  std::string recent_log() {
    std::lock_guard lock{log_mutex};
    if (log.empty()) return {};
    std::string out = " (librdkafka said:";
    for (const auto& line : log) out += " [" + line + "]";
    out += ")";
    return out;
  }

  result<void> check(rd_kafka_resp_err_t err, std::string_view what) {
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return {};
    return make_error(error_code::connector_failed,
                      "mock cluster: " + std::string{what} + ": " + rd_kafka_err2name(err) + ": "
                        + rd_kafka_err2str(err));
  }
};

result<mock_cluster> mock_cluster::create(int brokers) {
  if (brokers < 1) {
    return make_error(error_code::invalid_option,
                      "mock cluster: needs at least 1 broker, got " + std::to_string(brokers));
  }
  auto state = std::make_unique<impl>();
  state->brokers = brokers;

  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set_opaque(conf, state.get());
  rd_kafka_conf_set_log_cb(conf, &impl::on_log);
  char errstr[512] = {};
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf); // only a successful rd_kafka_new takes it over
    return make_error(error_code::connector_failed,
                      std::string{"mock cluster: cannot create the librdkafka handle: "} + errstr);
  }
  state->rk.reset(rk);

  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(rk, brokers);
  if (cluster == nullptr) {
    return make_error(error_code::connector_failed, "mock cluster: librdkafka could not start "
                                                      + std::to_string(brokers) + " broker(s)"
                                                      + state->recent_log());
  }
  state->cluster.reset(cluster);
  return mock_cluster{std::move(state)};
}

mock_cluster::mock_cluster(std::unique_ptr<impl> state) noexcept : impl_(std::move(state)) {}
mock_cluster::mock_cluster(mock_cluster&&) noexcept = default;
mock_cluster& mock_cluster::operator=(mock_cluster&&) noexcept = default;
mock_cluster::~mock_cluster() = default;

std::string mock_cluster::bootstrap() const {
  return rd_kafka_mock_cluster_bootstraps(impl_->cluster.get());
}

int mock_cluster::broker_count() const noexcept { return impl_->brokers; }

result<void> mock_cluster::check_broker(int id, std::string_view what) const {
  if (id >= 1 && id <= impl_->brokers) return {};
  return make_error(error_code::invalid_option,
                    "mock cluster: " + std::string{what} + ": no broker " + std::to_string(id)
                      + " (brokers are 1.." + std::to_string(impl_->brokers) + ")");
}

result<void> mock_cluster::create_topic(std::string_view name, int partitions) {
  std::string what = "create_topic(" + std::string{name} + ", " + std::to_string(partitions) + ")";
  if (name.empty()) {
    return make_error(error_code::invalid_option, "mock cluster: " + what + ": empty topic name");
  }
  if (partitions < 1) {
    return make_error(error_code::invalid_option,
                      "mock cluster: " + what + ": needs at least 1 partition");
  }
  // Replicas as a real cluster would have them, so leader moves (set_leader) look real.
  int replicas = std::min(impl_->brokers, 3);
  return impl_->check(rd_kafka_mock_topic_create(impl_->cluster.get(), std::string{name}.c_str(),
                                                 partitions, replicas),
                      what);
}

result<void> mock_cluster::broker_down(int id) {
  std::string what = "broker_down(" + std::to_string(id) + ")";
  if (auto ok = check_broker(id, what); !ok) return ok;
  return impl_->check(rd_kafka_mock_broker_set_down(impl_->cluster.get(), id), what);
}

result<void> mock_cluster::broker_up(int id) {
  std::string what = "broker_up(" + std::to_string(id) + ")";
  if (auto ok = check_broker(id, what); !ok) return ok;
  return impl_->check(rd_kafka_mock_broker_set_up(impl_->cluster.get(), id), what);
}

result<void> mock_cluster::set_leader(std::string_view topic, int partition, int id) {
  std::string what = "set_leader(" + std::string{topic} + "/" + std::to_string(partition) + ", "
                     + std::to_string(id) + ")";
  if (auto ok = check_broker(id, what); !ok) return ok;
  return impl_->check(rd_kafka_mock_partition_set_leader(impl_->cluster.get(),
                                                         std::string{topic}.c_str(), partition, id),
                      what);
}

result<void> mock_cluster::set_rtt(int id, std::chrono::milliseconds rtt) {
  std::string what = "set_rtt(" + std::to_string(id) + ", " + std::to_string(rtt.count()) + "ms)";
  if (auto ok = check_broker(id, what); !ok) return ok;
  if (rtt.count() < 0) {
    return make_error(error_code::invalid_option, "mock cluster: " + what + ": negative delay");
  }
  return impl_->check(
    rd_kafka_mock_broker_set_rtt(impl_->cluster.get(), id, static_cast<int>(rtt.count())), what);
}

void mock_cluster::push_errors(request kind, const std::vector<broker_error>& errors) {
  if (errors.empty()) return;
  std::vector<rd_kafka_resp_err_t> codes;
  codes.reserve(errors.size());
  for (auto e : errors) codes.push_back(static_cast<rd_kafka_resp_err_t>(e));
  rd_kafka_mock_push_request_errors_array(impl_->cluster.get(), static_cast<std::int16_t>(kind),
                                          codes.size(), codes.data());
}

void mock_cluster::clear_errors(request kind) {
  rd_kafka_mock_clear_request_errors(impl_->cluster.get(), static_cast<std::int16_t>(kind));
}

} // namespace sluice::kafka
