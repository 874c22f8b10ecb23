#define BOOST_TEST_MODULE channels_test
// The channel protocol (channels/), driven directly: no actors, no sockets. A recording
// transport stands for the other tasks.
#include <boost/test/unit_test.hpp>

#include "sluice/channels/input_gate.hpp"
#include "sluice/channels/output_gate.hpp"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

using namespace sluice;

namespace {

/// Remembers what the gates sent, as text: "0/1 data 3" (edge 0, target 1, 3 records),
/// "0/0 wm 42", "0/0 barrier 7 cp", "0/0 end", "grant 2 1" (channel 2, one credit).
struct recording_transport final : channel_transport {
  std::vector<std::string> log;
  void deliver(int edge, int target, channel_item item) override {
    auto at = std::to_string(edge) + "/" + std::to_string(target) + " ";
    switch (item.what) {
      case channel_item::kind::data:
        log.push_back(at + "data " + std::to_string(item.records->size()));
        break;
      case channel_item::kind::watermark:
        log.push_back(at + "wm " + std::to_string(item.watermark.time_since_epoch().count()));
        break;
      case channel_item::kind::idle: log.push_back(at + "idle"); break;
      case channel_item::kind::active: log.push_back(at + "active"); break;
      case channel_item::kind::barrier:
        log.push_back(at + "barrier " + std::to_string(item.epoch) +
                      (item.checkpoint ? " cp" : ""));
        break;
      case channel_item::kind::end: log.push_back(at + "end"); break;
    }
  }
  void grant(int channel, int n) override {
    log.push_back("grant " + std::to_string(channel) + " " + std::to_string(n));
  }
  std::vector<std::string> take() { return std::exchange(log, {}); }
};

batch_ptr records(int n) {
  auto b = std::make_shared<batch<int>>();
  for (int i = 0; i < n; ++i)
    b->records.push_back(i);
  return b;
}

event_time at(std::int64_t us) { return event_time{duration{us}}; }

/// Takes every step the gate offers, consuming data at once; describes each step.
std::vector<std::string> drain(input_gate& g) {
  std::vector<std::string> out;
  while (auto ev = g.next()) {
    switch (ev->what) {
      case gate_event::kind::data:
        out.push_back("data " + std::to_string(ev->channel) + " " +
                      std::to_string(ev->records->size()));
        g.consumed(ev->channel);
        break;
      case gate_event::kind::changed: out.push_back("changed " + std::to_string(ev->channel)); break;
      case gate_event::kind::blocked:
        out.push_back("blocked " + std::to_string(ev->channel) + " " + std::to_string(ev->epoch));
        break;
      case gate_event::kind::aligned:
        out.push_back("aligned " + std::to_string(ev->epoch) + (ev->checkpoint ? " cp" : ""));
        break;
    }
  }
  return out;
}

using lines = std::vector<std::string>;

} // namespace

BOOST_AUTO_TEST_SUITE(input_gate_suite)

BOOST_AUTO_TEST_CASE(barriers_on_several_inputs_align_and_release_held_input_in_order) {
  recording_transport t;
  input_gate g{3, t};
  BOOST_REQUIRE(g.push(0, channel_item::data_of(records(1))));
  BOOST_REQUIRE(g.push(0, channel_item::barrier_of(5, true)));
  BOOST_REQUIRE(g.push(0, channel_item::data_of(records(2)))); // after the barrier: held
  BOOST_REQUIRE(g.push(1, channel_item::barrier_of(5, true)));
  BOOST_REQUIRE(g.push(1, channel_item::data_of(records(3)))); // held
  BOOST_REQUIRE(g.push(2, channel_item::data_of(records(4)))); // before channel 2's barrier
  BOOST_REQUIRE(g.push(0, channel_item::data_of(records(5)))); // held behind records(2)
  BOOST_TEST(drain(g) == (lines{"data 0 1", "blocked 0 5", "blocked 1 5", "data 2 4"}),
             boost::test_tools::per_element());
  BOOST_TEST(g.held() == 3u);
  BOOST_TEST(g.aligning().value() == 5);
  BOOST_REQUIRE(g.push(2, channel_item::barrier_of(5, true)));
  // Held input comes right after the alignment, channel by channel, each in its own order.
  BOOST_TEST(drain(g) == (lines{"blocked 2 5", "aligned 5 cp", "data 0 2", "data 0 5", "data 1 3"}),
             boost::test_tools::per_element());
  BOOST_TEST(g.held() == 0u);
  BOOST_TEST(!g.aligning());
}

BOOST_AUTO_TEST_CASE(held_records_keep_their_credit_until_consumed) {
  recording_transport t;
  input_gate g{2, t};
  BOOST_REQUIRE(g.push(0, channel_item::barrier_of(1, false)));
  BOOST_REQUIRE(g.push(0, channel_item::data_of(records(1))));
  BOOST_REQUIRE(g.push(0, channel_item::data_of(records(1))));
  drain(g);
  BOOST_TEST(t.take().empty()); // held: no credit goes back
  BOOST_REQUIRE(g.push(1, channel_item::barrier_of(1, false)));
  drain(g);
  BOOST_TEST(t.take() == (lines{"grant 0 1", "grant 0 1"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(the_task_decides_when_credit_returns) {
  recording_transport t;
  input_gate g{1, t};
  BOOST_REQUIRE(g.push(0, channel_item::data_of(records(7))));
  auto ev = g.next();
  BOOST_REQUIRE(ev);
  BOOST_TEST(t.log.empty()); // handed out, not yet consumed
  g.consumed(0);
  BOOST_TEST(t.take() == (lines{"grant 0 1"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(end_of_input_during_alignment_completes_it) {
  recording_transport t;
  input_gate g{2, t};
  BOOST_REQUIRE(g.push(0, channel_item::barrier_of(3, true)));
  BOOST_REQUIRE(g.push(0, channel_item::data_of(records(1))));
  BOOST_REQUIRE(g.push(1, channel_item::data_of(records(2))));
  BOOST_REQUIRE(g.push(1, channel_item::end_of_input()));
  BOOST_TEST(drain(g) == (lines{"blocked 0 3", "data 1 2", "changed 1", "aligned 3 cp", "data 0 1"}),
             boost::test_tools::per_element());
  BOOST_TEST(g.open() == 1u);
}

BOOST_AUTO_TEST_CASE(an_ended_channel_takes_no_part_in_later_alignments) {
  recording_transport t;
  input_gate g{2, t};
  BOOST_REQUIRE(g.push(1, channel_item::end_of_input()));
  BOOST_REQUIRE(g.push(0, channel_item::barrier_of(4, false)));
  BOOST_TEST(drain(g) == (lines{"changed 1", "blocked 0 4", "aligned 4"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(take_aligned_ends_the_epoch_without_taking_more_input) {
  recording_transport t;
  input_gate g{2, t};
  BOOST_REQUIRE(g.push(0, channel_item::barrier_of(2, false)));
  BOOST_REQUIRE(g.push(1, channel_item::barrier_of(2, false)));
  BOOST_REQUIRE(g.push(1, channel_item::data_of(records(1))));
  BOOST_TEST(!g.take_aligned()); // nothing delivered yet
  BOOST_TEST((g.next()->what == gate_event::kind::blocked));
  BOOST_TEST((g.next()->what == gate_event::kind::blocked));
  auto aligned = g.take_aligned();
  BOOST_REQUIRE(aligned);
  BOOST_TEST(aligned->epoch == 2);
  BOOST_TEST(g.queued() == 1u); // the data after the barrier waits for the next step
}

BOOST_AUTO_TEST_CASE(the_watermark_is_the_minimum_over_live_active_channels) {
  recording_transport t;
  input_gate g{3, t};
  auto view = g.watermark();
  BOOST_TEST(view.live);
  BOOST_TEST((view.low.value() == min_watermark));
  BOOST_REQUIRE(g.push(0, channel_item::watermark_of(at(10))));
  BOOST_REQUIRE(g.push(1, channel_item::watermark_of(at(20))));
  BOOST_REQUIRE(g.push(2, channel_item::watermark_of(at(30))));
  drain(g);
  BOOST_TEST((g.watermark().low.value() == at(10)));
  // A watermark never goes back on its channel.
  BOOST_REQUIRE(g.push(0, channel_item::watermark_of(at(5))));
  drain(g);
  BOOST_TEST((g.watermark().low.value() == at(10)));
  // An ended channel no longer holds the others back.
  BOOST_REQUIRE(g.push(0, channel_item::end_of_input()));
  drain(g);
  BOOST_TEST((g.watermark().low.value() == at(20)));
  BOOST_REQUIRE(g.push(1, channel_item::end_of_input()));
  BOOST_REQUIRE(g.push(2, channel_item::end_of_input()));
  drain(g);
  BOOST_TEST(!g.watermark().live);
}

BOOST_AUTO_TEST_CASE(idle_channels_do_not_hold_the_watermark_back_and_data_reactivates_them) {
  recording_transport t;
  input_gate g{2, t};
  BOOST_REQUIRE(g.push(0, channel_item::watermark_of(at(10))));
  BOOST_REQUIRE(g.push(1, channel_item::watermark_of(at(50))));
  BOOST_REQUIRE(g.push(0, channel_item::idle_mark(true)));
  drain(g);
  auto v = g.watermark();
  BOOST_TEST((v.low.value() == at(50)));
  BOOST_TEST(v.idle == 1u);
  BOOST_REQUIRE(g.push(1, channel_item::idle_mark(true)));
  drain(g);
  BOOST_TEST(!g.watermark().low); // every live channel idle
  BOOST_TEST(g.watermark().idle == 2u);
  // Data on an idle channel brings it back even without an "active" mark.
  BOOST_REQUIRE(g.push(0, channel_item::data_of(records(1))));
  auto ev = g.next();
  BOOST_REQUIRE(ev);
  BOOST_TEST(ev->reactivated);
  BOOST_TEST((ev->channel_watermark == at(10)));
  BOOST_TEST((g.watermark().low.value() == at(10)));
  // A watermark also ends an idle spell; an "active" mark too.
  BOOST_REQUIRE(g.push(1, channel_item::watermark_of(at(60))));
  drain(g);
  BOOST_TEST(g.watermark().idle == 0u);
}

BOOST_AUTO_TEST_CASE(end_of_time_needs_every_channel_at_the_max_watermark) {
  recording_transport t;
  input_gate g{2, t};
  BOOST_REQUIRE(g.push(0, channel_item::watermark_of(max_watermark)));
  drain(g);
  BOOST_TEST(!g.at_end_of_time());
  BOOST_REQUIRE(g.push(1, channel_item::watermark_of(max_watermark)));
  drain(g);
  BOOST_TEST(g.at_end_of_time());
}

BOOST_AUTO_TEST_CASE(an_unknown_channel_is_refused) {
  recording_transport t;
  input_gate g{2, t};
  BOOST_TEST(!g.push(2, channel_item::data_of(records(1))));
  BOOST_TEST(!g.push(-1, channel_item::end_of_input()));
  BOOST_TEST(g.queued() == 0u);
}

BOOST_AUTO_TEST_CASE(queue_depth_goes_to_the_metrics) {
  recording_transport t;
  task_metrics m;
  input_gate g{1, t, &m};
  BOOST_REQUIRE(g.push(0, channel_item::data_of(records(1))));
  BOOST_REQUIRE(g.push(0, channel_item::data_of(records(1))));
  BOOST_TEST(m.input_queue.load() == 2u);
  drain(g);
  BOOST_TEST(m.input_queue.load() == 0u);
  BOOST_TEST(m.max_input_queue.load() == 2u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(output_gate_suite)

BOOST_AUTO_TEST_CASE(batches_go_out_while_credit_lasts_then_wait) {
  recording_transport t;
  task_metrics m;
  output_gate g{{1}, 2, t, &m};
  BOOST_TEST(!g.send(0, 0, records(1)));
  BOOST_TEST(!g.send(0, 0, records(2)));
  BOOST_TEST(g.send(0, 0, records(3))); // no credit: the task starts waiting
  BOOST_TEST(!g.send(0, 0, records(4))); // already waiting
  BOOST_TEST(g.pending() == 2u);
  BOOST_TEST(t.take() == (lines{"0/0 data 1", "0/0 data 2"}), boost::test_tools::per_element());
  BOOST_TEST(m.backpressure_events.load() == 1u);
  BOOST_TEST(m.max_in_flight.load() == 2u);
  BOOST_REQUIRE(g.grant(0, 0, 1));
  BOOST_TEST(t.take() == (lines{"0/0 data 3"}), boost::test_tools::per_element());
  BOOST_REQUIRE(g.grant(0, 0, 5));
  BOOST_TEST(t.take() == (lines{"0/0 data 4"}), boost::test_tools::per_element());
  BOOST_TEST(g.pending() == 0u);
  BOOST_TEST(g.credit(0, 0) == 4);
  BOOST_TEST(m.records_out.load() == 10u);
  BOOST_TEST(m.batches_out.load() == 4u);
  BOOST_TEST(m.credits.load() == 4);
}

BOOST_AUTO_TEST_CASE(a_channel_to_another_node_gets_a_window_of_its_own) {
  recording_transport t;
  task_metrics m;
  output_gate g{{2}, 2, t, &m};
  g.set_window(0, 1, 5);
  BOOST_TEST(g.credit(0, 0) == 2);
  BOOST_TEST(g.credit(0, 1) == 5);
  BOOST_TEST(m.credits.load() == 7);
  for (int i = 0; i < 6; ++i)
    g.send(0, 1, records(1));
  BOOST_TEST(t.take().size() == 5u); // the sixth waits for credit
  BOOST_TEST(g.pending() == 1u);
  BOOST_TEST(m.max_in_flight.load() == 5u);
}

BOOST_AUTO_TEST_CASE(control_items_never_overtake_queued_data) {
  recording_transport t;
  output_gate g{{2}, 1, t};
  BOOST_TEST(!g.send(0, 0, records(1)));
  BOOST_TEST(g.send(0, 0, records(2))); // waits on channel 0/0
  g.broadcast(channel_item::watermark_of(at(7)));
  g.broadcast(channel_item::barrier_of(3, true));
  // Channel 0/1 has nothing queued: its control items go at once, costing no credit.
  BOOST_TEST(t.take() == (lines{"0/0 data 1", "0/1 wm 7", "0/1 barrier 3 cp"}),
             boost::test_tools::per_element());
  BOOST_TEST(g.pending() == 3u);
  BOOST_REQUIRE(g.grant(0, 0, 1));
  BOOST_TEST(t.take() == (lines{"0/0 data 2", "0/0 wm 7", "0/0 barrier 3 cp"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(control_items_behind_data_wait_only_for_that_data) {
  recording_transport t;
  output_gate g{{1}, 1, t};
  BOOST_TEST(!g.send(0, 0, records(1)));
  BOOST_TEST(g.send(0, 0, records(2)));
  g.broadcast(channel_item::idle_mark(true));
  BOOST_TEST(!g.send(0, 0, records(3)));
  t.take();
  BOOST_REQUIRE(g.grant(0, 0, 1)); // one credit: data 2, then the idle mark, not data 3
  BOOST_TEST(t.take() == (lines{"0/0 data 2", "0/0 idle"}), boost::test_tools::per_element());
  BOOST_TEST(g.pending() == 1u);
}

BOOST_AUTO_TEST_CASE(end_of_input_follows_everything_queued_and_nothing_follows_it) {
  recording_transport t;
  output_gate g{{1, 1}, 1, t};
  BOOST_TEST(!g.send(0, 0, records(1)));
  BOOST_TEST(g.send(0, 0, records(2)));
  g.end();
  BOOST_TEST(t.take() == (lines{"0/0 data 1", "1/0 end"}), boost::test_tools::per_element());
  BOOST_TEST(!g.ended());
  g.broadcast(channel_item::watermark_of(max_watermark)); // after end(): not sent
  BOOST_REQUIRE(g.grant(0, 0, 1));
  BOOST_TEST(t.take() == (lines{"0/0 data 2", "0/0 end"}), boost::test_tools::per_element());
  BOOST_TEST(g.ended());
}

BOOST_AUTO_TEST_CASE(credit_for_an_unknown_channel_is_refused) {
  recording_transport t;
  output_gate g{{2}, 1, t};
  BOOST_TEST(!g.grant(1, 0, 1));
  BOOST_TEST(!g.grant(0, 2, 1));
  BOOST_TEST(!g.grant(-1, 0, 1));
  BOOST_TEST(g.grant(0, 1, 1));
}

BOOST_AUTO_TEST_CASE(in_flight_batches_per_channel_never_exceed_the_window) {
  // A sender and a receiver joined back to back, the receiver consuming at random moments:
  // at no point are more than `credits` batches of a channel in flight.
  struct loop final : channel_transport {
    input_gate* receiver = nullptr;
    output_gate* sender = nullptr;
    int in_flight = 0, most = 0, delivered = 0;
    void deliver(int, int, channel_item item) override {
      if (item.what == channel_item::kind::data) {
        most = std::max(most, ++in_flight);
        ++delivered;
      }
      BOOST_REQUIRE(receiver->push(0, std::move(item)));
    }
    void grant(int, int n) override {
      in_flight -= n;
      BOOST_REQUIRE(sender->grant(0, 0, n));
    }
  } l;
  output_gate out{{1}, 3, l};
  input_gate in{1, l};
  l.receiver = &in;
  l.sender = &out;
  unsigned seed = 7;
  auto coin = [&] { return ((seed = seed * 1103515245u + 12345u) >> 16) % 3 == 0; };
  int sent = 0, consumed = 0;
  for (int step = 0; step < 2000; ++step) {
    if (sent < 500 && out.pending() == 0) {
      static_cast<void>(out.send(0, 0, records(1)));
      ++sent;
    }
    if (coin())
      if (auto ev = in.next(); ev && ev->what == gate_event::kind::data) {
        ++consumed;
        in.consumed(0);
      }
  }
  while (auto ev = in.next())
    if (ev->what == gate_event::kind::data) {
      ++consumed;
      in.consumed(0);
    }
  BOOST_TEST(l.most <= 3);
  BOOST_TEST(sent == 500);
  BOOST_TEST(consumed == l.delivered);
}

BOOST_AUTO_TEST_SUITE_END()
