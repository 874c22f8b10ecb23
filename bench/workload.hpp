#pragma once
/// The shared benchmark workload (see BENCHMARKS.md): record i is {key, value, ts} with
/// h = splitmix64(i), key = (h >> 32) % 1000, value = h & 0xFFFFF, ts = i microseconds.
#include "sluice/sources/generator.hpp"

#include <cstdint>

namespace sluice::bench {

struct record {
  std::uint64_t key;
  std::uint64_t value;
  std::int64_t ts;
};
static_assert(sizeof(record) == 24);

inline record make_record(std::uint64_t i) noexcept {
  const auto h = splitmix64(i);
  return record{(h >> 32) % 1000, h & 0xFFFFF, static_cast<std::int64_t>(i)};
}

inline record scale(const record& r) noexcept { return record{r.key, r.value * 908 / 1000, r.ts}; }
inline bool is_even(const record& r) noexcept { return (r.value & 1) == 0; }

} // namespace sluice::bench
