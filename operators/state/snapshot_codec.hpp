#pragma once
/// Encoding operator state for checkpoints with the binary record codec
/// (core/codec/binary.hpp): keys, accumulators and values need `inspect()` or must be
/// codec leaves (numbers, strings, event_time, vectors and optionals of those).
#include "core/codec/binary.hpp"
#include "core/error.hpp"
#include "operators/keyed_state.hpp"
#include "operators/operator.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::detail {

/// True when `T` can be written to a checkpoint.
template <class T>
inline constexpr bool snapshottable_v = sluice::is_codec_value_v<T>;

class state_encoder {
public:
  template <class T>
  void put(const T& x) {
    codec::to_binary(x, bytes_);
  }
  std::string take() {
    std::string out(reinterpret_cast<const char*>(bytes_.data()), bytes_.size());
    bytes_.clear();
    return out;
  }

private:
  std::vector<std::byte> bytes_;
};

class state_decoder {
public:
  explicit state_decoder(std::string_view bytes)
    : in_(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()) {}
  template <class T>
  [[nodiscard]] result<void> get(T& x) {
    return codec::from_binary(in_, x);
  }
  bool done() const noexcept { return in_.empty(); }

private:
  std::span<const std::byte> in_;
};

/// The error for state that has no codec form.
inline error not_snapshottable(const std::string& op) {
  return make_error(error_code::invalid_graph,
                    "operator '" + op + "': its state types cannot be checkpointed; give "
                    "the key, value or accumulator types an inspect() function");
}

/// Writes a keyed table, one piece per non-empty key group: a count, then key and value
/// pairs.
template <class K, class V>
result<void> snapshot_table(const keyed_state_table<K, V>& table, snapshot_writer& w) {
  state_encoder enc;
  for (int g = table.range().first; g < table.range().last; ++g) {
    const auto& map = table.group(g);
    if (map.empty())
      continue;
    enc.put(static_cast<std::uint64_t>(map.size()));
    for (const auto& [key, value] : map) {
      enc.put(key);
      enc.put(value);
    }
    if (auto r = w.put(key_group_piece(g), enc.take()); !r)
      return r;
  }
  return {};
}

/// Reads the key groups of `table`'s range back (any parallelism wrote them).
template <class K, class V>
result<void> restore_table(keyed_state_table<K, V>& table, snapshot_reader& r,
                           const std::string& op) {
  for (int g = table.range().first; g < table.range().last; ++g) {
    auto piece = r.get(key_group_piece(g));
    if (!piece)
      return std::move(piece).error();
    if (!*piece)
      continue;
    state_decoder dec{**piece};
    std::uint64_t n = 0;
    auto bad = [&](const error& e) {
      return make_error(error_code::io_error, "operator '" + op + "', key group " +
                                                std::to_string(g) + ": unreadable state: " +
                                                e.message);
    };
    if (auto ok = dec.get(n); !ok)
      return bad(ok.error());
    auto& map = table.group(g);
    for (std::uint64_t i = 0; i < n; ++i) {
      K key{};
      V value{};
      if (auto ok = dec.get(key); !ok)
        return bad(ok.error());
      if (auto ok = dec.get(value); !ok)
        return bad(ok.error());
      map.insert_or_assign(std::move(key), std::move(value));
    }
  }
  return {};
}

} // namespace sluice::detail
