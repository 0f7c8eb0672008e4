// mysql_rules: what the mysql backend refuses, from the text alone.
#include "backends/mysql/mysql_rules.h"

#include <gtest/gtest.h>

#include <string>

namespace synod::mysql {
namespace {

std::string refused(const std::string& sql) {
  StatementKind kind;
  std::string why;
  if (check_write_statement(sql, &kind, &why)) return "";
  return why;
}

bool allowed(const std::string& sql) {
  StatementKind kind;
  std::string why;
  const bool ok = check_write_statement(sql, &kind, &why);
  EXPECT_TRUE(ok) << sql << ": " << why;
  return ok;
}

TEST(MysqlRules, DataStatementsAreAllowed) {
  allowed("INSERT INTO t (id, name) VALUES (?, :name)");
  allowed("INSERT INTO user (id) VALUES (1)");  // a table named like a function
  allowed("UPDATE t SET v = v + 1 WHERE id IN (SELECT id FROM u)");
  allowed("DELETE FROM t WHERE id = 3");
  allowed("SELECT t.id, u.name FROM t JOIN u ON t.id = u.id");
  allowed("INSERT INTO t (ts, r) VALUES (NOW(6), RAND())");
  allowed("REPLACE INTO t SELECT * FROM u ORDER BY id LIMIT 3");
  allowed("SELECT 'uuid()' AS `sleep`");  // in a literal or a quoted alias: not a call
}

TEST(MysqlRules, SchemaStatementsAreClassified) {
  StatementKind kind;
  std::string why;
  for (const char* sql : {"CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB",
                          "CREATE OR REPLACE VIEW v AS SELECT id FROM t",
                          "CREATE UNIQUE INDEX i ON t (v)", "ALTER TABLE t ADD COLUMN c INT",
                          "DROP TABLE IF EXISTS t", "RENAME TABLE t TO u", "TRUNCATE TABLE t",
                          "DROP INDEX i ON t", "CREATE TABLE t2 LIKE t"}) {
    ASSERT_TRUE(check_write_statement(sql, &kind, &why)) << sql << ": " << why;
    EXPECT_EQ(kind, StatementKind::kSchema) << sql;
  }
  ASSERT_TRUE(check_write_statement("INSERT INTO t VALUES (1)", &kind, &why));
  EXPECT_EQ(kind, StatementKind::kData);
}

TEST(MysqlRules, NonDeterministicFunctionsAreRefusedByName) {
  for (const char* fn : {"UUID", "UUID_SHORT", "SYS_GUID", "SYSDATE", "CONNECTION_ID", "DATABASE",
                         "SCHEMA", "VERSION", "USER", "CURRENT_USER", "SESSION_USER", "SLEEP",
                         "BENCHMARK", "GET_LOCK", "RELEASE_LOCK", "LOAD_FILE", "MASTER_POS_WAIT",
                         "FOUND_ROWS", "RANDOM_BYTES", "NEXTVAL"}) {
    const std::string why =
        refused(std::string("INSERT INTO t (v) VALUES (") + fn + "())");
    EXPECT_NE(why.find(std::string(fn) + "()"), std::string::npos) << fn << ": " << why;
  }
  // Spaces, comments and backquotes do not hide a call.
  EXPECT_NE(refused("SELECT uuid /* x */ ()").find("UUID()"), std::string::npos);
  EXPECT_NE(refused("SELECT `sleep`(1)").find("SLEEP()"), std::string::npos);
  EXPECT_NE(refused("SELECT CURRENT_USER").find("CURRENT_USER"), std::string::npos);
}

TEST(MysqlRules, SessionStateFilesAndTransactionsAreRefused) {
  EXPECT_NE(refused("SET @x = 1").find("SET"), std::string::npos);
  EXPECT_NE(refused("SELECT @x").find("user variables"), std::string::npos);
  EXPECT_NE(refused("INSERT INTO t VALUES (@@hostname)").find("system variables"),
            std::string::npos);
  EXPECT_NE(refused("INSERT INTO t VALUES (@name)").find(":name"), std::string::npos);
  EXPECT_NE(refused("SELECT * FROM t INTO OUTFILE '/tmp/x'").find("OUTFILE"), std::string::npos);
  EXPECT_NE(refused("SELECT * FROM t INTO DUMPFILE '/tmp/x'").find("DUMPFILE"),
            std::string::npos);
  EXPECT_NE(refused("LOAD DATA INFILE '/tmp/x' INTO TABLE t").find("LOAD"), std::string::npos);
  for (const char* sql : {"BEGIN", "START TRANSACTION", "COMMIT", "ROLLBACK", "SAVEPOINT a",
                          "LOCK TABLES t WRITE", "UNLOCK TABLES"}) {
    EXPECT_NE(refused(sql).find("transaction control"), std::string::npos) << sql;
  }
  EXPECT_NE(refused("USE other").find("USE"), std::string::npos);
  EXPECT_NE(refused("CREATE DATABASE d").find("CREATE DATABASE"), std::string::npos);
  EXPECT_NE(refused("DROP DATABASE d").find("DROP DATABASE"), std::string::npos);
  EXPECT_NE(refused("GRANT ALL ON *.* TO x").find("GRANT"), std::string::npos);
  EXPECT_NE(refused("CREATE USER x").find("CREATE USER"), std::string::npos);
  EXPECT_NE(refused("HANDLER t OPEN").find("HANDLER"), std::string::npos);
  EXPECT_NE(refused("CALL p()").find("CALL"), std::string::npos);
  EXPECT_NE(refused("CREATE TEMPORARY TABLE x (a INT)").find("TEMPORARY"), std::string::npos);
  EXPECT_NE(refused("CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1")
                .find("CREATE TRIGGER"),
            std::string::npos);
  EXPECT_NE(refused("/*! DROP TABLE t */ SELECT 1").find("executable comments"),
            std::string::npos);
}

TEST(MysqlRules, EnginesOtherDatabasesAndSynodTablesAreRefused) {
  EXPECT_NE(refused("CREATE TABLE t (a INT) ENGINE=MyISAM").find("ENGINE=MyISAM"),
            std::string::npos);
  EXPECT_NE(refused("ALTER TABLE t ENGINE = Aria").find("ENGINE=Aria"), std::string::npos);
  EXPECT_NE(refused("CREATE TABLE t (a INT) DATA DIRECTORY = '/tmp'").find("DIRECTORY"),
            std::string::npos);
  for (const char* sql : {"INSERT INTO other.t VALUES (1)", "SELECT * FROM t, other.u",
                          "UPDATE other.t SET a = 1", "DELETE FROM `other`.`t`",
                          "SELECT * FROM t JOIN other.u ON t.a = u.a",
                          "SELECT other.t.a FROM t", "SELECT * FROM information_schema.tables",
                          "SELECT (SELECT COUNT(*) FROM mysql.user)", "RENAME TABLE t TO other.t",
                          "CREATE TABLE t LIKE other.t"}) {
    EXPECT_NE(refused(sql).find("names another database"), std::string::npos) << sql;
  }
  EXPECT_NE(refused("SELECT * FROM _synod_meta").find("_synod_meta"), std::string::npos);
  EXPECT_NE(refused("UPDATE `_SYNOD_META` SET value = 0").find("_synod_meta"),
            std::string::npos);
  EXPECT_NE(refused("DELETE FROM t LIMIT 3").find("LIMIT without ORDER BY"), std::string::npos);
  EXPECT_NE(refused("DROP TABLE a, b").find("one table per command"), std::string::npos);
}

TEST(MysqlRules, SchemaStatementsMustStandAlone) {
  bool schema = false;
  std::string why;
  EXPECT_TRUE(check_command(R"j(["CREATE TABLE t (a INT PRIMARY KEY)"])j", &schema, &why)) << why;
  EXPECT_TRUE(schema);
  EXPECT_FALSE(check_command(R"j(["CREATE TABLE t (a INT PRIMARY KEY)", "INSERT INTO t VALUES (1)"])j",
                             &schema, &why));
  EXPECT_NE(why.find("must be the only statement"), std::string::npos) << why;
  EXPECT_FALSE(check_command(R"j(["INSERT INTO t VALUES (1); ALTER TABLE t ADD b INT"])j", &schema,
                             &why));
  EXPECT_TRUE(check_command(R"({"checksum": true})", &schema, &why));
  EXPECT_FALSE(check_command("not json", &schema, &why));
}

TEST(MysqlRules, ReadsAreReadsWithoutLocksOrFiles) {
  std::string why;
  EXPECT_TRUE(check_read_statement("SELECT NOW(), VERSION(), @@version FROM t", &why)) << why;
  EXPECT_TRUE(check_read_statement("SHOW TABLES", &why)) << why;
  EXPECT_FALSE(check_read_statement("INSERT INTO t VALUES (1)", &why));
  EXPECT_NE(why.find("not a read"), std::string::npos);
  EXPECT_FALSE(check_read_statement("SELECT * FROM t FOR UPDATE", &why));
  EXPECT_FALSE(check_read_statement("SELECT GET_LOCK('a', 1)", &why));
  EXPECT_FALSE(check_read_statement("SELECT LOAD_FILE('/etc/passwd')", &why));
  EXPECT_FALSE(check_read_statement("SELECT * FROM t INTO OUTFILE '/tmp/x'", &why));
  EXPECT_FALSE(check_read_statement("SELECT * FROM _synod_meta", &why));
}

}  // namespace
}  // namespace synod::mysql
