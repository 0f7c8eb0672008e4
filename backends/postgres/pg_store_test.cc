// PgStore against a real PostgreSQL 15 server that CTest starts
// (scripts/postgres-server, fixture postgres_server): SYNOD_PG_ADDR
// (HOST:PORT) says where; SYNOD_PG_SCRIPT and SYNOD_PG_DIR (compiled in) let a
// test stop, kill and restart it. Every test works in databases of its own.
#include "backends/postgres/pg_store.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "backend/host.h"

namespace synod::pg {
namespace {

using nlohmann::json;

// SYNOD_PG_ADDR=HOST:PORT, set by CTest.
std::string env(const char* name) {
  const char* v = std::getenv("SYNOD_PG_ADDR");
  const std::string addr = v != nullptr ? v : "";
  const size_t colon = addr.rfind(':');
  if (colon == std::string::npos) return "";
  return std::string_view(name) == "SYNOD_PG_HOST" ? addr.substr(0, colon) : addr.substr(colon + 1);
}

synod_apply_context at(uint64_t position, int64_t ms = 1700000000000, uint64_t seed = 7) {
  return synod_apply_context{position, ms, seed};
}

// A side connection, as somebody else on the same server.
class Side {
 public:
  explicit Side(const std::string& db) {
    const std::string info = "host=" + env("SYNOD_PG_HOST") + " port=" + env("SYNOD_PG_PORT") +
                             " user=postgres dbname=" + db;
    c_ = PQconnectdb(info.c_str());
    EXPECT_EQ(PQstatus(c_), CONNECTION_OK) << PQerrorMessage(c_);
    PQsetNoticeProcessor(c_, [](void*, const char*) {}, nullptr);
  }
  ~Side() { PQfinish(c_); }
  std::string exec(const std::string& sql) {
    PGresult* r = PQexec(c_, sql.c_str());
    const ExecStatusType s = PQresultStatus(r);
    EXPECT_TRUE(s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) << sql << ": " << PQerrorMessage(c_);
    std::string v = s == PGRES_TUPLES_OK && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
    PQclear(r);
    return v;
  }

 private:
  PGconn* c_ = nullptr;
};

void drop_database(const std::string& db) {
  Side admin("postgres");
  admin.exec("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
}

void server(const std::string& action) {
  std::string cmd = std::string(SYNOD_PG_SCRIPT) + " " + action + " " + SYNOD_PG_DIR;
  if (action == "start") cmd += " " + env("SYNOD_PG_PORT");
  cmd += " >/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

PgStore::Config config(const std::string& db) {
  PgStore::Config c;
  c.host = env("SYNOD_PG_HOST");
  c.port = env("SYNOD_PG_PORT");
  c.database = db;
  return c;
}

std::unique_ptr<PgStore> open_store(const std::string& db) {
  std::string error;
  auto s = PgStore::open(config(db), &error);
  EXPECT_NE(s, nullptr) << error;
  return s;
}

json exec_on(PgStore& s, const json& command, synod_apply_context ctx) {
  std::string result, error;
  EXPECT_TRUE(s.apply(ctx, command.dump(), &result, &error)) << error;
  return result.empty() ? json() : json::parse(result);
}

json query_on(PgStore& s, const json& request) {
  std::string result, error;
  EXPECT_TRUE(s.query(request.dump(), &result, &error)) << error;
  return result.empty() ? json() : json::parse(result);
}

// The test's own database name(s): synod_t_<test>[_suffix].
std::string db_name(const std::string& suffix = "") {
  std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return "synod_t_" + name.substr(0, 40) + suffix;
}

class PgStoreTest : public ::testing::Test {
 public:
  void SetUp() override {
    if (env("SYNOD_PG_PORT").empty()) GTEST_SKIP() << "run through ctest (no SYNOD_PG_PORT)";
    db_ = db_name();
    drop_database(db_);
    store_ = open_store(db_);
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    store_.reset();
    if (!db_.empty()) drop_database(db_);
  }
  json exec(const json& command) { return exec_on(*store_, command, at(store_->last_applied() + 1)); }
  json query(const json& request) { return query_on(*store_, request); }
  json one(const std::string& sql) { return query(json::array({sql}))["results"][0]["values"]; }

  std::string db_;
  std::unique_ptr<PgStore> store_;
};

TEST_F(PgStoreTest, ExecuteAndQueryInRqlitesShapes) {
  json r = exec(json::array(
      {"CREATE TABLE foo (id serial PRIMARY KEY, name text, score double precision, "
       "data bytea, n numeric, ok boolean, big bigint)",
       json::array({"INSERT INTO foo(name, score, ok) VALUES(?, ?, ?)", "fiona", 2.5, true}),
       json::array({"INSERT INTO foo(name, big) VALUES(:name, :big::bigint) RETURNING id",
                    json{{"name", "declan"}, {"big", 9007199254740993LL}}}),
       "INSERT INTO foo(name, data, n) VALUES('blob', '\\x00ff10', 1.10); "
       "INSERT INTO foo(name) VALUES('x'), ('y') RETURNING id",
       json::array({"INSERT INTO foo(name, score) VALUES($1, $2)", "native", 0.1})}));
  ASSERT_EQ(r["results"].size(), 5u) << r;
  EXPECT_FALSE(r.contains("rolled_back")) << r;
  EXPECT_EQ(r["results"][0], (json{{"last_insert_id", 0}, {"rows_affected", 0}}));
  EXPECT_EQ(r["results"][1], (json{{"last_insert_id", 0}, {"rows_affected", 1}}));  // no RETURNING
  EXPECT_EQ(r["results"][2], (json{{"last_insert_id", 2}, {"rows_affected", 1}}));
  EXPECT_EQ(r["results"][3], (json{{"last_insert_id", 5}, {"rows_affected", 3}}));
  EXPECT_EQ(r["results"][4]["rows_affected"], 1);
  EXPECT_EQ(store_->last_applied(), 1u);

  json q = query(json::array(
      {"SELECT id, name, score, data, n, ok, big FROM foo ORDER BY id",
       json::array({"SELECT count(*) FROM foo WHERE name = ?", "fiona"}),
       json::array({"SELECT name FROM foo WHERE id = :id", json{{"id", 2}}})}));
  const json& rows = q["results"][0];
  EXPECT_EQ(rows["columns"], json::array({"id", "name", "score", "data", "n", "ok", "big"}));
  EXPECT_EQ(rows["types"], json::array({"integer", "text", "double precision", "bytea", "numeric",
                                        "boolean", "bigint"}));
  ASSERT_EQ(rows["values"].size(), 6u) << q;
  EXPECT_EQ(rows["values"][0], json::array({1, "fiona", 2.5, nullptr, nullptr, true, nullptr}));
  EXPECT_EQ(rows["values"][1][6], 9007199254740993LL);  // exact, beyond a double
  EXPECT_EQ(rows["values"][2][3], "AP8Q");              // base64 of 00 ff 10
  EXPECT_EQ(rows["values"][2][4], "1.10");              // numeric: exact, as text
  EXPECT_EQ(rows["values"][5][2], 0.1);                 // floats round-trip exactly
  EXPECT_EQ(q["results"][1]["values"][0][0], 1);
  EXPECT_EQ(q["results"][1]["types"][0], "bigint");
  EXPECT_EQ(q["results"][2]["values"][0][0], "declan");
}

TEST_F(PgStoreTest, ParametersOfEveryKindCompareWithTheirColumns) {
  exec(json::array({"CREATE TABLE t (id integer PRIMARY KEY, b boolean, f real, s text)",
                    json::array({"INSERT INTO t VALUES (?, ?, ?, ?)", 7, false, 1.5, nullptr})}));
  EXPECT_EQ(query(json::array({json::array({"SELECT s IS NULL, b FROM t WHERE id = ? AND f = ?",
                                            7, 1.5})}))["results"][0]["values"],
            json::array({json::array({true, false})}));
  // :name next to a :: cast, and a named parameter used twice.
  EXPECT_EQ(query(json::array({json::array({"SELECT :v::int + :v", json{{"v", 20}}})}))
                ["results"][0]["values"][0][0],
            40);
  json bad = query(json::array({json::array({"SELECT ?", 1, 2})}));
  EXPECT_TRUE(bad["results"][0].contains("error")) << bad;
  bad = query(json::array({json::array({"SELECT 1; SELECT ?", 1})}));
  EXPECT_NE(bad["results"][0]["error"].get<std::string>().find("one statement per entry"),
            std::string::npos);
}

TEST_F(PgStoreTest, AFailingStatementRollsBackTheWholeCommand) {
  exec(json::array({"CREATE TABLE t (id serial PRIMARY KEY, v text UNIQUE)",
                    "INSERT INTO t(v) VALUES('a')"}));
  json r = exec(json::array({"INSERT INTO t(v) VALUES('b')", "INSERT INTO t(v) VALUES('a')",
                             "INSERT INTO t(v) VALUES('c')"}));
  EXPECT_EQ(r["rolled_back"], true);
  ASSERT_EQ(r["results"].size(), 2u) << r;
  EXPECT_NE(r["results"][1]["error"].get<std::string>().find("duplicate key"), std::string::npos)
      << r;
  EXPECT_EQ(store_->last_applied(), 2u);  // an SQL error is a result: the position advances
  EXPECT_EQ(one("SELECT count(*) FROM t")[0][0], 1);
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
  EXPECT_EQ(one("SELECT count(*) FROM t")[0][0], 1);
  EXPECT_EQ(store_->last_applied(), 7u);
}

TEST_F(PgStoreTest, StatementsOutsideATransactionFailAlone) {
  exec(json::array({"CREATE TABLE t (v integer UNIQUE)"}));
  json r = exec(json{{"statements", json::array({"INSERT INTO t VALUES(1)", "INSERT INTO t VALUES(1)",
                                                 "INSERT INTO t VALUES(2)"})},
                     {"transaction", false}});
  EXPECT_FALSE(r.contains("rolled_back")) << r;
  ASSERT_EQ(r["results"].size(), 3u);
  EXPECT_TRUE(r["results"][1].contains("error"));
  EXPECT_EQ(r["results"][2]["rows_affected"], 1);
  EXPECT_EQ(one("SELECT count(*) FROM t")[0][0], 2);
  r = exec(json{{"statements", json::array({"INSERT INTO t VALUES(3)", "INSERT INTO t VALUES(1)"})},
                {"transaction", true}});
  EXPECT_EQ(r["rolled_back"], true);
  EXPECT_EQ(one("SELECT count(*) FROM t")[0][0], 2);
}

TEST_F(PgStoreTest, QueriesAreReadOnly) {
  exec(json::array({"CREATE TABLE t (v integer)"}));
  for (const char* sql : {"INSERT INTO t VALUES (1)", "CREATE TABLE x (a int)",
                          "WITH w AS (INSERT INTO t VALUES (1) RETURNING v) SELECT * FROM w",
                          "SELECT nextval('s')", "SET search_path TO x", "BEGIN",
                          "SELECT * FROM _synod_meta", "SELECT set_config('a.b', 'c', false)"}) {
    json q = query(json::array({sql}));
    EXPECT_TRUE(q["results"][0].contains("error")) << sql << ": " << q;
  }
  EXPECT_EQ(one("SELECT count(*) FROM t")[0][0], 0);
  // Catalogs may be read.
  EXPECT_EQ(one("SELECT count(*) > 0 FROM pg_catalog.pg_class")[0][0], true);
}

// What would differ between nodes is refused by validate() (before the log)
// and by apply (if it got there anyway), with an error naming it.
TEST_F(PgStoreTest, RefusedInValidateAndApply) {
  exec(json::array({"CREATE TABLE t (id serial PRIMARY KEY, v text, ts timestamptz)"}));
  struct Case {
    const char* sql;
    const char* says;
  };
  for (const Case& c : {
           Case{"INSERT INTO t(ts) VALUES (clock_timestamp())", "clock_timestamp"},
           Case{"INSERT INTO t(v) VALUES (timeofday())", "timeofday"},
           Case{"INSERT INTO t(v) VALUES (gen_random_uuid()::text)", "gen_random_uuid"},
           Case{"INSERT INTO t(v) VALUES (uuid_generate_v4()::text)", "uuid_generate_v4"},
           Case{"INSERT INTO t(v) VALUES (pg_backend_pid()::text)", "pg_backend_pid"},
           Case{"SELECT pg_sleep(1)", "pg_sleep"},
           Case{"SELECT pg_advisory_lock(1)", "pg_advisory_lock"},
           Case{"INSERT INTO t(v) SELECT relname FROM pg_class", "pg_class"},
           Case{"INSERT INTO t(v) VALUES (inet_server_addr()::text)", "inet_server_addr"},
           Case{"INSERT INTO t(v) VALUES (version())", "version"},
           Case{"INSERT INTO t(v) VALUES (current_database())", "current_database"},
           Case{"INSERT INTO t(v) VALUES (txid_current()::text)", "txid_current"},
           Case{"INSERT INTO t(v) VALUES (current_user)", "CURRENT_USER"},
           Case{"INSERT INTO t(v) VALUES (current_setting('port'))", "current_setting"},
           Case{"INSERT INTO t(v) SELECT xmin::text FROM t", "XMIN"},
           Case{"INSERT INTO t(ts) VALUES ('now')", "'now'"},
           Case{"INSERT INTO t(v) VALUES (age(timestamptz '2020-01-01')::text)", "age()"},
           Case{"INSERT INTO t(v) SELECT table_name FROM information_schema.tables",
                "information_schema"},
           Case{"COPY t FROM '/etc/passwd'", "COPY"},
           Case{"LISTEN x", "LISTEN"},
           Case{"NOTIFY x", "NOTIFY"},
           Case{"BEGIN", "transaction control"},
           Case{"COMMIT", "transaction control"},
           Case{"SAVEPOINT s", "transaction control"},
           Case{"PREPARE TRANSACTION 'x'", "PREPARE"},
           Case{"SET TimeZone TO 'Europe/Paris'", "SET"},
           Case{"RESET ALL", "RESET"},
           Case{"CREATE DATABASE x", "CREATE DATABASE"},
           Case{"DROP DATABASE x", "DROP DATABASE"},
           Case{"CREATE EXTENSION pgcrypto", "CREATE EXTENSION"},
           Case{"CREATE ROLE r", "CREATE ROLE"},
           Case{"ALTER ROLE postgres NOSUPERUSER", "ALTER ROLE"},
           Case{"GRANT SELECT ON t TO PUBLIC", "GRANT"},
           Case{"VACUUM t", "VACUUM"},
           Case{"CREATE SCHEMA s", "CREATE SCHEMA"},
           Case{"CREATE TEMP TABLE x (a int)", "TEMP"},
           Case{"CREATE UNLOGGED TABLE x (a int)", "UNLOGGED"},
           Case{"SELECT 1 INTO TEMP x", "TEMP"},
           Case{"CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", "CREATE FUNCTION"},
           Case{"DO $$ BEGIN PERFORM 1; END $$", "DO"},
           Case{"DROP OWNED BY postgres", "DROP OWNED"},
           Case{"DROP SCHEMA public CASCADE", "DROP SCHEMA"},
           Case{"DROP FUNCTION now()", "DROP FUNCTION"},
           Case{"ALTER TABLE t SET UNLOGGED", "UNLOGGED"},
           Case{"UPDATE _synod_meta SET value = 0", "_synod_meta"},
           Case{"DROP TABLE \"_synod_checksums\"", "_synod_checksums"},
           Case{"INSERT INTO t(v) SELECT query_to_xml('select clock_timestamp()', true, true, "
                "'')::text",
                "query_to_xml"},
       }) {
    const json command = json::array({c.sql});
    std::string why;
    EXPECT_FALSE(store_->validate(command.dump(), &why)) << c.sql;
    EXPECT_NE(why.find(c.says), std::string::npos) << c.sql << ": " << why;
    json r = exec(command);
    ASSERT_TRUE(r["results"][0].contains("error")) << c.sql << ": " << r;
    EXPECT_NE(r["results"][0]["error"].get<std::string>().find(c.says), std::string::npos)
        << c.sql << ": " << r;
  }
  // A 'now' parameter is the server's clock as well.
  const json p = json::array({json::array({"INSERT INTO t(ts) VALUES (?)", "now"})});
  std::string why;
  EXPECT_FALSE(store_->validate(p.dump(), &why));
  EXPECT_TRUE(exec(p)["results"][0].contains("error"));
  // Accepted: the same words where they mean something else.
  for (const char* sql : {"INSERT INTO t(v) VALUES ('clock_timestamp() in a string')",
                          "INSERT INTO t(v) VALUES ($$pg_sleep(1)$$) /* pg_class */",
                          "INSERT INTO t(v) VALUES (\"current_user\"(1))" /* a missing fn */,
                          "CREATE TABLE temp (temp int, tablespace_name text)",
                          "INSERT INTO temp VALUES (1)", "UPDATE temp SET temp = 2"}) {
    EXPECT_TRUE(store_->validate(json::array({sql}).dump(), &why)) << sql << ": " << why;
  }
  EXPECT_TRUE(store_->validate(R"({"checksum": true})", &why)) << why;
  EXPECT_EQ(one("SELECT count(*) FROM t WHERE v LIKE 'clock%'")[0][0], 0);
}

TEST(PgStoreRewrite, TimeKeywordsBecomeTheCommandsTime) {
  std::string out, why;
  ASSERT_TRUE(PgStore::check_write(
      "SELECT CURRENT_TIMESTAMP, current_timestamp(3), CURRENT_DATE, localtime, "
      "LOCALTIMESTAMP(0), current_time, transaction_timestamp(), 'CURRENT_DATE', t.localtime",
      &out, &why))
      << why;
  EXPECT_EQ(out,
            "SELECT (now())::timestamptz, (now())::timestamptz(3), (now())::date, (now())::time, "
            "(now())::timestamp(0), (now())::timetz, now(), 'CURRENT_DATE', t.localtime");
}

// Two stores (two nodes' databases) given the same commands reach the same
// state: time, random(), serial ids and DEFAULTs come from the command.
TEST(PgStoreDeterminism, TimeRandomAndSequencesAreTheCommandsOwn) {
  if (env("SYNOD_PG_PORT").empty()) GTEST_SKIP() << "run through ctest";
  const std::string da = db_name("_a"), dbn = db_name("_b");
  drop_database(da);
  drop_database(dbn);
  {
    auto a = open_store(da);
    auto b = open_store(dbn);
    ASSERT_TRUE(a && b);
    const json setup = json::array(
        {"CREATE TABLE t (id bigserial PRIMARY KEY, r double precision, ts timestamptz, "
         "d date, made timestamptz DEFAULT now(), stamp timestamptz DEFAULT CURRENT_TIMESTAMP, "
         "dr double precision DEFAULT random(), tt timestamptz)"});
    exec_on(*a, setup, at(1));
    exec_on(*b, setup, at(1));
    const json insert = json::array(
        {"INSERT INTO t(r, ts, d, tt) VALUES(random(), now(), CURRENT_DATE, "
         "statement_timestamp())",
         "INSERT INTO t(r, ts) SELECT random(), CURRENT_TIMESTAMP(0) FROM generate_series(1, 3)"});
    for (uint64_t p = 2; p < 12; ++p) {
      const auto ctx = at(p, 1700000000000 + static_cast<int64_t>(p) * 1000 + 123, 1000 + p);
      exec_on(*a, insert, ctx);
      exec_on(*b, insert, ctx);
    }
    const json ra = query_on(*a, json::array({"SELECT * FROM t ORDER BY id"}));
    const json rb = query_on(*b, json::array({"SELECT * FROM t ORDER BY id"}));
    EXPECT_EQ(ra, rb);
    const json& rows = ra["results"][0]["values"];
    ASSERT_EQ(rows.size(), 40u);
    EXPECT_EQ(rows[0][0], 1);
    EXPECT_EQ(rows[39][0], 40);
    // Position 2 ran at 1700000002123 ms.
    EXPECT_EQ(rows[0][2], "2023-11-14 22:13:22.123+00");
    EXPECT_EQ(rows[0][3], "2023-11-14");
    EXPECT_EQ(rows[0][4], "2023-11-14 22:13:22.123+00");  // DEFAULT now()
    EXPECT_EQ(rows[0][5], "2023-11-14 22:13:22.123+00");  // DEFAULT CURRENT_TIMESTAMP
    EXPECT_EQ(rows[0][7], "2023-11-14 22:13:22.123+00");  // statement_timestamp()
    EXPECT_EQ(rows[1][2], "2023-11-14 22:13:22+00");      // CURRENT_TIMESTAMP(0)
    EXPECT_NE(rows[0][1], rows[4][1]);  // random() differs between commands
    EXPECT_NE(rows[0][1], rows[1][1]);  // and between calls

    const json sum = json{{"checksum", true}};
    const json ca = exec_on(*a, sum, at(20));
    const json cb = exec_on(*b, sum, at(20));
    EXPECT_EQ(ca["position"], 20);
    EXPECT_EQ(ca["checksum"].get<std::string>().size(), 64u);
    EXPECT_EQ(ca, cb);
  }
  drop_database(da);
  drop_database(dbn);
}

TEST(PgStoreChecksum, DiffersWhenADatabaseChangesBehindTheBackend) {
  if (env("SYNOD_PG_PORT").empty()) GTEST_SKIP() << "run through ctest";
  const std::string da = db_name("_a"), dbn = db_name("_b");
  drop_database(da);
  drop_database(dbn);
  {
    auto a = open_store(da);
    auto b = open_store(dbn);
    ASSERT_TRUE(a && b);
    const json setup = json::array({"CREATE TABLE t (id serial PRIMARY KEY, v text, f real)",
                                     "CREATE TABLE u (x jsonb)",  // no primary key
                                     "INSERT INTO t(v, f) VALUES ('a', 0.1), ('b', NULL)",
                                     "INSERT INTO u VALUES ('{\"k\": [1, 2]}'), ('null')"});
    exec_on(*a, setup, at(1));
    exec_on(*b, setup, at(1));
    const json sum = json{{"checksum", true}};
    const json c1 = exec_on(*a, sum, at(2));
    EXPECT_EQ(c1, exec_on(*b, sum, at(2)));
    // The stored checksum, by position.
    EXPECT_EQ(query_on(*a, json{{"checksum_at", 2}}), c1);
    EXPECT_TRUE(query_on(*a, json{{"checksum_at", 1}}).contains("error"));
    EXPECT_NE(query_on(*a, json{{"checksum_at", 99}})["error"].get<std::string>().find("not applied"),
              std::string::npos);

    Side(dbn).exec("UPDATE t SET v = 'B' WHERE id = 2");
    const json c2a = exec_on(*a, sum, at(3));
    const json c2b = exec_on(*b, sum, at(3));
    EXPECT_EQ(c2a["checksum"], c1["checksum"]);  // nothing changed in a
    EXPECT_NE(c2a["checksum"], c2b["checksum"]);
    Side(dbn).exec("UPDATE t SET v = 'b' WHERE id = 2");
    EXPECT_EQ(exec_on(*a, sum, at(4)), exec_on(*b, sum, at(4)));
    // A sequence moved behind the backend's back is a difference too.
    Side(dbn).exec("SELECT nextval('t_id_seq')");
    EXPECT_NE(exec_on(*a, sum, at(5)), exec_on(*b, sum, at(5)));
  }
  drop_database(da);
  drop_database(dbn);
}

TEST_F(PgStoreTest, BatchesAreOneTransactionWithACommandEach) {
  exec(json::array({"CREATE TABLE t (v integer UNIQUE)"}));
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
  EXPECT_EQ(one("SELECT string_agg(v::text, ',' ORDER BY v) FROM t")[0][0], "1,3");
  // Replayed positions are no-ops.
  ASSERT_TRUE(store_->apply_batch(3, ctxs.data(), views.data(), &results, &error)) << error;
  EXPECT_NE(results[2].find("already applied"), std::string::npos);
  EXPECT_EQ(one("SELECT count(*) FROM t")[0][0], 2);
}

TEST_F(PgStoreTest, ReopenKeepsDataAndLastApplied) {
  exec(json::array({"CREATE TABLE t (v integer)", "INSERT INTO t VALUES(42)"}));
  std::string error;
  ASSERT_TRUE(store_->sync(&error)) << error;
  store_.reset();
  store_ = open_store(db_);
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(store_->last_applied(), 1u);
  EXPECT_EQ(one("SELECT v FROM t")[0][0], 42);
}

TEST(PgStoreOpen, RefusesWhatItCannotUse) {
  if (env("SYNOD_PG_PORT").empty()) GTEST_SKIP() << "run through ctest";
  const std::string db = db_name();
  drop_database(db);
  {
    Side admin("postgres");
    admin.exec("CREATE DATABASE " + db);
    Side(db).exec("CREATE TABLE users (name text)");
  }
  std::string error;
  EXPECT_EQ(PgStore::open(config(db), &error), nullptr);
  EXPECT_NE(error.find("not a Synod postgres store"), std::string::npos) << error;
  drop_database(db);

  PgStore::Config bad = config(db);
  bad.port = "1";  // nobody listens
  EXPECT_EQ(PgStore::open(bad, &error), nullptr);
  EXPECT_NE(error.find("cannot connect to postgres at 127.0.0.1:1"), std::string::npos) << error;
  bad = config(db);
  bad.user = "nobody_here";
  EXPECT_EQ(PgStore::open(bad, &error), nullptr);
  EXPECT_NE(error.find("nobody_here"), std::string::npos) << error;
  EXPECT_EQ(PgStore::open(config(""), &error), nullptr);
  EXPECT_EQ(error, "option database is required");
}

// Through the C ABI, loaded by the host from the build tree.
TEST(PgBackend, LoadsWithItsOptions) {
  if (env("SYNOD_PG_PORT").empty()) GTEST_SKIP() << "run through ctest";
  const std::string db = db_name();
  drop_database(db);
  {
    backend::BackendHost host;
    std::string error;
    EXPECT_FALSE(host.load("postgres", {{"database", db}, {"colour", "blue"}}, &error));
    EXPECT_NE(error.find("unknown option 'colour'"), std::string::npos) << error;
    ASSERT_TRUE(host.load("postgres",
                          {{"database", db},
                           {"host", env("SYNOD_PG_HOST")},
                           {"port", env("SYNOD_PG_PORT")},
                           {"user", "postgres"},
                           {"password", ""}},
                          &error))
        << error;
    auto r = host.apply("postgres", at(1), R"js(["CREATE TABLE t (v int)", "INSERT INTO t VALUES (5)"])js");
    ASSERT_TRUE(r.ok) << r.error;
    r = host.query("postgres", R"(["SELECT v FROM t"])");
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(json::parse(r.bytes)["results"][0]["values"][0][0], 5);
    EXPECT_EQ(host.last_applied("postgres"), 1u);
    const auto v = host.get("postgres")->validate(R"js(["SELECT clock_timestamp()"])js");
    EXPECT_FALSE(v.ok);
    EXPECT_NE(v.error.find("clock_timestamp"), std::string::npos) << v.error;
  }
  drop_database(db);
}

// A lost connection fails the apply with a clear error; the next apply
// reconnects and nothing is applied twice.
TEST_F(PgStoreTest, AKilledConnectionIsReopenedByTheNextApply) {
  exec(json::array({"CREATE TABLE t (id serial PRIMARY KEY, v integer)",
                    "INSERT INTO t(v) VALUES (1)"}));
  Side(db_).exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + db_ +
                 "' AND application_name = 'synod-apply'");
  std::string result, error;
  const std::string cmd = json::array({"INSERT INTO t(v) VALUES (2)"}).dump();
  EXPECT_FALSE(store_->apply(at(2), cmd, &result, &error));
  EXPECT_NE(error.find("connection to postgres at 127.0.0.1:" + env("SYNOD_PG_PORT") + " lost"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("reconnecting"), std::string::npos) << error;
  EXPECT_EQ(store_->last_applied(), 1u);
  ASSERT_TRUE(store_->apply(at(2), cmd, &result, &error)) << error;
  EXPECT_EQ(json::parse(result)["results"][0]["rows_affected"], 1);
  ASSERT_TRUE(store_->apply(at(2), cmd, &result, &error)) << error;  // a retry: a no-op
  EXPECT_NE(result.find("already applied"), std::string::npos);
  // The query connection too.
  EXPECT_EQ(one("SELECT 1")[0][0], 1);
  Side(db_).exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + db_ +
                 "' AND application_name = 'synod-query'");
  EXPECT_FALSE(store_->query(json::array({"SELECT 1"}).dump(), &result, &error));
  EXPECT_NE(error.find("lost"), std::string::npos) << error;
  EXPECT_EQ(one("SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM t")[0][0], "1:1,2:2");
}

// A server that comes back behind what the node applied (a restored backup,
// lost commits) is an error that says so, never a silent skip.
TEST_F(PgStoreTest, AServerBehindTheNodeIsAnError) {
  exec(json::array({"CREATE TABLE t (v integer)"}));
  exec(json::array({"INSERT INTO t VALUES (1)"}));
  Side side(db_);
  side.exec("UPDATE _synod_meta SET value = 1 WHERE key = 'applied'");
  side.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + db_ +
            "' AND application_name = 'synod-apply'");
  std::string result, error;
  const std::string cmd = json::array({"INSERT INTO t VALUES (3)"}).dump();
  EXPECT_FALSE(store_->apply(at(3), cmd, &result, &error));  // the lost connection
  EXPECT_FALSE(store_->apply(at(3), cmd, &result, &error));
  EXPECT_NE(error.find("behind 2"), std::string::npos) << error;
  EXPECT_EQ(store_->last_applied(), 2u);
  EXPECT_EQ(one("SELECT count(*) FROM t")[0][0], 1);
}

// Queries run on their own connection while commands are applied.
TEST_F(PgStoreTest, QueriesRunBesideApplies) {
  exec(json::array({"CREATE TABLE t (v integer)"}));
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::thread reader([&] {
    while (!done) {
      std::string result, error;
      EXPECT_TRUE(store_->query(json::array({"SELECT count(*) FROM t"}).dump(), &result, &error))
          << error;
      ++reads;
    }
  });
  for (int i = 0; i < 50; ++i) exec(json::array({"INSERT INTO t VALUES (1)"}));
  done = true;
  reader.join();
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(one("SELECT count(*) FROM t")[0][0], 50);
}

// A stopped server fails applies and queries; once it is back they go on.
// After a clean stop or a crash (kill -9, when PostgreSQL's sequences jump
// up to 32 values ahead) serial ids continue exactly where the data is.
TEST_F(PgStoreTest, ServerStopAndCrashKeepPositionsAndSequencesExact) {
  exec(json::array({"CREATE TABLE t (id serial PRIMARY KEY, v integer)",
                    "INSERT INTO t(v) VALUES (1)"}));
  std::string result, error;
  auto insert = [&](int v) { return json::array({"INSERT INTO t(v) VALUES (" + std::to_string(v) + ")"}).dump(); };

  server("stop");
  EXPECT_FALSE(store_->apply(at(2), insert(2), &result, &error));
  EXPECT_NE(error.find("lost"), std::string::npos) << error;
  EXPECT_FALSE(store_->apply(at(2), insert(2), &result, &error));  // still down: cannot connect
  EXPECT_NE(error.find("cannot connect to postgres at"), std::string::npos) << error;
  EXPECT_FALSE(store_->query(json::array({"SELECT 1"}).dump(), &result, &error));
  server("start");
  ASSERT_TRUE(store_->apply(at(2), insert(2), &result, &error)) << error;

  // A crash: the sequence was logged 32 values ahead.
  server("kill");
  EXPECT_FALSE(store_->apply(at(3), insert(3), &result, &error));
  server("start");
  ASSERT_TRUE(store_->apply(at(3), insert(3), &result, &error)) << error;
  ASSERT_TRUE(store_->apply(at(4), insert(4), &result, &error)) << error;
  EXPECT_EQ(one("SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM t")[0][0],
            "1:1,2:2,3:3,4:4");
  // A transaction that died with its connection also moved the sequence.
  const std::string slow =
      json::array({"INSERT INTO t(v) SELECT 0 FROM generate_series(1, 5)",
                   "SELECT count(*) FROM t, generate_series(1, 100000000)"})
          .dump();
  std::thread killer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    Side(db_).exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" +
                   db_ + "' AND application_name = 'synod-apply'");
  });
  EXPECT_FALSE(store_->apply(at(5), slow, &result, &error));
  killer.join();
  ASSERT_TRUE(store_->apply(at(5), insert(5), &result, &error)) << error;
  EXPECT_EQ(one("SELECT max(id) FROM t")[0][0], 5);
  EXPECT_EQ(store_->last_applied(), 5u);
}

// Not a benchmark with a target: prints what 1,000 single-INSERT commands
// cost, applied one per apply_batch call and in batches of 100.
TEST_F(PgStoreTest, ThroughputOfSingleInserts) {
  exec(json::array({"CREATE TABLE t (id serial PRIMARY KEY, v integer, s text)"}));
  const std::string cmd =
      json::array({json::array({"INSERT INTO t(v, s) VALUES (?, ?)", 1, "some text"})}).dump();
  uint64_t p = store_->last_applied();
  std::vector<std::string> results;
  std::string error;
  auto run = [&](size_t per_batch) {
    const auto start = std::chrono::steady_clock::now();
    for (size_t done = 0; done < 1000; done += per_batch) {
      std::vector<synod_apply_context> ctxs;
      std::vector<std::string_view> views(per_batch, cmd);
      for (size_t i = 0; i < per_batch; ++i) ctxs.push_back(at(++p));
      EXPECT_TRUE(store_->apply_batch(per_batch, ctxs.data(), views.data(), &results, &error))
          << error;
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  const double one_each = run(1);
  const double hundred = run(100);
  std::printf("postgres: 1000 single-INSERT commands, 1 per apply_batch: %.3f s (%.0f/s); "
              "100 per apply_batch: %.3f s (%.0f/s)\n",
              one_each, 1000 / one_each, hundred, 1000 / hundred);
  EXPECT_EQ(one("SELECT count(*) FROM t")[0][0], 2000);
}

}  // namespace
}  // namespace synod::pg
