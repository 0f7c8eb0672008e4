// Tunables of the consensus core. All durations are in ticks: the server turns
// wall-clock time into ticks (e.g. one tick per 10 ms), the simulator advances
// them directly. Nothing here reads a clock.
#pragma once

#include <cstddef>
#include <cstdint>

namespace synod::paxos {

// Known-bad behaviours, for tests only: the simulator must find a safety
// violation for each (tests/sim/planted_bug_test.cc). Never set in production.
enum class PlantedBug : std::uint8_t {
  kNone = 0,
  kAnswerBeforePersist,   // an acceptor's reply leaves before its promise/accept is durable
  kIgnorePromiseValues,   // a new leader ignores the accepted values in the promises
  kAcceptLowerBallot,     // an acceptor accepts a ballot below the one it promised
  kPromiseDuringLease,    // an acceptor promises a new candidate while a lease it granted runs
};

struct Options {
  // Leader heartbeat period; also the commit point's spread delay when idle.
  std::uint32_t heartbeat_ticks = 2;
  // A follower that hears nothing from a leader for a random number of ticks in
  // [election_timeout_ticks, 2 * election_timeout_ticks) starts Phase 1. A leader
  // that has not heard from a majority for election_timeout_ticks steps down.
  std::uint32_t election_timeout_ticks = 10;
  // Leader lease: a majority of heartbeat replies to a heartbeat sent at tick t
  // make reads local until t + lease_ticks - lease_drift_ticks. Acceptors refuse
  // to promise another proposer until lease_ticks after they granted a lease (on
  // their own clocks), and for lease_ticks after they start. Must be below
  // election_timeout_ticks. lease_drift_ticks bounds how much faster a
  // leader's clock may run slow compared to an acceptor's over one lease.
  std::uint32_t lease_ticks = 8;
  std::uint32_t lease_drift_ticks = 1;
  // Resend an unanswered Prepare/Accept/CatchupRequest after this many ticks.
  std::uint32_t retransmit_ticks = 3;

  // Phase 2 pipelining: at most this many slots beyond the commit point in flight.
  std::uint32_t window_slots = 32;
  // Batching: one slot value holds at most this many commands / bytes.
  std::uint32_t max_batch_commands = 1024;
  std::size_t max_batch_bytes = 1 << 20;
  // Proposals queued at the leader waiting for a window slot; beyond this a
  // proposal is refused as busy (back-pressure instead of unbounded memory).
  std::size_t max_pending_proposals = 65536;
  // Catch-up: at most this many slots / bytes per reply.
  std::uint32_t max_catchup_slots = 256;
  std::size_t max_catchup_bytes = 4 << 20;

  PlantedBug planted_bug = PlantedBug::kNone;
};

}  // namespace synod::paxos
