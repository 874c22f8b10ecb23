#pragma once
/// Carries the channel protocol's items (channels/item.hpp) as CAF messages: batches,
/// watermarks, idle marks, barriers and the end of input to the receiving tasks in channel
/// order, credits back to the senders. A task on another node is stood in for by its node's
/// bridge (bridge.hpp), which takes the same messages, so one transport serves both.
/// Private to actors/: each task actor owns one.
#include "sluice/actors/messages.hpp"
#include "sluice/actors/wiring.hpp"
#include "sluice/channels/item.hpp"

#include <caf/all.hpp>

#include <cstddef>
#include <vector>

namespace sluice {

class actor_transport final : public channel_transport {
public:
  /// `self` sends for task `w`; `all` holds every task of the job (or its stand-in) by
  /// global index.
  void wire(caf::event_based_actor* self, const task_wiring& w,
            const std::vector<caf::actor>& all) {
    self_ = self;
    senders_.clear();
    receivers_.clear();
    for (const auto& in : w.inputs)
      senders_.push_back({all[static_cast<std::size_t>(in.from_task)], in.sender_output,
                          in.sender_target});
    for (const auto& out : w.outputs) {
      auto& targets = receivers_.emplace_back();
      for (const auto& t : out.targets)
        targets.push_back({all[static_cast<std::size_t>(t.to_task)], t.receiver_channel});
    }
  }

  /// Drops the other actors' handles (no reference cycles once the task exits).
  void clear() {
    senders_.clear();
    receivers_.clear();
    self_ = nullptr;
  }

  void deliver(int edge, int target, channel_item item) override {
    const auto& to = receivers_[static_cast<std::size_t>(edge)][static_cast<std::size_t>(target)];
    switch (item.what) {
      case channel_item::kind::data:
        self_->send(to.actor, msg::data::value, to.channel, std::move(item.records));
        break;
      case channel_item::kind::watermark:
        self_->send(to.actor, msg::wm::value, to.channel,
                    static_cast<std::int64_t>(item.watermark.time_since_epoch().count()));
        break;
      case channel_item::kind::idle:
      case channel_item::kind::active:
        self_->send(to.actor, msg::idle::value, to.channel, item.what == channel_item::kind::idle);
        break;
      case channel_item::kind::barrier:
        self_->send(to.actor, msg::barrier::value, to.channel, item.epoch, item.checkpoint);
        break;
      case channel_item::kind::end:
        self_->send(to.actor, msg::eoi::value, to.channel);
        break;
    }
  }

  void grant(int channel, int n) override {
    const auto& from = senders_[static_cast<std::size_t>(channel)];
    // Credits overtake data in the sender's mailbox.
    self_->send<caf::message_priority::high>(from.actor, msg::credit::value, from.output,
                                             from.target, n);
  }

private:
  struct receiver {
    caf::actor actor;
    int channel = 0; ///< the receiver's input channel
  };
  struct sender {
    caf::actor actor;
    int output = 0; ///< the edge among the sender's outputs
    int target = 0; ///< this task among that edge's targets
  };
  caf::event_based_actor* self_ = nullptr;
  std::vector<sender> senders_;                ///< by input channel
  std::vector<std::vector<receiver>> receivers_; ///< by output edge, then target
};

} // namespace sluice
