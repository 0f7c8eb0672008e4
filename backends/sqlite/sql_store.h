// SqlStore: the state of the sqlite backend, one SQLite database file per node.
//
// A command (Command.payload for backend "sqlite") is a JSON array of
// statements in rqlite's shape, run as ONE transaction:
//
//   ["CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)",
//    ["INSERT INTO t (name) VALUES (?)", "fiona"],
//    ["INSERT INTO t (name) VALUES (:name)", {"name": "sinead"}]]
//
// A statement is a string, or an array of the SQL and its parameters:
// positional values, or one object of named ones (":name", "@name", "$name").
// Parameter values are JSON null, booleans (0/1), integers, floats and strings.
// Its result is JSON:
//
//   {"results": [{"last_insert_id": 1, "rows_affected": 1}, ...]}
//
// or, when statement k fails, the results up to k with k's {"error": "..."}
// and "rolled_back": true: the whole command is rolled back, the same way on
// every node, and the position still advances (an SQL error is a result). A
// payload that is not such a JSON array is a result too: {"error": "..."}.
//
// Reads (query): the same JSON array, read-only statements only (a write is
// refused), on a second, read-only connection; each result is
// {"columns": [...], "types": [...], "values": [[...], ...]} with rqlite's
// types (the declared column type, lowercased; "" for an expression), BLOBs
// in base64.
//
// Determinism: every node must reach the same database from the same log.
// - The current time (date('now'), CURRENT_TIMESTAMP, julianday('now'), ...) is
//   the command's timestamp (ctx.timestamp_ms, stamped by the proposer):
//   applies run on a VFS whose clock is that timestamp.
// - random() and randomblob(N) draw from a generator seeded with the command's
//   ctx.random_seed (the same on every node), replacing SQLite's own.
// - What would reach outside the replicated database is refused by an
//   authorizer, with an error naming it: ATTACH/DETACH, PRAGMA, transaction
//   control (BEGIN, COMMIT, SAVEPOINT: the backend owns the transaction),
//   loading extensions, and any access to the backend's own `_synod_*` tables.
// - A write statement is stopped after Config::max_statement_steps SQLite VM
//   instructions (an error result, identical on every node running the same
//   SQLite version; nodes of one cluster should run the same one).
//
// Content checksum: the command {"checksum": true} computes a SHA-256 of
// every user table's schema and rows (in a fixed order) at exactly its log
// position, answers {"position": P, "checksum": "<hex>"}, and keeps the last
// 100 in _synod_checksums; the query {"checksum_at": P} returns it, so the
// checksums of different nodes are taken at the same position and comparable
// (synodctl sql checksum).
//
// Atomicity and positions: the last applied position is in table
// _synod_meta, written in the same transaction as the statements. A batch of
// commands (apply_batch) is one transaction with a savepoint per command.
//
// Durability: WAL mode, synchronous=NORMAL: a commit is not fsynced (a crash of
// the machine may lose the last commits, never half of one; the node replays
// them from its log); sync() checkpoints with fsync.
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

struct sqlite3;

namespace synod::sql {

struct SqlStoreState;  // the C callbacks' user data (sql_store.cc)

class SqlStore {
 public:
  struct Config {
    std::string data_dir;  // required; created if missing; holds db.sqlite
    // A write statement that runs more SQLite VM instructions than this is
    // stopped with an error result: the same count on every node (the same
    // SQLite version, the same data), so a runaway statement (a recursive CTE
    // without end) fails everywhere instead of stalling every node. 0: no limit.
    std::uint64_t max_statement_steps = 2'000'000'000;
    // The largest string or BLOB a statement may make (SQLite's
    // SQLITE_LIMIT_LENGTH); 0: SQLite's default (1e9 bytes).
    std::uint64_t max_value_bytes = 0;
  };

  static std::unique_ptr<SqlStore> open(const Config& config, std::string* error);
  ~SqlStore();
  SqlStore(const SqlStore&) = delete;
  SqlStore& operator=(const SqlStore&) = delete;

  // n commands, in one transaction (synod_backend_api::apply_batch); positions
  // at or below last_applied() are no-ops with a result saying so. True with n
  // results; false with *error (SQLite failed outside any statement: I/O, a
  // full disk), and then nothing was applied.
  bool apply_batch(size_t n, const synod_apply_context* ctxs, const std::string_view* cmds,
                   std::vector<std::string>* results, std::string* error);
  bool apply(const synod_apply_context& ctx, std::string_view command, std::string* result,
             std::string* error);
  // Read-only statements against the current state. False with *error only
  // when SQLite fails outside a statement; a bad statement is a result.
  bool query(std::string_view request, std::string* result, std::string* error);
  // Whether a command may enter the log: the JSON shape of a command (a
  // statement SQLite cannot run still fails at apply, the same on every node).
  // Also refuses, by the statement's text, what the authorizer would refuse
  // at apply (ATTACH, PRAGMA, transaction control, total_changes(), ...).
  bool validate(std::string_view command, std::string* why) const;
  uint64_t last_applied() const { return last_applied_.load(std::memory_order_acquire); }
  // Checkpoints the WAL into the database file with fsync.
  bool sync(std::string* error);

 private:
  SqlStore() = default;
  // One attempt of apply_batch; *again: run it again (a statement was
  // interrupted, which rolled the transaction back; it is now in *settled).
  bool apply_batch_once(size_t n, const synod_apply_context* ctxs, const std::string_view* cmds,
                        std::map<size_t, std::map<size_t, std::string>>* settled, bool* again,
                        std::vector<std::string>* results, std::string* error);
  bool exec_internal(const char* sql, std::string* error);

  // The content checksum of the user tables (the {"checksum": true} command).
  bool checksum(std::string* hex, std::string* error);
  static bool precheck(const std::string& sql, std::string* why);

  sqlite3* db_ = nullptr;  // applies (read-write, the deterministic VFS)
  sqlite3* ro_ = nullptr;  // queries (read-only)
  std::unique_ptr<SqlStoreState> state_;
  std::atomic<uint64_t> last_applied_{0};
  // The last checksums by position (also in _synod_checksums), for
  // {"checksum_at": P} queries from any thread.
  std::mutex read_mu_;  // query(): one at a time on ro_
  mutable std::mutex checksums_mu_;
  std::map<uint64_t, std::string> checksums_;
};

}  // namespace synod::sql
