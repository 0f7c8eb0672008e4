// LocalCluster: N Replicas wired together in memory with a reliable FIFO
// network and perfect disks, for unit tests and the core's microbenchmark.
// (The fault-injecting Simulation in simulation.h is the adversarial twin.)
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "paxos/chosen_log.h"
#include "paxos/replica.h"

namespace synod::sim {

class LocalCluster {
 public:
  struct Node {
    std::unique_ptr<paxos::Replica> replica;
    paxos::Ballot promised;
    std::map<paxos::Slot, paxos::AcceptedEntry> accepted;
    paxos::MemoryChosenLog chosen;
    std::vector<paxos::ValuePtr> applied;
    std::vector<paxos::ProposalOutcome> outcomes;
    std::uint64_t commands_applied = 0;
    bool keep_applied = true;  // the benchmark only counts...
    bool keep_log = true;      // ...and keeps no log (no catch-up needed there)
  };

  LocalCluster(int nodes, const paxos::Options& options, std::uint64_t seed = 1) {
    for (int i = 1; i <= nodes; ++i) config_.members.push_back(static_cast<paxos::NodeId>(i));
    nodes_.resize(static_cast<std::size_t>(nodes));
    for (int i = 0; i < nodes; ++i) {
      Node& n = nodes_[static_cast<std::size_t>(i)];
      n.replica = std::make_unique<paxos::Replica>(static_cast<paxos::NodeId>(i + 1), config_,
                                                   options, paxos::DurableState{}, &n.chosen,
                                                   seed * 101 + static_cast<std::uint64_t>(i));
    }
  }

  paxos::Replica& replica(paxos::NodeId id) { return *node(id).replica; }
  Node& node(paxos::NodeId id) { return nodes_[id - 1]; }
  std::size_t size() const { return nodes_.size(); }
  const paxos::Configuration& config() const { return config_; }

  // Messages for which drop returns true are lost (e.g. to cut a link).
  std::function<bool(const paxos::Message&)> drop;

  // The driver's half of the Ready contract: persist, send, apply.
  void process(paxos::NodeId id) {
    Node& n = node(id);
    paxos::Ready r = n.replica->take_ready();
    if (r.persist.promised) n.promised = *r.persist.promised;
    for (auto& e : r.persist.accepted) n.accepted[e.slot] = e;
    if (n.keep_log) {
      for (auto& e : r.persist.chosen) n.chosen.put(e.slot, e.value);
    }
    for (auto& m : r.messages) {
      if (!drop || !drop(m)) network_.push_back(std::move(m));
    }
    for (auto& e : r.committed) {
      n.commands_applied += e.value->commands.size();
      if (n.keep_applied) n.applied.push_back(e.value);
    }
    for (auto& o : r.outcomes) n.outcomes.push_back(o);
  }

  // Delivers messages in FIFO order until none are left (or max were delivered).
  std::size_t deliver_all(std::size_t max = 100'000'000) {
    std::size_t delivered = 0;
    while (!network_.empty() && delivered < max) {
      paxos::Message m = std::move(network_.front());
      network_.pop_front();
      replica(m.to).step(m);
      process(m.to);
      ++delivered;
    }
    return delivered;
  }

  void tick_all() {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      nodes_[i].replica->tick();
      process(static_cast<paxos::NodeId>(i + 1));
    }
  }

  // Ticks and delivers until some node leads; returns it (kNoNode after max_ticks).
  paxos::NodeId elect(int max_ticks = 1000) {
    for (int t = 0; t < max_ticks; ++t) {
      for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (nodes_[i].replica->role() == paxos::Role::kLeader &&
            nodes_[i].replica->lease_read_slot()) {
          return static_cast<paxos::NodeId>(i + 1);
        }
      }
      tick_all();
      deliver_all();
    }
    return paxos::kNoNode;
  }

  std::deque<paxos::Message>& network() { return network_; }

 private:
  paxos::Configuration config_;
  std::vector<Node> nodes_;
  std::deque<paxos::Message> network_;
};

}  // namespace synod::sim
