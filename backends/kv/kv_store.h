// KvStore: the state of the kv backend, in RocksDB.
//
// Commands and results are proto/kv.proto's KvCommand and KvResult:
//   GET k            OK found value | NOT_FOUND
//   PUT k v          OK, found = k existed before
//   DELETE k         OK, found = k existed before
//   CAS k            expect_absent: succeeds when k is absent; otherwise when k's
//                    value == expected. OK found(before) | CAS_FAILED found value
//                    (the current value, when there is one)
//   INCREMENT k d    k absent counts as 0; values are decimal ASCII int64.
//                    OK number (and value = its decimal) | NOT_A_NUMBER error
//                    (the value is not an integer, or the sum overflows)
//   LIST prefix n    OK keys: the keys starting with prefix, in byte order, at
//                    most n of them (0 = all)
//   PUT k v require_present   as PUT when k exists; CAS_FAILED (found=false) if not
//   MGET keys        OK entries: (found, value) per key, in order
//   MPUT keys values OK; every keys[i] = values[i], in one atomic write
//   MDELETE keys     OK number = how many of the (distinct) keys existed
//   COUNT prefix     OK number = how many keys start with prefix
// A command that cannot be parsed, an unknown op or an empty (or longer than
// kMaxKeyBytes) key is a BAD_COMMAND result with an error text. All of these are
// results: they are deterministic and the applied position advances.
//
// On-disk layout: one RocksDB database in data_dir (default column family).
//   'u' + key     -> value   user data. The prefix byte keeps every user key
//                            apart from the internal ones, whatever bytes it has.
//   "mformat"     -> "synod-kv 1"   written when the store is created; open()
//                            refuses a database without it or with another one.
//   "mapplied"    -> the last applied position (8 bytes, big-endian).
// (A prefix byte rather than a column family: one WriteBatch and one iterator
// cover everything, and a snapshot is one scan.)
//
// Positions: apply() takes the command's position in the log (ctx.slot, see
// synod/backend.h); a position at or below the last applied one is a no-op.
//
// Atomicity: every apply writes its effect and its position in one WriteBatch,
// so after a crash the store is exactly as of some applied position.
// The batch is not fsync'd by default (option sync=true does): the node's own
// log is, and at start-up the host replays every command above last_applied().
// By default the write-ahead log is not even written per apply: RocksDB keeps
// it in a buffer (manual_wal_flush) until sync() writes and fsyncs it, which
// the node does before it records an applied point. So applying costs no
// system call. A crash (of the process or the machine) may lose the tail of the
// store's writes since the last sync() — RocksDB recovers a prefix of its
// write-ahead log, never half of one — and the node replays them from its log.
//
// Threads: apply() calls must be serialised; query() and last_applied() may run
// concurrently with apply() and with each other (RocksDB is thread-safe; a
// LIST sees one consistent state).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/kv/kv_codec.h"
#include "synod/backend.h"

namespace rocksdb {
class DB;
class WriteBatchWithIndex;
}  // namespace rocksdb

namespace synod::kv {

inline constexpr size_t kMaxKeyBytes = 64 * 1024;

class KvStore {
 public:
  struct Config {
    std::string data_dir;  // required; created (with its parents) if missing
    bool sync = false;     // fsync every apply's write batch
  };

  // Opens (or creates) the store in config.data_dir. nullptr with *error when
  // the directory cannot be created, RocksDB refuses it (locked by another
  // process, corrupt) or it is not a kv store.
  static std::unique_ptr<KvStore> open(const Config& config, std::string* error);
  ~KvStore();
  KvStore(const KvStore&) = delete;
  KvStore& operator=(const KvStore&) = delete;

  // Applies the command at position ctx.slot (see synod_backend_api::apply).
  // True: *result holds the KvResult bytes; the command was applied, or its
  // position was at or below last_applied() and nothing happened (the result
  // then says so in its error text, with code OK). False: *error (RocksDB
  // failed); nothing was applied.
  bool apply(const synod_apply_context& ctx, std::string_view command, std::string* result,
             std::string* error);
  // n commands at once (synod_backend_api::apply_batch): the same results as n
  // apply() calls, each command seeing the ones before it, written in ONE
  // RocksDB write. True: *results holds n KvResults. False: *error, and
  // nothing was applied.
  bool apply_batch(size_t n, const synod_apply_context* ctxs, const std::string_view* cmds,
                   std::vector<std::string>* results, std::string* error);

  // GET or LIST against the current state. True with the KvResult bytes (a
  // malformed request or a write op is a BAD_COMMAND result); false with
  // *error when RocksDB fails.
  bool query(std::string_view request, std::string* result, std::string* error);

  // The position of the last applied command (0 before the first).
  uint64_t last_applied() const { return last_applied_.load(std::memory_order_acquire); }
  // Writes and fsyncs RocksDB's WAL: every apply so far survives a crash,
  // also of the machine. False with *error.
  bool sync(std::string* error);

 private:
  KvStore(std::unique_ptr<rocksdb::DB> db, const Config& config, uint64_t last_applied);

  // Executes `cmd`, adding its writes to `batch` and reading through it
  // (nullptr: read-only, reads the database). False only when RocksDB fails.
  bool execute(const Command& cmd, rocksdb::WriteBatchWithIndex* batch, Result* result,
               std::string* error);
  bool read(std::string_view key, rocksdb::WriteBatchWithIndex* batch, std::string* value,
            bool* found, std::string* error);
  // LIST and COUNT.
  bool list(const Command& cmd, rocksdb::WriteBatchWithIndex* batch, Result* result,
            std::string* error);
  // MGET, MPUT and MDELETE.
  bool execute_multi(const Command& cmd, rocksdb::WriteBatchWithIndex* batch, Result* result,
                     std::string* error);

  std::unique_ptr<rocksdb::DB> db_;
  bool sync_ = false;
  // Written only by apply(); read from any thread.
  std::atomic<uint64_t> last_applied_{0};
};

}  // namespace synod::kv
