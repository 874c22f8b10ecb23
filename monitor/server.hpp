#pragma once
/// The monitor: Prometheus metrics at `/metrics`, a live status page at `/`, and the JSON
/// API the page reads (`/api/job`, `/api/progress`, `/api/checkpoints`), served by
/// cpp-httplib on its own thread while the job runs.
///
/// ```cpp
/// auto running = job.start();
/// auto monitor = monitor::server::start(**running, {.port = 9249});
/// ```
#include "actors/runtime.hpp"
#include "core/error.hpp"

#include <chrono>
#include <memory>
#include <string>

namespace sluice::monitor {

struct server_options {
  /// TCP port; 0 picks a free one (see `server::port()`). Default 0.
  int port = 0;
  /// Address to listen on. Default loopback only: the page has no authentication.
  std::string address = "127.0.0.1";
  /// How often the status page polls the API. Default 1 s.
  std::chrono::milliseconds page_refresh{1000};
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
