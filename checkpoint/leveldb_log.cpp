#include "sluice/checkpoint/leveldb_log.hpp"

#include "sluice/core/log.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <system_error>
#include <utility>

namespace sluice {

std::optional<torn_log> find_torn_tail(const std::filesystem::path& path) {
  constexpr std::uint64_t block_size = 32768, header = 7;
  constexpr unsigned char full = 1, first = 2, middle = 3, last = 4;
  std::error_code ec;
  const std::uint64_t size = std::filesystem::file_size(path, ec);
  if (ec)
    return std::nullopt; // LevelDB reports a log it cannot read
  std::ifstream in{path, std::ios::binary};
  std::string block(block_size, '\0');
  constexpr std::uint64_t none = ~std::uint64_t{0};
  std::uint64_t fragment_start = none; // of a record whose last fragment is missing
  auto torn_from = [&](std::uint64_t from) {
    return torn_log{path.filename().string(), size - (fragment_start != none ? fragment_start : from)};
  };
  // Records never cross a block: each block is read and walked on its own.
  for (std::uint64_t base = 0; base < size; base += block_size) {
    const auto n = std::min(block_size, size - base);
    if (!in.read(block.data(), static_cast<std::streamsize>(n)))
      return std::nullopt;
    const bool last_block = base + n == size;
    std::uint64_t at = 0;
    while (at < n) {
      const auto left = n - at;
      if (block_size - at < header) // the block's trailer: zeros
        break;
      if (left < header) { // only in the last block: a header cut short, unless zeros
        if (block.find_first_not_of('\0', at) >= n && fragment_start == none)
          return std::nullopt;
        return torn_from(base + at);
      }
      const auto u8 = [&](std::uint64_t i) { return static_cast<unsigned char>(block[at + i]); };
      const std::uint64_t length = u8(4) | (std::uint64_t{u8(5)} << 8);
      const auto type = u8(6);
      if (type == 0 && length == 0) // preallocated zeros: the rest of the block is empty
        break;
      if (header + length > left) {
        if (last_block && n < block_size) // cut by the end of the file
          return torn_from(base + at);
        return std::nullopt; // corrupt in the middle: LevelDB reports it, paranoid fails
      }
      if (type == first)
        fragment_start = base + at;
      else if (type == full || type == last)
        fragment_start = none;
      else if (type != middle)
        return std::nullopt; // an unknown type: LevelDB reports it
      at += header + length;
    }
  }
  if (fragment_start != none)
    return torn_from(fragment_start);
  return std::nullopt;
}

void capturing_logger::Logv(const char* format, std::va_list ap) {
  char buf[1024];
  std::vsnprintf(buf, sizeof buf, format, ap);
  logging::get().debug("leveldb: {}", buf);
  std::lock_guard guard{mtx_};
  if (capturing_)
    lines_.emplace_back(buf);
}

std::vector<std::string> capturing_logger::take() {
  std::lock_guard guard{mtx_};
  capturing_ = false;
  return std::exchange(lines_, {});
}

bool tells_of_loss(const std::string& line) {
  for (auto word : {"drop", "ignor", "orrupt", "rror", "unparsable", "lost"})
    if (line.find(word) != std::string::npos)
      return true;
  return false;
}

} // namespace sluice
