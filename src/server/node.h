// Node: one synod server. It wires the consensus core (src/paxos/) to durable
// storage (src/storage/), the TCP transport (src/net/), a clock (asio timers)
// and the backend host (src/backend/), all on ONE event-loop thread:
//
//   inputs (peer messages, client requests, ticks) -> Replica
//   end of the event-loop turn (flush): Ready -> proposer messages sent at
//   once -> the rest handed to the storage thread (Persister), which writes
//   and fsyncs (merging jobs that queued behind a running fsync: group
//   commit) -> back on the event loop, in order: acceptor answers sent ->
//   committed slots applied to backends -> clients answered
//
// Exactly-once: every write carries (client id, sequence); the replicated
// session table (one entry per client, in storage with the applied point)
// remembers each client's last sequence and result, so a retry after a lost
// reply returns the original result instead of applying twice. Sessions idle
// for session_ttl_ms of log time (timestamps stamped into commands by the
// proposer) expire on every node at the same command.
//
// Backends see one "position" per command (ctx.slot in backend.h): a counter
// over every command of the log, the same on every node. The node stores the
// position of its applied point; after a crash a backend skips positions it
// already applied.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "backend/host.h"
#include "net/client_connection.h"
#include "net/transport.h"
#include "paxos/random.h"
#include "paxos/replica.h"
#include "proto/synod.pb.h"
#include "http/http_server.h"
#include "resp/redis_server.h"
#include "server/config.h"
#include "server/persister.h"
#include "storage/log_store.h"

namespace synod::server {

class Node {
 public:
  explicit Node(Config config);
  ~Node();

  // Opens storage, loads backends, checks they agree with the log, starts the
  // transport and the clock. False with *error on any failure (nothing runs).
  bool start(std::string* error);
  // Runs the event loop until stop() or SIGINT/SIGTERM (when handle_signals).
  void run(bool handle_signals);
  // Thread-safe; returns at once, run() returns soon after.
  void stop();

  std::uint16_t port() const;
  // 0 after a clean stop; non-zero when the node stopped because of an error.
  int exit_code() const { return exit_code_; }

 private:
  // Answers one request: to a native client over the transport (filling in
  // its request id), to the Redis front end, or to a forwarding follower.
  using Reply = std::function<void(proto::ClientResponse&&)>;
  struct PendingWrite {
    Reply reply;
    std::chrono::steady_clock::time_point deadline;
  };
  struct PendingRead {
    Reply reply;
    std::string backend;
    std::string payload;
    std::optional<paxos::Slot> read_slot;  // set once a lease confirms leadership
    std::chrono::steady_clock::time_point deadline;
  };
  struct Forwarded {
    Reply reply;
    std::chrono::steady_clock::time_point deadline;
  };
  struct Session {
    std::uint64_t sequence = 0;
    std::string result;
    std::int64_t last_ms = 0;
    // Applied, but the result was not kept (the backend had the command when
    // this node replayed it after a restart): a retry is answered OK with
    // kResultLost's message, not as an empty result. Node-local, like the
    // result itself: another node that applied the command live has it.
    bool result_lost = false;
  };
  // The message of an OK answer whose result was lost (Session::result_lost).
  static constexpr const char* kResultLost = "applied; the result was lost in a restart";

  // Inputs.
  void on_peer_message(proto::PeerMessage&& m);
  void on_client_request(net::ConnectionId conn, proto::ClientRequest&& req);
  void on_tick();
  // The leader's {"op":"tick"} to backend "lock" (Config::lock_tick_ms).
  void propose_lock_tick();
  void advance_clock();
  void handle_write(proto::ClientRequest& req, Reply reply);
  void handle_read(proto::ClientRequest& req, Reply reply);
  // A request of a front end (Redis, HTTP), as a native one of its backend.
  struct FrontendRequest {
    std::string backend;
    bool write = false;
    std::string payload;
    bool linearizable = true;  // reads
    Reply reply;
    std::chrono::steady_clock::time_point deadline;
    // Local reads (rqlite's freshness=): refused as stale when this node has
    // not heard from the leader for longer (-1: no bound); strict: also when
    // it has not applied everything it knows to be committed.
    std::int64_t freshness_ms = -1;
    bool freshness_strict = false;
  };
  void on_frontend_request(FrontendRequest fr);
  // See NodeStatus.leader_contact_ms.
  std::int64_t leader_contact_ms() const;
  void frontend_attempt(FrontendRequest fr);
  // Not the leader: forward to it, or answer NOT_LEADER/UNAVAILABLE with a hint.
  void forward_or_redirect(proto::ClientRequest& req, Reply reply, bool no_forward);
  void forward(proto::ClientRequest& req, Reply reply);
  void on_forward_response(proto::ClientResponse&& r);
  void fail_forwarded(const std::string& why);

  // The Ready loop.
  void schedule_flush();
  void flush();
  // Jobs the storage thread finished: send, apply and answer what they held.
  void on_persisted();
  void release(PersistJob& job);
  void send_message(paxos::Message&& m);
  void apply_committed();
  void record_applied(bool force);
  bool apply_slot(paxos::Slot slot, const paxos::Value& value);
  // Stops applying at `slot` with `why` (status, logs) and retries it later.
  bool stall_apply(paxos::Slot slot, const std::string& why);
  void serve_reads();
  void expire_requests();
  void reload_after_disk_error();

  // Helpers.
  static void fail(const Reply& reply, proto::ClientResponse::Code code, const std::string& error);
  void fill_not_leader(proto::ClientResponse* r);
  void fill_status(proto::NodeStatus* s);
  std::chrono::steady_clock::time_point deadline_of(const proto::ClientRequest& req) const;
  std::unique_ptr<paxos::Replica> make_replica(std::string* error);

  Config cfg_;
  backend::BackendHost backends_;
  asio::io_context io_;
  asio::steady_timer tick_timer_;
  asio::steady_timer apply_retry_timer_;
  std::unique_ptr<asio::signal_set> signals_;
  std::unique_ptr<storage::LogStore> store_;
  std::unique_ptr<Persister> persister_;  // after store_: stopped before it closes
  std::uint64_t epoch_ = 0;               // bumped when the core is rebuilt from disk
  std::size_t jobs_in_flight_ = 0;        // submitted to persister_, not yet released
  std::unique_ptr<net::Transport> transport_;
  std::unique_ptr<resp::RedisServer> redis_;
  std::unique_ptr<http::HttpServer> http_;
  std::vector<FrontendRequest> frontend_retries_;  // tried again at the next tick
  std::unique_ptr<paxos::Replica> replica_;
  paxos::Rng rng_;
  std::chrono::steady_clock::time_point last_tick_;
  bool flush_scheduled_ = false;
  int exit_code_ = 0;

  // Applying.
  std::deque<paxos::ChosenEntry> apply_queue_;
  paxos::Slot applied_slot_ = 0;
  paxos::Slot recorded_slot_ = 0;  // the applied point last written to storage
  std::chrono::steady_clock::time_point last_record_;
  std::uint64_t applied_position_ = 0;
  std::int64_t log_time_ms_ = 0;
  std::string apply_error_;
  // When a message from the leader (as this node knows it) last arrived.
  std::optional<std::chrono::steady_clock::time_point> leader_contact_;
  // The wait before applying is retried after an error: doubles per failure
  // (100 ms to 5 s), back to 100 ms once a slot applies.
  std::chrono::milliseconds apply_backoff_{100};
  bool deferred_last_ = false;  // advance_clock: the last ticks went in as tick_missed
  std::unordered_map<std::uint64_t, Session> sessions_;
  // Backend "lock" is loaded; when this node last proposed a command to it.
  bool lock_backend_ = false;
  std::chrono::steady_clock::time_point last_lock_proposal_{};
  std::map<std::uint64_t, Session> dirty_sessions_;
  std::vector<std::uint64_t> erased_sessions_;

  // Clients.
  std::uint64_t next_tag_ = 1;
  std::unordered_map<std::uint64_t, PendingWrite> writes_;            // by command tag
  std::unordered_map<paxos::ProposalId, std::uint64_t> proposal_tag_;  // proposal -> tag
  std::deque<PendingRead> reads_;
  std::unique_ptr<net::ClientConnection> leader_conn_;
  paxos::NodeId leader_conn_id_ = paxos::kNoNode;
  bool leader_conn_up_ = false;  // leader_conn_ connected (requests may have left)
  std::uint64_t next_forward_id_ = 1;
  std::unordered_map<std::uint64_t, Forwarded> forwarded_;
};

}  // namespace synod::server
