#include "sluice/monitor/server.hpp"

#include "sluice/core/log.hpp"
#include "sluice/monitor/charts.hpp"
#include "sluice/monitor/connections.hpp"
#include "sluice/monitor/exposition.hpp"

#include <httplib.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <thread>

namespace sluice::monitor {

namespace {

using steady = std::chrono::steady_clock;

/// One request's view of a connection, for cpp-httplib: reads end at the request's deadline
/// and byte budget, the response's writes at `write_timeout` after the first.
class request_stream final : public httplib::Stream {
public:
  request_stream(connection& c, steady::time_point read_deadline, std::size_t budget,
                 std::chrono::milliseconds write_timeout)
    : c_(c), read_deadline_(read_deadline), budget_(budget), write_timeout_(write_timeout) {}

  bool is_readable() const override { return c_.wait_readable(read_deadline_); }
  bool is_writable() const override { return c_.wait_writable(write_deadline()); }
  ssize_t read(char* ptr, size_t size) override {
    // cpp-httplib reads a head line until its end, however long: the budget ends it.
    if (budget_ == 0)
      return -1;
    const auto n = c_.read(ptr, std::min(size, budget_), read_deadline_);
    if (n > 0)
      budget_ -= static_cast<std::size_t>(n);
    return n;
  }
  ssize_t write(const char* ptr, size_t size) override {
    return c_.write(ptr, size, write_deadline()) ? static_cast<ssize_t>(size) : -1;
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override { c_.peer_address(ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { c_.local_address(ip, port); }
  socket_t socket() const override { return c_.fd(); }

private:
  steady::time_point write_deadline() const {
    if (!write_deadline_)
      write_deadline_ = steady::now() + write_timeout_;
    return *write_deadline_;
  }

  connection& c_;
  steady::time_point read_deadline_;
  std::size_t budget_;
  std::chrono::milliseconds write_timeout_;
  mutable std::optional<steady::time_point> write_deadline_;
};

/// Why the body a request announces will not be read: 411 (no length given: chunked), 400
/// (a length that is not a number) or 413 (longer than `max_body`); nothing when it may be.
std::optional<int> body_refusal(const httplib::Request& req, std::size_t max_body) {
  if (req.has_header("Transfer-Encoding"))
    return 411;
  if (!req.has_header("Content-Length"))
    return std::nullopt;
  const auto text = req.get_header_value("Content-Length");
  std::uint64_t length = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), length);
  if (ec != std::errc{} || end != text.data() + text.size())
    return 400;
  if (length > max_body)
    return 413;
  return std::nullopt;
}

void answer_refusal(httplib::Response& res, int status, std::size_t max_body) {
  res.status = status;
  res.set_content(status == 413   ? "monitor: request body over " + std::to_string(max_body) + " bytes\n"
                  : status == 411 ? std::string{"monitor: a request body needs a Content-Length\n"}
                                  : std::string{"monitor: Content-Length is not a number\n"},
                  "text/plain; charset=utf-8");
}

/// cpp-httplib's server with the monitor's connections underneath. Its listening loop hands
/// each accepted socket to `process_and_close_socket` (through the task queue, on the
/// listening thread); this override gives it to the pool, and the pool's workers come back
/// through `serve` to cpp-httplib's `process_request` with a stream of our own. That is how
/// cpp-httplib's own SSLServer puts its stream under `process_request`.
class http_server final : public httplib::Server {
public:
  explicit http_server(const server_limits& limits) : limits_(limits) {}

  void use(connection_pool& pool) { pool_ = &pool; }

  /// cpp-httplib 0.11 listens with a backlog of 5 (compiled into Debian's library), so a
  /// burst of connections (a dashboard opening several panels) had SYNs dropped and retried
  /// a second later. Listening again on the bound socket sets the backlog anew (Linux).
  void raise_backlog(std::size_t backlog) {
    const int n = static_cast<int>(std::min<std::size_t>(backlog, SOMAXCONN));
    if (::listen(svr_sock_, n) != 0)
      logging::get().debug("monitor: could not raise the listen backlog to {}", n);
  }

  /// Serves one request of `c`, whose head has arrived; true to keep `c` open.
  bool serve(connection& c) {
    const bool last = c.requests() + 1 >= limits_.max_requests_per_connection;
    request_stream stream{c, c.request_deadline(), limits_.max_header_bytes + limits_.max_body_bytes,
                          limits_.write_timeout};
    bool refused = false;
    bool client_closes = false;
    const bool ok = process_request(stream, last, client_closes, [&](httplib::Request& req) {
      // The body of a refused request stays unread, so its connection cannot carry another
      // request. cpp-httplib answers "Connection: close" to a request that asks for it:
      // this one is made to ask.
      if (body_refusal(req, limits_.max_body_bytes)) {
        refused = true;
        req.headers.erase("Connection");
        req.headers.emplace("Connection", "close");
      }
    });
    return ok && !last && !client_closes && !refused;
  }

private:
  bool process_and_close_socket(socket_t sock) override {
    pool_->adopt(sock);
    return true;
  }

  const server_limits limits_;
  connection_pool* pool_ = nullptr;
};

/// cpp-httplib's task queue, reduced to running each accepted socket's task at once: the
/// task only hands the socket to the pool (`http_server::process_and_close_socket`). The
/// connection cap lives in the pool, not here: cpp-httplib 0.11's `enqueue` returns void
/// and its task is an opaque closure, so a queue that refused one would leak its socket.
class adopting_queue final : public httplib::TaskQueue {
public:
  explicit adopting_queue(connection_pool& pool) : pool_(pool) {}
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override { pool_.shutdown(); }

private:
  connection_pool& pool_;
};

/// Checks `limits`; the error names the first field out of range.
result<void> check(const server_limits& l) {
  auto bad = [](const std::string& what) {
    return make_error(error_code::invalid_option, "monitor: limits." + what);
  };
  constexpr std::chrono::milliseconds longest = std::chrono::hours{24};
  auto duration_ok = [&](std::chrono::milliseconds d) { return d.count() > 0 && d <= longest; };
  if (l.threads < 1 || l.threads > 64)
    return bad("threads must be in 1..64, not " + std::to_string(l.threads));
  if (l.max_connections < 1 || l.max_connections > 100'000)
    return bad("max_connections must be in 1..100000, not " + std::to_string(l.max_connections));
  if (!duration_ok(l.read_timeout))
    return bad("read_timeout must be in (0, 24 h], not " + std::to_string(l.read_timeout.count()) + " ms");
  if (!duration_ok(l.write_timeout))
    return bad("write_timeout must be in (0, 24 h], not " + std::to_string(l.write_timeout.count()) + " ms");
  if (!duration_ok(l.idle_timeout))
    return bad("idle_timeout must be in (0, 24 h], not " + std::to_string(l.idle_timeout.count()) + " ms");
  if (l.max_header_bytes < 1024 || l.max_header_bytes > (std::size_t{1} << 20))
    return bad("max_header_bytes must be in 1024..1048576, not " + std::to_string(l.max_header_bytes));
  if (l.max_body_bytes > (std::size_t{64} << 20))
    return bad("max_body_bytes must be at most 67108864 (bodies are read into memory), not " +
               std::to_string(l.max_body_bytes));
  if (l.max_requests_per_connection < 1)
    return bad("max_requests_per_connection must be at least 1");
  return {};
}

} // namespace

struct server::impl {
  const job_execution& job;
  server_options opts;
  http_server http;
  std::unique_ptr<connection_pool> pool;
  std::thread thread;
  int port = 0;
  /// Rates on /api/job are computed against the snapshot of the previous request that is
  /// at least this old, so two pages polling at once do not see spans of microseconds.
  static constexpr std::chrono::milliseconds min_span{500};
  std::mutex mtx;
  std::optional<job_snapshot> previous;

  // The charts' samples: taken by `sampler` every `opts.chart_interval`, read by requests.
  std::mutex charts_mtx;
  chart_history charts;
  std::condition_variable sampler_wake;
  bool stopping = false; // guarded by charts_mtx
  std::thread sampler;

  impl(const job_execution& j, server_options o, chart_history h)
    : job(j), opts(std::move(o)), http(opts.limits), charts(std::move(h)) {}

  void start_sampler() {
    sampler = std::thread{[this] {
      std::unique_lock lock{charts_mtx};
      while (!stopping) {
        lock.unlock();
        auto s = job.snapshot(); // outside the lock: requests need not wait for it
        lock.lock();
        charts.record(s);
        sampler_wake.wait_for(lock, opts.chart_interval, [this] { return stopping; });
      }
    }};
  }

  void stop_sampler() {
    {
      std::lock_guard guard{charts_mtx};
      stopping = true;
    }
    sampler_wake.notify_all();
    if (sampler.joinable())
      sampler.join();
  }

  std::string charts_fragment() {
    std::vector<chart_sample> samples;
    {
      std::lock_guard guard{charts_mtx};
      samples = charts.samples();
    }
    return charts_html(samples);
  }

  std::string job_api() {
    auto now = job.snapshot();
    std::lock_guard guard{mtx};
    auto text = job_json(now, previous ? &*previous : nullptr);
    if (!previous || now.uptime - previous->uptime >= min_span)
      previous = std::move(now);
    return text;
  }

  void limits() {
    const auto& l = opts.limits;
    const auto refuse_body = [max = l.max_body_bytes](const httplib::Request& req,
                                                      httplib::Response& res) -> std::optional<int> {
      auto status = body_refusal(req, max);
      if (status)
        answer_refusal(res, *status, max);
      return status;
    };
    // Before cpp-httplib reads a body (for a route or just to skip it): a client that waits
    // for "100 Continue" gets the refusal instead, one that does not gets it unread.
    http.set_expect_100_continue_handler([refuse_body](const httplib::Request& req, httplib::Response& res) {
      return refuse_body(req, res).value_or(100);
    });
    http.set_pre_routing_handler([refuse_body](const httplib::Request& req, httplib::Response& res) {
      return refuse_body(req, res) ? httplib::Server::HandlerResponse::Handled
                                   : httplib::Server::HandlerResponse::Unhandled;
    });
    http.set_payload_max_length(l.max_body_bytes);
    // cpp-httplib's own timeouts bound each read and write of its socket stream, which is
    // not used here: request_stream bounds a whole request and a whole response by them.
    // Set anyway, so that nothing left of cpp-httplib's waits longer.
    http.set_read_timeout(l.read_timeout);
    http.set_write_timeout(l.write_timeout);
    // What the Keep-Alive header of each answer announces; the pool enforces it.
    http.set_keep_alive_timeout(
      std::max<time_t>(1, static_cast<time_t>(std::chrono::ceil<std::chrono::seconds>(l.idle_timeout).count())));
    http.set_keep_alive_max_count(l.max_requests_per_connection);
  }

  void routes() {
    auto json = [](httplib::Response& res, std::string body) {
      res.set_header("Cache-Control", "no-store");
      res.set_content(std::move(body), "application/json");
    };
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(prometheus_text(job.snapshot()), "text/plain; version=0.0.4; charset=utf-8");
    });
    http.Get("/api/job", [this, json](const httplib::Request&, httplib::Response& res) {
      json(res, job_api());
    });
    http.Get("/api/progress", [this, json](const httplib::Request&, httplib::Response& res) {
      json(res, progress_json(job.recent_progress()));
    });
    http.Get("/api/checkpoints", [this, json](const httplib::Request&, httplib::Response& res) {
      json(res, checkpoints_json(job.snapshot()));
    });
    http.Get("/api/charts", [this](const httplib::Request&, httplib::Response& res) {
      res.set_header("Cache-Control", "no-store");
      res.set_content(charts_fragment(), "text/html; charset=utf-8");
    });
    http.Get("/charts", [this](const httplib::Request&, httplib::Response& res) {
      // The charts alone, for a browser without JavaScript: the page reloads itself.
      const auto seconds = std::max<long long>(
        1, std::chrono::ceil<std::chrono::seconds>(opts.page_refresh).count());
      res.set_header("Cache-Control", "no-store");
      res.set_content("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" "
                      "content=\"" + std::to_string(seconds) + "\"><title>Sluice charts</title></head>"
                      "<body style=\"font-family: sans-serif\">" + charts_fragment() +
                      "<p><a href=\"./\">status page</a></p></body></html>",
                      "text/html; charset=utf-8");
    });
    for (const auto& page : opts.pages)
      http.Get(page.path, [page](const httplib::Request&, httplib::Response& res) {
        res.set_header("Cache-Control", "no-store");
        res.set_content(page.render(), page.content_type);
      });
    http.Get("/", [this](const httplib::Request&, httplib::Response& res) {
      auto page = status_page_html();
      const std::string marker = "__SLUICE_REFRESH_MS__";
      if (auto at = page.find(marker); at != std::string::npos)
        page.replace(at, marker.size(), std::to_string(opts.page_refresh.count()));
      res.set_content(std::move(page), "text/html; charset=utf-8");
    });
  }
};

server::server(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

server::~server() {
  impl_->stop_sampler();
  impl_->http.stop();
  if (impl_->thread.joinable())
    impl_->thread.join();
}

result<std::unique_ptr<server>> server::start(const job_execution& job, server_options opts) {
  if (opts.port < 0 || opts.port > 65535)
    return make_error(error_code::invalid_option,
                      "monitor: port " + std::to_string(opts.port) + " is not in 0..65535");
  if (opts.page_refresh.count() <= 0)
    return make_error(error_code::invalid_option, "monitor: page_refresh must be positive");
  if (auto ok = check(opts.limits); !ok)
    return std::move(ok).error();
  if (opts.chart_interval < std::chrono::milliseconds{10} || opts.chart_interval > std::chrono::hours{1})
    return make_error(error_code::invalid_option,
                      "monitor: chart_interval must be 10 ms to 1 h, not " +
                        std::to_string(opts.chart_interval.count()) + " ms");
  for (const auto& page : opts.pages) {
    static const std::vector<std::string> own{"/", "/metrics", "/charts", "/api/job", "/api/progress",
                                              "/api/checkpoints", "/api/charts"};
    // cpp-httplib takes a route as a regular expression: only plain paths are accepted.
    const bool plain = page.path.size() > 1 && page.path[0] == '/' &&
                       page.path.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/-_") ==
                         std::string::npos;
    if (!plain || std::find(own.begin(), own.end(), page.path) != own.end() || !page.render)
      return make_error(error_code::invalid_option,
                        "monitor: page '" + page.path + "' must be a plain path (letters, digits, "
                        "'/', '-', '_') that the monitor does not serve itself, with a render function");
  }
  auto history = chart_history::make({.capacity = opts.chart_samples});
  if (!history)
    return std::move(history).error();
  auto i = std::make_unique<impl>(job, opts, std::move(*history));
  i->limits();
  i->routes();
  // httplib's default also sets SO_REUSEPORT, which lets a second server bind a port in
  // use and silently share it: a taken port must be an error naming it.
  i->http.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  if (opts.port == 0) {
    i->port = i->http.bind_to_any_port(opts.address.c_str());
    if (i->port <= 0)
      return make_error(error_code::io_error,
                        "monitor: cannot listen on " + opts.address + " (any port)");
  } else {
    if (!i->http.bind_to_port(opts.address.c_str(), opts.port))
      return make_error(error_code::io_error,
                        "monitor: cannot listen on " + opts.address + ":" +
                          std::to_string(opts.port) + " (in use, or not an address here)");
    i->port = opts.port;
  }
  auto* raw = i.get();
  raw->http.raise_backlog(opts.limits.max_connections);
  auto pool = connection_pool::start(opts.limits, [raw](connection& c) { return raw->http.serve(c); });
  if (!pool)
    return std::move(pool).error();
  raw->pool = std::move(pool).value();
  raw->http.use(*raw->pool);
  // cpp-httplib owns the queue it gets (it deletes it when its listening loop ends).
  raw->http.new_task_queue = [p = raw->pool.get()] { return new adopting_queue{*p}; };
  raw->thread = std::thread{[raw] { raw->http.listen_after_bind(); }};
  // httplib's stop() does nothing until the listening loop has begun (it checks
  // is_running()), so a server stopped right after starting would serve forever and its
  // destructor's join would hang. The loop's first step marks it running.
  while (!raw->http.is_running())
    std::this_thread::yield();
  raw->start_sampler();
  logging::get().info("monitor: serving http://{}:{}/ (metrics at /metrics)", opts.address,
                      raw->port);
  return std::unique_ptr<server>{new server{std::move(i)}};
}

int server::port() const noexcept { return impl_->port; }

std::string server::url() const {
  return "http://" + impl_->opts.address + ":" + std::to_string(impl_->port);
}

} // namespace sluice::monitor
