// synod-sim: runs the deterministic simulator (tests/sim/) over one seed or a
// range of seeds and reports any safety or liveness violation with the command
// that replays it.
//
//   synod-sim --seeds 1000 --nodes 5 --faults all
//   synod-sim --seed 42 --nodes 3 --faults crash,partition --trace
//   synod-sim --seeds 2000 --bug accept-lower-ballot --expect-violation
#include <chrono>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "sim/simulation.h"

int main(int argc, char** argv) {
  using synod::sim::SimConfig;
  CLI::App app{"synod-sim: deterministic fault-injecting simulator for the Synod consensus core"};
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  SimConfig cfg;
  std::uint64_t seeds = 1;
  std::string faults = "all";
  std::string bug = "none";
  bool expect_violation = false;
  bool quiet = false;
  app.add_option("--seed", cfg.seed, "First seed (a single run unless --seeds)");
  app.add_option("--seeds", seeds, "How many consecutive seeds to run")->check(CLI::PositiveNumber);
  app.add_option("--nodes", cfg.nodes, "Cluster size")->check(CLI::Range(1, 9));
  app.add_option("--faults", faults,
                 "Comma-separated: loss,dup,reorder,partition,crash,pause,skew | all | none");
  app.add_option("--fault-ticks", cfg.fault_ticks, "Ticks with faults");
  app.add_option("--heal-ticks", cfg.heal_ticks,
                 "Ticks after healing in which every new proposal must commit")
      ->check(CLI::Range(50u, 1000000u));
  app.add_option("--rate", cfg.proposals_per_tick, "Client proposals per tick");
  app.add_option("--window", cfg.options.window_slots, "Pipelining window (slots)");
  app.add_option("--batch", cfg.options.max_batch_commands, "Max commands per slot");
  app.add_option("--bug", bug,
                 "Planted bug (tests only): none, answer-before-persist, "
                 "ignore-promise-values, accept-lower-ballot");
  app.add_flag("--expect-violation", expect_violation,
               "Succeed only if some seed finds a violation (for planted bugs)");
  bool sync_persist = false;
  app.add_flag("--sync-persist", sync_persist,
               "Drive the core synchronously (persist, then send everything) instead of "
               "overlapping persists with proposer messages as the server does");
  app.add_flag("--trace", cfg.trace, "Print every event of the run to stderr");
  app.add_flag("--quiet", quiet, "Print only the summary and failures");
  CLI11_PARSE(app, argc, argv);
  cfg.async_persist = !sync_persist;

  std::string error;
  if (!synod::sim::Faults::parse(faults, &cfg.faults, &error)) {
    std::fprintf(stderr, "synod-sim: %s\n", error.c_str());
    return 2;
  }
  if (!synod::sim::parse_bug(bug, &cfg.options.planted_bug)) {
    std::fprintf(stderr, "synod-sim: unknown --bug '%s'\n", bug.c_str());
    return 2;
  }

  const auto started = std::chrono::steady_clock::now();
  const std::uint64_t first = cfg.seed;
  std::uint64_t failures = 0, slots = 0, acked = 0, crashes = 0, partitions = 0, pauses = 0,
                lease_reads = 0, delivered = 0, dropped = 0, catchup = 0, elections = 0,
                recampaigns = 0, nolead = 0, handovers = 0;
  for (std::uint64_t s = first; s < first + seeds; ++s) {
    SimConfig run = cfg;
    run.seed = s;
    const synod::sim::SimResult r = synod::sim::run_and_explain(run);
    slots += r.slots_chosen;
    acked += r.commands_acked;
    crashes += r.crashes;
    partitions += r.partitions;
    pauses += r.pauses;
    lease_reads += r.lease_reads_checked;
    delivered += r.messages_delivered;
    dropped += r.messages_dropped;
    catchup += r.catchup_slots;
    elections += r.elections;
    recampaigns += r.lease_recampaigns;
    nolead += r.cannot_lead_periods;
    handovers += r.handovers;
    if (!r.ok) {
      ++failures;
      if (expect_violation) {
        std::printf("planted bug %s found at seed %llu: %s\n  replay: %s\n", bug.c_str(),
                    static_cast<unsigned long long>(s), r.violation.c_str(),
                    synod::sim::replay_command(run).c_str());
        break;
      }
      std::fprintf(stderr, "%s", synod::sim::failure_report(run, r).c_str());
    } else if (!quiet && seeds <= 20) {
      std::printf("seed %llu ok: %llu slots chosen, %llu commands acknowledged\n",
                  static_cast<unsigned long long>(s),
                  static_cast<unsigned long long>(r.slots_chosen),
                  static_cast<unsigned long long>(r.commands_acked));
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf(
      "synod-sim: %llu seeds from %llu, %d nodes, faults %s%s: %llu violations in %.1f s\n"
      "  %llu slots chosen, %llu commands acknowledged, %llu messages delivered, %llu dropped,\n"
      "  %llu crashes, %llu partitions, %llu pauses, %llu lease reads checked, %llu slots "
      "caught up,\n  %llu elections started, %llu by leaders outbidding a lone campaigner, %llu "
      "cannot-lead periods, %llu leaders handed over\n",
      static_cast<unsigned long long>(seeds), static_cast<unsigned long long>(first), cfg.nodes,
      cfg.faults.to_string().c_str(), bug == "none" ? "" : (", bug " + bug).c_str(),
      static_cast<unsigned long long>(failures), secs, static_cast<unsigned long long>(slots),
      static_cast<unsigned long long>(acked), static_cast<unsigned long long>(delivered),
      static_cast<unsigned long long>(dropped), static_cast<unsigned long long>(crashes),
      static_cast<unsigned long long>(partitions), static_cast<unsigned long long>(pauses),
      static_cast<unsigned long long>(lease_reads), static_cast<unsigned long long>(catchup),
      static_cast<unsigned long long>(elections), static_cast<unsigned long long>(recampaigns),
      static_cast<unsigned long long>(nolead), static_cast<unsigned long long>(handovers));
  if (expect_violation) {
    if (failures == 0) {
      std::fprintf(stderr, "synod-sim: expected a violation from bug %s, found none\n",
                   bug.c_str());
      return 1;
    }
    return 0;
  }
  return failures == 0 ? 0 : 1;
}
