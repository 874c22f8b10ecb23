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

namespace detail {

/// Emptied record vectors of `T` that this thread keeps for its next batches. Without it,
/// every batch allocated and freed a vector of a few hundred KiB, and glibc merges all its
/// freed small blocks (`malloc_consolidate`) before serving a request that large: 7% of
/// Nexmark q0's CPU (BENCHMARKS.md). Bounded: a few vectors per type and thread, none over
/// `max_bytes` (at most 1 MiB per record type and thread).
template <class T>
class vector_pool {
public:
  static constexpr std::size_t max_kept = 4;
  static constexpr std::size_t max_bytes = std::size_t{256} << 10; // a batch of 1024 Nexmark events: 216 KiB

  static void give(std::vector<T>& v) noexcept {
    const auto bytes = v.capacity() * sizeof(T);
    if (bytes == 0 || bytes > max_bytes || gone_)
      return;
    auto& kept = instance().kept_;
    if (kept.size() == max_kept)
      return;
    v.clear();
    kept.push_back(std::move(v)); // never allocates: reserved in the constructor
  }

  static std::vector<T> take() noexcept {
    if (gone_)
      return {};
    auto& kept = instance().kept_;
    if (kept.empty())
      return {};
    auto v = std::move(kept.back());
    kept.pop_back();
    return v;
  }

private:
  vector_pool() { kept_.reserve(max_kept); }
  ~vector_pool() { gone_ = true; }
  static vector_pool& instance() noexcept {
    thread_local vector_pool pool;
    return pool;
  }

  // Batches may still be freed on this thread after its pool is destroyed (at thread exit).
  static inline thread_local bool gone_ = false;
  std::vector<std::vector<T>> kept_;
};

} // namespace detail

/// A batch of records of type `T`.
template <class T>
class batch final : public batch_base {
public:
  batch() = default;
  explicit batch(std::vector<T> records) : records(std::move(records)) {}
  batch(const batch&) = delete;
  batch& operator=(const batch&) = delete;
  ~batch() override { detail::vector_pool<T>::give(records); }
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

/// A new, empty batch of `T` with room for `capacity` records (in a vector this thread
/// freed before, when it kept one).
template <class T>
std::shared_ptr<batch<T>> make_batch(std::size_t capacity = 0) {
  auto b = std::make_shared<batch<T>>(detail::vector_pool<T>::take());
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
