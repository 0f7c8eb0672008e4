// MysqlStore: the state of the mysql backend, one MariaDB database per node
// (10.6+ for atomic DDL; built and tested against 10.11), through libmariadb.
//
// Commands and results have the sqlite backend's shapes (backends/sqlite/
// sql_store.h, docs/SQL.md): a JSON array of statements run as one
// transaction, or {"statements": [...], "transaction": false}; per statement
// {"last_insert_id": N, "rows_affected": N}, and on an SQL error the results
// up to it, its {"error": "..."} and "rolled_back": true (the position still
// advances). {"checksum": true} answers {"position": P, "checksum": "<hex>"}.
// Parameters: positional `?` or named `:name` (`@name` is a user variable in
// MariaDB, refused). Values are escaped into the SQL text on the client
// (mysql_real_escape_string): null, booleans (1/0), integers, floats (as
// DOUBLE literals) and strings.
//
// Reads (query): read-only statements (mysql_rules.h) in a START TRANSACTION
// READ ONLY on a second connection; {"columns", "types", "values"} with the
// result's field types lowercased ("int", "bigint", "varchar", "text",
// "double", "decimal", "datetime", "blob", ...), integers as JSON integers,
// FLOAT/DOUBLE as JSON numbers, DECIMAL as a string (exact), dates and times
// as strings, binary strings (charset 63: BLOB, BINARY, VARBINARY) in base64,
// BIT as an integer, NULL as null. {"checksum_at": P} answers the checksum
// stored at position P.
//
// Determinism, per command: SET timestamp = ctx.timestamp_ms / 1000 (NOW(),
// CURRENT_TIMESTAMP, UNIX_TIMESTAMP(), DEFAULT CURRENT_TIMESTAMP, to the
// millisecond), rand_seed1/rand_seed2 from ctx.random_seed (RAND()),
// last_insert_id = 0 (LAST_INSERT_ID() and ROW_COUNT() start from the same
// value on every node); per connection: time_zone '+00:00', a fixed sql_mode,
// utf8mb4, default and enforced storage engine InnoDB, and the session
// settings that change results. What cannot be made the same is refused, in
// validate() and again in apply (mysql_rules.h).
//
// Atomicity and positions. The applied position is the row 'applied' of
// _synod_meta, written in the same InnoDB transaction as the commands of a
// batch (a savepoint per command). _synod_checksums keeps the last 100
// checksums. _synod_autoinc keeps every table's AUTO_INCREMENT counter as of
// the last commit: InnoDB does not roll counters back, so a transaction lost
// to a dropped connection would leave this node's counters ahead of the other
// nodes'; after a reconnect the backend puts them back.
//
// Schema statements (CREATE/ALTER/DROP/RENAME/TRUNCATE) commit implicitly in
// MariaDB, so they cannot share a transaction with the position. A command
// with one must hold exactly that one statement, and it runs in its own
// three steps: (1) commit _synod_meta.ddl_pending = P with a digest of the
// schema (SHOW CREATE TABLE of every table and view, AUTO_INCREMENT=N left
// out); (2) run the statement (atomic in MariaDB 10.6+); (3) commit applied =
// P, ddl_pending = 0. Losing the connection (or the server) between (1) and
// (3) leaves ddl_pending = P > applied; the next connection compares the
// schema with the digest: different -> the statement ran, P is marked applied
// (its result is lost: the retry answers "already applied"); the same -> it
// did not run, or it left the schema as it was (TRUNCATE, ALTER TABLE ...
// AUTO_INCREMENT = N, CREATE TABLE IF NOT EXISTS on an existing table): the
// retry runs it again, which ends in the same state. Never applied twice in
// effect, never skipped. A batch with a schema command commits the commands
// before it first; if it then fails, their results are kept in memory and
// returned when the host retries the batch.
//
// Connection loss: apply_batch, query and sync return false with "connection
// to mariadb at HOST:PORT lost: ...; reconnecting"; the next call reconnects,
// re-reads the position (a COMMIT whose answer was lost may have landed),
// finishes a pending schema statement (above), restores the AUTO_INCREMENT
// counters, and goes on. No sleeping inside the backend.
//
// Durability: commits are as durable as the server makes them
// (innodb_flush_log_at_trx_commit=1: at COMMIT); sync() flushes InnoDB's log
// (FLUSH ENGINE LOGS) when the server runs with another setting.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "synod/backend.h"

namespace synod::mysql {

struct Connection;  // one MYSQL* (mysql_store.cc)

class MysqlStore {
 public:
  struct Config {
    std::string host = "127.0.0.1";
    unsigned port = 3306;
    std::string user = "root";
    std::string password;
    std::string database;  // required; created if missing; this node's alone
    std::string socket;    // optional: a Unix socket instead of host:port
  };

  // Connects, creates the database and the _synod_* tables if missing, checks
  // InnoDB, reads the applied position. nullptr with *error when the server
  // cannot be reached, refuses the login, lacks InnoDB, or the database is
  // somebody else's (tables but no _synod_meta).
  static std::unique_ptr<MysqlStore> open(const Config& config, std::string* error);
  ~MysqlStore();
  MysqlStore(const MysqlStore&) = delete;
  MysqlStore& operator=(const MysqlStore&) = delete;

  // synod_backend_api::apply_batch. False with *error when the server could
  // not be used (connection lost, a node-local server error): then nothing
  // past last_applied() was applied, and the next call reconnects.
  bool apply_batch(size_t n, const synod_apply_context* ctxs, const std::string_view* cmds,
                   std::vector<std::string>* results, std::string* error);
  bool apply(const synod_apply_context& ctx, std::string_view command, std::string* result,
             std::string* error);
  // Read-only statements, or {"checksum_at": P}. Thread-safe.
  bool query(std::string_view request, std::string* result, std::string* error);
  uint64_t last_applied() const { return last_applied_.load(std::memory_order_acquire); }
  bool sync(std::string* error);
  // The command's text only: what apply would refuse (mysql_rules.h).
  bool validate(std::string_view command, std::string* why) const;

 private:
  MysqlStore() = default;
  std::string where() const;  // "mariadb at host:port"
  bool connect(std::unique_ptr<Connection>* conn, bool first, std::string* error);
  bool ensure_writer(std::string* error);
  bool recover(std::string* error);
  bool lost(std::string* error);  // drops the writer; *error says why

  Config config_;
  std::unique_ptr<Connection> writer_;
  bool flush_on_sync_ = false;
  std::atomic<uint64_t> last_applied_{0};
  // Results of commands committed by a batch that then failed, by position:
  // the host retries that batch and gets them instead of "already applied".
  std::map<uint64_t, std::string> committed_results_;

  std::mutex reader_mu_;
  std::unique_ptr<Connection> reader_;
};

}  // namespace synod::mysql
