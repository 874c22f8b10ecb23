#include "sources/kafka.hpp"

#include <nlohmann/json.hpp>
#include <xxhash.h>

#include <regex>

namespace sluice::sources::detail {

namespace logical_offset = sluice::kafka::logical_offset;
using sluice::kafka::topic_partition;

result<void> validate_kafka_source(const kafka_source_options& o) {
  auto bad = [](const std::string& what) {
    return make_error(error_code::invalid_option, "kafka source: " + what);
  };
  if (o.bootstrap_servers.empty())
    return bad("bootstrap_servers is empty");
  if (o.topics.empty() && o.topic_pattern.empty())
    return bad("give topics or a topic_pattern");
  for (const auto& t : o.topics)
    if (t.empty())
      return bad("a topic name is empty");
  if (!o.topic_pattern.empty()) {
    try {
      std::regex re{o.topic_pattern};
    } catch (const std::regex_error& e) {
      return bad("topic_pattern '" + o.topic_pattern + "' is not a valid regex: " + e.what());
    }
  }
  if (o.discovery_interval.count() < 0)
    return bad("discovery_interval is negative");
  if (o.connect_timeout.count() <= 0)
    return bad("connect_timeout must be positive");
  return {};
}

result<void> kafka_reader::open(const kafka_source_options& options, const source_context& ctx) {
  options_ = options;
  ctx_ = ctx;
  name_ = ctx.name;
  label_ = "kafka source '" + ctx.name + "' instance " + std::to_string(ctx.instance);
  auto c = sluice::kafka::consumer::open(
    {.bootstrap_servers = options.bootstrap_servers,
     .group_id = options.group_id.empty() ? "sluice-" + ctx.name : options.group_id,
     .read_committed = options.read_committed,
     .connect_timeout = options.connect_timeout,
     .report_end = options.bounded,
     .extra = options.properties,
     .label = label_});
  if (!c)
    return std::move(c).error();
  consumer_.emplace(std::move(*c));
  // Fail now, not at the first poll, when a listed topic does not exist.
  auto parts = consumer_->partitions(options_.topics, options_.topic_pattern, options_.connect_timeout);
  if (!parts)
    return std::move(parts).error();
  return {};
}

result<void> kafka_reader::restore(const std::vector<std::string>& positions) {
  std::map<topic_partition, std::int64_t> merged;
  for (const auto& text : positions) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("partitions") ||
        !j["partitions"].is_object())
      return make_error(error_code::io_error,
                        label_ + ": the checkpointed position is not valid: " + text.substr(0, 200));
    for (const auto& [key, value] : j["partitions"].items()) {
      const auto slash = key.rfind('/');
      if (slash == std::string::npos || !value.is_number_integer())
        return make_error(error_code::io_error,
                          label_ + ": bad partition entry '" + key + "' in the checkpoint");
      merged[{key.substr(0, slash), std::stoi(key.substr(slash + 1))}] = value.get<std::int64_t>();
    }
  }
  restored_ = std::move(merged);
  return {};
}

bool kafka_reader::mine(const topic_partition& tp) const {
  // Flink's rule: a topic's partitions go round-robin from a start instance given by the
  // topic's hash, so the partitions of many small topics do not all land on instance 0.
  const auto h = XXH64(tp.topic.data(), tp.topic.size(), 0);
  const auto start = static_cast<int>(h % static_cast<std::uint64_t>(ctx_.parallelism));
  return (start + tp.partition) % ctx_.parallelism == ctx_.instance;
}

result<std::int64_t> kafka_reader::start_offset(const topic_partition& tp, bool first) {
  using kind = kafka_start::kind;
  const auto timeout = options_.connect_timeout;
  auto resolve = [&](kind k) -> result<std::int64_t> {
    // Logical offsets are resolved now: a checkpoint must hold a number, or "latest" taken
    // again after a restart would skip what arrived in between.
    auto wm = consumer_->watermark_offsets(tp, timeout);
    if (!wm)
      return std::move(wm).error();
    return k == kind::latest ? wm->second : wm->first;
  };
  if (restored_) {
    if (auto it = restored_->find(tp); it != restored_->end())
      return it->second;
    return resolve(kind::earliest); // created after the checkpoint
  }
  if (!first)
    return resolve(kind::earliest); // discovered while running: read it all
  const auto& s = options_.start_position;
  switch (s.from) {
    case kind::earliest:
    case kind::latest:
      return resolve(s.from);
    case kind::offsets:
      if (auto it = s.offsets.find(tp); it != s.offsets.end())
        return it->second;
      return resolve(s.fallback);
    case kind::committed: {
      auto got = consumer_->committed({tp}, timeout);
      if (!got)
        return std::move(got).error();
      if (auto it = got->find(tp); it != got->end())
        return it->second;
      return resolve(s.fallback);
    }
    case kind::timestamp: {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        s.timestamp.time_since_epoch()).count();
      auto got = consumer_->offsets_for_time({tp}, ms, timeout);
      if (!got)
        return std::move(got).error();
      const auto off = got->at(tp);
      return off == logical_offset::end ? resolve(kind::latest) : result<std::int64_t>{off};
    }
  }
  return resolve(kind::earliest);
}

result<void> kafka_reader::discover(bool first) {
  auto parts = consumer_->partitions(options_.topics, options_.topic_pattern, options_.connect_timeout);
  if (!parts)
    return std::move(parts).error();
  std::vector<std::pair<topic_partition, std::int64_t>> fresh;
  for (const auto& tp : *parts) {
    if (!mine(tp) || next_.contains(tp))
      continue;
    auto off = start_offset(tp, first);
    if (!off)
      return std::move(off).error();
    fresh.emplace_back(tp, *off);
  }
  if (auto ok = consumer_->assign(fresh); !ok)
    return ok;
  for (const auto& [tp, off] : fresh) {
    next_[tp] = off;
    const int id = static_cast<int>(split_of_.size());
    split_of_[tp] = id;
    added_->push_back(id);
  }
  return {};
}

result<std::size_t> kafka_reader::poll(
  std::size_t max, const std::function<void(const sluice::kafka::message_view&, int)>& fn,
  std::vector<int>& added, std::vector<int>& ended) {
  added_ = &added;
  const auto now = ctx_.processing_clock->now();
  const bool first = !last_discovery_;
  if (first || (!options_.bounded && options_.discovery_interval.count() > 0 &&
                now - *last_discovery_ >= options_.discovery_interval)) {
    last_discovery_ = now;
    if (auto ok = discover(first); !ok)
      return std::move(ok).error();
  }
  topic_partition key;
  return consumer_->poll(max, [&](const sluice::kafka::message_view& m) {
    key.topic.assign(m.topic());
    key.partition = m.partition();
    auto it = next_.find(key);
    if (it == next_.end())
      return; // cannot happen: only assigned partitions deliver
    it->second = m.offset() + 1;
    fn(m, split_of_[key]);
  }, [&](const topic_partition& tp) {
    if (split_of_.contains(tp) && at_end_.insert(tp).second)
      ended.push_back(split_of_[tp]);
  });
}

bool kafka_reader::finished() const noexcept {
  return options_.bounded && last_discovery_ && at_end_.size() == next_.size();
}

std::string kafka_reader::position() const {
  nlohmann::json parts = nlohmann::json::object();
  for (const auto& [tp, off] : next_)
    parts[tp.to_string()] = off;
  return nlohmann::json{{"partitions", parts}}.dump();
}

void kafka_reader::remember(std::int64_t id) {
  if (options_.commit_offsets_on_checkpoint)
    pending_commits_[id] = next_;
}

void kafka_reader::commit(std::int64_t id) {
  auto it = pending_commits_.find(id);
  if (it == pending_commits_.end())
    return;
  std::vector<std::pair<topic_partition, std::int64_t>> offsets(it->second.begin(), it->second.end());
  if (!consumer_->commit(offsets))
    ++failed_commits_;
  last_completed_ = std::move(it->second);
  pending_commits_.erase(pending_commits_.begin(), std::next(it));
}

void kafka_reader::close() {
  if (consumer_ && !last_completed_.empty()) {
    // An asynchronous commit still in flight would be lost with the consumer.
    std::vector<std::pair<topic_partition, std::int64_t>> offsets(last_completed_.begin(),
                                                                  last_completed_.end());
    if (!consumer_->commit(offsets, true))
      ++failed_commits_;
  }
  consumer_.reset();
}

std::string kafka_reader::offset_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [tp, off] : next_)
    j[tp.topic][std::to_string(tp.partition)] = off;
  return j.dump();
}

std::string kafka_reader::location(const sluice::kafka::message_view& m) const {
  return "kafka " + std::string{m.topic()} + "/" + std::to_string(m.partition()) + "@" +
         std::to_string(m.offset());
}

} // namespace sluice::sources::detail
