// Query 12, processing-time windows: bids per bidder per 10 s tumbling window of
// processing time (PROCTIME()).
//   SELECT bidder, count(*) AS bid_count, window_start AS starttime, window_end AS endtime
//   FROM TABLE(TUMBLE(TABLE B, DESCRIPTOR(p_time), INTERVAL '10' SECOND))
//   GROUP BY bidder, window_start, window_end
// The window operators are event-time only, so this is a keyed process function with
// processing-time timers. A window fires when the processing clock reaches its end; at
// the end of input (whose pending processing-time timers are dropped, as in Flink) the
// maximal watermark fires an event-time timer that flushes the open windows, so a bounded
// run counts every bid exactly once. Times are reported on the wall clock (epoch ms).
#include "sluice/samples/nexmark/queries.hpp"

#include <vector>

namespace sluice::nexmark {
namespace {

using namespace std::chrono_literals;

struct processing_time_windows {
  std::chrono::nanoseconds size = 10s;
  /// Wall clock minus the processing clock: how window bounds are reported.
  std::chrono::nanoseconds to_wall{};

  void on_element(const bid&, keyed_process_context<std::int64_t>& ctx, collector<row>&) {
    // Windows are aligned to the epoch on the wall clock, as Flink's PROCTIME windows are.
    const auto now = ctx.timers().current_processing_time().time_since_epoch() + to_wall;
    const auto start = now - ((now % size) + size) % size;
    auto counts = ctx.map_state<std::int64_t, std::int64_t>("counts");
    counts.put(start.count(), counts.get(start.count()).value_or(0) + 1);
    ctx.timers().register_processing_time(clock::time_point{
      std::chrono::duration_cast<clock::time_point::duration>(start + size - to_wall)});
    ctx.timers().register_event_time(max_watermark); // the end of input
  }

  void on_timer(clock::time_point t, keyed_process_context<std::int64_t>& ctx,
                collector<row>& out) {
    flush(ctx, out, t.time_since_epoch() + to_wall);
  }
  void on_timer(event_time, keyed_process_context<std::int64_t>& ctx, collector<row>& out) {
    flush(ctx, out, std::chrono::nanoseconds::max());
  }

  /// Emits and forgets the windows that end by `until` (wall clock).
  void flush(keyed_process_context<std::int64_t>& ctx, collector<row>& out,
             std::chrono::nanoseconds until) {
    auto counts = ctx.map_state<std::int64_t, std::int64_t>("counts");
    std::vector<std::int64_t> done;
    const auto ms = [](std::chrono::nanoseconds x) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(x).count();
    };
    for (const auto& [start, n] : counts.entries()) {
      const auto s = std::chrono::nanoseconds{start};
      if (until != std::chrono::nanoseconds::max() && s + size > until)
        continue;
      out.collect(csv::line(ctx.current_key(), n, ms(s), ms(s + size)));
      done.push_back(start);
    }
    for (auto s : done)
      counts.remove(s);
  }
};

} // namespace

stream<row> q12(stream<event> events) {
  const auto to_wall =
    std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::system_clock::now().time_since_epoch()) -
    std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::steady_clock::now().time_since_epoch());
  return bids_of(std::move(events))
    .key_by([](const bid& b) { return b.bidder; }, "bidder")
    .process(processing_time_windows{10s, to_wall})
    .name("q12");
}

} // namespace sluice::nexmark
