// MysqlStore against a real MariaDB server: CTest starts it (mysql_server_start,
// scripts/mariadb-server) and passes its address in SYNOD_MYSQL_ADDR.
#include "backends/mysql/mysql_store.h"

#include <gtest/gtest.h>
#include <mysql.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "synod/backend.h"

namespace synod::mysql {
namespace {

using nlohmann::json;

struct Addr {
  std::string host = "127.0.0.1";
  unsigned port = 13306;
};

Addr addr() {
  Addr a;
  if (const char* env = std::getenv("SYNOD_MYSQL_ADDR")) {
    const std::string s = env;
    const size_t colon = s.rfind(':');
    a.host = s.substr(0, colon);
    a.port = static_cast<unsigned>(std::stoul(s.substr(colon + 1)));
  }
  return a;
}

// A side connection: what another client (or an operator) does behind the
// backend's back.
class Side {
 public:
  Side() {
    m_ = mysql_init(nullptr);
    const Addr a = addr();
    if (mysql_real_connect(m_, a.host.c_str(), "root", "", nullptr, a.port, nullptr, 0) ==
        nullptr) {
      ADD_FAILURE() << "side connection: " << mysql_error(m_);
    }
  }
  ~Side() { mysql_close(m_); }
  void exec(const std::string& sql) {
    ASSERT_EQ(mysql_query(m_, sql.c_str()), 0) << sql << ": " << mysql_error(m_);
    if (MYSQL_RES* r = mysql_store_result(m_)) mysql_free_result(r);
  }
  // The first column of every row.
  std::vector<std::string> column(const std::string& sql) {
    std::vector<std::string> out;
    EXPECT_EQ(mysql_query(m_, sql.c_str()), 0) << sql << ": " << mysql_error(m_);
    MYSQL_RES* r = mysql_store_result(m_);
    if (r == nullptr) return out;
    while (MYSQL_ROW row = mysql_fetch_row(r)) out.push_back(row[0] != nullptr ? row[0] : "NULL");
    mysql_free_result(r);
    return out;
  }
  // Kills the backend's connections to database db.
  void kill_connections(const std::string& db) {
    for (const std::string& id :
         column("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = '" + db + "'")) {
      exec("KILL CONNECTION " + id);
    }
  }

 private:
  MYSQL* m_ = nullptr;
};

MysqlStore::Config config(const std::string& db) {
  MysqlStore::Config c;
  c.host = addr().host;
  c.port = addr().port;
  c.database = db;
  return c;
}

std::unique_ptr<MysqlStore> fresh(const std::string& db) {
  Side().exec("DROP DATABASE IF EXISTS `" + db + "`");
  std::string error;
  auto s = MysqlStore::open(config(db), &error);
  EXPECT_TRUE(s) << error;
  return s;
}

synod_apply_context ctx(uint64_t slot, int64_t ts = 1700000000123, uint64_t seed = 42) {
  return synod_apply_context{slot, ts, seed};
}

std::string apply(MysqlStore& s, uint64_t slot, const std::string& cmd,
                  int64_t ts = 1700000000123, uint64_t seed = 42) {
  std::string result, error;
  EXPECT_TRUE(s.apply(ctx(slot, ts, seed), cmd, &result, &error)) << error;
  return result;
}

std::string query(MysqlStore& s, const std::string& q) {
  std::string result, error;
  EXPECT_TRUE(s.query(q, &result, &error)) << error;
  return result;
}

TEST(MysqlStore, CreateInsertSelectWithParameters) {
  auto s = fresh("synod_t_basic");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->last_applied(), 0u);
  EXPECT_EQ(apply(*s, 1,
                  R"j(["CREATE TABLE foo (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, name TEXT, )j"
                  R"j(score DOUBLE, price DECIMAL(10,2), data BLOB, born DATETIME)"])j"),
            R"j({"results":[{"last_insert_id":0,"rows_affected":0}]})j");
  EXPECT_EQ(apply(*s, 2,
                  R"j([["INSERT INTO foo(name, score) VALUES(?, ?)", "fiona", 1.5],)j"
                  R"j( ["INSERT INTO foo(name, price) VALUES(:name, :price)", {"name": "it's \"x\"", "price": 3}],)j"
                  R"j( ["INSERT INTO foo(name, data, born) VALUES(?, x'00ff', '2024-01-02 03:04:05')", null]])j"),
            R"j({"results":[{"last_insert_id":1,"rows_affected":1},{"last_insert_id":2,"rows_affected":1},)j"
            R"j({"last_insert_id":3,"rows_affected":1}]})j");
  EXPECT_EQ(s->last_applied(), 2u);
  EXPECT_EQ(query(*s, R"j(["SELECT id, name, score, price, data, born FROM foo ORDER BY id"])j"),
            R"j({"results":[{"columns":["id","name","score","price","data","born"],)j"
            R"j("types":["int","text","double","decimal","blob","datetime"],"values":[)j"
            R"j([1,"fiona",1.5,null,null,null],[2,"it's \"x\"",null,"3.00",null,null],)j"
            R"j([3,null,null,null,"AP8=","2024-01-02 03:04:05"]]}]})j");
  // A write is not a read.
  EXPECT_EQ(query(*s, R"j(["INSERT INTO foo(name) VALUES('x')"])j"),
            R"j({"results":[{"error":"not a read: writes go through the log (execute, not query)"}]})j");
  // The table is InnoDB.
  EXPECT_EQ(Side().column("SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                          "'synod_t_basic' AND TABLE_NAME = 'foo'"),
            std::vector<std::string>{"InnoDB"});
}

TEST(MysqlStore, MultiStatementStringsAndRowsMatched) {
  auto s = fresh("synod_t_multi");
  ASSERT_TRUE(s);
  apply(*s, 1, R"j(["CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)"])j");
  EXPECT_EQ(apply(*s, 2, R"j(["INSERT INTO t(v) VALUES (1); INSERT INTO t(v) VALUES (1), (2)"])j"),
            R"j({"results":[{"last_insert_id":2,"rows_affected":3}]})j");
  // UPDATE counts rows matched, not rows changed (CLIENT_FOUND_ROWS), as SQLite
  // does; last_insert_id carries over within a command, as in SQLite.
  EXPECT_EQ(apply(*s, 3, R"j(["INSERT INTO t(v) VALUES (9)", "UPDATE t SET v = 1 WHERE v = 1"])j"),
            R"j({"results":[{"last_insert_id":4,"rows_affected":1},{"last_insert_id":4,"rows_affected":2}]})j");
  // ... and starts from 0 in every command; LAST_INSERT_ID() too.
  EXPECT_EQ(apply(*s, 4, R"j(["UPDATE t SET v = LAST_INSERT_ID() WHERE id = 4"])j"),
            R"j({"results":[{"last_insert_id":0,"rows_affected":1}]})j");
  EXPECT_EQ(query(*s, R"j(["SELECT v FROM t WHERE id = 4"])j"),
            R"j({"results":[{"columns":["v"],"types":["int"],"values":[[0]]}]})j");
}

TEST(MysqlStore, SqlErrorRollsBackTheCommandAndThePositionAdvances) {
  auto s = fresh("synod_t_error");
  ASSERT_TRUE(s);
  apply(*s, 1, R"j(["CREATE TABLE t (id INT PRIMARY KEY)"])j");
  const std::string r = apply(*s, 2, R"j(["INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (1)"])j");
  const json j = json::parse(r);
  ASSERT_EQ(j["results"].size(), 2u) << r;
  EXPECT_EQ(j["results"][0], json({{"last_insert_id", 0}, {"rows_affected", 1}}));
  EXPECT_NE(j["results"][1]["error"].get<std::string>().find("Duplicate entry"), std::string::npos);
  EXPECT_EQ(j["rolled_back"], true);
  EXPECT_EQ(s->last_applied(), 2u);
  EXPECT_EQ(query(*s, R"j(["SELECT COUNT(*) FROM t"])j"),
            R"j({"results":[{"columns":["COUNT(*)"],"types":["bigint"],"values":[[0]]}]})j");
  // One statement runs without a savepoint: a failing multi-row INSERT leaves no row.
  EXPECT_NE(apply(*s, 3, R"j(["INSERT INTO t VALUES (5), (6), (5)"])j").find("Duplicate entry"),
            std::string::npos);
  EXPECT_EQ(query(*s, R"j(["SELECT COUNT(*) FROM t"])j"),
            R"j({"results":[{"columns":["COUNT(*)"],"types":["bigint"],"values":[[0]]}]})j");
  // Not JSON: a result too.
  EXPECT_EQ(apply(*s, 4, "nope"),
            R"j({"results":[{"error":"the command is not a JSON array of statements"}],"rolled_back":true})j");
  EXPECT_EQ(s->last_applied(), 4u);
}

TEST(MysqlStore, TransactionFalseKeepsTheStatementsThatWorked) {
  auto s = fresh("synod_t_notx");
  ASSERT_TRUE(s);
  apply(*s, 1, R"j(["CREATE TABLE t (id INT PRIMARY KEY)"])j");
  const json j = json::parse(apply(
      *s, 2,
      R"j({"statements": ["INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (2)"], "transaction": false})j"));
  ASSERT_EQ(j["results"].size(), 3u) << j;
  EXPECT_TRUE(j["results"][1].contains("error"));
  EXPECT_FALSE(j.contains("rolled_back"));
  EXPECT_EQ(query(*s, R"j(["SELECT id FROM t ORDER BY id"])j"),
            R"j({"results":[{"columns":["id"],"types":["int"],"values":[[1],[2]]}]})j");
}

TEST(MysqlStore, BatchesPositionsAndReopen) {
  auto s = fresh("synod_t_batch");
  ASSERT_TRUE(s);
  apply(*s, 1, R"j(["CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)"])j");
  std::vector<synod_apply_context> ctxs = {ctx(3), ctx(5), ctx(9)};
  std::vector<std::string> cmds = {R"j(["INSERT INTO t(v) VALUES (1)"])j",
                                   R"j(["INSERT INTO t(v) VALUES (2)"])j",
                                   R"j(["INSERT INTO t(v) VALUES (3)"])j"};
  std::vector<std::string_view> views(cmds.begin(), cmds.end());
  std::vector<std::string> results;
  std::string error;
  ASSERT_TRUE(s->apply_batch(3, ctxs.data(), views.data(), &results, &error)) << error;
  EXPECT_EQ(results[2], R"j({"results":[{"last_insert_id":3,"rows_affected":1}]})j");
  EXPECT_EQ(s->last_applied(), 9u);
  // Already applied: a no-op that says so.
  EXPECT_EQ(apply(*s, 5, R"j(["INSERT INTO t(v) VALUES (99)"])j"),
            R"j({"error":"position 5 was already applied (last applied: 9); not applied again"})j");
  // A batch that includes applied positions applies only the new ones.
  ctxs = {ctx(9), ctx(10)};
  ASSERT_TRUE(s->apply_batch(2, ctxs.data(), views.data(), &results, &error)) << error;
  EXPECT_NE(results[0].find("already applied"), std::string::npos);
  s.reset();
  auto again = MysqlStore::open(config("synod_t_batch"), &error);
  ASSERT_TRUE(again) << error;
  EXPECT_EQ(again->last_applied(), 10u);
  EXPECT_EQ(query(*again, R"j(["SELECT v FROM t ORDER BY id"])j"),
            R"j({"results":[{"columns":["v"],"types":["int"],"values":[[1],[2],[3],[2]]}]})j");
  // All or nothing: a batch whose server connection dies applies nothing.
}

TEST(MysqlStore, DeterministicAcrossTwoDatabases) {
  auto a = fresh("synod_t_det_a");
  auto b = fresh("synod_t_det_b");
  ASSERT_TRUE(a && b);
  const std::vector<std::string> cmds = {
      R"j(["CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6), )j"
      R"j(r DOUBLE, u BIGINT, d DATE, note VARCHAR(40))"])j",
      R"j([["INSERT INTO t (r, u, d, note) VALUES (RAND(), UNIX_TIMESTAMP(), CURDATE(), ?)", "one"]])j",
      R"j(["INSERT INTO t (r, u, d) VALUES (RAND(), FLOOR(RAND() * 1000000), UTC_DATE())", )j"
      R"j("INSERT INTO t (r, note) SELECT RAND(), CONCAT('copy ', id) FROM t ORDER BY id"])j",
      R"j(["UPDATE t SET note = CONCAT(note, ' ', DATE_FORMAT(NOW(3), '%Y-%m-%d %H:%i:%s.%f'))"])j",
      R"j({"checksum": true})j"};
  std::string sum_a, sum_b;
  for (size_t i = 0; i < cmds.size(); ++i) {
    const int64_t ts = 1700000000123 + static_cast<int64_t>(i) * 1001;
    const std::string ra = apply(*a, i + 1, cmds[i], ts, 1000 + i);
    const std::string rb = apply(*b, i + 1, cmds[i], ts, 1000 + i);
    EXPECT_EQ(ra, rb) << cmds[i];
    if (i + 1 == cmds.size()) {
      sum_a = json::parse(ra)["checksum"];
      sum_b = json::parse(rb)["checksum"];
    }
  }
  const std::string q = R"j(["SELECT * FROM t ORDER BY id"])j";
  EXPECT_EQ(query(*a, q), query(*b, q));
  EXPECT_EQ(sum_a, sum_b);
  EXPECT_EQ(sum_a.size(), 64u);
  // The command's time, to the millisecond.
  EXPECT_EQ(query(*a, R"j(["SELECT at, u, d FROM t WHERE id = 1"])j"),
            R"j({"results":[{"columns":["at","u","d"],"types":["datetime","bigint","date"],)j"
            R"j("values":[["2023-11-14 22:13:21.124000",1700000001,"2023-11-14"]]}]})j");
  // checksum_at: the stored checksum, or an error.
  EXPECT_EQ(query(*a, R"j({"checksum_at": 5})j"),
            json({{"position", 5}, {"checksum", sum_a}}).dump());
  EXPECT_NE(query(*a, R"j({"checksum_at": 4})j").find("no checksum at position 4"),
            std::string::npos);
  EXPECT_NE(query(*a, R"j({"checksum_at": 77})j").find("not applied yet"), std::string::npos);

  // Modified behind the backend's back: the next checksum differs.
  Side().exec("UPDATE synod_t_det_b.t SET note = 'tampered' WHERE id = 1");
  const std::string c = R"j({"checksum": true})j";
  EXPECT_NE(apply(*a, 6, c), apply(*b, 6, c));
}

TEST(MysqlStore, RefusedFunctionsAreNamedInValidateAndApply) {
  auto s = fresh("synod_t_refuse");
  ASSERT_TRUE(s);
  apply(*s, 1, R"j(["CREATE TABLE t (id INT PRIMARY KEY, v TEXT)"])j");
  uint64_t slot = 2;
  for (const std::string fn : {"UUID()", "UUID_SHORT()", "SYSDATE()", "CONNECTION_ID()",
                               "DATABASE()", "VERSION()", "USER()", "SLEEP()", "GET_LOCK()",
                               "LOAD_FILE()", "FOUND_ROWS()"}) {
    const std::string name = fn.substr(0, fn.size() - 2);
    const std::string cmd = R"j(["INSERT INTO t VALUES (1, )j" + name + R"j(('x'))"])j";
    std::string why;
    EXPECT_FALSE(s->validate(cmd, &why)) << cmd;
    EXPECT_NE(why.find(fn), std::string::npos) << why;
    const json r = json::parse(apply(*s, slot, cmd));
    EXPECT_EQ(r["rolled_back"], true) << r;
    EXPECT_NE(r["results"][0]["error"].get<std::string>().find(fn), std::string::npos) << r;
    EXPECT_EQ(s->last_applied(), slot++);
  }
  for (const std::string cmd :
       {R"j(["SET @x = 1"])j", R"j(["INSERT INTO t VALUES (@x, 'a')"])j", R"j(["BEGIN"])j",
        R"j(["INSERT INTO t VALUES (1, 'a')", "COMMIT"])j", R"j(["SELECT * FROM _synod_meta"])j",
        R"j(["CREATE TABLE m (a INT) ENGINE=MyISAM"])j", R"j(["INSERT INTO mysql.user VALUES (1)"])j",
        R"j(["USE mysql"])j", R"j(["CREATE TABLE x (a INT PRIMARY KEY)", "INSERT INTO x VALUES (1)"])j"}) {
    std::string why;
    EXPECT_FALSE(s->validate(cmd, &why)) << cmd;
    const json r = json::parse(apply(*s, slot++, cmd));
    EXPECT_EQ(r["results"][0]["error"], why) << cmd;
  }
  EXPECT_EQ(query(*s, R"j(["SELECT COUNT(*) FROM t"])j"),
            R"j({"results":[{"columns":["COUNT(*)"],"types":["bigint"],"values":[[0]]}]})j");
  std::string why;
  EXPECT_TRUE(s->validate(R"j([["INSERT INTO t VALUES (?, NOW())", 1]])j", &why)) << why;
}

TEST(MysqlStore, SchemaCommandLandedButNotRecordedIsNotAppliedTwice) {
  auto s = fresh("synod_t_ddl");
  ASSERT_TRUE(s);
  apply(*s, 1, R"j(["CREATE TABLE t (id INT PRIMARY KEY)"])j");
  apply(*s, 2, R"j(["ALTER TABLE t ADD COLUMN c INT"])j");
  s.reset();
  // As if the connection died after the ALTER but before the position: the
  // pending marker holds the schema digest from before it (any other value).
  Side side;
  side.exec("UPDATE synod_t_ddl._synod_meta SET value = 1 WHERE name = 'applied'");
  side.exec("UPDATE synod_t_ddl._synod_meta SET value = 2, text = 'before' WHERE name = 'ddl_pending'");
  std::string error;
  s = MysqlStore::open(config("synod_t_ddl"), &error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->last_applied(), 2u);
  EXPECT_NE(apply(*s, 2, R"j(["ALTER TABLE t ADD COLUMN c INT"])j").find("already applied"),
            std::string::npos);
}

TEST(MysqlStore, SchemaCommandInterruptedRunsAgain) {
  auto s = fresh("synod_t_ddl2");
  ASSERT_TRUE(s);
  apply(*s, 1, R"j(["CREATE TABLE t (id INT PRIMARY KEY)"])j");
  // A side transaction holds t's metadata lock: the ALTER waits; then its
  // connection is killed, so it never runs.
  Side blocker;
  blocker.exec("START TRANSACTION");
  blocker.exec("SELECT * FROM synod_t_ddl2.t");
  std::string result, error;
  bool ok = true;
  std::thread t([&] {
    ok = s->apply(ctx(2), R"j(["ALTER TABLE t ADD COLUMN c INT"])j", &result, &error);
  });
  Side side;
  for (int i = 0; i < 200; ++i) {
    if (!side.column("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = 'synod_t_ddl2' "
                     "AND INFO LIKE 'ALTER%'")
             .empty()) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  side.kill_connections("synod_t_ddl2");
  t.join();
  EXPECT_FALSE(ok);
  EXPECT_NE(error.find("lost"), std::string::npos) << error;
  EXPECT_NE(error.find("reconnecting"), std::string::npos) << error;
  blocker.exec("COMMIT");
  EXPECT_EQ(s->last_applied(), 1u);
  EXPECT_EQ(apply(*s, 2, R"j(["ALTER TABLE t ADD COLUMN c INT"])j"),
            R"j({"results":[{"last_insert_id":0,"rows_affected":0}]})j");
  EXPECT_EQ(s->last_applied(), 2u);
  EXPECT_EQ(side.column("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
                        "'synod_t_ddl2' AND TABLE_NAME = 't'"),
            std::vector<std::string>{"2"});
}

TEST(MysqlStore, KilledConnectionFailsThenReconnectsWithoutApplyingTwice) {
  auto s = fresh("synod_t_kill");
  ASSERT_TRUE(s);
  auto twin = fresh("synod_t_kill_twin");  // the same log without trouble
  ASSERT_TRUE(twin);
  const std::string create = R"j(["CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)"])j";
  apply(*s, 1, create);
  apply(*twin, 1, create);
  const std::string ins = R"j(["INSERT INTO t(v) VALUES (1)"])j";
  apply(*s, 2, ins);
  apply(*twin, 2, ins);
  EXPECT_EQ(query(*s, R"j(["SELECT 1"])j"), query(*twin, R"j(["SELECT 1"])j"));
  // A transaction lost with the connection moved the counter on (InnoDB does
  // not roll AUTO_INCREMENT back): simulated from the side.
  Side side;
  side.exec("START TRANSACTION");
  side.exec("INSERT INTO synod_t_kill.t(v) VALUES (7), (8)");
  side.exec("ROLLBACK");
  side.kill_connections("synod_t_kill");
  std::string result, error;
  EXPECT_FALSE(s->apply(ctx(3), ins, &result, &error));
  EXPECT_NE(error.find("connection to mariadb at " + addr().host + ":" +
                       std::to_string(addr().port) + " lost"),
            std::string::npos)
      << error;
  EXPECT_EQ(s->last_applied(), 2u);
  // The query connection was killed too: it fails once, then reconnects.
  std::string qr;
  EXPECT_FALSE(s->query(R"j(["SELECT 1"])j", &qr, &error));
  EXPECT_EQ(apply(*s, 3, ins), apply(*twin, 3, ins));
  EXPECT_EQ(s->last_applied(), 3u);
  const std::string q = R"j(["SELECT id, v FROM t ORDER BY id"])j";
  EXPECT_EQ(query(*s, q), query(*twin, q));
  EXPECT_EQ(query(*s, q),
            R"j({"results":[{"columns":["id","v"],"types":["int","int"],"values":[[1,1],[2,1]]}]})j");
}

TEST(MysqlStore, ServerRestartFailsThenResumes) {
  auto s = fresh("synod_t_restart");
  ASSERT_TRUE(s);
  apply(*s, 1, R"j(["CREATE TABLE t (id INT PRIMARY KEY)"])j");
  apply(*s, 2, R"j(["INSERT INTO t VALUES (1)"])j");
  const std::string script = SYNOD_MARIADB_SCRIPT;
  const std::string dir = SYNOD_MARIADB_DIR;
  ASSERT_EQ(std::system((script + " stop " + dir + " >/dev/null").c_str()), 0);
  std::string result, error;
  EXPECT_FALSE(s->apply(ctx(3), R"j(["INSERT INTO t VALUES (2)"])j", &result, &error));
  EXPECT_NE(error.find("lost"), std::string::npos) << error;
  EXPECT_FALSE(s->apply(ctx(3), R"j(["INSERT INTO t VALUES (2)"])j", &result, &error));
  EXPECT_NE(error.find("cannot connect"), std::string::npos) << error;
  EXPECT_FALSE(s->sync(&error));
  ASSERT_EQ(std::system((script + " start " + dir + " " + std::to_string(addr().port) +
                         " >/dev/null")
                            .c_str()),
            0);
  EXPECT_EQ(apply(*s, 3, R"j(["INSERT INTO t VALUES (2)"])j"),
            R"j({"results":[{"last_insert_id":0,"rows_affected":1}]})j");
  EXPECT_TRUE(s->sync(&error)) << error;
  EXPECT_EQ(query(*s, R"j(["SELECT id FROM t ORDER BY id"])j"),
            R"j({"results":[{"columns":["id"],"types":["int"],"values":[[1],[2]]}]})j");
}

TEST(MysqlStore, OpenRefusesBadOptionsServersAndForeignDatabases) {
  const synod_backend_api* api = synod_backend_entry();
  ASSERT_STREQ(api->name, "mysql");
  auto open = [&](std::vector<const char*> keys, std::vector<const char*> values) {
    char* error = nullptr;
    void* h = api->open(keys.data(), values.data(), keys.size(), &error);
    std::string why = error != nullptr ? error : "";
    api->free_buffer(error);
    if (h != nullptr) api->close(h);
    return h != nullptr ? std::string("opened") : why;
  };
  const std::string port = std::to_string(addr().port);
  EXPECT_NE(open({"database", "colour"}, {"x", "red"}).find("unknown option 'colour'"),
            std::string::npos);
  EXPECT_NE(open({}, {}).find("database is required"), std::string::npos);
  EXPECT_NE(open({"database", "port"}, {"x", "70000"}).find("port"), std::string::npos);
  EXPECT_NE(open({"database", "port", "password"}, {"synod_t_open", port.c_str(), "wrong"})
                .find("cannot connect"),
            std::string::npos);
  EXPECT_NE(open({"database", "port"}, {"synod_t_open", "1"}).find("cannot connect"),
            std::string::npos);
  Side side;
  side.exec("DROP DATABASE IF EXISTS synod_t_open");
  EXPECT_EQ(open({"database", "port"}, {"synod_t_open", port.c_str()}), "opened");
  side.exec("DROP DATABASE IF EXISTS synod_t_foreign");
  side.exec("CREATE DATABASE synod_t_foreign CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci");
  side.exec("CREATE TABLE synod_t_foreign.x (a INT)");
  EXPECT_NE(open({"database", "port"}, {"synod_t_foreign", port.c_str()}).find("not a Synod"),
            std::string::npos);
}

}  // namespace
}  // namespace synod::mysql
