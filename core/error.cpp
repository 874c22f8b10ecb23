#include "sluice/core/error.hpp"

namespace sluice {

std::string_view to_string(error_code code) noexcept {
  switch (code) {
    case error_code::invalid_graph: return "invalid_graph";
    case error_code::invalid_option: return "invalid_option";
    case error_code::malformed_record: return "malformed_record";
    case error_code::io_error: return "io_error";
    case error_code::user_function_failed: return "user_function_failed";
    case error_code::connector_failed: return "connector_failed";
    case error_code::cancelled: return "cancelled";
    case error_code::checkpoint_failed: return "checkpoint_failed";
    case error_code::internal: return "internal";
    case error_code::restore_conflict: return "restore_conflict";
    case error_code::malformed_frame: return "malformed_frame";
    case error_code::peer_refused: return "peer_refused";
    case error_code::node_lost: return "node_lost";
  }
  return "unknown";
}

std::string error::to_string() const {
  std::string out{sluice::to_string(code)};
  out += ": ";
  out += message;
  return out;
}

} // namespace sluice
