#include "backends/kv/kv_store.h"

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/comparator.h>
#include <rocksdb/utilities/write_batch_with_index.h>
#include <rocksdb/write_batch.h>

#include <charconv>
#include <set>
#include <utility>

#include "common/check.h"
#include "synod/backend_util.hpp"

namespace synod::kv {
namespace {

constexpr char kUserPrefix = 'u';
const std::string kFormatKey = "mformat";
const std::string kFormat = "synod-kv 1";
const std::string kAppliedKey = "mapplied";

std::string user_key(std::string_view key) {
  std::string k;
  k.reserve(key.size() + 1);
  k.push_back(kUserPrefix);
  k.append(key);
  return k;
}

rocksdb::Slice slice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

std::string encode_position(uint64_t position) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(position >> (56 - 8 * i));
  return out;
}

bool decode_position(std::string_view in, uint64_t* position) {
  if (in.size() != 8) return false;
  *position = 0;
  for (int i = 0; i < 8; ++i) *position = (*position << 8) | static_cast<uint8_t>(in[i]);
  return true;
}

// User bytes inside an error text: printable ASCII, escaped, cut short. (The
// error is a proto3 `string`, which must be valid UTF-8.)
std::string printable(std::string_view bytes) {
  constexpr size_t kMax = 64;
  static const char* kHex = "0123456789abcdef";
  std::string out = "\"";
  for (size_t i = 0; i < bytes.size() && i < kMax; ++i) {
    auto c = static_cast<unsigned char>(bytes[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  out += bytes.size() > kMax ? "\"..." : "\"";
  return out;
}

const char* op_name(int32_t op) {
  switch (static_cast<Op>(op)) {
    case Op::kGet:
      return "GET";
    case Op::kPut:
      return "PUT";
    case Op::kDelete:
      return "DELETE";
    case Op::kCas:
      return "CAS";
    case Op::kIncrement:
      return "INCREMENT";
    case Op::kList:
      return "LIST";
    case Op::kMget:
      return "MGET";
    case Op::kMput:
      return "MPUT";
    case Op::kMdelete:
      return "MDELETE";
    case Op::kCount:
      return "COUNT";
  }
  return "unknown";
}

Result bad_command(std::string why) {
  Result r;
  r.code = Code::kBadCommand;
  r.error = std::move(why);
  return r;
}

// Why a key cannot be used, or "" when it can.
std::string bad_key(int32_t op, std::string_view key) {
  if (key.empty()) return std::string(op_name(op)) + " needs a key";
  if (key.size() > kMaxKeyBytes) {
    return "key of " + std::to_string(key.size()) + " bytes; at most " +
           std::to_string(kMaxKeyBytes);
  }
  return "";
}

bool is_read(int32_t op) {
  const auto o = static_cast<Op>(op);
  return o == Op::kGet || o == Op::kList || o == Op::kMget || o == Op::kCount;
}

}  // namespace

std::unique_ptr<KvStore> KvStore::open(const Config& config, std::string* error) {
  if (!backend_util::make_data_dir(config.data_dir, error)) return nullptr;
  rocksdb::Options options;
  options.create_if_missing = true;
  // The WAL stays in memory until sync() (see the header); with sync=true
  // every apply is written and synced at once anyway.
  options.manual_wal_flush = !config.sync;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, config.data_dir, &raw);
  if (!s.ok()) {
    *error = "cannot open RocksDB in " + config.data_dir + ": " + s.ToString();
    return nullptr;
  }
  std::unique_ptr<rocksdb::DB> db(raw);

  std::string format;
  s = db->Get(rocksdb::ReadOptions(), kFormatKey, &format);
  if (s.IsNotFound()) {
    // New, or not ours: a database with anything in it is not a new kv store.
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    it->SeekToFirst();
    if (it->Valid()) {
      *error = config.data_dir + " holds a RocksDB database that is not a Synod kv store";
      return nullptr;
    }
    if (!it->status().ok()) {
      *error = "cannot read " + config.data_dir + ": " + it->status().ToString();
      return nullptr;
    }
    rocksdb::WriteOptions wo;
    wo.sync = true;
    rocksdb::WriteBatch batch;
    batch.Put(kFormatKey, kFormat);
    batch.Put(kAppliedKey, encode_position(0));
    s = db->Write(wo, &batch);
    if (!s.ok()) {
      *error = "cannot initialise " + config.data_dir + ": " + s.ToString();
      return nullptr;
    }
  } else if (!s.ok()) {
    *error = "cannot read " + config.data_dir + ": " + s.ToString();
    return nullptr;
  } else if (format != kFormat) {
    *error = config.data_dir + " has kv store format " + printable(format) + ", expected " +
             printable(kFormat);
    return nullptr;
  }

  std::string applied;
  uint64_t position = 0;
  s = db->Get(rocksdb::ReadOptions(), kAppliedKey, &applied);
  if (!s.ok() || !decode_position(applied, &position)) {
    *error = config.data_dir + ": cannot read the last applied position (" +
             (s.ok() ? "corrupt value" : s.ToString()) + ")";
    return nullptr;
  }
  return std::unique_ptr<KvStore>(new KvStore(std::move(db), config, position));
}

KvStore::KvStore(std::unique_ptr<rocksdb::DB> db, const Config& config, uint64_t last_applied)
    : db_(std::move(db)), sync_(config.sync), last_applied_(last_applied) {}

KvStore::~KvStore() {
  if (!db_) return;
  // A clean close keeps everything applied; a failure here leaves nothing to
  // do but go on closing (the node replays what is lost).
  (void)db_->FlushWAL(/*sync=*/true);
  db_->Close();
}

bool KvStore::apply(const synod_apply_context& ctx, std::string_view command, std::string* result,
                    std::string* error) {
  std::vector<std::string> results;
  if (!apply_batch(1, &ctx, &command, &results, error)) return false;
  *result = std::move(results[0]);
  return true;
}

bool KvStore::apply_batch(size_t n, const synod_apply_context* ctxs, const std::string_view* cmds,
                          std::vector<std::string>* results, std::string* error) {
  // One indexed write batch for all n: each command reads through it, so it
  // sees the effects of the ones before it, as n separate applies would.
  rocksdb::WriteBatchWithIndex batch(rocksdb::BytewiseComparator(), 0, /*overwrite_key=*/true);
  const uint64_t last = last_applied_.load(std::memory_order_relaxed);
  uint64_t position = last;
  std::vector<std::string> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const synod_apply_context& ctx = ctxs[i];
    Result r;
    if (ctx.slot <= position) {
      r.error = "position " + std::to_string(ctx.slot) +
                " was already applied (last applied: " + std::to_string(position) +
                "); not applied again";
      out.push_back(encode_result(r));
      continue;
    }
    Command cmd;
    std::string why;
    if (!decode_command(cmds[i], &cmd, &why)) {
      r = bad_command(why);
    } else if (!execute(cmd, &batch, &r, error)) {
      return false;  // nothing written
    }
    position = ctx.slot;
    // Encoded before the write, so nothing can fail once the effect is durable.
    out.push_back(encode_result(r));
  }
  if (position != last) {
    batch.Put(kAppliedKey, encode_position(position));
    rocksdb::WriteOptions wo;
    wo.sync = sync_;
    rocksdb::Status s = db_->Write(wo, batch.GetWriteBatch());
    if (!s.ok()) {
      *error = "RocksDB write failed: " + s.ToString();
      return false;
    }
    last_applied_.store(position, std::memory_order_release);
  }
  *results = std::move(out);
  return true;
}

bool KvStore::sync(std::string* error) {
  if (sync_) return true;  // every apply was synced already
  rocksdb::Status st = db_->FlushWAL(/*sync=*/true);
  if (!st.ok()) {
    *error = "sync: " + st.ToString();
    return false;
  }
  return true;
}

bool KvStore::query(std::string_view request, std::string* result, std::string* error) {
  Command cmd;
  Result r;
  std::string why;
  if (!decode_command(request, &cmd, &why)) {
    r = bad_command(why);
  } else if (!is_read(cmd.op)) {
    r = bad_command(std::string(op_name(cmd.op)) +
                    " is not a read: only GET, LIST, MGET and COUNT are served as queries; "
                    "writes go through the log");
  } else if (!execute(cmd, nullptr, &r, error)) {
    return false;
  }
  *result = encode_result(r);
  return true;
}

bool KvStore::read(std::string_view key, rocksdb::WriteBatchWithIndex* batch, std::string* value,
                   bool* found, std::string* error) {
  rocksdb::Status s =
      batch != nullptr
          ? batch->GetFromBatchAndDB(db_.get(), rocksdb::ReadOptions(), user_key(key), value)
          : db_->Get(rocksdb::ReadOptions(), user_key(key), value);
  if (s.IsNotFound()) {
    *found = false;
    value->clear();
    return true;
  }
  if (!s.ok()) {
    *error = "RocksDB read failed: " + s.ToString();
    return false;
  }
  *found = true;
  return true;
}

bool KvStore::list(const Command& cmd, rocksdb::WriteBatchWithIndex* batch, Result* result,
                   std::string* error) {
  std::string prefix = user_key(cmd.prefix);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  // In a batch: the store as the batch's earlier commands left it.
  if (batch != nullptr) it.reset(batch->NewIteratorWithBase(it.release()));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    rocksdb::Slice k = it->key();
    if (!k.starts_with(prefix)) break;
    if (cmd.op == static_cast<int32_t>(Op::kCount)) {
      ++result->number;
      continue;
    }
    if (cmd.limit != 0 && result->keys.size() >= cmd.limit) break;
    k.remove_prefix(1);
    result->keys.emplace_back(k.data(), k.size());
  }
  if (!it->status().ok()) {
    *error = "RocksDB scan failed: " + it->status().ToString();
    return false;
  }
  result->code = Code::kOk;
  return true;
}

bool KvStore::execute(const Command& cmd, rocksdb::WriteBatchWithIndex* batch, Result* result,
                      std::string* error) {
  const auto op = static_cast<Op>(cmd.op);
  if (op == Op::kList || op == Op::kCount) return list(cmd, batch, result, error);
  if (op == Op::kMget || op == Op::kMput || op == Op::kMdelete) {
    return execute_multi(cmd, batch, result, error);
  }
  if (op != Op::kGet && op != Op::kPut && op != Op::kDelete && op != Op::kCas &&
      op != Op::kIncrement) {
    *result = bad_command("unknown op " + std::to_string(cmd.op));
    return true;
  }
  if (std::string why = bad_key(cmd.op, cmd.key); !why.empty()) {
    *result = bad_command(std::move(why));
    return true;
  }
  if (cmd.require_present && op != Op::kPut) {
    *result = bad_command("require_present is only for PUT");
    return true;
  }

  // query() lets only reads through.
  SYNOD_CHECK_MSG(op == Op::kGet || batch != nullptr, "a kv write reached the read-only path");

  std::string current;
  bool found = false;
  if (!read(cmd.key, batch, &current, &found, error)) return false;
  Result& r = *result;
  r = Result{};
  switch (op) {
    case Op::kGet:
      r.code = found ? Code::kOk : Code::kNotFound;
      r.found = found;
      r.value = std::move(current);
      return true;
    case Op::kPut:
      r.found = found;
      if (cmd.require_present && !found) {
        r.code = Code::kCasFailed;
        return true;
      }
      batch->Put(slice(user_key(cmd.key)), slice(cmd.value));
      return true;
    case Op::kDelete:
      if (found) batch->Delete(slice(user_key(cmd.key)));
      r.found = found;
      return true;
    case Op::kCas: {
      if (cmd.expect_absent && !cmd.expected.empty()) {
        r = bad_command("CAS with expect_absent must not carry an expected value");
        return true;
      }
      bool match = cmd.expect_absent ? !found : found && current == cmd.expected;
      r.found = found;
      if (!match) {
        r.code = Code::kCasFailed;
        r.value = std::move(current);
        return true;
      }
      batch->Put(slice(user_key(cmd.key)), slice(cmd.value));
      return true;
    }
    case Op::kIncrement: {
      int64_t n = 0;
      r.found = found;
      if (found) {
        const char* end = current.data() + current.size();
        auto [p, ec] = std::from_chars(current.data(), end, n);
        if (current.empty() || ec != std::errc() || p != end) {
          r.code = Code::kNotANumber;
          r.value = std::move(current);
          r.error = "the value is not a decimal 64-bit integer: " + printable(r.value);
          return true;
        }
      }
      int64_t sum = 0;
      if (__builtin_add_overflow(n, cmd.delta, &sum)) {
        r.code = Code::kNotANumber;
        r.value = std::move(current);
        r.error = "overflow: " + std::to_string(n) + " + " + std::to_string(cmd.delta) +
                  " does not fit in 64 bits";
        return true;
      }
      r.number = sum;
      r.value = std::to_string(sum);
      batch->Put(slice(user_key(cmd.key)), slice(r.value));
      return true;
    }
    case Op::kList:
    case Op::kMget:
    case Op::kMput:
    case Op::kMdelete:
    case Op::kCount:
      break;  // handled above
  }
  return true;
}

bool KvStore::execute_multi(const Command& cmd, rocksdb::WriteBatchWithIndex* batch, Result* result,
                            std::string* error) {
  const auto op = static_cast<Op>(cmd.op);
  Result& r = *result;
  r = Result{};
  if (cmd.keys.empty()) {
    r = bad_command(std::string(op_name(cmd.op)) + " needs at least one key");
    return true;
  }
  if (op == Op::kMput && cmd.values.size() != cmd.keys.size()) {
    r = bad_command("MPUT has " + std::to_string(cmd.keys.size()) + " keys but " +
                    std::to_string(cmd.values.size()) + " values");
    return true;
  }
  for (const auto& key : cmd.keys) {
    if (std::string why = bad_key(cmd.op, key); !why.empty()) {
      r = bad_command(std::move(why));
      return true;
    }
  }
  SYNOD_CHECK_MSG(op == Op::kMget || batch != nullptr, "a kv write reached the read-only path");
  switch (op) {
    case Op::kMget:
      r.entries.resize(cmd.keys.size());
      for (size_t i = 0; i < cmd.keys.size(); ++i) {
        if (!read(cmd.keys[i], batch, &r.entries[i].value, &r.entries[i].found, error)) {
          return false;
        }
      }
      return true;
    case Op::kMput:
      for (size_t i = 0; i < cmd.keys.size(); ++i) {
        batch->Put(slice(user_key(cmd.keys[i])), slice(cmd.values[i]));
      }
      return true;
    case Op::kMdelete: {
      // A key named twice is deleted (and counted) once.
      std::set<std::string_view> seen;
      std::string ignored;
      for (const auto& key : cmd.keys) {
        if (!seen.insert(key).second) continue;
        bool found = false;
        if (!read(key, batch, &ignored, &found, error)) return false;
        if (!found) continue;
        batch->Delete(slice(user_key(key)));
        ++r.number;
      }
      r.found = r.number > 0;
      return true;
    }
    default:
      return true;
  }
}

}  // namespace synod::kv
