// replica_fuzz: a structured fuzzer of the consensus core. The input is a
// program: a sequence of operations on one Replica (node 1 of {1, 2, 3}) —
// ticks, client proposals, restarts from its durable state, log compaction,
// and messages from peers 2 and 3 of every type, either made up from the
// input's fields or answering what the replica sent (a Promise for its
// Prepare, an Accepted for its Accept, ...).
//
// The made-up peers behave like correct ones as far as the core relies on it
// (paxos_harness.h, skip_reason): their ballots are their own, and they never
// claim a slot chosen with a value other than the one already claimed or
// learned for it (a Heartbeat's or Accept's commit point is lowered where it
// would make the replica learn a different value). Everything else is
// arbitrary: stale and future ballots, refusals, duplicates, reordering,
// commit points ahead of the replica, catch-up replies with gaps.
// SYNOD_FUZZ_STRICT=1 drops those constraints.
//
// Checks: no crash, and every Ready keeps the driver's contract (paxos_harness.h).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>

#include "fuzz/fuzz.h"
#include "fuzz/paxos_harness.h"

namespace synod::fuzz {
namespace {

using paxos::Ballot;
using paxos::Message;
using paxos::Slot;
using paxos::ValuePtr;

ValuePtr make_value(paxos::ValueKind kind, std::vector<std::string> commands) {
  return std::make_shared<const paxos::Value>(paxos::Value{kind, std::move(commands)});
}

class World {
 public:
  World(const std::uint8_t* data, std::size_t size) : in_(data, size), h_(in_.u8()) {
    pool_ = {paxos::noop_value(), make_value(paxos::ValueKind::kCommands, {"a"}),
             make_value(paxos::ValueKind::kCommands, {"b", "c"}),
             make_value(paxos::ValueKind::kCommands, {""}),
             make_value(paxos::ValueKind::kConfig, {"cfg"})};
  }

  void run() {
    for (int ops = 0; !in_.empty() && ops < 400; ++ops) one_op();
    h_.tick(5);
    if (std::getenv("SYNOD_FUZZ_VERBOSE") != nullptr) {
      const auto& st = h_.replica().stats();
      std::fprintf(stderr,
                   "role %s, chosen through %llu, elections %llu, leaderships %llu, commands "
                   "chosen %llu, catch-up slots %llu\n",
                   paxos::to_string(h_.replica().role()),
                   static_cast<unsigned long long>(h_.replica().chosen_through()),
                   static_cast<unsigned long long>(st.elections_started),
                   static_cast<unsigned long long>(st.leaderships_won),
                   static_cast<unsigned long long>(st.commands_chosen),
                   static_cast<unsigned long long>(st.catchup_slots_received));
    }
  }

 private:
  // ------------------------------------------------------------ choices

  paxos::NodeId peer() { return 2 + in_.below(2); }

  ValuePtr any_value() {
    const std::uint8_t i = in_.below(static_cast<std::uint8_t>(pool_.size() + 1));
    if (i < pool_.size()) return pool_[i];
    return make_value(paxos::ValueKind::kCommands, {in_.bytes(6)});
  }

  // The value a correct peer says is chosen in `slot`: the one the replica
  // learned, else the one claimed before, else a new claim.
  ValuePtr chosen_value(Slot slot) {
    if (strict_mode()) return any_value();
    if (auto it = h_.learned().find(slot); it != h_.learned().end()) return it->second;
    if (auto it = claims_.find(slot); it != claims_.end()) return it->second;
    ValuePtr v = any_value();
    claims_[slot] = v;
    return v;
  }

  // A value a peer may propose in `slot` (Accept): a claimed/learned one if
  // any (a proposer that can see it must re-propose it), else anything.
  ValuePtr proposal_value(Slot slot) {
    if (!strict_mode()) {
      if (auto it = h_.learned().find(slot); it != h_.learned().end()) return it->second;
      if (auto it = claims_.find(slot); it != claims_.end()) return it->second;
    }
    return any_value();
  }

  // Slots near the replica's applied point (some below it, most above).
  Slot slot() {
    const Slot base = h_.applied() > 3 ? h_.applied() - 3 : 1;
    return base + in_.below(20);
  }

  // A ballot of `owner`: near what the replica promised, or small.
  Ballot own_ballot(paxos::NodeId owner) {
    const std::uint64_t promised = std::max<std::uint64_t>(h_.replica().promised().round, 1);
    switch (in_.below(4)) {
      case 0:
        return Ballot{promised, owner};
      case 1:
        return Ballot{promised + 1, owner};
      case 2:
        return Ballot{promised > 1 ? promised - 1 : 1, owner};
      default:
        return Ballot{1 + std::uint64_t{in_.below(8)}, owner};
    }
  }

  // A ballot of anyone (the null ballot included).
  Ballot any_ballot() {
    switch (in_.below(4)) {
      case 0:
        return h_.replica().ballot();
      case 1:
        return h_.replica().promised();
      case 2:
        return Ballot{};
      default:
        return own_ballot(static_cast<paxos::NodeId>(1 + in_.below(3)));
    }
  }

  // The ballot a reply is about: mostly the replica's own.
  Ballot reply_ballot() { return in_.below(4) != 0 ? h_.replica().ballot() : any_ballot(); }

  // The highest commit point <= want that a correct leader at `b` could
  // announce: the replica learns, for every slot up to it that it accepted at
  // b, the value it accepted there, which must agree with the world's.
  Slot safe_commit(const Ballot& b, Slot want, Slot accepting_slot, const ValuePtr& accepting) {
    if (strict_mode()) return want;
    auto agrees = [&](Slot s, const ValuePtr& v) {
      auto l = h_.learned().find(s);
      if (l != h_.learned().end()) return paxos::same_value(l->second, v);
      auto c = claims_.find(s);
      return c == claims_.end() || paxos::same_value(c->second, v);
    };
    for (Slot s = h_.replica().chosen_through() + 1; s <= want; ++s) {
      ValuePtr v;
      if (s == accepting_slot && accepting) {
        v = accepting;
      } else {
        auto it = h_.durable().accepted.find(s);
        if (it == h_.durable().accepted.end() || it->second.ballot != b) continue;
        v = it->second.value;
      }
      if (!agrees(s, v)) return s - 1;
    }
    return want;
  }

  void send(paxos::NodeId from, paxos::MessageBody body) {
    Message m{from, kSelf, std::move(body)};
    if (!strict_mode()) {
      const char* why = skip_reason(m, h_.config(), h_.learned());
      FUZZ_CHECK(why == nullptr, "replica_fuzz made a message a correct peer cannot send (%s): %s",
                 why, paxos::to_string(m).c_str());
    }
    last_sent_ = m;
    h_.step(m);
  }

  // The network duplicates the last message (when it still makes sense: a
  // claim of a chosen value may have become stale since).
  void duplicate() {
    if (!last_sent_) return;
    if (!strict_mode() && skip_reason(*last_sent_, h_.config(), h_.learned()) != nullptr) return;
    h_.step(*last_sent_);
  }

  // ------------------------------------------------------------ messages

  paxos::Promise promise_for(const Ballot& b, bool ok, Slot from_slot) {
    paxos::Promise p;
    p.ballot = b;
    p.ok = ok;
    p.promised =
        ok ? b : Ballot{b.round + 1 + in_.below(2), static_cast<paxos::NodeId>(2 + in_.below(2))};
    p.from_slot = from_slot;
    p.chosen_through = h_.applied() + in_.below(6);
    if (p.chosen_through > 0 && in_.below(2) == 0) p.chosen_through = 0;
    Slot s = from_slot;
    const int n = in_.below(5);
    for (int i = 0; i < n; ++i) {
      s += in_.below(3);
      if (s == 0) s = 1;
      paxos::PromiseEntry e;
      e.slot = s;
      e.chosen = in_.below(3) == 0 || s <= p.chosen_through;
      e.value = e.chosen ? chosen_value(s) : proposal_value(s);
      e.ballot = e.chosen && in_.below(2) == 0 ? Ballot{} : own_ballot(2 + in_.below(2));
      if (b < e.ballot) e.ballot = Ballot{b.round > 1 ? b.round - 1 : 1, e.ballot.node};
      p.entries.push_back(std::move(e));
      ++s;
    }
    return p;
  }

  paxos::CatchupReply catchup_reply(Slot from, Slot to) {
    paxos::CatchupReply r;
    const Slot last = std::min<Slot>(to, from + in_.below(8));
    for (Slot s = from; s <= last && s >= 1; ++s) r.entries.push_back({s, chosen_value(s)});
    r.chosen_through = std::max<Slot>(last, h_.applied() + in_.below(4));
    if (in_.below(8) == 0) {
      r.entries.clear();
      r.snapshot_needed = true;
      r.first_slot = from + 1 + in_.below(4);
    }
    return r;
  }

  void prepare() {
    const paxos::NodeId p = peer();
    send(p, paxos::Prepare{own_ballot(p), slot()});
  }

  void promise() {
    const Ballot b = reply_ballot();
    send(peer(), promise_for(b, in_.below(4) != 0, h_.replica().chosen_through() + 1));
  }

  void accept() {
    const paxos::NodeId p = peer();
    const Ballot b = own_ballot(p);
    const Slot s = slot();
    ValuePtr v = proposal_value(s);
    const bool will_accept = !(b < h_.replica().promised()) && s > h_.applied();
    const Slot commit = safe_commit(b, h_.applied() + in_.below(12), s, will_accept ? v : nullptr);
    send(p, paxos::Accept{b, s, std::move(v), commit});
  }

  void accepted() {
    const Ballot b = reply_ballot();
    const bool ok = in_.below(4) != 0;
    const Ballot promised = ok ? b : own_ballot(2 + in_.below(2));
    send(peer(), paxos::Accepted{b, slot(), ok, promised, h_.applied() + in_.below(6)});
  }

  void heartbeat() {
    const paxos::NodeId p = peer();
    const Ballot b = own_ballot(p);
    const Slot commit = safe_commit(b, h_.applied() + in_.below(12), 0, nullptr);
    send(p, paxos::Heartbeat{b, commit, in_.u8()});
  }

  void heartbeat_reply() {
    const Ballot b = reply_ballot();
    const bool ok = in_.below(4) != 0;
    const Ballot promised = ok ? b : own_ballot(2 + in_.below(2));
    send(peer(), paxos::HeartbeatReply{b, ok, promised, last_heartbeat_round_ + in_.below(3) - 1,
                                       h_.applied() + in_.below(6)});
  }

  void catchup_request() {
    const Slot from = slot();
    send(peer(), paxos::CatchupRequest{from, from + in_.below(10)});
  }

  void catchup() {
    const Slot from =
        h_.replica().chosen_through() + 1 - std::min<Slot>(h_.applied(), in_.below(3));
    send(peer(), catchup_reply(from, from + 8));
  }

  // The answer a peer gives to something the replica sent it (maybe refusing).
  void answer(const Message& m) {
    const paxos::NodeId p = m.to;
    const bool ok = in_.below(8) != 0;
    std::visit(
        [&](const auto& b) {
          using T = std::decay_t<decltype(b)>;
          if constexpr (std::is_same_v<T, paxos::Prepare>) {
            send(p, promise_for(b.ballot, ok, b.from_slot));
          } else if constexpr (std::is_same_v<T, paxos::Accept>) {
            const Ballot promised = ok ? b.ballot : own_ballot(p);
            send(p, paxos::Accepted{b.ballot, b.slot, ok, promised, b.commit});
          } else if constexpr (std::is_same_v<T, paxos::Heartbeat>) {
            last_heartbeat_round_ = b.round;
            const Ballot promised = ok ? b.ballot : own_ballot(p);
            send(p, paxos::HeartbeatReply{b.ballot, ok, promised, b.round, b.commit});
          } else if constexpr (std::is_same_v<T, paxos::CatchupRequest>) {
            if (b.from_slot >= 1 && b.from_slot <= b.to_slot) {
              send(p, catchup_reply(b.from_slot, b.to_slot));
            }
          }
          // Promises, Accepteds, ... are answers themselves: a peer takes note.
        },
        m.body);
  }

  void answer_some(bool all) {
    std::vector<Message> out = h_.take_outbox();
    if (out.empty()) return;
    if (all) {
      for (const Message& m : out) {
        if (in_.below(8) != 0) answer(m);  // some are lost
      }
      return;
    }
    const std::size_t pick = in_.u8() % out.size();
    answer(out[pick]);
    // The others stay in flight (answered later, or lost when the outbox is trimmed).
    out.erase(out.begin() + static_cast<std::ptrdiff_t>(pick));
    for (Message& m : out) pending_.push_back(std::move(m));
    if (pending_.size() > 64) pending_.erase(pending_.begin(), pending_.end() - 32);
  }

  void answer_pending() {
    if (pending_.empty()) return;
    const std::size_t pick = in_.u8() % pending_.size();
    Message m = std::move(pending_[pick]);
    pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(pick));
    answer(m);  // late, maybe after a newer leadership: reordering
  }

  void one_op() {
    switch (in_.below(18)) {
      case 0:
        h_.tick(1 + in_.below(4));
        break;
      case 1:
        h_.propose(in_.bytes(8));
        break;
      case 2:
        prepare();
        break;
      case 3:
        promise();
        break;
      case 4:
        accept();
        break;
      case 5:
        accepted();
        break;
      case 6:
        heartbeat();
        break;
      case 7:
        heartbeat_reply();
        break;
      case 8:
        catchup_request();
        break;
      case 9:
        catchup();
        break;
      case 10:
        answer_some(false);
        break;
      case 11:
        answer_some(true);
        break;
      case 12:
        answer_pending();
        break;
      case 13:
        h_.restart(in_.u8());
        pending_.clear();
        break;
      case 14:
        h_.compact(h_.applied() + 1 - std::min<Slot>(h_.applied(), in_.below(4)));
        break;
      case 15:
        h_.tick(8 + in_.below(32));
        break;
      case 16:
        for (int i = 0, n = 1 + in_.below(8); i < n; ++i) h_.propose(std::string(1, 'p' + i));
        break;
      default:
        duplicate();
        break;
    }
  }

  FuzzInput in_;
  ReplicaHarness h_;
  std::vector<ValuePtr> pool_;
  std::map<Slot, ValuePtr> claims_;
  std::vector<Message> pending_;
  std::optional<Message> last_sent_;
  std::uint64_t last_heartbeat_round_ = 1;
};

}  // namespace
}  // namespace synod::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  synod::fuzz::World world(data, size);
  world.run();
  return 0;
}
