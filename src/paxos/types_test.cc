#include "paxos/types.h"

#include <gtest/gtest.h>

#include "paxos/messages.h"

namespace synod::paxos {
namespace {

TEST(Ballot, OrderIsRoundThenNode) {
  EXPECT_LT((Ballot{1, 2}), (Ballot{2, 1}));
  EXPECT_LT((Ballot{2, 1}), (Ballot{2, 3}));
  EXPECT_EQ((Ballot{4, 2}), (Ballot{4, 2}));
  EXPECT_GT((Ballot{3, 1}), (Ballot{2, 9}));
}

TEST(Ballot, NullIsBelowEveryUsableBallot) {
  Ballot null;
  EXPECT_TRUE(null.is_null());
  EXPECT_LT(null, (Ballot{1, 1}));
  EXPECT_FALSE((Ballot{1, 1}).is_null());
}

TEST(Value, DeepEqualityAndNoop) {
  auto a = std::make_shared<const Value>(Value{ValueKind::kCommands, {"x", "y"}});
  auto b = std::make_shared<const Value>(Value{ValueKind::kCommands, {"x", "y"}});
  auto c = std::make_shared<const Value>(Value{ValueKind::kCommands, {"x"}});
  EXPECT_TRUE(same_value(a, b));
  EXPECT_FALSE(same_value(a, c));
  EXPECT_FALSE(same_value(a, nullptr));
  EXPECT_TRUE(same_value(nullptr, nullptr));
  EXPECT_TRUE(same_value(noop_value(), std::make_shared<const Value>()));
  EXPECT_FALSE(same_value(noop_value(), c));
  EXPECT_EQ(a->byte_size(), 2u);
}

TEST(Configuration, QuorumIsAMajority) {
  EXPECT_EQ((Configuration{{1}}).quorum(), 1u);
  EXPECT_EQ((Configuration{{1, 2}}).quorum(), 2u);
  EXPECT_EQ((Configuration{{1, 2, 3}}).quorum(), 2u);
  EXPECT_EQ((Configuration{{1, 2, 3, 4}}).quorum(), 3u);
  EXPECT_EQ((Configuration{{1, 2, 3, 4, 5}}).quorum(), 3u);
  Configuration c{{7, 3, 5}};
  EXPECT_EQ(c.index_of(3), 1);
  EXPECT_EQ(c.index_of(4), -1);
  EXPECT_TRUE(c.contains(5));
  EXPECT_FALSE(c.contains(kNoNode));
}

TEST(Messages, TraceStringsNameTheEssentials) {
  auto v = std::make_shared<const Value>(Value{ValueKind::kCommands, {"put a 1"}});
  Message m{1, 2, Accept{Ballot{3, 1}, 7, v, 5}};
  EXPECT_EQ(to_string(m), "1->2 Accept b=(3.1) slot=7 v=[put a 1] commit=5");
  Message r{2, 1, Accepted{Ballot{3, 1}, 7, false, Ballot{4, 2}, 6}};
  EXPECT_EQ(to_string(r), "2->1 Accepted b=(3.1) slot=7 refused promised=(4.2) chosen_through=6");
}

}  // namespace
}  // namespace synod::paxos
