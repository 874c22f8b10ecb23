// sluice-kafka-mock: librdkafka's mock cluster as a process, so shell tests and clients in other
// processes (kcat, a sample job) get a Kafka cluster in milliseconds and without Java.
//
//   sluice-kafka-mock --brokers 3 --topic orders:4 --topic alerts:1 [--exit-on-stdin-close]
//
// Prints one line, "bootstrap=<host:port,...>", once the brokers listen and the topics exist,
// then serves until SIGINT or SIGTERM, or until standard input closes when asked to: a test that
// holds the tool's stdin in a pipe cannot leak the process, even if it dies without cleanup.
#include "sluice/tools/kafka_mock/mock_cluster.hpp"

#include <CLI/CLI.hpp>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

namespace {

struct topic_spec {
  std::string name;
  int partitions = 0;
};

// "orders:4". Kafka topic names cannot contain ':', so the last one separates the count.
std::optional<topic_spec> parse_topic(const std::string& arg) {
  auto colon = arg.rfind(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  topic_spec spec{arg.substr(0, colon), 0};
  const char* first = arg.data() + colon + 1;
  const char* last = arg.data() + arg.size();
  auto [end, ec] = std::from_chars(first, last, spec.partitions);
  if (ec != std::errc{} || end != last || first == last || spec.partitions < 1) return std::nullopt;
  return spec;
}

// Returns when SIGINT or SIGTERM arrives on `signals`, or, with `watch_stdin`, when standard
// input reaches end of file or fails. Whatever arrives on standard input is discarded.
void wait_for_stop(int signals, bool watch_stdin) {
  pollfd fds[2] = {{signals, POLLIN, 0}, {watch_stdin ? STDIN_FILENO : -1, POLLIN, 0}};
  char buffer[4096];
  for (;;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents != 0) return;
    if (fds[1].revents != 0) {
      ssize_t n = read(STDIN_FILENO, buffer, sizeof buffer);
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return;
    }
  }
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"A librdkafka mock Kafka cluster on loopback, for tests. Prints "
               "\"bootstrap=<host:port,...>\" and serves until SIGINT/SIGTERM."};
  int brokers = 1;
  std::vector<std::string> topic_args;
  bool exit_on_stdin_close = false;
  app.add_option("--brokers", brokers, "number of brokers, ids 1..N (default 1)")
    ->check(CLI::Range(1, 64));
  app.add_option("--topic", topic_args, "create a topic with this many partitions (repeatable)")
    ->type_name("NAME:PARTITIONS")
    ->check(CLI::Validator(
      [](std::string& arg) {
        return parse_topic(arg) ? std::string{} : "expected NAME:PARTITIONS with PARTITIONS >= 1";
      },
      "")); // no description: type_name already says NAME:PARTITIONS in --help
  app.add_flag("--exit-on-stdin-close", exit_on_stdin_close,
               "also stop when standard input closes (EOF)");
  CLI11_PARSE(app, argc, argv);

  // Blocked before librdkafka starts its threads, which inherit the mask: the signals then
  // reach only the signalfd, and the cluster is torn down by its destructor on this thread.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  int signals = signalfd(-1, &stop_signals, SFD_CLOEXEC);
  if (signals < 0) {
    std::cerr << "sluice-kafka-mock: signalfd failed: " << std::strerror(errno) << '\n';
    return 1;
  }

  auto cluster = sluice::kafka::mock_cluster::create(brokers);
  if (!cluster) {
    std::cerr << "sluice-kafka-mock: " << cluster.error().to_string() << '\n';
    return 1;
  }
  for (const auto& arg : topic_args) {
    auto spec = parse_topic(arg); // validated by CLI11 above
    if (auto ok = cluster->create_topic(spec->name, spec->partitions); !ok) {
      std::cerr << "sluice-kafka-mock: " << ok.error().to_string() << '\n';
      return 1;
    }
  }

  std::cout << "bootstrap=" << cluster->bootstrap() << std::endl;
  wait_for_stop(signals, exit_on_stdin_close);
  close(signals);
  return 0;
}
