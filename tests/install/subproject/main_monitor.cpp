// Links the monitor's server through Sluice::monitor, as a parent project would.
#include <sluice/monitor/server.hpp>

int main() {
  auto start = &sluice::monitor::server::start;
  return start == nullptr ? 1 : 0;
}
