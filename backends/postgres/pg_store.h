// PgStore: the state of the postgres backend, one PostgreSQL database per node
// on a PostgreSQL 15 server, reached through libpq.
//
// Commands and results have the shapes of the sqlite backend (sql_store.h,
// docs/SQL.md): a JSON array of statements run as ONE transaction, or
// {"statements": [...], "transaction": false}; each statement a string or
// [SQL, positional...] / [SQL, {named}] with rqlite's `?` and `:name`, or
// PostgreSQL's own $1; results {"results": [{"last_insert_id": N,
// "rows_affected": N}, ...]}, on an SQL error the results up to it with its
// {"error": "..."} and "rolled_back": true (the position still advances).
// {"checksum": true} answers {"position": P, "checksum": "<sha-256 hex>"}.
//
// Layout in the node's database (created if missing, encoding UTF8, collation
// "C" so that text sorts the same on every node whatever the server's locale):
//   _synod_meta(key, value)        'format' = 1, 'applied' = last applied position
//   _synod_checksums(position, checksum)   the last 100 checksum commands
//   _synod_sequences(name, last_value)     every public sequence's state as of
//                                  the last commit (see "Sequences" below)
//   public.now()                   the command's time (see "Time" below)
// all written in the same transaction as the commands they go with.
//
// Time. PostgreSQL's now() is the start of the server's transaction. Every
// connection runs with search_path = public, pg_catalog, so an unqualified
// now() is public.now(), which returns the setting synod.now, set to the
// command's ctx.timestamp_ms (UTC, ms) at the start of every command. That
// also holds where the call is stored and evaluated later: DEFAULT now().
// CURRENT_TIMESTAMP[(p)], CURRENT_DATE, CURRENT_TIME[(p)], LOCALTIMESTAMP[(p)],
// LOCALTIME[(p)] (keywords, not functions) are rewritten by the lexer into
// now() casts, and transaction_timestamp()/statement_timestamp() into now().
// random() is seeded per command with setseed() from ctx.random_seed.
//
// Sequences. A sequence is not transactional, and PostgreSQL logs it 32
// values ahead: after a crash of the server, or a transaction that died with
// its connection, a sequence is ahead of what the committed data used. Every
// commit records every public sequence's state in _synod_sequences; after
// open, a reconnect or a failed apply, the next apply first sets every
// sequence back to that record (setval), so serial ids stay the same on every
// node. DISCARD SEQUENCES at the start of every command makes currval(),
// lastval() and a sequence's session cache start empty in each command.
//
// Refused (validate() and apply(), an error naming it): see check_write() in
// pg_store.cc and docs/SQL.md: transaction control, SET/RESET, session state
// (PREPARE, DECLARE, LISTEN, ...), COPY, DO and function DDL, roles, grants,
// databases, schemas, extensions, TEMP and UNLOGGED tables, any pg_* name in
// a write, clock and identity functions, and the _synod_* tables.
//
// Connections. Applies on one connection, queries on a second (its own mutex),
// each query in a READ ONLY transaction. A lost connection fails the call with
// "connection to postgres at HOST:PORT lost: ...; reconnecting"; the next call
// reconnects and re-reads the applied position from _synod_meta, so a commit
// whose answer was lost is never applied twice.
//
// Durability. Applies commit with synchronous_commit = on: a commit that
// returned is on disk, so sync() has nothing to do. (Asynchronous commits
// would be faster, but the server can crash without the node: commits the
// node saw succeed would vanish while the node goes on after them. If the
// server ever comes back behind the node's position, e.g. a restored backup,
// the next apply fails with an error that says so instead of skipping.)
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

typedef struct pg_conn PGconn;

namespace synod::pg {

class PgStore {
 public:
  struct Config {
    std::string host = "127.0.0.1";
    std::string port = "5432";
    std::string user = "postgres";
    std::string password;
    std::string database;  // required; created if missing
  };

  // Connects (creating the database if missing) and reads the applied
  // position. nullptr with *error when the server cannot be reached, the
  // login fails, or the database has tables but is not a Synod store.
  static std::unique_ptr<PgStore> open(const Config& config, std::string* error);
  ~PgStore();
  PgStore(const PgStore&) = delete;
  PgStore& operator=(const PgStore&) = delete;

  // n commands in one transaction (synod_backend_api::apply_batch); positions
  // at or below last_applied() are no-ops with a result saying so. False with
  // *error when nothing was applied (lost connection, the server's trouble).
  bool apply_batch(size_t n, const synod_apply_context* ctxs, const std::string_view* cmds,
                   std::vector<std::string>* results, std::string* error);
  bool apply(const synod_apply_context& ctx, std::string_view command, std::string* result,
             std::string* error);
  // Read-only statements, or {"checksum_at": P}. False with *error only when
  // the server could not answer; a bad statement is a result.
  bool query(std::string_view request, std::string* result, std::string* error);
  uint64_t last_applied() const { return last_applied_.load(std::memory_order_acquire); }
  // Nothing to do: every commit is synchronous (see Durability).
  bool sync(std::string* error);
  // Text checks only (no I/O): true when apply would not refuse the command
  // for determinism; false with *why naming what is refused.
  bool validate(std::string_view command, std::string* why) const;

  // The rewritten SQL of one write statement (time keywords), or false with
  // *why when it is refused. Exposed for tests.
  static bool check_write(std::string_view sql, std::string* rewritten, std::string* why);

 private:
  explicit PgStore(Config config);
  struct Conn;  // a libpq connection and the type names it has looked up
  bool connect(std::unique_ptr<Conn>* conn, bool for_writes, std::string* error);
  bool ensure_writer(std::string* error);
  bool read_applied(std::string* error);
  bool run_batch(size_t n, const synod_apply_context* ctxs, const std::string_view* cmds,
                 std::vector<std::string>* out, uint64_t* position, std::string* error);
  bool checksum(uint64_t position, std::string* hex, std::string* error);
  std::string where() const;

  Config config_;
  std::unique_ptr<Conn> writer_;
  bool restore_sequences_ = true;  // the next apply resets sequences from _synod_sequences
  std::mutex read_mu_;             // guards reader_
  std::unique_ptr<Conn> reader_;
  std::atomic<uint64_t> last_applied_{0};
};

}  // namespace synod::pg
