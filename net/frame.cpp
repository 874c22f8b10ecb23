#include "sluice/net/frame.hpp"

#include "sluice/core/codec/binary.hpp"

#include <fmt/format.h>

#include <cstring>

namespace sluice::net {

namespace {

constexpr std::byte magic[4] = {std::byte{'S'}, std::byte{'L'}, std::byte{'C'}, std::byte{'F'}};
constexpr std::uint8_t max_kind = static_cast<std::uint8_t>(frame_kind::control);

using codec::detail::get_fixed;
using codec::detail::get_varint;
using codec::detail::put_fixed;
using codec::detail::put_varint;

error malformed(std::string message) {
  return make_error(error_code::malformed_frame, std::move(message));
}

template <class U>
void put_at(std::vector<std::byte>& out, std::size_t at, U v) {
  for (std::size_t i = 0; i < sizeof(U); ++i) {
    out[at + i] = static_cast<std::byte>(v & 0xff);
    if constexpr (sizeof(U) > 1)
      v >>= 8;
  }
}

template <class U>
U get_at(std::span<const std::byte> in, std::size_t at) {
  U v = 0;
  for (std::size_t i = 0; i < sizeof(U); ++i)
    v |= static_cast<U>(std::to_integer<U>(in[at + i]) << (8 * i));
  return v;
}

void put_string(std::vector<std::byte>& out, std::string_view s) {
  put_varint(out, s.size());
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  out.insert(out.end(), p, p + s.size());
}

/// Reads a varint-prefixed string of at most `max_hello_string` bytes.
result<std::string> get_string(std::span<const std::byte>& in, std::string_view what) {
  std::uint64_t len = 0;
  sluice::detail::decode_error e;
  if (!get_varint(in, len, e))
    return malformed(fmt::format("hello: {}: {}", what, e.problem));
  if (len > max_hello_string)
    return malformed(fmt::format("hello: {} of {} bytes exceeds the limit of {} bytes", what,
                                 len, max_hello_string));
  if (len > in.size())
    return malformed(fmt::format("hello: truncated {}: {} bytes announced, {} present", what,
                                 len, in.size()));
  std::string s(reinterpret_cast<const char*>(in.data()), static_cast<std::size_t>(len));
  in = in.subspan(static_cast<std::size_t>(len));
  return s;
}

/// The body bytes a kind with a fixed-size body must have; -1 for variable bodies.
long fixed_body_size(frame_kind kind) {
  switch (kind) {
    case frame_kind::watermark: return 8;
    case frame_kind::idle:
    case frame_kind::active:
    case frame_kind::end: return 0;
    case frame_kind::barrier: return 9;
    case frame_kind::credit: return 4;
    case frame_kind::heartbeat: return 8;
    case frame_kind::data:
    case frame_kind::hello:
    case frame_kind::control: return -1;
  }
  return -1;
}

struct body_writer {
  std::vector<std::byte>& out;

  void operator()(const data_body& b) const {
    out.insert(out.end(), b.payload.begin(), b.payload.end());
  }
  void operator()(const watermark_body& b) const {
    put_fixed(out, static_cast<std::uint64_t>(b.watermark.time_since_epoch().count()));
  }
  void operator()(const idle_body&) const {}
  void operator()(const active_body&) const {}
  void operator()(const barrier_body& b) const {
    put_fixed(out, static_cast<std::uint64_t>(b.epoch));
    out.push_back(std::byte{b.checkpoint ? std::uint8_t{1} : std::uint8_t{0}});
  }
  void operator()(const end_body&) const {}
  void operator()(const credit_body& b) const {
    put_fixed(out, static_cast<std::uint32_t>(b.credits));
  }
  void operator()(const hello_body& b) const {
    put_fixed(out, b.node);
    put_string(out, b.fingerprint);
    put_string(out, b.cluster_digest);
  }
  void operator()(const heartbeat_body& b) const { put_fixed(out, b.sequence); }
  void operator()(const control_body& b) const {
    const auto* p = reinterpret_cast<const std::byte*>(b.text.data());
    out.insert(out.end(), p, p + b.text.size());
  }
};

result<frame::body_type> decode_body(frame_kind kind, std::span<const std::byte> in) {
  // Fixed sizes were checked by the caller, so the reads below cannot run short.
  switch (kind) {
    case frame_kind::data:
      return frame::body_type{data_body{{in.begin(), in.end()}}};
    case frame_kind::watermark: {
      const auto us = static_cast<std::int64_t>(get_at<std::uint64_t>(in, 0));
      return frame::body_type{watermark_body{event_time{std::chrono::microseconds{us}}}};
    }
    case frame_kind::idle: return frame::body_type{idle_body{}};
    case frame_kind::active: return frame::body_type{active_body{}};
    case frame_kind::barrier: {
      const auto epoch = static_cast<std::int64_t>(get_at<std::uint64_t>(in, 0));
      const auto flag = get_at<std::uint8_t>(in, 8);
      if (epoch < 0)
        return malformed(fmt::format("barrier: negative epoch {}", epoch));
      if (flag > 1)
        return malformed(fmt::format("barrier: checkpoint flag byte {} (0 or 1)", flag));
      return frame::body_type{barrier_body{epoch, flag == 1}};
    }
    case frame_kind::end: return frame::body_type{end_body{}};
    case frame_kind::credit: {
      const auto n = get_at<std::uint32_t>(in, 0);
      if (n == 0 || n > 0x7fffffffu)
        return malformed(fmt::format("credit: {} credits (1 to 2147483647)", n));
      return frame::body_type{credit_body{static_cast<std::int32_t>(n)}};
    }
    case frame_kind::hello: {
      hello_body h;
      sluice::detail::decode_error e;
      if (!get_fixed(in, h.node, e))
        return malformed("hello: truncated node id: " + e.problem);
      auto fp = get_string(in, "fingerprint");
      if (!fp)
        return std::move(fp).error();
      auto digest = get_string(in, "cluster digest");
      if (!digest)
        return std::move(digest).error();
      if (!in.empty())
        return malformed(fmt::format("hello: {} trailing bytes", in.size()));
      h.fingerprint = std::move(*fp);
      h.cluster_digest = std::move(*digest);
      return frame::body_type{std::move(h)};
    }
    case frame_kind::heartbeat:
      return frame::body_type{heartbeat_body{get_at<std::uint64_t>(in, 0)}};
    case frame_kind::control:
      return frame::body_type{
        control_body{std::string(reinterpret_cast<const char*>(in.data()), in.size())}};
  }
  return malformed("unknown frame kind");
}

} // namespace

std::string_view to_string(frame_kind kind) noexcept {
  switch (kind) {
    case frame_kind::data: return "data";
    case frame_kind::watermark: return "watermark";
    case frame_kind::idle: return "idle";
    case frame_kind::active: return "active";
    case frame_kind::barrier: return "barrier";
    case frame_kind::end: return "end";
    case frame_kind::credit: return "credit";
    case frame_kind::hello: return "hello";
    case frame_kind::heartbeat: return "heartbeat";
    case frame_kind::control: return "control";
  }
  return "unknown";
}

namespace detail {

std::size_t begin_frame(std::vector<std::byte>& out, frame_kind kind, std::int64_t attempt,
                        std::uint32_t channel) {
  const auto start = out.size();
  out.insert(out.end(), std::begin(magic), std::end(magic));
  put_fixed(out, frame_format_version);
  out.push_back(static_cast<std::byte>(kind));
  out.push_back(std::byte{0});
  put_fixed(out, static_cast<std::uint64_t>(attempt));
  put_fixed(out, channel);
  put_fixed(out, std::uint32_t{0});
  return start;
}

void finish_frame(std::vector<std::byte>& out, std::size_t start) {
  const auto body = out.size() - start - frame_header_bytes;
  put_at(out, start + 20, static_cast<std::uint32_t>(body));
}

} // namespace detail

void encode_frame(const frame& f, std::vector<std::byte>& out) {
  const auto start = detail::begin_frame(out, f.kind(), f.attempt, f.channel);
  std::visit(body_writer{out}, f.body);
  detail::finish_frame(out, start);
}

std::optional<std::uint16_t> peek_frame_version(std::span<const std::byte> bytes) noexcept {
  if (bytes.size() < 6 || std::memcmp(bytes.data(), magic, 4) != 0)
    return std::nullopt;
  return get_at<std::uint16_t>(bytes, 4);
}

std::optional<std::int64_t> peek_frame_attempt(std::span<const std::byte> bytes) noexcept {
  if (bytes.size() < frame_header_bytes || std::memcmp(bytes.data(), magic, 4) != 0)
    return std::nullopt;
  return static_cast<std::int64_t>(get_at<std::uint64_t>(bytes, 8));
}

result<frame> decode_frame(std::span<const std::byte> bytes, std::size_t max_body) {
  // Magic first, then the version: a peer of another version is named as such, even when
  // its header has another size.
  if (bytes.size() < 4)
    return malformed(fmt::format("truncated frame: {} bytes, the header needs {}",
                                 bytes.size(), frame_header_bytes));
  if (std::memcmp(bytes.data(), magic, 4) != 0)
    return malformed(fmt::format("not a sluice frame: bad magic {:02x} {:02x} {:02x} {:02x}",
                                 std::to_integer<unsigned>(bytes[0]),
                                 std::to_integer<unsigned>(bytes[1]),
                                 std::to_integer<unsigned>(bytes[2]),
                                 std::to_integer<unsigned>(bytes[3])));
  if (bytes.size() < 6)
    return malformed(fmt::format("truncated frame: {} bytes, the header needs {}",
                                 bytes.size(), frame_header_bytes));
  const auto version = get_at<std::uint16_t>(bytes, 4);
  if (version != frame_format_version)
    return malformed(fmt::format("frame format version {}, this node speaks version {}",
                                 version, frame_format_version));
  if (bytes.size() < frame_header_bytes)
    return malformed(fmt::format("truncated frame: {} bytes, the header needs {}",
                                 bytes.size(), frame_header_bytes));
  const auto kind_byte = get_at<std::uint8_t>(bytes, 6);
  if (kind_byte == 0 || kind_byte > max_kind)
    return malformed(fmt::format("unknown frame kind {}", kind_byte));
  const auto kind = static_cast<frame_kind>(kind_byte);
  if (const auto flags = get_at<std::uint8_t>(bytes, 7); flags != 0)
    return malformed(fmt::format("{} frame: reserved flags {:#04x} set", to_string(kind), flags));
  const auto attempt = static_cast<std::int64_t>(get_at<std::uint64_t>(bytes, 8));
  if (attempt < 0)
    return malformed(fmt::format("{} frame: negative attempt {}", to_string(kind), attempt));
  const auto channel = get_at<std::uint32_t>(bytes, 16);
  const auto body_len = get_at<std::uint32_t>(bytes, 20);
  const auto present = bytes.size() - frame_header_bytes;
  if (body_len > max_body)
    return malformed(fmt::format("{} frame: body of {} bytes exceeds the limit of {} bytes",
                                 to_string(kind), body_len, max_body));
  if (body_len > present)
    return malformed(fmt::format("truncated frame: {} frame announces {} body bytes, {} present",
                                 to_string(kind), body_len, present));
  if (body_len < present)
    return malformed(fmt::format("{} frame: {} trailing bytes after the body", to_string(kind),
                                 present - body_len));
  if (const auto fixed = fixed_body_size(kind); fixed >= 0 && body_len != fixed)
    return malformed(fmt::format("{} frame: body of {} bytes, must be {}", to_string(kind),
                                 body_len, fixed));
  auto body = decode_body(kind, bytes.subspan(frame_header_bytes));
  if (!body)
    return std::move(body).error();
  frame out;
  out.attempt = attempt;
  out.channel = channel;
  out.body = std::move(*body);
  return out;
}

} // namespace sluice::net
