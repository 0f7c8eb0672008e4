#include "fuzz/paxos_harness.h"

#include <algorithm>
#include <type_traits>
#include <utility>
#include <variant>

#include "codec/codec.h"
#include "fuzz/fuzz.h"

namespace synod::fuzz {

using paxos::Ballot;
using paxos::Message;
using paxos::Slot;
using paxos::ValuePtr;

paxos::Configuration three_nodes() { return paxos::Configuration{{1, 2, 3}}; }

namespace {

bool ballot_ok(const Ballot& b, const paxos::Configuration& /*config*/) {
  // Ballots naming non-members are fair game: the Replica never takes a
  // non-member as its leader hint (fixed after this fuzzer found the crash).
  return b.round < kMaxFuzzRound;
}

bool slot_ok(Slot s) { return s <= kMaxFuzzSlot; }

bool contradicts(const std::map<Slot, ValuePtr>& learned, Slot slot, const ValuePtr& v) {
  auto it = learned.find(slot);
  return it != learned.end() && !paxos::same_value(it->second, v);
}

template <typename Entries>
bool ascending(const Entries& entries) {
  for (std::size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].slot <= entries[i - 1].slot) return false;
  }
  return true;
}

}  // namespace

const char* skip_reason(const Message& m, const paxos::Configuration& config,
                        const std::map<Slot, ValuePtr>& learned) {
  return std::visit(
      [&](const auto& b) -> const char* {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, paxos::Prepare>) {
          if (!ballot_ok(b.ballot, config)) return "rule 1: ballot";
          if (!slot_ok(b.from_slot)) return "rule 2: slot bound";
          if (b.ballot.node != m.from) return "rule 4: not the sender's ballot";
        } else if constexpr (std::is_same_v<T, paxos::Promise>) {
          if (!ballot_ok(b.ballot, config) || !ballot_ok(b.promised, config)) {
            return "rule 1: ballot";
          }
          if (!slot_ok(b.from_slot) || !slot_ok(b.chosen_through)) return "rule 2: slot bound";
          if (!ascending(b.entries)) return "rule 3: entries not ascending";
          for (const auto& e : b.entries) {
            if (!ballot_ok(e.ballot, config)) return "rule 1: ballot";
            if (!slot_ok(e.slot)) return "rule 2: slot bound";
            if (e.chosen && contradicts(learned, e.slot, e.value)) {
              return "rule 5: contradicts a chosen value";
            }
          }
        } else if constexpr (std::is_same_v<T, paxos::Accept>) {
          if (!ballot_ok(b.ballot, config)) return "rule 1: ballot";
          if (!slot_ok(b.slot) || !slot_ok(b.commit)) return "rule 2: slot bound";
          if (b.ballot.node != m.from) return "rule 4: not the sender's ballot";
        } else if constexpr (std::is_same_v<T, paxos::Accepted>) {
          if (!ballot_ok(b.ballot, config) || !ballot_ok(b.promised, config)) {
            return "rule 1: ballot";
          }
          if (!slot_ok(b.slot) || !slot_ok(b.chosen_through)) return "rule 2: slot bound";
        } else if constexpr (std::is_same_v<T, paxos::Heartbeat>) {
          if (!ballot_ok(b.ballot, config)) return "rule 1: ballot";
          if (!slot_ok(b.commit)) return "rule 2: slot bound";
          if (b.ballot.node != m.from) return "rule 4: not the sender's ballot";
        } else if constexpr (std::is_same_v<T, paxos::HeartbeatReply>) {
          if (!ballot_ok(b.ballot, config) || !ballot_ok(b.promised, config)) {
            return "rule 1: ballot";
          }
          if (!slot_ok(b.chosen_through)) return "rule 2: slot bound";
        } else if constexpr (std::is_same_v<T, paxos::CatchupRequest>) {
          if (!slot_ok(b.from_slot) || !slot_ok(b.to_slot)) return "rule 2: slot bound";
        } else if constexpr (std::is_same_v<T, paxos::CatchupReply>) {
          if (!slot_ok(b.chosen_through) || !slot_ok(b.first_slot)) return "rule 2: slot bound";
          if (!ascending(b.entries)) return "rule 3: entries not ascending";
          for (const auto& e : b.entries) {
            if (!slot_ok(e.slot)) return "rule 2: slot bound";
            if (contradicts(learned, e.slot, e.value)) return "rule 5: contradicts a chosen value";
          }
        }
        return nullptr;
      },
      m.body);
}

void check_codec_round_trip(const Message& m) {
  proto::PeerMessage p1;
  codec::to_proto(m, &p1);
  std::string bytes1;
  FUZZ_CHECK(p1.SerializeToString(&bytes1), "cannot serialize %s", paxos::to_string(m).c_str());
  proto::PeerMessage parsed;
  FUZZ_CHECK(parsed.ParseFromString(bytes1), "to_proto's bytes do not parse: %s",
             paxos::to_string(m).c_str());
  Message back;
  std::string error;
  FUZZ_CHECK(codec::from_proto(parsed, &back, &error), "from_proto refused to_proto's output: %s",
             error.c_str());
  proto::PeerMessage p2;
  codec::to_proto(back, &p2);
  std::string bytes2;
  FUZZ_CHECK(p2.SerializeToString(&bytes2), "cannot serialize");
  FUZZ_CHECK(bytes1 == bytes2, "round trip changed %s into %s", paxos::to_string(m).c_str(),
             paxos::to_string(back).c_str());
}

// ---------------------------------------------------------------- ReplicaHarness

ReplicaHarness::ReplicaHarness(std::uint64_t seed, paxos::Options options)
    : config_(three_nodes()), options_(options) {
  replica_ = std::make_unique<paxos::Replica>(kSelf, config_, options_, paxos::DurableState{},
                                              &log_, seed);
  drain();
}

void ReplicaHarness::step(const Message& m) {
  replica_->step(m);
  drain();
}

void ReplicaHarness::tick(int n) {
  for (int i = 0; i < n; ++i) {
    replica_->tick();
    drain();
  }
}

paxos::ProposalId ReplicaHarness::propose(std::string command) {
  std::string copy = command;
  const paxos::ProposalId id = replica_->propose(std::move(command));
  FUZZ_CHECK(!proposed_.contains(id), "proposal id %llu issued twice",
             static_cast<unsigned long long>(id));
  proposed_[id] = std::move(copy);
  drain();
  return id;
}

void ReplicaHarness::restart(std::uint64_t seed) {
  paxos::DurableState d;
  d.promised = durable_.promised;
  d.applied = applied_;
  for (const auto& [slot, e] : durable_.accepted) {
    if (slot > applied_) d.accepted.push_back(e);
  }
  for (const auto& [slot, v] : durable_.chosen) {
    if (slot > applied_) d.chosen.push_back(paxos::ChosenEntry{slot, v});
  }
  // The messages of the old process are gone with it (the transport held them).
  outbox_.clear();
  proposed_.clear();
  answered_.clear();
  replica_ = std::make_unique<paxos::Replica>(kSelf, config_, options_, std::move(d), &log_, seed);
  drain();
}

void ReplicaHarness::compact(Slot first) {
  first = std::min(first, applied_ + 1);
  log_.compact(first);
}

std::vector<Message> ReplicaHarness::take_outbox() { return std::exchange(outbox_, {}); }

void ReplicaHarness::drain() {
  // Like the server: persist, send (messages to self come back as the next
  // inputs), apply; repeat while the core has something to say.
  for (int turn = 0;; ++turn) {
    FUZZ_CHECK(turn < 10000, "the replica keeps talking to itself (%d turns)", turn);
    paxos::Ready ready = replica_->take_ready();
    if (ready.empty()) break;
    std::vector<Message> to_self;
    check_and_absorb(ready, &to_self);
    for (const Message& m : to_self) replica_->step(m);
  }
  const paxos::NodeId hint = replica_->leader_hint();
  FUZZ_CHECK(hint == paxos::kNoNode || config_.contains(hint),
             "leader_hint %u is not a member (the server would throw in fill_not_leader)", hint);
  if (replica_->role() == paxos::Role::kLeader) {
    FUZZ_CHECK(hint == kSelf, "a leader names %u as the leader", hint);
  }
  FUZZ_CHECK(replica_->chosen_through() == applied_,
             "chosen_through %llu but applied %llu after take_ready",
             static_cast<unsigned long long>(replica_->chosen_through()),
             static_cast<unsigned long long>(applied_));
}

void ReplicaHarness::check_and_absorb(paxos::Ready& ready, std::vector<Message>* to_self) {
  // 1. Persist (LogStore::persist's preconditions are SYNOD_CHECKs there).
  const paxos::PersistBatch& p = ready.persist;
  if (p.promised) {
    FUZZ_CHECK(durable_.promised <= *p.promised, "promised goes down from %s to %s",
               paxos::to_string(durable_.promised).c_str(), paxos::to_string(*p.promised).c_str());
    durable_.promised = *p.promised;
  }
  for (const auto& e : p.accepted) {
    FUZZ_CHECK(e.slot >= 1 && e.value != nullptr, "accepted entry slot %llu value %p",
               static_cast<unsigned long long>(e.slot), static_cast<const void*>(e.value.get()));
    FUZZ_CHECK(e.ballot <= durable_.promised, "accepted at %s above the promised %s",
               paxos::to_string(e.ballot).c_str(), paxos::to_string(durable_.promised).c_str());
    durable_.accepted[e.slot] = e;
  }
  for (const auto& e : p.chosen) {
    FUZZ_CHECK(e.slot >= 1 && e.value != nullptr, "chosen entry slot %llu",
               static_cast<unsigned long long>(e.slot));
    auto [it, inserted] = learned_.try_emplace(e.slot, e.value);
    FUZZ_CHECK(inserted || paxos::same_value(it->second, e.value),
               "slot %llu learned chosen twice with different values: %s then %s",
               static_cast<unsigned long long>(e.slot), paxos::to_string(*it->second).c_str(),
               paxos::to_string(*e.value).c_str());
    durable_.chosen[e.slot] = e.value;
    log_.put(e.slot, e.value);
  }

  // 2. Send: every message must be encodable (codec::to_proto dereferences values).
  for (Message& m : ready.messages) {
    FUZZ_CHECK(m.from == kSelf, "a message from %u", m.from);
    FUZZ_CHECK(config_.contains(m.to), "a message to non-member %u", m.to);
    std::visit(
        [](const auto& b) {
          using T = std::decay_t<decltype(b)>;
          if constexpr (std::is_same_v<T, paxos::Accept>) {
            FUZZ_CHECK(b.value != nullptr, "Accept without a value");
          } else if constexpr (std::is_same_v<T, paxos::Promise>) {
            for (const auto& e : b.entries) FUZZ_CHECK(e.value != nullptr, "entry without value");
          } else if constexpr (std::is_same_v<T, paxos::CatchupReply>) {
            for (const auto& e : b.entries) FUZZ_CHECK(e.value != nullptr, "entry without value");
          }
        },
        m.body);
    check_codec_round_trip(m);
    if (m.to == kSelf) {
      to_self->push_back(std::move(m));
    } else {
      outbox_.push_back(std::move(m));
    }
  }
  // Bound the outbox: the fuzzers look at recent messages only.
  if (outbox_.size() > 256) outbox_.erase(outbox_.begin(), outbox_.end() - 128);

  // 3. Apply: contiguous, ascending, each slot's learned value.
  for (const auto& e : ready.committed) {
    FUZZ_CHECK(e.slot == applied_ + 1, "committed slot %llu after applied %llu",
               static_cast<unsigned long long>(e.slot), static_cast<unsigned long long>(applied_));
    FUZZ_CHECK(e.value != nullptr, "committed slot without a value");
    auto it = learned_.find(e.slot);
    FUZZ_CHECK(it != learned_.end() && paxos::same_value(it->second, e.value),
               "slot %llu committed with a value that was not persisted as chosen",
               static_cast<unsigned long long>(e.slot));
    applied_ = e.slot;
  }

  // 4. Outcomes: one final answer per proposal; kChosen means the command is in the slot.
  for (const auto& o : ready.outcomes) {
    auto it = proposed_.find(o.id);
    FUZZ_CHECK(it != proposed_.end(), "outcome for unknown proposal %llu",
               static_cast<unsigned long long>(o.id));
    FUZZ_CHECK(answered_.insert(o.id).second, "proposal %llu answered twice",
               static_cast<unsigned long long>(o.id));
    if (o.status == paxos::ProposalStatus::kChosen) {
      auto l = learned_.find(o.slot);
      FUZZ_CHECK(l != learned_.end(), "proposal chosen at slot %llu, which was not learned",
                 static_cast<unsigned long long>(o.slot));
      const auto& cmds = l->second->commands;
      FUZZ_CHECK(l->second->kind == paxos::ValueKind::kCommands &&
                     std::find(cmds.begin(), cmds.end(), it->second) != cmds.end(),
                 "proposal %llu reported chosen at slot %llu, whose value %s lacks its command",
                 static_cast<unsigned long long>(o.id), static_cast<unsigned long long>(o.slot),
                 paxos::to_string(*l->second).c_str());
    }
    FUZZ_CHECK(o.leader_hint == paxos::kNoNode || config_.contains(o.leader_hint),
               "outcome names non-member leader %u", o.leader_hint);
  }
}

}  // namespace synod::fuzz
