// The InvariantChecker must reject each kind of violation it exists for; a
// checker that cannot fail would make every seed sweep meaningless.
#include "sim/invariants.h"

#include <gtest/gtest.h>

namespace synod::sim {
namespace {

using paxos::Ballot;
using paxos::ValuePtr;

ValuePtr cmds(std::vector<std::string> c) {
  return std::make_shared<const paxos::Value>(
      paxos::Value{paxos::ValueKind::kCommands, std::move(c)});
}

TEST(InvariantChecker, AcceptsACorrectHistory) {
  InvariantChecker c(2);
  c.on_proposed("a");
  c.on_proposed("b");
  auto v1 = cmds({"a"});
  auto v2 = cmds({"b"});
  c.on_persisted_accept(1, 1, Ballot{1, 1}, v1);
  c.on_persisted_accept(2, 1, Ballot{1, 1}, v1);
  c.on_persisted_accept(3, 1, Ballot{2, 3}, v1);  // a later ballot re-proposing the chosen value
  c.on_committed(1, 1, v1, 0);
  c.on_acked("a", 1);
  c.on_lease_read(1, 1);
  c.on_persisted_accept(1, 2, Ballot{1, 1}, v2);
  c.on_persisted_accept(3, 2, Ballot{1, 1}, v2);
  c.on_committed(1, 2, v2, 1);
  c.on_committed(2, 1, v1, 0);
  c.on_committed(2, 2, v2, 1);
  c.check_final({{v1, v2}, {v1, v2}});
  EXPECT_TRUE(c.ok()) << c.violation();
  EXPECT_EQ(c.slots_chosen(), 2u);
}

TEST(InvariantChecker, RejectsTwoValuesChosenInOneSlot) {
  InvariantChecker c(2);
  auto a = cmds({"a"});
  auto b = cmds({"b"});
  c.on_persisted_accept(1, 5, Ballot{1, 1}, a);
  c.on_persisted_accept(2, 5, Ballot{1, 1}, a);
  c.on_persisted_accept(2, 5, Ballot{2, 2}, b);
  EXPECT_TRUE(c.ok());  // one acceptor of (2.2) is not a quorum
  c.on_persisted_accept(3, 5, Ballot{2, 2}, b);
  EXPECT_FALSE(c.ok());
  EXPECT_NE(c.violation().find("two values chosen at slot 5"), std::string::npos);
}

TEST(InvariantChecker, RejectsOneBallotProposingTwoValues) {
  InvariantChecker c(2);
  c.on_persisted_accept(1, 1, Ballot{1, 1}, cmds({"a"}));
  c.on_persisted_accept(2, 1, Ballot{1, 1}, cmds({"b"}));
  EXPECT_FALSE(c.ok());
}

TEST(InvariantChecker, RejectsOutOfOrderOrDivergentApplication) {
  InvariantChecker gap(2);
  gap.on_proposed("a");
  gap.on_committed(1, 2, cmds({"a"}), 0);
  EXPECT_FALSE(gap.ok());

  InvariantChecker diverge(2);
  diverge.on_proposed("a");
  diverge.on_proposed("b");
  diverge.on_committed(1, 1, cmds({"a"}), 0);
  diverge.on_committed(2, 1, cmds({"b"}), 0);
  EXPECT_FALSE(diverge.ok());

  InvariantChecker not_chosen(2);
  not_chosen.on_proposed("a");
  not_chosen.on_persisted_accept(1, 1, Ballot{1, 1}, cmds({"a"}));
  not_chosen.on_persisted_accept(2, 1, Ballot{1, 1}, cmds({"a"}));
  not_chosen.on_committed(3, 1, paxos::noop_value(), 0);
  EXPECT_FALSE(not_chosen.ok());
}

TEST(InvariantChecker, RejectsInventedAndDuplicatedCommands) {
  InvariantChecker invented(2);
  invented.on_committed(1, 1, cmds({"never-proposed"}), 0);
  EXPECT_FALSE(invented.ok());

  InvariantChecker twice(2);
  twice.on_proposed("a");
  twice.on_committed(1, 1, cmds({"a"}), 0);
  twice.on_committed(1, 2, cmds({"a"}), 1);
  EXPECT_FALSE(twice.ok());
  EXPECT_NE(twice.violation().find("chosen twice"), std::string::npos);
}

TEST(InvariantChecker, RejectsAWrongAcknowledgementAndALostAcknowledgedWrite) {
  InvariantChecker wrong(2);
  wrong.on_proposed("a");
  wrong.on_proposed("b");
  wrong.on_committed(1, 1, cmds({"a"}), 0);
  wrong.on_acked("b", 1);
  EXPECT_FALSE(wrong.ok());

  InvariantChecker lost(2);
  lost.on_proposed("a");
  auto v = cmds({"a"});
  lost.on_committed(1, 1, v, 0);
  lost.on_acked("a", 1);
  lost.check_final({{v}, {}});
  EXPECT_FALSE(lost.ok());
  EXPECT_NE(lost.violation().find("missing from node 2"), std::string::npos);
}

TEST(InvariantChecker, RejectsAStaleLeaseRead) {
  InvariantChecker c(2);
  c.on_proposed("a");
  c.on_committed(2, 1, cmds({"a"}), 0);
  c.on_lease_read(1, 0);
  EXPECT_FALSE(c.ok());
  EXPECT_NE(c.violation().find("stale"), std::string::npos);
}

}  // namespace
}  // namespace synod::sim
