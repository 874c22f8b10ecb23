#pragma once
/// The records the codec tests encode and decode (one inspect() each, as users write
/// them), and small helpers those tests share, all in `test_records` (which also brings
/// sluice's `event_time` and `error_code`). tests/core/*_codec_test.cpp and
/// time_format_test.cpp are one binary, codec_test.
#include "sluice/core/error.hpp"
#include "sluice/core/time.hpp"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace test_records {

using sluice::error_code;
using sluice::event_time;

struct txn {
  std::int64_t account_id = 0;
  double amount = 0;
  event_time ts{};
  std::string merchant;
  std::optional<int> tag;

  friend bool operator==(const txn&, const txn&) = default;
};

template <class Inspector>
bool inspect(Inspector& f, txn& x) {
  return f.object("txn").fields(f.field("account_id", x.account_id), f.field("amount", x.amount),
                                f.field("ts", x.ts), f.field("merchant", x.merchant),
                                f.field("tag", x.tag));
}

struct point {
  std::int32_t x = 0;
  std::int32_t y = 0;
  friend bool operator==(const point&, const point&) = default;
};

template <class Inspector>
bool inspect(Inspector& f, point& p) {
  return f.object("point").fields(f.field("x", p.x), f.field("y", p.y));
}

struct flat_shape {
  std::string name;
  point origin;
  std::optional<double> weight;
  friend bool operator==(const flat_shape&, const flat_shape&) = default;
};

template <class Inspector>
bool inspect(Inspector& f, flat_shape& s) {
  return f.object("flat_shape").fields(f.field("name", s.name), f.field("origin", s.origin),
                                       f.field("weight", s.weight));
}

struct shape {
  std::string name;
  point origin;
  std::vector<point> vertices;
  std::vector<std::string> labels;
  std::optional<point> anchor;
  std::vector<bool> flags;
  friend bool operator==(const shape&, const shape&) = default;
};

template <class Inspector>
bool inspect(Inspector& f, shape& s) {
  return f.object("shape").fields(f.field("name", s.name), f.field("origin", s.origin),
                                  f.field("vertices", s.vertices), f.field("labels", s.labels),
                                  f.field("anchor", s.anchor), f.field("flags", s.flags));
}

struct tagged {
  std::int64_t id = 0;
  std::vector<std::string> tags;
  std::vector<point> path;
  friend bool operator==(const tagged&, const tagged&) = default;
};

template <class Inspector>
bool inspect(Inspector& f, tagged& x) {
  return f.object("tagged").fields(f.field("id", x.id), f.field("tags", x.tags),
                                   f.field("path", x.path));
}

struct ints {
  std::int8_t i8 = 0;
  std::uint8_t u8 = 0;
  std::int16_t i16 = 0;
  std::uint16_t u16 = 0;
  std::int32_t i32 = 0;
  std::uint32_t u32 = 0;
  std::int64_t i64 = 0;
  std::uint64_t u64 = 0;
  bool b = false;
  float f = 0;
  friend bool operator==(const ints&, const ints&) = default;
};

template <class Inspector>
bool inspect(Inspector& f, ints& x) {
  return f.object("ints").fields(f.field("i8", x.i8), f.field("u8", x.u8), f.field("i16", x.i16),
                                 f.field("u16", x.u16), f.field("i32", x.i32),
                                 f.field("u32", x.u32), f.field("i64", x.i64),
                                 f.field("u64", x.u64), f.field("b", x.b), f.field("f", x.f));
}

struct small {
  std::uint8_t level = 0;
  std::int16_t delta = 0;
  friend bool operator==(const small&, const small&) = default;
};

template <class Inspector>
bool inspect(Inspector& f, small& x) {
  return f.object("small").fields(f.field("level", x.level), f.field("delta", x.delta));
}

inline event_time at(std::int64_t micros) {
  return event_time{std::chrono::microseconds{micros}};
}

// 2026-01-01T12:07:00Z
inline const event_time t0 = at(1'767'269'220'000'000);

inline txn sample_txn() {
  return txn{.account_id = 42, .amount = 12.5, .ts = t0, .merchant = "acme, \"inc\"", .tag = 7};
}

inline bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

} // namespace test_records
