#include "backends/kv/kv_store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <csignal>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>

#include "backends/kv/kv_test_util.h"

namespace synod::kv {
namespace {

using namespace synod::kv::testing;  // NOLINT
using proto::KvResult;

// The command at log position `position`.
synod_apply_context at(uint64_t position) { return synod_apply_context{position, 0, 0}; }

class KvStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = open(); }

  std::unique_ptr<KvStore> open() {
    std::string error;
    auto store = KvStore::open({.data_dir = dir_.path()}, &error);
    EXPECT_NE(store, nullptr) << error;
    return store;
  }
  void reopen() {
    store_.reset();
    store_ = open();
    ASSERT_NE(store_, nullptr);
  }

  // Applies at the next position.
  KvResult apply(const proto::KvCommand& c) { return apply_bytes(c.SerializeAsString()); }
  KvResult apply_bytes(const std::string& bytes) {
    return apply_at(at(store_->last_applied() + 1), bytes);
  }
  KvResult apply_at(synod_apply_context ctx, const std::string& bytes) {
    std::string result, error;
    EXPECT_TRUE(store_->apply(ctx, bytes, &result, &error)) << error;
    return parse_result(result);
  }
  KvResult query(const proto::KvCommand& c) {
    std::string result, error;
    EXPECT_TRUE(store_->query(c.SerializeAsString(), &result, &error)) << error;
    return parse_result(result);
  }

  TempDir dir_;
  std::unique_ptr<KvStore> store_;
};

TEST_F(KvStoreTest, PutGetDelete) {
  EXPECT_EQ(query(Get("a")).code(), KvResult::NOT_FOUND);

  KvResult r = apply(Put("a", "1"));
  EXPECT_EQ(r.code(), KvResult::OK);
  EXPECT_FALSE(r.found());
  r = apply(Put("a", "2"));
  EXPECT_EQ(r.code(), KvResult::OK);
  EXPECT_TRUE(r.found());  // it existed before

  r = query(Get("a"));
  EXPECT_EQ(r.code(), KvResult::OK);
  EXPECT_TRUE(r.found());
  EXPECT_EQ(r.value(), "2");

  // Empty values and binary bytes are values like any other.
  apply(Put("empty", ""));
  r = query(Get("empty"));
  EXPECT_EQ(r.code(), KvResult::OK);
  EXPECT_TRUE(r.found());
  EXPECT_EQ(r.value(), "");
  std::string binary("\0\xff\x01", 3);
  apply(Put(binary, binary));
  EXPECT_EQ(query(Get(binary)).value(), binary);

  r = apply(Delete("a"));
  EXPECT_EQ(r.code(), KvResult::OK);
  EXPECT_TRUE(r.found());
  r = query(Get("a"));
  EXPECT_EQ(r.code(), KvResult::NOT_FOUND);
  EXPECT_FALSE(r.found());
  r = apply(Delete("a"));
  EXPECT_EQ(r.code(), KvResult::OK);
  EXPECT_FALSE(r.found());
}

TEST_F(KvStoreTest, CompareAndSet) {
  KvResult r = apply(CasAbsent("k", "v1"));
  EXPECT_EQ(r.code(), KvResult::OK);
  EXPECT_FALSE(r.found());
  EXPECT_EQ(query(Get("k")).value(), "v1");

  r = apply(CasAbsent("k", "v2"));  // present now
  EXPECT_EQ(r.code(), KvResult::CAS_FAILED);
  EXPECT_TRUE(r.found());
  EXPECT_EQ(r.value(), "v1");

  r = apply(Cas("k", "wrong", "v3"));
  EXPECT_EQ(r.code(), KvResult::CAS_FAILED);
  EXPECT_EQ(r.value(), "v1");
  EXPECT_EQ(query(Get("k")).value(), "v1");

  r = apply(Cas("k", "v1", "v3"));
  EXPECT_EQ(r.code(), KvResult::OK);
  EXPECT_TRUE(r.found());
  EXPECT_EQ(query(Get("k")).value(), "v3");

  r = apply(Cas("missing", "", "x"));  // expected "" is not "absent"
  EXPECT_EQ(r.code(), KvResult::CAS_FAILED);
  EXPECT_FALSE(r.found());
  EXPECT_EQ(query(Get("missing")).code(), KvResult::NOT_FOUND);

  apply(Put("empty", ""));
  EXPECT_EQ(apply(Cas("empty", "", "x")).code(), KvResult::OK);

  proto::KvCommand both = CasAbsent("k", "v");
  both.set_expected("v3");
  r = apply(both);
  EXPECT_EQ(r.code(), KvResult::BAD_COMMAND);
  EXPECT_EQ(query(Get("k")).value(), "v3");
}

TEST_F(KvStoreTest, Increment) {
  KvResult r = apply(Increment("n", 5));  // absent counts as 0
  EXPECT_EQ(r.code(), KvResult::OK);
  EXPECT_EQ(r.number(), 5);
  EXPECT_FALSE(r.found());
  r = apply(Increment("n", -7));
  EXPECT_EQ(r.number(), -2);
  EXPECT_EQ(r.value(), "-2");
  EXPECT_TRUE(r.found());
  EXPECT_EQ(query(Get("n")).value(), "-2");  // decimal ASCII
  EXPECT_EQ(apply(Increment("n", 0)).number(), -2);

  apply(Put("p", "041"));
  EXPECT_EQ(apply(Increment("p", 1)).number(), 42);
  EXPECT_EQ(query(Get("p")).value(), "42");

  for (std::string bad :
       {"", "abc", "12abc", " 1", "1 ", "+1", "1.5", "0x10", "99999999999999999999"}) {
    apply(Put("s", bad));
    r = apply(Increment("s", 1));
    EXPECT_EQ(r.code(), KvResult::NOT_A_NUMBER) << bad;
    EXPECT_EQ(r.value(), bad);
    EXPECT_NE(r.error().find("not a decimal 64-bit integer"), std::string::npos) << r.error();
    EXPECT_EQ(query(Get("s")).value(), bad);  // unchanged
  }

  apply(Put("max", std::to_string(INT64_MAX)));
  r = apply(Increment("max", 1));
  EXPECT_EQ(r.code(), KvResult::NOT_A_NUMBER);
  EXPECT_EQ(r.error(), "overflow: 9223372036854775807 + 1 does not fit in 64 bits");
  EXPECT_EQ(query(Get("max")).value(), std::to_string(INT64_MAX));
  apply(Put("min", std::to_string(INT64_MIN)));
  EXPECT_EQ(apply(Increment("min", -1)).code(), KvResult::NOT_A_NUMBER);
  EXPECT_EQ(apply(Increment("min", INT64_MAX)).number(), -1);
}

TEST_F(KvStoreTest, ListByPrefixInOrderWithLimit) {
  for (std::string k : {"b/2", "a/1", "b/10", "b/1", "c", "b"}) apply(Put(k, "x"));
  KvResult r = query(List("b/"));
  EXPECT_EQ(r.code(), KvResult::OK);
  EXPECT_EQ(std::vector<std::string>(r.keys().begin(), r.keys().end()),
            (std::vector<std::string>{"b/1", "b/10", "b/2"}));
  r = query(List("b/", 2));
  EXPECT_EQ(std::vector<std::string>(r.keys().begin(), r.keys().end()),
            (std::vector<std::string>{"b/1", "b/10"}));
  r = query(List(""));
  EXPECT_EQ(std::vector<std::string>(r.keys().begin(), r.keys().end()),
            (std::vector<std::string>{"a/1", "b", "b/1", "b/10", "b/2", "c"}));
  EXPECT_EQ(query(List("zzz")).keys_size(), 0);
  // A prefix of 0xff bytes (the end of the byte order) is fine too.
  apply(Put("\xff\xff", "x"));
  EXPECT_EQ(query(List("\xff")).keys_size(), 1);
}

TEST_F(KvStoreTest, PutRequirePresentIsSetXX) {
  proto::KvCommand c = Put("x", "1");
  c.set_require_present(true);
  KvResult r = apply(c);
  EXPECT_EQ(r.code(), KvResult::CAS_FAILED);
  EXPECT_FALSE(r.found());
  EXPECT_EQ(query(Get("x")).code(), KvResult::NOT_FOUND);
  apply(Put("x", "0"));
  r = apply(c);
  EXPECT_EQ(r.code(), KvResult::OK);
  EXPECT_TRUE(r.found());
  EXPECT_EQ(query(Get("x")).value(), "1");
  proto::KvCommand bad = Delete("x");
  bad.set_require_present(true);
  EXPECT_EQ(apply(bad).code(), KvResult::BAD_COMMAND);
  EXPECT_EQ(query(Get("x")).value(), "1");
}

TEST_F(KvStoreTest, MultiKeyOps) {
  KvResult r = apply(Multi(proto::KvCommand::MPUT, {"a", "b", "a"}, {"1", "2", "3"}));
  EXPECT_EQ(r.code(), KvResult::OK);
  // Later pairs win, as in Redis's MSET.
  r = query(Multi(proto::KvCommand::MGET, {"a", "zz", "b", "a"}));
  ASSERT_EQ(r.code(), KvResult::OK);
  ASSERT_EQ(r.entries_size(), 4);
  EXPECT_TRUE(r.entries(0).found());
  EXPECT_EQ(r.entries(0).value(), "3");
  EXPECT_FALSE(r.entries(1).found());
  EXPECT_EQ(r.entries(2).value(), "2");
  EXPECT_EQ(r.entries(3).value(), "3");
  // MGET through apply (a read in the log) answers the same.
  EXPECT_EQ(apply(Multi(proto::KvCommand::MGET, {"b"})).entries(0).value(), "2");

  proto::KvCommand count;
  count.set_op(proto::KvCommand::COUNT);
  EXPECT_EQ(query(count).number(), 2);
  count.set_prefix("a");
  EXPECT_EQ(query(count).number(), 1);

  r = apply(Multi(proto::KvCommand::MDELETE, {"a", "a", "nope", "b"}));
  EXPECT_EQ(r.code(), KvResult::OK);
  EXPECT_EQ(r.number(), 2);  // "a" once, "b"; "nope" did not exist
  count.clear_prefix();
  EXPECT_EQ(query(count).number(), 0);

  // Shape errors are BAD_COMMAND results that change nothing.
  EXPECT_EQ(apply(Multi(proto::KvCommand::MPUT, {"a", "b"}, {"1"})).code(),
            KvResult::BAD_COMMAND);
  EXPECT_EQ(apply(Multi(proto::KvCommand::MPUT, {"a", ""}, {"1", "2"})).code(),
            KvResult::BAD_COMMAND);
  EXPECT_EQ(apply(Multi(proto::KvCommand::MDELETE, {})).code(), KvResult::BAD_COMMAND);
  EXPECT_EQ(query(count).number(), 0);
  // Writes are refused as queries.
  EXPECT_EQ(query(Multi(proto::KvCommand::MPUT, {"a"}, {"1"})).code(), KvResult::BAD_COMMAND);
  EXPECT_EQ(query(Multi(proto::KvCommand::MDELETE, {"a"})).code(), KvResult::BAD_COMMAND);
}

TEST_F(KvStoreTest, UserKeysCannotTouchInternalKeys) {
  // Whatever the internal keys are called, user keys live apart from them.
  for (std::string k : {"mapplied", "mformat", "applied", "format", "u", "m"}) {
    apply(Put(k, "garbage"));
  }
  uint64_t applied = store_->last_applied();
  EXPECT_EQ(applied, 6u);
  reopen();
  EXPECT_EQ(store_->last_applied(), applied);
  EXPECT_EQ(query(List("")).keys_size(), 6);
  EXPECT_EQ(query(Get("mapplied")).value(), "garbage");
}

TEST_F(KvStoreTest, ReadsThroughApplyAdvanceThePosition) {
  apply(Put("k", "v"));
  KvResult r = apply(Get("k"));
  EXPECT_EQ(r.value(), "v");
  EXPECT_EQ(store_->last_applied(), 2u);
  r = apply(List("k"));
  EXPECT_EQ(r.keys_size(), 1);
  EXPECT_EQ(store_->last_applied(), 3u);
}

TEST_F(KvStoreTest, QueryServesOnlyReads) {
  for (const auto& write : {Put("k", "v"), Delete("k"), Cas("k", "a", "b"), Increment("k", 1)}) {
    KvResult r = query(write);
    EXPECT_EQ(r.code(), KvResult::BAD_COMMAND);
    EXPECT_NE(r.error().find("is not a read"), std::string::npos) << r.error();
  }
  EXPECT_EQ(query(Get("k")).code(), KvResult::NOT_FOUND);
  EXPECT_EQ(store_->last_applied(), 0u);
  std::string result, error;
  ASSERT_TRUE(store_->query("\xff", &result, &error));
  EXPECT_EQ(parse_result(result).code(), KvResult::BAD_COMMAND);
}

TEST_F(KvStoreTest, BadCommandsAreResultsNotCrashes) {
  KvResult r =
      apply_bytes(std::string("\x12\x7f"
                              "abc",
                              5));
  EXPECT_EQ(r.code(), KvResult::BAD_COMMAND);
  EXPECT_EQ(r.error(), "malformed KvCommand: truncated length-delimited field");
  EXPECT_EQ(store_->last_applied(), 1u);  // still applied: every node agrees it is bad

  std::mt19937_64 rng(7);
  for (int i = 0; i < 500; ++i) {
    std::string junk(rng() % 40, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    apply_bytes(junk);  // any result, but a result
  }
  EXPECT_EQ(store_->last_applied(), 501u);

  proto::KvCommand unknown = Get("k");
  unknown.set_op(static_cast<proto::KvCommand::Op>(42));
  r = apply(unknown);
  EXPECT_EQ(r.code(), KvResult::BAD_COMMAND);
  EXPECT_EQ(r.error(), "unknown op 42");

  r = apply(Put("", "v"));
  EXPECT_EQ(r.code(), KvResult::BAD_COMMAND);
  EXPECT_EQ(r.error(), "PUT needs a key");
  r = apply(Put(std::string(kMaxKeyBytes + 1, 'k'), "v"));
  EXPECT_EQ(r.code(), KvResult::BAD_COMMAND);
  EXPECT_EQ(apply(Put(std::string(kMaxKeyBytes, 'k'), "v")).code(), KvResult::OK);
}

TEST_F(KvStoreTest, ReopenKeepsDataAndLastApplied) {
  for (int i = 1; i <= 50; ++i) apply(Put("k" + std::to_string(i), std::to_string(i)));
  EXPECT_EQ(store_->last_applied(), 50u);
  reopen();
  EXPECT_EQ(store_->last_applied(), 50u);
  EXPECT_EQ(query(List("k")).keys_size(), 50);
  EXPECT_EQ(query(Get("k37")).value(), "37");
  EXPECT_EQ(apply(Increment("k50", 1)).number(), 51);
  EXPECT_EQ(store_->last_applied(), 51u);
}

TEST_F(KvStoreTest, AnOldPositionIsANoOp) {
  apply_at(at(5), Put("k", "new").SerializeAsString());
  for (uint64_t position : {0, 1, 4, 5}) {
    KvResult r = apply_at(at(position), Put("k", "old").SerializeAsString());
    EXPECT_EQ(r.code(), KvResult::OK);
    EXPECT_EQ(r.error(), "position " + std::to_string(position) +
                             " was already applied (last applied: 5); not applied again");
  }
  EXPECT_EQ(query(Get("k")).value(), "new");
  EXPECT_EQ(store_->last_applied(), 5u);
  // Positions need not be contiguous: the ones in between were other backends'.
  apply_at(at(9), Put("k", "nine").SerializeAsString());
  EXPECT_EQ(store_->last_applied(), 9u);
  EXPECT_EQ(query(Get("k")).value(), "nine");
  // After a restart too.
  reopen();
  apply_at(at(9), Put("k", "again").SerializeAsString());
  EXPECT_EQ(query(Get("k")).value(), "nine");
}

// Two stores fed the same commands end in the same state with the same results,
// one of them closed and reopened along the way.
// Store a applies one command at a time, store b the same commands in
// batches of random size (apply_batch, one RocksDB write each): the same
// results, command by command, and the same final state. Commands in a batch
// read the effects of the ones before them (PUT's found, CAS, INCREMENT,
// MDELETE, LIST and COUNT through the batch).
TEST(KvStoreDeterminism, SameCommandsSameStateAndResultsOneByOneOrInBatches) {
  TempDir dir_a, dir_b;
  std::string error;
  auto a = KvStore::open({.data_dir = dir_a.path()}, &error);
  auto b = KvStore::open({.data_dir = dir_b.path()}, &error);
  ASSERT_TRUE(a && b) << error;

  std::mt19937_64 rng(12345);
  auto key = [&] { return "k" + std::to_string(rng() % 20); };
  uint64_t position = 0;
  std::vector<synod_apply_context> ctxs;
  std::vector<std::string> cmds;
  std::vector<std::string> expected;
  auto apply_b = [&] {
    std::vector<std::string_view> views(cmds.begin(), cmds.end());
    std::vector<std::string> got;
    ASSERT_TRUE(b->apply_batch(ctxs.size(), ctxs.data(), views.data(), &got, &error)) << error;
    ASSERT_EQ(got.size(), expected.size());
    for (size_t j = 0; j < got.size(); ++j) {
      ASSERT_EQ(got[j], expected[j]) << "position " << ctxs[j].slot << " in a batch of "
                                     << ctxs.size();
    }
    ctxs.clear();
    cmds.clear();
    expected.clear();
  };
  size_t batch_size = 1;
  for (int i = 0; i < 3000; ++i) {
    proto::KvCommand c;
    switch (rng() % 10) {
      case 0:
        c = Put(key(), std::to_string(rng() % 5));
        break;
      case 1:
        c = Put(key(), "text" + std::to_string(rng() % 3));
        break;
      case 2:
        c = Delete(key());
        break;
      case 3:
        c = Cas(key(), std::to_string(rng() % 5), std::to_string(rng() % 5));
        break;
      case 4:
        c = CasAbsent(key(), "fresh");
        break;
      case 5:
        c = Increment(key(), static_cast<int64_t>(rng() % 11) - 5);
        break;
      case 6:
        c = (rng() % 2) ? Get(key()) : List("k1", static_cast<uint32_t>(rng() % 4));
        break;
      case 7:
        c = Multi(proto::KvCommand::MPUT, {key(), key()}, {"m", std::to_string(rng() % 5)});
        break;
      case 8:
        c = Multi(rng() % 2 ? proto::KvCommand::MDELETE : proto::KvCommand::MGET,
                  {key(), key(), key()});
        break;
      case 9:
        c.set_op(proto::KvCommand::COUNT);
        c.set_prefix("k1");
        break;
    }
    // Gaps in the positions, as when other backends' commands sit between.
    position += 1 + rng() % 3;
    std::string bytes = c.SerializeAsString();
    std::string ra;
    ASSERT_TRUE(a->apply(at(position), bytes, &ra, &error)) << error;
    ctxs.push_back(at(position));
    cmds.push_back(bytes);
    expected.push_back(ra);
    if (rng() % 3 == 0) {  // an old position inside a batch is a no-op there too
      std::string again;
      ASSERT_TRUE(a->apply(at(position), bytes, &again, &error)) << error;
      ctxs.push_back(at(position));
      cmds.push_back(bytes);
      expected.push_back(again);
    }
    if (cmds.size() >= batch_size) {
      apply_b();
      batch_size = 1 + rng() % 8;
    }
    if (i == 1000) {
      a.reset();
      a = KvStore::open({.data_dir = dir_a.path()}, &error);
      ASSERT_TRUE(a) << error;
    }
  }
  if (!cmds.empty()) apply_b();
  EXPECT_EQ(a->last_applied(), position);
  EXPECT_EQ(b->last_applied(), position);

  auto contents = [](KvStore& s) {
    std::map<std::string, std::string> m;
    std::string out, why;
    EXPECT_TRUE(s.query(List("").SerializeAsString(), &out, &why));
    KvResult listed = parse_result(out);
    for (const auto& k : listed.keys()) {
      EXPECT_TRUE(s.query(Get(k).SerializeAsString(), &out, &why));
      m[k] = parse_result(out).value();
    }
    return m;
  };
  auto ca = contents(*a);
  EXPECT_GT(ca.size(), 5u);
  EXPECT_EQ(ca, contents(*b));
}

// A process killed right after an apply returned: on reopen, the data and the
// last applied slot agree (the position and the effect are one write batch).
TEST(KvStoreCrash, LastAppliedAndDataAgreeAfterAKill) {
  // The "threadsafe" death test re-runs this test in a fresh process up to
  // EXPECT_EXIT; the directory reaches it through the environment.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  constexpr const char* kEnv = "SYNOD_KV_CRASH_TEST_DIR";
  std::optional<TempDir> owned;
  std::string path;
  if (const char* inherited = std::getenv(kEnv)) {
    path = inherited;
  } else {
    owned.emplace();
    path = owned->path();
    setenv(kEnv, path.c_str(), 1);
  }
  EXPECT_EXIT(
      {
        std::string error;
        auto store = KvStore::open({.data_dir = path}, &error);
        if (!store) std::_Exit(1);
        for (uint64_t position = 1; position <= 300; ++position) {
          std::string result;
          std::string cmd = Put("k" + std::to_string(position), "v").SerializeAsString();
          if (!store->apply(at(position), cmd, &result, &error)) {
            std::_Exit(2);
          }
          if (position == 200 && !store->sync(&error)) std::_Exit(3);
        }
        std::raise(SIGKILL);  // no close, no flush
      },
      ::testing::KilledBySignal(SIGKILL), "");
  unsetenv(kEnv);

  std::string error;
  auto store = KvStore::open({.data_dir = path}, &error);
  ASSERT_NE(store, nullptr) << error;
  uint64_t applied = store->last_applied();
  // What sync() covered survives; what came after may be lost, but only as a
  // suffix: the data agrees with last_applied.
  EXPECT_GE(applied, 200u);
  EXPECT_LE(applied, 300u);
  std::string out;
  ASSERT_TRUE(store->query(List("k").SerializeAsString(), &out, &error));
  EXPECT_EQ(static_cast<uint64_t>(parse_result(out).keys_size()), applied);
}

TEST(KvStoreOpen, Errors) {
  std::string error;
  EXPECT_EQ(KvStore::open({.data_dir = ""}, &error), nullptr);
  EXPECT_EQ(error, "data_dir is empty");

  EXPECT_EQ(KvStore::open({.data_dir = "/proc/synod-kv-cannot-be-here"}, &error), nullptr);
  EXPECT_NE(error.find("cannot create data_dir /proc/synod-kv-cannot-be-here"), std::string::npos)
      << error;

  // Created with parents.
  TempDir dir;
  auto store = KvStore::open({.data_dir = dir.path() + "/a/b/c"}, &error);
  ASSERT_NE(store, nullptr) << error;
  // Locked by the open instance.
  EXPECT_EQ(KvStore::open({.data_dir = dir.path() + "/a/b/c"}, &error), nullptr);
  EXPECT_NE(error.find("cannot open RocksDB"), std::string::npos) << error;
  store.reset();

  // Some other RocksDB database is not a kv store.
  TempDir other;
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, other.path(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "hello", "world").ok());
  }
  EXPECT_EQ(KvStore::open({.data_dir = other.path()}, &error), nullptr);
  EXPECT_EQ(error, other.path() + " holds a RocksDB database that is not a Synod kv store");
}

}  // namespace
}  // namespace synod::kv
