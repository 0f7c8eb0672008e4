#include "server/node.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

#include "codec/codec.h"

namespace synod::server {

using Clock = std::chrono::steady_clock;
using Code = proto::ClientResponse::Code;

namespace {
std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

Node::Node(Config config)
    : cfg_(std::move(config)),
      backends_(cfg_.plugin_dir.empty() ? backend::BackendHost::default_plugin_dirs()
                                        : std::vector<std::string>{cfg_.plugin_dir}),
      tick_timer_(io_),
      apply_retry_timer_(io_),
      rng_(std::random_device{}() ^ (static_cast<std::uint64_t>(wall_ms()) << 16)) {
  // Tags must not repeat across restarts of this node: start from a random base.
  next_tag_ = (rng_.next() & 0xffffffff00000000ULL) | 1;
}

Node::~Node() = default;

std::uint16_t Node::port() const { return transport_ ? transport_->port() : 0; }

std::unique_ptr<paxos::Replica> Node::make_replica(std::string* error) {
  paxos::DurableState durable = store_->load();
  paxos::Configuration members;
  for (const auto& [id, addr] : cfg_.peers) members.members.push_back(id);
  applied_slot_ = durable.applied;
  recorded_slot_ = durable.applied;
  // Replay restarts from the recorded point; positions are counted from there.
  applied_position_ = store_->applied_position();
  // The backends must not be ahead of the log (PhxPaxos #22, #33): a backend
  // whose position is past every command this log can replay was copied from
  // elsewhere or belongs to another node.
  std::uint64_t reachable = store_->applied_position();
  paxos::Slot next = durable.applied + 1;
  std::map<paxos::Slot, const paxos::Value*> chosen;
  for (const auto& e : durable.chosen) chosen[e.slot] = e.value.get();
  for (auto it = chosen.find(next); it != chosen.end(); it = chosen.find(++next)) {
    if (it->second->kind == paxos::ValueKind::kCommands) reachable += it->second->commands.size();
  }
  for (const std::string& name : cfg_.backends) {
    const std::uint64_t at = backends_.last_applied(name);
    if (at > reachable) {
      *error = "backend '" + name + "' has applied through position " + std::to_string(at) +
               " but this node's log reaches only position " + std::to_string(reachable) +
               " (slot " + std::to_string(next - 1) +
               "): its data is newer than the log — was a data directory copied or mixed up?";
      return nullptr;
    }
  }
  return std::make_unique<paxos::Replica>(cfg_.id, members, cfg_.paxos, std::move(durable),
                                          store_.get(), rng_.next());
}

bool Node::start(std::string* error) {
  store_ = storage::LogStore::open(cfg_.data_dir + "/log", cfg_.id, cfg_.cluster_id, error);
  if (!store_) return false;
  for (const std::string& name : cfg_.backends) {
    auto options = cfg_.backend_options[name];
    if (!options.contains("data_dir")) options["data_dir"] = cfg_.data_dir + "/backends/" + name;
    if (!backends_.load(name, options, error)) return false;
  }
  lock_backend_ = std::find(cfg_.backends.begin(), cfg_.backends.end(), "lock") !=
                  cfg_.backends.end();
  if (lock_backend_ && cfg_.lock_tick_ms > 0) {
    spdlog::info("node {}: as leader, ticks backend 'lock' after {} ms without a lock command",
                 cfg_.id, cfg_.lock_tick_ms);
  }
  for (const auto& s : store_->load_sessions()) {
    sessions_[s.client_id] = Session{s.sequence, s.result, s.last_ms, s.result_lost};
    log_time_ms_ = std::max(log_time_ms_, s.last_ms);
  }
  replica_ = make_replica(error);
  if (!replica_) return false;
  persister_ = std::make_unique<Persister>(store_.get(), [this] {
    asio::post(io_, [this] { on_persisted(); });
  });

  net::TransportOptions tc;
  tc.node_id = cfg_.id;
  tc.cluster_id = cfg_.cluster_id;
  tc.listen = cfg_.listen;
  tc.peers = cfg_.peers;
  net::TransportHandlers handlers;
  handlers.on_peer_message = [this](proto::PeerMessage&& m) { on_peer_message(std::move(m)); };
  handlers.on_client_request = [this](net::ConnectionId c, proto::ClientRequest&& r) {
    on_client_request(c, std::move(r));
  };
  transport_ = std::make_unique<net::Transport>(io_, tc, std::move(handlers));
  if (!transport_->start(error)) return false;
  if (!cfg_.redis_listen.empty()) {
    resp::ServerOptions ro;
    ro.listen = cfg_.redis_listen;
    redis_ = std::make_unique<resp::RedisServer>(
        io_, ro, [this](bool write, std::string payload, resp::RedisServer::Done done) {
          on_frontend_request(FrontendRequest{cfg_.redis_backend, write, std::move(payload),
                                              cfg_.redis_linearizable_reads, std::move(done),
                                              {}});
        });
    if (!redis_->start(error)) {
      *error = "--redis-listen: " + *error;
      return false;
    }
    spdlog::info("node {}: Redis protocol on {} (backend '{}', {} reads)", cfg_.id,
                 cfg_.redis_listen, cfg_.redis_backend,
                 cfg_.redis_linearizable_reads ? "linearizable" : "local");
  }
  if (!cfg_.http_listen.empty()) {
    // httplib's threads hand each request to the event loop.
    http_ = std::make_unique<http::HttpServer>(
        cfg_.http_listen,
        [this](const http::ApiRequest& api, http::HttpServer::Done done) {
          asio::post(io_, [this, api, done = std::move(done)]() mutable {
            FrontendRequest fr{cfg_.http_backend, api.write, api.payload,
                               api.level == http::ReadLevel::kLinearizable, std::move(done), {}};
            fr.freshness_ms = api.freshness_ms;
            fr.freshness_strict = api.freshness_strict;
            on_frontend_request(std::move(fr));
          });
        },
        [this](std::function<void(proto::NodeStatus&&)> done) {
          asio::post(io_, [this, done = std::move(done)] {
            advance_clock();
            proto::NodeStatus s;
            fill_status(&s);
            done(std::move(s));
          });
        },
        static_cast<int>(cfg_.request_timeout_ms));
    if (!http_->start(error)) {
      *error = "--http-listen: " + *error;
      return false;
    }
    spdlog::info("node {}: rqlite-compatible HTTP API on {} (backend '{}')", cfg_.id,
                 cfg_.http_listen, cfg_.http_backend);
  }

  if (cfg_.unsafe_follower_reads) {
    spdlog::warn("node {}: --unsafe-follower-reads is on: linearizable reads are NOT safe "
                 "(a test-only switch)",
                 cfg_.id);
  }
  spdlog::info("node {} listening on {} (cluster '{}', {} members, applied slot {}, backends: {})",
               cfg_.id, cfg_.listen, cfg_.cluster, cfg_.peers.size(), applied_slot_,
               fmt::join(cfg_.backends, ","));
  last_tick_ = Clock::now();
  tick_timer_.expires_after(std::chrono::milliseconds(cfg_.tick_ms));
  tick_timer_.async_wait([this](const asio::error_code& ec) {
    if (!ec) on_tick();
  });
  schedule_flush();  // a restart may have chosen-but-unapplied slots to apply
  return true;
}

void Node::run(bool handle_signals) {
  if (handle_signals) {
    signals_ = std::make_unique<asio::signal_set>(io_, SIGINT, SIGTERM);
    signals_->async_wait([this](const asio::error_code& ec, int sig) {
      if (ec) return;
      spdlog::info("node {}: signal {}, shutting down", cfg_.id, sig);
      stop();
    });
  }
  io_.run();
  // Clean shutdown: whatever the last turn produced is made durable first.
  if (replica_ && flush_scheduled_) flush();
  if (persister_) {
    persister_->stop();
    if (exit_code_ == 0) on_persisted();
  }
  if (replica_ && apply_error_.empty()) record_applied(/*force=*/true);
  // Whoever still waits gets an answer (the HTTP threads wait for theirs).
  auto writes = std::move(writes_);
  for (auto& [tag, w] : writes) {
    fail(w.reply, Code::ClientResponse_Code_TIMEOUT,
         "the node is stopping; the outcome is unknown, retry with the same sequence");
  }
  auto reads = std::move(reads_);
  for (auto& r : reads) fail(r.reply, Code::ClientResponse_Code_UNAVAILABLE, "the node is stopping");
  fail_forwarded("the node is stopping");
  auto retries = std::move(frontend_retries_);
  for (auto& fr : retries) {
    fail(fr.reply, Code::ClientResponse_Code_UNAVAILABLE, "the node is stopping");
  }
  if (http_) http_->stop();
  spdlog::info("node {} stopped at applied slot {}", cfg_.id, applied_slot_);
}

void Node::stop() {
  asio::post(io_, [this] {
    if (transport_) transport_->stop();
    if (redis_) redis_->stop();
    tick_timer_.cancel();
    apply_retry_timer_.cancel();
    if (signals_) signals_->cancel();
    if (leader_conn_) leader_conn_->close();
    io_.stop();
  });
}

// ------------------------------------------------------------------ inputs

void Node::on_peer_message(proto::PeerMessage&& m) {
  advance_clock();
  paxos::Message msg;
  std::string error;
  if (!codec::from_proto(m, &msg, &error)) {
    spdlog::warn("node {}: dropped a malformed message from {}: {}", cfg_.id, m.from(), error);
    return;
  }
  replica_->step(msg);
  if (m.from() != 0 && m.from() == replica_->leader_hint()) leader_contact_ = Clock::now();
  schedule_flush();
}

std::int64_t Node::leader_contact_ms() const {
  if (replica_->role() == paxos::Role::kLeader) return 0;
  if (!leader_contact_) return -1;
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - *leader_contact_)
      .count();
}

void Node::advance_clock() {
  // Every elapsed tick counts, also after a pause (SIGSTOP, a slow disk, a
  // long event-loop turn): a lease must see the time that passed before the
  // node answers anything. Called before every input, not only from the tick
  // timer: after SIGCONT asio runs the waiting socket handlers before the
  // timer's, and a read handled there must not see the clock of before.
  // After a stall (several ticks at once) the ticks go in as tick_missed:
  // time counts, but an election or a step-down waits for the next turn,
  // after the messages that arrived meanwhile (a long apply must not make a
  // healthy follower campaign). Never two stalls in a row, so that a node
  // whose loop is always late still decides.
  const auto now = Clock::now();
  auto elapsed = (now - last_tick_) / std::chrono::milliseconds(cfg_.tick_ms);
  if (elapsed > 0) {
    last_tick_ += std::chrono::milliseconds(cfg_.tick_ms) * elapsed;
    const bool stall = elapsed > 1 && !deferred_last_;
    deferred_last_ = stall;
    for (std::int64_t i = 0; i < std::min<std::int64_t>(elapsed, 10000); ++i) {
      if (stall) {
        replica_->tick_missed();
      } else {
        replica_->tick();
      }
    }
    schedule_flush();
  }
}

void Node::on_tick() {
  advance_clock();
  expire_requests();
  if (!frontend_retries_.empty()) {
    auto due = std::move(frontend_retries_);
    frontend_retries_.clear();
    for (auto& fr : due) frontend_attempt(std::move(fr));
  }
  record_applied(/*force=*/false);
  propose_lock_tick();
  tick_timer_.expires_at(last_tick_ + std::chrono::milliseconds(cfg_.tick_ms));
  tick_timer_.async_wait([this](const asio::error_code& ec) {
    if (!ec) on_tick();
  });
}

void Node::propose_lock_tick() {
  // Time in the lock backend moves only with its commands: without client
  // traffic, these ticks are what lets sessions expire and lock-delays end.
  if (!lock_backend_ || cfg_.lock_tick_ms == 0 || replica_->role() != paxos::Role::kLeader) {
    return;
  }
  const auto now = Clock::now();
  if (now - last_lock_proposal_ < std::chrono::milliseconds(cfg_.lock_tick_ms)) return;
  // Without a session nothing can expire: an idle lock table gets no ticks
  // (asked again at the next tick of the node's clock).
  if (backend::Backend* b = backends_.get("lock")) {
    const backend::Result idle = b->query(R"({"op":"idle"})");
    if (idle.ok && idle.bytes == R"({"idle":true})") return;
  }
  last_lock_proposal_ = now;
  proto::Command cmd;  // client_id 0: no exactly-once session; tag 0: nobody waits
  cmd.set_backend("lock");
  cmd.set_payload(R"({"op":"tick"})");
  cmd.set_timestamp_ms(std::max(wall_ms(), log_time_ms_));
  cmd.set_random_seed(rng_.next());
  replica_->propose(cmd.SerializeAsString());
  schedule_flush();
}

void Node::on_client_request(net::ConnectionId conn, proto::ClientRequest&& req) {
  advance_clock();
  Reply reply = [this, conn, id = req.request_id()](proto::ClientResponse&& r) {
    r.set_request_id(id);
    transport_->send_response(conn, r);
  };
  switch (req.op_case()) {
    case proto::ClientRequest::kWrite:
      handle_write(req, std::move(reply));
      break;
    case proto::ClientRequest::kRead:
      handle_read(req, std::move(reply));
      break;
    case proto::ClientRequest::kStatus: {
      proto::ClientResponse r;
      r.set_code(Code::ClientResponse_Code_OK);
      fill_status(r.mutable_status());
      reply(std::move(r));
      break;
    }
    case proto::ClientRequest::OP_NOT_SET:
      fail(reply, Code::ClientResponse_Code_BAD_REQUEST, "request without an operation");
      break;
  }
}

void Node::on_frontend_request(FrontendRequest fr) {
  advance_clock();
  fr.deadline = Clock::now() + std::chrono::milliseconds(cfg_.request_timeout_ms);
  frontend_attempt(std::move(fr));
}

void Node::frontend_attempt(FrontendRequest fr) {
  proto::ClientRequest req;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(fr.deadline -
                                                                          Clock::now());
  req.set_timeout_ms(static_cast<std::uint32_t>(std::max<std::int64_t>(1, left.count())));
  // A Redis or HTTP client cannot follow a leader hint: during a leader change
  // the node retries for it, every tick until the deadline, whenever the
  // answer says the command never entered the log (NOT_LEADER, UNAVAILABLE).
  // Other answers, TIMEOUT (outcome unknown) included, go back as they are.
  if (!fr.write && !fr.linearizable && fr.freshness_ms >= 0 &&
      replica_->role() != paxos::Role::kLeader) {
    const std::int64_t age = leader_contact_ms();
    std::string stale;
    if (age < 0 || age > fr.freshness_ms) {
      stale = age < 0 ? "this node has not heard from a leader"
                      : "this node last heard from the leader " + std::to_string(age) +
                            " ms ago, more than freshness " + std::to_string(fr.freshness_ms) +
                            " ms";
    } else if (fr.freshness_strict && applied_slot_ < replica_->known_commit()) {
      stale = "this node has applied through slot " + std::to_string(applied_slot_) +
              " of the " + std::to_string(replica_->known_commit()) + " it knows are chosen";
    }
    if (!stale.empty()) {
      proto::ClientResponse r;
      r.set_code(Code::ClientResponse_Code_UNAVAILABLE);
      r.set_error("stale read: " + stale);
      fr.reply(std::move(r));
      return;
    }
  }
  auto shared = std::make_shared<FrontendRequest>(std::move(fr));
  Reply reply = [this, shared](proto::ClientResponse&& r) {
    const bool retry = (r.code() == Code::ClientResponse_Code_NOT_LEADER ||
                        r.code() == Code::ClientResponse_Code_UNAVAILABLE) &&
                       Clock::now() + std::chrono::milliseconds(cfg_.tick_ms) < shared->deadline;
    if (retry) {
      frontend_retries_.push_back(std::move(*shared));
      return;
    }
    shared->reply(std::move(r));
  };
  if (shared->write) {
    req.mutable_write()->set_backend(shared->backend);
    req.mutable_write()->set_payload(shared->payload);
    handle_write(req, std::move(reply));
  } else {
    req.mutable_read()->set_backend(shared->backend);
    req.mutable_read()->set_payload(shared->payload);
    req.mutable_read()->set_consistency(shared->linearizable ? proto::LINEARIZABLE
                                                             : proto::LOCAL);
    handle_read(req, std::move(reply));
  }
}

void Node::handle_write(proto::ClientRequest& req, Reply reply) {
  const proto::WriteRequest& w = req.write();
  if (!backends_.get(w.backend())) {
    fail(reply, Code::ClientResponse_Code_BAD_REQUEST, "unknown backend '" + w.backend() + "'");
    return;
  }
  // What the backend would refuse never enters the log (checked here, on the
  // node the client reached, before a forward too).
  if (backend::Result v = backends_.get(w.backend())->validate(w.payload()); !v.ok) {
    fail(reply, Code::ClientResponse_Code_BAD_REQUEST, "refused by backend '" + w.backend() +
                                                           "': " + v.error);
    return;
  }
  if (replica_->role() != paxos::Role::kLeader) {
    forward_or_redirect(req, std::move(reply), w.no_forward());
    return;
  }
  // A retry of a command already applied: answer from the session at once.
  if (w.client_id() != 0) {
    auto s = sessions_.find(w.client_id());
    if (s != sessions_.end() && w.sequence() <= s->second.sequence) {
      proto::ClientResponse r;
      if (w.sequence() == s->second.sequence) {
        r.set_code(Code::ClientResponse_Code_OK);
        r.set_result(s->second.result);
        if (s->second.result_lost) r.set_error(kResultLost);
      } else {
        r.set_code(Code::ClientResponse_Code_BAD_REQUEST);
        r.set_error("sequence " + std::to_string(w.sequence()) + " is older than client " +
                    std::to_string(w.client_id()) + "'s last applied sequence " +
                    std::to_string(s->second.sequence));
      }
      reply(std::move(r));
      return;
    }
  }
  proto::Command cmd;
  cmd.set_client_id(w.client_id());
  cmd.set_sequence(w.sequence());
  cmd.set_backend(w.backend());
  cmd.set_payload(w.payload());
  cmd.set_timestamp_ms(std::max(wall_ms(), log_time_ms_));
  cmd.set_random_seed(rng_.next());
  const std::uint64_t tag = next_tag_++;
  cmd.set_tag(tag);
  const paxos::ProposalId id = replica_->propose(cmd.SerializeAsString());
  if (w.backend() == "lock") last_lock_proposal_ = Clock::now();
  writes_[tag] = PendingWrite{std::move(reply), deadline_of(req)};
  proposal_tag_[id] = tag;
  schedule_flush();
}

void Node::handle_read(proto::ClientRequest& req, Reply reply) {
  const proto::ReadRequest& rd = req.read();
  if (!backends_.get(rd.backend())) {
    fail(reply, Code::ClientResponse_Code_BAD_REQUEST, "unknown backend '" + rd.backend() + "'");
    return;
  }
  if (rd.consistency() == proto::LINEARIZABLE && replica_->role() != paxos::Role::kLeader &&
      !cfg_.unsafe_follower_reads) {
    forward_or_redirect(req, std::move(reply), rd.no_forward());
    return;
  }
  PendingRead p{std::move(reply), rd.backend(), rd.payload(), std::nullopt, deadline_of(req)};
  if (rd.consistency() == proto::LOCAL || cfg_.unsafe_follower_reads) p.read_slot = 0;
  reads_.push_back(std::move(p));
  serve_reads();
}

void Node::forward_or_redirect(proto::ClientRequest& req, Reply reply, bool no_forward) {
  const paxos::NodeId hint = replica_->leader_hint();
  if (no_forward || hint == paxos::kNoNode || hint == cfg_.id || !cfg_.peers.contains(hint)) {
    proto::ClientResponse r;
    fill_not_leader(&r);
    reply(std::move(r));
  } else {
    forward(req, std::move(reply));
  }
}

void Node::forward(proto::ClientRequest& req, Reply reply) {
  const paxos::NodeId leader = replica_->leader_hint();
  if (!leader_conn_ || leader_conn_id_ != leader || !leader_conn_->is_open()) {
    // Requests still in flight on a previous connection have an unknown outcome.
    fail_forwarded("the leader changed");
    net::ClientConnectionOptions options;
    options.cluster_id = cfg_.cluster_id;
    net::ClientConnectionHandlers h;
    h.on_connected = [this] { leader_conn_up_ = true; };
    h.on_response = [this](proto::ClientResponse&& r) { on_forward_response(std::move(r)); };
    h.on_closed = [this](const std::string& reason) {
      fail_forwarded("lost the connection to the leader: " + reason);
    };
    leader_conn_up_ = false;
    leader_conn_ = std::make_unique<net::ClientConnection>(io_, options, std::move(h));
    leader_conn_id_ = leader;
    std::string error;
    if (!leader_conn_->connect(cfg_.peers.at(leader), &error)) {
      fail(reply, Code::ClientResponse_Code_UNAVAILABLE, "cannot reach the leader: " + error);
      leader_conn_.reset();
      return;
    }
  }
  const std::uint64_t id = next_forward_id_++;
  forwarded_[id] = Forwarded{std::move(reply), deadline_of(req)};
  proto::ClientRequest copy = req;
  copy.set_request_id(id);
  if (copy.has_write()) copy.mutable_write()->set_no_forward(true);
  if (copy.has_read()) copy.mutable_read()->set_no_forward(true);
  leader_conn_->send(copy);
}

void Node::fail_forwarded(const std::string& why) {
  auto failed = std::move(forwarded_);
  forwarded_.clear();
  for (auto& [id, f] : failed) {
    if (leader_conn_up_) {
      fail(f.reply, Code::ClientResponse_Code_TIMEOUT,
           why + "; the outcome is unknown, retry with the same sequence");
    } else {
      // The connection never came up: nothing was sent.
      fail(f.reply, Code::ClientResponse_Code_UNAVAILABLE,
           why + " before the request was sent; retry");
    }
  }
}

void Node::on_forward_response(proto::ClientResponse&& r) {
  auto it = forwarded_.find(r.request_id());
  if (it == forwarded_.end()) return;
  Reply reply = std::move(it->second.reply);
  forwarded_.erase(it);
  reply(std::move(r));
}

// ------------------------------------------------------------------ the Ready loop

void Node::schedule_flush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  // Runs after every handler already queued: everything that arrived in this
  // turn of the event loop is persisted by one synced write (group commit).
  asio::post(io_, [this] { flush(); });
}

void Node::flush() {
  flush_scheduled_ = false;
  paxos::Ready ready = replica_->take_ready();
  if (ready.empty()) {
    serve_reads();  // a tick may have brought a lease
    return;
  }
  // Proposer and learner messages leave now, before the fsync (see
  // paxos::may_send_before_persist): the leader's Accepts travel while its
  // own accept is being synced.
  std::vector<paxos::Message> late;
  for (auto& m : ready.messages) {
    if (paxos::may_send_before_persist(m)) {
      send_message(std::move(m));
    } else {
      late.push_back(std::move(m));
    }
  }
  PersistJob job;
  job.epoch = epoch_;
  job.batch = std::move(ready.persist);
  job.messages = std::move(late);
  job.committed = std::move(ready.committed);
  job.outcomes = std::move(ready.outcomes);
  job.snapshot_needed = std::move(ready.snapshot_needed);
  if (job.batch.empty() && jobs_in_flight_ == 0) {
    release(job);  // nothing to wait for
    apply_committed();
    serve_reads();
    return;
  }
  // The rest waits for the storage thread, in order behind earlier jobs.
  ++jobs_in_flight_;
  persister_->submit(std::move(job));
}

void Node::on_persisted() {
  std::vector<PersistJob> done = persister_->take_done();
  for (PersistJob& job : done) {
    --jobs_in_flight_;
    if (job.epoch != epoch_) continue;  // from before a reload: its core is gone
    if (!job.ok) {
      // Nothing of this Ready may leave: its answers would promise state that
      // is not on disk. Rebuild the core from what is durable and go on.
      spdlog::error("node {}: cannot persist ({}); dropping this turn's output and reloading "
                    "from disk",
                    cfg_.id, job.error);
      if (job.error.find("restart") != std::string::npos) {
        // RocksDB refuses every write after a failed fsync: only a restart,
        // which re-reads what is really on disk, is safe.
        spdlog::critical("node {}: the log store is unusable; stopping", cfg_.id);
        exit_code_ = 1;
        stop();
        return;
      }
      reload_after_disk_error();
      continue;
    }
    release(job);
  }
  apply_committed();
  serve_reads();
}

void Node::send_message(paxos::Message&& m) {
  if (m.to == cfg_.id) {
    asio::post(io_, [this, msg = std::move(m)] {
      replica_->step(msg);
      schedule_flush();
    });
  } else {
    proto::PeerMessage p;
    codec::to_proto(m, &p);
    transport_->send_peer(m.to, p);
  }
}

void Node::release(PersistJob& job) {
  for (auto& m : job.messages) send_message(std::move(m));
  for (auto& e : job.committed) apply_queue_.push_back(std::move(e));
  for (const auto& o : job.outcomes) {
    auto pt = proposal_tag_.find(o.id);
    if (pt == proposal_tag_.end()) continue;
    const std::uint64_t tag = pt->second;
    proposal_tag_.erase(pt);
    if (o.status == paxos::ProposalStatus::kChosen) continue;  // answered when applied
    auto w = writes_.find(tag);
    if (w == writes_.end()) continue;
    proto::ClientResponse r;
    switch (o.status) {
      case paxos::ProposalStatus::kNotLeader:
      case paxos::ProposalStatus::kSuperseded:  // definitely not applied: safe to retry
        fill_not_leader(&r);
        break;
      case paxos::ProposalStatus::kBusy:
        r.set_code(Code::ClientResponse_Code_UNAVAILABLE);
        r.set_error("too many writes pending at the leader; retry");
        break;
      case paxos::ProposalStatus::kTooLarge:
        r.set_code(Code::ClientResponse_Code_BAD_REQUEST);
        r.set_error("command larger than the maximum batch size");
        break;
      case paxos::ProposalStatus::kChosen:
        break;
    }
    Reply reply = std::move(w->second.reply);
    writes_.erase(w);
    reply(std::move(r));
  }
  if (job.snapshot_needed) {
    spdlog::warn("node {}: peer {} compacted slots below {} that this node needs; snapshot "
                 "install is not implemented yet",
                 cfg_.id, job.snapshot_needed->peer, job.snapshot_needed->first_slot);
  }
}

void Node::reload_after_disk_error() {
  auto failed = std::move(writes_);
  writes_.clear();
  for (auto& [tag, w] : failed) {
    // Its accept may have left in an earlier turn: the outcome is unknown.
    fail(w.reply, Code::ClientResponse_Code_TIMEOUT,
         "this node cannot write to its disk; the outcome is unknown, retry with the same "
         "sequence");
  }
  proposal_tag_.clear();
  std::string error;
  auto fresh = make_replica(&error);
  if (!fresh) {
    spdlog::critical("node {}: cannot reload from disk: {}", cfg_.id, error);
    stop();
    return;
  }
  replica_ = std::move(fresh);
  apply_queue_.clear();
  ++epoch_;  // jobs still with the storage thread belong to the old core
}

void Node::apply_committed() {
  const paxos::Slot before = applied_slot_;
  while (!apply_queue_.empty() && apply_error_.empty()) {
    const auto& e = apply_queue_.front();
    if (e.slot <= applied_slot_) {
      apply_queue_.pop_front();
      continue;
    }
    if (!apply_slot(e.slot, *e.value)) break;
    apply_backoff_ = std::chrono::milliseconds(100);
    if (!replica_->can_lead()) {
      spdlog::info("node {}: applying again (slot {}); it may lead again", cfg_.id, e.slot);
      replica_->set_can_lead(true);
    }
    applied_slot_ = e.slot;
    apply_queue_.pop_front();
  }
  if (applied_slot_ != before) record_applied(/*force=*/false);
}

void Node::record_applied(bool force) {
  // Recording the applied point is only a shortcut for the replay after a
  // restart (backends skip positions they already have), so it is done at
  // most every 100 ms or 1024 slots, not after every batch: each record costs
  // a sync of every backend.
  const auto now = Clock::now();
  if (applied_slot_ == recorded_slot_) return;
  if (!force && now - last_record_ < std::chrono::milliseconds(100) &&
      applied_slot_ - recorded_slot_ < 1024) {
    return;
  }
  last_record_ = now;
  // The backends' effects must be durable before the applied point that
  // claims them is (a synced persist later also makes record_applied durable).
  for (const std::string& name : cfg_.backends) {
    backend::Result r = backends_.get(name)->sync();
    if (!r.ok) {
      spdlog::error("node {}: backend '{}' cannot sync: {}; not recording applied slot {}",
                    cfg_.id, name, r.error, applied_slot_);
      return;
    }
  }
  std::vector<storage::Session> upserts;
  upserts.reserve(dirty_sessions_.size());
  for (auto& [client, s] : dirty_sessions_) {
    upserts.push_back(storage::Session{client, s.sequence, s.result, s.last_ms, s.result_lost});
  }
  std::string error;
  if (!store_->record_applied(applied_slot_, applied_position_, upserts, erased_sessions_,
                              &error)) {
    // Not fatal: after a restart the node replays from the older point and the
    // backends skip what they already applied.
    spdlog::warn("node {}: cannot record applied slot {}: {}", cfg_.id, applied_slot_, error);
    return;
  }
  recorded_slot_ = applied_slot_;
  dirty_sessions_.clear();
  erased_sessions_.clear();
}

bool Node::apply_slot(paxos::Slot slot, const paxos::Value& value) {
  if (value.kind != paxos::ValueKind::kCommands) return true;
  // 1. What each command of the slot is, in order: garbage, a retry of an
  //    applied command (exactly-once), already in its backend (applied before
  //    a crash), or to apply. Retries are judged against the sessions as the
  //    earlier commands of this slot leave them.
  enum class Kind { kGarbage, kRetry, kRetryInSlot, kAlreadyApplied, kApply };
  struct Item {
    Kind kind = Kind::kGarbage;
    proto::Command cmd;
    std::uint64_t position = 0;
    std::size_t original = 0;  // kRetryInSlot: the command of this slot it repeats
    std::string result;
    bool have_result = true;
  };
  std::vector<Item> items(value.commands.size());
  std::unordered_map<std::uint64_t, std::pair<std::uint64_t, std::size_t>> in_slot;  // client ->
  for (std::size_t i = 0; i < items.size(); ++i) {
    Item& it = items[i];
    it.position = applied_position_ + 1 + i;
    if (!it.cmd.ParseFromString(value.commands[i])) {
      it.have_result = false;  // deterministic: every node skips the same garbage
      continue;
    }
    const std::uint64_t client = it.cmd.client_id();
    if (client != 0) {
      if (auto s = in_slot.find(client);
          s != in_slot.end() && it.cmd.sequence() <= s->second.first) {
        it.kind = Kind::kRetryInSlot;
        it.original = s->second.second;
        continue;
      }
      if (auto s = sessions_.find(client);
          s != sessions_.end() && it.cmd.sequence() <= s->second.sequence) {
        it.kind = Kind::kRetry;
        it.result = s->second.result;
        it.have_result = !s->second.result_lost;
        continue;
      }
      in_slot[client] = {it.cmd.sequence(), i};
    }
    backend::Backend* b = backends_.get(it.cmd.backend());
    if (b == nullptr) {
      return stall_apply(slot, "slot " + std::to_string(slot) + " is for backend '" +
                                   it.cmd.backend() + "', which this node has not loaded");
    }
    it.kind = b->last_applied() >= it.position ? Kind::kAlreadyApplied : Kind::kApply;
    if (it.kind == Kind::kAlreadyApplied) it.have_result = false;  // the result is not kept
  }
  // 2. Apply, one batch per run of commands for the same backend (one write
  //    per batch in a backend that batches). On an error nothing of this slot
  //    is recorded here; the slot is applied again later, and what a backend
  //    already has it skips by position.
  for (std::size_t i = 0; i < items.size();) {
    if (items[i].kind != Kind::kApply) {
      ++i;
      continue;
    }
    const std::string& name = items[i].cmd.backend();
    std::vector<std::size_t> run;
    std::vector<synod_apply_context> ctxs;
    std::vector<std::string_view> cmds;
    for (; i < items.size() && (items[i].kind != Kind::kApply || items[i].cmd.backend() == name);
         ++i) {
      if (items[i].kind != Kind::kApply) continue;
      const proto::Command& c = items[i].cmd;
      run.push_back(i);
      ctxs.push_back(synod_apply_context{items[i].position, c.timestamp_ms(), c.random_seed()});
      cmds.push_back(c.payload());
    }
    std::vector<backend::Result> results;
    std::string error;
    if (!backends_.get(name)->apply_batch(ctxs, cmds, &results, &error)) {
      return stall_apply(slot, error);
    }
    for (std::size_t j = 0; j < run.size(); ++j) items[run[j]].result = std::move(results[j].bytes);
  }
  // 3. Record and answer, in order.
  for (std::size_t i = 0; i < items.size(); ++i) {
    Item& it = items[i];
    if (it.kind == Kind::kRetryInSlot) {
      it.result = items[it.original].result;
      it.have_result = items[it.original].have_result;
    }
    const proto::Command& cmd = it.cmd;
    if ((it.kind == Kind::kApply || it.kind == Kind::kAlreadyApplied) && cmd.client_id() != 0) {
      Session& s = sessions_[cmd.client_id()];
      s = Session{cmd.sequence(), it.result, cmd.timestamp_ms(), !it.have_result};
      dirty_sessions_[cmd.client_id()] = s;
    }
    applied_position_ = it.position;
    log_time_ms_ = std::max(log_time_ms_, cmd.timestamp_ms());
    auto w = writes_.find(cmd.tag());
    if (w != writes_.end() && cmd.tag() != 0) {
      proto::ClientResponse r;
      r.set_code(Code::ClientResponse_Code_OK);
      r.set_slot(slot);
      r.set_result(it.result);
      if (!it.have_result) r.set_error(kResultLost);
      Reply reply = std::move(w->second.reply);
      writes_.erase(w);
      reply(std::move(r));
    }
    // Deterministic expiry: by log time, at the same positions on every node.
    if (it.position % 1024 == 0) {
      for (auto s = sessions_.begin(); s != sessions_.end();) {
        if (s->second.last_ms + static_cast<std::int64_t>(cfg_.session_ttl_ms) < log_time_ms_) {
          erased_sessions_.push_back(s->first);
          dirty_sessions_.erase(s->first);
          s = sessions_.erase(s);
        } else {
          ++s;
        }
      }
    }
  }
  return true;
}

bool Node::stall_apply(paxos::Slot slot, const std::string& why) {
  apply_error_ = why;
  // A node that cannot apply must not lead: a leader answers writes after
  // applying them, so it would hold every answer. It hands the role over
  // (another node is elected once its lease runs out) until applying works.
  if (replica_->can_lead()) {
    spdlog::warn("node {}: cannot apply, so it will not lead until it can", cfg_.id);
    replica_->set_can_lead(false);
    schedule_flush();
  }
  spdlog::error("node {}: applying stalled at slot {}: {} (retrying in {} ms)", cfg_.id, slot,
                why, apply_backoff_.count());
  apply_retry_timer_.expires_after(apply_backoff_);
  apply_backoff_ = std::min(apply_backoff_ * 2, std::chrono::milliseconds(5000));
  apply_retry_timer_.async_wait([this](const asio::error_code& ec) {
    if (ec) return;
    apply_error_.clear();
    apply_committed();
    serve_reads();
  });
  return false;
}

void Node::serve_reads() {
  advance_clock();
  const auto lease = replica_->lease_read_slot();
  for (auto it = reads_.begin(); it != reads_.end();) {
    if (!it->read_slot) {
      if (replica_->role() != paxos::Role::kLeader) {
        proto::ClientResponse r;
        fill_not_leader(&r);
        Reply reply = std::move(it->reply);
        it = reads_.erase(it);
        reply(std::move(r));
        continue;
      }
      if (lease) it->read_slot = *lease;
    }
    if (!it->read_slot || *it->read_slot > applied_slot_) {
      ++it;
      continue;
    }
    backend::Backend* b = backends_.get(it->backend);
    proto::ClientResponse r;
    backend::Result q = b->query(it->payload);
    if (q.ok) {
      r.set_code(Code::ClientResponse_Code_OK);
      r.set_result(std::move(q.bytes));
    } else {
      r.set_code(Code::ClientResponse_Code_BACKEND_ERROR);
      r.set_error(q.error);
    }
    r.set_slot(applied_slot_);
    Reply reply = std::move(it->reply);
    it = reads_.erase(it);
    reply(std::move(r));
  }
}

void Node::expire_requests() {
  const auto now = Clock::now();
  for (auto it = writes_.begin(); it != writes_.end();) {
    if (it->second.deadline <= now) {
      fail(it->second.reply, Code::ClientResponse_Code_TIMEOUT,
           "timed out: the outcome is unknown; retry with the same sequence");
      it = writes_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = reads_.begin(); it != reads_.end();) {
    if (it->deadline <= now) {
      fail(it->reply, Code::ClientResponse_Code_TIMEOUT,
           it->read_slot ? "timed out waiting to apply up to the read point"
                         : "timed out waiting for a leader lease");
      it = reads_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = forwarded_.begin(); it != forwarded_.end();) {
    if (it->second.deadline + std::chrono::milliseconds(200) <= now) {
      fail(it->second.reply, Code::ClientResponse_Code_TIMEOUT, "timed out waiting for the leader");
      it = forwarded_.erase(it);
    } else {
      ++it;
    }
  }
}

// ------------------------------------------------------------------ helpers

std::chrono::steady_clock::time_point Node::deadline_of(const proto::ClientRequest& req) const {
  const std::uint32_t ms = req.timeout_ms() != 0 ? req.timeout_ms() : cfg_.request_timeout_ms;
  return Clock::now() + std::chrono::milliseconds(ms);
}

void Node::fail(const Reply& reply, Code code, const std::string& error) {
  proto::ClientResponse r;
  r.set_code(code);
  r.set_error(error);
  reply(std::move(r));
}

void Node::fill_not_leader(proto::ClientResponse* r) {
  const paxos::NodeId hint = replica_->leader_hint();
  if (hint == paxos::kNoNode || hint == cfg_.id || !cfg_.peers.contains(hint)) {
    r->set_code(Code::ClientResponse_Code_UNAVAILABLE);
    r->set_error("no leader at the moment (election in progress or no quorum); retry");
    return;
  }
  r->set_code(Code::ClientResponse_Code_NOT_LEADER);
  r->set_error("node " + std::to_string(cfg_.id) + " is not the leader; node " +
               std::to_string(hint) + " is");
  r->set_leader_hint(hint);
  r->set_leader_address(cfg_.peers.at(hint));
}

void Node::fill_status(proto::NodeStatus* s) {
  s->set_id(cfg_.id);
  s->set_address(cfg_.listen);
  s->set_role(paxos::to_string(replica_->role()));
  // A follower is "in" the ballot it promised; a leader or candidate in its own.
  codec::to_proto(replica_->role() == paxos::Role::kFollower ? replica_->promised()
                                                             : replica_->ballot(),
                  s->mutable_ballot());
  codec::to_proto(replica_->promised(), s->mutable_promised());
  s->set_leader(replica_->leader_hint());
  s->set_commit(replica_->chosen_through());
  s->set_applied(applied_slot_);
  s->set_known_commit(replica_->known_commit());
  s->set_catching_up(replica_->is_catching_up());
  for (const auto& p : transport_->peer_status()) {
    auto* ps = s->add_peers();
    ps->set_id(p.id);
    ps->set_address(p.address);
    ps->set_connected(p.connected);
  }
  const auto st = store_->stats();
  s->set_syncs(st.syncs);
  s->set_bytes_synced(st.bytes_synced);
  for (const auto& b : cfg_.backends) s->add_backends(b);
  s->set_apply_error(apply_error_);
  s->set_leader_contact_ms(leader_contact_ms());
}

}  // namespace synod::server
