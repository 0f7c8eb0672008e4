#include "backends/sqlite/sql_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

namespace synod::sql {
namespace {

using nlohmann::json;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "synod-sql-XXXXXX").string();
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

synod_apply_context at(uint64_t position, int64_t ms = 1700000000000, uint64_t seed = 7) {
  return synod_apply_context{position, ms, seed};
}

class SqlStoreTest : public ::testing::Test {
 public:
  void SetUp() override { store_ = open(dir_); }

  static std::unique_ptr<SqlStore> open(const TempDir& dir) {
    std::string error;
    auto s = SqlStore::open({.data_dir = dir.path()}, &error);
    EXPECT_NE(s, nullptr) << error;
    return s;
  }
  json exec(const json& statements, synod_apply_context ctx) {
    return exec_on(*store_, statements, ctx);
  }
  json exec(const json& statements) { return exec(statements, at(store_->last_applied() + 1)); }
  static json exec_on(SqlStore& s, const json& statements, synod_apply_context ctx) {
    std::string result, error;
    EXPECT_TRUE(s.apply(ctx, statements.dump(), &result, &error)) << error;
    return json::parse(result);
  }
  json query(const json& statements) {
    std::string result, error;
    EXPECT_TRUE(store_->query(statements.dump(), &result, &error)) << error;
    return json::parse(result);
  }

  TempDir dir_;
  std::unique_ptr<SqlStore> store_;
};

TEST_F(SqlStoreTest, ExecuteAndQueryInRqlitesShapes) {
  json r = exec(json::array({"CREATE TABLE foo (id INTEGER NOT NULL PRIMARY KEY, name TEXT, "
                             "score REAL, data BLOB)",
                             json::array({"INSERT INTO foo(name, score) VALUES(?, ?)", "fiona", 2.5}),
                             json::array({"INSERT INTO foo(name) VALUES(:name)",
                                          json{{"name", "declan"}}}),
                             "INSERT INTO foo(name, data) VALUES('blob', x'00ff10')"}));
  ASSERT_EQ(r["results"].size(), 4u) << r;
  EXPECT_FALSE(r.contains("rolled_back"));
  EXPECT_EQ(r["results"][1]["last_insert_id"], 1);
  EXPECT_EQ(r["results"][1]["rows_affected"], 1);
  EXPECT_EQ(r["results"][2]["last_insert_id"], 2);
  EXPECT_EQ(r["results"][0]["rows_affected"], 0);  // CREATE changes no rows
  EXPECT_EQ(store_->last_applied(), 1u);

  json q = query(json::array({"SELECT id, name, score, data FROM foo ORDER BY id",
                              json::array({"SELECT count(*) FROM foo WHERE name = ?", "fiona"})}));
  const json& rows = q["results"][0];
  EXPECT_EQ(rows["columns"], json::array({"id", "name", "score", "data"}));
  EXPECT_EQ(rows["types"], json::array({"integer", "text", "real", "blob"}));
  ASSERT_EQ(rows["values"].size(), 3u);
  EXPECT_EQ(rows["values"][0], json::array({1, "fiona", 2.5, nullptr}));
  EXPECT_EQ(rows["values"][2][3], "AP8Q");  // base64 of 00 ff 10
  EXPECT_EQ(q["results"][1]["values"][0][0], 1);
  EXPECT_EQ(q["results"][1]["types"][0], "");  // an expression has no declared type
}

TEST_F(SqlStoreTest, AFailingStatementRollsBackTheWholeCommand) {
  exec(json::array({"CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)",
                    "INSERT INTO t(v) VALUES('a')"}));
  json r = exec(json::array({"INSERT INTO t(v) VALUES('b')", "INSERT INTO t(v) VALUES('a')",
                             "INSERT INTO t(v) VALUES('c')"}));
  EXPECT_EQ(r["rolled_back"], true);
  ASSERT_EQ(r["results"].size(), 2u);
  EXPECT_NE(r["results"][1]["error"].get<std::string>().find("UNIQUE"), std::string::npos) << r;
  EXPECT_EQ(store_->last_applied(), 2u);  // an SQL error is a result: the position advances
  EXPECT_EQ(query(json::array({"SELECT count(*) FROM t"}))["results"][0]["values"][0][0], 1);
  // Bad input of every kind is a result too, and changes nothing.
  EXPECT_TRUE(exec(json("not an array"))["results"][0].contains("error"));
  std::string result, error;
  ASSERT_TRUE(store_->apply(at(store_->last_applied() + 1), "{not json", &result, &error));
  EXPECT_NE(result.find("not a JSON array"), std::string::npos);
  EXPECT_TRUE(exec(json::array({"SELEC nonsense"}))["results"][0].contains("error"));
  EXPECT_TRUE(exec(json::array({json::array({"INSERT INTO t(v) VALUES(?)", 1, 2})}))["results"][0]
                  .contains("error"));
  EXPECT_TRUE(exec(json::array({json::array({"INSERT INTO t(v) VALUES(?)", json::array()})}))
                  ["results"][0]
                      .contains("error"));
  EXPECT_EQ(query(json::array({"SELECT count(*) FROM t"}))["results"][0]["values"][0][0], 1);
}

// rqlite without ?transaction: every statement stands alone.
TEST_F(SqlStoreTest, StatementsOutsideATransactionFailAlone) {
  exec(json::array({"CREATE TABLE t (v INTEGER UNIQUE)"}));
  json r = exec(json{{"statements", json::array({"INSERT INTO t VALUES(1)", "INSERT INTO t VALUES(1)",
                                                 "INSERT INTO t VALUES(2)"})},
                     {"transaction", false}});
  EXPECT_FALSE(r.contains("rolled_back")) << r;
  ASSERT_EQ(r["results"].size(), 3u);
  EXPECT_TRUE(r["results"][1].contains("error"));
  EXPECT_EQ(r["results"][2]["rows_affected"], 1);
  EXPECT_EQ(query(json::array({"SELECT count(*) FROM t"}))["results"][0]["values"][0][0], 2);
  // The object form with a transaction is the array form.
  r = exec(json{{"statements", json::array({"INSERT INTO t VALUES(3)", "INSERT INTO t VALUES(1)"})},
                {"transaction", true}});
  EXPECT_EQ(r["rolled_back"], true);
  EXPECT_EQ(query(json::array({"SELECT count(*) FROM t"}))["results"][0]["values"][0][0], 2);
  EXPECT_TRUE(exec(json{{"statements", json::array()}, {"transaction", "yes"}})["results"][0]
                  .contains("error"));
}

TEST_F(SqlStoreTest, WhatWouldLeaveTheReplicatedDatabaseIsRefused) {
  struct Case {
    const char* sql;
    const char* says;
  };
  for (const Case& c : {Case{"ATTACH DATABASE '/tmp/x.db' AS x", "ATTACH"},
                        Case{"PRAGMA journal_mode=DELETE", "PRAGMA journal_mode"},
                        Case{"BEGIN", "transaction control"},
                        Case{"SAVEPOINT s", "transaction control"},
                        Case{"UPDATE _synod_meta SET value = 0", "_synod_meta"},
                        Case{"DROP TABLE _synod_meta", "_synod_meta"},
                        Case{"SELECT load_extension('x')", "load_extension"},
                        Case{"CREATE TABLE v AS SELECT sqlite_version()", "sqlite_version"},
                        Case{"CREATE TABLE w AS SELECT total_changes()", "total_changes"}}) {
    json r = exec(json::array({c.sql}));
    ASSERT_TRUE(r["results"][0].contains("error")) << c.sql << ": " << r;
    EXPECT_NE(r["results"][0]["error"].get<std::string>().find(c.says), std::string::npos)
        << c.sql << ": " << r;
  }
  // Queries accept reads only.
  json q = query(json::array({"CREATE TABLE x (a)"}));
  EXPECT_NE(q["results"][0]["error"].get<std::string>().find("not a read"), std::string::npos);
}

// Two stores (two nodes) given the same commands reach the same database even
// with random() and the current time in the statements: both come from the
// command (timestamp and seed stamped by the proposer), not from the node.
TEST(SqlStoreDeterminism, RandomAndTimeAreTheCommandsOwn) {
  TempDir da, db;
  auto a = SqlStoreTest::open(da);
  auto b = SqlStoreTest::open(db);
  const json setup = json::array(
      {"CREATE TABLE t (id INTEGER PRIMARY KEY, r INTEGER, blob BLOB, ts TEXT, jd REAL, "
       "d TEXT DEFAULT CURRENT_TIMESTAMP)"});
  SqlStoreTest::exec_on(*a, setup, at(1));
  SqlStoreTest::exec_on(*b, setup, at(1));
  const json insert = json::array(
      {"INSERT INTO t(r, blob, ts, jd) VALUES(random(), randomblob(16), datetime('now'), "
       "julianday('now'))",
       "INSERT INTO t(r, blob, ts, jd) VALUES(abs(random()) % 1000, hex(randomblob(4)), "
       "CURRENT_TIMESTAMP, strftime('%s','now'))"});
  for (uint64_t p = 2; p < 20; ++p) {
    const auto ctx = at(p, 1700000000000 + static_cast<int64_t>(p) * 1000, 1000 + p);
    SqlStoreTest::exec_on(*a, insert, ctx);
    SqlStoreTest::exec_on(*b, insert, ctx);
  }
  auto dump = [](SqlStore& s) {
    std::string result, error;
    EXPECT_TRUE(s.query(json::array({"SELECT * FROM t ORDER BY id"}).dump(), &result, &error));
    return json::parse(result)["results"][0]["values"];
  };
  const json rows = dump(*a);
  EXPECT_EQ(rows, dump(*b));
  ASSERT_EQ(rows.size(), 36u);
  // The time is the command's: position 2 ran at 1700000002000 ms.
  EXPECT_EQ(rows[0][3], "2023-11-14 22:13:22");
  EXPECT_EQ(rows[0][5], "2023-11-14 22:13:22");
  EXPECT_NE(rows[0][1], rows[2][1]);  // and random() is random across commands
}

// last_insert_rowid() and changes() do not leak from one command into the
// next: a node that restarted in between (a fresh connection) would see 0.
TEST_F(SqlStoreTest, ConnectionStateStartsFreshInEveryCommand) {
  exec(json::array({"CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER)",
                    "INSERT INTO t(a) VALUES(1)", "INSERT INTO t(a) VALUES(2)"}));
  exec(json::array({"INSERT INTO t(a, b) VALUES(last_insert_rowid(), changes())"}));
  json q = query(json::array({"SELECT a, b FROM t WHERE id = 3"}));
  EXPECT_EQ(q["results"][0]["values"][0], json::array({0, 0}));
}

TEST_F(SqlStoreTest, BatchesAreOneTransactionWithACommandEach) {
  exec(json::array({"CREATE TABLE t (v INTEGER UNIQUE)"}));
  const std::vector<std::string> cmds = {
      json::array({"INSERT INTO t VALUES(1)"}).dump(),
      json::array({"INSERT INTO t VALUES(2)", "INSERT INTO t VALUES(1)"}).dump(),  // fails
      json::array({"INSERT INTO t VALUES(3)"}).dump(),
  };
  std::vector<std::string_view> views(cmds.begin(), cmds.end());
  std::vector<synod_apply_context> ctxs = {at(2), at(3), at(5)};
  std::vector<std::string> results;
  std::string error;
  ASSERT_TRUE(store_->apply_batch(3, ctxs.data(), views.data(), &results, &error)) << error;
  EXPECT_FALSE(json::parse(results[0]).contains("rolled_back"));
  EXPECT_EQ(json::parse(results[1])["rolled_back"], true);  // only the second command
  EXPECT_EQ(store_->last_applied(), 5u);
  EXPECT_EQ(query(json::array({"SELECT group_concat(v) FROM t"}))["results"][0]["values"][0][0],
            "1,3");
  // Replayed positions are no-ops.
  ASSERT_TRUE(store_->apply_batch(3, ctxs.data(), views.data(), &results, &error)) << error;
  EXPECT_NE(results[2].find("already applied"), std::string::npos);
  EXPECT_EQ(query(json::array({"SELECT count(*) FROM t"}))["results"][0]["values"][0][0], 2);
}

TEST_F(SqlStoreTest, ReopenKeepsDataAndLastApplied) {
  exec(json::array({"CREATE TABLE t (v)", "INSERT INTO t VALUES(42)"}));
  std::string error;
  ASSERT_TRUE(store_->sync(&error)) << error;
  store_.reset();
  store_ = open(dir_);
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(store_->last_applied(), 1u);
  EXPECT_EQ(query(json::array({"SELECT v FROM t"}))["results"][0]["values"][0][0], 42);
}

TEST(SqlStoreOpen, RefusesADatabaseThatIsNotOurs) {
  // Somebody else's SQLite file (a table, no _synod_meta) in the data directory.
  TempDir foreign;
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((foreign.path() + "/db.sqlite").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE users (name TEXT)", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  std::string error;
  EXPECT_EQ(SqlStore::open({.data_dir = foreign.path()}, &error), nullptr);
  EXPECT_NE(error.find("not a Synod sqlite store"), std::string::npos) << error;

  EXPECT_EQ(SqlStore::open({.data_dir = ""}, &error), nullptr);
  EXPECT_EQ(error, "data_dir is empty");
}

}  // namespace
}  // namespace synod::sql

namespace synod::sql {
namespace {

TEST_F(SqlStoreTest, ChecksumIsTakenAtItsPositionAndComparable) {
  TempDir other_dir;
  auto other = open(other_dir);
  const json setup = json::array({"CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, f REAL)",
                                  "INSERT INTO t (v, f) VALUES ('a', 0.1), ('b', NULL)"});
  exec(setup, at(1));
  exec_on(*other, setup, at(1));
  const json checksum = json{{"checksum", true}};
  json mine = exec(checksum, at(2));
  json theirs = exec_on(*other, checksum, at(2));
  ASSERT_TRUE(mine.contains("checksum")) << mine;
  EXPECT_EQ(mine["position"], 2);
  EXPECT_EQ(mine["checksum"].get<std::string>().size(), 64u);
  EXPECT_EQ(mine, theirs);
  EXPECT_EQ(store_->last_applied(), 2u);

  // The query answers for that position, from any later state.
  exec(json::array({"INSERT INTO t (v) VALUES ('c')"}), at(3));
  json q = query(json{{"checksum_at", 2}});
  EXPECT_EQ(q, mine);
  EXPECT_TRUE(query(json{{"checksum_at", 3}}).contains("error"));
  EXPECT_NE(query(json{{"checksum_at", 9}})["error"].get<std::string>().find("not applied here"),
            std::string::npos);

  // A change that did not come through the log shows.
  exec_on(*other, json::array({"INSERT INTO t (v) VALUES ('c')"}), at(3));
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((other_dir.path() + "/db.sqlite").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "UPDATE t SET v = 'C' WHERE v = 'c'", nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  mine = exec(checksum, at(4));
  theirs = exec_on(*other, checksum, at(4));
  EXPECT_NE(mine["checksum"], theirs["checksum"]);

  // Checksums survive a restart.
  store_.reset();
  store_ = open(dir_);
  EXPECT_EQ(query(json{{"checksum_at", 4}}), mine);
}

TEST_F(SqlStoreTest, ValidateRefusesWhatIsNotACommand) {
  std::string why;
  EXPECT_TRUE(store_->validate(R"(["SELECT 1", ["INSERT ?", 1]])", &why));
  EXPECT_TRUE(store_->validate(R"({"checksum": true})", &why));
  EXPECT_TRUE(store_->validate(R"({"statements": ["SELECT 1"], "transaction": false})", &why));
  EXPECT_FALSE(store_->validate("not json", &why));
  EXPECT_FALSE(store_->validate("[]", &why));
  EXPECT_EQ(why, "the command has no statements");
  EXPECT_FALSE(store_->validate("[[1, 2]]", &why));
  // What the authorizer refuses at apply is refused by its text first.
  for (const char* refused : {"PRAGMA journal_mode=DELETE", "attach 'x.db' as x", "BEGIN",
                              "SELECT 1; COMMIT", "INSERT INTO t VALUES (total_changes())",
                              "SELECT sqlite_version()", "SELECT load_extension('x')"}) {
    EXPECT_FALSE(store_->validate(json::array({refused}).dump(), &why)) << refused;
  }
  EXPECT_NE(why.find("load_extension"), std::string::npos) << why;
  for (const char* fine : {"SELECT 'pragma begin total_changes()'", "CREATE TABLE \"end\" (a)",
                           "INSERT INTO t (v) VALUES ('BEGIN')", "SELECT 1 -- PRAGMA x",
                           "VALUES(1) UNION SELECT begin FROM t"}) {
    EXPECT_TRUE(store_->validate(json::array({fine}).dump(), &why)) << fine << ": " << why;
  }
  EXPECT_EQ(store_->last_applied(), 0u);
}

}  // namespace
}  // namespace synod::sql

namespace synod::sql {
namespace {

TEST(SqlStoreLimits, ARunawayStatementIsStoppedTheSameWayEverywhere) {
  TempDir a_dir, b_dir;
  std::string error;
  auto a = SqlStore::open({.data_dir = a_dir.path(), .max_statement_steps = 100'000}, &error);
  auto b = SqlStore::open({.data_dir = b_dir.path(), .max_statement_steps = 100'000}, &error);
  ASSERT_TRUE(a && b) << error;
  const json forever = json::array(
      {"CREATE TABLE t (x)",
       "INSERT INTO t WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
       "SELECT x FROM c"});
  json ra = SqlStoreTest::exec_on(*a, forever, at(1));
  json rb = SqlStoreTest::exec_on(*b, forever, at(1));
  EXPECT_EQ(ra, rb);
  EXPECT_EQ(ra["rolled_back"], true);
  EXPECT_NE(ra["results"][1]["error"].get<std::string>().find("max_statement_steps"),
            std::string::npos)
      << ra;
  EXPECT_EQ(a->last_applied(), 1u);
  // The budget is per statement: the next command runs normally.
  json ok = SqlStoreTest::exec_on(*a, json::array({"CREATE TABLE u (x)", "INSERT INTO u VALUES (1)"}),
                                  at(2));
  EXPECT_FALSE(ok.contains("rolled_back")) << ok;

  // In a batch: SQLite's interrupt rolls back the whole transaction, but the
  // other commands of the batch still apply, and a statement-by-statement
  // command keeps its other statements.
  const std::string runaway =
      "INSERT INTO u WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
      "SELECT x FROM c";
  const std::vector<std::string> cmds = {
      json::array({"INSERT INTO u VALUES (2)"}).dump(),
      json{{"statements", {"INSERT INTO u VALUES (3)", runaway, "INSERT INTO u VALUES (4)"}},
           {"transaction", false}}
          .dump(),
      json::array({runaway}).dump(),
      json::array({"INSERT INTO u VALUES (5)"}).dump()};
  const std::vector<std::string_view> views(cmds.begin(), cmds.end());
  const std::vector<synod_apply_context> ctxs = {at(3), at(4), at(5), at(6)};
  std::vector<std::string> results;
  ASSERT_TRUE(a->apply_batch(4, ctxs.data(), views.data(), &results, &error)) << error;
  ASSERT_EQ(results.size(), 4u);
  EXPECT_FALSE(json::parse(results[0]).contains("rolled_back")) << results[0];
  const json second = json::parse(results[1]);
  EXPECT_EQ(second["results"][0]["rows_affected"], 1) << second;
  EXPECT_TRUE(second["results"][1].contains("error")) << second;
  EXPECT_EQ(second["results"][2]["rows_affected"], 1) << second;
  EXPECT_EQ(json::parse(results[2])["rolled_back"], true) << results[2];
  EXPECT_EQ(a->last_applied(), 6u);
  std::string rows;
  ASSERT_TRUE(a->query(R"(["SELECT x FROM u ORDER BY x"])", &rows, &error)) << error;
  EXPECT_EQ(json::parse(rows)["results"][0]["values"], json::parse("[[1],[2],[3],[4],[5]]"));
  // The same commands one by one on the other store: the same results.
  SqlStoreTest::exec_on(*b, json::array({"CREATE TABLE u (x)", "INSERT INTO u VALUES (1)"}), at(2));
  for (size_t i = 0; i < 4; ++i) {
    std::string result;
    ASSERT_TRUE(b->apply(ctxs[i], cmds[i], &result, &error)) << error;
    EXPECT_EQ(json::parse(result), json::parse(results[i])) << i;
  }
}

}  // namespace
}  // namespace synod::sql
