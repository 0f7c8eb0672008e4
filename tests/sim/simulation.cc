#include "sim/simulation.h"

#include <algorithm>
#include <cstdio>
#include <deque>
#include <map>
#include <optional>
#include <queue>
#include <sstream>

#include "paxos/chosen_log.h"
#include "paxos/messages.h"
#include "paxos/random.h"
#include "paxos/replica.h"
#include "sim/invariants.h"

namespace synod::sim {

using paxos::Ballot;
using paxos::NodeId;
using paxos::Slot;
using paxos::ValuePtr;

// ------------------------------------------------------------------ names

bool Faults::parse(const std::string& list, Faults* out, std::string* error) {
  Faults f;
  std::stringstream ss(list);
  std::string name;
  while (std::getline(ss, name, ',')) {
    if (name.empty() || name == "none") continue;
    if (name == "loss") {
      f.loss = 0.05;
    } else if (name == "dup") {
      f.duplicate = 0.05;
    } else if (name == "reorder") {
      f.max_delay = 6;
    } else if (name == "partition") {
      f.partitions = true;
    } else if (name == "crash") {
      f.crashes = true;
    } else if (name == "pause") {
      f.pauses = true;
    } else if (name == "skew") {
      f.clock_skew = true;
    } else if (name == "nolead") {
      f.cannot_lead = true;
    } else if (name == "all") {
      f = Faults{0.05, 0.05, 6, true, true, true, true, true};
    } else {
      *error = "unknown fault '" + name +
               "' (known: loss, dup, reorder, partition, crash, pause, skew, nolead, all, none)";
      return false;
    }
  }
  *out = f;
  return true;
}

std::string Faults::to_string() const {
  std::string s;
  auto add = [&s](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ",";
    s += name;
  };
  add(loss > 0, "loss");
  add(duplicate > 0, "dup");
  add(max_delay > 1, "reorder");
  add(partitions, "partition");
  add(crashes, "crash");
  add(pauses, "pause");
  add(clock_skew, "skew");
  add(cannot_lead, "nolead");
  return s.empty() ? "none" : s;
}

const char* to_string(paxos::PlantedBug bug) {
  switch (bug) {
    case paxos::PlantedBug::kNone: return "none";
    case paxos::PlantedBug::kAnswerBeforePersist: return "answer-before-persist";
    case paxos::PlantedBug::kIgnorePromiseValues: return "ignore-promise-values";
    case paxos::PlantedBug::kAcceptLowerBallot: return "accept-lower-ballot";
    case paxos::PlantedBug::kPromiseDuringLease: return "promise-during-lease";
  }
  return "?";
}

bool parse_bug(const std::string& name, paxos::PlantedBug* out) {
  for (auto b : {paxos::PlantedBug::kNone, paxos::PlantedBug::kAnswerBeforePersist,
                 paxos::PlantedBug::kIgnorePromiseValues, paxos::PlantedBug::kAcceptLowerBallot,
                 paxos::PlantedBug::kPromiseDuringLease}) {
    if (name == to_string(b)) {
      *out = b;
      return true;
    }
  }
  return false;
}

std::string replay_command(const SimConfig& c) {
  std::string cmd = "synod-sim --seed " + std::to_string(c.seed) +
                    " --nodes " + std::to_string(c.nodes) + " --faults " + c.faults.to_string() +
                    " --fault-ticks " + std::to_string(c.fault_ticks) + " --heal-ticks " +
                    std::to_string(c.heal_ticks);
  if (c.options.planted_bug != paxos::PlantedBug::kNone) {
    cmd += std::string(" --bug ") + to_string(c.options.planted_bug);
  }
  return cmd + " --trace";
}

std::string failure_report(const SimConfig& config, const SimResult& r) {
  std::string s = "SAFETY/LIVENESS VIOLATION at tick " + std::to_string(r.violation_tick) +
                  ": " + r.violation + "\n  seed " + std::to_string(config.seed) + ", " +
                  std::to_string(config.nodes) + " nodes, faults " + config.faults.to_string() +
                  "\n  replay: " + replay_command(config) + "\n";
  if (!r.trace_tail.empty()) {
    s += "  last " + std::to_string(r.trace_tail.size()) + " events:\n";
    for (const auto& line : r.trace_tail) s += "    " + line + "\n";
  }
  return s;
}

// ------------------------------------------------------------------ simulator

namespace {

struct Disk {
  Ballot promised;
  std::map<Slot, paxos::AcceptedEntry> accepted;
  paxos::MemoryChosenLog chosen;
  std::vector<ValuePtr> applied;  // the state machine: durable, like a backend
};

struct Node {
  NodeId id = 0;
  std::unique_ptr<paxos::Replica> replica;  // null while crashed
  Disk disk;
  std::uint64_t incarnation = 0;
  std::uint64_t restart_at = 0;
  std::uint64_t pause_until = 0;  // paused while now < pause_until
  std::uint64_t nolead_until = 0;  // cannot lead while now < nolead_until (a failing backend)
  std::uint64_t missed_ticks = 0;
  double slow = 0;  // probability of missing a tick (a slow clock)
  std::map<paxos::ProposalId, std::string> proposals;  // this incarnation's
  std::deque<paxos::Ready> pending;  // persisting: early messages already sent
  bool up() const { return replica != nullptr; }
};

struct InFlight {
  std::uint64_t due;
  std::uint64_t seq;
  paxos::Message message;
  bool operator>(const InFlight& o) const { return due != o.due ? due > o.due : seq > o.seq; }
};

class Simulation {
 public:
  explicit Simulation(const SimConfig& c)
      : cfg_(c), rng_(c.seed * 0x9E3779B97F4A7C15ULL + 17), checker_(c.nodes / 2 + 1) {
    for (int i = 1; i <= cfg_.nodes; ++i) config_.members.push_back(static_cast<NodeId>(i));
    nodes_.resize(static_cast<std::size_t>(cfg_.nodes));
    for (int i = 0; i < cfg_.nodes; ++i) {
      Node& n = nodes_[static_cast<std::size_t>(i)];
      n.id = static_cast<NodeId>(i + 1);
      if (cfg_.faults.clock_skew && rng_.chance(0.5)) n.slow = 0.02 + 0.08 * rng_.chance(0.5);
      start(n);
    }
    cut_.assign(nodes_.size(), std::vector<bool>(nodes_.size(), false));
  }

  SimResult run() {
    const std::uint64_t end = cfg_.fault_ticks + cfg_.heal_ticks;
    const std::uint64_t drain = std::min<std::uint64_t>(cfg_.heal_ticks / 2, 150);
    for (now_ = 1; now_ <= end && ok(); ++now_) {
      const bool faulty = now_ <= cfg_.fault_ticks;
      if (now_ == cfg_.fault_ticks + 1) heal();
      if (faulty) inject_faults();
      restart_due();
      if (now_ + drain <= end) propose(!faulty);
      deliver();
      complete_some();
      tick_all();
      update_can_lead();
      check_leases();
    }
    for (Node& n : nodes_) {
      if (n.up()) complete_pending(n);
    }
    if (ok()) check_end();
    result_.ok = ok();
    result_.violation = checker_.ok() ? violation_ : checker_.violation();
    result_.violation_tick = result_.ok ? 0 : std::min(now_, end);
    result_.slots_chosen = checker_.slots_chosen();
    result_.commands_acked = checker_.commands_acked();
    for (const Node& n : nodes_) {
      if (n.replica) {
        result_.elections += n.replica->stats().elections_started;
        result_.lease_recampaigns += n.replica->stats().lease_recampaigns;
        result_.handovers += n.replica->stats().handovers;
      }
    }
    return result_;
  }

  std::deque<std::string> trace_;
  bool keep_trace_ = false;

 private:
  // ---- tracing: formatted only when someone will read it
  bool tracing() const { return cfg_.trace || keep_trace_; }
  void trace(const std::string& line) {
    std::string s = "t=" + std::to_string(now_) + " " + line;
    if (cfg_.trace) std::fprintf(stderr, "%s\n", s.c_str());
    if (keep_trace_) {
      trace_.push_back(std::move(s));
      if (trace_.size() > cfg_.trace_tail) trace_.pop_front();
    }
  }

  Node& node(NodeId id) { return nodes_[id - 1]; }

  // ---- node lifecycle
  void start(Node& n) {
    paxos::DurableState d;
    d.promised = n.disk.promised;
    d.applied = n.disk.applied.size();
    for (const auto& [slot, e] : n.disk.accepted) {
      if (slot > d.applied) d.accepted.push_back(e);
    }
    for (Slot s = d.applied + 1; ; ++s) {
      ValuePtr v = n.disk.chosen.chosen(s);
      if (!v) break;
      d.chosen.push_back(paxos::ChosenEntry{s, v});
    }
    ++n.incarnation;
    n.proposals.clear();
    n.replica = std::make_unique<paxos::Replica>(n.id, config_, cfg_.options, std::move(d),
                                                 &n.disk.chosen,
                                                 cfg_.seed * 1000003 + n.id * 7919 + n.incarnation);
    // The backend is still failing after a restart.
    if (now_ < n.nolead_until) n.replica->set_can_lead(false);
    if (tracing()) trace("start n" + std::to_string(n.id) + " incarnation " +
                         std::to_string(n.incarnation) + " applied=" +
                         std::to_string(n.disk.applied.size()));
    process(n);
  }

  void crash(Node& n) {
    n.replica.reset();  // everything not on n.disk is gone
    n.pending.clear();  // writes in flight never reached the disk
    n.restart_at = now_ + rng_.between(3, 60);
    n.pause_until = 0;
    ++result_.crashes;
    if (tracing()) trace("CRASH n" + std::to_string(n.id));
  }

  void restart_due() {
    for (Node& n : nodes_) {
      if (!n.up() && n.restart_at <= now_) start(n);
    }
  }

  bool paused(const Node& n) const { return now_ < n.pause_until; }

  // ---- faults
  void inject_faults() {
    const Faults& f = cfg_.faults;
    if (f.crashes && rng_.chance(0.02)) {
      Node& n = nodes_[rng_.below(nodes_.size())];
      // Often the leader: that is where the interesting recoveries are.
      Node* victim = &n;
      if (rng_.chance(0.5)) {
        for (Node& m : nodes_) {
          if (m.up() && m.replica->role() == paxos::Role::kLeader) victim = &m;
        }
      }
      if (victim->up()) crash(*victim);
    }
    if (f.partitions) {
      if (partition_until_ != 0 && now_ >= partition_until_) {
        heal_links();
        if (tracing()) trace("partition healed");
      } else if (partition_until_ == 0 && rng_.chance(0.02)) {
        partition();
      }
    }
    if (f.cannot_lead && rng_.chance(0.01)) {
      // Usually the leader: that is the case that matters (it holds answers).
      Node& n = nodes_[leader_index_or_random()];
      if (n.up() && now_ >= n.nolead_until) {
        n.nolead_until = now_ + rng_.between(5, 80);
        ++result_.cannot_lead_periods;
        if (tracing()) trace("NOLEAD n" + std::to_string(n.id) + " until t=" +
                             std::to_string(n.nolead_until));
        n.replica->set_can_lead(false);
        if (!paused(n)) process(n);
      }
    }
    if (f.pauses && rng_.chance(0.01)) {
      Node& n = nodes_[rng_.below(nodes_.size())];
      if (n.up() && !paused(n)) {
        n.pause_until = now_ + rng_.between(5, 50);
        ++result_.pauses;
        if (tracing()) trace("PAUSE n" + std::to_string(n.id) + " until t=" +
                             std::to_string(n.pause_until));
      }
    }
  }

  std::size_t leader_index_or_random() {
    std::size_t victim = rng_.below(nodes_.size());
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (nodes_[i].up() && nodes_[i].replica->role() == paxos::Role::kLeader && rng_.chance(0.7)) {
        victim = i;
      }
    }
    return victim;
  }

  void cut(std::size_t a, std::size_t b) {
    cut_[a][b] = true;
    cut_[b][a] = true;
  }

  void heal_links() {
    for (auto& row : cut_) std::fill(row.begin(), row.end(), false);
    partition_until_ = 0;
  }

  // Three shapes: a random split in two, one node (often the leader) isolated,
  // or a single link cut (the others still bridge it: the asymmetric case
  // where leases and elections disagree most).
  void partition() {
    const std::size_t n = nodes_.size();
    const std::uint64_t shape = rng_.below(3);
    std::string what;
    if (shape == 0) {
      std::vector<int> group(n);
      for (auto& g : group) g = static_cast<int>(rng_.below(2));
      for (std::size_t a = 0; a < n; ++a) {
        for (std::size_t b = 0; b < n; ++b) {
          if (group[a] != group[b]) cut(a, b);
        }
      }
      what = "split";
      for (int g : group) what += " " + std::to_string(g);
    } else if (shape == 1) {
      const std::size_t v = leader_index_or_random();
      for (std::size_t b = 0; b < n; ++b) {
        if (b != v) cut(v, b);
      }
      what = "isolate n" + std::to_string(v + 1);
    } else {
      const std::size_t a = leader_index_or_random();
      std::size_t b = rng_.below(n - 1);
      if (b >= a) ++b;
      cut(a, b);
      what = "cut link n" + std::to_string(a + 1) + "-n" + std::to_string(b + 1);
    }
    partition_until_ = now_ + rng_.between(10, 120);
    ++result_.partitions;
    if (tracing()) trace("PARTITION " + what + " until t=" + std::to_string(partition_until_));
  }

  void heal() {
    if (tracing()) trace("HEAL: restart all, network whole, no loss, every backend working");
    heal_links();
    for (Node& n : nodes_) {
      n.nolead_until = 0;
      if (!n.up()) start(n);
    }
  }

  // Nodes whose backend works again may lead again; and the invariant: a node
  // told it cannot lead is never the leader.
  void update_can_lead() {
    for (Node& n : nodes_) {
      if (!n.up()) continue;
      const bool can = now_ >= n.nolead_until;
      if (can && !n.replica->can_lead()) {
        n.replica->set_can_lead(true);
        if (tracing()) trace("n" + std::to_string(n.id) + " can lead again");
      }
      if (!n.replica->can_lead() && n.replica->role() != paxos::Role::kFollower) {
        fail("node " + std::to_string(n.id) + " is " + paxos::to_string(n.replica->role()) +
             " although it was told it cannot lead");
      }
    }
  }

  bool linked(NodeId a, NodeId b) const { return !cut_[a - 1][b - 1]; }

  // ---- network
  void send(paxos::Message m) {
    const bool self = m.from == m.to;
    const bool faulty = now_ <= cfg_.fault_ticks;
    if (!self && (!linked(m.from, m.to) || (faulty && rng_.chance(cfg_.faults.loss)))) {
      ++result_.messages_dropped;
      return;
    }
    if (!self && faulty && rng_.chance(cfg_.faults.duplicate)) {
      net_.push(InFlight{now_ + rng_.between(1, cfg_.faults.max_delay), seq_++, m});
    }
    const std::uint64_t delay = self ? 0 : rng_.between(1, cfg_.faults.max_delay);
    net_.push(InFlight{now_ + delay, seq_++, std::move(m)});
  }

  void deliver() {
    while (!net_.empty() && net_.top().due <= now_ && ok()) {
      InFlight f = net_.top();
      net_.pop();
      Node& to = node(f.message.to);
      if (!to.up() || !linked(f.message.from, f.message.to)) {
        ++result_.messages_dropped;
        continue;
      }
      if (paused(to)) {  // held in the socket buffer until it wakes up
        f.due = to.pause_until;
        net_.push(std::move(f));
        continue;
      }
      ++result_.messages_delivered;
      if (tracing()) trace("recv " + paxos::to_string(f.message));
      to.replica->step(f.message);
      process(to);
      // A crash can strike at any instant, not only between ticks: right after
      // a reply left is where an acceptor that answers before persisting loses.
      if (cfg_.faults.crashes && now_ <= cfg_.fault_ticks && rng_.chance(0.0005)) crash(to);
    }
  }

  void tick_all() {
    for (Node& n : nodes_) {
      if (!n.up()) continue;
      if (paused(n)) {
        ++n.missed_ticks;  // the clock runs on while the process is stopped
        continue;
      }
      // On waking, the elapsed time is seen before anything else happens, as
      // the server does it: the stall's ticks with tick_missed (time counts,
      // decisions wait for the inbox), then ordinary ticks again.
      std::uint64_t ticks = 1 + n.missed_ticks;
      n.missed_ticks = 0;
      for (std::uint64_t i = 0; i < ticks; ++i) {
        if (n.slow > 0 && rng_.chance(n.slow)) continue;
        if (ticks > 1) {
          n.replica->tick_missed();
        } else {
          n.replica->tick();
        }
      }
      process(n);
    }
  }

  // ---- clients
  void propose(bool healed) {
    // Refused proposals that never entered the log are retried (same command).
    std::uint64_t count = static_cast<std::uint64_t>(cfg_.proposals_per_tick);
    if (rng_.chance(cfg_.proposals_per_tick - static_cast<double>(count))) ++count;
    for (std::uint64_t i = 0; i < count; ++i) {
      std::string cmd;
      if (!retry_.empty()) {
        cmd = std::move(retry_.front());
        retry_.pop_front();
      } else {
        cmd = "v" + std::to_string(next_value_++);
        checker_.on_proposed(cmd);
        if (healed) must_commit_.push_back(cmd);
      }
      Node* target = nullptr;
      if (client_leader_ != paxos::kNoNode && node(client_leader_).up()) {
        target = &node(client_leader_);
      } else {
        Node& n = nodes_[rng_.below(nodes_.size())];
        if (n.up()) target = &n;
      }
      if (target == nullptr || paused(*target)) {
        retry_.push_back(std::move(cmd));  // no connection: the client tries again later
        client_leader_ = paxos::kNoNode;
        continue;
      }
      if (tracing()) trace("propose " + cmd + " at n" + std::to_string(target->id));
      const paxos::ProposalId id = target->replica->propose(cmd);
      target->proposals[id] = std::move(cmd);
      process(*target);
    }
  }

  void on_outcome(Node& n, const paxos::ProposalOutcome& o) {
    auto it = n.proposals.find(o.id);
    if (it == n.proposals.end()) return;
    std::string cmd = std::move(it->second);
    n.proposals.erase(it);
    switch (o.status) {
      case paxos::ProposalStatus::kChosen:
        if (tracing()) trace("ack " + cmd + " slot " + std::to_string(o.slot));
        checker_.on_acked(cmd, o.slot);
        return;
      case paxos::ProposalStatus::kNotLeader:
        client_leader_ = o.leader_hint;
        break;
      case paxos::ProposalStatus::kBusy:
      case paxos::ProposalStatus::kTooLarge:
      case paxos::ProposalStatus::kSuperseded:
        break;
    }
    retry_.push_back(std::move(cmd));  // never entered the log: safe to resend
  }

  // ---- the driver's half of the Ready contract
  void process(Node& n) {
    paxos::Ready r = n.replica->take_ready();
    // Memory stays bounded: in-flight and unapplied state only (measured right
    // after take_ready, which drops what the driver now holds). A follower
    // waking from a pause (up to 50 ticks) holds the Accepts of every slot
    // decided meanwhile, in accepted_ and again in chosen_ once the commit
    // point tells it, until catch-up fills what it missed before: the constant
    // term covers that; a leak grows past any constant within the run.
    const std::size_t bound = 4 * static_cast<std::size_t>(cfg_.options.window_slots) + 128;
    if (n.replica->slots_in_memory() > bound) {
      fail("node " + std::to_string(n.id) + " holds " +
           std::to_string(n.replica->slots_in_memory()) + " slots in memory (bound " +
           std::to_string(bound) + ")");
    }
    if (!cfg_.async_persist) {
      n.pending.push_back(std::move(r));
      complete_pending(n);
      return;
    }
    // Proposer and learner messages leave before the fsync (the server's
    // storage thread); a crash may strike before the persist completes.
    std::vector<paxos::Message> late;
    for (auto& m : r.messages) {
      if (paxos::may_send_before_persist(m)) {
        send(std::move(m));
      } else {
        late.push_back(std::move(m));
      }
    }
    r.messages = std::move(late);
    n.pending.push_back(std::move(r));
    if (cfg_.faults.crashes && now_ <= cfg_.fault_ticks && rng_.chance(0.0005)) {
      crash(n);
      return;
    }
    if (rng_.chance(0.5)) complete_pending(n);
  }

  // Some nodes' persists complete (a slow disk completes them later).
  void complete_some() {
    for (Node& n : nodes_) {
      if (n.up() && !paused(n) && !n.pending.empty() && rng_.chance(0.7)) complete_pending(n);
    }
  }

  void complete_pending(Node& n) {
    while (!n.pending.empty()) {
      paxos::Ready r = std::move(n.pending.front());
      n.pending.pop_front();
      complete(n, r);
      if (!n.up()) return;
    }
  }

  void complete(Node& n, paxos::Ready& r) {
    // 1. persist (the simulated fsync)
    if (r.persist.promised) n.disk.promised = *r.persist.promised;
    for (const auto& e : r.persist.accepted) {
      n.disk.accepted[e.slot] = e;
      checker_.on_persisted_accept(n.id, e.slot, e.ballot, e.value);
    }
    for (const auto& e : r.persist.chosen) n.disk.chosen.put(e.slot, e.value);
    // 2. send
    for (auto& m : r.messages) send(std::move(m));
    // 3. apply
    for (const auto& e : r.committed) {
      if (tracing()) trace("n" + std::to_string(n.id) + " applies slot " + std::to_string(e.slot) +
                           " " + paxos::to_string(*e.value));
      checker_.on_committed(n.id, e.slot, e.value, n.disk.applied.size());
      n.disk.applied.push_back(e.value);
    }
    // 4. tell the clients
    for (const auto& o : r.outcomes) on_outcome(n, o);
  }

  bool ok() const { return checker_.ok() && violation_.empty(); }
  void fail(const std::string& what) {
    if (violation_.empty()) violation_ = what;
  }

  void check_leases() {
    for (Node& n : nodes_) {
      if (!n.up() || paused(n)) continue;
      if (auto slot = n.replica->lease_read_slot()) {
        ++result_.lease_reads_checked;
        checker_.on_lease_read(n.id, *slot);
      }
    }
  }

  void check_end() {
    std::vector<std::vector<ValuePtr>> logs;
    Slot max_applied = 0;
    for (Node& n : nodes_) {
      logs.push_back(n.disk.applied);
      max_applied = std::max<Slot>(max_applied, n.disk.applied.size());
      result_.catchup_slots += n.replica->stats().catchup_slots_received;
    }
    for (Node& n : nodes_) {
      if (n.disk.applied.size() != max_applied) {
        fail("liveness: " + std::to_string(cfg_.heal_ticks) +
                   " ticks after healing, node " + std::to_string(n.id) + " has applied " +
                   std::to_string(n.disk.applied.size()) + " slots, another " +
                   std::to_string(max_applied));
        return;
      }
    }
    for (const std::string& cmd : must_commit_) {
      bool found = false;
      for (const ValuePtr& v : logs[0]) {
        for (const auto& c : v->commands) found = found || c == cmd;
        if (found) break;
      }
      if (!found) {
        fail("liveness: command '" + cmd + "', proposed after healing, was not committed "
                   "within " + std::to_string(cfg_.heal_ticks) + " ticks");
        return;
      }
    }
    checker_.check_final(logs);
  }

  SimConfig cfg_;
  paxos::Rng rng_;
  InvariantChecker checker_;
  paxos::Configuration config_;
  std::vector<Node> nodes_;
  std::vector<std::vector<bool>> cut_;  // cut_[a][b]: a's messages to b are lost
  std::uint64_t partition_until_ = 0;
  std::priority_queue<InFlight, std::vector<InFlight>, std::greater<>> net_;
  std::uint64_t seq_ = 0;
  std::uint64_t now_ = 0;
  std::uint64_t next_value_ = 1;
  NodeId client_leader_ = paxos::kNoNode;
  std::deque<std::string> retry_;
  std::vector<std::string> must_commit_;
  std::string violation_;  // the simulator's own checks: liveness, memory bound
  SimResult result_;
};

}  // namespace

SimResult run_simulation(const SimConfig& config) {
  Simulation sim(config);
  return sim.run();
}

SimResult run_and_explain(const SimConfig& config) {
  SimResult r = run_simulation(config);
  if (r.ok || config.trace) return r;
  Simulation again(config);
  again.keep_trace_ = true;
  again.run();
  r.trace_tail.assign(again.trace_.begin(), again.trace_.end());
  return r;
}

}  // namespace synod::sim
