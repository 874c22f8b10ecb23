#pragma once
/// How the checkpoint store lays out its LevelDB records (store.cpp): keys, a piece's stored
/// form (Snappy or as given), references to pieces kept in files, and the metadata record
/// (JSON with its own hash). Private to checkpoint/.
#include "sluice/checkpoint/store.hpp"
#include "sluice/core/error.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::store_format {

constexpr std::string_view meta_prefix = "m/";
/// The metadata's format: 1 had no `format` field and no job fingerprint; 2 has both.
constexpr int meta_format = 2;
constexpr std::string_view piece_prefix = "p/";
/// The key of the record that the job's run ended (`checkpoint_store::record_job_end`):
/// outside both prefixes, so listing checkpoints never meets it.
constexpr std::string_view job_end_key = "r/job-end";

/// `id` zero-padded to 20 digits, so that LevelDB's order of keys and file names is the
/// ids' order.
std::string id_text(std::int64_t id);
/// The key of checkpoint `id`'s metadata, and of its piece `name`.
std::string meta_key(std::int64_t id);
std::string piece_key(std::int64_t id, std::string_view name);

/// The hash kept for each piece and for the metadata (xxh64).
std::uint64_t hash_of(std::string_view bytes);
/// `v` as 16 hex digits.
std::string hex(std::uint64_t v);

/// A piece as stored: a tag byte, then the bytes as given (0) or compressed with Snappy (1),
/// whichever is smaller (always as given when `compress` is off). Compressing once here, on
/// the writer thread, is cheaper than LevelDB's block compression, which compresses again
/// in every compaction; state pieces (fixed-width numbers, repeated strings) shrink to a
/// third or less (Flink's snapshot compression uses Snappy as well).
std::string stored_form(std::string_view bytes, bool compress);
/// The bytes of a stored form; an unknown tag or bytes that do not decompress are errors.
result<std::string> from_stored(std::string_view stored);

/// A piece kept in a file: its record in the database is this tag, the offset and length
/// (8 bytes each, little-endian) and the file's name under `<dir>/pieces/`. The tag cannot
/// start a stored form (0 or 1), so a record is told apart from an inline piece.
constexpr char file_ref_tag = '\2';

struct file_ref {
  std::string file;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

std::string encode_ref(const file_ref& r);
/// The reference a record holds, or none for an inline piece.
std::optional<file_ref> decode_ref(std::string_view record);

/// Metadata as stored: JSON, a newline, and the JSON's hash, so a damaged record is told
/// apart from a valid one.
std::string encode_meta(const checkpoint_meta& m);
/// Checkpoint `id`'s metadata; a damaged, newer-format or misnamed record is an error
/// naming the checkpoint.
result<checkpoint_meta> decode_meta(std::string_view stored, std::int64_t id);

} // namespace sluice::store_format
