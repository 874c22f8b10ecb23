#pragma once
#include "operators/operator.hpp"

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
        for (std::size_t i = 0; i < src.size(); ++i) {
          src[kept] = src[i];
          kept += fn_(src[i]) ? 1 : 0;
        }
        src.resize(kept);
      } else {
        std::erase_if(src, [this](const T& r) { return !fn_(r); });
      }
      if (src.empty())
        return {};
      return out.emit(0, std::move(in));
    }
    auto kept = make_batch<T>(src.size());
    for (const auto& r : src)
      if (fn_(r))
        kept->records.push_back(r);
    if (kept->records.empty())
      return {};
    return out.emit(0, std::move(kept));
  }

private:
  F fn_;
};

} // namespace sluice
