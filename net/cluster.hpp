#pragma once
/// What a user says about a multi-node run: the cluster file, this node's line, the key
/// file and the heartbeat timing (issue 24, docs/cluster.md). Read by the runtime, which
/// turns it into the link's options (link.hpp).
#include "sluice/core/error.hpp"
#include "sluice/net/link.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace sluice::net {

/// "host:port" split at its last colon, the port a number 0..65535; unset otherwise.
struct endpoint {
  std::string host;
  int port = 0;
};
[[nodiscard]] std::optional<endpoint> parse_endpoint(const std::string& text);

/// Whether `key` is a CurveZMQ key: 40 characters of Z85.
[[nodiscard]] bool is_z85_key(const std::string& key);

/// A multi-node run. Without `nodes` (the default) the job runs in one process.
struct cluster_options {
  /// Every node's `host:port`, node 0 (the coordinator) first: the cluster file's lines.
  std::vector<std::string> nodes;
  /// This process's index in `nodes`.
  int node = 0;
  /// The cluster's CurveZMQ key file (`write_key_file`); empty: unauthenticated (the
  /// runtime says so in the log at start).
  std::filesystem::path key_file;
  /// Time between heartbeats to each peer. Default 1 s.
  std::chrono::milliseconds heartbeat_interval{1000};
  /// A node silent this long is lost and fails the job on every node. Default 10 s.
  std::chrono::milliseconds heartbeat_timeout{10'000};
  /// How long a node may take to join: node 0 fails an attempt whose nodes are not all up
  /// this long after it started (a restart strategy may try again); another node ends
  /// with an error when node 0 has not started its tasks this long after it started.
  /// Node 0 restarted after the job had ended (its store recorded the end before the
  /// other nodes were told, and they have left) ends as the job did once it passes, and so
  /// does another node restarted after node 0 told it. Default 60 s.
  std::chrono::milliseconds join_timeout{60'000};
  /// How long node 0 waits for a lost node to come back before it re-plans the job onto
  /// the nodes left and restores the last checkpoint there (the missing node's pieces are
  /// read from its store: this needs a checkpoint directory every node shares, and
  /// checkpoints). A node left out stays out for the rest of the job. Unset: never; the
  /// restart strategy waits for the node. Default 60 s.
  std::optional<std::chrono::milliseconds> rejoin_timeout{std::chrono::seconds{60}};

  bool enabled() const noexcept { return !nodes.empty(); }
  /// Checks the fields: at least one node, `node` in range, every entry `host:port` with
  /// a port in 1..65535 and no entry twice, the timeout longer than the interval, both
  /// positive, positive join and rejoin timeouts. Errors (`invalid_option`) name the field and repeat the value.
  [[nodiscard]] result<void> validate() const;
};

/// The lines of a cluster file: one `host:port` per line, node 0 first; blank lines and
/// lines starting with `#` are skipped, spaces around an entry trimmed, CRLF line ends
/// accepted. Fails with `io_error` (the file cannot be read, or is no regular file) or
/// `invalid_option` (naming the line; a line over 1024 characters or a file over 1 MiB is
/// refused before it is read whole).
[[nodiscard]] result<std::vector<std::string>> read_cluster_file(const std::filesystem::path& file);

/// A digest of the cluster's node list (XXH64 of the lines, in hex): peers started with
/// another cluster file are refused in the handshake.
[[nodiscard]] std::string cluster_digest(const std::vector<std::string>& nodes);

/// Writes a new cluster key (`make_curve_keypair`) to `file`, readable by its owner only
/// (mode 0600 from its creation). Format: two lines, `public-key=Z85` and `secret-key=Z85`.
/// Refuses (`io_error`) an existing file and a symbolic link, even a dangling one: the
/// secret is written only into a file this call created.
[[nodiscard]] result<curve_keypair> write_key_file(const std::filesystem::path& file);

/// Reads a key file written by `write_key_file`. Fails with `io_error` or
/// `invalid_option` naming the file and what is wrong (a missing or repeated key line, a key
/// that is not 40 characters of Z85, a public key not derived from the secret key, a file
/// the group or others may access, a file over 4 KiB or not a regular file).
[[nodiscard]] result<curve_keypair> read_key_file(const std::filesystem::path& file);

} // namespace sluice::net
