#include "sluice/samples/nexmark/side_input.hpp"

#include "sluice/core/codec/csv.hpp"

#include <charconv>
#include <fstream>

namespace sluice::nexmark {

std::shared_ptr<const side_table> default_side_input() {
  auto t = std::make_shared<side_table>();
  t->reserve(10'000);
  for (std::int64_t k = 0; k < 10'000; ++k)
    t->emplace(k, std::to_string(k));
  return t;
}

result<std::shared_ptr<const side_table>> read_side_input(const std::filesystem::path& file) {
  std::ifstream in{file};
  if (!in)
    return make_error(error_code::io_error,
                      "nexmark: --side-input: cannot read " + file.string());
  auto t = std::make_shared<side_table>();
  std::string line;
  for (std::size_t n = 1; std::getline(in, line); ++n) {
    const auto where = file.string() + ":" + std::to_string(n);
    if (line.empty() || line == "\r")
      continue;
    auto cells = codec::split_csv_row(line);
    if (!cells)
      return make_error(error_code::malformed_record,
                        "nexmark: side input " + where + ": " + cells.error().message);
    if (cells->size() != 2)
      return make_error(error_code::malformed_record,
                        "nexmark: side input " + where + ": expected two cells (key,value), got " +
                          std::to_string(cells->size()));
    const auto& k = (*cells)[0];
    std::int64_t key = 0;
    const auto [end, ec] = std::from_chars(k.data(), k.data() + k.size(), key);
    if (ec != std::errc{} || end != k.data() + k.size() || k.empty())
      return make_error(error_code::malformed_record,
                        "nexmark: side input " + where + ": the key '" + k +
                          "' is not a 64-bit integer");
    if (!t->emplace(key, std::move((*cells)[1])).second)
      return make_error(error_code::malformed_record,
                        "nexmark: side input " + where + ": key " + k + " is given twice");
  }
  if (in.bad())
    return make_error(error_code::io_error, "nexmark: --side-input: error reading " + file.string());
  return std::shared_ptr<const side_table>{std::move(t)};
}

} // namespace sluice::nexmark
