// The consensus-core harness of peer_message_fuzz and replica_fuzz: one
// Replica (node 1 of the configuration {1, 2, 3}) driven the way the server
// drives it (src/server/node.cc: take_ready, persist, send, loop its own
// messages back, apply), with every Ready checked against the contract of
// ready.h and the preconditions of the code that consumes it (LogStore::persist,
// codec::to_proto, Node::fill_not_leader).
//
// What a correct peer can send. The core trusts its peers (crash faults, not
// Byzantine ones): some inputs that no correct peer can produce stop the
// process on a SYNOD_CHECK, and some make it do unbounded work. skip_reason()
// names those inputs; the fuzzers do not feed them to the core unless
// SYNOD_FUZZ_STRICT=1 (fuzz.h), so that fuzzing keeps finding new problems
// instead of the known ones. Each rule says what happens without it; see
// fuzz/README.md ("Known limits of the core").
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "paxos/chosen_log.h"
#include "paxos/messages.h"
#include "paxos/options.h"
#include "paxos/replica.h"

namespace synod::fuzz {

inline constexpr paxos::NodeId kSelf = 1;

// {1, 2, 3}.
paxos::Configuration three_nodes();

// Bounds on the numbers in a message that the fuzzers feed the core (rule 2
// below). Larger values are legal on the wire but make the core loop over
// every slot in between (see skip_reason).
inline constexpr paxos::Slot kMaxFuzzSlot = 1 << 12;
inline constexpr std::uint64_t kMaxFuzzRound = std::uint64_t{1} << 40;

// Why `m` is not something a correct peer sends to `self` (or is beyond the
// fuzzers' work bound), or nullptr when it is fine to step. `learned` is what
// the replica knows chosen (a correct peer never contradicts it). Rules:
//  1. Rounds stay below kMaxFuzzRound (a round of 2^64 - 1 makes
//     start_election wrap to the null ballot). Ballots may name non-members:
//     the Replica keeps only members as leader hints (once a crash in the
//     server, found by peer_message_fuzz; see strict-heartbeat-non-member-ballot).
//  2. Slots (from_slot, chosen_through, commit, entry slots, first_slot) are at
//     most kMaxFuzzSlot: become_leader() walks every slot from its
//     chosen_through + 1 to the highest slot any promise names, and starts a
//     no-op instance in each hole; near 2^64 that loop never ends.
//  3. Promise and CatchupReply entries have strictly ascending slots: two
//     entries of one slot with different values stop the replica on "two
//     different values learned chosen for one slot".
//  4. Prepare, Accept and Heartbeat carry the sender's own ballot (ballot.node
//     == from): proposers only use their own ballots.
//  5. A value claimed chosen (CatchupReply entry, chosen PromiseEntry) equals
//     the one the replica learned for that slot, if it learned one.
const char* skip_reason(const paxos::Message& m, const paxos::Configuration& config,
                        const std::map<paxos::Slot, paxos::ValuePtr>& learned);

// Checks that codec::to_proto and codec::from_proto round-trip `m` exactly and
// that the round trip is stable (to_proto(from_proto(to_proto(m))) has the same
// bytes as to_proto(m)). Aborts (FUZZ_CHECK) otherwise.
void check_codec_round_trip(const paxos::Message& m);

// The durable state the driver keeps (what LogStore would hold).
struct DurableMirror {
  paxos::Ballot promised;
  std::map<paxos::Slot, paxos::AcceptedEntry> accepted;
  std::map<paxos::Slot, paxos::ValuePtr> chosen;
};

class ReplicaHarness {
 public:
  explicit ReplicaHarness(std::uint64_t seed, paxos::Options options = {});

  paxos::Replica& replica() { return *replica_; }
  const paxos::Configuration& config() const { return config_; }

  // The inputs of the core, each followed by the driver's Ready loop.
  void step(const paxos::Message& m);
  void tick(int n = 1);
  paxos::ProposalId propose(std::string command);
  // A crash and restart: a new Replica from the durable mirror, as
  // Node::make_replica builds it from LogStore::load().
  void restart(std::uint64_t seed);
  // Compacts the chosen log below `first` (at most the applied point + 1).
  void compact(paxos::Slot first);

  // Messages the replica sent to peers 2 and 3 since the last take_outbox().
  std::vector<paxos::Message> take_outbox();

  const DurableMirror& durable() const { return durable_; }
  // Every value the replica learned chosen, by slot (never forgotten).
  const std::map<paxos::Slot, paxos::ValuePtr>& learned() const { return learned_; }
  paxos::Slot applied() const { return applied_; }

 private:
  // take_ready until quiet: checks, persists (mirror + chosen log), delivers
  // messages to self back through step(), applies committed slots.
  void drain();
  void check_and_absorb(paxos::Ready& ready, std::vector<paxos::Message>* to_self);

  paxos::Configuration config_;
  paxos::Options options_;
  paxos::MemoryChosenLog log_;
  std::unique_ptr<paxos::Replica> replica_;
  DurableMirror durable_;
  std::map<paxos::Slot, paxos::ValuePtr> learned_;
  paxos::Slot applied_ = 0;
  std::vector<paxos::Message> outbox_;
  // Proposals: id -> command; ids with a final outcome.
  std::map<paxos::ProposalId, std::string> proposed_;
  std::set<paxos::ProposalId> answered_;
};

}  // namespace synod::fuzz
