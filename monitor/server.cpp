#include "monitor/server.hpp"

#include "core/log.hpp"
#include "monitor/exposition.hpp"

#include <httplib.h>

#include <mutex>
#include <optional>
#include <thread>

namespace sluice::monitor {

struct server::impl {
  const job_execution& job;
  server_options opts;
  httplib::Server http;
  std::thread thread;
  int port = 0;
  /// Rates on /api/job are computed against the snapshot of the previous request that is
  /// at least this old, so two pages polling at once do not see spans of microseconds.
  static constexpr std::chrono::milliseconds min_span{500};
  std::mutex mtx;
  std::optional<job_snapshot> previous;

  impl(const job_execution& j, server_options o) : job(j), opts(std::move(o)) {}

  std::string job_api() {
    auto now = job.snapshot();
    std::lock_guard guard{mtx};
    auto text = job_json(now, previous ? &*previous : nullptr);
    if (!previous || now.uptime - previous->uptime >= min_span)
      previous = std::move(now);
    return text;
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
  auto i = std::make_unique<impl>(job, opts);
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
  raw->thread = std::thread{[raw] { raw->http.listen_after_bind(); }};
  // httplib's stop() does nothing until the listening loop has begun (it checks
  // is_running()), so a server stopped right after starting would serve forever and its
  // destructor's join would hang. The loop's first step marks it running.
  while (!raw->http.is_running())
    std::this_thread::yield();
  logging::get().info("monitor: serving http://{}:{}/ (metrics at /metrics)", opts.address,
                      raw->port);
  return std::unique_ptr<server>{new server{std::move(i)}};
}

int server::port() const noexcept { return impl_->port; }

std::string server::url() const {
  return "http://" + impl_->opts.address + ":" + std::to_string(impl_->port);
}

} // namespace sluice::monitor
