#include "sluice/sources/kafka.hpp"

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
  if (o.poll_interval.count() <= 0)
    return bad("poll_interval must be positive (got " + std::to_string(o.poll_interval.count()) +
               " us)");
  if (o.max_offsets_per_trigger && *o.max_offsets_per_trigger <= 0)
    return bad("max_offsets_per_trigger must be positive (got " +
               std::to_string(*o.max_offsets_per_trigger) + "); leave it unset for no limit");
  return {};
}

result<void> kafka_reader::open(const kafka_source_options& options, const source_context& ctx) {
  options_ = options;
  ctx_ = ctx;
  name_ = ctx.name;
  label_ = "kafka source '" + ctx.name + "' instance " + std::to_string(ctx.instance);
  if (auto ok = validate_kafka_source(options); !ok)
    return ok;
  trigger_mode_ = ctx.epochs.micro_batch();
  query_bounded_ =
    trigger_mode_ && (options.bounded || ctx.epochs.how == trigger::kind::available_now);
  const auto group = options.group_id.empty() ? "sluice-" + ctx.name : options.group_id;
  auto c = sluice::kafka::consumer::open(
    {.bootstrap_servers = options.bootstrap_servers,
     .group_id = group,
     .read_committed = options.read_committed,
     .connect_timeout = options.connect_timeout,
     // Micro-batch: a trigger's end offset may lie past the last record (a transaction
     // marker, aborted records); the end report says the partition got there.
     .report_end = options.bounded || trigger_mode_,
     .extra = options.properties,
     .label = label_,
     // A record arriving while the task waits out `poll_interval` has it polled at once.
     .on_arrival = ctx.wake});
  if (!c)
    return std::move(c).error();
  consumer_.emplace(std::move(*c));
  if (trigger_mode_) {
    auto o = sluice::kafka::consumer::open({.bootstrap_servers = options.bootstrap_servers,
                                            .group_id = group,
                                            .read_committed = options.read_committed,
                                            .connect_timeout = options.connect_timeout,
                                            .extra = options.properties,
                                            .label = label_ + " (offset reader)"});
    if (!o)
      return std::move(o).error();
    offsets_reader_.emplace(std::move(*o));
  }
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
    auto wm = lookup().watermark_offsets(tp, timeout);
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
      auto got = lookup().committed({tp}, timeout);
      if (!got)
        return std::move(got).error();
      if (auto it = got->find(tp); it != got->end())
        return it->second;
      return resolve(s.fallback);
    }
    case kind::timestamp: {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        s.timestamp.time_since_epoch()).count();
      auto got = lookup().offsets_for_time({tp}, ms, timeout);
      if (!got)
        return std::move(got).error();
      const auto off = got->at(tp);
      return off == logical_offset::end ? resolve(kind::latest) : result<std::int64_t>{off};
    }
  }
  return resolve(kind::earliest);
}

result<void> kafka_reader::discover(bool first) {
  auto parts = lookup().partitions(options_.topics, options_.topic_pattern, options_.connect_timeout);
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
    new_splits_.push_back(id);
  }
  return {};
}

result<std::size_t> kafka_reader::poll(
  std::size_t max, const std::function<void(const sluice::kafka::message_view&, int)>& fn,
  std::vector<int>& added, std::vector<int>& ended) {
  if (trigger_mode_) {
    added.insert(added.end(), new_splits_.begin(), new_splits_.end());
    new_splits_.clear();
    return poll_trigger(max, fn, ended);
  }
  const auto now = ctx_.processing_clock->now();
  const bool first = !last_discovery_;
  if (first || (!options_.bounded && options_.discovery_interval.count() > 0 &&
                now - *last_discovery_ >= options_.discovery_interval)) {
    last_discovery_ = now;
    if (auto ok = discover(first); !ok)
      return std::move(ok).error();
  }
  added.insert(added.end(), new_splits_.begin(), new_splits_.end());
  new_splits_.clear();
  topic_partition key;
  return consumer_->poll(max, [&](const sluice::kafka::message_view& m) {
    key.topic.assign(m.topic());
    key.partition = m.partition();
    auto it = next_.find(key);
    if (it == next_.end())
      return; // cannot happen: only assigned partitions deliver
    it->second = m.offset() + 1;
    fn(m, split_of_[key]);
  }, [&](const topic_partition& tp, std::int64_t) {
    if (split_of_.contains(tp) && at_end_.insert(tp).second)
      ended.push_back(split_of_[tp]);
  });
}

bool kafka_reader::finished() const noexcept {
  if (trigger_mode_) {
    if (!query_end_)
      return false;
    for (const auto& [tp, off] : next_)
      if (auto it = query_end_->find(tp); it != query_end_->end() && off < it->second)
        return false;
    return true;
  }
  return options_.bounded && last_discovery_ && at_end_.size() == next_.size();
}

// -- micro-batch triggers -------------------------------------------------------------------

result<void> kafka_reader::discover_for_trigger() {
  const auto now = ctx_.processing_clock->now();
  const bool first = !last_discovery_;
  // A bounded query (available_now) reads the partitions there at its start, as Spark's
  // end offsets taken at the first trigger name only those.
  if (!first && (query_bounded_ || options_.discovery_interval.count() == 0 ||
                 now - *last_discovery_ < options_.discovery_interval))
    return {};
  last_discovery_ = now;
  return discover(first);
}

result<trigger_plan> kafka_reader::plan_trigger(bool unlimited) {
  if (!trigger_mode_)
    return make_error(error_code::internal,
                      label_ + ": plan_trigger called, but the source was not opened under a "
                               "micro-batch trigger (source_context::epochs)");
  if (!trigger_end_.empty() && !trigger_read())
    return trigger_plan{true, offsets_json(trigger_end_)}; // the last trigger is not read yet
  if (auto ok = discover_for_trigger(); !ok)
    return std::move(ok).error();
  std::vector<topic_partition> assigned;
  for (const auto& [tp, off] : next_)
    assigned.push_back(tp);
  auto latest = lookup().end_offsets(assigned, options_.connect_timeout);
  if (!latest)
    return std::move(latest).error();
  if (query_bounded_ && !query_end_)
    query_end_ = *latest; // Spark: Trigger.AvailableNow takes the end at its first trigger
  partition_offsets until;
  for (const auto& [tp, off] : next_) {
    auto end = latest->contains(tp) ? latest->at(tp) : off;
    if (query_end_) {
      auto it = query_end_->find(tp);
      end = std::min(end, it == query_end_->end() ? off : it->second);
    }
    until[tp] = std::max(end, off); // never behind the position (a truncated partition)
  }
  if (!unlimited && options_.max_offsets_per_trigger)
    until = rate_limit(instance_share(*options_.max_offsets_per_trigger, ctx_.instance,
                                      ctx_.parallelism),
                       next_, until);
  bool available = false;
  for (const auto& [tp, end] : until)
    available = available || end > next_.at(tp);
  auto text = offsets_json(until);
  if (auto ok = start_trigger(std::move(until)); !ok)
    return std::move(ok).error();
  return trigger_plan{available, std::move(text)};
}

result<void> kafka_reader::replay_trigger(std::string_view end) {
  return replay({std::string{end}}, false);
}

result<void> kafka_reader::replay_trigger_all(const std::vector<std::string>& ends) {
  return replay(ends, true);
}

result<void> kafka_reader::replay(const std::vector<std::string>& ends, bool merged) {
  if (!trigger_mode_)
    return make_error(error_code::internal,
                      label_ + ": a planned micro-batch replayed, but the source was not opened "
                               "under a micro-batch trigger (source_context::epochs)");
  // The old instances' plans name disjoint partitions (each had its own); their union is
  // the batch's end.
  partition_offsets planned;
  for (const auto& text : ends) {
    auto one = parse_offsets_json(text, label_ + ": the planned end offsets in the offset log");
    if (!one)
      return std::move(one).error();
    for (const auto& [tp, off] : *one)
      if (auto [it, fresh] = planned.try_emplace(tp, off); !fresh && it->second != off)
        return make_error(error_code::io_error,
                          label_ + ": the offset log's plans disagree on the end of " +
                            tp.to_string() + " (" + std::to_string(it->second) + " and " +
                            std::to_string(off) + ")");
  }
  if (auto ok = discover_for_trigger(); !ok)
    return std::move(ok).error();
  partition_offsets fixed;
  for (const auto& [tp, off] : planned) {
    // After a change of parallelism another instance reads the partitions it owns now.
    if (merged && !mine(tp))
      continue;
    auto it = next_.find(tp);
    if (it == next_.end())
      return make_error(error_code::io_error,
                        label_ + ": the planned micro-batch reads " + tp.to_string() +
                          ", which this instance is not assigned now (was the topic deleted?)");
    if (off < it->second)
      return make_error(error_code::io_error,
                        label_ + ": the planned end " + std::to_string(off) + " of " +
                          tp.to_string() + " lies before the restored position " +
                          std::to_string(it->second));
    fixed[tp] = off;
  }
  for (const auto& [tp, off] : next_)
    fixed.try_emplace(tp, off); // assigned after the plan was made: nothing to read in it
  return start_trigger(std::move(fixed));
}

result<void> kafka_reader::start_trigger(partition_offsets ends) {
  trigger_end_ = std::move(ends);
  std::vector<topic_partition> pause;
  std::vector<std::pair<topic_partition, std::int64_t>> resume;
  for (const auto& [tp, off] : next_) {
    if (trigger_end_.at(tp) > off) {
      // Records past the last trigger's end were fetched and discarded: read on from here.
      if (paused_.erase(tp))
        resume.emplace_back(tp, off);
    } else if (paused_.insert(tp).second) {
      pause.push_back(tp);
    }
  }
  if (auto ok = consumer_->pause(pause); !ok)
    return ok;
  return consumer_->resume_at(resume, options_.connect_timeout);
}

bool kafka_reader::trigger_read() const noexcept {
  for (const auto& [tp, off] : next_)
    if (auto it = trigger_end_.find(tp); it != trigger_end_.end() && off < it->second)
      return false;
  return true;
}

result<std::size_t> kafka_reader::poll_trigger(
  std::size_t max, const std::function<void(const sluice::kafka::message_view&, int)>& fn,
  std::vector<int>& ended) {
  if (trigger_read())
    return std::size_t{0};
  std::vector<topic_partition> reached;
  // The partition got to its trigger's end at `off`: what lies between is no record for it.
  auto reach = [&](const topic_partition& tp, std::int64_t& pos, std::int64_t stop) {
    pos = std::max(pos, stop);
    reached.push_back(tp);
  };
  topic_partition key;
  auto n = consumer_->poll(
    max,
    [&](const sluice::kafka::message_view& m) {
      key.topic.assign(m.topic());
      key.partition = m.partition();
      auto it = next_.find(key);
      auto stop = trigger_end_.find(key);
      if (it == next_.end() || stop == trigger_end_.end() || m.offset() < it->second)
        return;
      if (it->second >= stop->second)
        return; // fetched before its pause took effect; read again after the next plan
      if (m.offset() >= stop->second) {
        reach(key, it->second, stop->second);
        return;
      }
      it->second = m.offset() + 1;
      fn(m, split_of_[key]);
      if (it->second >= stop->second)
        reach(key, it->second, stop->second);
    },
    [&](const topic_partition& tp, std::int64_t end) {
      auto it = next_.find(tp);
      auto stop = trigger_end_.find(tp);
      if (it != next_.end() && stop != trigger_end_.end() && it->second < stop->second &&
          end >= stop->second)
        reach(tp, it->second, stop->second);
    },
    std::chrono::ceil<std::chrono::milliseconds>(options_.poll_interval));
  if (!n)
    return n;
  std::vector<topic_partition> pause;
  for (const auto& tp : reached) {
    if (paused_.insert(tp).second)
      pause.push_back(tp); // stop fetching past the end; the next plan resumes it
    if (query_end_ && query_end_->contains(tp) && next_.at(tp) >= query_end_->at(tp) &&
        at_end_.insert(tp).second)
      ended.push_back(split_of_[tp]);
  }
  if (auto ok = consumer_->pause(pause); !ok)
    return std::move(ok).error();
  return n;
}

std::string kafka_reader::position() const {
  nlohmann::json parts = nlohmann::json::object();
  // Restored partitions this instance owns but has not assigned yet (no poll since the
  // restore) keep their restored offsets: a checkpoint without them would send the next
  // restore back to the earliest offset, under state that already counted those records.
  if (restored_)
    for (const auto& [tp, off] : *restored_)
      if (mine(tp) && !next_.contains(tp))
        parts[tp.to_string()] = off;
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
  offsets_reader_.reset();
}

std::string kafka_reader::offset_json() const { return offsets_json(next_); }

std::string kafka_reader::location(const sluice::kafka::message_view& m) const {
  return "kafka " + std::string{m.topic()} + "/" + std::to_string(m.partition()) + "@" +
         std::to_string(m.offset());
}

} // namespace sluice::sources::detail
