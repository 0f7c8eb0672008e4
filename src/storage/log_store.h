// The durable state of one node: its acceptor state (promised ballot, accepted
// (ballot, value) per slot), the chosen values of its log, the applied point and
// the exactly-once session table. Backed by one RocksDB database per node.
//
// On-disk layout
// --------------
// One RocksDB database in `dir`, default column family only. Every key starts
// with a one-byte tag; slots and client ids are 8-byte big-endian integers, so
// RocksDB's bytewise key order is slot order within a tag. All integers in
// values are big-endian too.
//
//   key                        value
//   'm' "format"               u32 format version (kFormatVersion; see "Format versions")
//   'm' "node"                 u32 node id the store was created for
//   'm' "cluster"              u64 cluster id the store was created for
//   'm' "promised"             u64 round, u32 node       (absent: the null ballot)
//   'm' "applied"              u64 last applied slot     (absent: 0)
//   'm' "position"             u64 command position of that slot's end (absent: 0)
//   'm' "first"                u64 first stored slot     (absent: 1)
//   'a' u64 slot               u64 round, u32 node, then codec::encode_value(value)
//   'c' u64 slot               codec::encode_value(value)
//   's' u64 client id          u64 sequence, i64 last_ms, u8 flags, then the result bytes
//
// Session flags: bit 0 (kSessionResultLost) is Session::result_lost; the other
// bits are 0 (open() refuses a store with any other bit set: written by a
// newer build).
//
// Format versions
// ---------------
//   1  's' values have no flags byte: u64 sequence, i64 last_ms, then the
//      result bytes (every session's result was kept).
//   2  (this build) 's' values have the flags byte after last_ms.
// A version is the whole store's, not a record's: the result bytes are
// arbitrary, so a record cannot tell by itself which layout it has. open()
// reads version 1 and upgrades it in place before anything else reads it:
// one synced WriteBatch rewrites every session record with flags 0 and sets
// the format to 2 (a crash before it leaves version 1, after it version 2).
// From then on an older build refuses the store ("format version 2 is
// unknown") instead of reading the flags byte as the first byte of a result;
// going back to an older build needs a fresh data directory for that node.
//
// Invariants (checked by open()): every 'a'/'c' slot is >= 1 and >= first;
// applied >= first - 1; every value decodes; every session value has its
// header and only known flags; no key outside the tags above.
//
// Why this shape
// --------------
// - One column family with tag prefixes rather than one family per kind: a
//   WriteBatch is atomic across families anyway, and one family means one
//   memtable and one set of files to reason about. Nothing here needs a
//   per-kind tuning that families would buy.
// - Group commit: persist() turns one PersistBatch (everything one event-loop
//   turn of the core produced, or several merged by the node's storage
//   thread) into ONE WriteBatch written with sync=true, i.e. one WAL append
//   and one fdatasync, whatever the number of entries.
// - A batch of chosen values only (no promise, no accepted entry) is written
//   with sync=false: a chosen value is durable on a majority of acceptors
//   already, and RocksDB's WAL is one sequential file, so a power loss can
//   only lose a suffix of writes — the unsynced chosen marks together with
//   everything after them, never a synced promise or accept. Nothing is
//   answered on the strength of a chosen mark alone. (This takes one fsync
//   per write off the leader's path: its chosen marks used to cost one.)
// - record_applied() writes with sync=false: losing it only makes the node
//   replay from an older applied point, and backends skip slots they already
//   applied. The next synced write (RocksDB's WAL is one sequential file) makes
//   it durable anyway.
// - WAL recovery mode is kTolerateCorruptedTailRecords, not RocksDB's default
//   kPointInTimeRecovery: the latter silently stops replay at a damaged WAL
//   record and drops every *synced* write after it, i.e. an acceptor would
//   forget promises it made. We prefer to refuse to start with RocksDB's
//   "Corruption" message. A torn record at the very end (a write that was in
//   flight at power loss, never acknowledged) is still tolerated.
// - open() reads every record once and decodes every value, so a store that
//   fails to decode is refused at start-up rather than on some later catch-up
//   read. That is O(stored log); compact() keeps the stored log bounded. After
//   a successful open, a value that fails to decode or a failing RocksDB read
//   is a broken invariant (disk failure under a running node): SYNOD_CHECK.
// - Per-value checksums are not added: RocksDB checksums every WAL record and
//   every SST block (crc32c) and verifies them on read (paranoid_checks).
// - open() fsyncs the parent of every directory it creates: RocksDB syncs the
//   files inside dir, not dir's own entry, and a store whose directory
//   vanishes in a power loss would restart empty, forgetting its promises.
// - A RocksDB database that exists but holds no key at all is (re)initialized:
//   that is a crash between creating the database and writing its meta keys.
//   A directory that is not empty but holds no database (no CURRENT file) is
//   refused, as is a database with keys but no format version.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "paxos/chosen_log.h"
#include "paxos/ready.h"
#include "paxos/types.h"

namespace rocksdb {
class DB;
class Env;
class WriteBatch;
}  // namespace rocksdb

namespace synod::storage {

// The on-disk format this build writes (see the layout above); open() also
// reads kFormatVersionV1 and upgrades it to this one.
inline constexpr std::uint32_t kFormatVersion = 2;
inline constexpr std::uint32_t kFormatVersionV1 = 1;  // session values without flags

// Session value flags (format version 2).
inline constexpr std::uint8_t kSessionResultLost = 0x01;

// The last reply to one client, for exactly-once application of retried
// commands: a command (client_id, s) with s <= sequence was already applied.
struct Session {
  std::uint64_t client_id = 0;
  std::uint64_t sequence = 0;
  std::string result;
  std::int64_t last_ms = 0;  // when the session was last used (wall clock, for expiry)
  // The command was applied but its result was not kept (its backend had it
  // already when the node replayed the slot after a restart): `result` is
  // empty, and a retry must say the result was lost rather than return it.
  // Sessions from a version-1 store load with false.
  bool result_lost = false;

  bool operator==(const Session&) const = default;
};

struct Stats {
  std::uint64_t syncs = 0;           // synced RocksDB writes (persist, compact, creation)
  std::uint64_t bytes_synced = 0;    // WriteBatch bytes of those writes
  std::uint64_t batches = 0;         // non-empty PersistBatches made durable
  std::uint64_t entries = 0;         // promised + accepted + chosen records those carried
  std::uint64_t applied_writes = 0;  // record_applied() writes (not synced)
};

struct OpenOptions {
  // Test seam: the RocksDB environment (its file system) to run on; must
  // outlive the store. nullptr: the real one.
  rocksdb::Env* env = nullptr;
};

// Thread safety: every method may be called from any thread; writes are
// serialized by an internal mutex, reads go straight to RocksDB.
class LogStore final : public paxos::ChosenLog {
 public:
  // Opens the store in dir, or creates it (and dir) when dir is missing or
  // empty. Returns nullptr with a message in *error (never null) when:
  // dir cannot be created or is not empty but holds no store; RocksDB cannot
  // open it (locked by another process, corrupt files or WAL); the store was
  // created for another node id or cluster id, or in an unknown format
  // version (version 1 is upgraded, see "Format versions"; a failed upgrade
  // write is an error too); any record is malformed or fails to decode; or
  // the meta keys contradict each other (applied < first - 1, a slot below first).
  // Never starts empty on top of a store it could not read. node_id must not
  // be 0 (kNoNode); an error says so.
  static std::unique_ptr<LogStore> open(const std::string& dir, paxos::NodeId node_id,
                                        std::uint64_t cluster_id, std::string* error,
                                        const OpenOptions& options = {});
  ~LogStore() override;
  LogStore(const LogStore&) = delete;
  LogStore& operator=(const LogStore&) = delete;

  // What the core needs at start-up: the promised ballot, the accepted and
  // chosen entries with slot > applied() (ascending), and applied().
  paxos::DurableState load() const;

  // Makes one PersistBatch durable as ONE WriteBatch written with sync=true
  // (group commit: call it once per event-loop turn with everything that turn
  // produced). An empty batch (or one with only entries below first_slot(),
  // which are covered by a snapshot and dropped) writes nothing and returns
  // true. Values must be non-null, slots >= 1, and a promised ballot must not
  // be below the stored one (SYNOD_CHECK).
  // Returns false with *error on failure (disk full, I/O error): then none of
  // the batch is visible to load() or chosen(), and after a restart either all
  // of it or none of it is. The caller must not send that Ready's messages; its
  // core has moved on in memory, so it must rebuild the core from load() (or
  // stop). After a failed write RocksDB refuses all writes until it resumes:
  // - disk full: it resumes by itself once there is room; until then every
  //   write fails with "still recovering ... try again later";
  // - a failed fsync (or other I/O error): it never resumes; every write
  //   fails with "... restart the node". The node should stop: a restart
  //   reopens the store (and may find the failed batch there, entirely).
  bool persist(const paxos::PersistBatch& batch, std::string* error);

  // After the driver applied slots through `applied` to the state machine:
  // records the applied point, its command position (the driver's count of
  // commands applied through that slot, which backends use to skip what they
  // already applied) and the session table changes (erasures first, then
  // upserts) in one atomic, unsynced write, and drops accepted entries of
  // slots <= applied (chosen and applied there, so no Promise needs them).
  // Neither applied nor position may go below the stored ones (SYNOD_CHECK);
  // equal is fine (session changes only). False with *error on failure, with
  // nothing changed.
  bool record_applied(paxos::Slot applied, std::uint64_t position,
                      const std::vector<Session>& upserts,
                      const std::vector<std::uint64_t>& erased_clients, std::string* error);

  // The last recorded applied slot (0: none) and its command position (0: none).
  paxos::Slot applied() const { return applied_.load(std::memory_order_acquire); }
  std::uint64_t applied_position() const { return position_.load(std::memory_order_acquire); }
  // Every stored session, by ascending client id.
  std::vector<Session> load_sessions() const;

  // ChosenLog. chosen(): the stored chosen value of slot, or nullptr when not
  // stored (not learned here, slot 0, or below first_slot()). One RocksDB Get
  // and one decode per call; no cache (RocksDB's block cache holds recent
  // blocks). The pointer is the caller's to keep.
  paxos::ValuePtr chosen(paxos::Slot slot) const override;
  paxos::Slot first_slot() const override { return first_slot_.load(std::memory_order_acquire); }

  // Drops chosen values and accepted entries of slots below `first` (they are
  // covered by a snapshot) and makes first_slot() == first, in one synced
  // write. first must be <= applied() + 1 (SYNOD_CHECK); first <= first_slot()
  // does nothing. False with *error on failure, with nothing changed.
  bool compact(paxos::Slot first, std::string* error);

  Stats stats() const;
  const std::string& dir() const { return dir_; }

 private:
  LogStore(std::string dir, std::unique_ptr<rocksdb::DB> db);
  // Reads and validates every record (see the invariants above); fills the
  // in-memory mirrors. False with *error naming the first problem.
  bool verify(paxos::NodeId node_id, std::uint64_t cluster_id, std::string* error);
  bool write(rocksdb::WriteBatch* batch, bool sync, std::string* error);

  const std::string dir_;
  std::unique_ptr<rocksdb::DB> db_;

  mutable std::mutex mu_;  // serializes writers; guards the members below
  paxos::Ballot promised_;
  std::set<paxos::Slot> accepted_slots_;  // slots with an 'a' record on disk
  Stats stats_;
  std::string write_error_;  // the failed write RocksDB must resume from before the next one
  std::atomic<paxos::Slot> applied_{0};
  std::atomic<std::uint64_t> position_{0};
  std::atomic<paxos::Slot> first_slot_{1};
};

}  // namespace synod::storage
