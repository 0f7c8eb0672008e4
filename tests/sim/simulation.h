// A deterministic simulator for the consensus core (src/paxos/).
//
// It drives N Replicas over a simulated network (loss, duplication, delay and
// hence reordering, partitions that heal), a simulated disk per node (a crash
// loses everything not yet persisted; what was persisted survives the restart),
// simulated clocks (pauses, slow clocks) and clients proposing unique values.
// Every run is a pure function of its SimConfig: a seed replays it exactly.
//
// A run has two phases: `fault_ticks` with the configured faults, then
// `heal_ticks` with every node up and the network whole, after which the
// cluster must have committed every proposal made while healed. The
// InvariantChecker (invariants.h) checks safety after every step.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "paxos/options.h"

namespace synod::sim {

struct Faults {
  double loss = 0;       // probability that a message is dropped
  double duplicate = 0;  // probability that a message is delivered twice
  std::uint32_t max_delay = 1;  // messages take 1..max_delay ticks (> 1 reorders)
  bool partitions = false;      // random splits and isolated nodes, healing after a while
  bool crashes = false;         // crash (losing unpersisted state) and restart later
  bool pauses = false;          // a node stops (SIGSTOP-like), its clock keeps running
  bool clock_skew = false;      // some nodes' clocks run up to 10% slow
  bool cannot_lead = false;     // a node cannot apply for a while (its backend is failing):
                                // the driver tells its Replica it cannot lead

  // Parses "loss,dup,reorder,partition,crash,pause,skew,nolead", "all" or "none".
  // Returns false and sets *error on an unknown name.
  static bool parse(const std::string& list, Faults* out, std::string* error);
  std::string to_string() const;
};

struct SimConfig {
  std::uint64_t seed = 1;
  int nodes = 3;
  Faults faults;
  std::uint32_t fault_ticks = 400;
  std::uint32_t heal_ticks = 400;
  double proposals_per_tick = 1.5;
  paxos::Options options;  // planted_bug here turns on a known-bad behaviour
  // Drive the core as the server does: messages that may go before persisting
  // (paxos::may_send_before_persist) leave at once; the rest of a Ready waits
  // in a per-node queue until its persist "completes" later, in order. A crash
  // loses the queue (the writes never reached the disk).
  bool async_persist = true;
  bool trace = false;       // print every event to stderr as it happens
  std::size_t trace_tail = 60;  // on failure, re-run and keep this many last events
};

struct SimResult {
  bool ok = true;
  std::string violation;  // empty when ok
  std::uint64_t violation_tick = 0;
  std::vector<std::string> trace_tail;  // the last events before the violation
  // What the run did, to see that faults and load really happened.
  std::uint64_t slots_chosen = 0;
  std::uint64_t commands_acked = 0;
  std::uint64_t messages_delivered = 0;
  std::uint64_t messages_dropped = 0;
  std::uint64_t crashes = 0;
  std::uint64_t partitions = 0;
  std::uint64_t pauses = 0;
  std::uint64_t elections = 0;
  std::uint64_t lease_recampaigns = 0;  // Replica::Stats::lease_recampaigns, summed
  std::uint64_t cannot_lead_periods = 0;  // nolead faults injected
  std::uint64_t handovers = 0;  // leaders that stepped down because they could not lead
  std::uint64_t lease_reads_checked = 0;
  std::uint64_t catchup_slots = 0;
};

// Runs one simulation. With config.trace, events stream to stderr.
SimResult run_simulation(const SimConfig& config);

// Runs it and, on a violation, runs the same seed again recording the trace
// tail (cheap runs stay cheap: no trace is formatted unless something fails).
SimResult run_and_explain(const SimConfig& config);

// The one command that replays a run, e.g. for a failure report.
std::string replay_command(const SimConfig& config);

// A multi-line report of a failed result: violation, seed, replay command, trace.
std::string failure_report(const SimConfig& config, const SimResult& result);

const char* to_string(paxos::PlantedBug bug);
bool parse_bug(const std::string& name, paxos::PlantedBug* out);

}  // namespace synod::sim
