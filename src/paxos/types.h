// Basic vocabulary of the consensus core: node ids, slots, ballots, values and
// the cluster configuration. Everything here is a plain value type.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace synod::paxos {

// A member of the cluster. 0 is never a valid id: it means "nobody" (no leader known).
using NodeId = std::uint32_t;
inline constexpr NodeId kNoNode = 0;

// Log positions. Slots are numbered from 1; slot 0 means "none" (an empty log has
// chosen_through() == 0).
using Slot = std::uint64_t;

// A ballot (round, node id), ordered lexicographically. The null ballot (0, 0) is
// below every ballot a proposer can use, because rounds start at 1.
struct Ballot {
  std::uint64_t round = 0;
  NodeId node = kNoNode;

  auto operator<=>(const Ballot&) const = default;
  bool is_null() const { return round == 0; }
};

// The value of one slot. A proposer batches client commands (opaque bytes) into
// one value; a new leader fills holes with no-ops. kConfig is reserved for
// membership changes (a later issue): the core treats it like kCommands today.
enum class ValueKind : std::uint8_t { kNoop = 0, kCommands = 1, kConfig = 2 };

struct Value {
  ValueKind kind = ValueKind::kNoop;
  std::vector<std::string> commands;

  std::size_t byte_size() const;
  bool operator==(const Value&) const = default;
};

// Values are immutable once proposed and shared by every message and log entry
// that carries them, so a batch is not copied once per peer.
using ValuePtr = std::shared_ptr<const Value>;

// The shared no-op value.
const ValuePtr& noop_value();

// Deep equality (pointer equality first). Two null pointers are equal.
bool same_value(const ValuePtr& a, const ValuePtr& b);

// The set of acceptors whose majority forms a quorum. A value, not a constant:
// membership changes (a later issue) swap it at a slot boundary.
struct Configuration {
  std::vector<NodeId> members;  // distinct, non-zero, at most kMaxMembers

  static constexpr std::size_t kMaxMembers = 64;

  std::size_t quorum() const { return members.size() / 2 + 1; }
  bool contains(NodeId id) const;
  // Position of id in members, or -1 when id is not a member.
  int index_of(NodeId id) const;
};

}  // namespace synod::paxos
