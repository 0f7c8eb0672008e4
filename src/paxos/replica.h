// Replica: one node's Multi-Paxos state machine — acceptor, proposer (leader)
// and learner in one object, pure and deterministic.
//
// Inputs: step(message), tick(), propose(command). Output: take_ready() (see
// ready.h for the driver's contract: persist, then send, then apply). No I/O,
// no clock, no threads, no global randomness: the same inputs in the same order
// with the same seed give the same outputs, which is what lets tests/sim drive
// thousands of fault schedules and replay any of them.
//
// Protocol summary (docs/ARCHITECTURE.md has the long form):
//  * Ballots are (round, node). A Prepare(b, from_slot) covers every slot from
//    from_slot on: one Phase 1 per leadership. The promise returns the accepted
//    (ballot, value) of every slot from there, and the acceptor's chosen point.
//  * The new leader re-proposes, per slot, the value with the highest ballot,
//    fills holes with no-ops, and learns by catch-up (never re-proposes) the
//    slots some promiser already knows chosen, since that promiser may have
//    dropped its accepted values there.
//  * Phase 2 is pipelined (window_slots beyond the commit point) and batches
//    the proposals that arrive meanwhile (max_batch_commands / max_batch_bytes).
//  * A slot is chosen when a quorum of acceptors accepted it at one ballot,
//    counting the leader's own acceptor only once its accept is durable (the
//    leader's own answers come back through the driver, after persisting).
//  * The commit point travels on Accepts and Heartbeats. A follower marks slot
//    s <= commit chosen only if it accepted s at the sender's ballot (the one
//    value that ballot proposes there); other slots it fetches (catch-up).
//  * Leases: acceptors that answered a heartbeat refuse to promise anyone else
//    for lease_ticks on their own clock (and for lease_ticks after starting);
//    the leader counts its lease from when it sent that heartbeat, minus a drift
//    bound. lease_read_slot() says when a local read is linearizable.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "paxos/chosen_log.h"
#include "paxos/messages.h"
#include "paxos/options.h"
#include "paxos/random.h"
#include "paxos/ready.h"
#include "paxos/types.h"

namespace synod::paxos {

enum class Role : std::uint8_t { kFollower, kCandidate, kLeader };
const char* to_string(Role role);

struct ReplicaStats {
  std::uint64_t elections_started = 0;
  std::uint64_t leaderships_won = 0;
  std::uint64_t step_downs = 0;
  // Leaders that saw a higher ballot under their lease and campaigned again
  // at once instead of waiting (Replica::observe).
  std::uint64_t lease_recampaigns = 0;
  // Times this node stepped down because the driver said it cannot lead.
  std::uint64_t handovers = 0;
  std::uint64_t slots_proposed = 0;
  std::uint64_t commands_proposed = 0;
  std::uint64_t commands_chosen = 0;  // in slots this node learned (any proposer)
  std::uint64_t messages_ignored = 0;  // from non-members or to another node
  std::uint64_t catchup_requests_sent = 0;
  std::uint64_t catchup_slots_received = 0;
};

class Replica {
 public:
  // id must be a member of config. durable is what storage holds (see ready.h);
  // log may be null (then catch-up serves only slots still in memory) and must
  // outlive the replica. seed drives the randomized election timeout.
  Replica(NodeId id, Configuration config, Options options, DurableState durable,
          const ChosenLog* log, std::uint64_t seed);

  // Queues a command (opaque bytes) for the log. Its fate arrives as a
  // ProposalOutcome with the returned id, in this or a later Ready: refused
  // at once when this node is not the leader or a candidate.
  ProposalId propose(std::string command);

  // A message from a peer (or from this node to itself). Messages from
  // non-members or addressed to another node are ignored and counted.
  void step(const Message& message);

  // One tick of logical time.
  void tick() { advance(/*decide=*/true); }
  // A tick that passed while this node could not look at its inbox (its
  // process was stopped, or its loop busy in a long apply): time counts in
  // full (leases, heartbeats due, retransmits), but the decisions that depend
  // on not having heard from peers — starting an election, a leader stepping
  // down for want of a quorum — wait for the next tick(), so that the messages
  // that arrived meanwhile are read first. The driver delivers a stall's
  // ticks with this and then goes back to tick() (never two stalls' worth in a
  // row: a node that is always busy still campaigns).
  void tick_missed() { advance(/*decide=*/false); }

  // Whether this node may lead. The driver says no while it cannot apply what
  // is chosen (its backend is failing): a leader answers writes only after
  // applying them, so such a leader would hold every answer. While false the
  // node never campaigns and, when leading or campaigning, steps down at once
  // (its pending proposals are refused with kNotLeader); it stays an acceptor
  // and a learner. Default true. Always safe: leading is never required.
  void set_can_lead(bool can_lead);
  bool can_lead() const { return can_lead_; }

  // Everything produced since the last call; see ready.h for the contract.
  // The caller must persist, send and apply it before the next input.
  Ready take_ready();

  // --- introspection (cheap, const) ---
  NodeId id() const { return id_; }
  Role role() const { return role_; }
  // The ballot this node leads or campaigns with (null when never a candidate).
  Ballot ballot() const { return ballot_; }
  Ballot promised() const { return promised_; }
  // The leader as far as this node knows (itself when leading), or kNoNode.
  NodeId leader_hint() const { return leader_hint_; }
  // Every slot <= chosen_through() is chosen and known here.
  Slot chosen_through() const { return chosen_through_; }
  // The highest commit point any peer has told this node about.
  Slot known_commit() const { return known_commit_; }
  // True while this node knows it is missing chosen slots that exist elsewhere:
  // it must not serve reads that claim to be current.
  bool is_catching_up() const { return known_commit_ > chosen_through_; }
  // When this node is the leader, holds an unexpired lease and has committed
  // every slot its election recovered: the slot through which a local read is
  // linearizable once applied. Otherwise nullopt (forward or read-index).
  std::optional<Slot> lease_read_slot() const;
  std::uint64_t now() const { return tick_; }
  const ReplicaStats& stats() const { return stats_; }
  const Configuration& config() const { return config_; }
  // Slots held in memory (acceptor + learner + proposer); bounded by the window
  // and by what has not been applied yet.
  std::size_t slots_in_memory() const;
  std::size_t pending_proposals() const { return pending_.size(); }

 private:
  struct Instance {  // a slot this leader is driving through Phase 2
    ValuePtr value;
    std::uint64_t acks = 0;  // bit per member index
    std::uint64_t sent_tick = 0;
  };
  struct Tracked {  // proposals of this node waiting to learn their slot's fate
    ValuePtr value;
    std::vector<ProposalId> ids;
  };
  struct Pending {
    ProposalId id;
    std::string command;
  };
  struct HeartbeatRound {
    std::uint64_t sent_tick = 0;
    std::uint64_t acks = 0;
  };

  void advance(bool decide);
  void on_prepare(NodeId from, const Prepare& m);
  void on_promise(NodeId from, const Promise& m);
  void on_accept(NodeId from, const Accept& m);
  void on_accepted(NodeId from, const Accepted& m);
  void on_heartbeat(NodeId from, const Heartbeat& m);
  void on_heartbeat_reply(NodeId from, const HeartbeatReply& m);
  void on_catchup_request(NodeId from, const CatchupRequest& m);
  void on_catchup_reply(NodeId from, const CatchupReply& m);

  void start_election();
  void become_leader();
  void step_down(NodeId hint);
  void observe(Ballot seen);
  void heard_from_leader(NodeId from, Ballot b);
  void start_instance(Slot slot, ValuePtr value);
  void send_accept(NodeId to, Slot slot, const Instance& instance);
  void broadcast_heartbeat();
  void flush_proposals();
  void learn_commit(NodeId from, Ballot ballot, Slot commit);
  void learn_chosen(Slot slot, const ValuePtr& value);
  void note_peer_commit(NodeId from, Slot chosen_through);
  void maybe_request_catchup();
  void set_promised(Ballot b);
  void persist_accepted(Slot slot, Ballot b, const ValuePtr& value);
  void send(NodeId to, MessageBody body);
  void refuse(ProposalId id, ProposalStatus status);
  bool lease_blocks(NodeId candidate) const;
  void reset_election_timer();
  std::uint64_t member_bit(NodeId id) const;
  std::size_t count_bits(std::uint64_t bits) const;
  PersistBatch& acceptor_persist();

  const NodeId id_;
  const Configuration config_;
  const Options opts_;
  const ChosenLog* const log_;
  Rng rng_;
  std::uint64_t tick_ = 0;
  ReplicaStats stats_;
  Ready ready_;

  // Acceptor.
  Ballot promised_;
  std::map<Slot, AcceptedEntry> accepted_;  // slots > applied_
  NodeId lease_holder_ = kNoNode;  // whose lease this acceptor granted (kNoNode: nobody's)
  std::uint64_t lease_grant_until_ = 0;

  // Learner.
  std::map<Slot, ValuePtr> chosen_;  // known chosen, slots > applied_
  Slot chosen_through_ = 0;
  Slot applied_ = 0;  // handed to the driver in Ready::committed
  Slot known_commit_ = 0;
  NodeId catchup_peer_ = kNoNode;
  bool catchup_inflight_ = false;
  bool can_lead_ = true;
  std::uint64_t catchup_sent_tick_ = 0;

  // Proposer.
  Role role_ = Role::kFollower;
  Ballot ballot_;
  Ballot highest_seen_;
  NodeId leader_hint_ = kNoNode;
  std::uint64_t election_elapsed_ = 0;
  std::uint64_t election_deadline_ = 0;
  std::map<NodeId, Promise> promises_;  // candidate: promises for ballot_
  std::uint64_t prepare_sent_tick_ = 0;
  std::map<Slot, Instance> instances_;  // leader: slots in Phase 2
  Slot next_slot_ = 1;                  // leader: next slot for a new batch
  Slot term_start_slot_ = 0;            // leader: last slot its election recovered
  std::deque<Pending> pending_;
  // Several per slot when a later leadership of ours proposed there again.
  std::map<Slot, std::vector<Tracked>> tracked_;
  ProposalId next_proposal_id_ = 1;
  std::uint64_t heartbeat_elapsed_ = 0;
  std::uint64_t heartbeat_round_ = 0;
  std::map<std::uint64_t, HeartbeatRound> heartbeat_rounds_;  // recent rounds only
  std::uint64_t lease_until_ = 0;
  std::vector<std::uint64_t> last_heard_;  // leader: tick of last reply, per member index

  // PlantedBug::kAnswerBeforePersist: acceptor state made durable one Ready late.
  PersistBatch deferred_current_;
  PersistBatch deferred_previous_;
};

}  // namespace synod::paxos
