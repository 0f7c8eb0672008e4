#include "storage/log_store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "codec/codec.h"
#include "common/check.h"
#include "proto/synod.pb.h"

namespace synod::storage {
namespace {

namespace fs = std::filesystem;
using paxos::AcceptedEntry;
using paxos::Ballot;
using paxos::ChosenEntry;
using paxos::PersistBatch;
using paxos::ValuePtr;

constexpr paxos::NodeId kNode = 2;
constexpr std::uint64_t kCluster = 0xC0FFEE;

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "synod-storage-XXXXXX").string();
    SYNOD_CHECK(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// For tests whose child process must work in the parent's directory. They
// run in the "threadsafe" death-test style: the child is a fresh process (no
// inherited RocksDB threads) that re-runs the test body up to the death-test
// statement; the environment variable makes it find the same directory. The
// parent removes it; the child never returns to run the destructor.
class ChildSharedDir {
 public:
  explicit ChildSharedDir(const char* var) : var_(var) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    if (const char* inherited = std::getenv(var)) {
      path_ = inherited;
      return;
    }
    std::string pattern = (fs::temp_directory_path() / "synod-storage-XXXXXX").string();
    SYNOD_CHECK(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
    setenv(var, path_.c_str(), 1);
  }
  ~ChildSharedDir() {
    unsetenv(var_);
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  ChildSharedDir(const ChildSharedDir&) = delete;
  ChildSharedDir& operator=(const ChildSharedDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  const char* var_;
  std::string path_;
};

ValuePtr cmds(std::vector<std::string> c) {
  return std::make_shared<const paxos::Value>(
      paxos::Value{paxos::ValueKind::kCommands, std::move(c)});
}

ValuePtr cmd(paxos::Slot slot, const std::string& tag = "v") {
  return cmds({tag + std::to_string(slot), std::string("\0bin", 4)});
}

std::unique_ptr<LogStore> open_ok(const std::string& dir, paxos::NodeId node = kNode,
                                  std::uint64_t cluster = kCluster,
                                  const OpenOptions& options = {}) {
  std::string error;
  auto store = LogStore::open(dir, node, cluster, &error, options);
  EXPECT_NE(store, nullptr) << error;
  return store;
}

std::string open_error(const std::string& dir, paxos::NodeId node = kNode,
                       std::uint64_t cluster = kCluster) {
  std::string error;
  auto store = LogStore::open(dir, node, cluster, &error);
  EXPECT_EQ(store, nullptr);
  EXPECT_FALSE(error.empty());
  return error;
}

void persist_ok(LogStore& store, const PersistBatch& batch) {
  std::string error;
  ASSERT_TRUE(store.persist(batch, &error)) << error;
}

// Records applied with position 10 * applied (any non-decreasing position will do).
void applied_ok(LogStore& store, paxos::Slot applied, const std::vector<Session>& upserts = {},
                const std::vector<std::uint64_t>& erased = {}) {
  std::string error;
  ASSERT_TRUE(store.record_applied(applied, 10 * applied, upserts, erased, &error)) << error;
}

// Keys of the documented on-disk layout (log_store.h), written independently
// of the implementation so that these tests pin the format down.
std::string be(std::uint64_t v, int bytes) {
  std::string s;
  for (int i = bytes - 1; i >= 0; --i) s.push_back(static_cast<char>(v >> (8 * i)));
  return s;
}
std::string slot_key(char tag, std::uint64_t slot) { return std::string(1, tag) + be(slot, 8); }
std::string meta_key(const std::string& name) { return "m" + name; }

// Writes records straight into the RocksDB database of a closed store.
void raw_put(const std::string& dir, const std::vector<std::pair<std::string, std::string>>& kvs,
             bool create = false) {
  rocksdb::Options o;
  o.create_if_missing = create;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(o, dir, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  for (const auto& [k, v] : kvs) ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), k, v).ok());
  ASSERT_TRUE(db->Close().ok());
}

// The value stored under `key` in a closed store ("" when absent).
std::string raw_get(const std::string& dir, const std::string& key) {
  rocksdb::DB* raw = nullptr;
  SYNOD_CHECK(rocksdb::DB::OpenForReadOnly(rocksdb::Options(), dir, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string value;
  const rocksdb::Status s = db->Get(rocksdb::ReadOptions(), key, &value);
  SYNOD_CHECK(s.ok() || s.IsNotFound());
  return value;
}

// The slots (or client ids) of the records with `tag` in a closed store.
std::vector<std::uint64_t> raw_slots(const std::string& dir, char tag) {
  rocksdb::DB* raw = nullptr;
  SYNOD_CHECK(rocksdb::DB::OpenForReadOnly(rocksdb::Options(), dir, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  std::vector<std::uint64_t> out;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(std::string(1, tag)); it->Valid() && it->key()[0] == tag; it->Next()) {
    std::uint64_t v = 0;
    for (std::size_t i = 1; i < 9; ++i) v = (v << 8) | static_cast<unsigned char>(it->key()[i]);
    out.push_back(v);
  }
  SYNOD_CHECK(it->status().ok());
  return out;
}

void expect_same(const paxos::DurableState& got, const paxos::DurableState& want) {
  EXPECT_EQ(got.promised, want.promised);
  EXPECT_EQ(got.applied, want.applied);
  ASSERT_EQ(got.accepted.size(), want.accepted.size());
  for (std::size_t i = 0; i < want.accepted.size(); ++i) {
    EXPECT_EQ(got.accepted[i].slot, want.accepted[i].slot);
    EXPECT_EQ(got.accepted[i].ballot, want.accepted[i].ballot);
    EXPECT_TRUE(paxos::same_value(got.accepted[i].value, want.accepted[i].value))
        << "accepted slot " << want.accepted[i].slot;
  }
  ASSERT_EQ(got.chosen.size(), want.chosen.size());
  for (std::size_t i = 0; i < want.chosen.size(); ++i) {
    EXPECT_EQ(got.chosen[i].slot, want.chosen[i].slot);
    EXPECT_TRUE(paxos::same_value(got.chosen[i].value, want.chosen[i].value))
        << "chosen slot " << want.chosen[i].slot;
  }
}

// ------------------------------------------------------------ basic contract

TEST(LogStore, NewStoreIsEmpty) {
  TempDir dir;
  auto store = open_ok(dir.path() + "/nested/data");  // creates missing directories
  ASSERT_NE(store, nullptr);
  const paxos::DurableState s = store->load();
  EXPECT_TRUE(s.promised.is_null());
  EXPECT_TRUE(s.accepted.empty());
  EXPECT_TRUE(s.chosen.empty());
  EXPECT_EQ(s.applied, 0u);
  EXPECT_EQ(store->applied(), 0u);
  EXPECT_EQ(store->applied_position(), 0u);
  EXPECT_EQ(store->first_slot(), 1u);
  EXPECT_EQ(store->chosen(0), nullptr);
  EXPECT_EQ(store->chosen(1), nullptr);
  EXPECT_TRUE(store->load_sessions().empty());
}

TEST(LogStore, RoundTripPersistReopenLoad) {
  TempDir dir;
  paxos::DurableState want;
  want.promised = Ballot{3, 1};
  want.accepted = {{1, Ballot{2, 1}, cmd(1)},
                   {2, Ballot{3, 1}, paxos::noop_value()},
                   {7, Ballot{3, 1}, cmds({})}};
  want.chosen = {{1, cmd(1)}, {2, paxos::noop_value()}, {9, cmd(9)}};
  {
    auto store = open_ok(dir.path());
    PersistBatch a;
    a.promised = Ballot{2, 1};
    a.accepted = {want.accepted[0]};
    persist_ok(*store, a);
    PersistBatch b;
    b.promised = want.promised;
    b.accepted = {want.accepted[2], want.accepted[1]};  // any order
    b.chosen = {want.chosen[2], want.chosen[0], want.chosen[1]};
    persist_ok(*store, b);
    expect_same(store->load(), want);
  }
  auto store = open_ok(dir.path());
  expect_same(store->load(), want);
}

TEST(LogStore, BatchIsOneAtomicWrite) {
  TempDir dir;
  auto store = open_ok(dir.path());
  PersistBatch batch;
  batch.promised = Ballot{5, 2};
  batch.accepted = {{4, Ballot{5, 2}, cmd(4)}};
  batch.chosen = {{3, cmd(3)}};
  const Stats before = store->stats();
  persist_ok(*store, batch);
  const Stats after = store->stats();
  EXPECT_EQ(after.syncs - before.syncs, 1u);
  EXPECT_EQ(after.batches - before.batches, 1u);
  EXPECT_EQ(after.entries - before.entries, 3u);
  store.reset();
  store = open_ok(dir.path());
  const paxos::DurableState s = store->load();
  EXPECT_EQ(s.promised, (Ballot{5, 2}));
  ASSERT_EQ(s.accepted.size(), 1u);
  ASSERT_EQ(s.chosen.size(), 1u);
}

TEST(LogStore, PromisedOverwrites) {
  TempDir dir;
  {
    auto store = open_ok(dir.path());
    for (std::uint64_t round : {1, 4, 4, 9}) {
      PersistBatch b;
      b.promised = Ballot{round, 3};
      persist_ok(*store, b);
    }
  }
  auto store = open_ok(dir.path());
  EXPECT_EQ(store->load().promised, (Ballot{9, 3}));
}

void lower_the_promise(const std::string& dir) {
  auto store = open_ok(dir);
  PersistBatch b;
  b.promised = Ballot{5, 1};
  persist_ok(*store, b);
  b.promised = Ballot{4, 3};
  std::string error;
  store->persist(b, &error);
}

TEST(LogStoreDeathTest, PromisedNeverGoesDown) {
  ChildSharedDir dir("SYNOD_STORAGE_DEATH_DIR");
  EXPECT_DEATH(lower_the_promise(dir.path()), "promised ballot must never go down");
}

TEST(LogStore, AcceptedOverwritesPerSlot) {
  TempDir dir;
  {
    auto store = open_ok(dir.path());
    PersistBatch a;
    a.accepted = {{5, Ballot{1, 1}, cmd(5, "old")}, {6, Ballot{1, 1}, cmd(6)}};
    persist_ok(*store, a);
    PersistBatch b;
    b.accepted = {{5, Ballot{2, 3}, cmd(5, "new")}};
    persist_ok(*store, b);
  }
  auto store = open_ok(dir.path());
  const paxos::DurableState s = store->load();
  ASSERT_EQ(s.accepted.size(), 2u);
  EXPECT_EQ(s.accepted[0].slot, 5u);
  EXPECT_EQ(s.accepted[0].ballot, (Ballot{2, 3}));
  EXPECT_TRUE(paxos::same_value(s.accepted[0].value, cmd(5, "new")));
  EXPECT_EQ(s.accepted[1].slot, 6u);
}

TEST(LogStore, ChosenReadableThroughChosenLog) {
  TempDir dir;
  auto store = open_ok(dir.path());
  PersistBatch b;
  for (paxos::Slot s = 1; s <= 5; ++s) b.chosen.push_back({s, cmd(s)});
  b.chosen.push_back({300, paxos::noop_value()});  // a slot beyond a hole (1 byte after 0xff)
  persist_ok(*store, b);
  const paxos::ChosenLog& log = *store;
  EXPECT_EQ(log.first_slot(), 1u);
  for (paxos::Slot s = 1; s <= 5; ++s) {
    EXPECT_TRUE(paxos::same_value(log.chosen(s), cmd(s))) << s;
  }
  EXPECT_EQ(log.chosen(6), nullptr);
  EXPECT_EQ(log.chosen(299), nullptr);
  EXPECT_TRUE(paxos::same_value(log.chosen(300), paxos::noop_value()));
  EXPECT_EQ(log.chosen(0), nullptr);
  // Slot order is key order: 300 (0x012c) sorts after 5 although its low byte is smaller.
  const paxos::DurableState st = store->load();
  ASSERT_EQ(st.chosen.size(), 6u);
  EXPECT_EQ(st.chosen.back().slot, 300u);
}

TEST(LogStore, RecordAppliedAndSessionsRoundTrip) {
  TempDir dir;
  const Session a{11, 3, std::string("ok\0x", 4), 1'700'000'000'000};
  const Session b{12, 1, "", -5};
  const Session c{1ull << 60, 9, "r", 0};
  const Session a2{11, 4, "later", 1'700'000'000'500};
  {
    auto store = open_ok(dir.path());
    applied_ok(*store, 3, {a, b});
    applied_ok(*store, 3, {c});              // same point, session changes only
    applied_ok(*store, 5, {a2}, {12, 999});  // 999: erasing an unknown client is fine
    EXPECT_EQ(store->applied(), 5u);
    EXPECT_EQ(store->applied_position(), 50u);
    EXPECT_EQ(store->stats().applied_writes, 3u);
  }
  auto store = open_ok(dir.path());
  EXPECT_EQ(store->applied(), 5u);
  EXPECT_EQ(store->applied_position(), 50u);
  EXPECT_EQ(store->load().applied, 5u);
  EXPECT_EQ(store->load_sessions(), (std::vector<Session>{a2, c}));
}

TEST(LogStore, SessionResultLostRoundTrips) {
  TempDir dir;
  const Session lost{21, 7, "", 1'700'000'000'000, /*result_lost=*/true};
  const Session kept{22, 3, std::string("\x01kept", 5), 1'700'000'000'001, false};
  const Session lost_then_kept{23, 1, "", 5, true};
  const Session later{23, 2, "fresh", 6, false};
  {
    auto store = open_ok(dir.path());
    applied_ok(*store, 1, {lost, kept, lost_then_kept});
    applied_ok(*store, 2, {later});  // a later command of client 23 clears the flag
    EXPECT_EQ(store->load_sessions(), (std::vector<Session>{lost, kept, later}));
  }
  // The documented layout: u64 sequence, i64 last_ms, u8 flags, the result.
  EXPECT_EQ(raw_get(dir.path(), slot_key('s', 21)),
            be(7, 8) + be(1'700'000'000'000, 8) + std::string(1, '\x01'));
  EXPECT_EQ(raw_get(dir.path(), slot_key('s', 22)),
            be(3, 8) + be(1'700'000'000'001, 8) + std::string(1, '\0') + kept.result);
  EXPECT_EQ(raw_get(dir.path(), meta_key("format")), be(kFormatVersion, 4));
  auto store = open_ok(dir.path());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->load_sessions(), (std::vector<Session>{lost, kept, later}));
}

TEST(LogStore, FormatVersion1SessionsLoadWithResultKeptAndAreUpgraded) {
  TempDir dir;
  {
    auto store = open_ok(dir.path());
    ASSERT_NE(store, nullptr);
    applied_ok(*store, 4);
  }
  // A store as a version-1 build left it: session values without flags. The
  // results start with bytes a flags byte could have (0x00, 0x01) or are
  // empty: version 1 has no flags, so they are all results, all kept.
  const std::string r5 = std::string(1, '\x01') + "abc";
  raw_put(dir.path(), {{meta_key("format"), be(1, 4)},
                       {slot_key('s', 5), be(9, 8) + be(1'700'000'000'000, 8) + r5},
                       {slot_key('s', 6), be(2, 8) + be(77, 8)},
                       {slot_key('s', 7), be(3, 8) + be(78, 8) + std::string(1, '\0')}});
  const std::vector<Session> want{Session{5, 9, r5, 1'700'000'000'000, false},
                                  Session{6, 2, "", 77, false},
                                  Session{7, 3, std::string(1, '\0'), 78, false}};
  {
    auto store = open_ok(dir.path());
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->applied(), 4u);
    EXPECT_EQ(store->load_sessions(), want);
    EXPECT_EQ(store->stats().syncs, 1u);  // the upgrade: one synced write
    // New sessions next to upgraded ones.
    applied_ok(*store, 5, {Session{8, 1, "", 79, true}});
  }
  // Upgraded in place: version 2, every session rewritten with flags 0.
  EXPECT_EQ(raw_get(dir.path(), meta_key("format")), be(2, 4));
  EXPECT_EQ(raw_get(dir.path(), slot_key('s', 5)),
            be(9, 8) + be(1'700'000'000'000, 8) + std::string(1, '\0') + r5);
  EXPECT_EQ(raw_get(dir.path(), slot_key('s', 6)), be(2, 8) + be(77, 8) + std::string(1, '\0'));
  auto store = open_ok(dir.path());
  ASSERT_NE(store, nullptr);
  std::vector<Session> all = want;
  all.push_back(Session{8, 1, "", 79, true});
  EXPECT_EQ(store->load_sessions(), all);
  EXPECT_EQ(store->stats().syncs, 0u);  // nothing left to upgrade
}

TEST(LogStore, LoadReturnsOnlySlotsAboveApplied) {
  TempDir dir;
  auto store = open_ok(dir.path());
  PersistBatch b;
  for (paxos::Slot s = 1; s <= 6; ++s) {
    b.accepted.push_back({s, Ballot{1, 1}, cmd(s)});
    b.chosen.push_back({s, cmd(s)});
  }
  persist_ok(*store, b);
  applied_ok(*store, 4);
  paxos::DurableState st = store->load();
  EXPECT_EQ(st.applied, 4u);
  ASSERT_EQ(st.chosen.size(), 2u);
  EXPECT_EQ(st.chosen[0].slot, 5u);
  ASSERT_EQ(st.accepted.size(), 2u);
  EXPECT_EQ(st.accepted[0].slot, 5u);
}

TEST(LogStore, RecordAppliedDropsAcceptedEntriesAtOrBelowApplied) {
  TempDir dir;
  {
    auto store = open_ok(dir.path());
    PersistBatch b;
    for (paxos::Slot s = 1; s <= 6; ++s) b.accepted.push_back({s, Ballot{1, 1}, cmd(s)});
    persist_ok(*store, b);
    applied_ok(*store, 4);
  }
  // Dropped on disk, not only filtered out by load().
  EXPECT_EQ(raw_slots(dir.path(), 'a'), (std::vector<std::uint64_t>{5, 6}));
  {
    // Also after a restart: the in-memory index of accepted slots is rebuilt.
    auto store = open_ok(dir.path());
    applied_ok(*store, 6);
  }
  EXPECT_TRUE(raw_slots(dir.path(), 'a').empty());
}

// Records applied slot 5 (position 50), then `slot` at `position`.
void record_applied_after_5(const std::string& dir, paxos::Slot slot, std::uint64_t position) {
  auto store = open_ok(dir);
  applied_ok(*store, 5);
  std::string error;
  store->record_applied(slot, position, {}, {}, &error);
}

TEST(LogStoreDeathTest, AppliedNeverGoesBackwards) {
  ChildSharedDir dir("SYNOD_STORAGE_DEATH_DIR");
  EXPECT_DEATH(record_applied_after_5(dir.path(), 4, 60), "applied point must not go backwards");
}

TEST(LogStoreDeathTest, AppliedPositionNeverGoesBackwards) {
  ChildSharedDir dir("SYNOD_STORAGE_DEATH_DIR");
  EXPECT_DEATH(record_applied_after_5(dir.path(), 6, 49), "applied position must not go backwards");
}

TEST(LogStore, CompactionDropsChosenValuesBelowFirst) {
  TempDir dir;
  {
    auto store = open_ok(dir.path());
    PersistBatch b;
    for (paxos::Slot s = 1; s <= 10; ++s) {
      b.chosen.push_back({s, cmd(s)});
      if (s >= 7) b.accepted.push_back({s, Ballot{1, 1}, cmd(s)});
    }
    persist_ok(*store, b);
    applied_ok(*store, 6);
    std::string error;
    ASSERT_TRUE(store->compact(5, &error)) << error;
    EXPECT_EQ(store->first_slot(), 5u);
    EXPECT_EQ(store->chosen(4), nullptr);
    EXPECT_EQ(store->chosen(1), nullptr);
    EXPECT_TRUE(paxos::same_value(store->chosen(5), cmd(5)));
    // Going back is a no-op; so is a value learned below the first slot.
    ASSERT_TRUE(store->compact(3, &error)) << error;
    EXPECT_EQ(store->first_slot(), 5u);
    PersistBatch late;
    late.chosen = {{2, cmd(2)}};
    late.accepted = {{3, Ballot{1, 1}, cmd(3)}};
    const Stats before = store->stats();
    persist_ok(*store, late);
    EXPECT_EQ(store->stats().syncs, before.syncs);  // nothing to write
    EXPECT_EQ(store->chosen(2), nullptr);
    // Up to applied + 1 is allowed.
    ASSERT_TRUE(store->compact(7, &error)) << error;
    EXPECT_EQ(store->chosen(6), nullptr);
  }
  auto store = open_ok(dir.path());
  EXPECT_EQ(store->first_slot(), 7u);
  EXPECT_EQ(store->chosen(6), nullptr);
  EXPECT_TRUE(paxos::same_value(store->chosen(7), cmd(7)));
  const paxos::DurableState st = store->load();
  ASSERT_EQ(st.chosen.size(), 4u);  // 7..10
  EXPECT_EQ(st.chosen.front().slot, 7u);
  EXPECT_EQ(st.accepted.size(), 4u);  // 7..10
}

void compact_beyond_applied(const std::string& dir) {
  auto store = open_ok(dir);
  applied_ok(*store, 3);
  std::string error;
  store->compact(5, &error);
}

TEST(LogStoreDeathTest, CompactionBeyondAppliedIsABug) {
  ChildSharedDir dir("SYNOD_STORAGE_DEATH_DIR");
  EXPECT_DEATH(compact_beyond_applied(dir.path()), "not applied yet");
}

// A batch of many entries is one WriteBatch, one fsync: counted by the store
// and, independently, by a file system that counts syncs of the WAL.
class CountingFs : public rocksdb::FileSystemWrapper {
 public:
  explicit CountingFs(const std::shared_ptr<rocksdb::FileSystem>& target)
      : FileSystemWrapper(target) {}
  const char* Name() const override { return "CountingFs"; }

  std::atomic<int> wal_syncs{0};
  std::atomic<bool> fail_wal_appends{false};  // as when the disk is full
  std::atomic<bool> fail_wal_syncs{false};    // as when the device reports an I/O error

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->NewWritableFile(name, options, result, dbg);
    if (s.ok() && name.ends_with(".log"))
      *result = std::make_unique<WalFile>(std::move(*result), this);
    return s;
  }

 private:
  class WalFile : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    WalFile(std::unique_ptr<rocksdb::FSWritableFile>&& t, CountingFs* fs)
        : FSWritableFileOwnerWrapper(std::move(t)), fs_(fs) {}
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->fail_wal_appends) return rocksdb::IOStatus::NoSpace("injected: disk full");
      return target()->Append(data, options, dbg);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             const rocksdb::DataVerificationInfo& info,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->fail_wal_appends) return rocksdb::IOStatus::NoSpace("injected: disk full");
      return target()->Append(data, options, info, dbg);
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
      ++fs_->wal_syncs;
      if (fs_->fail_wal_syncs) return rocksdb::IOStatus::IOError("injected: sync failed");
      return target()->Sync(options, dbg);
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                            rocksdb::IODebugContext* dbg) override {
      ++fs_->wal_syncs;
      if (fs_->fail_wal_syncs) return rocksdb::IOStatus::IOError("injected: sync failed");
      return target()->Fsync(options, dbg);
    }

   private:
    CountingFs* fs_;
  };
};

struct CountingEnv {
  std::shared_ptr<CountingFs> fs = std::make_shared<CountingFs>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
};

TEST(LogStore, ManyEntriesOneSync) {
  TempDir dir;
  CountingEnv counting;
  auto store = open_ok(dir.path(), kNode, kCluster, OpenOptions{counting.env.get()});
  ASSERT_NE(store, nullptr);
  PersistBatch batch;
  batch.promised = Ballot{2, kNode};
  std::size_t value_bytes = 0;
  for (paxos::Slot s = 1; s <= 200; ++s) {
    batch.accepted.push_back({s, Ballot{2, kNode}, cmd(s)});
    batch.chosen.push_back({s, cmd(s)});
    value_bytes += 2 * cmd(s)->byte_size();
  }
  const Stats before = store->stats();
  const int syncs_before = counting.fs->wal_syncs;
  persist_ok(*store, batch);
  const Stats after = store->stats();
  EXPECT_EQ(after.syncs - before.syncs, 1u);
  EXPECT_EQ(after.batches - before.batches, 1u);
  EXPECT_EQ(after.entries - before.entries, 401u);
  EXPECT_GT(after.bytes_synced - before.bytes_synced, value_bytes);
  EXPECT_EQ(counting.fs->wal_syncs - syncs_before, 1);

  // record_applied is not synced; an empty batch writes nothing.
  applied_ok(*store, 100);
  persist_ok(*store, PersistBatch{});
  EXPECT_EQ(store->stats().syncs, after.syncs);
  EXPECT_EQ(counting.fs->wal_syncs - syncs_before, 1);
}

// persist() until it succeeds (RocksDB may still be recovering in the
// background from the earlier error: Busy), for at most a few seconds.
bool persist_eventually(LogStore& store, const PersistBatch& batch, std::string* error) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!store.persist(batch, error)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// The WAL append fails (disk full): nothing of the batch is visible, then or
// after a restart, and the store writes again once the disk has room.
TEST(LogStore, FailedPersistLeavesNothingVisible) {
  TempDir dir;
  CountingEnv failing;
  const paxos::ValuePtr kept = cmd(1);
  {
    auto store = open_ok(dir.path(), kNode, kCluster, OpenOptions{failing.env.get()});
    ASSERT_NE(store, nullptr);
    PersistBatch first;
    first.promised = Ballot{1, kNode};
    first.chosen = {{1, kept}};
    persist_ok(*store, first);

    failing.fs->fail_wal_appends = true;
    PersistBatch second;
    second.promised = Ballot{2, kNode};
    second.accepted = {{2, Ballot{2, kNode}, cmd(2)}};
    second.chosen = {{3, cmd(3)}};
    std::string error;
    EXPECT_FALSE(store->persist(second, &error));
    EXPECT_NE(error.find("injected: disk full"), std::string::npos) << error;
    EXPECT_EQ(store->chosen(3), nullptr);
    EXPECT_EQ(store->load().promised, (Ballot{1, kNode}));
    EXPECT_TRUE(store->load().accepted.empty());
    EXPECT_EQ(store->stats().batches, 1u);
    EXPECT_FALSE(store->persist(second, &error));  // still full

    failing.fs->fail_wal_appends = false;
    PersistBatch third;
    third.promised = Ballot{3, kNode};
    third.chosen = {{4, cmd(4)}};
    ASSERT_TRUE(persist_eventually(*store, third, &error)) << error;
    EXPECT_TRUE(paxos::same_value(store->chosen(4), cmd(4)));
    EXPECT_EQ(store->chosen(3), nullptr);
  }
  auto store = open_ok(dir.path());
  const paxos::DurableState st = store->load();
  EXPECT_EQ(st.promised, (Ballot{3, kNode}));
  EXPECT_TRUE(st.accepted.empty());  // nothing of the failed batch
  ASSERT_EQ(st.chosen.size(), 2u);
  EXPECT_TRUE(paxos::same_value(st.chosen[0].value, kept));
  EXPECT_EQ(st.chosen[1].slot, 4u);
}

// The WAL append succeeds but its fsync fails. RocksDB treats that as fatal
// (after a failed fsync the page cache cannot be trusted): the store refuses
// every later write, and after a restart the batch is there entirely or not
// at all.
TEST(LogStore, FailedSyncStopsWrites) {
  TempDir dir;
  CountingEnv failing;
  {
    auto store = open_ok(dir.path(), kNode, kCluster, OpenOptions{failing.env.get()});
    ASSERT_NE(store, nullptr);
    failing.fs->fail_wal_syncs = true;
    PersistBatch lost;
    lost.promised = Ballot{2, kNode};
    lost.chosen = {{1, cmd(1)}};
    std::string error;
    EXPECT_FALSE(store->persist(lost, &error));
    EXPECT_NE(error.find("injected: sync failed"), std::string::npos) << error;
    EXPECT_EQ(store->chosen(1), nullptr);
    EXPECT_TRUE(store->load().promised.is_null());

    failing.fs->fail_wal_syncs = false;
    PersistBatch next;
    next.chosen = {{2, cmd(2)}};
    EXPECT_FALSE(store->persist(next, &error));
    EXPECT_NE(error.find("restart the node"), std::string::npos) << error;
    EXPECT_FALSE(store->record_applied(1, 1, {}, {}, &error));
  }
  auto store = open_ok(dir.path());
  const paxos::DurableState st = store->load();
  EXPECT_EQ(st.promised.is_null(), store->chosen(1) == nullptr);  // all or nothing
  EXPECT_EQ(store->chosen(2), nullptr);
}

// ------------------------------------------------------------ crash

// The writer runs in a child process that exits without closing the store
// (no memtable flush, no clean shutdown), like a kill -9.
void write_then_crash(const std::string& dir) {
  std::string error;
  auto store = LogStore::open(dir, kNode, kCluster, &error);
  if (!store) std::_Exit(2);
  PersistBatch b;
  b.promised = Ballot{7, kNode};
  b.accepted = {{1, Ballot{7, kNode}, cmd(1)}, {2, Ballot{7, kNode}, cmd(2)}};
  b.chosen = {{1, cmd(1)}};
  if (!store->persist(b, &error)) std::_Exit(3);
  PersistBatch c;
  c.chosen = {{2, cmd(2)}};
  if (!store->persist(c, &error)) std::_Exit(4);
  if (!store->record_applied(1, 2, {Session{5, 1, "r", 1}}, {}, &error)) std::_Exit(5);
  (void)store.release();  // never closed
  std::_Exit(0);
}

TEST(LogStoreCrashTest, ReopenAfterCrashKeepsSyncedData) {
  ChildSharedDir dir("SYNOD_STORAGE_CRASH_DIR");
  EXPECT_EXIT(write_then_crash(dir.path()), ::testing::ExitedWithCode(0), "");

  auto store = open_ok(dir.path());
  ASSERT_NE(store, nullptr);
  const paxos::DurableState st = store->load();
  EXPECT_EQ(st.promised, (Ballot{7, kNode}));
  // applied = 1 was not synced, but a process crash (unlike a power loss)
  // keeps the page cache, so it survives.
  EXPECT_EQ(st.applied, 1u);
  EXPECT_EQ(store->applied_position(), 2u);
  ASSERT_EQ(st.accepted.size(), 1u);
  EXPECT_EQ(st.accepted[0].slot, 2u);
  ASSERT_EQ(st.chosen.size(), 1u);
  EXPECT_TRUE(paxos::same_value(st.chosen[0].value, cmd(2)));
  EXPECT_TRUE(paxos::same_value(store->chosen(1), cmd(1)));
  EXPECT_EQ(store->load_sessions(), (std::vector<Session>{Session{5, 1, "r", 1}}));
}

fs::path only_wal(const std::string& dir) {
  std::vector<fs::path> wals;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".log") wals.push_back(e.path());
  }
  SYNOD_CHECK(wals.size() == 1);
  SYNOD_CHECK(fs::file_size(wals[0]) > 64);
  return wals[0];
}

// The last WAL record torn in half (a write in flight at power loss, never
// acknowledged) is tolerated: what was synced before it is all there.
TEST(LogStoreCrashTest, TornWalTailIsTolerated) {
  ChildSharedDir dir("SYNOD_STORAGE_CRASH_DIR");
  EXPECT_EXIT(write_then_crash(dir.path()), ::testing::ExitedWithCode(0), "");

  const fs::path wal = only_wal(dir.path());
  fs::resize_file(wal, fs::file_size(wal) - 5);  // inside the last (record_applied) record
  auto store = open_ok(dir.path());
  ASSERT_NE(store, nullptr);
  const paxos::DurableState st = store->load();
  EXPECT_EQ(st.promised, (Ballot{7, kNode}));
  EXPECT_EQ(st.applied, 0u);  // the torn, unsynced write is gone
  EXPECT_EQ(st.accepted.size(), 2u);
  EXPECT_EQ(st.chosen.size(), 2u);
  EXPECT_TRUE(store->load_sessions().empty());
}

// A damaged record in the middle of the WAL (synced data) refuses the start.
// RocksDB's default recovery mode (kPointInTimeRecovery) would instead replay
// only what precedes it: here, nothing, and the node would start empty.
TEST(LogStoreCrashTest, DamagedWalRefusesToOpen) {
  ChildSharedDir dir("SYNOD_STORAGE_CRASH_DIR");
  EXPECT_EXIT(write_then_crash(dir.path()), ::testing::ExitedWithCode(0), "");

  const fs::path wal = only_wal(dir.path());
  {
    // Byte 20: inside the first record (7-byte header, then the WriteBatch).
    std::fstream f(wal, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(20);
    char c = 0;
    f.get(c);
    f.seekp(20);
    f.put(static_cast<char>(c ^ 0x5a));
  }
  const std::string error = open_error(dir.path());
  EXPECT_NE(error.find("Corruption"), std::string::npos) << error;
}

// ------------------------------------------------------------ refusals

class LogStoreRefusal : public ::testing::Test {
 protected:
  // A store with a little of everything, closed.
  void SetUp() override {
    auto store = open_ok(dir_.path());
    ASSERT_NE(store, nullptr);
    PersistBatch b;
    b.promised = Ballot{1, kNode};
    b.accepted = {{3, Ballot{1, kNode}, cmd(3)}};
    b.chosen = {{1, cmd(1)}, {2, cmd(2)}, {3, cmd(3)}};
    persist_ok(*store, b);
    applied_ok(*store, 2, {Session{1, 1, "r", 0}});
  }
  const std::string& dir() const { return dir_.path(); }

  TempDir dir_;
};

TEST_F(LogStoreRefusal, TheSameIdsOpen) { EXPECT_NE(open_ok(dir()), nullptr); }

TEST_F(LogStoreRefusal, AnotherNodeId) {
  const std::string error = open_error(dir(), /*node=*/5);
  EXPECT_NE(error.find("node 2"), std::string::npos) << error;
  EXPECT_NE(error.find("node 5"), std::string::npos) << error;
  EXPECT_NE(error.find(dir()), std::string::npos) << error;
}

TEST_F(LogStoreRefusal, AnotherClusterId) {
  const std::string error = open_error(dir(), kNode, /*cluster=*/77);
  EXPECT_NE(error.find("cluster " + std::to_string(kCluster)), std::string::npos) << error;
  EXPECT_NE(error.find("cluster 77"), std::string::npos) << error;
}

TEST_F(LogStoreRefusal, NodeIdZero) {
  EXPECT_NE(open_error(dir(), paxos::kNoNode).find("node id 0"), std::string::npos);
}

TEST_F(LogStoreRefusal, UnknownFormatVersion) {
  raw_put(dir(), {{meta_key("format"), be(99, 4)}});
  const std::string error = open_error(dir());
  EXPECT_NE(error.find("format version 99 is unknown"), std::string::npos) << error;
}

TEST_F(LogStoreRefusal, SessionWithUnknownFlags) {
  raw_put(dir(), {{slot_key('s', 4), be(1, 8) + be(0, 8) + "\x03r"}});
  const std::string error = open_error(dir());
  EXPECT_NE(error.find("session of client 4 has unknown flags 3"), std::string::npos) << error;
}

TEST_F(LogStoreRefusal, SessionWithoutFlagsByte) {
  raw_put(dir(), {{slot_key('s', 4), be(1, 8) + be(0, 8)}});  // a version-1 value in version 2
  const std::string error = open_error(dir());
  EXPECT_NE(error.find("session of client 4 is malformed (16 bytes)"), std::string::npos) << error;
}

TEST_F(LogStoreRefusal, Version1SessionTooShort) {
  raw_put(dir(), {{meta_key("format"), be(1, 4)}, {slot_key('s', 4), be(1, 8) + "x"}});
  const std::string error = open_error(dir());
  EXPECT_NE(error.find("session of client 4 is malformed (9 bytes)"), std::string::npos) << error;
  EXPECT_EQ(raw_get(dir(), meta_key("format")), be(1, 4));  // refused, not upgraded
}

TEST_F(LogStoreRefusal, ChosenValueThatFailsToDecode) {
  raw_put(dir(), {{slot_key('c', 2), std::string("\xff\xff\xff garbage", 11)}});
  const std::string error = open_error(dir());
  EXPECT_NE(error.find("chosen value of slot 2 fails to decode"), std::string::npos) << error;
}

TEST_F(LogStoreRefusal, ChosenValueOfUnknownKind) {
  proto::Value v;
  v.set_kind(42);  // parses as protobuf, but is no ValueKind
  raw_put(dir(), {{slot_key('c', 3), v.SerializeAsString()}});
  const std::string error = open_error(dir());
  EXPECT_NE(error.find("chosen value of slot 3 fails to decode"), std::string::npos) << error;
}

TEST_F(LogStoreRefusal, AcceptedValueThatFailsToDecode) {
  raw_put(dir(), {{slot_key('a', 3), be(1, 8) + be(kNode, 4) + "\xff\xff\xff"}});
  const std::string error = open_error(dir());
  EXPECT_NE(error.find("accepted value of slot 3 fails to decode"), std::string::npos) << error;
}

TEST_F(LogStoreRefusal, AcceptedEntryTooShort) {
  raw_put(dir(), {{slot_key('a', 4), "short"}});
  const std::string error = open_error(dir());
  EXPECT_NE(error.find("accepted entry of slot 4"), std::string::npos) << error;
}

TEST_F(LogStoreRefusal, AppliedBelowFirstSlotMinusOne) {
  raw_put(dir(), {{meta_key("first"), be(10, 8)}, {meta_key("applied"), be(3, 8)}});
  const std::string error = open_error(dir());
  EXPECT_NE(error.find("applied slot 3 is below first stored slot 10"), std::string::npos) << error;
}

TEST_F(LogStoreRefusal, AppliedBeyondStoredChosenIsFine) {
  // Chosen values may have been compacted into a snapshot: not an error.
  raw_put(dir(), {{meta_key("applied"), be(50, 8)}});
  auto store = open_ok(dir());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->applied(), 50u);
}

TEST_F(LogStoreRefusal, ChosenBelowFirstSlot) {
  raw_put(dir(), {{meta_key("first"), be(2, 8)}});
  const std::string error = open_error(dir());
  EXPECT_NE(error.find("chosen value at slot 1 is below the first stored slot 2"),
            std::string::npos)
      << error;
}

TEST_F(LogStoreRefusal, UnknownRecord) {
  raw_put(dir(), {{"zebra", "x"}});
  const std::string error = open_error(dir());
  EXPECT_NE(error.find("unknown record (key tag 0x7a)"), std::string::npos) << error;
}

TEST_F(LogStoreRefusal, MalformedMeta) {
  raw_put(dir(), {{meta_key("promised"), "xx"}});
  EXPECT_NE(open_error(dir()).find("malformed promised ballot"), std::string::npos);
}

TEST_F(LogStoreRefusal, AlreadyOpen) {
  auto store = open_ok(dir());
  ASSERT_NE(store, nullptr);
  const std::string error = open_error(dir());
  EXPECT_NE(error.find("cannot open the RocksDB database"), std::string::npos) << error;
}

TEST(LogStoreRefusals, NonEmptyDirectoryWithoutStore) {
  TempDir dir;
  std::ofstream(dir.path() + "/notes.txt") << "not a store\n";
  const std::string error = open_error(dir.path());
  EXPECT_NE(error.find("not empty but holds no store"), std::string::npos) << error;
  EXPECT_TRUE(fs::exists(dir.path() + "/notes.txt"));
}

TEST(LogStoreRefusals, RocksDbOfSomethingElse) {
  TempDir dir;
  raw_put(dir.path(), {{"mnode", be(kNode, 4)}}, /*create=*/true);
  const std::string error = open_error(dir.path());
  EXPECT_NE(error.find("no format version"), std::string::npos) << error;
}

TEST(LogStoreRefusals, EmptyRocksDbIsInitialized) {
  // A crash right after RocksDB created the database, before the meta write.
  TempDir dir;
  raw_put(dir.path(), {}, /*create=*/true);
  EXPECT_NE(open_ok(dir.path()), nullptr);
  EXPECT_NE(open_error(dir.path(), kNode + 1).find("belongs to node 2"), std::string::npos);
}

}  // namespace
}  // namespace synod::storage
