// starter: page views per user from a directory of JSON-lines files.
//
//   starter DIR     # prints {"user": ..., "views": N} each time a user's count changes
//
// Each line of a file in DIR is one page view, e.g.
//   {"user": "ada", "page": "/docs", "time": "2026-01-01T12:00:00Z", "millis": 250}
// ("millis", the time spent on the page, may be missing or null). Health checks
// (page "/health") are dropped; every other view counts for its user.
#include <sluice/api/job.hpp>
#include <sluice/sinks/console.hpp>
#include <sluice/sources/file.hpp>

#include <cstdint>
#include <iostream>
#include <optional>
#include <string>

// A record type: a plain struct plus an inspect() overload naming its fields. The file
// source decodes JSON objects by these names (CSV columns would go by this order).
struct page_view {
  std::string user;
  std::string page;
  sluice::event_time time{};
  std::optional<std::int64_t> millis;
};

template <class Inspector>
bool inspect(Inspector& f, page_view& x) {
  return f.object("page_view")
    .fields(f.field("user", x.user), f.field("page", x.page), f.field("time", x.time),
            f.field("millis", x.millis));
}

struct user_views {
  std::string user;
  std::uint64_t views = 0;
};

template <class Inspector>
bool inspect(Inspector& f, user_views& x) {
  return f.object("user_views").fields(f.field("user", x.user), f.field("views", x.views));
}

// A running aggregate per key: create() an accumulator, add() each record, result().
struct count_views {
  user_views create() const { return {}; }
  void add(user_views& acc, const page_view& v) const {
    acc.user = v.user;
    ++acc.views;
  }
  user_views result(const user_views& acc) const { return acc; }
};

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: starter DIR   (DIR holds JSON-lines files of page views)\n";
    return 2;
  }
  sluice::job job{{.name = "starter"}};
  job.from(sluice::sources::file<page_view>{{.path = argv[1]}})
    .name("page-views")
    .filter([](const page_view& v) { return v.page != "/health"; })
    .name("no-health-checks")
    .key_by([](const page_view& v) { return v.user; })
    .aggregate(count_views{})
    .name("views-per-user")
    .sink_to(sluice::sinks::console<user_views>{});
  auto done = job.run();
  if (!done) {
    // e.g. "malformed_record: data/views.jsonl:3: field 'time': ..." naming file and line
    std::cerr << "starter: " << done.error().to_string() << '\n';
    return 1;
  }
  return 0;
}
