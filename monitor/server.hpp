#pragma once
/// The monitor: Prometheus metrics at `/metrics`, a live status page at `/`, and the JSON
/// API the page reads (`/api/job`, `/api/progress`, `/api/checkpoints`), served by
/// cpp-httplib on its own thread while the job runs. Charts over time (monitor/charts.hpp):
/// a sampler thread records a snapshot every `chart_interval` into a bounded ring;
/// `/api/charts` renders them as inline SVG for the page, `/charts` as a page of its own.
///
/// ```cpp
/// auto running = job.start();
/// auto monitor = monitor::server::start(**running, {.port = 9249});
/// ```
#include "sluice/actors/runtime.hpp"
#include "sluice/core/error.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace sluice::monitor {

/// What one client may cost the monitor. A monitor must never affect the job it watches: a
/// broken or hostile client (a huge body, connections left open, a head sent byte by byte)
/// gets an error or a closed connection, never a thread or unbounded memory of its own.
struct server_limits {
  /// Threads that serve requests (render metrics, pages, JSON). Default 2.
  std::size_t threads = 2;
  /// Connections open at once, idle or not. A new connection beyond it closes the one
  /// silent longest; when none is silent it is refused (503, then closed). Default 64.
  std::size_t max_connections = 64;
  /// Longest a request may take to arrive, from its first byte to its last: a client that
  /// sends its head (or body) slowly is disconnected then. Default 5 s.
  std::chrono::milliseconds read_timeout{5000};
  /// Longest writing one response may take. Default 5 s.
  std::chrono::milliseconds write_timeout{5000};
  /// Longest a connection may stay silent before its first request and between requests
  /// (keep-alive). Default 15 s.
  std::chrono::milliseconds idle_timeout{15000};
  /// Largest request head (request line and headers); a longer one closes the connection.
  /// Default 16 KiB.
  std::size_t max_header_bytes = 16 * 1024;
  /// Largest request body. No route takes a body, hence the default 0: a request that
  /// announces a longer one is answered 413 (411 when it gives no length) without its body
  /// being read, and its connection is closed. Default 0.
  std::size_t max_body_bytes = 0;
  /// Requests served on one connection before the server closes it. Default 100.
  std::size_t max_requests_per_connection = 100;
};

/// A page an application adds to the monitor's server (a live dashboard): `GET path`
/// answers `render()`, called on a server thread for each request (it must be thread-safe
/// and must not block on the job).
struct extra_page {
  std::string path;         ///< starting with '/', not one of the monitor's own routes
  std::string content_type = "text/html; charset=utf-8";
  std::function<std::string()> render;
};

struct server_options {
  /// TCP port; 0 picks a free one (see `server::port()`). Default 0.
  int port = 0;
  /// Address to listen on. Default loopback only: the page has no authentication.
  std::string address = "127.0.0.1";
  /// How often the status page polls the API. Default 1 s.
  std::chrono::milliseconds page_refresh{1000};
  /// What one client may cost (see `server_limits`).
  server_limits limits{};
  /// How often a sample for the charts is taken. Default 1 s; 10 ms to 1 h.
  std::chrono::milliseconds chart_interval{1000};
  /// Samples the charts keep (the oldest goes first). Default 300: 5 minutes at 1 s.
  std::size_t chart_samples = 300;
  /// Pages of the application, served beside the monitor's own. Default none.
  std::vector<extra_page> pages{};
};

class server {
public:
  /// Starts serving `job`, which must outlive the server. Fails (naming the address and
  /// port) when it cannot listen.
  static result<std::unique_ptr<server>> start(const job_execution& job, server_options opts = {});

  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// The port it listens on.
  int port() const noexcept;
  /// `http://address:port`.
  std::string url() const;

private:
  struct impl;
  explicit server(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

/// The status page (one self-contained HTML file: no external scripts, styles or fonts).
const std::string& status_page_html();

} // namespace sluice::monitor
