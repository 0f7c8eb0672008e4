// LockSession, LockGuard and the lock helpers of synod/client.hpp: sessions of
// the "lock" backend kept alive by a thread, blocking acquire by polling the
// lock's status, and the inspection calls. The JSON is in lock_ops.cc.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <set>
#include <mutex>
#include <optional>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>

#include "client/lock_ops.h"
#include "synod/client.hpp"

namespace synod::client {
namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kMinTtl{1000};
constexpr milliseconds kMaxTtl{600000};
constexpr milliseconds kMaxLockDelay{300000};
// How many local status polls a waiting acquire makes before one linearizable
// poll (a local node that lags, or is cut off, must not keep it waiting).
constexpr int kLocalPollsPerLinearizable = 10;

LockResult lock_result(const LockAnswer& a) {
  LockResult r;
  r.code = a.code;
  r.message = a.message;
  r.token = a.token;
  r.holder_session = a.holder_session;
  return r;
}

LockResult lock_result(Code code, std::string message) {
  LockResult r;
  r.code = code;
  r.message = std::move(message);
  return r;
}

// Whether a write that ended so may be sent again (lock commands are idempotent
// or harmless to repeat).
bool retryable(Code code) {
  return code == Code::kTimeout || code == Code::kUnavailable || code == Code::kResultLost;
}

// {"error": ...} in a read's answer, as a Result code.
Result check_read(Result r) {
  if (!r.ok()) return r;
  const auto j = nlohmann::json::parse(r.value, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    r.code = Code::kProtocolError;
    r.message = "the lock backend's answer is not a JSON object";
  } else if (j.contains("error")) {
    r.code = Code::kBackendError;
    r.message = j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump();
  }
  return r;
}

}  // namespace

Result show_lock(Client& client, std::string_view name, LockInfo* info, const CallOptions& call,
                 std::string_view backend) {
  Result r = check_read(client.read(backend, encode_lock_show(name), call));
  if (r.ok() && info != nullptr) {
    std::string error;
    if (!parse_lock_info(r.value, info, &error)) {
      r.code = Code::kProtocolError;
      r.message = "the lock backend's show answer: " + error;
    }
  }
  return r;
}

Result list_locks(Client& client, LockListing* listing, const CallOptions& call,
                  std::string_view backend) {
  Result r = check_read(client.read(backend, encode_lock_list(), call));
  if (r.ok() && listing != nullptr) {
    std::string error;
    if (!parse_lock_listing(r.value, listing, &error)) {
      r.code = Code::kProtocolError;
      r.message = "the lock backend's list answer: " + error;
    }
  }
  return r;
}

Result check_lock_token(Client& client, std::string_view name, std::uint64_t token, bool* current,
                        std::uint64_t* newest, const CallOptions& call, std::string_view backend) {
  if (current != nullptr) *current = false;
  if (newest != nullptr) *newest = 0;
  Result r = client.read(backend, encode_lock_check(name, token), call);
  const LockAnswer a = decode_lock_answer(LockOp::kCheck, r);
  r.code = a.code;
  r.message = a.message;
  if (a.code == Code::kOk) {
    if (current != nullptr) *current = a.current;
    if (newest != nullptr) *newest = a.newest_token;
  }
  return r;
}

namespace {

LockResult release_as(Client& client, std::string_view name, std::uint64_t session,
                      std::uint64_t req, const CallOptions& call, std::string_view backend) {
  LockAnswer a = decode_lock_answer(
      LockOp::kRelease, client.write(backend, encode_lock_release(session, name, req), call));
  if (a.code == Code::kResultLost) {
    // Released, or not held before: either way the session does not hold it now
    // unless it acquired it again since, which the status says.
    CallOptions lin = call;
    lin.consistency = Consistency::kLinearizable;
    const LockAnswer s =
        decode_lock_answer(LockOp::kStatus, client.read(backend, encode_lock_status(session, name), lin));
    if (s.code == Code::kLockBusy || s.code == Code::kSessionLost) return LockResult{};
  }
  return lock_result(a);
}

}  // namespace

LockResult release_lock(Client& client, std::string_view name, std::uint64_t session,
                        const CallOptions& call, std::string_view backend) {
  return release_as(client, name, session, 0, call, backend);
}

struct LockSession::Impl {
  Impl(Client& c, LockSessionOptions o) : client(c), options(std::move(o)) {}

  Client& client;
  const LockSessionOptions options;
  std::uint64_t id = 0;
  // The session's request numbers (acquire, cancel, release): rising, so that a
  // release or cancel fences the acquires sent before it (lock_store.h).
  std::atomic<std::uint64_t> last_req{0};

  mutable std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;  // close() began
  bool lost = false;
  bool cluster_said_lost = false;  // the cluster answered that the session is gone
  std::string lost_reason;
  SteadyClock::time_point valid_until;
  // Locks whose acquire ended with its outcome unknown (no answer, a cancel
  // that got none): lock -> the request number to cancel up to. The
  // keep-alive thread cancels them until the cluster answers, so the session
  // never holds or waits for a lock nobody asked for.
  std::map<std::string, std::uint64_t> abandoned;
  // Locks a caller was told it holds (acquire kOk) and has not released: a
  // cancel of another acquire of the name is sent with keep_held, so it ends
  // that acquire's wait but not the hold (a late copy of it finds the grant,
  // or comes after the release, which fences it).
  std::map<std::string, std::uint64_t> held_names;  // -> the token the caller was told
  // Locks with an acquire in progress: one at a time per name, so that two
  // threads of the session never share a wait that one of them then cancels.
  std::set<std::string> acquiring;
  bool closed = false;
  Result close_result;
  std::thread keepalive;

  CallOptions call(std::optional<Consistency> consistency = std::nullopt) const {
    CallOptions c;
    c.timeout = options.call_timeout;
    c.consistency = consistency;
    return c;
  }

  std::uint64_t next_req() { return last_req.fetch_add(1) + 1; }

  milliseconds interval() const {
    return options.keepalive_interval.count() > 0 ? options.keepalive_interval
                                                  : std::max(milliseconds(1), options.ttl / 3);
  }

  void mark_lost(const std::string& reason, bool by_cluster) {
    std::function<void(const std::string&)> callback;
    {
      std::lock_guard lock(mu);
      cluster_said_lost = cluster_said_lost || by_cluster;
      if (lost || stopping) return;  // after close(): nobody to tell
      lost = true;
      lost_reason = reason;
      callback = options.on_lost;
    }
    cv.notify_all();
    if (callback) callback(reason);
  }
  void cluster_says_lost(const std::string& message) {
    mark_lost("the cluster says: " + message, true);
  }

  // Lost once valid_until has passed with no keep-alive through: from then
  // on the cluster may have expired the session and granted its locks.
  bool check_lost() {
    bool expired = false;
    {
      std::lock_guard lock(mu);
      if (lost || stopping) return lost;  // a closed session is not "lost" later
      expired = SteadyClock::now() >= valid_until;
    }
    if (expired) {
      mark_lost("no keep-alive got through within the session's TTL; the cluster may have "
                "expired it",
                false);
    }
    return expired;
  }

  // kSessionLost for a call on a session that is lost or closing, else kOk.
  LockResult unusable() {
    check_lost();
    std::lock_guard lock(mu);
    if (lost) return lock_result(Code::kSessionLost, "session lost: " + lost_reason);
    if (stopping) return lock_result(Code::kSessionLost, "the session was closed");
    return LockResult{};
  }

  // Waits up to d, or until the session is lost or closed. False then.
  bool pause(milliseconds d) {
    std::unique_lock lock(mu);
    return !cv.wait_for(lock, d, [&] { return lost || stopping; });
  }

  // An acquire whose outcome is unknown: cancel it (and whatever it may be
  // granted) in the background, until the cluster answers.
  void abandon(std::string_view name, std::uint64_t req) {
    {
      std::lock_guard lock(mu);
      if (stopping) return;  // close() ends everything the session has
      std::uint64_t& upto = abandoned[std::string(name)];
      upto = std::max(upto, req);
    }
    cv.notify_all();
  }

  // The token a caller was told it holds `name` with (0: none). A cancel then
  // ends a wait only (keep_held), never that hold.
  std::uint64_t told_token(const std::string& name) {
    std::lock_guard lock(mu);
    auto it = held_names.find(name);
    return it == held_names.end() ? 0 : it->second;
  }

  // Cancels request `upto` of `name` (and every earlier one). When a caller
  // holds the lock, with keep_held; if the hold found then is not the one the
  // caller was told of (someone broke that one, and a copy of an abandoned
  // acquire was granted since), once more without: that grant is nobody's.
  LockAnswer cancel(const std::string& name, std::uint64_t upto, const CallOptions& c) {
    const std::uint64_t told = told_token(name);
    LockAnswer a = decode_lock_answer(
        LockOp::kCancel, client.write(options.backend, encode_lock_cancel(id, name, upto, told != 0), c));
    if (told != 0 && a.code == Code::kOk && !a.cancelled && a.token != 0 && a.token != told) {
      a = decode_lock_answer(LockOp::kCancel,
                             client.write(options.backend, encode_lock_cancel(id, name, upto), c));
    }
    return a;
  }

  // One cancel of an abandoned acquire; true when the cluster answered it.
  bool cancel_abandoned(const std::string& name, std::uint64_t upto, milliseconds timeout) {
    CallOptions c = call();
    c.timeout = timeout;
    const LockAnswer a = cancel(name, upto, c);
    if (a.code == Code::kSessionLost) {
      cluster_says_lost(a.message);
      return true;
    }
    if (a.code != Code::kOk) return false;
    std::lock_guard lock(mu);
    auto it = abandoned.find(name);
    if (it != abandoned.end() && it->second <= upto) abandoned.erase(it);
    return true;
  }

  // The keep-alive thread: a keep-alive every interval(), sooner again after
  // a failure; the cancels of abandoned acquires as soon as they come (each
  // is a keep-alive too). Each call is cut short at valid_until: past it the
  // session is lost here, whatever the call would have said.
  void run_keepalive() {
    const milliseconds every = interval();
    milliseconds call_limit = std::max(milliseconds(500), options.ttl / 2);
    if (options.call_timeout.count() > 0) call_limit = std::min(call_limit, options.call_timeout);
    auto next = SteadyClock::now() + every;
    auto cancel_next = SteadyClock::time_point::min();
    std::unique_lock lock(mu);
    while (true) {
      auto wake = std::min(next, valid_until);
      if (!abandoned.empty()) wake = std::min(wake, std::max(cancel_next, SteadyClock::now()));
      cv.wait_until(lock, wake, [&] {
        return lost || stopping || (!abandoned.empty() && SteadyClock::now() >= cancel_next);
      });
      if (lost || stopping) return;
      auto now = SteadyClock::now();
      // Each call ends by valid_until (at least 1 ms: 0 would mean the
      // client's default timeout); with less left, the session is lost.
      const auto left = std::chrono::duration_cast<milliseconds>(valid_until - now);
      if (left < milliseconds(1)) {
        const auto until = valid_until;
        lock.unlock();
        std::this_thread::sleep_until(until);
        check_lost();
        return;
      }
      if (!abandoned.empty() && now >= cancel_next) {
        const auto pending = abandoned;
        const auto until = valid_until;
        lock.unlock();
        const auto sent = SteadyClock::now();
        bool all = true;
        bool any = false;
        for (const auto& [name, upto] : pending) {
          // One deadline for the whole round: valid_until.
          const auto rest = std::chrono::duration_cast<milliseconds>(until - SteadyClock::now());
          if (rest < milliseconds(1)) {
            all = false;
            break;
          }
          const bool answered = cancel_abandoned(name, upto, std::min(call_limit, rest));
          all = all && answered;
          any = any || answered;
        }
        lock.lock();
        if (any && !lost) valid_until = std::max(valid_until, sent + options.ttl);
        cancel_next = all ? SteadyClock::time_point::min() : SteadyClock::now() + milliseconds(100);
        if (any) next = sent + every;
        continue;
      }
      if (now < next) continue;
      lock.unlock();
      CallOptions ka = call();
      ka.timeout = std::min(call_limit, left);
      const auto sent = SteadyClock::now();
      const LockAnswer a = decode_lock_answer(
          LockOp::kKeepalive, client.write(options.backend, encode_lock_keepalive(id), ka));
      if (a.code == Code::kSessionLost) {
        cluster_says_lost(a.message);
        return;
      }
      lock.lock();
      if (a.code == Code::kOk) {
        if (!lost) valid_until = std::max(valid_until, sent + options.ttl);
        next = sent + every;
        continue;
      }
      // No answer (no leader, a partition, a refusal), or a lost result (which
      // may have said the session is gone): try again soon.
      next = SteadyClock::now() + std::min(every, milliseconds(100));
    }
  }

  // One status read; a local answer that would end the wait is confirmed by a
  // linearizable one (a lagging node may not know the session yet).
  LockAnswer poll_status(std::string_view name, bool linearizable) {
    const std::string request = encode_lock_status(id, name);
    LockAnswer a = decode_lock_answer(
        LockOp::kStatus,
        client.read(options.backend, request,
                    call(linearizable ? Consistency::kLinearizable : Consistency::kLocal)));
    const bool conclusive = a.code == Code::kOk || a.code == Code::kSessionLost ||
                            (a.code == Code::kLockBusy && !a.waiting);
    if (!linearizable && conclusive) return poll_status(name, true);
    return a;
  }
};

LockSession::LockSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

LockSession::~LockSession() { close(); }

std::unique_ptr<LockSession> LockSession::open(Client& client, LockSessionOptions options,
                                               Result* result) {
  Result scratch;
  Result& r = result != nullptr ? *result : scratch;
  r = Result{};
  if (options.ttl < kMinTtl || options.ttl > kMaxTtl) {
    r.code = Code::kBadRequest;
    r.message = "the session TTL must be 1 s .. 600 s";
    return nullptr;
  }
  if (options.lock_delay < milliseconds(0) || options.lock_delay > kMaxLockDelay) {
    r.code = Code::kBadRequest;
    r.message = "the lock-delay must be 0 .. 300 s";
    return nullptr;
  }
  if (options.keepalive_interval.count() < 0 || options.call_timeout.count() < 0) {
    r.code = Code::kBadRequest;
    r.message = "keepalive_interval and call_timeout must not be negative";
    return nullptr;
  }
  if (options.backend.empty()) {
    r.code = Code::kBadRequest;
    r.message = "the lock backend's name must not be empty";
    return nullptr;
  }
  auto impl = std::make_unique<Impl>(client, std::move(options));
  const std::string command =
      encode_lock_open(impl->options.ttl.count(), impl->options.lock_delay.count());
  LockAnswer a;
  SteadyClock::time_point sent;
  // An open whose result was lost opened a session nobody knows: it expires
  // by itself. Open another.
  for (int attempt = 0; attempt < 3; ++attempt) {
    sent = SteadyClock::now();
    Result w = client.write(impl->options.backend, command, impl->call());
    a = decode_lock_answer(LockOp::kOpen, w);
    if (a.code != Code::kResultLost) break;
  }
  if (a.code != Code::kOk) {
    r.code = a.code == Code::kSessionLost ? Code::kBackendError : a.code;
    r.message = "cannot open a lock session: " + a.message;
    return nullptr;
  }
  impl->id = a.session;
  impl->valid_until = sent + impl->options.ttl;
  Impl* p = impl.get();
  p->keepalive = std::thread([p] { p->run_keepalive(); });
  return std::unique_ptr<LockSession>(new LockSession(std::move(impl)));
}

std::uint64_t LockSession::id() const { return impl_->id; }

const LockSessionOptions& LockSession::options() const { return impl_->options; }

bool LockSession::lost() const { return impl_->check_lost(); }

std::string LockSession::lost_reason() const {
  impl_->check_lost();
  std::lock_guard lock(impl_->mu);
  return impl_->lost_reason;
}

std::chrono::steady_clock::time_point LockSession::valid_until() const {
  std::lock_guard lock(impl_->mu);
  return impl_->valid_until;
}

namespace {

// One acquire (LockSession::acquire, once it has the name's slot): the
// command, the status polls, and the cancel of whatever did not end in a grant.
LockResult acquire_one(LockSession::Impl& s, std::string_view name,
                       const AcquireOptions& options, SteadyClock::time_point deadline) {
  const bool wait = options.wait.count() != 0;
  const milliseconds poll = std::max(milliseconds(1), options.poll_interval);
  // Every copy of this acquire carries one request number: a cancel with it
  // ends whatever any of them was granted or queued for.
  const std::uint64_t req = s.next_req();
  const std::string command = encode_lock_acquire(s.id, name, options.mode, wait, req);

  // The acquire command; again after an unknown outcome (it is idempotent).
  auto send_acquire = [&]() -> LockAnswer {
    while (true) {
      LockAnswer a =
          decode_lock_answer(LockOp::kAcquire, s.client.write(s.options.backend, command, s.call()));
      if (a.code == Code::kSessionLost) s.cluster_says_lost(a.message);
      if (!retryable(a.code) || SteadyClock::now() >= deadline) return a;
      if (!s.pause(poll)) {
        const LockResult u = s.unusable();  // lost or closed meanwhile
        a.code = u.code;
        a.message = u.message;
        return a;
      }
    }
  };
  // Leaves the queue and gives back a grant that came meanwhile (one cancel
  // covers both); when the cluster does not answer, the keep-alive thread
  // keeps cancelling. `why` is the caller's answer.
  auto give_up = [&](LockResult why) -> LockResult {
    // Held already (an earlier acquire a caller was told of): the cancel ends
    // a wait of this request's, but must not take that hold away.
    for (int attempt = 0; attempt < 3; ++attempt) {
      const LockAnswer c = s.cancel(std::string(name), req, s.call());
      if (c.code == Code::kSessionLost) {
        s.cluster_says_lost(c.message);
        return lock_result(c);
      }
      if (c.code == Code::kOk) return why;
      if (!retryable(c.code)) break;
    }
    s.abandon(name, req);
    why.message += " (leaving the queue got no answer: the session keeps cancelling in the "
                   "background)";
    return why;
  };

  LockAnswer a = send_acquire();
  if (retryable(a.code)) {
    // No answer: it may have been granted or queued, or be applied later.
    // Ask the cluster; whatever it says, a late copy stays possible, so
    // anything but a grant ends with a cancel.
    // A hold or wait counts only if this request (or a newer one) asked for
    // it: an older one's may be on its way out (a cancel or release still to
    // come), and this request's copies may still arrive.
    const LockAnswer st = s.poll_status(name, true);
    if (st.code == Code::kOk && st.req < req) {
      // Held for an older request (one being cancelled or released, or the
      // caller's own hold): ask again with this one, which makes the grant
      // this request's too (or is refused as superseded). Anything but a
      // grant or this request's wait still ends with a cancel: a copy of
      // the unanswered one may yet arrive.
      a = send_acquire();
      if (a.code == Code::kOk || a.code == Code::kSessionLost) return lock_result(a);
      if (!(a.code == Code::kLockBusy && a.waiting && wait)) {
        return give_up(lock_result(a.code == Code::kLockBusy || retryable(a.code)
                                       ? Code::kLockBusy
                                       : a.code,
                                   "not granted: " + a.message));
      }
    } else if (st.code == Code::kOk) {
      return lock_result(st);
    } else if (st.code == Code::kSessionLost) {
      s.cluster_says_lost(st.message);
      return lock_result(st);
    } else if (st.code == Code::kLockBusy && st.waiting && st.req >= req && wait) {
      a = st;  // queued: wait below
    } else {
      return give_up(lock_result(a.code, "the acquire got no answer (" + a.message +
                                             "); not granted"));
    }
  }
  if (a.code == Code::kProtocolError || a.superseded) {
    // Applied, but the answer makes no sense; or refused because a release or
    // cancel of the session fenced it, though an earlier copy may have been
    // granted (a retry after a lost answer): whatever happened, undo it.
    return give_up(lock_result(a));
  }
  if (a.code != Code::kLockBusy || !a.waiting) {
    if (a.code == Code::kLockBusy && wait) {
      // Not queued although asked to wait: the backend would not queue it.
      a.message = "not queued: " + a.message;
    }
    return lock_result(a);
  }

  // Queued: poll until granted, lost, or the wait runs out.
  int polls = 0;
  std::optional<LockResult> failure;
  while (SteadyClock::now() < deadline) {
    const auto left = deadline - SteadyClock::now();
    const milliseconds nap =
        left < poll ? std::chrono::duration_cast<milliseconds>(left) + milliseconds(1) : poll;
    // Lost or closing: nothing keeps the session alive now, so whatever it
    // waits for ends with it (close() closes it; a lost one expires).
    if (!s.pause(nap)) return s.unusable();
    if (SteadyClock::now() >= deadline) break;
    const bool linearizable = ++polls % kLocalPollsPerLinearizable == 0;
    a = s.poll_status(name, linearizable);
    if (a.code == Code::kOk && a.req >= req) return lock_result(a);
    if (a.code == Code::kOk) {
      // Held, but for an older request: ask again with this one (as above).
      a = send_acquire();
      if (a.code == Code::kOk || a.code == Code::kSessionLost) return lock_result(a);
    }
    if (a.code == Code::kSessionLost) {
      s.cluster_says_lost(a.message);
      return lock_result(a);
    }
    if (a.code == Code::kLockBusy && !a.waiting) {
      // Out of the queue without a grant (it should not happen): queue again.
      a = send_acquire();
      if (a.code == Code::kOk || a.code == Code::kSessionLost) return lock_result(a);
    }
    // A refusal will not change by asking again (the backend's error, an
    // answer that cannot be decoded): give up, leaving the queue as below.
    if (a.code == Code::kBackendError || a.code == Code::kBadRequest ||
        a.code == Code::kProtocolError) {
      failure = lock_result(a.code, "polling the lock's status: " + a.message);
      break;
    }
    // kLockBusy waiting, or no answer this time: keep polling.
  }
  // The wait ran out (or a refusal): leave the queue; a grant that came
  // meanwhile is given back, and the caller told the lock was not granted.
  return give_up(failure ? *failure
                         : lock_result(Code::kLockBusy, "not granted within " +
                                                            std::to_string(options.wait.count()) +
                                                            " ms"));
}

}  // namespace

LockResult LockSession::acquire(std::string_view name, const AcquireOptions& options) {
  Impl& s = *impl_;
  if (LockResult u = s.unusable(); !u.ok()) return u;
  const auto start = SteadyClock::now();
  const milliseconds longest = std::chrono::duration_cast<milliseconds>(
      SteadyClock::time_point::max() - start - std::chrono::hours(24));
  const auto deadline = options.wait.count() < 0 || options.wait > longest
                            ? SteadyClock::time_point::max()
                            : start + options.wait;
  const std::string key(name);
  {
    // One acquire of a name at a time in this session.
    std::unique_lock lock(s.mu);
    const bool free = s.cv.wait_until(lock, deadline, [&] {
      return s.lost || s.stopping || !s.acquiring.contains(key);
    });
    if (s.lost || s.stopping) {
      lock.unlock();
      return s.unusable();
    }
    if (!free) {
      return lock_result(Code::kLockBusy, "not granted within " +
                                              std::to_string(options.wait.count()) +
                                              " ms (another acquire of it in this session "
                                              "was in progress)");
    }
    s.acquiring.insert(key);
  }
  // Out of `acquiring` however acquire_one ends (an on_lost that throws too).
  struct Done {
    Impl& s;
    const std::string& key;
    bool held = false;
    std::uint64_t token = 0;
    ~Done() {
      {
        std::lock_guard lock(s.mu);
        s.acquiring.erase(key);
        if (held) s.held_names[key] = token;
      }
      s.cv.notify_all();
    }
  } done{s, key};
  LockResult r = acquire_one(s, name, options, deadline);
  done.held = r.ok();
  done.token = r.token;
  return r;
}

LockResult LockSession::try_acquire(std::string_view name, LockMode mode) {
  AcquireOptions o;
  o.mode = mode;
  o.wait = milliseconds(0);
  return acquire(name, o);
}

LockResult LockSession::release(std::string_view name) {
  Impl& s = *impl_;
  if (LockResult u = s.unusable(); !u.ok()) return u;
  {
    std::lock_guard lock(s.mu);
    s.held_names.erase(std::string(name));
  }
  const std::uint64_t req = s.next_req();
  LockResult r = release_as(s.client, name, s.id, req, s.call(), s.options.backend);
  if (r.code == Code::kSessionLost) s.cluster_says_lost(r.message);
  if (retryable(r.code)) {
    // Unknown: a cancel covering every acquire so far releases it as well.
    s.abandon(name, req);
    r.message += " (the session keeps releasing it in the background)";
  }
  return r;
}

LockResult LockSession::status(std::string_view name) {
  Impl& s = *impl_;
  if (LockResult u = s.unusable(); !u.ok()) return u;
  const LockAnswer a = decode_lock_answer(
      LockOp::kStatus, s.client.read(s.options.backend, encode_lock_status(s.id, name),
                                     s.call(Consistency::kLinearizable)));
  if (a.code == Code::kSessionLost) s.cluster_says_lost(a.message);
  return lock_result(a);
}

Result LockSession::show(std::string_view name, LockInfo* info) {
  return show_lock(impl_->client, name, info, impl_->call(), impl_->options.backend);
}

Result LockSession::list(LockListing* listing) {
  return list_locks(impl_->client, listing, impl_->call(), impl_->options.backend);
}

Result LockSession::check(std::string_view name, std::uint64_t token, bool* current,
                          std::uint64_t* newest) {
  return check_lock_token(impl_->client, name, token, current, newest, impl_->call(),
                          impl_->options.backend);
}

Result LockSession::close() {
  Impl& s = *impl_;
  {
    std::lock_guard lock(s.mu);
    if (s.closed) return s.close_result;
    s.closed = true;
    s.stopping = true;
  }
  s.cv.notify_all();
  if (s.keepalive.joinable()) s.keepalive.join();
  Result r;
  bool gone = false;
  {
    std::lock_guard lock(s.mu);
    gone = s.cluster_said_lost;
  }
  // Lost here only (no keep-alive got through in time): it may live on, so
  // close it (which frees its locks at once) if the cluster answers.
  if (!gone) {
    LockAnswer a;
    for (int attempt = 0; attempt < 3; ++attempt) {
      a = decode_lock_answer(LockOp::kClose,
                             s.client.write(s.options.backend, encode_lock_close(s.id), s.call()));
      if (a.code != Code::kResultLost) break;
    }
    // Lost result: closed. Session unknown/expired: nothing left to release.
    if (a.code != Code::kOk && a.code != Code::kResultLost && a.code != Code::kSessionLost) {
      r.code = a.code;
      r.message = "closing the lock session: " + a.message;
    }
  }
  std::lock_guard lock(s.mu);
  s.close_result = r;
  return r;
}

LockGuard::LockGuard(LockSession& session, std::string name, const AcquireOptions& options)
    : session_(&session), name_(std::move(name)) {
  result_ = session_->acquire(name_, options);
  held_ = result_.ok();
}

LockGuard::LockGuard(Client& client, std::string name, const AcquireOptions& options,
                     LockSessionOptions session_options)
    : name_(std::move(name)) {
  Result r;
  own_ = LockSession::open(client, std::move(session_options), &r);
  if (!own_) {
    result_.code = r.code;
    result_.message = r.message;
    return;
  }
  session_ = own_.get();
  result_ = session_->acquire(name_, options);
  held_ = result_.ok();
}

LockGuard::LockGuard(LockGuard&& other) noexcept
    : own_(std::move(other.own_)),
      session_(std::exchange(other.session_, nullptr)),
      name_(std::move(other.name_)),
      result_(std::move(other.result_)),
      held_(std::exchange(other.held_, false)) {}

LockGuard::~LockGuard() {
  // A session of its own is closed by own_'s destructor: that releases it.
  if (held_ && !own_) release();
}

LockResult LockGuard::release() {
  if (!held_ || session_ == nullptr) return LockResult{};
  held_ = false;
  return session_->release(name_);
}

}  // namespace synod::client
