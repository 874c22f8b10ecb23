#pragma once
/// The versioned frame format between nodes: one ZeroMQ message is one frame.
///
/// Everything a channel carries (channels/item.hpp's `channel_item`), credit grants going
/// upstream, and the link's own handshake and heartbeat. Every frame carries the attempt
/// (so a receiver can fence frames of a dead or isolated attempt) and the channel id. The
/// layout, little-endian throughout:
///
/// | offset | bytes | field                                                  |
/// |--------|-------|--------------------------------------------------------|
/// | 0      | 4     | magic `S` `L` `C` `F`                                   |
/// | 4      | 2     | format version (`frame_format_version`)                |
/// | 6      | 1     | kind (`frame_kind`)                                    |
/// | 7      | 1     | flags, reserved: 0                                     |
/// | 8      | 8     | attempt (signed, >= 0)                                 |
/// | 16     | 4     | channel id (`control_channel` for hello and heartbeat) |
/// | 20     | 4     | body length in bytes                                   |
/// | 24     | ...   | body (see `frame_kind`)                                |
///
/// Magic and version keep their offsets in every future version, so a node always names the
/// version a peer speaks. Decoding never trusts the input: each malformed frame is a
/// `malformed_frame` error that names the problem, and nothing is allocated beyond the
/// bytes present.
#include "sluice/core/error.hpp"
#include "sluice/core/time.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace sluice::net {

/// The frame format this build speaks. Bump it whenever a layout below changes.
inline constexpr std::uint16_t frame_format_version = 1;
/// Bytes of the fixed header before the body.
inline constexpr std::size_t frame_header_bytes = 24;
/// The channel id of frames that belong to no channel (hello, heartbeat).
inline constexpr std::uint32_t control_channel = 0xffffffffu;
/// The largest body `decode_frame` accepts by default: 64 MiB, far above a batch bounded
/// in bytes, far below what a hostile length field could make a node allocate.
inline constexpr std::size_t default_max_frame_body = 64u << 20;
/// The longest job fingerprint or cluster digest a hello may carry.
inline constexpr std::size_t max_hello_string = 1024;

/// What a frame carries. The values are the wire's kind byte: never renumber them.
enum class frame_kind : std::uint8_t {
  data = 1,      ///< body: a batch of records, encoded by the caller (see batch_codec.hpp)
  watermark = 2, ///< body: 8 bytes, the event-time watermark in µs since the epoch
  idle = 3,      ///< body: empty
  active = 4,    ///< body: empty
  barrier = 5,   ///< body: 8 bytes epoch, 1 byte checkpoint flag (0 or 1)
  end = 6,       ///< body: empty; the channel's last frame
  credit = 7,    ///< body: 4 bytes, the credits granted (>= 1); travels upstream
  hello = 8,     ///< body: 4 bytes node, then fingerprint and cluster digest (varint + bytes)
  heartbeat = 9, ///< body: 8 bytes, the sender's heartbeat sequence number
  control = 10,  ///< body: the runtime's control message (UTF-8 JSON, actors/remote_control)
};

/// "data", "watermark", ...
std::string_view to_string(frame_kind kind) noexcept;

struct data_body {
  std::vector<std::byte> payload; ///< opaque to the link: the caller's encoded batch
};
struct watermark_body {
  event_time watermark{};
};
struct idle_body {};
struct active_body {};
struct barrier_body {
  std::int64_t epoch = 0;
  bool checkpoint = false;
};
struct end_body {};
struct credit_body {
  std::int32_t credits = 0;
};
/// The first frame on a connection, each way. The format version is the header's.
struct hello_body {
  std::uint32_t node = 0;      ///< the sender's index in the cluster file
  std::string fingerprint;     ///< the job's fingerprint (graph and plan)
  std::string cluster_digest;  ///< a digest of the cluster file the sender was started with
};
struct heartbeat_body {
  std::uint64_t sequence = 0;
};
/// A message between the coordinator and a task on another node (start, acknowledgements,
/// ...); the channel field names the receiving task. Opaque to the link.
struct control_body {
  std::string text;
};

/// A decoded frame. The alternatives are in `frame_kind` order.
struct frame {
  using body_type = std::variant<data_body, watermark_body, idle_body, active_body,
                                 barrier_body, end_body, credit_body, hello_body,
                                 heartbeat_body, control_body>;
  std::int64_t attempt = 0;
  std::uint32_t channel = control_channel;
  body_type body;

  frame_kind kind() const noexcept { return static_cast<frame_kind>(body.index() + 1); }
};

/// Appends the encoding of `f` to `out`.
///
/// Precondition: `f.attempt >= 0`, a data payload and hello strings within the limits that
/// `decode_frame` enforces (a frame its peer would refuse is a bug of the sender, not input).
void encode_frame(const frame& f, std::vector<std::byte>& out);

/// Appends a data frame whose payload `write_payload(out)` appends straight after the
/// header, so that records are encoded once, into the frame, and never copied.
template <class WritePayload>
void encode_data_frame(std::int64_t attempt, std::uint32_t channel,
                       std::vector<std::byte>& out, WritePayload&& write_payload);

/// Decodes one whole frame: `bytes` must be exactly one frame (one ZeroMQ message).
///
/// Fails with `malformed_frame` naming the problem: "truncated frame: ...", "not a sluice
/// frame: bad magic ...", "frame format version 2, this node speaks version 1", "frame body
/// of N bytes exceeds the limit of M bytes", "unknown frame kind 42", a body of the wrong
/// size, a field out of range, or trailing bytes. Never allocates more than `bytes.size()`.
[[nodiscard]] result<frame> decode_frame(std::span<const std::byte> bytes,
                                         std::size_t max_body = default_max_frame_body);

/// The format version a frame's header declares, if `bytes` start with the magic and a
/// version: lets a node name the version of a peer it cannot otherwise understand.
std::optional<std::uint16_t> peek_frame_version(std::span<const std::byte> bytes) noexcept;

/// The attempt a frame's header declares, if `bytes` hold a whole header: lets the link
/// drop queued frames of attempts that are over without decoding them.
std::optional<std::int64_t> peek_frame_attempt(std::span<const std::byte> bytes) noexcept;

namespace detail {
/// Writes the header with a body length of 0 and returns its offset in `out`.
std::size_t begin_frame(std::vector<std::byte>& out, frame_kind kind, std::int64_t attempt,
                        std::uint32_t channel);
/// Sets the body length of the frame begun at `start` to what follows its header.
void finish_frame(std::vector<std::byte>& out, std::size_t start);
} // namespace detail

template <class WritePayload>
void encode_data_frame(std::int64_t attempt, std::uint32_t channel,
                       std::vector<std::byte>& out, WritePayload&& write_payload) {
  const auto start = detail::begin_frame(out, frame_kind::data, attempt, channel);
  write_payload(out);
  detail::finish_frame(out, start);
}

} // namespace sluice::net
