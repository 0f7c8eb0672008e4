// The Synod client library (C++). Link synod_client.
//
//   auto client = synod::client::Client::connect({"10.0.0.1:7001", "10.0.0.2:7001"}, {}, &error);
//   synod::client::Result r = client->put("k", "v");
//   if (!r.ok()) std::cerr << r.message << "\n";
//
// What it does for the caller:
// - Finds the leader: it asks every node for its status at start, follows the
//   NOT_LEADER hints nodes answer with, and sends writes (and linearizable
//   reads) there. By default a follower that gets a write forwards it to the
//   leader; with Options::prefer_redirect the client asks followers not to
//   forward and goes to the leader itself.
// - Sends local reads to a node the caller named (the leader when it is one of
//   them, as it has applied every write it acknowledged), so a caller that
//   names a single node reads that node's own, maybe stale, state.
// - Keeps ONE connection per node, opened when first needed and reopened by
//   itself after a failure (with backoff), and keeps many requests in flight on
//   it at once.
// - Retries until the call's deadline: after a lost connection, a node that did
//   not answer in time, a TIMEOUT, "no leader yet" (UNAVAILABLE) or a redirect.
//   A write keeps its exactly-once identity (client id, sequence) across every
//   retry, so the cluster applies it at most once whatever happened to the
//   replies. Requests the cluster refused (BAD_REQUEST) are not retried.
// - Never blocks longer than the call's timeout (plus a few milliseconds).
//
// Exactly-once sessions. The cluster remembers, per client id, only the LAST
// applied sequence and its result. Two writes of one session in flight at once
// could therefore reach a new leader out of order and the earlier one would be
// taken for a duplicate. So the client gives every write in flight a session of
// its own: a small pool of session ids derived from Options::client_id (the first
// is client_id itself), each with strictly increasing sequences, each carrying at
// most one write at a time. Sequences start from the wall clock in microseconds,
// so a process that reuses an explicit client_id after a restart continues above
// the sequences its previous run used.
//
// Threading: every member function may be called from any thread, concurrently.
// One internal thread runs all network I/O; asynchronous callbacks run on it and
// must not block (and must not make synchronous calls on this client: those
// return Code::kBadRequest at once instead of dead-locking).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace synod::client {

enum class Consistency {
  kLocal,         // the answering node's state: maybe stale, served by any node
  kLinearizable,  // the leader's, confirmed by its lease or a quorum round
};

// What a call ended with. The first four are answers of the key-value backend;
// the rest say why there is no answer.
enum class Code {
  kOk = 0,
  kNotFound,       // get, del: the key does not exist (a del of a missing key
                   // changes nothing)
  kCasFailed,      // cas: the key's value was not the expected one (Result::value,
                   // Result::found say what it is)
  kNotANumber,     // incr: the key's value is not a decimal integer
  kTimeout,        // the deadline passed without an answer; a write's outcome is
                   // UNKNOWN (it may or may not have been applied)
  kUnavailable,    // no node was reachable, or the cluster had no leader/quorum,
                   // until the deadline; also every call after close()
  kBadRequest,     // refused without retrying: unknown backend, malformed command,
                   // bad argument, or a synchronous call from a callback
  kBackendError,   // the backend refused the command (Result::message says why)
  kProtocolError,  // a node's answer could not be decoded
  kResultLost,     // the write was applied, but the node restarted before it could
                   // report its result (cas/incr/del only; a put is then kOk)
  // Locks (LockSession below):
  kLockBusy,     // try_acquire: another session holds the lock; acquire: not granted
                 // before the wait ran out (the wait was cancelled)
  kSessionLost,  // the lock session expired (or is unknown to the cluster): every lock
                 // it held is released; open a new session
};

// "ok", "not_found", "cas_failed", "not_a_number", "timeout", "unavailable",
// "bad_request", "backend_error", "protocol_error", "result_lost", "lock_busy",
// "session_lost".
const char* code_name(Code code);

struct Result {
  Code code = Code::kOk;
  std::string message;  // a sentence for humans when code != kOk; empty otherwise
  // get: the value. cas (kCasFailed): the current value when found. write/read:
  // the backend's raw result bytes.
  std::string value;
  bool found = false;             // get, cas: whether the key exists
  std::int64_t number = 0;        // incr: the new value
  std::vector<std::string> keys;  // keys: the matching keys, in order
  std::uint64_t slot = 0;         // writes: the slot the command was chosen in;
                                  // reads: the answering node's applied slot
  std::string node;               // the address of the node that answered

  bool ok() const { return code == Code::kOk; }
};

struct Options {
  // A call's timeout when the call does not give its own. Must be > 0.
  std::chrono::milliseconds timeout{5000};
  // How long one node may take to answer one attempt before the client tries
  // another node (a node that is paused, or cut off without a reset). Bounded by
  // the call's own deadline. Must be > 0.
  std::chrono::milliseconds attempt_timeout{1000};
  // The consistency of reads that do not name one.
  Consistency read_consistency = Consistency::kLocal;
  // false: send writes to any node; a follower forwards them to the leader.
  // true: followers answer NOT_LEADER (with the leader's address) and the client
  // goes to the leader itself.
  bool prefer_redirect = false;
  // This client's exactly-once session id; 0 picks a random nonzero 64-bit id.
  // Two clients must never share one.
  std::uint64_t client_id = 0;
  // The cluster's name (synod --cluster); its hash is in every frame, and nodes
  // close connections of other clusters.
  std::string cluster = "synod";
  // The name of the key-value backend on the cluster (the kv calls use it).
  std::string kv_backend = "kv";
  // How long one TCP connect may take.
  std::chrono::milliseconds connect_timeout{2000};
};

// Per-call settings. The defaults take everything from Options.
struct CallOptions {
  std::chrono::milliseconds timeout{0};    // 0: Options::timeout; must be >= 0
  std::optional<Consistency> consistency;  // reads; unset: Options::read_consistency
  // Writes: an explicit exactly-once identity instead of one from the client's
  // pool (for tests that resend a command, or callers that keep their own
  // sequence across restarts). Used only when both are nonzero.
  std::uint64_t client_id = 0;
  std::uint64_t sequence = 0;
};

struct Ballot {
  std::uint64_t round = 0;
  std::uint32_t node = 0;
};

struct PeerStatus {
  std::uint32_t id = 0;
  std::string address;
  bool connected = false;  // the node's link to this peer is up
};

// One node as status() found it. Every field after `error` is meaningful only
// when reachable.
struct NodeStatus {
  std::string address;  // where the client asked (or a peer's address it learned)
  bool reachable = false;
  std::string error;     // why not reachable
  std::uint32_t id = 0;  // 0: unknown (never reached, and no peer named it)
  std::string role;      // follower, candidate, leader
  Ballot ballot;
  Ballot promised;
  std::uint32_t leader = 0;  // the leader this node knows of; 0: none
  std::uint64_t commit = 0;  // chosen through this slot
  std::uint64_t applied = 0;
  std::uint64_t known_commit = 0;
  bool catching_up = false;
  std::vector<PeerStatus> peers;
  std::uint64_t syncs = 0;
  std::uint64_t bytes_synced = 0;
  std::vector<std::string> backends;
  std::string apply_error;
};

class Client {
 public:
  using Callback = std::function<void(Result)>;

  // Checks the addresses ("HOST:PORT" or "[IPv6]:PORT"; at least one; each may
  // also be a comma-separated list) and the options, starts the I/O thread and,
  // in the background, asks every node for its status to find the leader. Does
  // not wait for any node: an unreachable cluster shows up in the calls. nullptr
  // with *error (if not null) on a malformed address or option.
  static std::unique_ptr<Client> connect(std::vector<std::string> nodes, Options options = {},
                                         std::string* error = nullptr);

  ~Client();  // close()
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Ends every call in progress with kUnavailable ("client closed"), closes the
  // connections and joins the I/O thread. Later calls return kUnavailable at
  // once. Idempotent; must not be called from a callback.
  void close();

  // The key-value backend (Options::kv_backend). Keys and values are bytes.
  Result put(std::string_view key, std::string_view value, const CallOptions& call = {});
  Result get(std::string_view key, const CallOptions& call = {});
  Result get(std::string_view key, Consistency consistency, const CallOptions& call = {});
  Result del(std::string_view key, const CallOptions& call = {});
  // Sets key to value if its value is *expected, or, when expected is nullopt,
  // if the key is absent. kCasFailed otherwise.
  Result cas(std::string_view key, std::optional<std::string_view> expected, std::string_view value,
             const CallOptions& call = {});
  // Adds delta to the key's decimal value (an absent key counts as 0).
  Result incr(std::string_view key, std::int64_t delta = 1, const CallOptions& call = {});
  // Keys starting with prefix, in order; at most limit (0: no limit). A read.
  Result keys(std::string_view prefix, std::uint32_t limit = 0, const CallOptions& call = {});

  // Any backend: payload is the backend's own command encoding; Result::value
  // is its result bytes. A write goes through the log; a read is served by a node.
  Result write(std::string_view backend, std::string_view payload, const CallOptions& call = {});
  Result read(std::string_view backend, std::string_view payload, const CallOptions& call = {});
  // The same without waiting: done is called exactly once, on the I/O thread
  // (or at once on the calling thread when the arguments are invalid or the
  // client is closed). It must not throw.
  void write_async(std::string_view backend, std::string_view payload, const CallOptions& call,
                   Callback done);
  void read_async(std::string_view backend, std::string_view payload, const CallOptions& call,
                  Callback done);

  // Asks every node (those given to connect, any leader they pointed to, and any
  // peer their status names) for its status, in parallel, for at most timeout
  // (0: Options::timeout). One entry per node, ordered by id (unknown ids last);
  // nodes that did not answer are marked unreachable. Empty after close() or
  // when called from a callback.
  std::vector<NodeStatus> status(std::chrono::milliseconds timeout = {});

  // The session id of this client (Options::client_id or the random one).
  std::uint64_t client_id() const;

  struct Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------
// Locks: sessions, leases and fencing tokens over the "lock" backend
// (synod --backend lock; docs/LOCKS.md). Link synod_client.
//
//   auto client = synod::client::Client::connect({"10.0.0.1:7001"});
//   synod::client::Result r;
//   auto session = synod::client::LockSession::open(*client, {}, &r);
//   if (!session) { std::cerr << r.message << "\n"; return; }
//   synod::client::LockGuard guard(*session, "backup");   // blocks until granted
//   if (!guard) { std::cerr << guard.result().message << "\n"; return; }
//   storage.write(data, guard.token());  // the resource refuses older tokens
//
// A lock is a LEASE: the cluster releases it when the session misses its
// keep-alives for its TTL (a paused process, a partition), possibly while the
// holder still believes it holds it. A lock alone is therefore not mutual
// exclusion: pass token() to the protected resource and let it refuse any
// token lower than the highest it has seen (check_lock_token helps).

enum class LockMode { kExclusive, kShared };

// A negative AcquireOptions::wait: wait as long as it takes.
inline constexpr std::chrono::milliseconds kWaitForever{-1};

struct LockSessionOptions {
  // The session's TTL: the cluster expires it (and releases its locks) when no
  // keep-alive reached it for this long. 1 s .. 600 s.
  std::chrono::milliseconds ttl{10000};
  // How often the background thread sends a keep-alive; 0: ttl / 3. (A value
  // above the TTL lets the session expire: for tests.)
  std::chrono::milliseconds keepalive_interval{0};
  // The timeout of each call the session makes (open, keep-alive, acquire,
  // status, release, close); 0: the client's Options::timeout.
  std::chrono::milliseconds call_timeout{0};
  // How long a lock this session held stays unavailable to others after the
  // session EXPIRES (not after a release or close): time for a holder that
  // lost its session to notice and stop. 0 .. 300 s; part of the session's
  // open command, so every node applies the same.
  std::chrono::milliseconds lock_delay{5000};
  // The name of the lock backend on the cluster.
  std::string backend = "lock";
  // Called once when the session is lost (the cluster answered that it expired,
  // or no keep-alive succeeded for a whole TTL so it may have), with the reason,
  // from whichever thread noticed it (usually the keep-alive thread). It must
  // return quickly and must not close or destroy the session.
  std::function<void(const std::string& reason)> on_lost;
};

struct AcquireOptions {
  LockMode mode = LockMode::kExclusive;
  // How long to wait for the lock: 0 tries once (try_acquire: kLockBusy when
  // another session holds it); negative (kWaitForever) waits without limit. A
  // wait that runs out leaves the queue (a cancel; a grant that beat the cancel
  // is released again) and returns kLockBusy.
  std::chrono::milliseconds wait = kWaitForever;
  // How often a waiting acquire asks whether it has the lock yet.
  std::chrono::milliseconds poll_interval{50};
};

// The outcome of acquire / try_acquire / release.
struct LockResult {
  Code code = Code::kOk;
  std::string message;             // for humans when code != kOk
  std::uint64_t token = 0;         // kOk from acquire: the fencing token of the grant
  std::uint64_t holder_session = 0;  // kLockBusy from a try: the holding session, if known
  bool ok() const { return code == Code::kOk; }
};

struct LockHolderInfo {
  std::uint64_t session = 0;
  std::uint64_t token = 0;
  LockMode mode = LockMode::kExclusive;
  std::int64_t since_ms = 0;  // log time (ms since the Unix epoch) of the grant
};
struct LockWaiterInfo {
  std::uint64_t session = 0;
  LockMode mode = LockMode::kExclusive;
};
struct LockInfo {
  std::string name;
  std::vector<LockHolderInfo> holders;  // none: free (or unavailable, see below)
  std::vector<LockWaiterInfo> waiters;  // in FIFO order
  // Log time until which the lock is held back after a holder's session expired
  // (the lock-delay); 0 or in the past: not held back.
  std::int64_t unavailable_until_ms = 0;
  std::uint64_t last_token = 0;  // the newest token ever granted for it
  std::int64_t now_ms = 0;  // the log time of the state that answered (0: not given)
};
struct LockSessionInfo {
  std::uint64_t session = 0;
  std::int64_t ttl_ms = 0;
  std::int64_t expires_ms = 0;  // log time
  std::int64_t lock_delay_ms = 0;
};
struct LockListing {
  std::vector<LockInfo> locks;
  std::vector<LockSessionInfo> sessions;
  std::int64_t now_ms = 0;  // the log time of the state that answered (0: not given)
};

// Inspecting locks needs no session. `backend` is the lock backend's name.
// show: Result::value holds the backend's JSON, *info (if not null) its fields.
// A lock nobody ever took shows with no holders and last_token 0.
Result show_lock(Client& client, std::string_view name, LockInfo* info = nullptr,
                 const CallOptions& call = {}, std::string_view backend = "lock");
Result list_locks(Client& client, LockListing* listing = nullptr, const CallOptions& call = {},
                  std::string_view backend = "lock");
// The fencing helper: *current = whether token is the token of the lock's
// current holder; *newest (if not null) = the newest token granted for it.
Result check_lock_token(Client& client, std::string_view name, std::uint64_t token,
                        bool* current, std::uint64_t* newest = nullptr,
                        const CallOptions& call = {}, std::string_view backend = "lock");
// Releases `name` for ANY session (an administrator breaking a lock held by a
// process that is gone; its holder is not told). kNotFound when that session
// does not hold it; kSessionLost when the session does not exist any more.
LockResult release_lock(Client& client, std::string_view name, std::uint64_t session,
                        const CallOptions& call = {}, std::string_view backend = "lock");

// A session with the lock backend: opened with a TTL, kept alive by a
// background thread, closed (releasing every lock it holds, with no
// lock-delay) by close() or the destructor. The Client must outlive it. Every
// member function may be called from any thread.
class LockSession {
 public:
  // Opens a session (a write through the log). nullptr with *result (if not
  // null) saying why: kBadRequest for a bad option or an unknown backend,
  // kTimeout / kUnavailable when the cluster did not answer.
  static std::unique_ptr<LockSession> open(Client& client, LockSessionOptions options = {},
                                           Result* result = nullptr);
  ~LockSession();  // close()
  LockSession(const LockSession&) = delete;
  LockSession& operator=(const LockSession&) = delete;

  // The session's id (the log position of its open command).
  std::uint64_t id() const;
  const LockSessionOptions& options() const;

  // Acquires `name`: an acquire command through the log, then, while the
  // session waits in the queue, status reads (local, confirmed linearizable)
  // every poll_interval until granted or the wait runs out. Idempotent: a lock
  // the session holds already is returned with its token (a session holds a
  // lock once, not counted: two guards of one session on one name share it,
  // and the first release frees it). kOk with the token; kLockBusy;
  // kSessionLost; or why the cluster did not answer (kTimeout, kUnavailable).
  // Each acquire has a request number of the session: when it ends without
  // a grant, it is cancelled up to that number (in the background until the
  // cluster answers), so that no copy of it can leave the session waiting
  // for or holding a lock the caller was told it did not get.
  LockResult acquire(std::string_view name, const AcquireOptions& options = {});
  // acquire with wait 0.
  LockResult try_acquire(std::string_view name, LockMode mode = LockMode::kExclusive);
  // Releases `name` (the next waiters are granted at once). kNotFound when the
  // session does not hold it. A release that got no answer is retried in the
  // background (as a cancel of every acquire so far).
  LockResult release(std::string_view name);
  // What the cluster says of this session and `name` (a linearizable read):
  // kOk with token when held, kLockBusy when not (waiting or not), kSessionLost.
  LockResult status(std::string_view name);

  Result show(std::string_view name, LockInfo* info = nullptr);
  Result list(LockListing* listing = nullptr);
  Result check(std::string_view name, std::uint64_t token, bool* current,
               std::uint64_t* newest = nullptr);

  // Whether the session is lost, and why: the cluster said it expired or is
  // gone, or valid_until() has passed with no keep-alive through (the cluster
  // may have expired it). Once lost, always lost; every call on a lost
  // session returns kSessionLost. Check it before each use of the resource.
  bool lost() const;
  std::string lost_reason() const;
  // Until when the session surely has not expired on the cluster: the send
  // time of the last keep-alive (or open) that succeeded, plus the TTL. Work
  // under a lock should finish before it (and still be fenced by the token:
  // this assumes the nodes' clocks advance at the rate of this one's).
  std::chrono::steady_clock::time_point valid_until() const;

  // Stops the keep-alives and closes the session on the cluster (releasing its
  // locks). The result of the close command (kOk too when the session was lost
  // already: there was nothing to release). Idempotent.
  Result close();

  struct Impl;

 private:
  explicit LockSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// RAII: acquires in the constructor (blocking as AcquireOptions says),
// releases in the destructor. Check ok() (or the bool conversion) before using
// the lock: a constructor that failed holds nothing, and result() says why.
class LockGuard {
 public:
  // On a session the caller keeps (and must outlive the guard).
  LockGuard(LockSession& session, std::string name, const AcquireOptions& options = {});
  // With a session of its own, opened here and closed in the destructor.
  LockGuard(Client& client, std::string name, const AcquireOptions& options = {},
            LockSessionOptions session_options = {});
  ~LockGuard();
  LockGuard(LockGuard&& other) noexcept;
  LockGuard& operator=(LockGuard&&) = delete;
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

  // Acquired, not released, and the session not lost (a lost session's
  // locks may be granted to others: stop using the resource).
  bool ok() const { return held_ && session_ != nullptr && !session_->lost(); }
  explicit operator bool() const { return ok(); }
  std::uint64_t token() const { return result_.token; }
  const LockResult& result() const { return result_; }
  const std::string& name() const { return name_; }
  // The session the guard uses (nullptr when its own could not be opened).
  LockSession* session() const { return session_; }
  // Releases now (the destructor then does nothing). kOk when there was nothing to release.
  LockResult release();

 private:
  std::unique_ptr<LockSession> own_;
  LockSession* session_ = nullptr;
  std::string name_;
  LockResult result_;
  bool held_ = false;
};

}  // namespace synod::client
