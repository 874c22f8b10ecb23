#include "sluice/samples/nexmark/pipeline.hpp"

namespace sluice::nexmark {

result<stream<row>> add_query(job& j, const run_options& o) {
  const auto* q = find_query(o.query);
  if (!q) {
    std::string known;
    for (const auto& k : all_queries())
      known += (known.empty() ? "" : ", ") + std::to_string(k.number);
    return make_error(error_code::invalid_option,
                      "nexmark: no query " + std::to_string(o.query) + " (known: " + known + ")");
  }
  if (o.events <= 0)
    return make_error(error_code::invalid_option,
                      "nexmark: events must be positive, got " + std::to_string(o.events));
  events source;
  source.config.max_events = o.events;
  source.config.events_per_second = o.events_per_second;
  source.rate = o.throttle;
  source.split = o.split;
  if (auto ok = source.validate(); !ok)
    return ok.error();
  auto strategy = nexmark_watermarks();
  if (o.align_drift)
    strategy = strategy.with_watermark_alignment("nexmark", *o.align_drift, o.align_interval);
  auto in = j.from(std::move(source), std::move(strategy)).name("nexmark");
  if (o.side_input) {
    if (o.query != 13)
      return make_error(error_code::invalid_option,
                        "nexmark: a side input is read by q13 only, not q" + std::to_string(o.query));
    return q13(std::move(in), o.side_input);
  }
  return q->build(std::move(in));
}

} // namespace sluice::nexmark
