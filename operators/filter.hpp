#pragma once
#include "sluice/operators/operator.hpp"
#include "sluice/operators/record_loop.hpp"

#include <type_traits>
#include <utility>
#include <vector>

namespace sluice {

/// `filter`: keeps the records for which the predicate holds. Compacts in place when the
/// batch is not shared; emits nothing for an empty result.
template <class T, class F>
class filter_operator final : public operator_base {
public:
  explicit filter_operator(F fn) : fn_(std::move(fn)) {}

  result<void> process(int, batch_ptr in, output& out) override {
    auto& src = records_of<T>(*in);
    if (in.use_count() == 1) {
      if constexpr (std::is_trivially_copyable_v<T>) {
        // Branch-free compaction: a kept/dropped pattern that is random (a 50% filter)
        // would otherwise cost a mispredicted branch per record.
        std::size_t kept = 0;
        for_each_record(src, [&](T& r) {
          src[kept] = r;
          kept += fn_(std::as_const(r)) ? 1 : 0;
        });
        src.resize(kept);
      } else {
        // Compaction by hand rather than std::erase_if: a record is moved only after the
        // predicate saw it, so a throwing predicate's record is still intact to report.
        std::size_t kept = 0;
        for_each_record(src, [&](T& r) {
          if (!fn_(std::as_const(r)))
            return;
          if (&src[kept] != &r)
            src[kept] = std::move(r);
          ++kept;
        });
        src.resize(kept);
      }
      if (src.empty())
        return {};
      return out.emit(0, std::move(in));
    }
    auto kept = make_batch<T>(src.size());
    for_each_record(std::as_const(src), [&](const T& r) {
      if (fn_(r))
        kept->records.push_back(r);
    });
    if (kept->records.empty())
      return {};
    return out.emit(0, std::move(kept));
  }

private:
  F fn_;
};

} // namespace sluice
