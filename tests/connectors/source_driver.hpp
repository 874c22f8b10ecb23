#pragma once
/// One source instance opened outside any job and polled by hand, for the connector tests.
#include "sluice/sources/source.hpp"

#include <boost/test/unit_test.hpp>

#include <memory>
#include <string>
#include <vector>

namespace sluice::test {

/// One source instance opened outside any job, polled by hand.
template <class T>
struct source_driver {
  std::unique_ptr<source<T>> src;
  std::vector<T> records;
  std::vector<dead_letter> dead;

  template <class D>
  explicit source_driver(const D& desc, int instance = 0, int parallelism = 1) {
    source_context ctx{"src", instance, parallelism};
    src = desc.create(ctx);
    open_result = src->open(ctx);
  }

  result<poll_result> poll(std::size_t max = 1024) {
    source_output<T> out{records, dead};
    return src->poll(out, max);
  }

  /// Polls until `end`; fails the test on an error, on `idle`, or after too many polls.
  void drain() {
    for (int i = 0; i < 10000; ++i) {
      auto r = poll();
      BOOST_REQUIRE_MESSAGE(r, (r ? std::string{} : r.error().to_string()));
      BOOST_REQUIRE(r->state != poll_result::status::idle);
      if (r->state == poll_result::status::end)
        return;
    }
    BOOST_FAIL("source did not end");
  }

  result<void> open_result;
};


} // namespace sluice::test
