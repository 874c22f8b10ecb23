#pragma once
/// Flink's fraud-detection walkthrough data: the 50 transactions its tutorial source
/// (`TransactionIterator`) cycles through, one per 100 ms.
#include "sluice/core/error.hpp"
#include "sluice/core/time.hpp"
#include "sluice/samples/fraud_detection/generator.hpp"
#include "sluice/samples/fraud_detection/types.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace sluice::fraud {

/// One row of `data/flink_walkthrough_transactions.csv`.
struct walkthrough_row {
  std::uint64_t account_id = 0;
  double amount = 0;
  sluice::event_time timestamp{};
};

template <class Inspector>
bool inspect(Inspector& f, walkthrough_row& x) {
  return f.object("walkthrough_row")
    .fields(f.field("account_id", x.account_id), f.field("amount", x.amount),
            f.field("timestamp", x.timestamp));
}

/// Reads the CSV (header `account_id,amount,timestamp`). Fails with `io_error` or
/// `malformed_record` naming the file and line.
[[nodiscard]] result<std::vector<walkthrough_row>> load_walkthrough(const std::string& path);

/// Transaction `n` of the endless replay: row `n % rows.size()`, with `txn_id` n, the
/// account as its only card, no merchant or place, and timestamps that keep advancing by
/// the data's step (six minutes) across cycles, as Flink's source does.
transaction walkthrough_transaction(const std::vector<walkthrough_row>& rows, std::uint64_t n);

/// What Flink's walkthrough documents for its rule (small-then-large with the default
/// options, processing time, one record per 100 ms): per 50-record cycle, one alert for
/// account 3, on its 0.80 (row 22) followed by 871.15 (row 27). Covers the cycles whose
/// row 27 lies in `[first, end)`. Empty unless `rows` is that data.
std::vector<expected_alert> walkthrough_ground_truth(const std::vector<walkthrough_row>& rows,
                                                     std::uint64_t first, std::uint64_t end);

} // namespace sluice::fraud
