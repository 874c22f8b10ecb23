// account_totals: running totals per account over a stream of card transactions.
//
// The interim main sample (until samples/fraud_detection lands): a source of transactions,
// keyed by account, a running aggregate per account, printed as it changes; or, with
// --window, event-time tumbling windows per account (watermarks from the transactions'
// timestamps, late records counted).
//
//   account_totals                                 # built-in generator, 5 s
//   account_totals --window 1s                     # per-account totals per second of event time
//   account_totals --source walkthrough            # Flink's walkthrough data, cycling
//   account_totals --source file --input DIR       # JSON lines files
#include "sluice/api/job.hpp"
#include "sluice/api/signals.hpp"
#include "sluice/core/codec/csv.hpp"
#include "sluice/samples/common/cli.hpp"
#include "sluice/samples/common/run.hpp"
#include "sluice/sinks/console.hpp"
#include "sluice/sources/file.hpp"
#include "sluice/sources/generator.hpp"

#include <fmt/core.h>

#include <fstream>
#include <iostream>

using namespace sluice;
using namespace std::chrono_literals;

struct transaction {
  std::int64_t account_id = 0;
  double amount = 0;
  event_time timestamp{};
};

template <class Inspector>
bool inspect(Inspector& f, transaction& x) {
  return f.object("transaction")
    .fields(f.field("account_id", x.account_id), f.field("amount", x.amount),
            f.field("timestamp", x.timestamp));
}

struct account_total {
  std::int64_t account_id = 0;
  std::uint64_t transactions = 0;
  double total = 0;
  double largest = 0;
  event_time last_seen{};
};

template <class Inspector>
bool inspect(Inspector& f, account_total& x) {
  return f.object("account_total")
    .fields(f.field("account_id", x.account_id), f.field("transactions", x.transactions),
            f.field("total", x.total), f.field("largest", x.largest),
            f.field("last_seen", x.last_seen));
}

/// The running aggregate per account.
struct totals {
  account_total create() const { return {}; }
  void add(account_total& acc, const transaction& t) const {
    acc.account_id = t.account_id;
    ++acc.transactions;
    acc.total += t.amount;
    acc.largest = std::max(acc.largest, t.amount);
    acc.last_seen = std::max(acc.last_seen, t.timestamp);
  }
  account_total result(const account_total& acc) const { return acc; }
};

/// Reads the walkthrough CSV the sample ships (account_id,amount,timestamp).
result<std::vector<transaction>> load_walkthrough(const std::string& path) {
  std::ifstream in{path};
  if (!in)
    return make_error(error_code::io_error, "cannot open " + path);
  std::vector<transaction> rows;
  std::string line;
  std::getline(in, line); // header
  for (int n = 2; std::getline(in, line); ++n) {
    if (line.empty())
      continue;
    auto row = codec::from_csv_row<transaction>(line);
    if (!row)
      return make_error(error_code::malformed_record,
                        path + ":" + std::to_string(n) + ": " + row.error().message);
    rows.push_back(*row);
  }
  if (rows.empty())
    return make_error(error_code::malformed_record, path + ": no transactions");
  return rows;
}

int main(int argc, char** argv) {
  CLI::App app{"Running totals per account over a stream of transactions"};
  samples::common_flags common;
  common.duration = "5s";
  std::string source = "generator";
  std::string input;
  std::string walkthrough = SLUICE_SAMPLE_DATA "/flink_walkthrough_transactions.csv";
  double rate = 200;
  int accounts = 20;
  std::uint64_t seed = 42;
  std::string format = "json";
  std::string window = "0";
  std::string out_of_orderness = "1s";
  samples::add_common_flags(app, common);
  app.add_option("--window", window,
                 "event-time tumbling window per account, e.g. 1s, 1m (0: running totals)");
  app.add_option("--out-of-orderness", out_of_orderness,
                 "how late a transaction may arrive and still count, e.g. 1s");
  app.add_option("--source", source, "generator, walkthrough or file")
    ->check(CLI::IsMember({"generator", "walkthrough", "file"}));
  app.add_option("--input", input, "file or directory of JSON lines (--source file)");
  app.add_option("--walkthrough-data", walkthrough, "the walkthrough CSV");
  app.add_option("--rate", rate, "transactions per second (generator)")->check(CLI::PositiveNumber);
  app.add_option("--accounts", accounts, "number of accounts (generator)")->check(CLI::Range(1, 1'000'000));
  app.add_option("--seed", seed, "generator seed");
  app.add_option("--format", format, "console output: json or table")
    ->check(CLI::IsMember({"json", "table"}));
  CLI11_PARSE(app, argc, argv);

  job_options opts;
  opts.name = "account-totals";
  auto duration = samples::apply_common_flags(common, opts);
  if (!duration) {
    std::cerr << "account_totals: " << duration.error().to_string() << "\n";
    return 2;
  }
  auto window_size =
    samples::duration_flag("--window", window, samples::duration_rule::not_negative);
  auto delay = samples::duration_flag("--out-of-orderness", out_of_orderness,
                                      samples::duration_rule::not_negative);
  if (!window_size || !delay) {
    std::cerr << "account_totals: "
              << (window_size ? delay.error() : window_size.error()).to_string() << "\n";
    return 2;
  }
  job j{opts};
  // Event time is the transaction's timestamp; the watermark trails the newest by `delay`.
  const auto strategy = watermarks::bounded_out_of_orderness<transaction>(
    *delay, &transaction::timestamp);

  const auto epoch = event_time{std::chrono::sys_days{std::chrono::year{2019} / 1 / 1}};
  auto transactions = [&]() -> result<stream<transaction>> {
    if (source == "file") {
      if (input.empty())
        return make_error(error_code::invalid_option, "--source file needs --input");
      sources::file_options fo;
      fo.path = input;
      fo.format = sources::file_format::json_lines;
      return j.from(sources::file<transaction>{fo}, strategy);
    }
    if (source == "walkthrough") {
      auto rows = load_walkthrough(walkthrough);
      if (!rows)
        return rows.error();
      // Flink's tutorial source: one record per 100 ms, cycling, timestamps 6 min apart.
      auto data = std::make_shared<const std::vector<transaction>>(std::move(*rows));
      return j.from(sources::generator({.rate = 10.0}, [data, epoch](std::uint64_t n) {
        auto t = (*data)[n % data->size()];
        t.timestamp = epoch + std::chrono::minutes{6} * static_cast<std::int64_t>(n);
        return t;
      }), strategy).parallelism(1);
    }
    const auto step = std::chrono::microseconds{static_cast<std::int64_t>(1e6 / rate)};
    return j.from(sources::generator({.rate = rate}, [=](std::uint64_t n) {
      const auto h = splitmix64(seed ^ n);
      return transaction{static_cast<std::int64_t>(h % static_cast<std::uint64_t>(accounts)) + 1,
                         static_cast<double>((h >> 24) % 100'000) / 100.0,
                         epoch + step * static_cast<std::int64_t>(n)};
    }), strategy);
  }();
  if (!transactions) {
    std::cerr << "account_totals: " << transactions.error().to_string() << "\n";
    return 2;
  }
  const auto console_format =
    format == "table" ? sinks::console_format::table : sinks::console_format::json_lines;
  auto by_account = transactions->name("transactions")
                      .key_by([](const transaction& t) { return t.account_id; }, "account_id");
  if (window_size->count() > 0) {
    by_account
      .window(windows::tumbling{.size = *window_size})
      .sum(&transaction::amount)
      .name("windowed-totals")
      .sink_to(sinks::console<window_result<std::int64_t, double>>{{.format = console_format}})
      .name("console");
  } else {
    by_account.aggregate(totals{})
      .name("account-totals")
      .sink_to(sinks::console<account_total>{{.format = console_format}})
      .name("console");
  }

  auto done = samples::explain_or_run(j, common, *duration, {.program = "account_totals"});
  if (!done)
    return done.exit_code();
  std::uint64_t read = 0, late = 0, behind = 0;
  for (auto& t : done->tasks) {
    if (t.chain_id == 0)
      read += t.records_in;
    late += t.late_records;
    behind += t.records_behind_watermark;
  }
  std::cerr << fmt::format(
    "account_totals: {} after {:.2f} s, {} transactions read, {} too late for their window, "
    "{} behind the watermark on arrival\n",
    done->cancelled ? "stopped" : "finished", std::chrono::duration<double>(done->elapsed).count(),
    read, late, behind);
  return 0;
}
