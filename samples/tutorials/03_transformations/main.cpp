// Tutorial 03, transformations: projections and filters, flat_map, grouped aggregations
// (count, sum, avg, min, max) and a stream-static join with a CSV table, each a small query
// over the same orders. See README.md.
//
//   tutorial_03_transformations --query select|explode|aggregate|join
#include "sluice/api/job.hpp"
#include "sluice/samples/common/cli.hpp"
#include "sluice/samples/common/run.hpp"
#include "sluice/sinks/console.hpp"
#include "sluice/sources/file.hpp"
#include "sluice/sources/static_table.hpp"

#include <algorithm>
#include <iostream>
#include <limits>
#include <sstream>
#include <string>

using namespace sluice;

/// An order, one JSON line: fields are read by name.
struct order {
  event_time time{};
  std::int64_t order_id = 0;
  std::string customer;
  std::string items; ///< "apple:3 pear:1"
  double total = 0;
  std::string status;
};

template <class Inspector>
bool inspect(Inspector& f, order& x) {
  return f.object("order").fields(f.field("time", x.time), f.field("order_id", x.order_id),
                                  f.field("customer", x.customer), f.field("items", x.items),
                                  f.field("total", x.total), f.field("status", x.status));
}

/// A customer, one CSV row of `id,name,country`: CSV columns map to fields in this order.
struct customer {
  std::string id;
  std::string name;
  std::string country;
};

template <class Inspector>
bool inspect(Inspector& f, customer& x) {
  return f.object("customer").fields(f.field("id", x.id), f.field("name", x.name),
                                     f.field("country", x.country));
}

/// `select order_id, customer, total where status = 'paid'`.
struct paid_order {
  std::int64_t order_id = 0;
  std::string customer;
  double total = 0;
};

template <class Inspector>
bool inspect(Inspector& f, paid_order& x) {
  return f.object("paid_order").fields(f.field("order_id", x.order_id),
                                       f.field("customer", x.customer), f.field("total", x.total));
}

/// One element of an order's items (`explode`).
struct line_item {
  std::int64_t order_id = 0;
  std::string product;
  std::int64_t quantity = 0;
};

template <class Inspector>
bool inspect(Inspector& f, line_item& x) {
  return f.object("line_item").fields(f.field("order_id", x.order_id),
                                      f.field("product", x.product),
                                      f.field("quantity", x.quantity));
}

/// An order joined with its customer's country (`unknown` when the customer is missing).
struct order_in_country {
  std::string country;
  double total = 0;
};

/// count, sum, avg, min and max of `total` per group.
struct total_stats {
  std::string group;
  std::uint64_t orders = 0;
  double sum = 0;
  double avg = 0;
  double min = 0;
  double max = 0;
};

template <class Inspector>
bool inspect(Inspector& f, total_stats& x) {
  return f.object("total_stats")
    .fields(f.field("group", x.group), f.field("orders", x.orders), f.field("sum", x.sum),
            f.field("avg", x.avg), f.field("min", x.min), f.field("max", x.max));
}

/// `agg(count, sum, avg, min, max)` of `total` over records of type T: create / add / result.
template <class T>
struct stats_of_total {
  struct acc {
    std::uint64_t n = 0;
    double sum = 0;
    double min = std::numeric_limits<double>::infinity();
    double max = -std::numeric_limits<double>::infinity();
  };
  acc create() const { return {}; }
  void add(acc& a, const T& x) const {
    ++a.n;
    a.sum += x.total;
    a.min = std::min(a.min, x.total);
    a.max = std::max(a.max, x.total);
  }
  total_stats result(const std::string& key, const acc& a) const {
    return {key, a.n, a.sum, a.sum / static_cast<double>(a.n), a.min, a.max};
  }
};

int fail(const error& e) {
  std::cerr << "tutorial_03_transformations: " << e.to_string() << "\n";
  return 2;
}

int main(int argc, char** argv) {
  CLI::App app{"Tutorial 03: projections, filters, flat_map, aggregations, a static join"};
  samples::common_flags common;
  samples::add_common_flags(app, common);
  std::string query = "join";
  std::string input = SLUICE_TUTORIAL_DATA "/orders";
  std::string customers = SLUICE_TUTORIAL_DATA "/customers.csv";
  app.add_option("--query", query, "select, explode, aggregate or join")
    ->check(CLI::IsMember({"select", "explode", "aggregate", "join"}));
  app.add_option("--input", input, "directory of orders (JSON lines)");
  app.add_option("--customers", customers, "the customers table (CSV: id,name,country)");
  CLI11_PARSE(app, argc, argv);

  job_options opts;
  opts.name = "tutorial-03";
  auto duration = samples::apply_common_flags(common, opts);
  if (!duration)
    return fail(duration.error());
  opts.trigger = triggers::available_now();
  // Stateless queries append their rows; aggregations show their whole table each batch.
  opts.output_mode =
    query == "select" || query == "explode" ? output_mode::append : output_mode::complete;

  job j{opts};
  auto orders =
    j.from(sources::file<order>{{.path = input, .max_files_per_trigger = 1}}).name("orders");
  const sinks::console_options table{.format = sinks::console_format::table, .truncate = 0};

  if (query == "select") {
    orders.filter([](const order& o) { return o.status == "paid"; })
      .name("paid")
      .map([](const order& o) { return paid_order{o.order_id, o.customer, o.total}; })
      .name("select")
      .sink_to(sinks::console<paid_order>{table});
  } else if (query == "explode") {
    orders
      .flat_map([](const order& o, collector<line_item>& out) {
        std::istringstream in{o.items};
        for (std::string item; in >> item;) {
          const auto colon = item.find(':');
          out.collect(line_item{o.order_id, item.substr(0, colon),
                                colon == std::string::npos ? 1 : std::stoll(item.substr(colon + 1))});
        }
      })
      .name("explode")
      .sink_to(sinks::console<line_item>{table});
  } else if (query == "aggregate") {
    orders.filter([](const order& o) { return o.status == "paid"; })
      .name("paid")
      .key_by([](const order& o) { return o.customer; }, "customer")
      .aggregate(stats_of_total<order>{})
      .name("stats")
      .sink_to(sinks::console<total_stats>{table});
  } else {
    auto table_of_customers = static_table<std::string, customer>::from_file(
      customers, sources::file_format::csv, [](const customer& c) { return c.id; });
    orders.filter([](const order& o) { return o.status == "paid"; })
      .name("paid")
      .join_static(
        table_of_customers, [](const order& o) { return o.customer; },
        [](const order& o, const customer* c) {
          return order_in_country{c ? c->country : "unknown", o.total};
        },
        join_type::left_outer)
      .name("join-customers")
      .key_by([](const order_in_country& o) { return o.country; }, "country")
      .aggregate(stats_of_total<order_in_country>{})
      .name("stats")
      .sink_to(sinks::console<total_stats>{table});
  }

  auto done = samples::explain_or_run(
    j, common, *duration, {.program = "tutorial_03_transformations", .job_failed_exit = 2});
  return done.exit_code();
}
