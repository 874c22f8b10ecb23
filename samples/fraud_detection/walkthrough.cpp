#include "sluice/samples/fraud_detection/walkthrough.hpp"

#include "sluice/core/codec/csv.hpp"

#include <fstream>

namespace sluice::fraud {

result<std::vector<walkthrough_row>> load_walkthrough(const std::string& path) {
  std::ifstream in{path};
  if (!in)
    return make_error(error_code::io_error, "cannot open " + path);
  std::vector<walkthrough_row> rows;
  std::string line;
  std::getline(in, line); // header
  for (int n = 2; std::getline(in, line); ++n) {
    if (line.empty())
      continue;
    auto row = codec::from_csv_row<walkthrough_row>(line);
    if (!row)
      return make_error(error_code::malformed_record,
                        path + ":" + std::to_string(n) + ": " + row.error().message);
    rows.push_back(*row);
  }
  if (rows.size() < 2)
    return make_error(error_code::malformed_record, path + ": fewer than two transactions");
  return rows;
}

transaction walkthrough_transaction(const std::vector<walkthrough_row>& rows, std::uint64_t n) {
  const auto& r = rows[n % rows.size()];
  const auto step = rows[1].timestamp - rows[0].timestamp;
  transaction t;
  t.txn_id = n;
  t.account_id = r.account_id;
  t.card_id = r.account_id;
  t.amount = r.amount;
  t.timestamp = rows[0].timestamp + step * static_cast<std::int64_t>(n);
  return t;
}

std::vector<expected_alert> walkthrough_ground_truth(const std::vector<walkthrough_row>& rows,
                                                     std::uint64_t first, std::uint64_t end) {
  constexpr std::uint64_t small_row = 22, large_row = 27;
  std::vector<expected_alert> out;
  const bool flink_data = rows.size() == 50 && rows[small_row].account_id == 3 &&
                          rows[small_row].amount == 0.8 && rows[large_row].account_id == 3 &&
                          rows[large_row].amount == 871.15;
  if (!flink_data)
    return out;
  for (std::uint64_t cycle = first / rows.size();; ++cycle) {
    const auto large = cycle * rows.size() + large_row;
    if (large >= end)
      break;
    if (large >= first)
      out.push_back({rule_kind::small_then_large, {cycle * rows.size() + small_row, large}});
  }
  return out;
}

} // namespace sluice::fraud
