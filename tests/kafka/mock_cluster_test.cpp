// sluice::kafka::mock_cluster: argument checks, and that each injection reaches a real
// librdkafka producer the way a test relies on it.
#define BOOST_TEST_MODULE kafka_mock
#include <boost/test/unit_test.hpp>

#include "sluice/tools/kafka_mock/mock_cluster.hpp"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

using namespace std::chrono_literals;
using sluice::error_code;
using sluice::kafka::broker_error;
using sluice::kafka::mock_cluster;
using sluice::kafka::request;

namespace {

mock_cluster make_cluster(int brokers) {
  auto cluster = mock_cluster::create(brokers);
  BOOST_TEST_REQUIRE(cluster.has_value(), (cluster ? "" : cluster.error().to_string()));
  return std::move(cluster).value();
}

// A producer that sends one message at a time and reports how its delivery ended. Its log goes
// to a callback that drops it: the broker_down case makes librdkafka complain on purpose.
class producer {
public:
  producer(const std::string& bootstrap, std::chrono::milliseconds message_timeout) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char err[512];
    auto set = [&](const char* key, const std::string& value) {
      BOOST_TEST_REQUIRE(rd_kafka_conf_set(conf, key, value.c_str(), err, sizeof err)
                         == RD_KAFKA_CONF_OK, err);
    };
    set("bootstrap.servers", bootstrap);
    set("linger.ms", "0");
    // No retries: an injected error must reach the delivery report, not be retried away.
    set("message.send.max.retries", "0");
    set("message.timeout.ms", std::to_string(message_timeout.count()));
    rd_kafka_conf_set_log_cb(conf, [](const rd_kafka_t*, int, const char*, const char*) {});
    rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void* self) {
      static_cast<producer*>(self)->delivered_ = m->err;
    });
    rd_kafka_conf_set_opaque(conf, this);
    rk_.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err));
    BOOST_TEST_REQUIRE(rk_ != nullptr, err);
  }

  // Sends one message to partition 0 and waits (bounded by the message timeout plus slack)
  // for its delivery report.
  rd_kafka_resp_err_t send(const std::string& topic, const std::string& payload) {
    delivered_.reset();
    auto err = rd_kafka_producev(rk_.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(0),
                                 RD_KAFKA_V_VALUE(const_cast<char*>(payload.data()), payload.size()),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    BOOST_TEST_REQUIRE(err == RD_KAFKA_RESP_ERR_NO_ERROR, rd_kafka_err2str(err));
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!delivered_ && std::chrono::steady_clock::now() < deadline) rd_kafka_poll(rk_.get(), 100);
    BOOST_TEST_REQUIRE(delivered_.has_value(), "no delivery report within 30s");
    return *delivered_;
  }

private:
  struct deleter {
    void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
  };
  std::unique_ptr<rd_kafka_t, deleter> rk_;
  std::optional<rd_kafka_resp_err_t> delivered_;
};

} // namespace

BOOST_AUTO_TEST_SUITE(mock_cluster_api)

BOOST_AUTO_TEST_CASE(needs_a_broker) {
  auto cluster = mock_cluster::create(0);
  BOOST_TEST_REQUIRE(!cluster.has_value());
  BOOST_TEST((cluster.error().code == error_code::invalid_option));
}

BOOST_AUTO_TEST_CASE(bootstrap_lists_every_broker) {
  auto cluster = make_cluster(3);
  BOOST_TEST(cluster.broker_count() == 3);
  auto bootstrap = cluster.bootstrap();
  BOOST_TEST(std::count(bootstrap.begin(), bootstrap.end(), ',') == 2);
  BOOST_TEST(bootstrap.rfind("127.0.0.1:", 0) == 0u);
}

BOOST_AUTO_TEST_CASE(topic_arguments_are_checked) {
  auto cluster = make_cluster(1);
  BOOST_TEST(cluster.create_topic("orders", 2).has_value());
  auto empty = cluster.create_topic("", 1);
  BOOST_TEST((!empty && empty.error().code == error_code::invalid_option));
  auto none = cluster.create_topic("zero", 0);
  BOOST_TEST((!none && none.error().code == error_code::invalid_option));
  auto again = cluster.create_topic("orders", 2);
  BOOST_TEST_REQUIRE(!again.has_value());
  BOOST_TEST((again.error().code == error_code::connector_failed));
  BOOST_TEST(again.error().message.find("TOPIC_ALREADY_EXISTS") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(broker_ids_are_checked) {
  auto cluster = make_cluster(3);
  for (int id : {0, 4, -1}) {
    auto down = cluster.broker_down(id);
    BOOST_TEST((!down && down.error().code == error_code::invalid_option), "broker " << id);
  }
  BOOST_TEST(cluster.broker_down(2).has_value());
  BOOST_TEST(cluster.broker_up(2).has_value());
  BOOST_TEST(cluster.set_rtt(1, 5ms).has_value());
  auto negative = cluster.set_rtt(1, -1ms);
  BOOST_TEST((!negative && negative.error().code == error_code::invalid_option));
}

BOOST_AUTO_TEST_CASE(moved_cluster_keeps_serving) {
  auto first = make_cluster(1);
  auto bootstrap = first.bootstrap();
  mock_cluster second = std::move(first);
  BOOST_TEST(second.bootstrap() == bootstrap);
  BOOST_TEST(second.create_topic("t", 1).has_value());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(mock_cluster_faults)

BOOST_AUTO_TEST_CASE(pushed_errors_fail_requests_in_order) {
  auto cluster = make_cluster(1);
  BOOST_TEST_REQUIRE(cluster.create_topic("orders", 1).has_value());
  producer p{cluster.bootstrap(), 10s};
  BOOST_TEST_REQUIRE(p.send("orders", "warm-up") == RD_KAFKA_RESP_ERR_NO_ERROR);

  cluster.push_errors(request::produce, {broker_error::not_enough_replicas,
                                         broker_error::not_enough_replicas_after_append});
  BOOST_TEST(p.send("orders", "a") == RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
  BOOST_TEST(p.send("orders", "b") == RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND);
  BOOST_TEST(p.send("orders", "c") == RD_KAFKA_RESP_ERR_NO_ERROR);

  cluster.push_errors(request::produce, {broker_error::not_enough_replicas});
  cluster.clear_errors(request::produce);
  BOOST_TEST(p.send("orders", "d") == RD_KAFKA_RESP_ERR_NO_ERROR);
}

BOOST_AUTO_TEST_CASE(broker_down_until_up) {
  auto cluster = make_cluster(1);
  BOOST_TEST_REQUIRE(cluster.create_topic("orders", 1).has_value());
  producer p{cluster.bootstrap(), 1500ms};
  BOOST_TEST_REQUIRE(p.send("orders", "before") == RD_KAFKA_RESP_ERR_NO_ERROR);

  BOOST_TEST_REQUIRE(cluster.broker_down(1).has_value());
  BOOST_TEST(p.send("orders", "while down") == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT);

  BOOST_TEST_REQUIRE(cluster.broker_up(1).has_value());
  // librdkafka reconnects with backoff; a generous message timeout covers it.
  producer after{cluster.bootstrap(), 20s};
  BOOST_TEST(after.send("orders", "after") == RD_KAFKA_RESP_ERR_NO_ERROR);
}

BOOST_AUTO_TEST_SUITE_END()
