// What the core hands back to its driver after each input (etcd/raft's Ready).
//
// The driver's loop, for every input (message, tick, proposal):
//   1. call Replica::step / tick / propose (as many as one event-loop turn holds);
//   2. Ready r = replica.take_ready();
//   3. write r.persist durably (one synced write batch) — before anything else;
//   4. send r.messages (including those addressed to this node itself: they are
//      its own acceptor's answers and must be delivered back via step());
//   5. apply r.committed to the state machine, in order;
//   6. report r.outcomes to the clients that proposed.
// Sending only after step 3 is what lets acceptors promise and accept safely.
//
// A driver may overlap persisting with sending (an fsync on another thread):
// messages for which may_send_before_persist() is true may leave at once,
// before this Ready's persist (and before earlier Readies' persists) is
// durable. Everything else of a Ready — its other messages, committed and
// outcomes — must wait until its persist and every earlier one are durable,
// in Ready order. The simulator drives the core this way (with crashes between
// the early send and the persist).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "paxos/messages.h"
#include "paxos/types.h"

namespace synod::paxos {

struct AcceptedEntry {
  Slot slot = 0;
  Ballot ballot;
  ValuePtr value;  // never null
};

// State to make durable before any message of the same Ready is sent.
struct PersistBatch {
  std::optional<Ballot> promised;       // new promised ballot (overwrites)
  std::vector<AcceptedEntry> accepted;  // new accepted (ballot, value) per slot (overwrites)
  std::vector<ChosenEntry> chosen;      // newly learned chosen values, any slot order

  bool empty() const { return !promised && accepted.empty() && chosen.empty(); }
};

// What the core needs at start-up, read back from storage.
struct DurableState {
  Ballot promised;
  std::vector<AcceptedEntry> accepted;  // at least every slot > applied
  std::vector<ChosenEntry> chosen;      // at least every slot > applied
  // Last slot applied to the state machine (the backend's own durable record).
  Slot applied = 0;
};

// True for proposer and learner messages (Prepare, Accept, Heartbeat,
// CatchupRequest, CatchupReply): they carry no vote of this node's acceptor.
// A leader's own vote counts only when its Accepted comes back through the
// driver, i.e. after it is durable, and chosen knowledge (commit points,
// catch-up values) only ever comes from durable votes. False for acceptor
// answers (Promise, Accepted, HeartbeatReply, which grants a lease): they
// state durable acceptor state and must wait for it.
bool may_send_before_persist(const Message& m);

using ProposalId = std::uint64_t;

enum class ProposalStatus : std::uint8_t {
  kChosen,      // chosen at `slot`: durable on a majority, will be applied there
  kNotLeader,   // never entered the log; retry at leader_hint (kNoNode: unknown)
  kBusy,        // never entered the log: too many proposals pending
  kTooLarge,    // never entered the log: larger than max_batch_bytes
  kSuperseded,  // its slot was chosen with another value: it will not be applied
};

struct ProposalOutcome {
  ProposalId id = 0;
  ProposalStatus status = ProposalStatus::kNotLeader;
  Slot slot = 0;             // with kChosen / kSuperseded
  NodeId leader_hint = kNoNode;
};

// The peer compacted slots this node still needs: install a snapshot from
// `peer` covering at least up to first_slot - 1 (a later issue implements it).
struct SnapshotNeeded {
  NodeId peer = kNoNode;
  Slot first_slot = 0;
};

struct Ready {
  PersistBatch persist;
  std::vector<Message> messages;
  std::vector<ChosenEntry> committed;  // contiguous ascending slots, to apply in order
  std::vector<ProposalOutcome> outcomes;
  std::optional<SnapshotNeeded> snapshot_needed;

  bool empty() const {
    return persist.empty() && messages.empty() && committed.empty() && outcomes.empty() &&
           !snapshot_needed;
  }
};

}  // namespace synod::paxos
