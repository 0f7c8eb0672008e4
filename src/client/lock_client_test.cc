// LockSession and LockGuard against a running cluster that serves the lock
// backend: SYNOD_TEST_CLUSTER=H:P,... (tests/cluster/test_lock_client.py runs
// it against three real nodes). Without it every test is skipped.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <future>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "synod/client.hpp"

namespace synod::client {
namespace {

using std::chrono::milliseconds;

std::unique_ptr<Client> connect_or_skip() {
  const char* cluster = std::getenv("SYNOD_TEST_CLUSTER");
  if (cluster == nullptr || *cluster == '\0') return nullptr;
  std::string error;
  auto c = Client::connect({cluster}, {}, &error);
  EXPECT_TRUE(c) << error;
  return c;
}

#define CLIENT_OR_SKIP(name)                                          \
  auto name = connect_or_skip();                                      \
  if (!name) GTEST_SKIP() << "SYNOD_TEST_CLUSTER is not set";

// The nodes' pids (SYNOD_TEST_PIDS=HOST:PORT=PID,...), to stop and continue
// them. Stopping the followers leaves a leader that takes requests and
// proposes them but cannot get them chosen: each call times out here, and
// the commands are chosen, in order, once the followers continue.
std::map<std::string, pid_t> node_pids() {
  std::map<std::string, pid_t> pids;
  const char* env = std::getenv("SYNOD_TEST_PIDS");
  if (env == nullptr) return pids;
  std::stringstream in(env);
  std::string word;
  while (std::getline(in, word, ',')) {
    const auto eq = word.find('=');
    if (eq != std::string::npos) pids[word.substr(0, eq)] = std::stol(word.substr(eq + 1));
  }
  return pids;
}

// The followers' pids, once a leader is known (empty when none is in 10 s).
std::vector<pid_t> follower_pids(Client& client, const std::map<std::string, pid_t>& pids) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < end) {
    std::vector<pid_t> followers;
    bool leader = false;
    for (const NodeStatus& n : client.status(milliseconds(1000))) {
      auto it = pids.find(n.address);
      if (!n.reachable || it == pids.end()) continue;
      if (n.role == "leader") {
        leader = true;
      } else {
        followers.push_back(it->second);
      }
    }
    if (leader && followers.size() + 1 == pids.size()) return followers;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return {};
}

// Stops every node for as long as it lives (continues them at the end).
class Freeze {
 public:
  explicit Freeze(std::vector<pid_t> pids) : pids_(std::move(pids)) {
    for (pid_t p : pids_) ::kill(p, SIGSTOP);
  }
  ~Freeze() { thaw(); }
  void thaw() {
    for (pid_t p : pids_) ::kill(p, SIGCONT);
    pids_.clear();
  }

 private:
  std::vector<pid_t> pids_;
};

#define FOLLOWERS_OR_SKIP(client, name)                              \
  const auto name##_all = node_pids();                               \
  if (name##_all.empty()) GTEST_SKIP() << "SYNOD_TEST_PIDS is not set"; \
  const auto name = follower_pids(*client, name##_all);              \
  ASSERT_FALSE(name.empty()) << "no leader";

// Polls f (every 50 ms) until it is true or `limit` passes.
template <typename F>
bool eventually(F f, milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return f();
}

// A long TTL and short calls: a call to a cluster that cannot choose anything
// times out long before the session could expire.
LockSessionOptions impatient() {
  LockSessionOptions o;
  o.ttl = milliseconds(20000);
  o.call_timeout = milliseconds(400);
  return o;
}

std::string unique(const char* base) {
  return std::string(base) + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
}

TEST(LockClient, GuardHoldsUntilItGoes) {
  CLIENT_OR_SKIP(client);
  const std::string name = unique("guard");
  Result r;
  auto other = LockSession::open(*client, {}, &r);
  ASSERT_TRUE(other) << r.message;
  std::uint64_t token = 0;
  {
    LockGuard guard(*client, name);
    ASSERT_TRUE(guard) << guard.result().message;
    token = guard.token();
    EXPECT_GT(token, 0u);
    ASSERT_NE(guard.session(), nullptr);
    LockResult busy = other->try_acquire(name);
    EXPECT_EQ(busy.code, Code::kLockBusy);
    EXPECT_EQ(busy.holder_session, guard.session()->id());
    bool current = false;
    std::uint64_t newest = 0;
    ASSERT_TRUE(other->check(name, token, &current, &newest).ok());
    EXPECT_TRUE(current);
    EXPECT_EQ(newest, token);
    EXPECT_EQ(guard.session()->status(name).token, token);
    LockInfo info;
    ASSERT_TRUE(other->show(name, &info).ok());
    ASSERT_EQ(info.holders.size(), 1u);
    EXPECT_EQ(info.holders[0].token, token);
    // Idempotent: the holder asking again gets the same grant.
    EXPECT_EQ(guard.session()->acquire(name).token, token);
  }
  // The guard's own session closed: free at once, with no lock-delay.
  LockResult next = other->try_acquire(name);
  ASSERT_TRUE(next.ok()) << next.message;
  EXPECT_GT(next.token, token);
  EXPECT_TRUE(other->release(name).ok());
  EXPECT_EQ(other->release(name).code, Code::kNotFound);
}

TEST(LockClient, ThreadsTakeTurnsWithIncreasingTokens) {
  CLIENT_OR_SKIP(client);
  const std::string name = unique("turns");
  constexpr int kThreads = 4;
  constexpr int kRounds = 5;
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};
  std::mutex mu;
  std::uint64_t last = 0;
  int backwards = 0;
  int failures = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      Result r;
      auto session = LockSession::open(*client, {}, &r);
      if (!session) {
        std::lock_guard lock(mu);
        ++failures;
        return;
      }
      for (int i = 0; i < kRounds; ++i) {
        LockGuard guard(*session, name);
        if (!guard) {
          std::lock_guard lock(mu);
          ++failures;
          continue;
        }
        if (inside.fetch_add(1) != 0) ++overlaps;
        {
          std::lock_guard lock(mu);
          if (guard.token() <= last) ++backwards;
          last = guard.token();
        }
        std::this_thread::sleep_for(milliseconds(5));
        inside.fetch_sub(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(backwards, 0);
}

TEST(LockClient, SharedHoldersThenAWriter) {
  CLIENT_OR_SKIP(client);
  const std::string name = unique("shared");
  Result r;
  auto a = LockSession::open(*client, {}, &r);
  auto b = LockSession::open(*client, {}, &r);
  auto w = LockSession::open(*client, {}, &r);
  ASSERT_TRUE(a && b && w) << r.message;
  AcquireOptions shared;
  shared.mode = LockMode::kShared;
  ASSERT_TRUE(a->acquire(name, shared).ok());
  ASSERT_TRUE(b->acquire(name, shared).ok());
  AcquireOptions brief;
  brief.wait = milliseconds(300);
  EXPECT_EQ(w->acquire(name, brief).code, Code::kLockBusy);
  auto writer = std::async(std::launch::async, [&] { return w->acquire(name); });
  std::this_thread::sleep_for(milliseconds(300));
  LockInfo info;
  ASSERT_TRUE(w->show(name, &info).ok());
  ASSERT_EQ(info.waiters.size(), 1u);
  EXPECT_EQ(info.waiters[0].session, w->id());
  EXPECT_TRUE(a->release(name).ok());
  EXPECT_EQ(writer.wait_for(milliseconds(300)), std::future_status::timeout);
  EXPECT_TRUE(b->release(name).ok());
  LockResult got = writer.get();
  ASSERT_TRUE(got.ok()) << got.message;
}

TEST(LockClient, ALostSessionIsReported) {
  CLIENT_OR_SKIP(client);
  std::promise<std::string> lost;
  LockSessionOptions o;
  o.ttl = milliseconds(1000);
  o.keepalive_interval = milliseconds(2500);  // too late on purpose
  o.on_lost = [&](const std::string& reason) { lost.set_value(reason); };
  Result r;
  auto session = LockSession::open(*client, o, &r);
  ASSERT_TRUE(session) << r.message;
  const std::string name = unique("lost");
  ASSERT_TRUE(session->acquire(name).ok());
  EXPECT_FALSE(session->lost());
  auto reason = lost.get_future();
  ASSERT_EQ(reason.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_NE(reason.get().find("expired"), std::string::npos);
  EXPECT_TRUE(session->lost());
  EXPECT_LT(session->valid_until(), std::chrono::steady_clock::now());
  EXPECT_EQ(session->acquire(name).code, Code::kSessionLost);
  EXPECT_TRUE(session->close().ok());  // nothing left to release
}

TEST(LockClient, ASessionIsLostHereWhenItsTtlPassesWithoutAKeepalive) {
  // No answer from the cluster is no news: once valid_until passes, the
  // cluster may have expired the session, so it is lost here, then and not
  // later (not when some call finally fails).
  CLIENT_OR_SKIP(client);
  FOLLOWERS_OR_SKIP(client, pids);
  std::promise<std::string> lost;
  LockSessionOptions o;
  o.ttl = milliseconds(1500);
  o.call_timeout = milliseconds(5000);  // longer than the TTL on purpose
  o.on_lost = [&](const std::string& reason) { lost.set_value(reason); };
  Result r;
  auto session = LockSession::open(*client, o, &r);
  ASSERT_TRUE(session) << r.message;
  const std::string name = unique("frozen");
  ASSERT_TRUE(session->acquire(name).ok());
  auto reason = lost.get_future();
  {
    Freeze freeze(pids);
    const auto until = session->valid_until();
    // (Its calls would take 5 s to fail: the loss must not wait for them.)
    ASSERT_EQ(reason.wait_until(until + milliseconds(500)), std::future_status::ready)
        << "still not lost 500 ms after valid_until";
    EXPECT_GE(std::chrono::steady_clock::now(), until);
    EXPECT_NE(reason.get().find("no keep-alive"), std::string::npos);
    EXPECT_TRUE(session->lost());
    EXPECT_EQ(session->acquire(name).code, Code::kSessionLost);
  }
  // A session lost here only is still closed (its lock freed) once the
  // cluster answers again.
  EXPECT_TRUE(session->close().ok());
  LockInfo info;
  CallOptions lin;
  lin.consistency = Consistency::kLinearizable;
  ASSERT_TRUE(show_lock(*client, name, &info, lin).ok());
  EXPECT_TRUE(info.holders.empty());
}

TEST(LockClient, AnAcquireThatGotNoAnswerLeavesNoHoldBehind) {
  // The leader proposes the acquire, which times out here (its followers are
  // stopped) and is chosen when they continue. The session must not be left holding
  // the lock its caller was told it did not get.
  CLIENT_OR_SKIP(client);
  FOLLOWERS_OR_SKIP(client, pids);
  Result r;
  auto session = LockSession::open(*client, impatient(), &r);
  ASSERT_TRUE(session) << r.message;
  const std::string name = unique("unanswered");
  LockResult got;
  {
    Freeze freeze(pids);
    got = session->try_acquire(name);
  }
  EXPECT_TRUE(got.code == Code::kTimeout || got.code == Code::kUnavailable)
      << code_name(got.code) << ": " << got.message;
  // Granted when the nodes continued, then cancelled by the session.
  LockInfo info;
  EXPECT_TRUE(eventually(
      [&] {
        CallOptions lin;
        lin.consistency = Consistency::kLinearizable;
        return show_lock(*client, name, &info, lin).ok() && info.last_token > 0 &&
               info.holders.empty() && info.waiters.empty();
      },
      milliseconds(10000)))
      << "last token " << info.last_token << ", holders " << info.holders.size();
  EXPECT_EQ(session->status(name).code, Code::kLockBusy);
  auto other = LockSession::open(*client, {}, &r);
  ASSERT_TRUE(other) << r.message;
  EXPECT_TRUE(other->try_acquire(name).ok());
  EXPECT_FALSE(session->lost());
}

TEST(LockClient, AnUnansweredSecondAcquireDoesNotTakeAwayAHeldLock) {
  // The session holds the lock; a second acquire of it (idempotent) gets no
  // answer. Giving that one up must not cancel the hold the first was told of.
  CLIENT_OR_SKIP(client);
  FOLLOWERS_OR_SKIP(client, pids);
  Result r;
  auto session = LockSession::open(*client, impatient(), &r);
  ASSERT_TRUE(session) << r.message;
  const std::string name = unique("held");
  LockGuard guard(*session, name);
  ASSERT_TRUE(guard.ok()) << guard.result().message;
  {
    Freeze freeze(pids);
    const LockResult again = session->try_acquire(name);
    EXPECT_FALSE(again.ok());
  }
  std::this_thread::sleep_for(milliseconds(1500));  // whatever was sent is applied by now
  const LockResult st = session->status(name);
  ASSERT_TRUE(st.ok()) << code_name(st.code) << ": " << st.message;
  EXPECT_EQ(st.token, guard.token());
  EXPECT_TRUE(guard.ok());
}

TEST(LockClient, TwoThreadsOfOneSessionDoNotShareAWaitOneOfThemCancels) {
  // Thread A waits without limit; thread B, same session, waits 100 ms for
  // the same lock. B must not join A's wait and then cancel it: A is granted
  // the lock when its holder lets go, and keeps it.
  CLIENT_OR_SKIP(client);
  Result r;
  auto holder = LockSession::open(*client, {}, &r);
  ASSERT_TRUE(holder) << r.message;
  auto session = LockSession::open(*client, {}, &r);
  ASSERT_TRUE(session) << r.message;
  const std::string name = unique("shared-wait");
  ASSERT_TRUE(holder->acquire(name).ok());
  auto a = std::async(std::launch::async, [&] { return session->acquire(name); });
  std::this_thread::sleep_for(milliseconds(300));  // A is queued
  AcquireOptions brief;
  brief.wait = milliseconds(100);
  const LockResult b = session->acquire(name, brief);
  EXPECT_EQ(b.code, Code::kLockBusy) << b.message;
  ASSERT_TRUE(holder->release(name).ok());
  const LockResult got = a.get();
  ASSERT_TRUE(got.ok()) << got.message;
  std::this_thread::sleep_for(milliseconds(500));
  const LockResult st = session->status(name);
  EXPECT_TRUE(st.ok()) << code_name(st.code) << ": " << st.message;
  EXPECT_EQ(st.token, got.token);
}

TEST(LockClient, AWaitThatRunsOutIsLeftEvenWhenTheSessionThoughtItHeldTheLock) {
  // The session's hold was broken by someone else (release_lock); its next
  // acquire queues and runs out of time. Leaving the queue must still happen
  // (the session believed it held the lock: the cancel keeps holds, not waits).
  CLIENT_OR_SKIP(client);
  Result r;
  auto session = LockSession::open(*client, {}, &r);
  ASSERT_TRUE(session) << r.message;
  auto other = LockSession::open(*client, {}, &r);
  ASSERT_TRUE(other) << r.message;
  const std::string name = unique("broken");
  ASSERT_TRUE(session->acquire(name).ok());
  ASSERT_TRUE(release_lock(*client, name, session->id()).ok());  // broken from outside
  ASSERT_TRUE(other->acquire(name).ok());
  AcquireOptions brief;
  brief.wait = milliseconds(300);
  EXPECT_EQ(session->acquire(name, brief).code, Code::kLockBusy);
  ASSERT_TRUE(other->release(name).ok());
  std::this_thread::sleep_for(milliseconds(300));
  LockInfo info;
  CallOptions lin;
  lin.consistency = Consistency::kLinearizable;
  ASSERT_TRUE(show_lock(*client, name, &info, lin).ok());
  EXPECT_TRUE(info.holders.empty()) << "the session was granted a lock it gave up waiting for";
  EXPECT_TRUE(info.waiters.empty());
}

TEST(LockClient, AReleaseThatGotNoAnswerIsFinishedInTheBackground) {
  CLIENT_OR_SKIP(client);
  FOLLOWERS_OR_SKIP(client, pids);
  Result r;
  auto session = LockSession::open(*client, impatient(), &r);
  ASSERT_TRUE(session) << r.message;
  const std::string name = unique("release");
  ASSERT_TRUE(session->acquire(name).ok());
  LockResult released;
  {
    Freeze freeze(pids);
    released = session->release(name);
  }
  EXPECT_FALSE(released.ok());
  EXPECT_NE(released.message.find("background"), std::string::npos) << released.message;
  auto other = LockSession::open(*client, {}, &r);
  ASSERT_TRUE(other) << r.message;
  AcquireOptions wait;
  wait.wait = milliseconds(10000);
  EXPECT_TRUE(other->acquire(name, wait).ok());
}

TEST(LockClient, BadOptionsAreRefused) {
  CLIENT_OR_SKIP(client);
  LockSessionOptions o;
  o.ttl = milliseconds(10);
  Result r;
  EXPECT_FALSE(LockSession::open(*client, o, &r));
  EXPECT_EQ(r.code, Code::kBadRequest);
  o = {};
  o.lock_delay = milliseconds(300001);
  EXPECT_FALSE(LockSession::open(*client, o, &r));
  EXPECT_EQ(r.code, Code::kBadRequest);
  o = {};
  o.backend = "nope";
  EXPECT_FALSE(LockSession::open(*client, o, &r));
  EXPECT_EQ(r.code, Code::kBadRequest);
}

}  // namespace
}  // namespace synod::client
