// The checker must be able to fail: each planted bug (paxos::PlantedBug) is a
// known-unsafe behaviour, and the simulator must find a violation for it within
// its seed budget. A simulator that lets these through proves nothing.
#include <ostream>
#include <string>

#include <gtest/gtest.h>

#include "sim/simulation.h"

namespace synod::sim {
namespace {

struct Planted {
  paxos::PlantedBug bug;
  const char* faults;
  int nodes;
};

void PrintTo(const Planted& p, std::ostream* os) {
  *os << to_string(p.bug) << ", " << p.nodes << " nodes, faults " << p.faults;
}

class PlantedBugTest : public ::testing::TestWithParam<Planted> {};

TEST_P(PlantedBugTest, SimulatorFindsAViolation) {
  const Planted& p = GetParam();
  SimConfig cfg;
  cfg.nodes = p.nodes;
  cfg.options.planted_bug = p.bug;
  ASSERT_TRUE(Faults::parse(p.faults, &cfg.faults, nullptr));
  constexpr std::uint64_t kBudget = 2000;
  for (std::uint64_t s = 1; s <= kBudget; ++s) {
    cfg.seed = s;
    SimResult r = run_simulation(cfg);
    if (!r.ok) {
      std::printf("%s: found at seed %llu: %s\n", to_string(p.bug),
                  static_cast<unsigned long long>(s), r.violation.c_str());
      SUCCEED();
      return;
    }
  }
  FAIL() << "planted bug " << to_string(p.bug) << " went undetected in " << kBudget << " seeds";
}

INSTANTIATE_TEST_SUITE_P(
    Bugs, PlantedBugTest,
    ::testing::Values(Planted{paxos::PlantedBug::kAnswerBeforePersist, "crash,reorder", 3},
                      Planted{paxos::PlantedBug::kIgnorePromiseValues, "all", 3},
                      Planted{paxos::PlantedBug::kAcceptLowerBallot, "all", 3},
                      Planted{paxos::PlantedBug::kPromiseDuringLease, "partition", 3}),
    [](const auto& param_info) {
      std::string name = to_string(param_info.param.bug);
      for (char& c : name) if (c == '-') c = '_';
      return name;
    });

}  // namespace
}  // namespace synod::sim
