#pragma once
/// Batches: the unit in which records move between operators and tasks.
///
/// A batch is a type-erased, reference-counted vector of records. Within a process it is
/// moved, never copied: an operator that holds the only reference may change it in place.
#include <cstddef>
#include <memory>
#include <string>
#include <typeindex>
#include <type_traits>
#include <typeinfo>
#include <vector>

namespace sluice {

/// Describes a record type at run time, so the type-erased graph can check port types.
struct record_type {
  std::type_index id;
  std::string name;

  friend bool operator==(const record_type& a, const record_type& b) noexcept {
    return a.id == b.id;
  }
};

/// Readable name of a C++ type (demangled).
std::string demangle(const std::type_info& info);

/// The `record_type` of `T`.
template <class T>
record_type record_type_of() {
  return record_type{std::type_index(typeid(T)), demangle(typeid(T))};
}

/// The type-erased base of every batch.
class batch_base {
public:
  virtual ~batch_base() = default;
  virtual std::size_t size() const noexcept = 0;
  virtual std::type_index type() const noexcept = 0;
  /// The records' size in memory, estimated for metrics: `sizeof` each record, plus the
  /// characters of string records. Heap parts of other types are not counted.
  virtual std::size_t bytes() const noexcept = 0;
};

/// A batch of records of type `T`.
template <class T>
class batch final : public batch_base {
public:
  batch() = default;
  explicit batch(std::vector<T> records) : records(std::move(records)) {}
  std::size_t size() const noexcept override { return records.size(); }
  std::type_index type() const noexcept override { return typeid(T); }
  std::size_t bytes() const noexcept override {
    std::size_t n = records.size() * sizeof(T);
    if constexpr (std::is_same_v<T, std::string>)
      for (const auto& r : records)
        n += r.size();
    return n;
  }

  std::vector<T> records;
};

/// Shared ownership of a batch. `use_count() == 1` means the holder may mutate it.
using batch_ptr = std::shared_ptr<batch_base>;

/// A new, empty batch of `T` with room for `capacity` records.
template <class T>
std::shared_ptr<batch<T>> make_batch(std::size_t capacity = 0) {
  auto b = std::make_shared<batch<T>>();
  b->records.reserve(capacity);
  return b;
}

/// The records of a batch known to hold `T`. The caller guarantees the type (ports are
/// type-checked when the graph is built).
template <class T>
std::vector<T>& records_of(batch_base& b) noexcept {
  return static_cast<batch<T>&>(b).records;
}

} // namespace sluice
