#include "sim/invariants.h"

#include <bit>

#include "paxos/messages.h"

namespace synod::sim {

using paxos::Slot;
using paxos::ValuePtr;

void InvariantChecker::fail(std::string what) {
  if (violation_.empty()) violation_ = std::move(what);
}

void InvariantChecker::on_proposed(const std::string& command) { proposed_.insert(command); }

void InvariantChecker::on_persisted_accept(paxos::NodeId node, Slot slot, paxos::Ballot ballot,
                                           const ValuePtr& value) {
  auto [it, inserted] = accepts_.try_emplace({slot, ballot}, Acceptance{value, 0});
  if (!inserted && !paxos::same_value(it->second.value, value)) {
    fail("ballot " + paxos::to_string(ballot) + " accepted two values at slot " +
         std::to_string(slot) + ": " + paxos::to_string(*it->second.value) + " and " +
         paxos::to_string(*value) + " (node " + std::to_string(node) + ")");
    return;
  }
  it->second.acceptors |= std::uint64_t{1} << (node % 64);
  if (static_cast<std::size_t>(std::popcount(it->second.acceptors)) < quorum_) return;
  auto [c, first] = chosen_.try_emplace(slot, value);
  if (!first && !paxos::same_value(c->second, value)) {
    fail("two values chosen at slot " + std::to_string(slot) + ": " +
         paxos::to_string(*c->second) + " and " + paxos::to_string(*value) + " (at ballot " +
         paxos::to_string(ballot) + ")");
  }
}

void InvariantChecker::on_committed(paxos::NodeId node, Slot slot, const ValuePtr& value,
                                    Slot applied_before) {
  const std::string who = "node " + std::to_string(node) + " slot " + std::to_string(slot);
  if (slot != applied_before + 1) {
    fail(who + ": applied out of order (had applied " + std::to_string(applied_before) + ")");
    return;
  }
  auto [it, first] = learned_.try_emplace(slot, value);
  if (!first && !paxos::same_value(it->second, value)) {
    fail(who + ": applied " + paxos::to_string(*value) + " but another node applied " +
         paxos::to_string(*it->second));
    return;
  }
  auto c = chosen_.find(slot);
  if (c != chosen_.end() && !paxos::same_value(c->second, value)) {
    fail(who + ": applied " + paxos::to_string(*value) + " but " + paxos::to_string(*c->second) +
         " was chosen there");
    return;
  }
  if (slot > max_committed_) max_committed_ = slot;
  if (!first) return;
  for (const std::string& cmd : value->commands) {
    if (!proposed_.contains(cmd)) {
      fail(who + ": applied command '" + cmd + "' that no client proposed");
      return;
    }
    auto [s, fresh] = command_slot_.try_emplace(cmd, slot);
    if (!fresh && s->second != slot) {
      fail(who + ": command '" + cmd + "' chosen twice, at slots " + std::to_string(s->second) +
           " and " + std::to_string(slot));
      return;
    }
  }
}

void InvariantChecker::on_acked(const std::string& command, Slot slot) {
  acked_[command] = slot;
  auto it = learned_.find(slot);
  const ValuePtr value = it != learned_.end() ? it->second : nullptr;
  ValuePtr oracle;
  if (auto c = chosen_.find(slot); c != chosen_.end()) oracle = c->second;
  for (const ValuePtr& v : {value, oracle}) {
    if (!v) continue;
    bool found = false;
    for (const auto& cmd : v->commands) found = found || cmd == command;
    if (!found) {
      fail("command '" + command + "' acknowledged as chosen at slot " + std::to_string(slot) +
           " but the slot holds " + paxos::to_string(*v));
      return;
    }
  }
}

void InvariantChecker::on_lease_read(paxos::NodeId node, Slot read_slot) {
  if (read_slot < max_committed_) {
    fail("node " + std::to_string(node) + " would serve a lease read at slot " +
         std::to_string(read_slot) + " but slot " + std::to_string(max_committed_) +
         " is already committed: a stale linearizable read");
  }
}

void InvariantChecker::check_final(const std::vector<std::vector<ValuePtr>>& applied_logs) {
  for (const auto& [cmd, slot] : acked_) {
    for (std::size_t n = 0; n < applied_logs.size(); ++n) {
      const auto& log = applied_logs[n];
      bool found = false;
      if (slot >= 1 && slot <= log.size()) {
        for (const auto& c : log[slot - 1]->commands) found = found || c == cmd;
      }
      if (!found) {
        fail("acknowledged command '" + cmd + "' (slot " + std::to_string(slot) +
             ") is missing from node " + std::to_string(n + 1) + "'s applied log (" +
             std::to_string(log.size()) + " slots)");
        return;
      }
    }
  }
}

}  // namespace synod::sim
