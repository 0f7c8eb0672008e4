#include "storage/log_store.h"

#include <fcntl.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <string_view>
#include <utility>

#include "codec/codec.h"
#include "common/check.h"

namespace synod::storage {

namespace {

namespace fs = std::filesystem;

constexpr char kAcceptedTag = 'a';
constexpr char kChosenTag = 'c';
constexpr char kMetaTag = 'm';
constexpr char kSessionTag = 's';

constexpr std::string_view kFormatName = "format";
constexpr std::string_view kNodeName = "node";
constexpr std::string_view kClusterName = "cluster";
constexpr std::string_view kPromisedName = "promised";
constexpr std::string_view kAppliedName = "applied";
constexpr std::string_view kPositionName = "position";
constexpr std::string_view kFirstName = "first";

constexpr std::size_t kSlotKeySize = 9;       // tag + u64
constexpr std::size_t kBallotSize = 12;       // u64 round + u32 node
constexpr std::size_t kSessionHeaderV1 = 16;  // u64 sequence + i64 last_ms
constexpr std::size_t kSessionHeader = 17;    // u64 sequence + i64 last_ms + u8 flags
constexpr std::uint8_t kKnownSessionFlags = kSessionResultLost;

void put_u32(std::string* out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

void put_u64(std::string* out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

std::uint32_t get_u32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::uint64_t get_u64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string meta_key(std::string_view name) {
  std::string k(1, kMetaTag);
  k.append(name);
  return k;
}

// Also used with a client id for session keys.
std::string slot_key(char tag, std::uint64_t slot) {
  std::string k(1, tag);
  put_u64(&k, slot);
  return k;
}

std::string u32_bytes(std::uint32_t v) {
  std::string s;
  put_u32(&s, v);
  return s;
}

std::string u64_bytes(std::uint64_t v) {
  std::string s;
  put_u64(&s, v);
  return s;
}

std::string ballot_bytes(const paxos::Ballot& b) {
  std::string s;
  put_u64(&s, b.round);
  put_u32(&s, b.node);
  return s;
}

paxos::Ballot ballot_from(const char* p) { return paxos::Ballot{get_u64(p), get_u32(p + 8)}; }

std::string accepted_bytes(const paxos::AcceptedEntry& e) {
  return ballot_bytes(e.ballot) + codec::encode_value(*e.value);
}

std::string session_bytes(const Session& s) {
  std::string out;
  put_u64(&out, s.sequence);
  put_u64(&out, static_cast<std::uint64_t>(s.last_ms));
  out.push_back(static_cast<char>(s.result_lost ? kSessionResultLost : 0));
  out.append(s.result);
  return out;
}

// The session of `client` stored as `bytes` in a store of format `version`
// (kFormatVersionV1 or kFormatVersion); false with *error when malformed.
bool decode_session(std::uint64_t client, std::string_view bytes, std::uint32_t version,
                    Session* out, std::string* error) {
  const std::size_t header = version == kFormatVersionV1 ? kSessionHeaderV1 : kSessionHeader;
  if (bytes.size() < header) {
    *error = "session of client " + std::to_string(client) + " is malformed (" +
             std::to_string(bytes.size()) + " bytes)";
    return false;
  }
  std::uint8_t flags = 0;
  if (version != kFormatVersionV1) {
    flags = static_cast<std::uint8_t>(bytes[kSessionHeaderV1]);
    if ((flags & ~kKnownSessionFlags) != 0) {
      *error = "session of client " + std::to_string(client) + " has unknown flags " +
               std::to_string(flags) + " (written by a newer build?)";
      return false;
    }
  }
  *out = Session{client, get_u64(bytes.data()), std::string(bytes.substr(header)),
                 static_cast<std::int64_t>(get_u64(bytes.data() + 8)),
                 (flags & kSessionResultLost) != 0};
  return true;
}

std::string_view view(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

// The accepted entry stored under 'a' slot; false with *error when malformed.
bool decode_accepted(paxos::Slot slot, std::string_view bytes, paxos::AcceptedEntry* out,
                     std::string* error) {
  if (bytes.size() < kBallotSize) {
    *error = "accepted entry of slot " + std::to_string(slot) + " is " +
             std::to_string(bytes.size()) + " bytes, shorter than a ballot";
    return false;
  }
  std::string why;
  paxos::ValuePtr value = codec::decode_value(bytes.substr(kBallotSize), &why);
  if (!value) {
    *error = "accepted value of slot " + std::to_string(slot) + " fails to decode: " + why;
    return false;
  }
  *out = paxos::AcceptedEntry{slot, ballot_from(bytes.data()), std::move(value)};
  return true;
}

bool decode_chosen(paxos::Slot slot, std::string_view bytes, paxos::ValuePtr* out,
                   std::string* error) {
  std::string why;
  *out = codec::decode_value(bytes, &why);
  if (!*out) {
    *error = "chosen value of slot " + std::to_string(slot) + " fails to decode: " + why;
    return false;
  }
  return true;
}

// A read-consistent view of the database, released on scope exit.
class ScopedSnapshot {
 public:
  explicit ScopedSnapshot(rocksdb::DB* db) : db_(db), snapshot_(db->GetSnapshot()) {}
  ~ScopedSnapshot() { db_->ReleaseSnapshot(snapshot_); }
  ScopedSnapshot(const ScopedSnapshot&) = delete;
  ScopedSnapshot& operator=(const ScopedSnapshot&) = delete;
  rocksdb::ReadOptions read_options() const {
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot_;
    return ro;
  }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snapshot_;
};

// A u64 meta record read after open() validated it; `absent` when missing.
std::uint64_t read_u64_meta(rocksdb::DB* db, const rocksdb::ReadOptions& ro, std::string_view name,
                            std::uint64_t absent) {
  std::string bytes;
  const rocksdb::Status s = db->Get(ro, meta_key(name), &bytes);
  if (s.IsNotFound()) return absent;
  SYNOD_CHECK_MSG(s.ok(), s.ToString().c_str());
  SYNOD_CHECK(bytes.size() == 8);
  return get_u64(bytes.data());
}

// fsync of a directory, so that the entries created in it survive a power loss.
bool sync_directory(const fs::path& path, std::string* error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    *error = "cannot sync directory " + path.string() + ": " + std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return false;
  }
  ::close(fd);
  return true;
}

std::string status_message(const std::string& dir, const std::string& what,
                           const rocksdb::Status& s) {
  return "storage " + dir + ": " + what + ": " + s.ToString();
}

}  // namespace

LogStore::LogStore(std::string dir, std::unique_ptr<rocksdb::DB> db)
    : dir_(std::move(dir)), db_(std::move(db)) {}

LogStore::~LogStore() {
  // Close() flushes nothing that is not already in the WAL; its status only
  // matters to callers that want to reopen at once, and they see it there.
  if (db_) db_->Close().PermitUncheckedError();
}

std::unique_ptr<LogStore> LogStore::open(const std::string& dir, paxos::NodeId node_id,
                                         std::uint64_t cluster_id, std::string* error,
                                         const OpenOptions& options) {
  SYNOD_CHECK(error != nullptr);
  auto fail = [&](const std::string& what) {
    *error = "storage " + dir + ": " + what;
    return nullptr;
  };
  if (node_id == paxos::kNoNode) return fail("node id 0 is reserved (it means \"nobody\")");

  std::error_code ec;
  // The directories this call creates; their parents are synced afterwards,
  // or a power loss soon after the first start could lose the whole store
  // (RocksDB syncs the entries inside dir, not dir's own entry).
  std::vector<fs::path> created;
  for (fs::path p = fs::absolute(dir, ec); !ec && p != p.parent_path() && !fs::exists(p, ec);
       p = p.parent_path()) {
    created.push_back(p);
  }
  fs::create_directories(dir, ec);
  if (ec) return fail("cannot create the directory: " + ec.message());
  for (const fs::path& p : created) {
    std::string why;
    if (!sync_directory(p.parent_path(), &why)) return fail(why);
  }
  const bool exists = fs::exists(fs::path(dir) / "CURRENT", ec);
  if (ec) return fail("cannot inspect the directory: " + ec.message());
  if (!exists) {
    const bool empty = fs::is_empty(dir, ec);
    if (ec) return fail("cannot inspect the directory: " + ec.message());
    // Creating a store next to unknown files could hide a damaged store
    // (say, one whose CURRENT file was lost) behind a fresh empty one.
    if (!empty) {
      return fail(
          "the directory is not empty but holds no store (no RocksDB CURRENT file); "
          "refusing to create one there");
    }
  }

  rocksdb::Options o;
  o.create_if_missing = !exists;
  o.error_if_exists = !exists;
  o.paranoid_checks = true;
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  o.keep_log_file_num = 4;
  // No background retries of retryable I/O errors: write() calls Resume() at
  // the next write instead. (A full disk is still recovered in the background
  // by RocksDB's SstFileManager once space is free; see write().)
  o.max_bgerror_resume_count = 0;
  if (options.env != nullptr) o.env = options.env;

  rocksdb::DB* raw = nullptr;
  const rocksdb::Status s = rocksdb::DB::Open(o, dir, &raw);
  if (!s.ok()) {
    *error = status_message(dir, "cannot open the RocksDB database", s);
    if (s.IsCorruption()) {
      // Starting with whatever part is readable could forget promises made.
      *error += " (damaged files: refusing to start with a partial acceptor state)";
    }
    return nullptr;
  }
  std::unique_ptr<LogStore> store(new LogStore(dir, std::unique_ptr<rocksdb::DB>(raw)));
  if (!store->verify(node_id, cluster_id, error)) return nullptr;
  return store;
}

bool LogStore::verify(paxos::NodeId node_id, std::uint64_t cluster_id, std::string* error) {
  auto fail = [&](const std::string& what) {
    *error = "storage " + dir_ + ": " + what;
    return false;
  };

  std::map<std::string, std::string, std::less<>> meta;
  std::uint64_t records = 0;
  paxos::Slot lowest_accepted = 0;
  paxos::Slot lowest_chosen = 0;
  std::set<paxos::Slot> accepted_slots;
  {
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;  // one pass over everything: do not evict what is hot
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      ++records;
      const std::string_view key = view(it->key());
      const std::string_view value = view(it->value());
      if (key.empty()) return fail("a record with an empty key: not a Synod store, or damaged");
      const char tag = key[0];
      if (tag == kMetaTag) {
        const std::string_view name = key.substr(1);
        if (name != kFormatName && name != kNodeName && name != kClusterName &&
            name != kPromisedName && name != kAppliedName && name != kPositionName &&
            name != kFirstName) {
          return fail("unknown meta record \"" + std::string(name) + "\"");
        }
        meta.emplace(std::string(name), std::string(value));
        continue;
      }
      if (tag != kAcceptedTag && tag != kChosenTag && tag != kSessionTag) {
        static constexpr char kHex[] = "0123456789abcdef";
        const auto byte = static_cast<unsigned char>(tag);
        return fail(std::string("unknown record (key tag 0x") + kHex[byte >> 4] + kHex[byte & 15] +
                    "): not a Synod store, or damaged");
      }
      if (key.size() != kSlotKeySize) {
        return fail("malformed key of " + std::to_string(key.size()) + " bytes with tag '" +
                    std::string(1, tag) + "'");
      }
      const std::uint64_t n = get_u64(key.data() + 1);
      if (tag == kSessionTag) continue;  // checked below, by the format version
      if (n == 0)
        return fail(std::string(tag == kAcceptedTag ? "accepted" : "chosen") +
                    " entry at slot 0 (slots start at 1)");
      std::string why;
      if (tag == kAcceptedTag) {
        paxos::AcceptedEntry e;
        if (!decode_accepted(n, value, &e, &why)) return fail(why);
        if (lowest_accepted == 0) lowest_accepted = n;
        accepted_slots.insert(n);
      } else {
        paxos::ValuePtr v;
        if (!decode_chosen(n, value, &v, &why)) return fail(why);
        if (lowest_chosen == 0) lowest_chosen = n;
      }
    }
    if (!it->status().ok()) {
      *error = status_message(dir_, "cannot read the store", it->status());
      return false;
    }
  }

  if (records == 0) {
    // A new store, or a crash between creating the database and this write.
    rocksdb::WriteBatch wb;
    wb.Put(meta_key(kFormatName), u32_bytes(kFormatVersion));
    wb.Put(meta_key(kNodeName), u32_bytes(node_id));
    wb.Put(meta_key(kClusterName), u64_bytes(cluster_id));
    std::lock_guard lock(mu_);
    return write(&wb, /*sync=*/true, error);
  }

  auto format = meta.find(kFormatName);
  if (format == meta.end()) {
    return fail("holds " + std::to_string(records) +
                " records but no format version: not a Synod store, or its meta records are "
                "lost");
  }
  if (format->second.size() != 4) return fail("malformed format version record");
  const std::uint32_t version = get_u32(format->second.data());
  if (version != kFormatVersion && version != kFormatVersionV1) {
    return fail("format version " + std::to_string(version) + " is unknown (this build reads " +
                std::to_string(kFormatVersionV1) + " and " + std::to_string(kFormatVersion) + ")");
  }

  auto node = meta.find(kNodeName);
  auto cluster = meta.find(kClusterName);
  if (node == meta.end() || node->second.size() != 4) return fail("missing or malformed node id");
  if (cluster == meta.end() || cluster->second.size() != 8) {
    return fail("missing or malformed cluster id");
  }
  const std::uint32_t stored_node = get_u32(node->second.data());
  const std::uint64_t stored_cluster = get_u64(cluster->second.data());
  if (stored_node != node_id) {
    return fail("the store belongs to node " + std::to_string(stored_node) + ", not to node " +
                std::to_string(node_id) +
                " (a data directory copied from another node, or the wrong node id?)");
  }
  if (stored_cluster != cluster_id) {
    return fail("the store belongs to cluster " + std::to_string(stored_cluster) +
                ", not to cluster " + std::to_string(cluster_id) +
                " (a data directory from another cluster?)");
  }

  paxos::Ballot promised;
  if (auto m = meta.find(kPromisedName); m != meta.end()) {
    if (m->second.size() != kBallotSize) return fail("malformed promised ballot record");
    promised = ballot_from(m->second.data());
  }
  paxos::Slot applied = 0;
  if (auto m = meta.find(kAppliedName); m != meta.end()) {
    if (m->second.size() != 8) return fail("malformed applied record");
    applied = get_u64(m->second.data());
  }
  std::uint64_t position = 0;
  if (auto m = meta.find(kPositionName); m != meta.end()) {
    if (m->second.size() != 8) return fail("malformed applied position record");
    position = get_u64(m->second.data());
  }
  paxos::Slot first = 1;
  if (auto m = meta.find(kFirstName); m != meta.end()) {
    if (m->second.size() != 8) return fail("malformed first-slot record");
    first = get_u64(m->second.data());
    if (first == 0) return fail("first stored slot is 0 (slots start at 1)");
  }
  // Chosen values above applied may be compacted away (a snapshot covers
  // them), so applied may exceed the highest stored chosen slot; but nothing
  // below first can still be waiting to be applied.
  if (applied + 1 < first) {
    return fail("applied slot " + std::to_string(applied) + " is below first stored slot " +
                std::to_string(first) + " minus 1: slots " + std::to_string(applied + 1) + ".." +
                std::to_string(first - 1) + " were compacted away before they were applied");
  }
  if (lowest_accepted != 0 && lowest_accepted < first) {
    return fail("accepted entry at slot " + std::to_string(lowest_accepted) +
                " is below the first stored slot " + std::to_string(first) +
                " (it should have been compacted)");
  }
  if (lowest_chosen != 0 && lowest_chosen < first) {
    return fail("chosen value at slot " + std::to_string(lowest_chosen) +
                " is below the first stored slot " + std::to_string(first) +
                " (it should have been compacted)");
  }

  // Sessions: their layout depends on the format version (see the header).
  // A version-1 store is upgraded here, in one synced write.
  rocksdb::WriteBatch upgrade;
  {
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    for (it->Seek(std::string(1, kSessionTag)); it->Valid(); it->Next()) {
      const std::string_view key = view(it->key());
      if (key[0] != kSessionTag) break;
      const std::uint64_t client = get_u64(key.data() + 1);
      Session session;
      std::string why;
      if (!decode_session(client, view(it->value()), version, &session, &why)) return fail(why);
      if (version == kFormatVersionV1) upgrade.Put(it->key(), session_bytes(session));
    }
    if (!it->status().ok()) {
      *error = status_message(dir_, "cannot read the store", it->status());
      return false;
    }
  }

  std::lock_guard lock(mu_);
  if (version == kFormatVersionV1) {
    upgrade.Put(meta_key(kFormatName), u32_bytes(kFormatVersion));
    std::string why;
    if (!write(&upgrade, /*sync=*/true, &why)) {
      *error = "cannot upgrade the store from format version " + std::to_string(kFormatVersionV1) +
               " to " + std::to_string(kFormatVersion) + ": " + why;
      return false;
    }
  }
  promised_ = promised;
  accepted_slots_ = std::move(accepted_slots);
  applied_.store(applied, std::memory_order_release);
  position_.store(position, std::memory_order_release);
  first_slot_.store(first, std::memory_order_release);
  return true;
}

bool LogStore::write(rocksdb::WriteBatch* batch, bool sync, std::string* error) {
  if (!write_error_.empty()) {
    // After a failed WAL write RocksDB refuses every write until it resumes:
    // by itself in the background once a full disk has room again (Busy
    // meanwhile), or never, after a failed fsync (fatal: the page cache can
    // no longer be trusted). Resuming flushes the memtables, which never saw
    // the failed batch, and starts a new WAL, so it is not replayed later.
    const rocksdb::Status r = db_->Resume();
    if (r.IsBusy()) {
      *error = "storage " + dir_ + ": still recovering from an earlier failed write (" +
               write_error_ + "); try again later";
      return false;
    }
    if (!r.ok()) {
      *error = "storage " + dir_ + ": writes stopped after a failed write (" + write_error_ +
               "); restart the node: " + r.ToString();
      return false;
    }
    write_error_.clear();
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  const rocksdb::Status s = db_->Write(wo, batch);
  if (!s.ok()) {
    write_error_ = s.ToString();
    *error = status_message(dir_, "write failed", s);
    return false;
  }
  if (sync) {
    ++stats_.syncs;
    stats_.bytes_synced += batch->GetDataSize();
  }
  return true;
}

paxos::DurableState LogStore::load() const {
  const ScopedSnapshot snapshot(db_.get());
  const rocksdb::ReadOptions ro = snapshot.read_options();
  paxos::DurableState state;
  // Read under the snapshot, not from applied_: a record_applied() racing
  // with load() must not make the two disagree.
  const paxos::Slot applied = read_u64_meta(db_.get(), ro, kAppliedName, 0);
  state.applied = applied;

  std::string bytes;
  const rocksdb::Status s = db_->Get(ro, meta_key(kPromisedName), &bytes);
  if (s.ok()) {
    SYNOD_CHECK(bytes.size() == kBallotSize);
    state.promised = ballot_from(bytes.data());
  } else {
    SYNOD_CHECK_MSG(s.IsNotFound(), s.ToString().c_str());
  }

  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  std::string why;
  for (it->Seek(slot_key(kAcceptedTag, applied + 1)); it->Valid(); it->Next()) {
    const std::string_view key = view(it->key());
    if (key[0] != kAcceptedTag) break;
    paxos::AcceptedEntry e;
    SYNOD_CHECK_MSG(decode_accepted(get_u64(key.data() + 1), view(it->value()), &e, &why),
                    why.c_str());
    state.accepted.push_back(std::move(e));
  }
  for (it->Seek(slot_key(kChosenTag, applied + 1)); it->Valid(); it->Next()) {
    const std::string_view key = view(it->key());
    if (key[0] != kChosenTag) break;
    const paxos::Slot slot = get_u64(key.data() + 1);
    paxos::ValuePtr v;
    SYNOD_CHECK_MSG(decode_chosen(slot, view(it->value()), &v, &why), why.c_str());
    state.chosen.push_back(paxos::ChosenEntry{slot, std::move(v)});
  }
  SYNOD_CHECK_MSG(it->status().ok(), it->status().ToString().c_str());
  return state;
}

bool LogStore::persist(const paxos::PersistBatch& batch, std::string* error) {
  SYNOD_CHECK(error != nullptr);
  std::lock_guard lock(mu_);
  const paxos::Slot first = first_slot();
  rocksdb::WriteBatch wb;
  std::uint64_t entries = 0;
  std::vector<paxos::Slot> accepted;
  if (batch.promised) {
    SYNOD_CHECK_MSG(promised_ <= *batch.promised, "a promised ballot must never go down");
    wb.Put(meta_key(kPromisedName), ballot_bytes(*batch.promised));
    ++entries;
  }
  for (const paxos::AcceptedEntry& e : batch.accepted) {
    SYNOD_CHECK(e.slot >= 1 && e.value != nullptr);
    if (e.slot < first) continue;  // covered by a snapshot
    wb.Put(slot_key(kAcceptedTag, e.slot), accepted_bytes(e));
    accepted.push_back(e.slot);
    ++entries;
  }
  for (const paxos::ChosenEntry& e : batch.chosen) {
    SYNOD_CHECK(e.slot >= 1 && e.value != nullptr);
    if (e.slot < first) continue;
    wb.Put(slot_key(kChosenTag, e.slot), codec::encode_value(*e.value));
    ++entries;
  }
  if (entries == 0) return true;
  // Chosen values alone need no fsync of their own (see the header).
  const bool sync = batch.promised || !accepted.empty();
  if (!write(&wb, sync, error)) return false;
  if (batch.promised) promised_ = *batch.promised;
  accepted_slots_.insert(accepted.begin(), accepted.end());
  ++stats_.batches;
  stats_.entries += entries;
  return true;
}

bool LogStore::record_applied(paxos::Slot applied, std::uint64_t position,
                              const std::vector<Session>& upserts,
                              const std::vector<std::uint64_t>& erased_clients,
                              std::string* error) {
  SYNOD_CHECK(error != nullptr);
  std::lock_guard lock(mu_);
  SYNOD_CHECK_MSG(applied >= this->applied(), "the applied point must not go backwards");
  SYNOD_CHECK_MSG(position >= applied_position(), "the applied position must not go backwards");
  rocksdb::WriteBatch wb;
  wb.Put(meta_key(kAppliedName), u64_bytes(applied));
  wb.Put(meta_key(kPositionName), u64_bytes(position));
  for (std::uint64_t client : erased_clients) wb.Delete(slot_key(kSessionTag, client));
  for (const Session& s : upserts) wb.Put(slot_key(kSessionTag, s.client_id), session_bytes(s));
  // Point deletes of exactly the slots on disk, not a range scan: a scan would
  // wade through the tombstones of every earlier call.
  const auto done = accepted_slots_.upper_bound(applied);
  for (auto it = accepted_slots_.begin(); it != done; ++it) {
    wb.Delete(slot_key(kAcceptedTag, *it));
  }
  if (!write(&wb, /*sync=*/false, error)) return false;
  accepted_slots_.erase(accepted_slots_.begin(), done);
  applied_.store(applied, std::memory_order_release);
  position_.store(position, std::memory_order_release);
  ++stats_.applied_writes;
  return true;
}

std::vector<Session> LogStore::load_sessions() const {
  std::vector<Session> sessions;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(std::string(1, kSessionTag)); it->Valid(); it->Next()) {
    const std::string_view key = view(it->key());
    const std::string_view value = view(it->value());
    if (key[0] != kSessionTag) break;
    SYNOD_CHECK(key.size() == kSlotKeySize);
    Session s;
    std::string why;
    SYNOD_CHECK_MSG(decode_session(get_u64(key.data() + 1), value, kFormatVersion, &s, &why),
                    why.c_str());
    sessions.push_back(std::move(s));
  }
  SYNOD_CHECK_MSG(it->status().ok(), it->status().ToString().c_str());
  return sessions;
}

paxos::ValuePtr LogStore::chosen(paxos::Slot slot) const {
  if (slot == 0 || slot < first_slot()) return nullptr;
  rocksdb::PinnableSlice bytes;
  const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), db_->DefaultColumnFamily(),
                                     slot_key(kChosenTag, slot), &bytes);
  if (s.IsNotFound()) return nullptr;
  SYNOD_CHECK_MSG(s.ok(), status_message(dir_, "chosen value read failed", s).c_str());
  paxos::ValuePtr value;
  std::string why;
  SYNOD_CHECK_MSG(decode_chosen(slot, view(bytes), &value, &why), why.c_str());
  return value;
}

bool LogStore::compact(paxos::Slot first, std::string* error) {
  SYNOD_CHECK(error != nullptr);
  std::lock_guard lock(mu_);
  SYNOD_CHECK_MSG(first <= applied() + 1, "compact: cannot drop slots that are not applied yet");
  const paxos::Slot old_first = first_slot();
  if (first <= old_first) return true;
  rocksdb::WriteBatch wb;
  // One range tombstone: chosen() never reads below first_slot(), and load()
  // seeks past it, so no read wades through the deleted range.
  wb.DeleteRange(slot_key(kChosenTag, old_first), slot_key(kChosenTag, first));
  const auto below = accepted_slots_.lower_bound(first);
  for (auto it = accepted_slots_.begin(); it != below; ++it) {
    wb.Delete(slot_key(kAcceptedTag, *it));
  }
  wb.Put(meta_key(kFirstName), u64_bytes(first));
  if (!write(&wb, /*sync=*/true, error)) return false;
  accepted_slots_.erase(accepted_slots_.begin(), below);
  first_slot_.store(first, std::memory_order_release);
  return true;
}

Stats LogStore::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace synod::storage
