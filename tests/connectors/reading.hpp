#pragma once
// The record the connector tests send through sources and sinks, readable from JSON, CSV
// and the binary codec by its inspect().
#include "sluice/core/codec/json.hpp"

#include <cstdint>
#include <ostream>
#include <string>

namespace test_records {

struct reading {
  std::int64_t id = 0;
  std::string name;
  double value = 0;

  friend bool operator==(const reading&, const reading&) = default;
  friend bool operator<(const reading& a, const reading& b) { return a.id < b.id; }
  friend std::ostream& operator<<(std::ostream& os, const reading& r) {
    return os << "reading{" << r.id << ", " << r.name << ", " << r.value << "}";
  }
};

template <class Inspector>
bool inspect(Inspector& f, reading& x) {
  return f.object("reading").fields(f.field("id", x.id), f.field("name", x.name),
                                    f.field("value", x.value));
}

/// One reading as a JSON line, fields in declared order (no newline).
inline std::string json_of(const reading& r) { return sluice::codec::to_json_line(r); }

} // namespace test_records
