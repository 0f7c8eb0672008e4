// Microbenchmark of the consensus core alone: a cluster of Replicas in memory
// (tests/sim/local_cluster.h), no I/O, 100-byte commands, batching on. It
// measures how many commands per second the core itself can choose on one
// core; the network, disks and backends come on top (see docs/BENCHMARKS.md).
//
//   build/default/bench/paxos_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <string>

#include "sim/local_cluster.h"

namespace {

using synod::paxos::NodeId;
using synod::paxos::Options;

// Args: nodes, commands proposed per event-loop turn of the leader.
void BM_ChooseCommands(benchmark::State& state) {
  const int nodes = static_cast<int>(state.range(0));
  const int per_turn = static_cast<int>(state.range(1));
  Options o;
  o.window_slots = 32;
  o.max_batch_commands = 1024;
  synod::sim::LocalCluster c(nodes, o);
  for (NodeId id = 1; id <= static_cast<NodeId>(nodes); ++id) {
    c.node(id).keep_applied = false;
    c.node(id).keep_log = false;
  }
  const NodeId leader = c.elect();
  if (leader == synod::paxos::kNoNode) {
    state.SkipWithError("no leader elected");
    return;
  }
  const std::string payload(100, 'x');
  auto& replica = c.replica(leader);
  const std::uint64_t chosen_before = replica.stats().commands_chosen;
  for (auto _ : state) {
    for (int i = 0; i < per_turn; ++i) replica.propose(payload);
    c.process(leader);
    c.deliver_all();
    c.node(leader).outcomes.clear();
  }
  const std::uint64_t chosen = replica.stats().commands_chosen - chosen_before;
  state.SetItemsProcessed(static_cast<std::int64_t>(chosen));
  state.counters["chosen_per_slot"] =
      static_cast<double>(chosen) /
      static_cast<double>(std::max<std::uint64_t>(1, replica.stats().slots_proposed));
  state.counters["backlog"] = static_cast<double>(replica.pending_proposals());
}
BENCHMARK(BM_ChooseCommands)
    ->ArgNames({"nodes", "per_turn"})
    ->Args({3, 1})
    ->Args({3, 64})
    ->Args({3, 1024})
    ->Args({5, 1024})
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
