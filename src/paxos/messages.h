// The peer protocol of the consensus core, as in-memory structs. The wire
// encoding (protobuf) belongs to the transport layer; the core never serializes.
//
// Every message is idempotent for its receiver, so the network may lose,
// duplicate and reorder freely.
#pragma once

#include <string>
#include <variant>
#include <vector>

#include "paxos/types.h"

namespace synod::paxos {

// Phase 1a. Covers every slot from from_slot on (one Phase 1 per leadership).
struct Prepare {
  Ballot ballot;
  Slot from_slot = 1;
};

struct PromiseEntry {
  Slot slot = 0;
  Ballot ballot;   // the ballot at which the acceptor accepted value
  ValuePtr value;  // never null
  bool chosen = false;  // the acceptor knows this slot is chosen with this value
};

// Phase 1b. ok == false is a refusal: promised is the higher ballot this
// acceptor is bound to (or, with promised <= ballot, an unexpired leader lease).
struct Promise {
  Ballot ballot;
  bool ok = false;
  Ballot promised;
  Slot from_slot = 1;
  // Every slot <= chosen_through is chosen and known to this acceptor; it may
  // have dropped its accepted values there, so the new leader must learn those
  // slots (catch-up) rather than re-propose them.
  Slot chosen_through = 0;
  std::vector<PromiseEntry> entries;  // accepted values from from_slot on, ascending
};

// Phase 2a, with the leader's commit point piggybacked.
struct Accept {
  Ballot ballot;
  Slot slot = 0;
  ValuePtr value;  // never null
  Slot commit = 0;  // every slot <= commit is chosen (see Replica::learn_commit)
};

// Phase 2b. ok == false: either promised > ballot (a refusal carrying the higher
// ballot), or the slot is already chosen here and compacted (catch up from me).
struct Accepted {
  Ballot ballot;
  Slot slot = 0;
  bool ok = false;
  Ballot promised;
  Slot chosen_through = 0;
};

// Leader liveness, commit point and lease renewal.
struct Heartbeat {
  Ballot ballot;
  Slot commit = 0;
  std::uint64_t round = 0;
};

struct HeartbeatReply {
  Ballot ballot;  // the heartbeat's ballot
  bool ok = false;  // false: promised > ballot
  Ballot promised;
  std::uint64_t round = 0;
  Slot chosen_through = 0;
};

// Catch-up: ask a peer for the chosen values of slots [from_slot, to_slot].
struct CatchupRequest {
  Slot from_slot = 1;
  Slot to_slot = 1;
};

struct ChosenEntry {
  Slot slot = 0;
  ValuePtr value;  // never null
};

struct CatchupReply {
  std::vector<ChosenEntry> entries;  // ascending, contiguous from the request's from_slot
  Slot chosen_through = 0;
  // The peer compacted the requested slots into a snapshot: the requester must
  // install a snapshot (first_slot - 1 is covered by it) before catching up.
  bool snapshot_needed = false;
  Slot first_slot = 0;
};

using MessageBody = std::variant<Prepare, Promise, Accept, Accepted, Heartbeat, HeartbeatReply,
                                 CatchupRequest, CatchupReply>;

struct Message {
  NodeId from = kNoNode;
  NodeId to = kNoNode;
  MessageBody body;
};

// Human-readable one-liners for traces and logs.
std::string to_string(const Ballot& b);
std::string to_string(const Value& v);
std::string to_string(const Message& m);

}  // namespace synod::paxos
