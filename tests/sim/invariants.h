// The safety invariants every simulation checks, after every step:
//  1. one value per (slot, ballot): a ballot's leader proposes one value a slot;
//  2. at most one value is ever chosen per slot, "chosen" meaning accepted at
//     one ballot by a quorum of acceptors' durable state (an oracle that sees
//     every disk, so it catches a conflicting choice even if no node learns it);
//  3. every node learns and applies slots in order, and what it applies at a
//     slot is the oracle's chosen value there: every node's applied sequence is
//     a prefix of one common sequence;
//  4. every chosen command was proposed by a client, and none is chosen in two
//     slots (no-ops are exempt);
//  5. a proposal reported chosen at slot s is in the value chosen at s, and
//     (check_final) in every node's applied log at the end;
//  6. a lease read on the leader covers every slot any node has committed.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "paxos/types.h"

namespace synod::sim {

class InvariantChecker {
 public:
  explicit InvariantChecker(std::size_t quorum) : quorum_(quorum) {}

  void on_proposed(const std::string& command);
  // Acceptor `node` made (slot, ballot, value) durable.
  void on_persisted_accept(paxos::NodeId node, paxos::Slot slot, paxos::Ballot ballot,
                           const paxos::ValuePtr& value);
  // Node applied `value` at `slot`; `applied_before` is how many slots it had applied.
  void on_committed(paxos::NodeId node, paxos::Slot slot, const paxos::ValuePtr& value,
                    paxos::Slot applied_before);
  // A client was told `command` was chosen at `slot`.
  void on_acked(const std::string& command, paxos::Slot slot);
  // Node would serve a linearizable local read at read_slot now.
  void on_lease_read(paxos::NodeId node, paxos::Slot read_slot);
  // At the end: every acknowledged command is in every node's applied log.
  void check_final(const std::vector<std::vector<paxos::ValuePtr>>& applied_logs);

  bool ok() const { return violation_.empty(); }
  const std::string& violation() const { return violation_; }
  std::uint64_t slots_chosen() const { return chosen_.size(); }
  std::uint64_t commands_acked() const { return acked_.size(); }
  paxos::Slot max_committed() const { return max_committed_; }

 private:
  void fail(std::string what);

  struct Acceptance {
    paxos::ValuePtr value;
    std::uint64_t acceptors = 0;  // bit per node id
  };
  std::size_t quorum_;
  std::string violation_;
  std::map<std::pair<paxos::Slot, paxos::Ballot>, Acceptance> accepts_;
  std::map<paxos::Slot, paxos::ValuePtr> chosen_;   // oracle
  std::map<paxos::Slot, paxos::ValuePtr> learned_;  // applied by some node
  std::unordered_set<std::string> proposed_;
  std::unordered_map<std::string, paxos::Slot> command_slot_;
  std::unordered_map<std::string, paxos::Slot> acked_;
  paxos::Slot max_committed_ = 0;
};

}  // namespace synod::sim
