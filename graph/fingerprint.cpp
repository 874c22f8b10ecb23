#include "sluice/graph/fingerprint.hpp"

#include <nlohmann/json.hpp>
#include <xxhash.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <set>

namespace sluice {

namespace {

std::string hex(std::uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

std::string partitioning_text(const partitioning& p) {
  switch (p.how) {
    case partitioning::mode::automatic: return "automatic";
    case partitioning::mode::forward: return "forward";
    case partitioning::mode::rebalance: return "rebalance";
    case partitioning::mode::broadcast: return "broadcast";
    case partitioning::mode::hash: return "hash(" + p.key_name + ": " + p.key_type.name + ")";
  }
  return "?";
}

/// Everything but the hash, in a fixed order: what the hash is taken over.
nlohmann::ordered_json contents(const job_fingerprint& f) {
  nlohmann::ordered_json j;
  j["format"] = job_fingerprint::format;
  j["max_key_groups"] = f.max_key_groups;
  auto& nodes = j["nodes"] = nlohmann::ordered_json::array();
  for (auto& n : f.nodes)
    nodes.push_back(nlohmann::ordered_json{{"name", n.name},
                                           {"kind", n.kind},
                                           {"kind_name", n.kind_name},
                                           {"description", n.description},
                                           {"inputs", n.inputs},
                                           {"outputs", n.outputs},
                                           {"state", n.state},
                                           {"parallelism", n.parallelism},
                                           {"max_parallelism", n.max_parallelism},
                                           {"chaining", n.chaining}});
  j["edges"] = f.edges;
  return j;
}

std::uint64_t hash_of(const job_fingerprint& f) {
  const auto text = contents(f).dump();
  return XXH64(text.data(), text.size(), 0);
}

std::string list(const std::vector<std::string>& v) {
  std::string out = "(";
  for (std::size_t i = 0; i < v.size(); ++i)
    out += (i ? ", " : "") + v[i];
  return out + ")";
}

std::string quoted_or_none(const std::string& s) { return s.empty() ? "none" : s; }

} // namespace

const node_fingerprint* job_fingerprint::find(std::string_view name) const noexcept {
  auto it = std::find_if(nodes.begin(), nodes.end(), [&](auto& n) { return n.name == name; });
  return it == nodes.end() ? nullptr : &*it;
}

std::string job_fingerprint::hash_text() const { return hex(hash); }

std::string job_fingerprint::to_json() const {
  auto j = contents(*this);
  j["hash"] = hash_text();
  return j.dump();
}

result<job_fingerprint> job_fingerprint::from_json(std::string_view text) {
  try {
    const auto j = nlohmann::json::parse(text);
    const int fmt = j.at("format").get<int>();
    if (fmt > format)
      return make_error(error_code::io_error, "job fingerprint format " + std::to_string(fmt) +
                                                " is newer than this version reads (" +
                                                std::to_string(format) + ")");
    job_fingerprint f;
    f.max_key_groups = j.at("max_key_groups").get<int>();
    for (auto& n : j.at("nodes")) {
      node_fingerprint x;
      x.name = n.at("name").get<std::string>();
      x.kind = n.at("kind").get<std::string>();
      x.kind_name = n.at("kind_name").get<std::string>();
      x.description = n.at("description").get<std::string>();
      x.inputs = n.at("inputs").get<std::vector<std::string>>();
      x.outputs = n.at("outputs").get<std::vector<std::string>>();
      x.state = n.at("state").get<std::string>();
      x.parallelism = n.at("parallelism").get<int>();
      x.max_parallelism = n.at("max_parallelism").get<int>();
      x.chaining = n.at("chaining").get<bool>();
      f.nodes.push_back(std::move(x));
    }
    f.edges = j.at("edges").get<std::vector<std::string>>();
    f.hash = hash_of(f);
    const auto stored = j.at("hash").get<std::string>();
    if (stored != f.hash_text())
      return make_error(error_code::io_error, "job fingerprint: hash " + stored +
                                                " does not match its contents (" +
                                                f.hash_text() + ")");
    return f;
  } catch (const std::exception& e) {
    return make_error(error_code::io_error, std::string{"unreadable job fingerprint: "} + e.what());
  }
}

job_fingerprint fingerprint_of(const graph& g, const physical_plan& plan) {
  job_fingerprint f;
  f.max_key_groups = plan.max_key_groups;
  const auto& nodes = g.nodes();
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const auto& n = nodes[i];
    node_fingerprint x;
    x.name = n.name;
    x.kind = std::string{to_string(n.kind)};
    x.kind_name = n.kind_name;
    x.description = n.description;
    for (auto& t : n.inputs)
      x.inputs.push_back(t.name);
    for (auto& p : n.outputs)
      x.outputs.push_back(p.name + ": " + p.type.name);
    x.state = n.state.describe();
    x.parallelism = i < plan.parallelism_of_node.size() ? plan.parallelism_of_node[i] : n.parallelism;
    x.max_parallelism = n.max_parallelism;
    x.chaining = n.chaining;
    f.nodes.push_back(std::move(x));
  }
  for (auto& e : g.edges())
    f.edges.push_back(g.node(e.from).name + ":" + std::to_string(e.from_port) + " -> " +
                      g.node(e.to).name + ":" + std::to_string(e.to_input) + " " +
                      partitioning_text(e.how));
  f.hash = hash_of(f);
  return f;
}

bool operator_difference::state_changed() const noexcept {
  return before && after && !before->state.empty() && !after->state.empty() &&
         before->state != after->state;
}

std::string operator_difference::text() const {
  if (!after)
    return "operator '" + name + "' (" + before->kind_name + ") is gone";
  if (!before)
    return "operator '" + name + "' (" + after->kind_name + ") is new";
  std::string out = "operator '" + name + "': ";
  for (std::size_t i = 0; i < changes.size(); ++i)
    out += (i ? "; " : "") + changes[i];
  return out;
}

std::vector<operator_difference> compare(const job_fingerprint& before, const job_fingerprint& after) {
  std::vector<operator_difference> out;
  for (auto& b : before.nodes) {
    const auto* a = after.find(b.name);
    operator_difference d{b.name, b, a ? std::optional<node_fingerprint>{*a} : std::nullopt, {}};
    if (!a) {
      out.push_back(std::move(d));
      continue;
    }
    auto change = [&](const char* what, const std::string& x, const std::string& y) {
      if (x != y)
        d.changes.push_back(std::string{what} + " " + x + " -> " + y);
    };
    change("kind", b.kind + " " + b.kind_name, a->kind + " " + a->kind_name);
    change("inputs", list(b.inputs), list(a->inputs));
    change("outputs", list(b.outputs), list(a->outputs));
    change("state", quoted_or_none(b.state), quoted_or_none(a->state));
    change("parallelism", std::to_string(b.parallelism), std::to_string(a->parallelism));
    change("max parallelism", std::to_string(b.max_parallelism), std::to_string(a->max_parallelism));
    change("chaining", b.chaining ? "on" : "off", a->chaining ? "on" : "off");
    change("description", "'" + b.description + "'", "'" + a->description + "'");
    if (!d.changes.empty())
      out.push_back(std::move(d));
  }
  for (auto& a : after.nodes)
    if (!before.find(a.name))
      out.push_back(operator_difference{a.name, std::nullopt, a, {}});
  return out;
}

std::vector<std::string> differences(const job_fingerprint& expected, const job_fingerprint& actual) {
  std::vector<std::string> out;
  for (auto& d : compare(expected, actual))
    out.push_back(d.text());
  const std::set<std::string> e(expected.edges.begin(), expected.edges.end());
  const std::set<std::string> a(actual.edges.begin(), actual.edges.end());
  for (auto& x : e)
    if (!a.count(x))
      out.push_back("edge " + x + " is gone");
  for (auto& x : a)
    if (!e.count(x))
      out.push_back("edge " + x + " is new");
  if (expected.max_key_groups != actual.max_key_groups)
    out.push_back("key groups " + std::to_string(expected.max_key_groups) + " -> " +
                  std::to_string(actual.max_key_groups));
  if (out.empty() && expected.hash != actual.hash) // the order of nodes or edges differs
    out.push_back("the same nodes and edges in another order");
  return out;
}

} // namespace sluice
