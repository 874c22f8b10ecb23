// Batches hand their emptied record vectors back to the thread that frees them, and the
// next batch made on that thread takes one: the records are gone, the storage stays, and
// what is kept is bounded.
#define BOOST_TEST_MODULE batch_test
#include <boost/test/unit_test.hpp>

#include "sluice/core/batch.hpp"

#include <cstddef>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace sluice;

namespace {

/// Counts live instances, to see that a recycled vector's records were destroyed.
struct counted {
  static inline int live = 0;
  counted() { ++live; }
  counted(const counted&) { ++live; }
  counted(counted&&) noexcept { ++live; }
  counted& operator=(const counted&) = default;
  counted& operator=(counted&&) noexcept = default;
  ~counted() { --live; }
};

/// A record type used by one test only, so that the pools of other tests do not interfere.
template <int N>
struct tagged {
  std::int64_t v = 0;
};

} // namespace

BOOST_AUTO_TEST_SUITE(batch_pool)

BOOST_AUTO_TEST_CASE(a_freed_batch_lends_its_storage_to_the_next_batch_of_this_thread) {
  auto first = make_batch<std::string>(64);
  first->records.assign(10, std::string(100, 'x'));
  const auto* storage = first->records.data();
  first.reset();

  auto next = make_batch<std::string>(16);
  BOOST_TEST(next->records.empty());
  BOOST_TEST(next->records.data() == storage);
  BOOST_TEST(next->records.capacity() >= 64u);
}

BOOST_AUTO_TEST_CASE(the_records_of_a_recycled_batch_are_destroyed_when_it_is_freed) {
  auto b = make_batch<counted>(8);
  b->records.resize(5);
  BOOST_TEST(counted::live == 5);
  b.reset();
  BOOST_TEST(counted::live == 0);
  auto again = make_batch<counted>(8);
  BOOST_TEST(again->records.empty());
  BOOST_TEST(counted::live == 0);
}

BOOST_AUTO_TEST_CASE(a_thread_keeps_a_bounded_number_of_vectors) {
  using T = tagged<1>;
  constexpr auto kept = detail::vector_pool<T>::max_kept;
  std::vector<std::shared_ptr<batch<T>>> batches;
  for (std::size_t i = 0; i < kept + 3; ++i)
    batches.push_back(make_batch<T>(32));
  batches.clear();

  // Asked for no room, a batch has some only when it got a kept vector (addresses would
  // not tell: malloc may hand the freed ones out again).
  std::size_t reused = 0;
  for (std::size_t i = 0; i < kept + 3; ++i) {
    batches.push_back(make_batch<T>());
    reused += batches.back()->records.capacity() >= 32 ? 1 : 0;
  }
  BOOST_TEST(reused == kept);
}

BOOST_AUTO_TEST_CASE(a_vector_over_the_size_limit_is_freed_not_kept) {
  using T = tagged<2>;
  constexpr auto limit = detail::vector_pool<T>::max_bytes / sizeof(T);
  auto big = make_batch<T>(limit + 1);
  big.reset();
  auto next = make_batch<T>();
  BOOST_TEST(next->records.capacity() == 0u);

  auto small = make_batch<T>(limit);
  const auto* storage = small->records.data();
  small.reset();
  BOOST_TEST(make_batch<T>()->records.data() == storage);
}

BOOST_AUTO_TEST_CASE(a_batch_freed_on_another_thread_stays_with_that_thread) {
  using T = tagged<3>;
  auto b = make_batch<T>(32);
  const auto* storage = b->records.data();
  bool reused_there = false; // Boost.Test's assertions belong on the test's own thread
  std::thread([moved = std::move(b), storage, &reused_there]() mutable {
    moved.reset();
    reused_there = make_batch<T>()->records.data() == storage;
  }).join();
  BOOST_TEST(reused_there);
  BOOST_TEST(make_batch<T>()->records.capacity() == 0u);
}

// A batch still held by a thread_local that outlives the thread's pool is freed after the
// pool is gone (thread_locals are destroyed in reverse order of construction). It must
// then be freed, not handed to the destroyed pool: AddressSanitizer's builds see the
// difference.
BOOST_AUTO_TEST_CASE(a_batch_freed_after_its_threads_pool_is_destroyed_is_just_freed) {
  using T = tagged<4>;
  std::thread([] {
    thread_local std::shared_ptr<batch<T>> held; // constructed before the pool
    held = make_batch<T>(32);                    // constructs the pool
    held->records.resize(3);
  }).join();
  BOOST_TEST(make_batch<T>()->records.capacity() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
