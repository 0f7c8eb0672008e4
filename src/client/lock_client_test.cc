// LockSession and LockGuard against a running cluster that serves the lock
// backend: SYNOD_TEST_CLUSTER=H:P,... (tests/cluster/test_lock_client.py runs
// it against three real nodes). Without it every test is skipped.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <future>
#include <mutex>
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

TEST(LockClient, BadOptionsAreRefused) {
  CLIENT_OR_SKIP(client);
  LockSessionOptions o;
  o.ttl = milliseconds(10);
  Result r;
  EXPECT_FALSE(LockSession::open(*client, o, &r));
  EXPECT_EQ(r.code, Code::kBadRequest);
  o = {};
  o.backend = "nope";
  EXPECT_FALSE(LockSession::open(*client, o, &r));
  EXPECT_EQ(r.code, Code::kBadRequest);
}

}  // namespace
}  // namespace synod::client
