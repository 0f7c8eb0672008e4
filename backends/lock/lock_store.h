// LockStore: the state of the lock backend (libsynod_backend_lock.so): client
// sessions with a TTL, named locks (exclusive or shared) with FIFO wait
// queues, a lock-delay after a holder's session expires, and fencing tokens.
// One SQLite database per node (data_dir/lock.sqlite), the whole state also
// kept in memory; docs/LOCKS.md describes the service, this header the
// contract of the backend.
//
// Commands (Command.payload for backend "lock") are JSON objects; results are
// JSON objects. S is a session id, T a fencing token, both log positions.
//
//   {"op":"open","ttl_ms":10000,"lock_delay_ms":5000}
//                                           -> {"session":S,"expires_ms":E,"lock_delay_ms":D}
//   {"op":"keepalive","session":S}          -> {"session":S,"expires_ms":E}
//   {"op":"close","session":S}              -> {"closed":true}
//   {"op":"acquire","session":S,"lock":"NAME","mode":"exclusive"|"shared","wait":true|false,
//    "req":R}
//        -> {"granted":true,"token":T,"lock":NAME,"mode":M}
//         | {"granted":false,"waiting":true,"position":k}          (queued; k = 1 is next)
//         | {"granted":false,"waiting":false,"holder_session":H,"unavailable_until_ms":X}
//         | {"error":"request R was superseded ...","superseded":true}
//   {"op":"cancel","session":S,"lock":NAME,"req":R,"keep_held":false} -> {"cancelled":true}
//         | {"cancelled":true,"released":true,"token":T}  (with req: a grant it covers, released)
//         | {"cancelled":false,"held":true,"token":T}  (granted before the cancel: release it)
//         | {"cancelled":false,"waiting":true}         (a wait of a newer request)
//         | {"cancelled":false}                        (neither waiting nor holding)
//   {"op":"release","session":S,"lock":NAME,"req":R} -> {"released":true} | {"error":"not held"}
//         | {"error":"request R was superseded ...","superseded":true}  (a newer acquire holds it)
//   {"op":"tick"}                            -> {}    (only advances the clock)
//
// mode defaults to "exclusive", wait to true. A command on a session that is
// gone answers {"error":"session S expired","expired":true}, {"error":"session
// S closed","closed":true} or {"error":"unknown session"}; a malformed command
// {"error":"..."}. Every command naming a live session also counts as a
// keepalive of it.
//
// Queries (read-only, from any thread):
//   {"op":"status","session":S,"lock":NAME} -> {"held":true,"token":T,"mode":M,"req":R}
//         | {"held":false,"waiting":true,"position":k,"req":R} | {"held":false,"waiting":false}
//         (R: the newest request number that asked for the hold or wait; 0: none)
//         | {"error":"session expired","expired":true} | {"error":"session closed","closed":true}
//         | {"error":"unknown session"}
//   {"op":"show","lock":NAME} -> {"lock":NAME,"holders":[{"session":S,"token":T,"mode":M,
//         "since_ms":..}],"waiters":[{"session":S,"mode":M}],"unavailable_until_ms":X,
//         "last_token":T,"now_ms":N}
//   {"op":"list"} -> {"locks":[<show objects of locks held, waited for or in their
//         lock-delay>],"sessions":[{"session":S,"ttl_ms":..,"expires_ms":..}],"now_ms":N}
//   {"op":"check","lock":NAME,"token":T} -> {"current":true|false,"newest_token":T2}
//   {"op":"idle"} -> {"idle":true|false}   (true: no session, so a tick would change
//         nothing; the leader then skips its ticks)
//
// The lock-delay is the session's, chosen by the client when it opens it (as in
// Chubby): 0 .. kMaxLockDelayMs, kDefaultLockDelayMs when the open does not say.
// It is in the log, not in a node's options, so every node applies the same.
//
// Time comes ONLY from the log: now_ms = max(now_ms, ctx.timestamp_ms) of the
// command being applied (stamped by the proposer). Before each command, every
// session with last_seen_ms + ttl_ms < now_ms expires: its waits are dropped,
// its held locks released, and each such lock is unavailable to new grants
// until now_ms + that session's lock_delay_ms (the lock-delay); then waiters are granted in
// FIFO order at the first command at or after that time (the leader's ticks
// make sure there is one). close and release free a lock at once.
//
// Grants. An exclusive grant needs no holder; a shared one no exclusive holder;
// both need an empty queue (no overtaking: a shared request waits behind an
// earlier exclusive waiter) and the lock out of its lock-delay. The fencing
// token of a grant is ctx.slot of the command during which it happens, so
// tokens strictly increase per lock across all grants: a lock freed and
// granted again within ONE command (lock_delay_ms = 0, or a waiter granted as
// the command begins and released by it) waits for the next command. Shared
// waiters granted by the same command share its token.
//
// Acquire is idempotent: a session that already holds the lock in that mode
// gets the same grant and token again; one already waiting keeps its place.
//
// Request numbers ("req", optional, >= 1, chosen by the client and rising per
// session) close the gap that idempotence leaves: an acquire whose answer was
// lost may still be on its way (a retry, a node's queue, a proposal a later
// leader completes) after the client gave up on it. A release or cancel with
// req R fences the session's acquires of that lock up to R: one applied later
// is refused ("superseded"). A cancel with req R also ends a wait or a hold
// that only acquires up to R asked for (a later acquire of the same grant
// keeps it); with "keep_held": true only a wait (the client still holds the
// lock from an earlier acquire it reported). A release with req R does not
// free a hold a newer acquire (req > R) asked for. The fences are kept until the session ends, at most kMaxFences
// lock names per session: beyond that the lowest fence is dropped and its
// number becomes a floor that fences every lock of the session.
//
// Positions: the last applied position, now_ms and every changed row are
// written in one SQLite transaction per batch; positions at or below
// last_applied() are no-ops answering an "already applied" error. WAL with
// synchronous=NORMAL; sync() checkpoints with fsync.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "synod/backend.h"

struct sqlite3;

namespace synod::lock {

// The limits validate() and apply() hold commands to.
inline constexpr std::int64_t kMinTtlMs = 1000;
inline constexpr std::int64_t kMaxTtlMs = 600000;
inline constexpr std::int64_t kDefaultLockDelayMs = 5000;
inline constexpr std::int64_t kMaxLockDelayMs = 300000;
inline constexpr std::size_t kMaxLockName = 256;
// How many ended (expired or closed) sessions are remembered, to tell a client
// "expired" rather than "unknown session"; the lowest ids are forgotten first.
inline constexpr std::size_t kEndedKept = 10000;
// Fences kept per session (lock names); older ones fold into one floor.
inline constexpr std::size_t kMaxFences = 1024;

class LockStore {
 public:
  struct Config {
    std::string data_dir;  // required; created if missing; holds lock.sqlite
  };

  static std::unique_ptr<LockStore> open(const Config& config, std::string* error);
  ~LockStore();
  LockStore(const LockStore&) = delete;
  LockStore& operator=(const LockStore&) = delete;

  // n commands in one transaction (synod_backend_api::apply_batch). False with
  // *error when SQLite failed; then nothing was applied (the memory state is
  // reloaded from the database).
  bool apply_batch(size_t n, const synod_apply_context* ctxs, const std::string_view* cmds,
                   std::vector<std::string>* results, std::string* error);
  bool apply(const synod_apply_context& ctx, std::string_view command, std::string* result,
             std::string* error);
  // Queries (status, show, list, check); a bad request is an {"error"} result.
  bool query(std::string_view request, std::string* result, std::string* error);
  // The JSON shape of a command (ops, field types, ttl range, lock names).
  bool validate(std::string_view command, std::string* why) const;
  uint64_t last_applied() const;
  bool sync(std::string* error);

 private:
  struct Session {
    std::int64_t ttl_ms = 0;
    std::int64_t lock_delay_ms = kDefaultLockDelayMs;
    std::int64_t last_seen_ms = 0;
    std::set<std::string> held;
    std::set<std::string> waiting;
    // lock -> the highest request number a release or cancel of this session
    // named: an acquire with a request number at or below it is refused.
    std::map<std::string, std::uint64_t> fences;
    // At most kMaxFences are kept: the oldest go, and every lock is then
    // fenced up to the highest request number that went.
    std::uint64_t fence_floor = 0;
    std::int64_t expires_ms() const { return last_seen_ms + ttl_ms; }
  };
  struct Holder {
    std::uint64_t session = 0;
    bool shared = false;
    std::uint64_t token = 0;
    std::int64_t since_ms = 0;
    std::uint64_t req = 0;  // the newest acquire that asked for it (request number)
  };
  struct Waiter {
    std::uint64_t session = 0;
    bool shared = false;
    std::uint64_t seq = 0;  // the position that queued it (FIFO order)
    std::uint64_t req = 0;  // the newest acquire that asked for it (request number)
  };
  struct Lock {
    std::vector<Holder> holders;  // in grant order
    std::deque<Waiter> waiters;   // FIFO
    std::int64_t unavailable_until_ms = 0;
    std::uint64_t last_token = 0;
  };
  struct Ended {
    bool expired = false;  // else closed
    std::int64_t at_ms = 0;
  };

  LockStore() = default;
  bool upgrade_schema(std::string* error);
  bool load(std::string* error);  // memory state from the database
  bool exec(const char* sql, std::string* error);
  bool persist(std::uint64_t position, std::string* error);

  // One command at ctx (after the clock and expiry); returns its result.
  std::string apply_one(const synod_apply_context& ctx, std::string_view command);
  void advance(const synod_apply_context& ctx);  // clock, expiry, due grants
  void expire(std::uint64_t slot);
  void try_grant(const std::string& name, std::uint64_t slot);
  void grant(const std::string& name, Lock& l, std::uint64_t session, bool shared,
             std::uint64_t slot, std::uint64_t req);
  void remove_holder(const std::string& name, std::uint64_t session);
  void remove_waiter(const std::string& name, std::uint64_t session);
  void touch(std::uint64_t id);  // a keepalive
  void end_session(std::uint64_t id, bool expired);
  std::string session_gone(std::uint64_t id) const;  // the error result of a missing session
  bool grantable_now(const Lock& l, bool shared, std::uint64_t slot) const;
  std::string show_json(const std::string& name, const Lock* l) const;  // JSON text

  Config config_;
  sqlite3* db_ = nullptr;
  mutable std::shared_mutex mu_;  // the memory state: applies write, queries read

  // The replicated state.
  std::uint64_t applied_ = 0;
  std::int64_t now_ms_ = 0;
  std::map<std::uint64_t, Session> sessions_;
  std::map<std::string, Lock> locks_;
  std::map<std::uint64_t, Ended> ended_;
  // Derived: sessions by expiry; locks with waiters to look at once now_ms
  // reaches the time (their lock-delay ends, or the next command).
  std::set<std::pair<std::int64_t, std::uint64_t>> by_expiry_;
  std::set<std::pair<std::int64_t, std::string>> pending_;
  // Rows changed by the batch being applied.
  std::set<std::uint64_t> dirty_sessions_;
  std::set<std::string> dirty_locks_;
  std::set<std::uint64_t> dirty_ended_;
  std::set<std::pair<std::uint64_t, std::string>> dirty_fences_;
};

}  // namespace synod::lock
