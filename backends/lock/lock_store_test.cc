#include "backends/lock/lock_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

namespace synod::lock {
namespace {

using nlohmann::json;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "synod-lock-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

constexpr std::int64_t kT0 = 1'700'000'000'000;  // log time of the first command

std::unique_ptr<LockStore> open_store(const TempDir& dir) {
  std::string error;
  auto s = LockStore::open({.data_dir = dir.path()}, &error);
  EXPECT_NE(s, nullptr) << error;
  return s;
}

json apply_on(LockStore& s, std::uint64_t position, std::int64_t ms, const json& cmd) {
  std::string result, error;
  EXPECT_TRUE(s.apply(synod_apply_context{position, ms, 7}, cmd.dump(), &result, &error)) << error;
  return json::parse(result);
}

json query_on(LockStore& s, const json& req) {
  std::string result, error;
  EXPECT_TRUE(s.query(req.dump(), &result, &error)) << error;
  return json::parse(result);
}

// One store; commands at increasing positions (with gaps, as when other
// backends' commands sit between) and at log times the test chooses.
class LockStoreTest : public ::testing::Test {
 public:
  void SetUp() override { store_ = open_store(dir_); }

  // The command at the next position (2 further on), at log time kT0 + t.
  json run(const json& cmd, std::int64_t t) {
    position_ += 2;
    return apply_on(*store_, position_, kT0 + t, cmd);
  }
  json q(const json& req) { return query_on(*store_, req); }
  std::uint64_t open_session(std::int64_t t, std::int64_t ttl_ms = 10000) {
    json r = run({{"op", "open"}, {"ttl_ms", ttl_ms}, {"lock_delay_ms", delay_}}, t);
    EXPECT_EQ(r["session"], position_) << r;
    return position_;
  }
  json acquire(std::uint64_t s, const std::string& lock, std::int64_t t, bool shared = false,
               bool wait = true) {
    return run({{"op", "acquire"}, {"session", s}, {"lock", lock},
                {"mode", shared ? "shared" : "exclusive"}, {"wait", wait}},
               t);
  }
  json release(std::uint64_t s, const std::string& lock, std::int64_t t) {
    return run({{"op", "release"}, {"session", s}, {"lock", lock}}, t);
  }
  json tick(std::int64_t t) { return run({{"op", "tick"}}, t); }
  json show(const std::string& lock) { return q({{"op", "show"}, {"lock", lock}}); }
  json status(std::uint64_t s, const std::string& lock) {
    return q({{"op", "status"}, {"session", s}, {"lock", lock}});
  }
  static std::vector<std::uint64_t> holders(const json& shown) {
    std::vector<std::uint64_t> out;
    for (const auto& h : shown["holders"]) out.push_back(h["session"]);
    return out;
  }
  static std::vector<std::uint64_t> waiters(const json& shown) {
    std::vector<std::uint64_t> out;
    for (const auto& w : shown["waiters"]) out.push_back(w["session"]);
    return out;
  }

 protected:
  std::int64_t delay_ = 5000;
  TempDir dir_;
  std::unique_ptr<LockStore> store_;
  std::uint64_t position_ = 0;
};

TEST_F(LockStoreTest, SessionsOpenKeepAliveAndExpireByLogTimeOnly) {
  EXPECT_EQ(q({{"op", "idle"}}), (json{{"idle", true}}));  // the leader skips its ticks
  const auto s = open_session(0, 5000);
  EXPECT_EQ(q({{"op", "idle"}}), (json{{"idle", false}}));
  EXPECT_EQ(q({{"op", "list"}})["sessions"][0]["expires_ms"], kT0 + 5000);
  json k = run({{"op", "keepalive"}, {"session", s}}, 3000);
  EXPECT_EQ(k, (json{{"session", s}, {"expires_ms", kT0 + 8000}}));
  // A command stamped with an older clock (another leader's) does not move
  // the log's time backwards.
  tick(100);
  EXPECT_EQ(q({{"op", "list"}})["now_ms"], kT0 + 3000);
  // Exactly at last_seen + ttl the session lives; 1 ms later it is gone.
  tick(8000);
  EXPECT_EQ(q({{"op", "list"}})["sessions"].size(), 1u);
  tick(8001);
  EXPECT_TRUE(q({{"op", "list"}})["sessions"].empty());
  EXPECT_EQ(q({{"op", "idle"}}), (json{{"idle", true}}));
  k = run({{"op", "keepalive"}, {"session", s}}, 8002);
  EXPECT_EQ(k["error"], "session " + std::to_string(s) + " expired");
  EXPECT_EQ(k["expired"], true);
  EXPECT_EQ(status(s, "x")["error"], "session expired");
  EXPECT_EQ(run({{"op", "keepalive"}, {"session", 12345}}, 8003)["error"], "unknown session");
  EXPECT_EQ(status(12345, "x")["error"], "unknown session");
  // Every command of a live session keeps it alive, not only keepalive.
  const auto t = open_session(9000, 1000);
  acquire(t, "a", 9900);
  release(t, "a", 10800);
  tick(11800);
  EXPECT_EQ(q({{"op", "list"}})["sessions"].size(), 1u);
  tick(11801);
  EXPECT_TRUE(q({{"op", "list"}})["sessions"].empty());
}

TEST_F(LockStoreTest, CloseReleasesAtOnceWithoutLockDelay) {
  const auto a = open_session(0);
  const auto b = open_session(0);
  ASSERT_EQ(acquire(a, "m", 10)["granted"], true);
  ASSERT_EQ(acquire(b, "m", 20)["waiting"], true);
  EXPECT_EQ(run({{"op", "close"}, {"session", a}}, 30), (json{{"closed", true}}));
  const auto close_pos = position_;
  json st = status(b, "m");
  EXPECT_EQ(st, (json{{"held", true}, {"token", close_pos}, {"mode", "exclusive"}, {"req", 0}}));
  EXPECT_EQ(show("m")["unavailable_until_ms"], 0);
  // Closing again is fine; using a closed session is not.
  EXPECT_EQ(run({{"op", "close"}, {"session", a}}, 40), (json{{"closed", true}}));
  json r = acquire(a, "m", 50);
  EXPECT_EQ(r["error"], "session " + std::to_string(a) + " closed");
  EXPECT_EQ(status(a, "m")["error"], "session closed");
}

TEST_F(LockStoreTest, ExpiryReleasesWithTheLockDelayThenGrantsWaitersInFifoOrder) {
  const auto a = open_session(0, 2000);
  const auto b = open_session(0, 60000);
  const auto c = open_session(0, 60000);
  json ga = acquire(a, "L", 100);
  ASSERT_EQ(ga["granted"], true);
  const std::uint64_t token_a = ga["token"];
  EXPECT_EQ(token_a, position_);
  EXPECT_EQ(acquire(b, "L", 200), (json{{"granted", false}, {"waiting", true}, {"position", 1}}));
  EXPECT_EQ(acquire(c, "L", 300), (json{{"granted", false}, {"waiting", true}, {"position", 2}}));
  EXPECT_EQ(q({{"op", "check"}, {"lock", "L"}, {"token", token_a}}),
            (json{{"current", true}, {"newest_token", token_a}}));
  // a's last command was at 100: it expires at the first command after 2100.
  tick(2100);
  EXPECT_EQ(holders(show("L")), std::vector<std::uint64_t>{a});
  tick(2101);
  json shown = show("L");
  EXPECT_TRUE(holders(shown).empty());
  EXPECT_EQ(waiters(shown), (std::vector<std::uint64_t>{b, c}));
  EXPECT_EQ(shown["unavailable_until_ms"], kT0 + 2101 + 5000);
  EXPECT_EQ(q({{"op", "check"}, {"lock", "L"}, {"token", token_a}})["current"], false);
  // Nobody gets it during the lock-delay: not the waiters, not a try-lock.
  tick(7100);
  EXPECT_EQ(status(b, "L"), (json{{"held", false}, {"waiting", true}, {"position", 1}, {"req", 0}}));
  const auto d = open_session(7100);
  json t = acquire(d, "L", 7100, false, /*wait=*/false);
  EXPECT_EQ(t["granted"], false);
  EXPECT_EQ(t["waiting"], false);
  EXPECT_EQ(t["unavailable_until_ms"], kT0 + 7101);
  // The first command at the delay's end grants the first waiter.
  tick(7101);
  const auto grant_pos = position_;
  EXPECT_EQ(status(b, "L"), (json{{"held", true}, {"token", grant_pos}, {"mode", "exclusive"}, {"req", 0}}));
  EXPECT_EQ(status(c, "L"), (json{{"held", false}, {"waiting", true}, {"position", 1}, {"req", 0}}));
  EXPECT_GT(grant_pos, token_a);
  EXPECT_EQ(q({{"op", "check"}, {"lock", "L"}, {"token", grant_pos}}),
            (json{{"current", true}, {"newest_token", grant_pos}}));
  // A release hands the lock on at once (no lock-delay), FIFO.
  EXPECT_EQ(release(b, "L", 7200), (json{{"released", true}}));
  EXPECT_EQ(status(c, "L")["token"], position_);
  EXPECT_EQ(show("L")["holders"][0]["since_ms"], kT0 + 7200);
}

TEST_F(LockStoreTest, ExpiryDropsWaitsAndGrantsWhatTheyBlocked) {
  const auto r1 = open_session(0, 60000);
  const auto w = open_session(0, 1000);
  const auto r2 = open_session(0, 60000);
  ASSERT_EQ(acquire(r1, "L", 0, /*shared=*/true)["granted"], true);
  ASSERT_EQ(acquire(w, "L", 0)["waiting"], true);  // exclusive, behind a reader
  ASSERT_EQ(acquire(r2, "L", 0, /*shared=*/true)["position"], 2);  // no overtaking
  tick(1001);  // w expires: its wait is dropped, r2 joins r1 at once
  EXPECT_EQ(holders(show("L")), (std::vector<std::uint64_t>{r1, r2}));
  EXPECT_EQ(status(r2, "L")["token"], position_);
  EXPECT_EQ(show("L")["unavailable_until_ms"], 0);  // w held nothing: no lock-delay
}

TEST_F(LockStoreTest, ExclusiveAndSharedWithoutOvertakingAnEarlierExclusiveWaiter) {
  const auto s1 = open_session(0), s2 = open_session(0), s3 = open_session(0),
             s4 = open_session(0), s5 = open_session(0), s6 = open_session(0);
  json g1 = acquire(s1, "L", 10, true);
  json g2 = acquire(s2, "L", 20, true);
  ASSERT_EQ(g1["granted"], true);
  ASSERT_EQ(g2["granted"], true);
  EXPECT_LT(g1["token"], g2["token"]);
  EXPECT_EQ(acquire(s3, "L", 30)["position"], 1);        // exclusive waits for the readers
  EXPECT_EQ(acquire(s4, "L", 40, true)["position"], 2);  // a reader waits behind it
  json t = acquire(s5, "L", 50, true, /*wait=*/false);  // try-lock: refused, not queued
  EXPECT_EQ(t, (json{{"granted", false}, {"waiting", false}, {"holder_session", s1},
                     {"waiters", 2}}));
  EXPECT_EQ(waiters(show("L")), (std::vector<std::uint64_t>{s3, s4}));
  ASSERT_EQ(acquire(s6, "L", 55, true)["position"], 3);
  release(s1, "L", 60);
  EXPECT_EQ(holders(show("L")), std::vector<std::uint64_t>{s2});
  release(s2, "L", 70);
  EXPECT_EQ(holders(show("L")), std::vector<std::uint64_t>{s3});
  EXPECT_EQ(show("L")["holders"][0]["mode"], "exclusive");
  // The exclusive holder leaves: both readers behind it get the lock in the
  // same command, sharing its token.
  release(s3, "L", 80);
  json shown = show("L");
  EXPECT_EQ(holders(shown), (std::vector<std::uint64_t>{s4, s6}));
  EXPECT_EQ(shown["holders"][0]["token"], position_);
  EXPECT_EQ(shown["holders"][1]["token"], position_);
  EXPECT_EQ(shown["last_token"], position_);
  // A reader is granted at once while only readers hold it and nobody waits.
  EXPECT_EQ(acquire(s5, "L", 90, true)["granted"], true);
}

TEST_F(LockStoreTest, AcquireIsIdempotent) {
  const auto a = open_session(0), b = open_session(0);
  json first = acquire(a, "L", 10);
  ASSERT_EQ(first["granted"], true);
  json again = acquire(a, "L", 20);  // a lost reply, retried as a new command
  EXPECT_EQ(again, first);
  EXPECT_EQ(holders(show("L")), std::vector<std::uint64_t>{a});
  EXPECT_EQ(acquire(a, "L", 25, true)["error"], "already held in exclusive mode");
  EXPECT_EQ(acquire(b, "L", 30)["position"], 1);
  EXPECT_EQ(acquire(b, "L", 40)["position"], 1);              // keeps its place
  EXPECT_EQ(acquire(b, "L", 45, false, false)["position"], 1);  // also as a try
  EXPECT_EQ(acquire(b, "L", 50, true)["error"], "already waiting in exclusive mode");
  EXPECT_EQ(waiters(show("L")), std::vector<std::uint64_t>{b});
}

TEST_F(LockStoreTest, TryLockNeverQueues) {
  const auto a = open_session(0), b = open_session(0);
  json g = acquire(a, "L", 10, false, /*wait=*/false);
  EXPECT_EQ(g, (json{{"granted", true}, {"token", position_}, {"lock", "L"},
                     {"mode", "exclusive"}}));
  EXPECT_EQ(acquire(b, "L", 20, false, false),
            (json{{"granted", false}, {"waiting", false}, {"holder_session", a}}));
  EXPECT_EQ(acquire(b, "L", 25, true, false)["granted"], false);  // shared: no either
  EXPECT_TRUE(waiters(show("L")).empty());
  EXPECT_EQ(status(b, "L"), (json{{"held", false}, {"waiting", false}}));
  release(a, "L", 30);
  EXPECT_EQ(acquire(b, "L", 40, false, false)["token"], position_);
}

TEST_F(LockStoreTest, CancelLeavesTheQueue) {
  const auto r = open_session(0), w = open_session(0), r2 = open_session(0),
             other = open_session(0);
  acquire(r, "L", 10, true);
  acquire(w, "L", 20);
  acquire(r2, "L", 30, true);
  EXPECT_EQ(run({{"op", "cancel"}, {"session", w}, {"lock", "L"}}, 40),
            (json{{"cancelled", true}}));
  // The exclusive waiter that kept the reader out is gone: the reader is in.
  EXPECT_EQ(holders(show("L")), (std::vector<std::uint64_t>{r, r2}));
  EXPECT_EQ(status(r2, "L")["token"], position_);
  // A cancel that comes after the grant says so (and the token, to release).
  const auto granted_at = position_;
  EXPECT_EQ(run({{"op", "cancel"}, {"session", r2}, {"lock", "L"}}, 50),
            (json{{"cancelled", false}, {"held", true}, {"token", granted_at}}));
  EXPECT_EQ(run({{"op", "cancel"}, {"session", other}, {"lock", "L"}}, 60),
            (json{{"cancelled", false}}));
  EXPECT_EQ(run({{"op", "cancel"}, {"session", other}, {"lock", "nope"}}, 60),
            (json{{"cancelled", false}}));
}

TEST_F(LockStoreTest, ReleaseOnlyWhatIsHeld) {
  const auto a = open_session(0), b = open_session(0);
  acquire(a, "L", 10);
  acquire(b, "L", 20);
  EXPECT_EQ(release(b, "L", 30), (json{{"error", "not held"}}));  // waiting is not holding
  EXPECT_EQ(release(a, "other", 30), (json{{"error", "not held"}}));
  EXPECT_EQ(release(a, "L", 40), (json{{"released", true}}));
  EXPECT_EQ(release(a, "L", 50), (json{{"error", "not held"}}));
  EXPECT_EQ(holders(show("L")), std::vector<std::uint64_t>{b});
}

TEST_F(LockStoreTest, CheckTellsTheCurrentTokenFromOldOnes) {
  EXPECT_EQ(q({{"op", "check"}, {"lock", "never"}, {"token", 5}}),
            (json{{"current", false}, {"newest_token", 0}}));
  const auto a = open_session(0), b = open_session(0);
  const std::uint64_t ta = acquire(a, "L", 10)["token"];
  release(a, "L", 20);
  EXPECT_EQ(q({{"op", "check"}, {"lock", "L"}, {"token", ta}}),
            (json{{"current", false}, {"newest_token", ta}}));
  const std::uint64_t tb = acquire(b, "L", 30)["token"];
  EXPECT_GT(tb, ta);
  EXPECT_EQ(q({{"op", "check"}, {"lock", "L"}, {"token", tb}}),
            (json{{"current", true}, {"newest_token", tb}}));
  EXPECT_EQ(q({{"op", "check"}, {"lock", "L"}, {"token", ta}})["current"], false);
}

TEST_F(LockStoreTest, EachSessionKeepsTheLockDelayItOpenedWith) {
  // Without "lock_delay_ms" the default; else the session's own, in the log.
  EXPECT_EQ(run({{"op", "open"}, {"ttl_ms", 1000}}, 0)["lock_delay_ms"], kDefaultLockDelayMs);
  const auto quick = position_;
  const auto none = run({{"op", "open"}, {"ttl_ms", 1000}, {"lock_delay_ms", 0}}, 0)["session"]
                        .get<std::uint64_t>();
  const auto two_s = run({{"op", "open"}, {"ttl_ms", 1000}, {"lock_delay_ms", 2000}}, 0)["session"]
                         .get<std::uint64_t>();
  const auto w = open_session(0, 60000);
  acquire(quick, "Q", 10);
  acquire(none, "N", 10);
  acquire(two_s, "T", 10);
  for (const char* name : {"Q", "N", "T"}) acquire(w, name, 10);
  tick(1011);  // all three holders expire at 1010 (last seen at 10)
  EXPECT_EQ(show("Q")["unavailable_until_ms"], kT0 + 1011 + kDefaultLockDelayMs);
  EXPECT_EQ(show("T")["unavailable_until_ms"], kT0 + 1011 + 2000);
  tick(1012);  // no lock-delay: the next command grants N
  EXPECT_EQ(holders(show("N")), std::vector<std::uint64_t>{w});
  tick(3010);
  EXPECT_TRUE(holders(show("T")).empty());
  tick(3011);
  EXPECT_EQ(holders(show("T")), std::vector<std::uint64_t>{w});
  EXPECT_TRUE(holders(show("Q")).empty());
  tick(6011);
  EXPECT_EQ(holders(show("Q")), std::vector<std::uint64_t>{w});
}

TEST_F(LockStoreTest, ReleaseAndCancelFenceOlderAcquiresOfTheSession) {
  const auto a = open_session(0), b = open_session(0);
  auto acq = [&](std::uint64_t s, std::uint64_t req, std::int64_t t) {
    return run({{"op", "acquire"}, {"session", s}, {"lock", "L"}, {"req", req}}, t);
  };
  // A retry of acquire 1 that arrives after the release it was followed by
  // is refused: no hold nobody knows of.
  EXPECT_EQ(acq(a, 1, 10)["granted"], true);
  EXPECT_EQ(run({{"op", "release"}, {"session", a}, {"lock", "L"}, {"req", 2}}, 20),
            (json{{"released", true}}));
  json late = acq(a, 1, 30);
  EXPECT_EQ(late["superseded"], true) << late;
  EXPECT_TRUE(holders(show("L")).empty());
  // A newer request is served; status names the request the hold is for.
  const std::uint64_t t3 = acq(a, 3, 40)["token"];
  EXPECT_EQ(holders(show("L")), std::vector<std::uint64_t>{a});
  EXPECT_EQ(status(a, "L")["req"], 3);
  // b waits with request 1 and gives up (cancel 1); its acquire arriving
  // again afterwards does not queue it again.
  EXPECT_EQ(acq(b, 1, 50)["waiting"], true);
  EXPECT_EQ(run({{"op", "cancel"}, {"session", b}, {"lock", "L"}, {"req", 1}}, 60),
            (json{{"cancelled", true}}));
  EXPECT_EQ(acq(b, 1, 70)["superseded"], true);
  EXPECT_TRUE(waiters(show("L")).empty());
  // A cancel covering the acquire that was granted releases the grant...
  EXPECT_EQ(run({{"op", "cancel"}, {"session", a}, {"lock", "L"}, {"req", 3}}, 80),
            (json{{"cancelled", true}, {"released", true}, {"token", t3}}));
  EXPECT_TRUE(holders(show("L")).empty());
  // ...but not one a newer acquire asked for again (same grant, same token).
  const std::uint64_t t5 = acq(a, 5, 90)["token"];
  EXPECT_EQ(acq(a, 7, 100)["token"], t5);
  EXPECT_EQ(run({{"op", "cancel"}, {"session", a}, {"lock", "L"}, {"req", 6}}, 110),
            (json{{"cancelled", false}, {"held", true}, {"token", t5}}));
  // Likewise a wait: b's newer acquire keeps its place past a cancel of an older one.
  EXPECT_EQ(acq(b, 4, 120)["waiting"], true);
  EXPECT_EQ(run({{"op", "cancel"}, {"session", b}, {"lock", "L"}, {"req", 3}}, 130),
            (json{{"cancelled", false}, {"waiting", true}}));
  EXPECT_EQ(waiters(show("L")), std::vector<std::uint64_t>{b});
  // Without request numbers: as before (no fence; cancel reports a grant).
  EXPECT_EQ(run({{"op", "cancel"}, {"session", a}, {"lock", "L"}}, 140)["held"], true);
  // The fences are part of the state: they survive a reopen.
  store_.reset();
  store_ = open_store(dir_);
  EXPECT_EQ(acq(b, 1, 150)["superseded"], true);
  EXPECT_EQ(run({{"op", "release"}, {"session", a}, {"lock", "L"}, {"req", 8}}, 160),
            (json{{"released", true}}));
  EXPECT_EQ(acq(a, 7, 170)["superseded"], true);
  EXPECT_EQ(holders(show("L")), std::vector<std::uint64_t>{b});  // b's wait 4 was granted
}

TEST_F(LockStoreTest, ALateReleaseAndAKeepHeldCancelLeaveANewerGrant) {
  const auto a = open_session(0), b = open_session(0);
  auto acq = [&](std::uint64_t s, std::uint64_t req, std::int64_t t) {
    return run({{"op", "acquire"}, {"session", s}, {"lock", "L"}, {"req", req}}, t);
  };
  const std::uint64_t t1 = acq(a, 1, 10)["token"];
  // Release 2 got no answer; acquire 3 found the grant (the caller holds it);
  // release 2 then arrives: it must not free what acquire 3 reported.
  EXPECT_EQ(acq(a, 3, 20)["token"], t1);
  const json late = run({{"op", "release"}, {"session", a}, {"lock", "L"}, {"req", 2}}, 30);
  EXPECT_EQ(late["superseded"], true) << late;
  EXPECT_EQ(holders(show("L")), std::vector<std::uint64_t>{a});
  // keep_held: a cancel covering the newest request ends waits only.
  EXPECT_EQ(run({{"op", "cancel"}, {"session", a}, {"lock", "L"}, {"req", 5}, {"keep_held", true}},
                40),
            (json{{"cancelled", false}, {"held", true}, {"token", t1}}));
  EXPECT_EQ(holders(show("L")), std::vector<std::uint64_t>{a});
  EXPECT_EQ(acq(b, 1, 50)["waiting"], true);
  EXPECT_EQ(run({{"op", "cancel"}, {"session", b}, {"lock", "L"}, {"req", 1}, {"keep_held", true}},
                60),
            (json{{"cancelled", true}}));
  EXPECT_TRUE(waiters(show("L")).empty());
  // An up-to-date release frees it.
  EXPECT_EQ(run({{"op", "release"}, {"session", a}, {"lock", "L"}, {"req", 6}}, 70),
            (json{{"released", true}}));
}

TEST_F(LockStoreTest, FencesAreBoundedPerSessionByAFloor) {
  const auto a = open_session(0, 600000);
  // Releases (of locks not held: still fences) of more names than are kept.
  const std::uint64_t n = kMaxFences + 10;
  for (std::uint64_t i = 1; i <= n; ++i) {
    run({{"op", "release"}, {"session", a}, {"lock", "k" + std::to_string(i)}, {"req", i}}, 1);
  }
  // The 10 oldest went into the floor (10): any lock, up to 10, is fenced.
  EXPECT_EQ(run({{"op", "acquire"}, {"session", a}, {"lock", "never-named"}, {"req", 10}}, 2)
                ["superseded"],
            true);
  EXPECT_EQ(run({{"op", "acquire"}, {"session", a}, {"lock", "k500"}, {"req", 500}}, 2)
                ["superseded"],
            true);
  EXPECT_EQ(run({{"op", "acquire"}, {"session", a}, {"lock", "never-named"}, {"req", n + 1}}, 2)
                ["granted"],
            true);
  // Kept in the database as in memory.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_.path() + "/lock.sqlite").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM fences", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int64(st, 0), static_cast<std::int64_t>(kMaxFences));
  sqlite3_finalize(st);
  sqlite3_close(db);
  store_.reset();
  store_ = open_store(dir_);
  EXPECT_EQ(run({{"op", "acquire"}, {"session", a}, {"lock", "other"}, {"req", 9}}, 3)["superseded"],
            true);
  // The session's end takes its fences with it.
  run({{"op", "close"}, {"session", a}}, 4);
  ASSERT_EQ(sqlite3_open((dir_.path() + "/lock.sqlite").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM fences", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int64(st, 0), 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

// lock_delay_ms = 0: a lock freed and granted again inside one command would
// hand out the same token twice; the second grant waits for the next command.
class NoDelayTest : public LockStoreTest {
 public:
  NoDelayTest() { delay_ = 0; }
};

TEST_F(NoDelayTest, AGrantAndItsReleaseInOneCommandNeverRepeatAToken) {
  const auto a = open_session(0, 1000);
  const auto b = open_session(0, 60000), c = open_session(0, 60000);
  const std::uint64_t ta = acquire(a, "L", 0)["token"];
  acquire(b, "L", 0);
  acquire(c, "L", 0);
  // This command expires a (granting b, no delay) and is b's own release.
  EXPECT_EQ(release(b, "L", 1001), (json{{"released", true}}));
  const auto release_pos = position_;
  json shown = show("L");
  EXPECT_TRUE(holders(shown).empty());
  EXPECT_EQ(waiters(shown), std::vector<std::uint64_t>{c});
  EXPECT_EQ(shown["last_token"], release_pos);  // b's grant
  tick(1002);
  EXPECT_EQ(status(c, "L")["token"], position_);
  EXPECT_GT(position_, release_pos);
  EXPECT_GT(release_pos, ta);
}

TEST_F(LockStoreTest, PositionsAlreadyAppliedAreSkipped) {
  const auto a = open_session(0);
  acquire(a, "L", 10);
  const auto pos = position_;
  const json before = q({{"op", "list"}});
  const json r = apply_on(*store_, pos, kT0 + 20, {{"op", "release"}, {"session", a}, {"lock", "L"}});
  EXPECT_NE(r["error"].get<std::string>().find("already applied"), std::string::npos) << r;
  EXPECT_EQ(apply_on(*store_, 1, kT0 + 999999, {{"op", "tick"}})["error"].is_string(), true);
  EXPECT_EQ(q({{"op", "list"}}), before);  // no release, no clock movement, no expiry
  EXPECT_EQ(store_->last_applied(), pos);
  // In a batch: the old positions are skipped, the new ones applied.
  const synod_apply_context ctxs[] = {{pos - 1, kT0 + 30, 1}, {pos + 1, kT0 + 30, 1},
                                      {pos + 2, kT0 + 40, 1}};
  const std::string cmds[] = {json{{"op", "close"}, {"session", a}}.dump(),
                              json{{"op", "keepalive"}, {"session", a}}.dump(),
                              json{{"op", "tick"}}.dump()};
  const std::string_view views[] = {cmds[0], cmds[1], cmds[2]};
  std::vector<std::string> results;
  std::string error;
  ASSERT_TRUE(store_->apply_batch(3, ctxs, views, &results, &error)) << error;
  EXPECT_NE(results[0].find("already applied"), std::string::npos);
  EXPECT_EQ(json::parse(results[1])["expires_ms"], kT0 + 30 + 10000);
  EXPECT_EQ(results[2], "{}");
  EXPECT_EQ(store_->last_applied(), pos + 2);
  EXPECT_EQ(holders(show("L")), std::vector<std::uint64_t>{a});
}

TEST_F(LockStoreTest, ReopenResumesTheState) {
  const auto a = open_session(0, 1000);
  const auto b = open_session(0, 60000);
  acquire(a, "L", 0);
  acquire(b, "L", 0);
  acquire(b, "M", 0, true);
  tick(1001);  // a expires; L in its lock-delay until 6001, b waiting
  const json before = q({{"op", "list"}});
  const auto applied = store_->last_applied();
  store_.reset();
  store_ = open_store(dir_);
  EXPECT_EQ(store_->last_applied(), applied);
  EXPECT_EQ(q({{"op", "list"}}), before);
  EXPECT_EQ(run({{"op", "keepalive"}, {"session", a}}, 2000)["expired"], true);
  tick(6000);
  EXPECT_EQ(status(b, "L")["waiting"], true);
  tick(6001);
  EXPECT_EQ(status(b, "L")["token"], position_);
  EXPECT_EQ(status(b, "M")["mode"], "shared");
}

TEST(LockStoreValidate, RefusesMalformedCommands) {
  TempDir dir;
  auto s = open_store(dir);
  const std::string big(257, 'x');
  for (const std::string& bad : std::vector<std::string>{
           "", "nope", "[]", "42", R"({})", R"({"op":5})", R"({"op":"lock"})",
           R"({"op":"status","session":1,"lock":"a"})",  // a query
           R"({"op":"open"})", R"({"op":"open","ttl_ms":999})", R"({"op":"open","ttl_ms":600001})",
           R"({"op":"open","ttl_ms":"5000"})", R"({"op":"open","ttl_ms":1e4})",
           R"({"op":"open","ttl_ms":18446744073709551615})",
           R"({"op":"open","ttl_ms":5000,"lock_delay_ms":-1})",
           R"({"op":"open","ttl_ms":5000,"lock_delay_ms":300001})",
           R"({"op":"open","ttl_ms":5000,"lock_delay_ms":"1s"})",
           R"({"op":"open","ttl_ms":5000,"lock_delay_ms":1.5})", R"({"op":"keepalive"})",
           R"({"op":"keepalive","session":0})", R"({"op":"keepalive","session":-3})",
           R"({"op":"keepalive","session":"3"})", R"({"op":"close","session":1.5})",
           R"({"op":"acquire","session":1})", R"({"op":"acquire","session":1,"lock":""})",
           R"({"op":"acquire","session":1,"lock":7})",
           R"({"op":"acquire","session":1,"lock":")" + big + R"("})",
           R"({"op":"acquire","session":1,"lock":"a","mode":"read"})",
           R"({"op":"acquire","session":1,"lock":"a","wait":"yes"})",
           R"({"op":"release","session":1})", R"({"op":"cancel","lock":"a"})",
           R"({"op":"acquire","session":1,"lock":"a","req":-1})",
           R"({"op":"cancel","session":1,"lock":"a","req":"2"})",
           R"({"op":"cancel","session":1,"lock":"a","keep_held":1})",
           R"({"op":"release","session":1,"lock":"a","req":9223372036854775808})",
           "{\"op\":\"acquire\",\"session\":1,\"lock\":\"\xff\"}"}) {
    std::string why;
    EXPECT_FALSE(s->validate(bad, &why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
    // Applied anyway (validate is the node's filter, the log is the truth):
    // an error result, and the position advances.
    const std::uint64_t next = s->last_applied() + 1;
    std::string result, error;
    ASSERT_TRUE(s->apply(synod_apply_context{next, kT0, 0}, bad, &result, &error)) << error;
    EXPECT_TRUE(json::parse(result).contains("error")) << bad << " -> " << result;
    EXPECT_EQ(s->last_applied(), next);
  }
  const std::string name256(256, 'y');
  for (const std::string& good : std::vector<std::string>{
           R"({"op":"tick"})", R"({"op":"open","ttl_ms":1000})", R"({"op":"open","ttl_ms":600000})",
           R"({"op":"open","ttl_ms":1000,"lock_delay_ms":0})",
           R"({"op":"open","ttl_ms":1000,"lock_delay_ms":300000})",
           R"({"op":"keepalive","session":7})", R"({"op":"close","session":7})",
           R"({"op":"acquire","session":7,"lock":"a"})",
           R"({"op":"acquire","session":7,"lock":"a","mode":"shared","wait":false})",
           R"({"op":"acquire","session":7,"lock":"ünïcødé/path"})",
           R"({"op":"acquire","session":7,"lock":")" + name256 + R"("})",
           R"({"op":"cancel","session":7,"lock":"a"})",
           R"({"op":"cancel","session":7,"lock":"a","req":3})",
           R"({"op":"acquire","session":7,"lock":"a","req":9223372036854775807})",
           R"({"op":"release","session":7,"lock":"a","extra":1})"}) {
    std::string why;
    EXPECT_TRUE(s->validate(good, &why)) << good << ": " << why;
  }
  // Queries: a bad one is an error result.
  EXPECT_TRUE(query_on(*s, json{{"op", "acquire"}, {"session", 1}, {"lock", "a"}}).contains("error"));
  EXPECT_TRUE(query_on(*s, json{{"op", "show"}}).contains("error"));
  EXPECT_TRUE(query_on(*s, json{{"op", "check"}, {"lock", "a"}}).contains("error"));
}

TEST(LockStoreOpen, ADatabaseWithoutPerSessionLockDelaysIsUpgraded) {
  // The first format kept no lock-delay per session (the node's option was
  // used): its sessions get the default, and new ones their own.
  TempDir dir;
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir.path() + "/lock.sqlite").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "CREATE TABLE _meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
                           "CREATE TABLE sessions (id INTEGER PRIMARY KEY, ttl_ms INTEGER NOT "
                           "NULL, last_seen_ms INTEGER NOT NULL);"
                           "INSERT INTO _meta VALUES ('format', 1), ('applied', 3), ('now_ms', "
                           "1700000000000);"
                           "INSERT INTO sessions VALUES (3, 10000, 1700000000000);",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  auto s = open_store(dir);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->last_applied(), 3u);
  std::string result, error;
  ASSERT_TRUE(s->apply(synod_apply_context{4, kT0, 0}, R"({"op":"open","ttl_ms":5000,"lock_delay_ms":0})",
                       &result, &error))
      << error;
  EXPECT_EQ(json::parse(result)["lock_delay_ms"], 0);
  const json sessions = query_on(*s, {{"op", "list"}})["sessions"];
  ASSERT_EQ(sessions.size(), 2u) << sessions;
  EXPECT_EQ(sessions[0]["lock_delay_ms"], kDefaultLockDelayMs);
  EXPECT_EQ(sessions[1]["lock_delay_ms"], 0);
}

// ---------------------------------------------------------------- determinism

// A random workload of every command on few sessions and locks, with log time
// moving in jumps so that sessions expire and lock-delays pass.
std::vector<std::pair<synod_apply_context, std::string>> workload(std::uint64_t seed, int n) {
  std::mt19937_64 rng(seed);
  std::vector<std::pair<synod_apply_context, std::string>> out;
  std::vector<std::uint64_t> sessions;
  std::uint64_t position = 0;
  std::uint64_t req = 0;
  std::int64_t t = kT0;
  const char* locks[] = {"a", "b", "c"};
  for (int i = 0; i < n; ++i) {
    position += 1 + rng() % 3;
    // Mostly forward, sometimes a stale clock (a new leader's), sometimes a jump.
    const auto r = rng() % 40;
    t += r == 0 ? -300 : r == 1 ? 4000 : static_cast<std::int64_t>(rng() % 200);
    json cmd;
    const std::uint64_t s =
        sessions.empty() || rng() % 20 == 0
            ? 424242  // never opened
            : sessions[sessions.size() - 1 - rng() % std::min<size_t>(sessions.size(), 5)];
    const std::string lock = locks[rng() % 3];
    switch (rng() % 12) {
      case 0:
        cmd = {{"op", "open"}, {"ttl_ms", 2000 + static_cast<std::int64_t>(rng() % 4) * 2000}};
        cmd["lock_delay_ms"] = static_cast<std::int64_t>(rng() % 4) * 500;
        sessions.push_back(position);
        break;
      case 1:
      case 2:
        cmd = {{"op", "keepalive"}, {"session", s}};
        break;
      case 3:
      case 4:
      case 5:
        cmd = {{"op", "acquire"}, {"session", s}, {"lock", lock},
               {"mode", rng() % 3 == 0 ? "shared" : "exclusive"}, {"wait", rng() % 4 != 0}};
        break;
      case 6:
      case 7:
        cmd = {{"op", "release"}, {"session", s}, {"lock", lock}};
        break;
      case 8:
        cmd = {{"op", "cancel"}, {"session", s}, {"lock", lock}};
        break;
      case 9:
        cmd = rng() % 4 == 0 ? json{{"op", "close"}, {"session", s}} : json{{"op", "tick"}};
        break;
      default:
        cmd = rng() % 5 == 0 ? json{{"op", "bogus"}} : json{{"op", "tick"}};
        break;
    }
    // Request numbers, mostly rising, sometimes an old one (a late retry), sometimes none.
    if (cmd.contains("lock") && rng() % 4 != 0) {
      req += 1;
      cmd["req"] = rng() % 5 == 0 ? req - std::min<std::uint64_t>(req - 1, rng() % 6) : req;
    }
    out.push_back({synod_apply_context{position, t, rng()}, cmd.dump()});
  }
  return out;
}

// Every grant the store made, observed after each command: lock -> (token, mode).
struct GrantLog {
  std::map<std::string, std::vector<std::pair<std::uint64_t, std::string>>> grants;
  std::map<std::string, std::set<std::pair<std::uint64_t, std::uint64_t>>> seen;  // (session, token)
  void observe(LockStore& s) {
    for (const char* name : {"a", "b", "c"}) {
      const json shown = query_on(s, {{"op", "show"}, {"lock", name}});
      for (const auto& h : shown["holders"]) {
        const std::pair<std::uint64_t, std::uint64_t> key{h["session"], h["token"]};
        if (seen[name].insert(key).second) grants[name].push_back({key.second, h["mode"]});
      }
    }
  }
};

TEST(LockStoreDeterminism, TwoStoresGivenTheSameCommandsAgreeOnEveryResult) {
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const auto cmds = workload(seed, 500);
    TempDir d1, d2, d3;
    auto one = open_store(d1);
    auto two = open_store(d2);
    auto three = open_store(d3);
    GrantLog grants;
    std::mt19937_64 rng(seed * 7919);
    std::vector<std::string> results_one, results_two, results_three;
    // Store one: one command at a time, checking the grants after each.
    for (const auto& [ctx, cmd] : cmds) {
      std::string result, error;
      ASSERT_TRUE(one->apply(ctx, cmd, &result, &error)) << error;
      results_one.push_back(result);
      grants.observe(*one);
    }
    // Store two: random batches. Store three: reopened every so often.
    for (size_t i = 0; i < cmds.size();) {
      const size_t n = std::min<size_t>(cmds.size() - i, 1 + rng() % 17);
      std::vector<synod_apply_context> ctxs;
      std::vector<std::string_view> views;
      for (size_t k = i; k < i + n; ++k) {
        ctxs.push_back(cmds[k].first);
        views.push_back(cmds[k].second);
      }
      std::vector<std::string> results;
      std::string error;
      ASSERT_TRUE(two->apply_batch(n, ctxs.data(), views.data(), &results, &error)) << error;
      results_two.insert(results_two.end(), results.begin(), results.end());
      ASSERT_TRUE(three->apply_batch(n, ctxs.data(), views.data(), &results, &error)) << error;
      results_three.insert(results_three.end(), results.begin(), results.end());
      if (rng() % 4 == 0) {
        three.reset();
        three = open_store(d3);
      }
      i += n;
    }
    EXPECT_EQ(results_one, results_two);
    EXPECT_EQ(results_one, results_three);
    const json list_one = query_on(*one, {{"op", "list"}});
    EXPECT_EQ(list_one, query_on(*two, {{"op", "list"}}));
    EXPECT_EQ(list_one, query_on(*three, {{"op", "list"}}));
    // Fencing: per lock, every exclusive grant's token is above every earlier
    // grant's; shared grants never go below an earlier one.
    size_t exclusive_grants = 0;
    for (const auto& [name, gs] : grants.grants) {
      for (size_t k = 0; k < gs.size(); ++k) exclusive_grants += gs[k].second == "exclusive";
      for (size_t k = 1; k < gs.size(); ++k) {
        if (gs[k].second == "exclusive") {
          EXPECT_GT(gs[k].first, gs[k - 1].first) << name << " grant " << k;
        } else {
          EXPECT_GE(gs[k].first, gs[k - 1].first) << name << " grant " << k;
        }
      }
    }
    EXPECT_GT(exclusive_grants, 10u) << "the workload hardly exercises the locks";
  }
}

TEST(LockStoreThreads, QueriesRunBesideApplies) {
  // backend.h: query() and last_applied() may run on other threads while
  // apply() runs (a race here shows under -DSYNOD_SANITIZE=thread).
  TempDir dir;
  auto s = open_store(dir);
  std::atomic<bool> done{false};
  std::atomic<int> answered{0};
  std::thread reader([&] {
    while (!done.load()) {
      for (const json& req : {json{{"op", "list"}}, json{{"op", "show"}, {"lock", "a"}},
                              json{{"op", "status"}, {"session", 1}, {"lock", "a"}},
                              json{{"op", "check"}, {"lock", "a"}, {"token", 3}},
                              json{{"op", "idle"}}}) {
        std::string result, error;
        ASSERT_TRUE(s->query(req.dump(), &result, &error)) << error;
        ASSERT_FALSE(json::parse(result).is_discarded());
        answered.fetch_add(1);
      }
      (void)s->last_applied();
    }
  });
  std::uint64_t position = 0;
  for (const auto& [ctx, cmd] : workload(99, 1000)) {
    std::string result, error;
    ASSERT_TRUE(s->apply(ctx, cmd, &result, &error)) << error;
    position = ctx.slot;
  }
  done.store(true);
  reader.join();
  EXPECT_EQ(s->last_applied(), position);
  EXPECT_GT(answered.load(), 0);
}

}  // namespace
}  // namespace synod::lock
