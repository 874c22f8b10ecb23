// The Nexmark generator (samples/nexmark/generator.hpp) against the events that
// reference/NexmarkReference.java prints with the JDK's java.util.Random, field by field.
#include "sluice/samples/nexmark/generator.hpp"

#include <boost/test/unit_test.hpp>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace sluice::nexmark;

namespace {

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in{line};
  while (std::getline(in, field, '\t'))
    out.push_back(field);
  if (!line.empty() && line.back() == '\t')
    out.emplace_back(); // an empty last field (an empty extra)
  return out;
}

generator_config unbounded() {
  generator_config c;
  c.max_events = std::int64_t{1} << 40;
  return c;
}

} // namespace

BOOST_AUTO_TEST_SUITE(nexmark_generator)

BOOST_AUTO_TEST_CASE(java_random_matches_the_jdk) {
  // new Random(42): nextInt() = -1170105035, nextInt(10) = 3 (the first draws every Java
  // programmer has seen), nextDouble and nextLong from the JDK 17 as well.
  java_random r{42};
  BOOST_TEST(r.next_int() == -1170105035);
  java_random s{42};
  BOOST_TEST(s.next_int(10) == 0);
  BOOST_TEST(s.next_int(16) == 0); // the power-of-two path
  java_random t{42};
  BOOST_TEST(t.next_long() == -5025562857975149833LL);
  java_random u{42};
  BOOST_TEST(u.next_double() == 0.7275636800328681);
}

BOOST_AUTO_TEST_CASE(events_match_the_reference_program_field_by_field) {
  std::ifstream in{SLUICE_NEXMARK_REFERENCE};
  BOOST_TEST_REQUIRE(in.good(), "cannot read " SLUICE_NEXMARK_REFERENCE);
  const auto config = unbounded();
  std::string line;
  int compared = 0;
  int persons = 0, auctions = 0, bids = 0;
  while (std::getline(in, line)) {
    const auto f = split_tabs(line);
    BOOST_TEST_REQUIRE(f.size() >= 2u, line);
    const auto count = std::stoll(f[0]);
    BOOST_TEST_CONTEXT("event " << count) {
      const auto e = make_event(config, count);
      if (f[1] == "P") {
        BOOST_TEST_REQUIRE(f.size() == 10u);
        const auto* p = e.as_person();
        BOOST_TEST_REQUIRE(p != nullptr);
        BOOST_TEST(p->id == std::stoll(f[2]));
        BOOST_TEST(p->name == f[3]);
        BOOST_TEST(p->email_address == f[4]);
        BOOST_TEST(p->credit_card == f[5]);
        BOOST_TEST(p->city == f[6]);
        BOOST_TEST(p->state == f[7]);
        BOOST_TEST(p->date_time == std::stoll(f[8]));
        BOOST_TEST(p->extra == f[9]);
        ++persons;
      } else if (f[1] == "A") {
        BOOST_TEST_REQUIRE(f.size() == 12u);
        const auto* a = e.as_auction();
        BOOST_TEST_REQUIRE(a != nullptr);
        BOOST_TEST(a->id == std::stoll(f[2]));
        BOOST_TEST(a->item_name == f[3]);
        BOOST_TEST(a->description == f[4]);
        BOOST_TEST(a->initial_bid == std::stoll(f[5]));
        BOOST_TEST(a->reserve == std::stoll(f[6]));
        BOOST_TEST(a->date_time == std::stoll(f[7]));
        BOOST_TEST(a->expires == std::stoll(f[8]));
        BOOST_TEST(a->seller == std::stoll(f[9]));
        BOOST_TEST(a->category == std::stoll(f[10]));
        BOOST_TEST(a->extra == f[11]);
        ++auctions;
      } else {
        BOOST_TEST_REQUIRE(f[1] == "B");
        BOOST_TEST_REQUIRE(f.size() == 7u);
        const auto* b = e.as_bid();
        BOOST_TEST_REQUIRE(b != nullptr);
        BOOST_TEST(b->auction == std::stoll(f[2]));
        BOOST_TEST(b->bidder == std::stoll(f[3]));
        BOOST_TEST(b->price == std::stoll(f[4]));
        BOOST_TEST(b->date_time == std::stoll(f[5]));
        BOOST_TEST(b->extra == f[6]);
        ++bids;
      }
    }
    ++compared;
  }
  BOOST_TEST(compared == 215);
  BOOST_TEST(persons > 0);
  BOOST_TEST(auctions > 0);
  BOOST_TEST(bids > 0);
}

BOOST_AUTO_TEST_CASE(the_mix_is_two_six_and_ninety_two_percent) {
  generator_config c;
  c.max_events = 5000;
  generator g{c};
  int persons = 0, auctions = 0, bids = 0;
  std::int64_t last_time = 0;
  while (g.has_next()) {
    const auto e = g.next();
    BOOST_TEST(e.event_timestamp >= last_time);
    BOOST_TEST(e.watermark <= e.event_timestamp);
    last_time = e.event_timestamp;
    persons += e.value.as_person() != nullptr;
    auctions += e.value.as_auction() != nullptr;
    bids += e.value.as_bid() != nullptr;
  }
  BOOST_TEST(persons == 100);
  BOOST_TEST(auctions == 300);
  BOOST_TEST(bids == 4600);
  // 10 000 events/s: event 4999 is 499.9 ms after the base time.
  BOOST_TEST(last_time == c.base_time_ms + 499);
}

BOOST_AUTO_TEST_CASE(any_split_yields_the_same_events) {
  generator_config c;
  c.max_events = 1003;
  std::vector<event> whole;
  for (generator g{c}; g.has_next();)
    whole.push_back(g.next().value);
  for (std::int64_t n : {1, 2, 3, 7, 1003, 2000}) {
    BOOST_TEST_CONTEXT("split into " << n) {
      const auto parts = c.split(n);
      BOOST_TEST(static_cast<std::int64_t>(parts.size()) == std::max<std::int64_t>(n, 1));
      std::vector<event> joined;
      for (const auto& part : parts)
        for (generator g{part}; g.has_next();)
          joined.push_back(g.next().value);
      BOOST_TEST_REQUIRE(joined.size() == whole.size());
      BOOST_TEST((joined == whole));
    }
  }
}

BOOST_AUTO_TEST_CASE(a_resumed_generator_continues_where_it_stopped) {
  generator_config c;
  c.max_events = 300;
  generator a{c};
  for (int i = 0; i < 120; ++i)
    a.next();
  generator b{c, a.events_so_far()};
  while (a.has_next()) {
    BOOST_TEST_REQUIRE(b.has_next());
    BOOST_TEST((a.next().value == b.next().value));
  }
  BOOST_TEST(!b.has_next());
}

BOOST_AUTO_TEST_CASE(bad_configurations_are_named) {
  generator_config c;
  c.events_per_second = 0;
  BOOST_TEST(c.validate().find("event rate") != std::string::npos);
  c = {};
  c.max_events = -1;
  BOOST_TEST(c.validate().find("negative") != std::string::npos);
  c = {};
  c.max_events = std::int64_t{1} << 60;
  BOOST_TEST(c.validate().find("too many events") != std::string::npos);
  BOOST_TEST(generator_config{}.validate().empty());
}

BOOST_AUTO_TEST_SUITE_END()
