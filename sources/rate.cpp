#include "sluice/sources/rate.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <utility>

namespace sluice::sources {

namespace {

constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();

/// Floor division: the wall clock may read before the epoch (a manual clock does not).
std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  const auto q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

std::chrono::nanoseconds wait_ms(std::int64_t ms) {
  // A manual clock moves in jumps: a wait is re-checked at least every 100 ms of real time.
  return std::chrono::milliseconds{std::clamp<std::int64_t>(ms, 1, 100)};
}

error bad_option(const std::string& what) { return make_error(error_code::invalid_option, what); }

std::optional<std::int64_t> parse_int(std::string_view text) {
  try {
    std::size_t used = 0;
    const std::string s{text};
    const auto v = std::stoll(s, &used);
    if (used != s.size())
      return std::nullopt;
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

} // namespace

// -- helpers ------------------------------------------------------------------------------

namespace rate_detail {

std::int64_t value_at_second(std::int64_t seconds, std::int64_t rows_per_second,
                             std::int64_t ramp_up_seconds) noexcept {
  // Spark's example: ramp_up 4 s, 10 rows/s: the speed grows by 10 / (4 + 1) = 2 each
  // second (0 2 4 6 8, then 10), so the ends are 0 2 6 12 20 30 40. Halving the even factor
  // first keeps the product from overflowing, as Spark does.
  const auto delta = rows_per_second / (ramp_up_seconds + 1);
  if (seconds <= ramp_up_seconds) {
    if (seconds % 2 == 1)
      return (seconds + 1) / 2 * delta * seconds;
    return seconds / 2 * delta * (seconds + 1);
  }
  const auto ramp = value_at_second(ramp_up_seconds, rows_per_second, ramp_up_seconds);
  return ramp + (seconds - ramp_up_seconds) * rows_per_second;
}

strided_range::strided_range(std::int64_t begin, std::int64_t end, int partitions, int instance,
                             int parallelism) noexcept
  : begin_(begin), end_(end), partitions_(static_cast<std::uint64_t>(partitions)),
    instance_(static_cast<std::uint64_t>(instance)),
    parallelism_(static_cast<std::uint64_t>(parallelism)) {}

std::optional<std::int64_t> strided_range::peek() noexcept {
  const auto count = static_cast<std::uint64_t>(end_) - static_cast<std::uint64_t>(begin_);
  if (instance_ >= partitions_ || next_ >= count) {
    next_ = count;
    return std::nullopt;
  }
  auto block = next_ / partitions_;
  auto p = next_ % partitions_;
  // The first partition at or after p that this instance owns (p % parallelism == instance).
  p += (instance_ + parallelism_ - p % parallelism_) % parallelism_;
  if (p >= partitions_) {
    ++block;
    p = instance_;
  }
  const auto off = block * partitions_ + p;
  if (off >= count) {
    next_ = count;
    return std::nullopt;
  }
  next_ = off;
  return begin_ + static_cast<std::int64_t>(off);
}

void strided_range::seek(std::int64_t value) noexcept {
  const auto count = static_cast<std::uint64_t>(end_) - static_cast<std::uint64_t>(begin_);
  if (value <= begin_)
    next_ = 0;
  else
    next_ = std::min(count, static_cast<std::uint64_t>(value) - static_cast<std::uint64_t>(begin_));
}

std::int64_t rate_timeline::creation_ms(std::int64_t proposed) {
  std::lock_guard lock{mutex_};
  if (!creation_ms_)
    creation_ms_ = proposed;
  return *creation_ms_;
}

std::int64_t rate_timeline::creation_for_start(std::int64_t job_start) {
  std::lock_guard lock{mutex_};
  if (job_start_ != job_start) { // a new run of the job: its start is the creation time
    job_start_ = job_start;
    creation_ms_ = job_start;
    ends_.clear();
  }
  return *creation_ms_;
}

void rate_timeline::restore_creation_ms(std::int64_t creation) {
  std::lock_guard lock{mutex_};
  if (creation_ms_ != creation)
    ends_.clear(); // seconds of another creation time
  creation_ms_ = creation;
}

std::int64_t rate_timeline::end_second(std::int64_t start, std::int64_t proposed) {
  std::lock_guard lock{mutex_};
  if (auto it = ends_.find(start); it != ends_.end())
    return it->second;
  if (proposed > start) // an empty trigger fixes nothing: the next one plans anew
    ends_.emplace(start, proposed);
  return proposed;
}

} // namespace rate_detail

// -- rate ---------------------------------------------------------------------------------

std::string rate::describe() const {
  return "rate(rows_per_second=" + std::to_string(options.rows_per_second) +
         ", ramp_up_time=" + std::to_string(options.ramp_up_time.count()) + "s, num_partitions=" +
         (options.num_partitions ? std::to_string(*options.num_partitions) : "default") + ")";
}

result<void> rate::validate() const {
  const auto& o = options;
  if (o.rows_per_second <= 0)
    return bad_option("rate: invalid value " + std::to_string(o.rows_per_second) +
                      ": rows_per_second (Spark's rowsPerSecond) must be positive");
  if (o.ramp_up_time.count() < 0)
    return bad_option("rate: invalid value " + std::to_string(o.ramp_up_time.count()) +
                      "s: ramp_up_time (Spark's rampUpTime) must not be negative");
  if (o.num_partitions && *o.num_partitions <= 0)
    return bad_option("rate: invalid value " + std::to_string(*o.num_partitions) +
                      ": num_partitions (Spark's numPartitions) must be positive");
  const auto max_seconds = int64_max / o.rows_per_second;
  if (o.ramp_up_time.count() > max_seconds)
    return bad_option("rate: integer overflow: with rows_per_second=" +
                      std::to_string(o.rows_per_second) + " the largest offset is " +
                      std::to_string(max_seconds) + " s, but ramp_up_time is " +
                      std::to_string(o.ramp_up_time.count()) + " s");
  return {};
}

result<void> rate_source::open(const source_context& ctx) {
  if (auto ok = rate{opts_}.validate(); !ok)
    return ok;
  clock_ = ctx.processing_clock;
  label_ = "rate source '" + ctx.name + "'";
  instance_ = ctx.instance;
  parallelism_ = ctx.parallelism;
  partitions_ = opts_.num_partitions.value_or(ctx.parallelism);
  micro_batch_ = ctx.epochs.micro_batch();
  max_seconds_ = int64_max / opts_.rows_per_second;
  last_time_ms_ = std::numeric_limits<std::int64_t>::min();
  // Spark creates the source once, on the driver: one creation time for every partition.
  // The job's start (the same on every node) is it, and it wins over what this process's
  // timeline held from an earlier attempt (node 0 restarted: a new start for every node).
  // Outside the runtime, the first instance's clock, shared with its siblings through the
  // descriptor's timeline.
  if (ctx.job_start) {
    creation_ms_ =
      timeline_->creation_for_start(floor_div(ctx.job_start->time_since_epoch().count(), 1000));
  } else {
    creation_ms_ = timeline_->creation_ms(now_ms());
  }
  last_time_ms_ = std::max(last_time_ms_, creation_ms_);
  if (ctx.epochs.how == trigger::kind::available_now)
    available_now_ = -1; // fixed at the first plan
  start_ = end_ = 0;
  const auto v0 = rate_detail::value_at_second(0, opts_.rows_per_second, opts_.ramp_up_time.count());
  range_ = rate_detail::strided_range(v0, v0, partitions_, instance_, parallelism_);
  return {};
}

/// Spark's `lastTimeMs`: the wall clock in ms at the processing clock's now, never going back.
std::int64_t rate_source::now_ms() const {
  const auto wall = clock_->wall_time(clock_->now()).time_since_epoch().count();
  return std::max(last_time_ms_, floor_div(wall, 1000));
}

result<void> rate_source::check_second(std::int64_t second) const {
  if (second > max_seconds_)
    return make_error(error_code::invalid_option,
                      label_ + ": integer overflow: with rows_per_second=" +
                        std::to_string(opts_.rows_per_second) + " the largest offset is " +
                        std::to_string(max_seconds_) + " s, but it is " +
                        std::to_string(second) + " s now");
  return {};
}

result<void> rate_source::start_range(std::int64_t start, std::int64_t end) {
  if (auto ok = check_second(end); !ok)
    return ok;
  const auto ramp = opts_.ramp_up_time.count();
  const auto first = rate_detail::value_at_second(start, opts_.rows_per_second, ramp);
  const auto last = rate_detail::value_at_second(end, opts_.rows_per_second, ramp);
  start_ = start;
  end_ = end;
  range_ = rate_detail::strided_range(first, last, partitions_, instance_, parallelism_);
  // Spark's relativeMsPerValue: the batch's milliseconds spread evenly over its values.
  ms_per_value_ = last > first ? static_cast<double>((end - start) * 1000) /
                                   static_cast<double>(last - first)
                               : 0.0;
  return {};
}

result<poll_result> rate_source::poll(source_output<rate_row>& out, std::size_t max) {
  std::int64_t now = 0;
  if (!micro_batch_) {
    now = now_ms();
    last_time_ms_ = now;
  } else if (!in_trigger_) {
    return poll_result::idle(std::chrono::milliseconds{1}); // only a planned trigger reads
  }
  const auto local_start = creation_ms_ + start_ * 1000;
  for (std::size_t n = 0; n < max;) {
    auto v = range_.peek();
    if (!v) {
      if (micro_batch_) {
        in_trigger_ = false; // the trigger's rows are read
        return poll_result::idle(std::chrono::milliseconds{1});
      }
      // Continuous: the next second's rows, once its first instant has come.
      if (creation_ms_ + end_ * 1000 > now)
        return poll_result::idle(wait_ms(creation_ms_ + end_ * 1000 - now));
      if (auto ok = start_range(end_, end_ + 1); !ok)
        return std::move(ok).error();
      return poll_result::more();
    }
    // Spark: round((value - rangeStart) * relativeMsPerValue) + the batch's start time.
    const auto rel = std::llround(static_cast<double>(*v - range_.begin()) * ms_per_value_);
    const auto ms = local_start + rel;
    if (!micro_batch_ && ms > now)
      return poll_result::idle(wait_ms(ms - now)); // continuous: a row is due at its time
    out.records.push_back(rate_row{event_time{std::chrono::milliseconds{ms}}, *v});
    range_.advance();
    ++n;
  }
  if (micro_batch_ && !range_.peek()) {
    in_trigger_ = false;
    return poll_result::idle(std::chrono::milliseconds{1});
  }
  return poll_result::more();
}

void rate_source::trigger_time(event_time wall) {
  trigger_ms_ = floor_div(wall.time_since_epoch().count(), 1000);
}

result<trigger_plan> rate_source::plan_trigger(bool /*unlimited*/, std::uint64_t /*max_records*/) {
  // Spark's rate source has no read limit: every trigger reads up to the latest offset.
  if (in_trigger_ && range_.peek())
    return trigger_plan{true, std::to_string(end_)}; // asked again: the same input
  in_trigger_ = false;
  const auto start = end_;
  // The coordinator's time when it asked, if it said: Spark's driver reads its clock once.
  last_time_ms_ = trigger_ms_ ? std::max(last_time_ms_, *trigger_ms_) : now_ms();
  trigger_ms_.reset();
  // Spark's latestOffset: whole seconds since creation, not behind the last batch's end.
  auto latest = std::max(start, (last_time_ms_ - creation_ms_) / 1000);
  if (available_now_) {
    // Spark wraps the source for Trigger.AvailableNow: the latest offset at the start.
    if (*available_now_ < 0)
      available_now_ = timeline_->end_second(start, latest);
    latest = std::max(start, *available_now_);
  } else {
    latest = timeline_->end_second(start, latest);
  }
  const bool first = std::exchange(first_batch_, false);
  if (latest <= start && !first)
    return trigger_plan{false, std::to_string(start)};
  if (auto ok = start_range(start, latest); !ok)
    return std::move(ok).error();
  in_trigger_ = true;
  return trigger_plan{true, std::to_string(latest)};
}

result<bool> rate_source::begin_trigger(bool unlimited) {
  auto plan = plan_trigger(unlimited, 0);
  if (!plan)
    return std::move(plan).error();
  return plan->available;
}

result<void> rate_source::replay_trigger(std::string_view end) {
  const auto e = parse_int(end);
  if (!e)
    return make_error(error_code::io_error,
                      label_ + ": bad planned end '" + std::string{end} + "' in the offset log");
  first_batch_ = false;
  if (range_.peek() && end_ == *e) {
    in_trigger_ = true; // restored in the middle of this very batch: read on from there
    return {};
  }
  const auto start = end_;
  if (*e < start)
    return make_error(error_code::io_error,
                      label_ + ": the planned end " + std::to_string(*e) +
                        " s lies before the restored position " + std::to_string(start) + " s");
  if (auto ok = start_range(start, *e); !ok)
    return ok;
  // Spark's "fix lastTimeMs for recovery": offsets never go back behind a logged batch.
  last_time_ms_ = std::max(last_time_ms_, creation_ms_ + *e * 1000);
  in_trigger_ = true;
  return {};
}

std::string rate_source::offset() const { return std::to_string(end_); }

std::optional<std::string> rate_source::position() const {
  nlohmann::json j{{"creation_ms", creation_ms_}, {"start", start_},         {"end", end_},
                   {"next", range_.cursor()},     {"partitions", partitions_},
                   {"parallelism", parallelism_}, {"last_time_ms", last_time_ms_},
                   {"instance", instance_}};
  return j.dump();
}

result<void> rate_source::seek(std::string_view position) {
  auto j = nlohmann::json::parse(position, nullptr, false);
  auto bad = [&] {
    return make_error(error_code::io_error,
                      label_ + ": bad checkpointed position '" + std::string{position} + "'");
  };
  if (!j.is_object())
    return bad();
  std::int64_t creation = 0, start = 0, end = 0, next = 0, last = 0;
  int partitions = 0, parallelism = 0;
  try {
    creation = j.at("creation_ms").get<std::int64_t>();
    start = j.at("start").get<std::int64_t>();
    end = j.at("end").get<std::int64_t>();
    next = j.at("next").get<std::int64_t>();
    last = j.at("last_time_ms").get<std::int64_t>();
    partitions = j.at("partitions").get<int>();
    parallelism = j.at("parallelism").get<int>();
  } catch (const std::exception&) {
    return bad();
  }
  if (start < 0 || end < start)
    return bad();
  if (auto ok = start_range(start, end); !ok)
    return ok;
  const bool partly_read = next > range_.begin() && next < range_.end();
  if (partly_read && (partitions != partitions_ || parallelism != parallelism_))
    return make_error(error_code::invalid_option,
                      label_ + ": the checkpoint was taken in the middle of seconds " +
                        std::to_string(start) + ".." + std::to_string(end) + " with " +
                        std::to_string(partitions) + " partitions over " +
                        std::to_string(parallelism) + " instances, now " +
                        std::to_string(partitions_) + " over " + std::to_string(parallelism_) +
                        ": restore with the same num_partitions and parallelism");
  range_.seek(next);
  first_batch_ = false;
  creation_ms_ = creation;
  timeline_->restore_creation_ms(creation);
  last_time_ms_ = std::max({last, creation + end * 1000, now_ms()});
  return {};
}

namespace {

/// With `restores_from_all_instances`: this instance's own old position when the checkpoint
/// was taken at this parallelism; otherwise, when every old instance stood at the same place
/// between batches (`boundary` says where, as text), that place; else an error.
template <class Boundary>
result<std::string> pick_position(const std::vector<std::string>& positions, int instance,
                                  int parallelism, const std::string& label, Boundary boundary) {
  std::optional<std::string> common;
  bool uniform = true;
  for (const auto& p : positions) {
    auto j = nlohmann::json::parse(p, nullptr, false);
    if (!j.is_object() || !j.contains("instance") || !j.contains("parallelism"))
      return make_error(error_code::io_error,
                        label + ": bad checkpointed position '" + p + "'");
    if (j["parallelism"] == parallelism && j["instance"] == instance)
      return p;
    auto b = boundary(j);
    if (!b || (common && *common != *b))
      uniform = false;
    else
      common = b;
  }
  if (!common || !uniform)
    return make_error(error_code::restore_conflict,
                      label + ": the checkpoint was taken in the middle of a batch or second (its "
                              "instances stood at different places): restore it at the "
                              "parallelism it was taken at");
  return *common;
}


/// Replays a trigger logged by every old instance: they planned it together, so their ends
/// must agree; `what` names the end in the error.
result<void> replay_agreed_end(source_base& src, const std::vector<std::string>& ends,
                               const std::string& label, const char* what) {
  if (ends.empty() || std::adjacent_find(ends.begin(), ends.end(), std::not_equal_to<>{}) !=
                        ends.end())
    return make_error(error_code::io_error,
                      label + ": the logged plans of the old instances do not agree on one " +
                        what);
  return src.replay_trigger(ends.front());
}

} // namespace

result<void> rate_source::seek_all(const std::vector<std::string>& positions) {
  if (positions.empty())
    return {};
  auto pos = pick_position(
    positions, instance_, parallelism_, label_,
    [this](const nlohmann::json& j) -> std::optional<std::string> {
      try {
        const auto end = j.at("end").get<std::int64_t>();
        if (end < 0 || end > max_seconds_)
          return std::nullopt;
        const auto ramp = opts_.ramp_up_time.count();
        if (j.at("next").get<std::int64_t>() !=
            rate_detail::value_at_second(end, opts_.rows_per_second, ramp))
          return std::nullopt; // between two values of a second
        // Every instance at the end of the same range: that range, read, for this layout.
        auto k = j;
        k["start"] = end;
        k["instance"] = instance_;
        k["parallelism"] = parallelism_;
        k["partitions"] = partitions_;
        k["last_time_ms"] = 0; // restored from the clock and the end
        return k.dump();
      } catch (const std::exception&) {
        return std::nullopt;
      }
    });
  if (!pos)
    return std::move(pos).error();
  return seek(*pos);
}

result<void> rate_source::replay_trigger_all(const std::vector<std::string>& ends) {
  return replay_agreed_end(*this, ends, label_, "end second");
}

// -- rate_micro_batch ---------------------------------------------------------------------

std::string rate_micro_batch::describe() const {
  return "rate_micro_batch(rows_per_batch=" + std::to_string(options.rows_per_batch) +
         ", num_partitions=" +
         (options.num_partitions ? std::to_string(*options.num_partitions) : "default") +
         ", start_timestamp=" + std::to_string(options.start_timestamp.time_since_epoch().count()) +
         "us, advance_millis_per_batch=" + std::to_string(options.advance_millis_per_batch.count()) +
         "ms)";
}

result<void> rate_micro_batch::validate() const {
  const auto& o = options;
  if (o.rows_per_batch <= 0)
    return bad_option("rate_micro_batch: invalid value " + std::to_string(o.rows_per_batch) +
                      ": rows_per_batch (Spark's rowsPerBatch) must be positive");
  if (o.num_partitions && *o.num_partitions <= 0)
    return bad_option("rate_micro_batch: invalid value " + std::to_string(*o.num_partitions) +
                      ": num_partitions (Spark's numPartitions) must be positive");
  if (o.start_timestamp.time_since_epoch().count() < 0)
    return bad_option("rate_micro_batch: invalid value " +
                      std::to_string(o.start_timestamp.time_since_epoch().count()) +
                      "us: start_timestamp (Spark's startTimestamp) must not be before 1970");
  if (o.advance_millis_per_batch.count() < 0 ||
      o.advance_millis_per_batch.count() > std::numeric_limits<std::int32_t>::max())
    return bad_option("rate_micro_batch: invalid value " +
                      std::to_string(o.advance_millis_per_batch.count()) +
                      "ms: advance_millis_per_batch (Spark's advanceMillisPerBatch) must be "
                      "between 0 and 2147483647");
  return {};
}

result<void> rate_micro_batch_source::open(const source_context& ctx) {
  if (auto ok = rate_micro_batch{opts_}.validate(); !ok)
    return ok;
  label_ = "rate_micro_batch source '" + ctx.name + "'";
  if (!ctx.epochs.micro_batch())
    return make_error(error_code::invalid_option,
                      label_ + ": reads under micro-batch triggers only (Spark: continuous mode "
                               "is not supported); use sources::rate under a continuous trigger");
  instance_ = ctx.instance;
  parallelism_ = ctx.parallelism;
  partitions_ = opts_.num_partitions.value_or(ctx.parallelism);
  available_now_ = ctx.epochs.how == trigger::kind::available_now;
  at_ = {0, opts_.start_timestamp.time_since_epoch().count()};
  return {};
}

/// Spark's `latestOffset`: the next `rows_per_batch` values, the timestamp one advance on.
auto rate_micro_batch_source::next_offset(const spark_offset& from) const -> result<spark_offset> {
  spark_offset end;
  if (__builtin_add_overflow(from.offset, opts_.rows_per_batch, &end.offset))
    end.offset = int64_max; // Spark: min(start + rowsPerBatch, Long.MaxValue)
  const auto advance_us = std::chrono::duration_cast<duration>(opts_.advance_millis_per_batch);
  if (__builtin_add_overflow(from.timestamp_us, advance_us.count(), &end.timestamp_us))
    return make_error(error_code::invalid_option,
                      label_ + ": the batch after offset " + std::to_string(from.offset) +
                        " would be stamped past the end of the time line");
  return end;
}

std::string rate_micro_batch_source::encode(const spark_offset& o) {
  return nlohmann::json{{"offset", o.offset}, {"timestamp_us", o.timestamp_us}}.dump();
}

auto rate_micro_batch_source::decode(std::string_view text, const char* what) const
  -> result<spark_offset> {
  auto j = nlohmann::json::parse(text, nullptr, false);
  spark_offset o;
  try {
    o.offset = j.at("offset").get<std::int64_t>();
    o.timestamp_us = j.at("timestamp_us").get<std::int64_t>();
  } catch (const std::exception&) {
    return make_error(error_code::io_error,
                      label_ + ": bad " + what + " '" + std::string{text} + "'");
  }
  return o;
}

result<trigger_plan> rate_micro_batch_source::plan_trigger(bool /*unlimited*/,
                                                           std::uint64_t /*max_records*/) {
  if (end_ && range_.peek())
    return trigger_plan{true, encode(*end_)}; // asked again: the same input
  end_.reset();
  spark_offset end;
  if (available_now_) {
    // Spark: the end of the first batch planned is where Trigger.AvailableNow stops.
    if (!stop_at_) {
      auto next = next_offset(at_);
      if (!next)
        return std::move(next).error();
      stop_at_ = *next;
    }
    end = *stop_at_;
  } else {
    auto next = next_offset(at_);
    if (!next)
      return std::move(next).error();
    end = *next;
  }
  if (end.offset <= at_.offset)
    return trigger_plan{false, encode(at_)};
  end_ = end;
  range_ = rate_detail::strided_range(at_.offset, end.offset, partitions_, instance_, parallelism_);
  return trigger_plan{true, encode(end)};
}

result<bool> rate_micro_batch_source::begin_trigger(bool unlimited) {
  auto plan = plan_trigger(unlimited, 0);
  if (!plan)
    return std::move(plan).error();
  return plan->available;
}

result<void> rate_micro_batch_source::replay_trigger(std::string_view text) {
  auto end = decode(text, "planned end in the offset log");
  if (!end)
    return std::move(end).error();
  if (end_) {
    // Restored in the middle of a batch: only that batch can be replayed.
    if (end_->offset != end->offset || end_->timestamp_us != end->timestamp_us)
      return make_error(error_code::io_error, label_ + ": the planned end " + std::string{text} +
                                                " is not the end of the restored batch " +
                                                encode(*end_));
    return {};
  }
  if (end->offset < at_.offset)
    return make_error(error_code::io_error,
                      label_ + ": the planned end " + std::string{text} +
                        " lies before the restored position " + encode(at_));
  end_ = *end;
  range_ = rate_detail::strided_range(at_.offset, end->offset, partitions_, instance_, parallelism_);
  return {};
}

result<poll_result> rate_micro_batch_source::poll(source_output<rate_row>& out, std::size_t max) {
  if (!end_)
    return poll_result::idle(std::chrono::milliseconds{1}); // only a planned trigger reads
  // Spark stamps every row of a batch with the timestamp of the batch's start offset.
  const event_time stamp{duration{at_.timestamp_us}};
  for (std::size_t n = 0; n < max; ++n) {
    auto v = range_.peek();
    if (!v)
      break;
    out.records.push_back(rate_row{stamp, *v});
    range_.advance();
  }
  if (range_.peek())
    return poll_result::more();
  at_ = *end_; // the batch is read
  end_.reset();
  return poll_result::idle(std::chrono::milliseconds{1});
}

std::string rate_micro_batch_source::offset() const {
  return nlohmann::json{{"offset", at_.offset},
                        {"timestamp", floor_div(at_.timestamp_us, 1000)}}
    .dump();
}

std::optional<std::string> rate_micro_batch_source::position() const {
  nlohmann::json j{{"offset", at_.offset},
                   {"timestamp_us", at_.timestamp_us},
                   {"partitions", partitions_},
                   {"parallelism", parallelism_},
                   {"instance", instance_}};
  if (end_) {
    j["end_offset"] = end_->offset;
    j["end_timestamp_us"] = end_->timestamp_us;
    j["next"] = range_.cursor();
  }
  return j.dump();
}

result<void> rate_micro_batch_source::seek(std::string_view position) {
  auto at = decode(position, "checkpointed position");
  if (!at)
    return std::move(at).error();
  at_ = *at;
  end_.reset();
  auto j = nlohmann::json::parse(position, nullptr, false);
  if (j.contains("end_offset")) {
    try {
      spark_offset end{j.at("end_offset").get<std::int64_t>(),
                       j.at("end_timestamp_us").get<std::int64_t>()};
      const auto next = j.at("next").get<std::int64_t>();
      if (j.at("partitions").get<int>() != partitions_ ||
          j.at("parallelism").get<int>() != parallelism_)
        return make_error(error_code::invalid_option,
                          label_ + ": the checkpoint was taken in the middle of a batch at "
                                   "another num_partitions or parallelism: restore with the same");
      end_ = end;
      range_ =
        rate_detail::strided_range(at_.offset, end.offset, partitions_, instance_, parallelism_);
      range_.seek(next);
    } catch (const std::exception&) {
      return make_error(error_code::io_error,
                        label_ + ": bad checkpointed position '" + std::string{position} + "'");
    }
  }
  return {};
}

} // namespace sluice::sources

namespace sluice::sources {

result<void> rate_micro_batch_source::seek_all(const std::vector<std::string>& positions) {
  if (positions.empty())
    return {};
  auto pos = pick_position(positions, instance_, parallelism_, label_,
                           [](const nlohmann::json& j) -> std::optional<std::string> {
                             if (j.contains("end_offset") || !j.contains("offset") ||
                                 !j.contains("timestamp_us"))
                               return std::nullopt; // in the middle of a batch
                             return nlohmann::json{{"offset", j["offset"]},
                                                   {"timestamp_us", j["timestamp_us"]}}
                               .dump();
                           });
  if (!pos)
    return std::move(pos).error();
  return seek(*pos);
}

result<void> rate_micro_batch_source::replay_trigger_all(const std::vector<std::string>& ends) {
  return replay_agreed_end(*this, ends, label_, "batch end");
}

} // namespace sluice::sources
