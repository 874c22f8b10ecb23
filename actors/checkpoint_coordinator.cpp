#include "sluice/actors/checkpoint_coordinator.hpp"

#include "sluice/core/codec/time_format.hpp"

#include <algorithm>
#include <cstdio>

namespace sluice {

std::string iso_millis(event_time t) {
  const auto secs = std::chrono::floor<std::chrono::seconds>(t);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - secs).count();
  auto text = codec::format_iso8601(secs);
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(ms));
  text.pop_back(); // the 'Z'
  return text + frac;
}

checkpoint_coordinator::checkpoint_coordinator(std::shared_ptr<checkpoint_store> store,
                                               checkpoint_options options, std::string job,
                                               int max_key_groups)
  : store_(std::move(store)), options_(std::move(options)), job_(std::move(job)),
    max_key_groups_(max_key_groups) {}

bool checkpoint_coordinator::due(clock::time_point now) const {
  const auto at = next_due();
  return at && now >= *at;
}

std::optional<clock::time_point> checkpoint_coordinator::next_due() const {
  if (!store_ || !in_flight_.empty())
    return std::nullopt;
  // `interval` counts from a start (or the run's), `min_pause` from an end: the rule of
  // checkpoint_options::due.
  auto from = last_started_;
  if (run_started_ && (!from || *from < *run_started_))
    from = run_started_;
  auto at = from ? *from + options_.interval : clock::time_point::min();
  if (last_done_)
    at = std::max(at, *last_done_ + options_.min_pause);
  return at;
}

void checkpoint_coordinator::begin(std::int64_t id, clock::time_point now) {
  in_flight_[id] = now;
  last_started_ = now;
}

std::optional<checkpoint_failure> checkpoint_coordinator::expire(clock::time_point now) {
  const auto timeout = options_.timeout;
  if (in_flight_.empty() || timeout.count() <= 0)
    return std::nullopt;
  const auto [id, began] = *in_flight_.begin();
  if (now - began < timeout)
    return std::nullopt;
  expired_.insert(id);
  in_flight_.erase(id);
  last_done_ = now;
  return checkpoint_failure{id, "expired: not complete after " + std::to_string(timeout.count()) +
                                  " ms (checkpoint timeout)"};
}

std::optional<error> checkpoint_coordinator::count_failure(const checkpoint_failure& f) {
  if (++failed_in_a_row_ <= options_.tolerable_failures)
    return std::nullopt;
  return make_error(error_code::checkpoint_failed,
                    "checkpoint " + std::to_string(f.id) + " failed: " + f.why + " (" +
                      std::to_string(failed_in_a_row_) + " checkpoint failures in a row)");
}

checkpoint_coordinator::outcome
checkpoint_coordinator::epoch_ended(std::int64_t id, const open_epoch& e,
                                    const final_positions& finals,
                                    std::map<std::string, std::string> properties,
                                    bool savepoint, clock::time_point now) {
  outcome out;
  const bool checkpoint = std::any_of(e.reports.begin(), e.reports.end(),
                                      [](const epoch_report_ptr& r) { return r->checkpoint; });
  if (!checkpoint || expired_.erase(id))
    return out;
  in_flight_.erase(id);
  last_done_ = now;
  // Every task that took part must have snapshotted: a report without a snapshot means its
  // barrier was not a checkpoint's, and completing would leave its pieces out.
  auto unsnapshotted = std::find_if(e.reports.begin(), e.reports.end(),
                                    [](const epoch_report_ptr& r) { return !r->checkpoint; });
  if (unsnapshotted != e.reports.end()) {
    out.failed = checkpoint_failure{id, "task " + std::to_string((*unsnapshotted)->task) +
                                          " ended the epoch without a snapshot (its barrier "
                                          "was not a checkpoint's)"};
    return out;
  }
  // A task could not store its snapshot: the checkpoint fails (the epoch still ends, and
  // what sinks pre-committed for it is committed with the next complete checkpoint).
  auto declined = std::find_if(e.reports.begin(), e.reports.end(),
                               [](const auto& r) { return !r->checkpoint_problem.empty(); });
  if (declined != e.reports.end()) {
    out.failed = checkpoint_failure{id, (*declined)->checkpoint_problem};
    return out;
  }
  // Every task snapshotted epoch `id`: the metadata makes it complete (one synced write),
  // and only then may sinks commit.
  checkpoint_meta meta;
  meta.id = id;
  meta.job = job_;
  meta.max_key_groups = max_key_groups_;
  meta.created =
    iso_millis(std::chrono::time_point_cast<duration>(std::chrono::system_clock::now()));
  for (auto& r : e.reports)
    meta.pieces.insert(meta.pieces.end(), r->pieces.begin(), r->pieces.end());
  // Finished sources take no part any more: their final positions are carried forward.
  for (auto& [task, piece] : finals) {
    if (e.acked[static_cast<std::size_t>(task)])
      continue;
    auto stored = store_->put(id, piece.first, piece.second);
    if (!stored) {
      out.fatal = std::move(stored).error();
      return out;
    }
    meta.pieces.push_back(*stored);
  }
  meta.properties = std::move(properties);
  if (auto ok = store_->complete(meta); !ok) {
    out.failed = checkpoint_failure{id, ok.error().message};
    return out;
  }
  failed_in_a_row_ = 0;
  ++completed_;
  if (savepoint) {
    meta.savepoint = true; // rewrite the metadata with the flag: retention keeps it
    if (auto ok = store_->complete(meta); !ok) {
      out.fatal = std::move(ok).error();
      return out;
    }
  }
  checkpoint_stats st;
  st.id = id;
  st.duration = std::chrono::duration_cast<std::chrono::microseconds>(now - e.triggered);
  for (auto& p : meta.pieces) {
    st.full_bytes += p.size;
    if (p.stored_in == id)
      st.bytes += p.size;
  }
  for (auto& r : e.reports) {
    if (r->checkpoint)
      st.pauses.push_back(r->pause);
    st.alignment = std::max(st.alignment, r->alignment);
  }
  st.completed_at = meta.created;
  st.savepoint = meta.savepoint;
  history_.push_back(st);
  if (history_.size() > 1000)
    history_.erase(history_.begin());
  out.completed = std::move(st);
  return out;
}

} // namespace sluice
