#include "paxos/messages.h"

#include "paxos/ready.h"

#include <type_traits>

namespace synod::paxos {

std::string to_string(const Ballot& b) {
  return "(" + std::to_string(b.round) + "." + std::to_string(b.node) + ")";
}

std::string to_string(const Value& v) {
  switch (v.kind) {
    case ValueKind::kNoop: return "noop";
    case ValueKind::kConfig: return "config";
    case ValueKind::kCommands: break;
  }
  std::string s = "[";
  for (std::size_t i = 0; i < v.commands.size(); ++i) {
    if (i > 0) s += ",";
    if (i == 4) {
      s += "..+" + std::to_string(v.commands.size() - 4);
      break;
    }
    s += v.commands[i].size() <= 16 ? v.commands[i] : v.commands[i].substr(0, 16) + "~";
  }
  return s + "]";
}

namespace {
std::string value_str(const ValuePtr& v) { return v ? to_string(*v) : "null"; }
std::string ok_str(bool ok, const Ballot& promised) {
  return ok ? "ok" : "refused promised=" + to_string(promised);
}
}  // namespace

bool may_send_before_persist(const Message& m) {
  return std::holds_alternative<Prepare>(m.body) || std::holds_alternative<Accept>(m.body) ||
         std::holds_alternative<Heartbeat>(m.body) ||
         std::holds_alternative<CatchupRequest>(m.body) ||
         std::holds_alternative<CatchupReply>(m.body);
}

std::string to_string(const Message& m) {
  std::string head = std::to_string(m.from) + "->" + std::to_string(m.to) + " ";
  return head + std::visit(
                    [](const auto& b) -> std::string {
                      using T = std::decay_t<decltype(b)>;
                      if constexpr (std::is_same_v<T, Prepare>) {
                        return "Prepare b=" + to_string(b.ballot) +
                               " from=" + std::to_string(b.from_slot);
                      } else if constexpr (std::is_same_v<T, Promise>) {
                        return "Promise b=" + to_string(b.ballot) + " " +
                               ok_str(b.ok, b.promised) +
                               " chosen_through=" + std::to_string(b.chosen_through) +
                               " entries=" + std::to_string(b.entries.size());
                      } else if constexpr (std::is_same_v<T, Accept>) {
                        return "Accept b=" + to_string(b.ballot) +
                               " slot=" + std::to_string(b.slot) + " v=" + value_str(b.value) +
                               " commit=" + std::to_string(b.commit);
                      } else if constexpr (std::is_same_v<T, Accepted>) {
                        return "Accepted b=" + to_string(b.ballot) +
                               " slot=" + std::to_string(b.slot) + " " +
                               ok_str(b.ok, b.promised) +
                               " chosen_through=" + std::to_string(b.chosen_through);
                      } else if constexpr (std::is_same_v<T, Heartbeat>) {
                        return "Heartbeat b=" + to_string(b.ballot) +
                               " commit=" + std::to_string(b.commit) +
                               " round=" + std::to_string(b.round);
                      } else if constexpr (std::is_same_v<T, HeartbeatReply>) {
                        return "HeartbeatReply b=" + to_string(b.ballot) + " " +
                               ok_str(b.ok, b.promised) + " round=" + std::to_string(b.round);
                      } else if constexpr (std::is_same_v<T, CatchupRequest>) {
                        return "CatchupRequest " + std::to_string(b.from_slot) + ".." +
                               std::to_string(b.to_slot);
                      } else {
                        return "CatchupReply entries=" + std::to_string(b.entries.size()) +
                               " chosen_through=" + std::to_string(b.chosen_through) +
                               (b.snapshot_needed ? " snapshot_needed" : "");
                      }
                    },
                    m.body);
}

}  // namespace synod::paxos
