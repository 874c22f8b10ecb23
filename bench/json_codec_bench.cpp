// The JSON codec alone (issue 28): decode and encode of the records the Kafka benchmark
// and the fraud sample move, per record, with the codec `from_json_line` / `to_json_line`
// use now (simdjson On-Demand reading, direct writing) and with the nlohmann paths they
// replaced (`detail::from_json_line_reference`, `detail::to_json_line_reference`), in the
// same process, several runs each, medians reported.
//
//   json_codec_bench --records 2000000 --runs 5
//   json_codec_bench --impl nlohmann --only pipeline --runs 1 --records 20000000   (for perf)
//
// Rows:
//   payment-decode   100-byte payment JSON (bench/kafka_load.cpp's, memo padded) -> payment
//   total-encode     account_total (what kafka_pipeline --map writes, ~120 bytes) -> JSON
//   pipeline         decode, map to account_total as kafka_pipeline --map does, encode: the
//                    task's JSON work per record in the Kafka benchmark
//   txn-decode       the fraud sample's transaction (~190 bytes of JSON) -> transaction
//   txn-encode       transaction -> JSON
//   copy             the floor: each 100-byte payment line copied into a std::string (a
//                    byte copy, what kcat does per record; no parsing)
#include "sluice/core/codec/json.hpp"
#include "sluice/samples/fraud_detection/types.hpp"
#include "sluice/samples/kafka_pipeline/payments.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace sluice;
using samples::account_total;
using samples::payment;
using steady = std::chrono::steady_clock;

namespace {

constexpr std::size_t distinct = 4096; // inputs cycled through: more than fit a branch history

/// CPU time of this thread: the machine is shared, and wall time also counts the time other
/// processes held the core.
double thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

/// Payment `id` as exactly `size` bytes of JSON, as bench/kafka_load.cpp writes it.
std::string payment_json(std::int64_t id, std::size_t size) {
  const std::int64_t sent_us = 1'796'000'000'000'000 + id * 37;
  payment p{id, id % 1000, 100 + (id * 7919) % 100000, sent_us, {}};
  const auto bare = codec::detail::to_json_line_reference(p).size();
  if (bare > size)
    throw std::runtime_error(fmt::format("payment {} needs {} bytes", id, bare));
  p.memo.assign(size - bare, 'x');
  return codec::detail::to_json_line_reference(p);
}

/// A transaction like the fraud generator's: cents amounts, a merchant and country from small
/// lists, coordinates drifting around a city (full-precision doubles), millisecond times.
fraud::transaction make_transaction(std::uint64_t n) {
  static const char* merchants[] = {"Amazon", "Lidl", "Shell", "Zalando", "IKEA", "Rewe"};
  static const char* countries[] = {"DE", "FR", "NL", "PL"};
  fraud::transaction t;
  t.txn_id = n;
  t.account_id = 1000 + n % 997;
  t.card_id = t.account_id * 10 + n % 2;
  t.amount = static_cast<double>(100 + (n * 7919) % 50000) / 100.0;
  t.merchant = merchants[n % 6];
  t.country = countries[n % 4];
  t.lat = 52.52 + 0.05 * std::sin(static_cast<double>(n) * 0.37);
  t.lon = 13.405 + 0.08 * std::cos(static_cast<double>(n) * 0.21);
  t.timestamp = event_time{std::chrono::milliseconds{1'767'225'600'000 + static_cast<std::int64_t>(n) * 1234}};
  return t;
}

struct impl {
  std::string name;
  std::function<result<payment>(std::string_view)> decode_payment;
  std::function<std::string(const account_total&)> encode_total;
  std::function<result<fraud::transaction>(std::string_view)> decode_txn;
  std::function<std::string(const fraud::transaction&)> encode_txn;
};

template <class T>
T must(result<T> r) {
  if (!r)
    throw std::runtime_error(r.error().to_string());
  return std::move(*r);
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"JSON codec micro-benchmark: simdjson/direct vs nlohmann, per record"};
  std::size_t records = 2'000'000;
  int runs = 5;
  std::string which = "both";
  std::vector<std::string> only;
  app.add_option("--records", records, "records per run and row")->check(CLI::PositiveNumber);
  app.add_option("--runs", runs, "runs per row (median reported)")->check(CLI::PositiveNumber);
  app.add_option("--impl", which, "fast (the codec now), nlohmann (before) or both")
    ->check(CLI::IsMember({"fast", "nlohmann", "both"}));
  app.add_option("--only", only, "rows: payment-decode total-encode pipeline txn-decode txn-encode copy");
  CLI11_PARSE(app, argc, argv);

  std::vector<std::string> payment_lines;
  std::vector<fraud::transaction> txns;
  std::vector<std::string> txn_lines;
  for (std::size_t i = 0; i < distinct; ++i) {
    payment_lines.push_back(payment_json(static_cast<std::int64_t>(i) * 104729, 100));
    txns.push_back(make_transaction(i * 7 + 3));
    txn_lines.push_back(codec::detail::to_json_line_reference(txns.back()));
  }
  std::vector<account_total> totals;
  for (const auto& l : payment_lines) {
    const auto p = must(codec::detail::from_json_line_reference<payment>(l));
    totals.push_back({p.id, p.account, p.cents, p.cents * 3, p.sent_us, p.memo});
  }

  std::vector<impl> impls;
  if (which != "nlohmann")
    impls.push_back({"simdjson+direct", [](std::string_view l) { return codec::from_json_line<payment>(l); },
                     [](const account_total& t) { return codec::to_json_line(t); },
                     [](std::string_view l) { return codec::from_json_line<fraud::transaction>(l); },
                     [](const fraud::transaction& t) { return codec::to_json_line(t); }});
  if (which != "fast")
    impls.push_back({"nlohmann", [](std::string_view l) { return codec::detail::from_json_line_reference<payment>(l); },
                     [](const account_total& t) { return codec::detail::to_json_line_reference(t); },
                     [](std::string_view l) {
                       return codec::detail::from_json_line_reference<fraud::transaction>(l);
                     },
                     [](const fraud::transaction& t) { return codec::detail::to_json_line_reference(t); }});

  // Both paths must agree before they are timed.
  for (std::size_t i = 0; i < distinct; ++i) {
    for (const auto& im : impls) {
      const auto p = must(im.decode_payment(payment_lines[i]));
      const auto t = must(im.decode_txn(txn_lines[i]));
      if (codec::detail::to_json_line_reference(p) != payment_lines[i] || im.encode_txn(t) != txn_lines[i]
          || im.encode_total(totals[i]) != codec::detail::to_json_line_reference(totals[i]))
        throw std::runtime_error(fmt::format("{} does not round-trip record {}", im.name, i));
    }
  }

  std::uint64_t sink = 0; // keeps the work observable
  struct row {
    std::string name;
    std::function<void(const impl&)> body;
  };
  const std::vector<row> rows{
    {"payment-decode",
     [&](const impl& im) {
       for (std::size_t i = 0; i < records; ++i)
         sink += static_cast<std::uint64_t>(must(im.decode_payment(payment_lines[i % distinct])).cents);
     }},
    {"total-encode",
     [&](const impl& im) {
       for (std::size_t i = 0; i < records; ++i)
         sink += im.encode_total(totals[i % distinct]).size();
     }},
    {"pipeline",
     [&](const impl& im) {
       for (std::size_t i = 0; i < records; ++i) {
         auto p = must(im.decode_payment(payment_lines[i % distinct]));
         const account_total t{p.id, p.account, p.cents, p.cents, p.sent_us, std::move(p.memo)};
         sink += im.encode_total(t).size();
       }
     }},
    {"txn-decode",
     [&](const impl& im) {
       for (std::size_t i = 0; i < records; ++i)
         sink += must(im.decode_txn(txn_lines[i % distinct])).card_id;
     }},
    {"txn-encode",
     [&](const impl& im) {
       for (std::size_t i = 0; i < records; ++i)
         sink += im.encode_txn(txns[i % distinct]).size();
     }},
    {"copy",
     [&](const impl&) {
       for (std::size_t i = 0; i < records; ++i) {
         std::string copy{payment_lines[i % distinct]};
         sink += static_cast<unsigned char>(copy[i % copy.size()]);
       }
     }},
  };

  fmt::print("records per run {}, runs {}, payment line {} B, account_total line {} B, txn line {} B\n",
             records, runs, payment_lines[1].size(), codec::to_json_line(totals[1]).size(),
             txn_lines[1].size());
  fmt::print("CPU time of the measuring thread; wall: median wall-clock ns/record\n");
  fmt::print("{:<16} {:<16} {:>12} {:>14} {:>23} {:>10}\n", "row", "impl", "ns/record", "records/s",
             "ns/record min-max", "wall");
  for (const auto& r : rows) {
    if (!only.empty() && std::find(only.begin(), only.end(), r.name) == only.end())
      continue;
    for (const auto& im : impls) {
      if (r.name == "copy" && &im != &impls.front())
        continue; // no codec in it
      std::vector<double> ns;
      std::vector<double> wall;
      for (int k = 0; k < runs; ++k) {
        const auto start = steady::now();
        const double cpu_start = thread_cpu_ns();
        r.body(im);
        ns.push_back((thread_cpu_ns() - cpu_start) / static_cast<double>(records));
        const std::chrono::duration<double, std::nano> took = steady::now() - start;
        wall.push_back(took.count() / static_cast<double>(records));
      }
      const double med = median(ns);
      fmt::print("{:<16} {:<16} {:>12.1f} {:>14.0f} {:>14.1f}-{:<8.1f} {:>10.1f}\n", r.name,
                 r.name == "copy" ? "-" : im.name, med, 1e9 / med,
                 *std::min_element(ns.begin(), ns.end()), *std::max_element(ns.begin(), ns.end()),
                 median(wall));
    }
  }
  fmt::print("(checksum {})\n", sink);
  return 0;
}
