// The non-template halves of the console sink: table rendering and console writes (the
// file sink's are in file_parts.cpp).
#include "sluice/sinks/console.hpp"
#include "sluice/sinks/sink.hpp"

#include <algorithm>

namespace sluice::sinks::detail {

namespace {

bool is_continuation(char c) noexcept { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

/// Characters (UTF-8 code points) in `s`.
std::size_t width(std::string_view s) noexcept {
  return static_cast<std::size_t>(
    std::count_if(s.begin(), s.end(), [](char c) { return !is_continuation(c); }));
}

/// `s` cut to `limit` characters, the last three replaced by `...` (as Spark's show()).
std::string truncated(const std::string& s, std::size_t limit) { return truncate_text(s, limit); }

} // namespace

std::string render_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows, std::size_t truncate) {
  const std::size_t columns = header.size();
  std::vector<std::vector<std::string>> cells;
  cells.reserve(rows.size() + 1);
  cells.push_back(header);
  for (const auto& row : rows) {
    auto& out = cells.emplace_back();
    out.reserve(columns);
    for (std::size_t c = 0; c < columns; ++c)
      out.push_back(c < row.size() ? truncated(row[c], truncate) : std::string{});
  }
  // Spark's minimum column width is 3, so a short header still gets a visible border.
  std::vector<std::size_t> widths(columns, 3);
  for (const auto& row : cells)
    for (std::size_t c = 0; c < columns; ++c)
      widths[c] = std::max(widths[c], width(row[c]));

  std::string border = "+";
  for (auto w : widths)
    border.append(w, '-').push_back('+');
  border.push_back('\n');

  std::string out = border;
  for (std::size_t r = 0; r < cells.size(); ++r) {
    out.push_back('|');
    for (std::size_t c = 0; c < columns; ++c) {
      out.append(widths[c] - width(cells[r][c]), ' ');
      out += cells[r][c];
      out.push_back('|');
    }
    out.push_back('\n');
    if (r == 0)
      out += border;
  }
  out += border;
  return out;
}

result<void> write_console(std::ostream& out, const std::string& text) {
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.flush();
  if (!out)
    return make_error(error_code::io_error, "console sink: writing to the output stream failed");
  return {};
}

} // namespace sluice::sinks::detail
