#pragma once
/// The records of the kafka_pipeline sample, shared with its crash test and benchmark.
#include <cstdint>
#include <string>

namespace sluice::samples {

struct payment {
  std::int64_t id = 0;
  std::int64_t account = 0;
  std::int64_t cents = 0;
  std::int64_t sent_us = 0; ///< when the producer sent it (end-to-end latency)
  std::string memo;         ///< free text (the benchmark pads records to 100 bytes with it)
};

template <class Inspector>
bool inspect(Inspector& f, payment& x) {
  return f.object("payment").fields(f.field("id", x.id), f.field("account", x.account),
                                    f.field("cents", x.cents), f.field("sent_us", x.sent_us),
                                    f.field("memo", x.memo));
}

struct account_total {
  std::int64_t id = 0; ///< the payment that made it
  std::int64_t account = 0;
  std::int64_t cents = 0;
  std::int64_t total_cents = 0;
  std::int64_t sent_us = 0;
  std::string memo;
};

template <class Inspector>
bool inspect(Inspector& f, account_total& x) {
  return f.object("account_total")
    .fields(f.field("id", x.id), f.field("account", x.account), f.field("cents", x.cents),
            f.field("total_cents", x.total_cents), f.field("sent_us", x.sent_us),
            f.field("memo", x.memo));
}

} // namespace sluice::samples
