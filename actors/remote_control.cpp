#include "sluice/actors/remote_control.hpp"

#include "sluice/actors/watermark_alignment.hpp"

#include <nlohmann/json.hpp>

#include <array>

namespace sluice {

namespace {

using json = nlohmann::json;
using kind = control_message::kind;

constexpr std::array<std::string_view, 19> names{
  "wire",   "start", "cancel",    "commit",   "prepare",  "run",   "inject",  "done",
  "failed", "ack",   "finishing", "prepared", "finalpos", "ended", "attempt", "completed",
  "removed", "wmreport", "wmallow"};

json to_json(const event_time_stats& s) {
  return {{"n", s.count},
          {"min", s.min.time_since_epoch().count()},
          {"max", s.max.time_since_epoch().count()},
          {"sum", static_cast<double>(s.sum_us)}};
}

event_time_stats event_times_from(const json& j) {
  event_time_stats s;
  s.count = j.at("n").get<std::uint64_t>();
  s.min = event_time{duration{j.at("min").get<std::int64_t>()}};
  s.max = event_time{duration{j.at("max").get<std::int64_t>()}};
  s.sum_us = j.at("sum").get<double>();
  return s;
}

json shipped_to_json(const std::vector<control_message::shipped_piece>& pieces) {
  json out = json::array();
  for (const auto& p : pieces)
    out.push_back({{"name", p.name},
                   {"in", p.stored_in},
                   {"b", json::binary(std::vector<std::uint8_t>(p.bytes.begin(), p.bytes.end()))}});
  return out;
}

std::vector<control_message::shipped_piece> shipped_from(const json& j) {
  std::vector<control_message::shipped_piece> out;
  for (const auto& p : j) {
    const auto& b = p.at("b").get_binary();
    out.push_back({p.at("name").get<std::string>(), p.at("in").get<std::int64_t>(),
                   std::string(b.begin(), b.end())});
  }
  return out;
}

json to_json(const checkpoint_piece& p) {
  return {{"name", p.name}, {"size", p.size}, {"hash", p.hash}, {"in", p.stored_in},
          {"node", p.node}};
}

checkpoint_piece piece_from(const json& o) {
  return {o.at("name").get<std::string>(), o.at("size").get<std::uint64_t>(),
          o.at("hash").get<std::uint64_t>(), o.at("in").get<std::int64_t>(),
          o.at("node").get<int>()};
}

json to_json(const checkpoint_meta& m) {
  json pieces = json::array();
  for (const auto& p : m.pieces)
    pieces.push_back(to_json(p));
  return {{"id", m.id},        {"sp", m.savepoint},     {"job", m.job},
          {"kg", m.max_key_groups}, {"created", m.created}, {"pieces", std::move(pieces)},
          {"props", m.properties},  {"graph", m.graph}};
}

checkpoint_meta meta_from(const json& j) {
  checkpoint_meta m;
  m.id = j.at("id").get<std::int64_t>();
  m.savepoint = j.at("sp").get<bool>();
  m.job = j.at("job").get<std::string>();
  m.max_key_groups = j.at("kg").get<int>();
  m.created = j.at("created").get<std::string>();
  for (const auto& o : j.at("pieces"))
    m.pieces.push_back(piece_from(o));
  m.properties = j.at("props").get<std::map<std::string, std::string>>();
  m.graph = j.at("graph").get<std::string>();
  return m;
}

json to_json(const epoch_report& r) {
  json sources = json::array(), state = json::array(), sinks = json::array(),
       pieces = json::array();
  for (const auto& s : r.sources) {
    json o{{"node", s.node},         {"name", s.name},
           {"desc", s.description},  {"rows", s.rows},
           {"et", to_json(s.event_times)}, {"from", s.start_offset},
           {"to", s.end_offset}};
    if (s.watermark_delay)
      o["delay"] = s.watermark_delay->count();
    sources.push_back(std::move(o));
  }
  for (const auto& s : r.state)
    state.push_back({{"node", s.node},
                     {"name", s.name},
                     {"total", s.rows_total},
                     {"updated", s.rows_updated},
                     {"removed", s.rows_removed},
                     {"dropped", s.rows_dropped_by_watermark},
                     {"memory", s.memory_used_bytes},
                     {"timers", s.timers_pending}});
  for (const auto& s : r.sinks)
    sinks.push_back({{"node", s.node}, {"name", s.name}, {"desc", s.description}, {"rows", s.rows}});
  for (const auto& p : r.pieces)
    pieces.push_back(to_json(p));
  return {{"task", r.task},
          {"epoch", r.epoch},
          {"sources", std::move(sources)},
          {"state", std::move(state)},
          {"sinks", std::move(sinks)},
          {"cp", r.checkpoint},
          {"pieces", std::move(pieces)},
          {"problem", r.checkpoint_problem},
          {"pause", r.pause.count()},
          {"align", r.alignment.count()}};
}

epoch_report report_from(const json& j) {
  epoch_report r;
  r.task = j.at("task").get<int>();
  r.epoch = j.at("epoch").get<std::int64_t>();
  for (const auto& o : j.at("sources")) {
    source_epoch_report s;
    s.node = o.at("node").get<int>();
    s.name = o.at("name").get<std::string>();
    s.description = o.at("desc").get<std::string>();
    s.rows = o.at("rows").get<std::uint64_t>();
    s.event_times = event_times_from(o.at("et"));
    if (o.contains("delay"))
      s.watermark_delay = duration{o.at("delay").get<std::int64_t>()};
    s.start_offset = o.at("from").get<std::string>();
    s.end_offset = o.at("to").get<std::string>();
    r.sources.push_back(std::move(s));
  }
  for (const auto& o : j.at("state")) {
    state_epoch_report s;
    s.node = o.at("node").get<int>();
    s.name = o.at("name").get<std::string>();
    s.rows_total = o.at("total").get<std::uint64_t>();
    s.rows_updated = o.at("updated").get<std::uint64_t>();
    s.rows_removed = o.at("removed").get<std::uint64_t>();
    s.rows_dropped_by_watermark = o.at("dropped").get<std::uint64_t>();
    s.memory_used_bytes = o.at("memory").get<std::uint64_t>();
    s.timers_pending = o.at("timers").get<std::uint64_t>();
    r.state.push_back(std::move(s));
  }
  for (const auto& o : j.at("sinks"))
    r.sinks.push_back({o.at("node").get<int>(), o.at("name").get<std::string>(),
                       o.at("desc").get<std::string>(), o.at("rows").get<std::uint64_t>()});
  r.checkpoint = j.at("cp").get<bool>();
  for (const auto& o : j.at("pieces"))
    r.pieces.push_back(piece_from(o));
  r.checkpoint_problem = j.at("problem").get<std::string>();
  r.pause = std::chrono::microseconds{j.at("pause").get<std::int64_t>()};
  r.alignment = std::chrono::microseconds{j.at("align").get<std::int64_t>()};
  return r;
}

} // namespace

std::string_view to_string(control_message::kind k) noexcept {
  return names[static_cast<std::size_t>(k)];
}

std::string encode_control(const control_message& m) {
  json j{{"m", std::string(to_string(m.what))}, {"t", m.task}};
  switch (m.what) {
    case kind::wire:
    case kind::start:
    case kind::cancel:
    case kind::done: break;
    case kind::commit:
    case kind::finishing: j["e"] = m.epoch; break;
    case kind::prepare:
      j["e"] = m.epoch;
      j["f"] = m.flag;
      j["s"] = m.step;
      j["x"] = m.text;
      j["a"] = m.wall_us;
      break;
    case kind::run:
      j["e"] = m.epoch;
      j["w"] = m.watermark_us;
      break;
    case kind::inject:
      j["e"] = m.epoch;
      j["f"] = m.flag;
      break;
    case kind::failed:
      j["c"] = m.code;
      j["x"] = m.text;
      break;
    case kind::ack:
      j["r"] = m.report ? to_json(*m.report) : json{};
      j["pieces"] = shipped_to_json(m.pieces);
      break;
    case kind::prepared:
      j["e"] = m.epoch;
      j["f"] = m.flag;
      j["x"] = m.text;
      break;
    case kind::final_position:
      j["x"] = m.text;
      j["b"] = json::binary(std::vector<std::uint8_t>(m.bytes.begin(), m.bytes.end()));
      break;
    case kind::job_ended: j["x"] = m.text; break;
    case kind::attempt: {
      j["e"] = m.epoch;
      j["f"] = m.flag;
      j["first"] = m.first_epoch;
      if (m.job_start_us)
        j["js"] = *m.job_start_us;
      if (m.meta)
        j["meta"] = to_json(*m.meta);
      j["pieces"] = shipped_to_json(m.pieces);
      j["n"] = m.nodes;
      j["tn"] = m.task_nodes;
      break;
    }
    case kind::completed:
      j["e"] = m.epoch;
      j["f"] = m.flag;
      break;
    case kind::removed: j["x"] = m.text; break;
    case kind::wm_report:
      j["c"] = m.code;
      j["w"] = m.watermark_us;
      break;
    case kind::wm_allow: j["w"] = m.watermark_us; break;
  }
  const auto cbor = json::to_cbor(j);
  return {cbor.begin(), cbor.end()};
}

result<control_message> decode_control(std::string_view bytes) {
  try {
    const auto j = json::from_cbor(bytes.begin(), bytes.end());
    const auto name = j.at("m").get<std::string>();
    control_message m;
    std::size_t k = 0;
    while (k < names.size() && names[k] != name)
      ++k;
    if (k == names.size())
      return make_error(error_code::malformed_frame,
                        "control message: unknown message '" + name.substr(0, 40) + "'");
    m.what = static_cast<kind>(k);
    m.task = j.at("t").get<int>();
    switch (m.what) {
      case kind::wire:
      case kind::start:
      case kind::cancel:
      case kind::done: break;
      case kind::commit:
      case kind::finishing: m.epoch = j.at("e").get<std::int64_t>(); break;
      case kind::prepare:
        m.epoch = j.at("e").get<std::int64_t>();
        m.flag = j.at("f").get<bool>();
        m.step = j.at("s").get<std::int32_t>();
        m.text = j.at("x").get<std::string>();
        m.wall_us = j.at("a").get<std::int64_t>();
        break;
      case kind::run:
        m.epoch = j.at("e").get<std::int64_t>();
        m.watermark_us = j.at("w").get<std::int64_t>();
        break;
      case kind::inject:
        m.epoch = j.at("e").get<std::int64_t>();
        m.flag = j.at("f").get<bool>();
        break;
      case kind::failed:
        m.code = j.at("c").get<int>();
        m.text = j.at("x").get<std::string>();
        break;
      case kind::ack:
        m.report = report_from(j.at("r"));
        m.pieces = shipped_from(j.at("pieces"));
        break;
      case kind::prepared:
        m.epoch = j.at("e").get<std::int64_t>();
        m.flag = j.at("f").get<bool>();
        m.text = j.at("x").get<std::string>();
        break;
      case kind::final_position: {
        m.text = j.at("x").get<std::string>();
        const auto& b = j.at("b").get_binary();
        m.bytes.assign(b.begin(), b.end());
        break;
      }
      case kind::job_ended: m.text = j.at("x").get<std::string>(); break;
      case kind::attempt:
        m.epoch = j.at("e").get<std::int64_t>();
        m.flag = j.at("f").get<bool>();
        m.first_epoch = j.at("first").get<std::int64_t>();
        if (j.contains("js"))
          m.job_start_us = j.at("js").get<std::int64_t>();
        if (j.contains("meta"))
          m.meta = meta_from(j.at("meta"));
        m.pieces = shipped_from(j.at("pieces"));
        m.nodes = j.at("n").get<std::vector<int>>();
        m.task_nodes = j.at("tn").get<std::vector<int>>();
        break;
      case kind::completed:
        m.epoch = j.at("e").get<std::int64_t>();
        m.flag = j.at("f").get<bool>();
        break;
      case kind::removed: m.text = j.at("x").get<std::string>(); break;
      case kind::wm_report:
        m.code = j.at("c").get<int>();
        if (!valid_alignment_state(m.code))
          return make_error(error_code::malformed_frame,
                            "control message: wmreport: no alignment state " +
                              std::to_string(m.code));
        m.watermark_us = j.at("w").get<std::int64_t>();
        break;
      case kind::wm_allow: m.watermark_us = j.at("w").get<std::int64_t>(); break;
    }
    return m;
  } catch (const json::exception& e) {
    return make_error(error_code::malformed_frame, std::string("control message: ") + e.what());
  }
}

} // namespace sluice
