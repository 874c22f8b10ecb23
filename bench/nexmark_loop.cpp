// The baseline of bench/nexmark.sh: q0, q1 and q2 as a hand-written loop over the same
// generator, one thread, no engine. It makes the same CSV rows as samples/nexmark and
// sums the same order-independent checksum, so its output must match the sample's.
//
//   nexmark_loop --query 0 --events 10000000
#include "sluice/samples/nexmark/generator.hpp"
#include "sluice/samples/nexmark/queries.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <xxhash.h>

#include <chrono>
#include <iostream>

using namespace sluice::nexmark;

int main(int argc, char** argv) {
  CLI::App app{"q0-q2 of Nexmark as a plain loop over the generator"};
  int query = 0;
  std::int64_t events = 10'000'000;
  app.add_option("--query", query, "0, 1 or 2")->check(CLI::IsMember({0, 1, 2}));
  app.add_option("--events", events, "events to generate")->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 40));
  CLI11_PARSE(app, argc, argv);

  generator_config config;
  config.max_events = events;
  const auto start = std::chrono::steady_clock::now();
  std::uint64_t rows = 0, checksum = 0;
  const auto emit = [&](const row& r) {
    ++rows;
    checksum += XXH64(r.data(), r.size(), 0);
  };
  for (generator g{config}; g.has_next();) {
    const auto e = g.next();
    const auto* b = e.value.as_bid();
    if (!b)
      continue;
    if (query == 0)
      emit(csv::line(b->auction, b->bidder, b->price, b->date_time, b->extra));
    else if (query == 1)
      emit(csv::line(b->auction, b->bidder, (908 * b->price + 500) / 1000, b->date_time, b->extra));
    else if (b->auction % 123 == 0)
      emit(csv::line(b->auction, b->price));
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << fmt::format(
    "nexmark_loop q{}: {} events in {:.3f} s: {:.0f} events/s, {} result rows, checksum {:016x}\n",
    query, events, seconds, static_cast<double>(events) / seconds, rows, checksum);
  return 0;
}
