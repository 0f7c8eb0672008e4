// Seed sweeps: thousands of fault schedules over 3 and 5 nodes, each checked
// by the InvariantChecker after every step and for liveness after healing.
// SYNOD_SIM_SEEDS sets the total (default 10,000; the sanitizer presets use
// fewer); each sweep below runs its share.
#include <cstdlib>
#include <ostream>
#include <string>

#include <gtest/gtest.h>

#include "sim/simulation.h"

namespace synod::sim {
namespace {

std::uint64_t total_seeds() {
  const char* env = std::getenv("SYNOD_SIM_SEEDS");
  if (env != nullptr && *env != '\0') return std::strtoull(env, nullptr, 10);
  return 10000;
}

struct Sweep {
  const char* name;
  int nodes;
  const char* faults;
  std::uint64_t first_seed;
};

constexpr Sweep kSweeps[] = {
    {"net3", 3, "loss,dup,reorder", 100000},  {"net5", 5, "loss,dup,reorder", 200000},
    {"partition3", 3, "partition,reorder", 300000}, {"partition5", 5, "partition,reorder", 400000},
    {"crash3", 3, "crash,reorder", 500000},   {"crash5", 5, "crash,reorder", 600000},
    {"all3", 3, "all", 700000},               {"all5", 5, "all", 800000},
};

void PrintTo(const Sweep& s, std::ostream* os) {
  *os << s.nodes << " nodes, faults " << s.faults << ", seeds from " << s.first_seed;
}

class SeedSweep : public ::testing::TestWithParam<Sweep> {};

TEST_P(SeedSweep, NoViolation) {
  const Sweep& sweep = GetParam();
  const std::uint64_t seeds = std::max<std::uint64_t>(1, total_seeds() / std::size(kSweeps));
  SimConfig cfg;
  cfg.nodes = sweep.nodes;
  std::string error;
  ASSERT_TRUE(Faults::parse(sweep.faults, &cfg.faults, &error)) << error;
  std::uint64_t slots = 0, acked = 0, disruptions = 0;
  for (std::uint64_t s = sweep.first_seed; s < sweep.first_seed + seeds; ++s) {
    cfg.seed = s;
    SimResult r = run_and_explain(cfg);
    ASSERT_TRUE(r.ok) << failure_report(cfg, r);
    slots += r.slots_chosen;
    acked += r.commands_acked;
    disruptions += r.crashes + r.partitions + r.pauses + r.messages_dropped;
  }
  // The sweep did real work: values were chosen and acknowledged under faults.
  EXPECT_GT(slots, seeds * 50);
  EXPECT_GT(acked, seeds * 200);
  if (std::string(sweep.faults) != "none") {
    EXPECT_GT(disruptions, seeds);
  }
  std::printf("%s: %llu seeds, %llu slots chosen, %llu commands acknowledged\n", sweep.name,
              static_cast<unsigned long long>(seeds), static_cast<unsigned long long>(slots),
              static_cast<unsigned long long>(acked));
}

INSTANTIATE_TEST_SUITE_P(Faults, SeedSweep, ::testing::ValuesIn(kSweeps),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(Simulation, SameSeedSameRun) {
  SimConfig cfg;
  cfg.seed = 4242;
  ASSERT_TRUE(Faults::parse("all", &cfg.faults, nullptr));
  SimResult a = run_simulation(cfg);
  SimResult b = run_simulation(cfg);
  EXPECT_EQ(a.slots_chosen, b.slots_chosen);
  EXPECT_EQ(a.commands_acked, b.commands_acked);
  EXPECT_EQ(a.messages_delivered, b.messages_delivered);
  EXPECT_EQ(a.crashes, b.crashes);
}

TEST(Simulation, FaultFreeClusterCommitsEverything) {
  SimConfig cfg;
  cfg.seed = 7;
  cfg.faults = Faults{};
  SimResult r = run_simulation(cfg);
  ASSERT_TRUE(r.ok) << failure_report(cfg, r);
  // 1.5 proposals a tick for the ticks before the final drain, nearly all acked.
  EXPECT_GT(r.commands_acked, 800u);
  EXPECT_EQ(r.crashes, 0u);
}

TEST(Simulation, ReplayCommandNamesEverything) {
  SimConfig cfg;
  cfg.seed = 99;
  cfg.nodes = 5;
  ASSERT_TRUE(Faults::parse("crash,partition", &cfg.faults, nullptr));
  cfg.options.planted_bug = paxos::PlantedBug::kAcceptLowerBallot;
  EXPECT_EQ(replay_command(cfg),
            "synod-sim --seed 99 --nodes 5 --faults partition,crash --fault-ticks 400 "
            "--heal-ticks 400 --bug accept-lower-ballot --trace");
}

TEST(Faults, ParseRejectsUnknownNames) {
  Faults f;
  std::string error;
  EXPECT_FALSE(Faults::parse("loss,gremlins", &f, &error));
  EXPECT_NE(error.find("gremlins"), std::string::npos);
  EXPECT_TRUE(Faults::parse("all", &f, &error));
  EXPECT_EQ(f.to_string(), "loss,dup,reorder,partition,crash,pause,skew,nolead");
}

}  // namespace
}  // namespace synod::sim
