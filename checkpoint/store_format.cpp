#include "sluice/checkpoint/store_format.hpp"

#include <nlohmann/json.hpp>
#include <snappy.h>
#include <xxhash.h>

#include <cinttypes>
#include <cstdio>
#include <map>

namespace sluice::store_format {

std::string id_text(std::int64_t id) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%020" PRId64, id);
  return buf;
}

std::string meta_key(std::int64_t id) { return std::string{meta_prefix} + id_text(id); }
std::string piece_key(std::int64_t id, std::string_view name) {
  return std::string{piece_prefix} + id_text(id) + "/" + std::string{name};
}

std::uint64_t hash_of(std::string_view bytes) { return XXH64(bytes.data(), bytes.size(), 0); }

std::string stored_form(std::string_view bytes, bool compress) {
  if (!compress) {
    std::string out(1, '\0');
    out.append(bytes);
    return out;
  }
  std::string out(1 + snappy::MaxCompressedLength(bytes.size()), '\1');
  std::size_t n = 0;
  snappy::RawCompress(bytes.data(), bytes.size(), out.data() + 1, &n);
  if (n + 1 < bytes.size()) {
    out.resize(1 + n);
    return out;
  }
  out.assign(1, '\0');
  out.append(bytes);
  return out;
}

result<std::string> from_stored(std::string_view stored) {
  if (stored.empty())
    return make_error(error_code::io_error, "empty piece (no encoding tag)");
  const auto body = stored.substr(1);
  if (stored[0] == '\0')
    return std::string{body};
  if (stored[0] != '\1')
    return make_error(error_code::io_error,
                      "unknown piece encoding " + std::to_string(static_cast<unsigned char>(stored[0])));
  std::string out;
  if (!snappy::Uncompress(body.data(), body.size(), &out))
    return make_error(error_code::io_error, "piece does not decompress (corrupt)");
  return out;
}


namespace {

void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
std::uint64_t get_u64(std::string_view in) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[static_cast<std::size_t>(i)])) << (8 * i);
  return v;
}

} // namespace

std::string encode_ref(const file_ref& r) {
  std::string out(1, file_ref_tag);
  put_u64(out, r.offset);
  put_u64(out, r.length);
  out += r.file;
  return out;
}

std::optional<file_ref> decode_ref(std::string_view record) {
  if (record.size() < 18 || record[0] != file_ref_tag)
    return std::nullopt;
  return file_ref{std::string{record.substr(17)}, get_u64(record.substr(1)), get_u64(record.substr(9))};
}

std::string hex(std::uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

std::string encode_meta(const checkpoint_meta& m) {
  nlohmann::ordered_json j;
  j["format"] = meta_format;
  j["id"] = m.id;
  j["savepoint"] = m.savepoint;
  j["job"] = m.job;
  j["max_key_groups"] = m.max_key_groups;
  j["created"] = m.created;
  auto& pieces = j["pieces"] = nlohmann::ordered_json::array();
  for (auto& p : m.pieces) {
    nlohmann::ordered_json piece{{"name", p.name}, {"size", p.size}, {"hash", hex(p.hash)}};
    if (p.stored_in >= 0 && p.stored_in != m.id)
      piece["in"] = p.stored_in; // a piece an earlier checkpoint wrote
    if (p.node != 0)
      piece["node"] = p.node; // in another node's store (multi-node runs)
    pieces.push_back(std::move(piece));
  }
  j["properties"] = m.properties;
  if (!m.graph.empty()) { // kept as JSON, for people reading the metadata
    auto graph = nlohmann::ordered_json::parse(m.graph, nullptr, /*allow_exceptions=*/false);
    j["graph"] = graph.is_discarded() ? nlohmann::ordered_json(m.graph) : std::move(graph);
  }
  auto text = j.dump();
  return text + "\n" + hex(hash_of(text));
}

result<checkpoint_meta> decode_meta(std::string_view stored, std::int64_t id) {
  const auto what = "checkpoint " + std::to_string(id) + ": ";
  const auto nl = stored.rfind('\n');
  if (nl == std::string_view::npos)
    return make_error(error_code::io_error, what + "metadata has no checksum");
  const auto text = stored.substr(0, nl);
  if (hex(hash_of(text)) != stored.substr(nl + 1))
    return make_error(error_code::io_error, what + "metadata checksum mismatch (corrupt)");
  try {
    auto j = nlohmann::ordered_json::parse(text);
    const int format = j.contains("format") ? j.at("format").get<int>() : 1;
    if (format > meta_format)
      return make_error(error_code::io_error,
                        what + "metadata format " + std::to_string(format) +
                          " is newer than this version reads (" + std::to_string(meta_format) + ")");
    checkpoint_meta m;
    m.id = j.at("id").get<std::int64_t>();
    m.savepoint = j.at("savepoint").get<bool>();
    m.job = j.at("job").get<std::string>();
    m.max_key_groups = j.at("max_key_groups").get<int>();
    m.created = j.at("created").get<std::string>();
    for (auto& p : j.at("pieces")) {
      const auto in = p.contains("in") ? p.at("in").get<std::int64_t>() : id;
      if (in > id || in < 0)
        return make_error(error_code::io_error, what + "piece '" + p.at("name").get<std::string>() +
                                                  "' refers to checkpoint " + std::to_string(in));
      m.pieces.push_back(checkpoint_piece{p.at("name").get<std::string>(),
                                          p.at("size").get<std::uint64_t>(),
                                          std::stoull(p.at("hash").get<std::string>(), nullptr, 16),
                                          in, p.contains("node") ? p.at("node").get<int>() : 0});
    }
    m.properties = j.at("properties").get<std::map<std::string, std::string>>();
    if (j.contains("graph"))
      m.graph = j.at("graph").is_string() ? j.at("graph").get<std::string>() : j.at("graph").dump();
    if (m.id != id)
      return make_error(error_code::io_error, what + "metadata names checkpoint " +
                                                std::to_string(m.id));
    return m;
  } catch (const std::exception& e) {
    return make_error(error_code::io_error, what + "unreadable metadata: " + e.what());
  }
}

} // namespace sluice::store_format
