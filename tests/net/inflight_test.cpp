// net/inflight.hpp: bytes sent on a channel to another node and not credited back yet.
// Credits retire the oldest batches first; a new attempt forgets the old one's batches;
// credits of another attempt or for batches never counted change nothing.
#include "sluice/net/inflight.hpp"

#include <boost/test/unit_test.hpp>

using sluice::net::channel_flight;
using sluice::net::inflight_meter;

namespace {

channel_flight of(const inflight_meter& m, std::uint32_t channel) {
  for (const auto& f : m.snapshot())
    if (f.channel == channel)
      return f;
  BOOST_FAIL("channel " << channel << " not in the snapshot");
  return {};
}

} // namespace

BOOST_AUTO_TEST_SUITE(inflight_suite)

BOOST_AUTO_TEST_CASE(credits_retire_the_oldest_batches_first) {
  inflight_meter m;
  BOOST_TEST(m.snapshot().empty());
  m.sent(0, 7, 100);
  m.sent(0, 7, 300);
  m.sent(0, 7, 50);
  m.sent(0, 9, 1000);
  auto f = of(m, 7);
  BOOST_TEST(f.bytes == 450u);
  BOOST_TEST(f.batches == 3u);
  BOOST_TEST(f.largest_batch == 300u);
  m.credited(0, 7, 1); // the 100-byte batch arrived
  BOOST_TEST(of(m, 7).bytes == 350u);
  m.credited(0, 7, 2);
  f = of(m, 7);
  BOOST_TEST(f.bytes == 0u);
  BOOST_TEST(f.batches == 0u);
  BOOST_TEST(f.max_bytes == 450u);
  BOOST_TEST(f.max_batches == 3u);
  BOOST_TEST(f.bytes_sent == 450u);
  BOOST_TEST(f.batches_sent == 3u);
  BOOST_TEST(of(m, 9).bytes == 1000u); // channels are counted apart
  // More credit than batches counted (a window's initial credits are never sent): nothing
  // goes below zero.
  m.credited(0, 9, 5);
  BOOST_TEST(of(m, 9).bytes == 0u);
  m.sent(0, 9, 10);
  BOOST_TEST(of(m, 9).bytes == 10u);
}

BOOST_AUTO_TEST_CASE(a_new_attempt_forgets_the_old_ones_batches) {
  inflight_meter m;
  m.sent(2, 7, 100);
  m.sent(2, 7, 100);
  BOOST_TEST(m.attempt() == 2);
  m.begin_attempt(3); // attempt 2's tasks are gone: their credits never come back
  BOOST_TEST(m.snapshot().empty());
  m.sent(2, 7, 500);     // a stand-in of attempt 2 not stopped yet: not counted
  m.credited(2, 7, 1);   // nor its credits
  BOOST_TEST(m.snapshot().empty());
  m.sent(3, 7, 40);
  m.credited(2, 7, 1);
  BOOST_TEST(of(m, 7).bytes == 40u);
  m.begin_attempt(3); // again (the bridge and a stand-in both begin it): no change
  BOOST_TEST(of(m, 7).bytes == 40u);
  m.sent(5, 7, 8); // a newer attempt's first batch begins it
  BOOST_TEST(m.attempt() == 5);
  BOOST_TEST(of(m, 7).bytes == 8u);
  BOOST_TEST(of(m, 7).max_bytes == 8u);
}

BOOST_AUTO_TEST_CASE(credits_for_a_channel_that_sent_nothing_change_nothing) {
  inflight_meter m;
  m.credited(0, 4, 3);
  m.credited(-1, 4, 3);
  BOOST_TEST(m.snapshot().empty());
  m.sent(0, 4, 10);
  m.credited(0, 4, 0);
  m.credited(0, 4, -2);
  BOOST_TEST(of(m, 4).bytes == 10u);
}

BOOST_AUTO_TEST_SUITE_END()
