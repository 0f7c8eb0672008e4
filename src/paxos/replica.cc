#include "paxos/replica.h"

#include <algorithm>
#include <bit>
#include <utility>

#include "common/check.h"

namespace synod::paxos {

const char* to_string(Role role) {
  switch (role) {
    case Role::kFollower: return "follower";
    case Role::kCandidate: return "candidate";
    case Role::kLeader: return "leader";
  }
  return "?";
}

Replica::Replica(NodeId id, Configuration config, Options options, DurableState durable,
                 const ChosenLog* log, std::uint64_t seed)
    : id_(id), config_(std::move(config)), opts_(options), log_(log), rng_(seed) {
  SYNOD_CHECK_MSG(id_ != kNoNode, "node id 0 is reserved");
  SYNOD_CHECK_MSG(config_.contains(id_), "a replica must be a member of its configuration");
  SYNOD_CHECK(config_.members.size() <= Configuration::kMaxMembers);
  SYNOD_CHECK_MSG(opts_.lease_ticks < opts_.election_timeout_ticks,
                  "lease_ticks must be below election_timeout_ticks");
  SYNOD_CHECK(opts_.lease_drift_ticks < opts_.lease_ticks);
  SYNOD_CHECK(opts_.window_slots > 0 && opts_.max_batch_commands > 0);
  SYNOD_CHECK(opts_.heartbeat_ticks > 0 && opts_.retransmit_ticks > 0);

  promised_ = durable.promised;
  highest_seen_ = durable.promised;
  applied_ = durable.applied;
  chosen_through_ = applied_;
  for (auto& e : durable.accepted) {
    SYNOD_CHECK(e.value != nullptr);
    if (e.slot > applied_) accepted_[e.slot] = std::move(e);
  }
  for (auto& e : durable.chosen) {
    SYNOD_CHECK(e.value != nullptr);
    if (e.slot > applied_) chosen_[e.slot] = std::move(e.value);
  }
  // Chosen slots right after the applied point were made durable but not yet
  // applied when the node stopped: hand them out again, in order.
  while (true) {
    auto it = chosen_.find(chosen_through_ + 1);
    if (it == chosen_.end()) break;
    ++chosen_through_;
    ready_.committed.push_back(ChosenEntry{chosen_through_, it->second});
  }
  known_commit_ = chosen_through_;
  last_heard_.assign(config_.members.size(), 0);
  // An acceptor may have granted a lease just before it stopped and has
  // forgotten it: promise nobody until any such lease has run out.
  lease_holder_ = kNoNode;
  lease_grant_until_ = opts_.lease_ticks;
  reset_election_timer();
}

// ---------------------------------------------------------------- inputs

ProposalId Replica::propose(std::string command) {
  const ProposalId id = next_proposal_id_++;
  if (command.size() > opts_.max_batch_bytes) {
    refuse(id, ProposalStatus::kTooLarge);
  } else if (role_ == Role::kFollower) {
    refuse(id, ProposalStatus::kNotLeader);
  } else if (pending_.size() >= opts_.max_pending_proposals) {
    refuse(id, ProposalStatus::kBusy);
  } else {
    pending_.push_back(Pending{id, std::move(command)});
  }
  return id;
}

void Replica::step(const Message& message) {
  if (message.to != id_ || !config_.contains(message.from)) {
    ++stats_.messages_ignored;
    return;
  }
  const NodeId from = message.from;
  std::visit(
      [&](const auto& body) {
        using T = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<T, Prepare>) on_prepare(from, body);
        else if constexpr (std::is_same_v<T, Promise>) on_promise(from, body);
        else if constexpr (std::is_same_v<T, Accept>) on_accept(from, body);
        else if constexpr (std::is_same_v<T, Accepted>) on_accepted(from, body);
        else if constexpr (std::is_same_v<T, Heartbeat>) on_heartbeat(from, body);
        else if constexpr (std::is_same_v<T, HeartbeatReply>) on_heartbeat_reply(from, body);
        else if constexpr (std::is_same_v<T, CatchupRequest>) on_catchup_request(from, body);
        else if constexpr (std::is_same_v<T, CatchupReply>) on_catchup_reply(from, body);
      },
      message.body);
}

void Replica::advance(bool decide) {
  ++tick_;
  if (role_ == Role::kLeader) {
    if (++heartbeat_elapsed_ >= opts_.heartbeat_ticks) broadcast_heartbeat();
    // A leader that has not heard from a majority for an election timeout
    // steps down, so clients fail over instead of hanging (LogCabin #202).
    std::size_t live = 1;
    for (std::size_t i = 0; i < config_.members.size(); ++i) {
      if (config_.members[i] != id_ && tick_ - last_heard_[i] < opts_.election_timeout_ticks) {
        ++live;
      }
    }
    if (live < config_.quorum()) {
      if (decide) step_down(kNoNode);
    } else {
      // Resend accepts that have not reached a quorum.
      for (auto& [slot, inst] : instances_) {
        if (tick_ - inst.sent_tick < opts_.retransmit_ticks) continue;
        inst.sent_tick = tick_;
        for (NodeId m : config_.members) {
          if ((inst.acks & member_bit(m)) == 0) send_accept(m, slot, inst);
        }
      }
    }
  } else {
    if (++election_elapsed_ >= election_deadline_) {
      if (!decide) {
        // decided at the next tick(), after the inbox
      } else if (can_lead_) {
        start_election();
      } else {
        reset_election_timer();  // an acceptor that cannot lead waits for one that can
      }
    } else if (role_ == Role::kCandidate && tick_ - prepare_sent_tick_ >= opts_.retransmit_ticks) {
      prepare_sent_tick_ = tick_;
      for (NodeId m : config_.members) {
        if (!promises_.contains(m)) send(m, Prepare{ballot_, chosen_through_ + 1});
      }
    }
  }
  if (catchup_inflight_ && tick_ - catchup_sent_tick_ >= opts_.retransmit_ticks) {
    catchup_inflight_ = false;  // lost or slow: ask again, maybe someone else
    catchup_peer_ = kNoNode;
  }
}

Ready Replica::take_ready() {
  if (role_ == Role::kLeader) flush_proposals();
  maybe_request_catchup();
  Ready out = std::move(ready_);
  ready_ = Ready{};
  if (opts_.planted_bug == PlantedBug::kAnswerBeforePersist) {
    // The bug: this Ready's acceptor answers leave now, their state a Ready later.
    PersistBatch& p = out.persist;
    if (deferred_previous_.promised) p.promised = deferred_previous_.promised;
    p.accepted.insert(p.accepted.end(), deferred_previous_.accepted.begin(),
                      deferred_previous_.accepted.end());
    deferred_previous_ = std::move(deferred_current_);
    deferred_current_ = PersistBatch{};
  }
  // Everything up to chosen_through_ is now handed to the driver, which applies
  // it before the next input: memory keeps only what is above.
  applied_ = chosen_through_;
  accepted_.erase(accepted_.begin(), accepted_.upper_bound(applied_));
  chosen_.erase(chosen_.begin(), chosen_.upper_bound(applied_));
  return out;
}

// ---------------------------------------------------------------- acceptor

bool Replica::lease_blocks(NodeId candidate) const {
  if (opts_.planted_bug == PlantedBug::kPromiseDuringLease) return false;
  return candidate != id_ && candidate != lease_holder_ && tick_ < lease_grant_until_;
}

void Replica::on_prepare(NodeId from, const Prepare& m) {
  Promise reply;
  reply.ballot = m.ballot;
  reply.from_slot = m.from_slot;
  reply.chosen_through = chosen_through_;
  // Under a lease this node neither promises nor lets the higher ballot depose
  // the leader it granted: that is what makes lease reads safe.
  if (!lease_blocks(from)) observe(m.ballot);
  if (m.ballot < promised_ || lease_blocks(from)) {
    reply.ok = false;
    reply.promised = promised_;
    send(from, std::move(reply));
    return;
  }
  set_promised(m.ballot);
  if (from != id_) reset_election_timer();  // give the candidate time to finish
  reply.ok = true;
  reply.promised = promised_;
  auto acc = accepted_.lower_bound(m.from_slot);
  auto cho = chosen_.lower_bound(m.from_slot);
  // Merge accepted and known-chosen slots in slot order.
  while (acc != accepted_.end() || cho != chosen_.end()) {
    if (cho == chosen_.end() || (acc != accepted_.end() && acc->first < cho->first)) {
      reply.entries.push_back(PromiseEntry{acc->first, acc->second.ballot, acc->second.value, false});
      ++acc;
    } else if (acc == accepted_.end() || cho->first < acc->first) {
      reply.entries.push_back(PromiseEntry{cho->first, Ballot{}, cho->second, true});
      ++cho;
    } else {
      reply.entries.push_back(PromiseEntry{cho->first, acc->second.ballot, cho->second, true});
      ++acc;
      ++cho;
    }
  }
  send(from, std::move(reply));
}

void Replica::on_accept(NodeId from, const Accept& m) {
  SYNOD_CHECK(m.value != nullptr);
  Accepted reply;
  reply.ballot = m.ballot;
  reply.slot = m.slot;
  observe(m.ballot);
  const bool lower = m.ballot < promised_;
  if (lower && opts_.planted_bug != PlantedBug::kAcceptLowerBallot) {
    reply.ok = false;
    reply.promised = promised_;
    reply.chosen_through = chosen_through_;
    send(from, std::move(reply));
    return;
  }
  if (!lower) {
    set_promised(m.ballot);
    heard_from_leader(from, m.ballot);
  }
  if (m.slot <= applied_) {
    // Chosen, applied and dropped from memory here: the sender should learn it.
    reply.ok = false;
  } else {
    persist_accepted(m.slot, m.ballot, m.value);
    reply.ok = true;
  }
  reply.promised = promised_;
  reply.chosen_through = chosen_through_;
  send(from, std::move(reply));
  if (!lower) learn_commit(from, m.ballot, m.commit);
}

void Replica::on_heartbeat(NodeId from, const Heartbeat& m) {
  HeartbeatReply reply;
  reply.ballot = m.ballot;
  reply.round = m.round;
  observe(m.ballot);
  if (m.ballot < promised_) {
    reply.ok = false;
  } else {
    set_promised(m.ballot);
    heard_from_leader(from, m.ballot);
    // The lease grant: promise nobody else for lease_ticks on this clock.
    lease_holder_ = from;
    lease_grant_until_ = tick_ + opts_.lease_ticks;
    learn_commit(from, m.ballot, m.commit);
    reply.ok = true;
  }
  reply.promised = promised_;
  reply.chosen_through = chosen_through_;
  send(from, std::move(reply));
}

void Replica::on_catchup_request(NodeId from, const CatchupRequest& m) {
  CatchupReply reply;
  reply.chosen_through = chosen_through_;
  std::size_t bytes = 0;
  const Slot last = std::min(m.to_slot, chosen_through_);
  for (Slot s = m.from_slot; s <= last; ++s) {
    ValuePtr v;
    if (s > applied_) {
      auto it = chosen_.find(s);
      if (it != chosen_.end()) v = it->second;
    } else if (log_ != nullptr) {
      v = log_->chosen(s);
    }
    if (!v) {
      if (log_ != nullptr && s < log_->first_slot()) {
        reply.snapshot_needed = true;
        reply.first_slot = log_->first_slot();
      }
      break;
    }
    bytes += v->byte_size();
    reply.entries.push_back(ChosenEntry{s, std::move(v)});
    if (reply.entries.size() >= opts_.max_catchup_slots || bytes >= opts_.max_catchup_bytes) break;
  }
  send(from, std::move(reply));
}

void Replica::set_promised(Ballot b) {
  if (b <= promised_) return;
  promised_ = b;
  acceptor_persist().promised = b;
}

void Replica::persist_accepted(Slot slot, Ballot b, const ValuePtr& value) {
  auto [it, inserted] = accepted_.try_emplace(slot, AcceptedEntry{slot, b, value});
  if (!inserted) {
    if (it->second.ballot == b && same_value(it->second.value, value)) return;  // duplicate
    it->second = AcceptedEntry{slot, b, value};
  }
  acceptor_persist().accepted.push_back(AcceptedEntry{slot, b, value});
}

PersistBatch& Replica::acceptor_persist() {
  return opts_.planted_bug == PlantedBug::kAnswerBeforePersist ? deferred_current_
                                                               : ready_.persist;
}

// ---------------------------------------------------------------- proposer

void Replica::reset_election_timer() {
  election_elapsed_ = 0;
  election_deadline_ =
      rng_.between(opts_.election_timeout_ticks, 2 * opts_.election_timeout_ticks - 1);
}

void Replica::start_election() {
  if (role_ == Role::kLeader) return;
  role_ = Role::kCandidate;
  ++stats_.elections_started;
  const std::uint64_t round =
      std::max({promised_.round, highest_seen_.round, ballot_.round}) + 1;
  ballot_ = Ballot{round, id_};
  highest_seen_ = std::max(highest_seen_, ballot_);
  leader_hint_ = kNoNode;
  promises_.clear();
  reset_election_timer();
  prepare_sent_tick_ = tick_;
  for (NodeId m : config_.members) send(m, Prepare{ballot_, chosen_through_ + 1});
}

void Replica::on_promise(NodeId from, const Promise& m) {
  note_peer_commit(from, m.chosen_through);
  if (!m.ok) observe(m.promised);
  if (role_ != Role::kCandidate || m.ballot != ballot_ || !m.ok) return;
  promises_[from] = m;
  if (promises_.size() >= config_.quorum()) become_leader();
}

void Replica::become_leader() {
  role_ = Role::kLeader;
  leader_hint_ = id_;
  ++stats_.leaderships_won;
  // The highest-ballot accepted value per slot; slots some promiser knows chosen.
  Slot max_chosen = chosen_through_;
  NodeId ahead = kNoNode;
  std::map<Slot, PromiseEntry> best;
  for (const auto& [node, promise] : promises_) {
    if (promise.chosen_through > max_chosen) {
      max_chosen = promise.chosen_through;
      ahead = node;
    }
    for (const PromiseEntry& e : promise.entries) {
      if (opts_.planted_bug == PlantedBug::kIgnorePromiseValues) continue;
      if (e.slot <= chosen_through_) continue;
      if (e.chosen) {
        learn_chosen(e.slot, e.value);
        continue;
      }
      auto [it, inserted] = best.try_emplace(e.slot, e);
      if (!inserted && it->second.ballot < e.ballot) it->second = e;
    }
  }
  promises_.clear();
  if (role_ != Role::kLeader) return;  // a learned chosen value superseded our own proposal
  Slot max_slot = std::max(max_chosen, chosen_through_);
  if (!best.empty()) max_slot = std::max(max_slot, best.rbegin()->first);
  if (!chosen_.empty()) max_slot = std::max(max_slot, chosen_.rbegin()->first);
  instances_.clear();
  // Slots up to max_chosen are chosen at some promiser, which may have dropped
  // its accepted value there: learn them by catch-up, never re-propose them
  // (and do not walk them: the gap can be huge for a lagging node).
  for (Slot s = std::max(chosen_through_, max_chosen) + 1; s <= max_slot; ++s) {
    if (chosen_.contains(s)) continue;
    auto it = best.find(s);
    start_instance(s, it != best.end() ? it->second.value : noop_value());
  }
  next_slot_ = max_slot + 1;
  term_start_slot_ = max_slot;
  if (max_chosen > known_commit_) {
    known_commit_ = max_chosen;
    catchup_peer_ = ahead;
  }
  std::fill(last_heard_.begin(), last_heard_.end(), tick_);
  heartbeat_rounds_.clear();
  lease_until_ = 0;
  broadcast_heartbeat();
}

void Replica::start_instance(Slot slot, ValuePtr value) {
  SYNOD_CHECK(value != nullptr);
  Instance& inst = instances_[slot];
  inst.value = std::move(value);
  inst.acks = 0;
  inst.sent_tick = tick_;
  ++stats_.slots_proposed;
  for (NodeId m : config_.members) send_accept(m, slot, inst);
}

void Replica::send_accept(NodeId to, Slot slot, const Instance& instance) {
  send(to, Accept{ballot_, slot, instance.value, chosen_through_});
}

void Replica::flush_proposals() {
  while (!pending_.empty() && next_slot_ - chosen_through_ - 1 < opts_.window_slots) {
    auto value = std::make_shared<Value>();
    value->kind = ValueKind::kCommands;
    Tracked tracked;
    std::size_t bytes = 0;
    while (!pending_.empty() && value->commands.size() < opts_.max_batch_commands &&
           (value->commands.empty() ||
            bytes + pending_.front().command.size() <= opts_.max_batch_bytes)) {
      bytes += pending_.front().command.size();
      tracked.ids.push_back(pending_.front().id);
      value->commands.push_back(std::move(pending_.front().command));
      pending_.pop_front();
    }
    stats_.commands_proposed += value->commands.size();
    tracked.value = value;
    const Slot slot = next_slot_++;
    tracked_[slot].push_back(std::move(tracked));
    start_instance(slot, std::move(value));
  }
}

void Replica::on_accepted(NodeId from, const Accepted& m) {
  note_peer_commit(from, m.chosen_through);
  observe(m.promised);
  if (role_ != Role::kLeader || m.ballot != ballot_) return;
  last_heard_[static_cast<std::size_t>(config_.index_of(from))] = tick_;
  if (!m.ok) return;  // a refusal (observe stepped us down) or chosen there (note_peer_commit)
  auto it = instances_.find(m.slot);
  if (it == instances_.end()) return;
  it->second.acks |= member_bit(from);
  if (count_bits(it->second.acks) >= config_.quorum()) {
    const ValuePtr value = it->second.value;
    learn_chosen(m.slot, value);
  }
}

void Replica::broadcast_heartbeat() {
  heartbeat_elapsed_ = 0;
  const std::uint64_t round = ++heartbeat_round_;
  heartbeat_rounds_[round] = HeartbeatRound{tick_, member_bit(id_)};
  // Keep only the rounds that can still extend the lease.
  while (!heartbeat_rounds_.empty() &&
         heartbeat_rounds_.begin()->second.sent_tick + opts_.lease_ticks <= tick_) {
    heartbeat_rounds_.erase(heartbeat_rounds_.begin());
  }
  // The leader's own acceptor grants the lease too.
  lease_holder_ = id_;
  lease_grant_until_ = tick_ + opts_.lease_ticks;
  if (config_.quorum() == 1) lease_until_ = tick_ + opts_.lease_ticks - opts_.lease_drift_ticks;
  for (NodeId m : config_.members) {
    if (m != id_) send(m, Heartbeat{ballot_, chosen_through_, round});
  }
}

void Replica::on_heartbeat_reply(NodeId from, const HeartbeatReply& m) {
  note_peer_commit(from, m.chosen_through);
  observe(m.promised);
  if (role_ != Role::kLeader || m.ballot != ballot_ || !m.ok) return;
  last_heard_[static_cast<std::size_t>(config_.index_of(from))] = tick_;
  auto it = heartbeat_rounds_.find(m.round);
  if (it == heartbeat_rounds_.end()) return;
  it->second.acks |= member_bit(from);
  if (count_bits(it->second.acks) >= config_.quorum()) {
    // Measured from when the heartbeat left, not from now: every acceptor that
    // granted it did so later, on its own clock.
    lease_until_ = std::max(lease_until_, it->second.sent_tick + opts_.lease_ticks -
                                              opts_.lease_drift_ticks);
  }
}

std::optional<Slot> Replica::lease_read_slot() const {
  if (role_ != Role::kLeader || tick_ >= lease_until_ || chosen_through_ < term_start_slot_) {
    return std::nullopt;
  }
  return chosen_through_;
}

void Replica::observe(Ballot seen) {
  if (seen > highest_seen_) highest_seen_ = seen;
  if (role_ != Role::kFollower && seen > ballot_) {
    // A leader whose lease still holds knows that no other proposer can have
    // a quorum's promises: the higher ballot comes from a node campaigning
    // without one (one that restarted, or whose loop stalled past its election
    // timeout). Stepping down would leave the cluster without a leader until
    // the lease ran out, and that node might then win while it cannot serve.
    // So the leader campaigns again at once, above what it saw: the acceptors
    // that granted its lease promise their lease holder (lease_blocks), and
    // the campaigning node's own ballot is now the lower one.
    const bool campaign_again = role_ == Role::kLeader && tick_ < lease_until_ && can_lead_;
    step_down(config_.contains(seen.node) ? seen.node : kNoNode);
    if (campaign_again) {
      ++stats_.lease_recampaigns;
      start_election();
    }
  }
}

void Replica::heard_from_leader(NodeId from, Ballot b) {
  if (from == id_) return;
  // Only a member can be a leader hint: the driver looks the hint up.
  leader_hint_ = config_.contains(b.node) ? b.node : kNoNode;
  reset_election_timer();
}

void Replica::set_can_lead(bool can_lead) {
  if (can_lead_ == can_lead) return;
  can_lead_ = can_lead;
  if (!can_lead_ && role_ != Role::kFollower) {
    ++stats_.handovers;
    step_down(kNoNode);
  }
}

void Replica::step_down(NodeId hint) {
  if (role_ != Role::kFollower) {
    ++stats_.step_downs;
    role_ = Role::kFollower;
    instances_.clear();  // their proposals stay in tracked_ until their slots are learned
    promises_.clear();
    lease_until_ = 0;
    term_start_slot_ = 0;
    while (!pending_.empty()) {
      ready_.outcomes.push_back(
          ProposalOutcome{pending_.front().id, ProposalStatus::kNotLeader, 0, hint});
      pending_.pop_front();
    }
  }
  leader_hint_ = hint;
  reset_election_timer();
}

void Replica::refuse(ProposalId id, ProposalStatus status) {
  ready_.outcomes.push_back(ProposalOutcome{id, status, 0, leader_hint_});
}

// ---------------------------------------------------------------- learner

void Replica::learn_commit(NodeId from, Ballot ballot, Slot commit) {
  note_peer_commit(from, commit);
  // Slot s <= commit is chosen; if we accepted s at the sender's ballot, ours
  // is the one value that ballot proposed there, hence the chosen one.
  for (auto it = accepted_.upper_bound(chosen_through_);
       it != accepted_.end() && it->first <= commit;) {
    const Slot s = it->first;
    const bool match = it->second.ballot == ballot;
    const ValuePtr value = it->second.value;
    ++it;  // learn_chosen never erases from accepted_
    if (match && !chosen_.contains(s)) learn_chosen(s, value);
  }
}

void Replica::learn_chosen(Slot slot, const ValuePtr& value) {
  SYNOD_CHECK(value != nullptr);
  if (slot <= applied_) return;
  auto [it, inserted] = chosen_.try_emplace(slot, value);
  if (!inserted) {
    SYNOD_CHECK_MSG(same_value(it->second, value) || opts_.planted_bug != PlantedBug::kNone,
                    "two different values learned chosen for one slot");
    return;
  }
  ready_.persist.chosen.push_back(ChosenEntry{slot, value});
  if (value->kind != ValueKind::kNoop) stats_.commands_chosen += value->commands.size();

  auto inst = instances_.find(slot);
  if (inst != instances_.end()) {
    const bool ours = same_value(inst->second.value, value);
    instances_.erase(inst);
    // Another value was chosen where this leader proposed: a higher ballot got
    // there first. Stop before announcing a commit point that covers it.
    if (!ours && role_ == Role::kLeader) step_down(kNoNode);
  }
  auto tr = tracked_.find(slot);
  if (tr != tracked_.end()) {
    for (const Tracked& t : tr->second) {
      const bool ours = same_value(t.value, value);
      for (ProposalId id : t.ids) {
        ready_.outcomes.push_back(ProposalOutcome{
            id, ours ? ProposalStatus::kChosen : ProposalStatus::kSuperseded, slot, leader_hint_});
      }
    }
    tracked_.erase(tr);
  }
  while (true) {
    auto next = chosen_.find(chosen_through_ + 1);
    if (next == chosen_.end()) break;
    ++chosen_through_;
    ready_.committed.push_back(ChosenEntry{chosen_through_, next->second});
  }
  if (chosen_through_ > known_commit_) known_commit_ = chosen_through_;
}

void Replica::note_peer_commit(NodeId from, Slot chosen_through) {
  if (chosen_through > known_commit_) {
    known_commit_ = chosen_through;
    catchup_peer_ = from;
  }
}

void Replica::maybe_request_catchup() {
  if (!is_catching_up() || catchup_inflight_) return;
  NodeId peer = catchup_peer_;
  if (peer == kNoNode || peer == id_) peer = leader_hint_;
  if (peer == kNoNode || peer == id_) {
    // Anyone but us: the retry rotates through the members.
    peer = config_.members[rng_.below(config_.members.size())];
    if (peer == id_) return;
  }
  const Slot from = chosen_through_ + 1;
  const Slot to = std::min<Slot>(known_commit_, from + opts_.max_catchup_slots - 1);
  send(peer, CatchupRequest{from, to});
  catchup_inflight_ = true;
  catchup_sent_tick_ = tick_;
  ++stats_.catchup_requests_sent;
}

void Replica::on_catchup_reply(NodeId from, const CatchupReply& m) {
  note_peer_commit(from, m.chosen_through);
  for (const ChosenEntry& e : m.entries) {
    if (e.slot > chosen_through_) ++stats_.catchup_slots_received;
    learn_chosen(e.slot, e.value);
  }
  if (m.snapshot_needed) ready_.snapshot_needed = SnapshotNeeded{from, m.first_slot};
  if (!m.entries.empty()) {
    catchup_inflight_ = false;  // ask for the next range at once
  } else {
    catchup_peer_ = kNoNode;  // it has nothing for us: ask another after the timeout
  }
}

// ---------------------------------------------------------------- helpers

void Replica::send(NodeId to, MessageBody body) {
  ready_.messages.push_back(Message{id_, to, std::move(body)});
}

std::uint64_t Replica::member_bit(NodeId id) const {
  const int index = config_.index_of(id);
  SYNOD_CHECK(index >= 0);
  return std::uint64_t{1} << index;
}

std::size_t Replica::count_bits(std::uint64_t bits) const {
  return static_cast<std::size_t>(std::popcount(bits));
}

std::size_t Replica::slots_in_memory() const {
  return accepted_.size() + chosen_.size() + instances_.size() + tracked_.size();
}

}  // namespace synod::paxos
