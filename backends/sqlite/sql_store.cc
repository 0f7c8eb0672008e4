#include "backends/sqlite/sql_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>

#include "backends/sqlcommon/digest.h"
#include "backends/sqlcommon/sql_text.h"
#include "synod/backend_util.hpp"

namespace synod::sql {
namespace {

using nlohmann::json;
using sqltext::base64;
using sqltext::parse_command;
using sqltext::split_entry;

// ---------------------------------------------------------------- determinism

// The clock of the command being applied (unix ms), read by the VFS below.
// Applies are serialised (backend.h), but a thread_local keeps two stores in
// one process (tests) from seeing each other's time.
thread_local std::int64_t t_now_ms = 0;

// Unix epoch as a Julian day, in ms (SQLite's clock is Julian days).
constexpr std::int64_t kUnixEpochJulianMs = 210866760000000LL;

int deterministic_time64(sqlite3_vfs*, sqlite3_int64* out) {
  *out = t_now_ms + kUnixEpochJulianMs;
  return SQLITE_OK;
}

int deterministic_time(sqlite3_vfs*, double* out) {
  *out = static_cast<double>(t_now_ms + kUnixEpochJulianMs) / 86400000.0;
  return SQLITE_OK;
}

constexpr const char* kVfsName = "synod-deterministic";

// The default VFS with the command's time as its clock.
bool register_vfs(std::string* error) {
  static std::once_flag once;
  static int rc = SQLITE_OK;
  static sqlite3_vfs vfs;
  std::call_once(once, [] {
    sqlite3_vfs* base = sqlite3_vfs_find(nullptr);
    if (base == nullptr) {
      rc = SQLITE_ERROR;
      return;
    }
    vfs = *base;
    vfs.zName = kVfsName;
    vfs.pNext = nullptr;
    vfs.xCurrentTime = deterministic_time;
    if (vfs.iVersion >= 2) vfs.xCurrentTimeInt64 = deterministic_time64;
    rc = sqlite3_vfs_register(&vfs, /*makeDflt=*/0);
  });
  if (rc != SQLITE_OK) *error = "cannot register SQLite's deterministic VFS";
  return rc == SQLITE_OK;
}

// splitmix64: the generator behind random() and randomblob() during applies.
struct Rng {
  std::uint64_t state = 0;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
};

void fn_random(sqlite3_context* ctx, int, sqlite3_value**) {
  auto* rng = static_cast<Rng*>(sqlite3_user_data(ctx));
  sqlite3_result_int64(ctx, static_cast<sqlite3_int64>(rng->next()));
}

void fn_randomblob(sqlite3_context* ctx, int, sqlite3_value** argv) {
  auto* rng = static_cast<Rng*>(sqlite3_user_data(ctx));
  sqlite3_int64 n = sqlite3_value_int64(argv[0]);
  if (n < 1) n = 1;
  if (n > sqlite3_limit(sqlite3_context_db_handle(ctx), SQLITE_LIMIT_LENGTH, -1)) {
    sqlite3_result_error_toobig(ctx);
    return;
  }
  std::string bytes(static_cast<size_t>(n), '\0');
  for (size_t i = 0; i < bytes.size(); i += 8) {
    const std::uint64_t r = rng->next();
    std::memcpy(bytes.data() + i, &r, std::min<size_t>(8, bytes.size() - i));
  }
  sqlite3_result_blob64(ctx, bytes.data(), bytes.size(), SQLITE_TRANSIENT);
}

// ---------------------------------------------------------------- the authorizer

struct Guard {
  bool internal = false;  // the backend's own statements: everything allowed
  bool writes = true;     // false on the read-only connection
  std::string denied;     // why the last statement was refused
  // The step budget of the statement running (progress handler calls of
  // kStepsPerCall instructions each); 0: unlimited.
  std::uint64_t max_calls = 0;
  std::uint64_t calls = 0;
};

constexpr int kStepsPerCall = 1000;

int on_progress(void* arg) {
  auto* g = static_cast<Guard*>(arg);
  if (g->internal || g->max_calls == 0) return 0;
  if (++g->calls <= g->max_calls) return 0;
  g->denied = "the statement ran more than " + std::to_string(g->max_calls * kStepsPerCall) +
              " SQLite steps and was stopped (max_statement_steps)";
  return 1;
}

int authorize(void* arg, int action, const char* a, const char* b, const char*, const char*) {
  auto* g = static_cast<Guard*>(arg);
  if (g->internal) return SQLITE_OK;
  auto deny = [&](std::string why) {
    g->denied = std::move(why);
    return SQLITE_DENY;
  };
  switch (action) {
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
      return deny("ATTACH and DETACH are not replicated: refused");
    case SQLITE_PRAGMA:
      return deny(std::string("PRAGMA ") + (a != nullptr ? a : "") +
                  " is refused: it could change a node's database outside the log");
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT:
      return deny(
          "transaction control is refused: every command is one transaction already");
    case SQLITE_FUNCTION:  // b: the function's name
      if (b == nullptr) return SQLITE_OK;
      if (std::strcmp(b, "load_extension") == 0) return deny("load_extension() is refused");
      // Values that differ between nodes: the connection's lifetime count, and
      // the library's version (nodes may run different builds during an upgrade).
      if (g->writes && (std::strcmp(b, "total_changes") == 0 ||
                        std::strcmp(b, "sqlite_version") == 0 ||
                        std::strcmp(b, "sqlite_source_id") == 0 ||
                        std::strcmp(b, "sqlite_compileoption_used") == 0 ||
                        std::strcmp(b, "sqlite_compileoption_get") == 0)) {
        return deny(std::string(b) + "() is refused in writes: its value can differ between nodes");
      }
      return SQLITE_OK;
    default:
      break;
  }
  if (a != nullptr && std::strncmp(a, "_synod_", 7) == 0) {
    return deny(std::string("table ") + a + " belongs to Synod and is not accessible");
  }
  return SQLITE_OK;
}

// ---------------------------------------------------------------- JSON values

// Binds one JSON value to parameter index i; false with *why.
bool bind(sqlite3_stmt* st, int i, const json& v, std::string* why) {
  int rc = SQLITE_OK;
  if (v.is_null()) {
    rc = sqlite3_bind_null(st, i);
  } else if (v.is_boolean()) {
    rc = sqlite3_bind_int64(st, i, v.get<bool>() ? 1 : 0);
  } else if (v.is_number_integer() || v.is_number_unsigned()) {
    if (v.is_number_unsigned() && v.get<std::uint64_t>() > INT64_MAX) {
      *why = "parameter " + std::to_string(i) + " does not fit in a 64-bit integer";
      return false;
    }
    rc = sqlite3_bind_int64(st, i, v.get<std::int64_t>());
  } else if (v.is_number_float()) {
    rc = sqlite3_bind_double(st, i, v.get<double>());
  } else if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    rc = sqlite3_bind_text64(st, i, s.data(), s.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  } else {
    *why = "parameter " + std::to_string(i) +
           " must be null, a boolean, a number or a string, not " + v.type_name();
    return false;
  }
  if (rc != SQLITE_OK) {
    *why = "cannot bind parameter " + std::to_string(i) + ": " + sqlite3_errstr(rc);
    return false;
  }
  return true;
}

bool bind_all(sqlite3_stmt* st, const json& params, std::string* why) {
  const int count = sqlite3_bind_parameter_count(st);
  if (params.is_object()) {
    for (int i = 1; i <= count; ++i) {
      const char* name = sqlite3_bind_parameter_name(st, i);
      if (name == nullptr || name[0] == '?') {
        *why = "positional parameter " + std::to_string(i) + " in a statement with named ones";
        return false;
      }
      auto it = params.find(name + 1);  // without its ':', '@' or '$'
      if (it == params.end()) {
        *why = std::string("no value for parameter ") + name;
        return false;
      }
      if (!bind(st, i, *it, why)) return false;
    }
    return true;
  }
  if (static_cast<int>(params.size()) != count) {
    *why = "the statement has " + std::to_string(count) + " parameters, " +
           std::to_string(params.size()) + " values given";
    return false;
  }
  for (int i = 1; i <= count; ++i) {
    if (!bind(st, i, params[static_cast<size_t>(i - 1)], why)) return false;
  }
  return true;
}

// SQLite result codes that are a statement's own failure (the same on every
// node), as opposed to the node's trouble (I/O, a full disk, memory).
bool is_result_code(int rc) {
  switch (rc & 0xff) {
    case SQLITE_ERROR:
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_AUTH:
    case SQLITE_TOOBIG:
    case SQLITE_READONLY:
    case SQLITE_INTERRUPT:  // the step budget (on_progress): the same on every node
    // The read connection sees the schema change the applies made, and a
    // statement that still fails after SQLite re-reads it reports this.
    case SQLITE_SCHEMA:
      return true;
    default:
      return false;
  }
}

struct Finalizer {
  void operator()(sqlite3_stmt* st) const { sqlite3_finalize(st); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, Finalizer>;

// Runs every statement of one command (apply) or request (query). *failed:
// a statement failed (its error is the last result). False with *error when
// SQLite failed in a way that is not a result.
// Statements known to fail (by index in their command), with their error: see
// SqlStore::apply_batch on interrupts.
using Prefailed = std::map<size_t, std::string>;

bool run(sqlite3* db, Guard* guard, const json& statements, bool read_only, json* results,
         bool* failed, std::string* error, const Prefailed* prefailed = nullptr,
         size_t first_index = 0) {
  *failed = false;
  size_t index = first_index;
  for (const json& entry : statements) {
    std::string sql, why;
    json params;
    auto fail_result = [&](const std::string& message) {
      results->push_back({{"error", message}});
      *failed = true;
      return true;
    };
    if (prefailed != nullptr) {
      if (auto it = prefailed->find(index); it != prefailed->end()) return fail_result(it->second);
    }
    ++index;
    if (!split_entry(entry, &sql, &params, &why)) return fail_result(why);
    json out = read_only ? json{{"columns", json::array()}, {"types", json::array()},
                                {"values", json::array()}}
                         : json::object();
    std::int64_t changes = 0;
    const char* tail = sql.c_str();
    bool any = false;
    while (*tail != '\0') {
      sqlite3_stmt* raw = nullptr;
      guard->denied.clear();
      int rc = sqlite3_prepare_v2(db, tail, -1, &raw, &tail);
      Stmt st(raw);
      if (rc != SQLITE_OK) {
        if (!is_result_code(rc)) {
          *error = std::string("SQLite: ") + sqlite3_errmsg(db);
          return false;
        }
        return fail_result(!guard->denied.empty() ? guard->denied : sqlite3_errmsg(db));
      }
      if (!st) continue;  // whitespace or a comment
      if (any && !params.empty()) {
        return fail_result("parameters go with one statement per entry");
      }
      any = true;
      if (read_only && !sqlite3_stmt_readonly(st.get())) {
        return fail_result("not a read: writes go through the log (execute, not query)");
      }
      if (!bind_all(st.get(), params, &why)) return fail_result(why);
      guard->calls = 0;
      const std::int64_t before = sqlite3_total_changes64(db);
      const int columns = sqlite3_column_count(st.get());
      if (read_only && out["columns"].empty()) {
        for (int c = 0; c < columns; ++c) {
          out["columns"].push_back(sqlite3_column_name(st.get(), c));
          const char* decl = sqlite3_column_decltype(st.get(), c);
          std::string type = decl != nullptr ? decl : "";
          for (char& ch : type) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          out["types"].push_back(type);
        }
      }
      while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
        if (!read_only) continue;  // rows of a write (RETURNING): not reported
        json row = json::array();
        for (int c = 0; c < columns; ++c) {
          switch (sqlite3_column_type(st.get(), c)) {
            case SQLITE_INTEGER:
              row.push_back(static_cast<std::int64_t>(sqlite3_column_int64(st.get(), c)));
              break;
            case SQLITE_FLOAT:
              row.push_back(sqlite3_column_double(st.get(), c));
              break;
            case SQLITE_TEXT:
              row.push_back(std::string(
                  reinterpret_cast<const char*>(sqlite3_column_text(st.get(), c)),
                  static_cast<size_t>(sqlite3_column_bytes(st.get(), c))));
              break;
            case SQLITE_BLOB:
              row.push_back(
                  base64(static_cast<const unsigned char*>(sqlite3_column_blob(st.get(), c)),
                         static_cast<size_t>(sqlite3_column_bytes(st.get(), c))));
              break;
            default:
              row.push_back(nullptr);
              break;
          }
        }
        out["values"].push_back(std::move(row));
      }
      if (rc != SQLITE_DONE) {
        if (!is_result_code(rc)) {
          *error = std::string("SQLite: ") + sqlite3_errmsg(db);
          return false;
        }
        return fail_result(!guard->denied.empty() ? guard->denied : sqlite3_errmsg(db));
      }
      changes += sqlite3_total_changes64(db) - before;
    }
    if (!read_only) {
      out["last_insert_id"] = static_cast<std::int64_t>(sqlite3_last_insert_rowid(db));
      out["rows_affected"] = changes;
    }
    results->push_back(std::move(out));
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------- SqlStore

struct SqlStoreState {
  Guard write_guard;
  Guard read_guard;
  Rng rng;
};

std::unique_ptr<SqlStore> SqlStore::open(const Config& config, std::string* error) {
  if (!backend_util::make_data_dir(config.data_dir, error)) return nullptr;
  if (!register_vfs(error)) return nullptr;
  std::unique_ptr<SqlStore> s(new SqlStore());
  s->state_ = std::make_unique<SqlStoreState>();
  s->state_->read_guard.writes = false;
  const std::string path = config.data_dir + "/db.sqlite";
  int rc = sqlite3_open_v2(path.c_str(), &s->db_,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           kVfsName);
  if (rc != SQLITE_OK) {
    *error = "cannot open " + path + ": " + (s->db_ ? sqlite3_errmsg(s->db_) : sqlite3_errstr(rc));
    return nullptr;
  }
  sqlite3_extended_result_codes(s->db_, 1);
  sqlite3_busy_timeout(s->db_, 5000);
  if (config.max_value_bytes > 0) {
    sqlite3_limit(s->db_, SQLITE_LIMIT_LENGTH,
                  static_cast<int>(std::min<std::uint64_t>(config.max_value_bytes, INT32_MAX)));
  }
  s->state_->write_guard.internal = true;
  if (!s->exec_internal("PRAGMA journal_mode=WAL", error) ||
      !s->exec_internal("PRAGMA synchronous=NORMAL", error)) {
    return nullptr;
  }
  // A database with tables but no _synod_meta is somebody else's.
  {
    sqlite3_stmt* raw = nullptr;
    sqlite3_prepare_v2(s->db_,
                       "SELECT (SELECT count(*) FROM sqlite_master WHERE name = '_synod_meta'), "
                       "(SELECT count(*) FROM sqlite_master)",
                       -1, &raw, nullptr);
    Stmt st(raw);
    if (!st || sqlite3_step(st.get()) != SQLITE_ROW) {
      *error = path + ": " + sqlite3_errmsg(s->db_);
      return nullptr;
    }
    if (sqlite3_column_int64(st.get(), 0) == 0 && sqlite3_column_int64(st.get(), 1) != 0) {
      *error = path + " is an SQLite database that is not a Synod sqlite store (no _synod_meta)";
      return nullptr;
    }
  }
  if (!s->exec_internal("CREATE TABLE IF NOT EXISTS _synod_meta (key TEXT PRIMARY KEY, "
                        "value INTEGER NOT NULL)",
                        error) ||
      !s->exec_internal("INSERT OR IGNORE INTO _synod_meta VALUES ('format', 1), ('applied', 0)",
                        error) ||
      !s->exec_internal("CREATE TABLE IF NOT EXISTS _synod_checksums (position INTEGER PRIMARY "
                        "KEY, checksum TEXT NOT NULL)",
                        error)) {
    return nullptr;
  }
  {
    sqlite3_stmt* raw = nullptr;
    sqlite3_prepare_v2(s->db_, "SELECT position, checksum FROM _synod_checksums", -1, &raw,
                       nullptr);
    Stmt st(raw);
    while (st && sqlite3_step(st.get()) == SQLITE_ROW) {
      s->checksums_[static_cast<uint64_t>(sqlite3_column_int64(st.get(), 0))] =
          reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 1));
    }
  }
  {
    sqlite3_stmt* raw = nullptr;
    sqlite3_prepare_v2(s->db_,
                       "SELECT (SELECT value FROM _synod_meta WHERE key = 'format'), "
                       "(SELECT value FROM _synod_meta WHERE key = 'applied')",
                       -1, &raw, nullptr);
    Stmt st(raw);
    if (!st || sqlite3_step(st.get()) != SQLITE_ROW) {
      *error = path + ": cannot read _synod_meta: " + sqlite3_errmsg(s->db_);
      return nullptr;
    }
    if (sqlite3_column_int64(st.get(), 0) != 1) {
      *error = path + ": unknown store format " + std::to_string(sqlite3_column_int64(st.get(), 0));
      return nullptr;
    }
    s->last_applied_.store(static_cast<uint64_t>(sqlite3_column_int64(st.get(), 1)));
  }
  s->state_->write_guard.internal = false;
  sqlite3_set_authorizer(s->db_, authorize, &s->state_->write_guard);
  s->state_->write_guard.max_calls = (config.max_statement_steps + kStepsPerCall - 1) / kStepsPerCall;
  sqlite3_progress_handler(s->db_, kStepsPerCall, on_progress, &s->state_->write_guard);
  if (sqlite3_create_function_v2(s->db_, "random", 0, SQLITE_UTF8, &s->state_->rng, fn_random,
                                 nullptr, nullptr, nullptr) != SQLITE_OK ||
      sqlite3_create_function_v2(s->db_, "randomblob", 1, SQLITE_UTF8, &s->state_->rng,
                                 fn_randomblob, nullptr, nullptr, nullptr) != SQLITE_OK) {
    *error = std::string("cannot register random(): ") + sqlite3_errmsg(s->db_);
    return nullptr;
  }

  rc = sqlite3_open_v2(path.c_str(), &s->ro_, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX,
                       nullptr);
  if (rc != SQLITE_OK) {
    *error = "cannot open " + path + " for reading: " +
             (s->ro_ ? sqlite3_errmsg(s->ro_) : sqlite3_errstr(rc));
    return nullptr;
  }
  sqlite3_extended_result_codes(s->ro_, 1);
  sqlite3_busy_timeout(s->ro_, 5000);
  sqlite3_set_authorizer(s->ro_, authorize, &s->state_->read_guard);
  s->state_->read_guard.max_calls = s->state_->write_guard.max_calls;
  sqlite3_progress_handler(s->ro_, kStepsPerCall, on_progress, &s->state_->read_guard);
  return s;
}

SqlStore::~SqlStore() {
  if (ro_ != nullptr) sqlite3_close_v2(ro_);
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

bool SqlStore::exec_internal(const char* sql, std::string* error) {
  const bool was = state_->write_guard.internal;
  state_->write_guard.internal = true;
  char* msg = nullptr;
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &msg);
  state_->write_guard.internal = was;
  if (rc != SQLITE_OK) {
    *error = std::string("SQLite: ") + sql + ": " + (msg != nullptr ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return false;
  }
  return true;
}

bool SqlStore::apply(const synod_apply_context& ctx, std::string_view command,
                     std::string* result, std::string* error) {
  std::vector<std::string> results;
  if (!apply_batch(1, &ctx, &command, &results, error)) return false;
  *result = std::move(results[0]);
  return true;
}

bool SqlStore::apply_batch(size_t n, const synod_apply_context* ctxs, const std::string_view* cmds,
                           std::vector<std::string>* results, std::string* error) {
  // A statement stopped by its step budget is interrupted, and SQLite then
  // rolls back the whole transaction, the batch's other commands included.
  // Its failure is deterministic, so the batch runs again from the start with
  // that statement failing at once with the same error; every node does the
  // same and ends with the same results and state.
  std::map<size_t, Prefailed> settled;  // command index -> its stopped statements
  for (;;) {
    bool again = false;
    if (!apply_batch_once(n, ctxs, cmds, &settled, &again, results, error)) return false;
    if (!again) return true;
  }
}

bool SqlStore::apply_batch_once(size_t n, const synod_apply_context* ctxs,
                                const std::string_view* cmds,
                                std::map<size_t, std::map<size_t, std::string>>* settled,
                                bool* again, std::vector<std::string>* results,
                                std::string* error) {
  *again = false;
  if (!exec_internal("BEGIN IMMEDIATE", error)) return false;
  auto abort = [&] {
    std::string ignored;
    exec_internal("ROLLBACK", &ignored);
    return false;
  };
  const uint64_t last = last_applied_.load(std::memory_order_relaxed);
  uint64_t position = last;
  std::vector<std::string> out;
  out.reserve(n);
  std::vector<std::pair<uint64_t, std::string>> new_checksums;
  for (size_t i = 0; i < n; ++i) {
    const synod_apply_context& ctx = ctxs[i];
    if (ctx.slot <= position) {
      out.push_back(json{{"error", "position " + std::to_string(ctx.slot) +
                                       " was already applied (last applied: " +
                                       std::to_string(position) + "); not applied again"}}
                        .dump());
      continue;
    }
    t_now_ms = static_cast<std::int64_t>(ctx.timestamp_ms);
    state_->rng.state = ctx.random_seed;
    if (!exec_internal("SAVEPOINT synod_command", error)) return abort();
    // last_insert_rowid() and changes() carry over from the previous statement
    // on this connection, which after a restart of the node is another one:
    // every command starts them from 0.
    sqlite3_set_last_insert_rowid(db_, 0);
    if (!exec_internal("DELETE FROM _synod_meta WHERE 0", error)) return abort();
    json r = json::array();
    bool failed = false;
    json statements;
    bool transaction = true;
    std::string why;
    if (sqltext::is_checksum_command(json::parse(cmds[i].begin(), cmds[i].end(), nullptr, false))) {
      std::string hex;
      if (!checksum(&hex, error)) return abort();
      const std::string keep = "INSERT OR REPLACE INTO _synod_checksums VALUES (" +
                               std::to_string(ctx.slot) + ", '" + hex +
                               "'); DELETE FROM _synod_checksums WHERE position NOT IN (SELECT "
                               "position FROM _synod_checksums ORDER BY position DESC LIMIT 100)";
      if (!exec_internal(keep.c_str(), error)) return abort();
      if (!exec_internal("RELEASE synod_command", error)) return abort();
      new_checksums.emplace_back(ctx.slot, hex);
      out.push_back(json{{"position", ctx.slot}, {"checksum", hex}}.dump());
      position = ctx.slot;
      continue;
    }
    const Prefailed& prefailed = (*settled)[i];
    // The transaction is gone (an interrupted statement): note the statement
    // and run the batch again.
    auto interrupted = [&](size_t statement) {
      (*settled)[i][statement] = r.back()["error"].get<std::string>();
      *again = true;
      return true;
    };
    if (!parse_command(cmds[i], &statements, &transaction, &why)) {
      r.push_back({{"error", why}});
      failed = true;
    } else if (transaction) {
      if (!run(db_, &state_->write_guard, statements, /*read_only=*/false, &r, &failed, error,
               &prefailed)) {
        return abort();
      }
      if (failed && sqlite3_get_autocommit(db_) != 0) return interrupted(r.size() - 1);
    } else {
      // Each statement on its own: a failure rolls back that statement only.
      for (size_t k = 0; k < statements.size(); ++k) {
        bool this_failed = false;
        if (!exec_internal("SAVEPOINT synod_statement", error)) return abort();
        if (!run(db_, &state_->write_guard, json::array({statements[k]}), /*read_only=*/false,
                 &r, &this_failed, error, &prefailed, k)) {
          return abort();
        }
        if (this_failed && sqlite3_get_autocommit(db_) != 0) return interrupted(k);
        if (this_failed && !exec_internal("ROLLBACK TO synod_statement", error)) return abort();
        if (!exec_internal("RELEASE synod_statement", error)) return abort();
      }
    }
    if (failed && !exec_internal("ROLLBACK TO synod_command", error)) return abort();
    if (!exec_internal("RELEASE synod_command", error)) return abort();
    json result{{"results", std::move(r)}};
    if (failed) result["rolled_back"] = true;
    out.push_back(result.dump(-1, ' ', false, json::error_handler_t::replace));
    position = ctx.slot;
  }
  if (position != last) {
    const std::string update =
        "UPDATE _synod_meta SET value = " + std::to_string(position) + " WHERE key = 'applied'";
    if (!exec_internal(update.c_str(), error)) return abort();
  }
  if (!exec_internal("COMMIT", error)) return abort();
  last_applied_.store(position, std::memory_order_release);
  if (!new_checksums.empty()) {
    std::lock_guard lock(checksums_mu_);
    for (auto& [at, hex] : new_checksums) checksums_[at] = std::move(hex);
    while (checksums_.size() > 100) checksums_.erase(checksums_.begin());
  }
  *results = std::move(out);
  return true;
}

bool SqlStore::checksum(std::string* hex, std::string* error) {
  const bool was = state_->write_guard.internal;
  state_->write_guard.internal = true;
  struct Restore {
    Guard* g;
    bool was;
    ~Restore() { g->internal = was; }
  } restore{&state_->write_guard, was};
  auto fail = [&] {
    *error = std::string("SQLite: checksum: ") + sqlite3_errmsg(db_);
    return false;
  };
  sqltext::Digest digest;
  std::vector<std::string> tables;
  {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db_,
                           "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE substr(name, 1, 7) "
                           "!= '_synod_' AND (substr(name, 1, 7) != 'sqlite_' OR name = 'sqlite_sequence') "
                           "ORDER BY type, name",
                           -1, &raw, nullptr) != SQLITE_OK) {
      return fail();
    }
    Stmt st(raw);
    int rc;
    while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
      for (int c = 0; c < 4; ++c) {
        const char* v = reinterpret_cast<const char*>(sqlite3_column_text(st.get(), c));
        digest.field('s', v != nullptr ? v : "");
      }
      if (std::strcmp(reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0)), "table") ==
          0) {
        tables.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 1)));
      }
    }
    if (rc != SQLITE_DONE) return fail();
  }
  for (const std::string& table : tables) {
    std::string quoted = "\"";
    for (char c : table) {
      quoted.push_back(c);
      if (c == '"') quoted.push_back('"');
    }
    quoted.push_back('"');
    sqlite3_stmt* raw = nullptr;
    std::string sql = "SELECT * FROM " + quoted;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) return fail();
    Stmt probe(raw);
    const int columns = sqlite3_column_count(probe.get());
    probe.reset();
    // Every row, ordered by all its columns: the same order on every node
    // whatever the physical layout.
    for (int c = 1; c <= columns; ++c) sql += (c == 1 ? " ORDER BY " : ", ") + std::to_string(c);
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) return fail();
    Stmt st(raw);
    digest.field('T', table);
    int rc;
    while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
      for (int c = 0; c < columns; ++c) {
        switch (sqlite3_column_type(st.get(), c)) {
          case SQLITE_INTEGER:
            digest.field('i', std::to_string(sqlite3_column_int64(st.get(), c)));
            break;
          case SQLITE_FLOAT: {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.17g", sqlite3_column_double(st.get(), c));
            digest.field('f', buf);
            break;
          }
          case SQLITE_TEXT:
          case SQLITE_BLOB:
            digest.field(sqlite3_column_type(st.get(), c) == SQLITE_TEXT ? 't' : 'b',
                         std::string_view(static_cast<const char*>(sqlite3_column_blob(st.get(), c)),
                                          static_cast<size_t>(sqlite3_column_bytes(st.get(), c))));
            break;
          default:
            digest.field('n', "");
            break;
        }
      }
      digest.field('r', "");
    }
    if (rc != SQLITE_DONE) return fail();
  }
  *hex = digest.hex();
  return true;
}

bool SqlStore::validate(std::string_view command, std::string* why) const {
  const json j = json::parse(command.begin(), command.end(), nullptr, false);
  if (sqltext::is_checksum_command(j)) return true;
  json statements;
  bool transaction = true;
  if (!parse_command(command, &statements, &transaction, why)) return false;
  if (statements.empty()) {
    *why = "the command has no statements";
    return false;
  }
  for (const json& entry : statements) {
    std::string sql;
    json params;
    if (!split_entry(entry, &sql, &params, why)) return false;
    if (!precheck(sql, why)) return false;
  }
  return true;
}

bool SqlStore::precheck(const std::string& sql, std::string* why) {
  // What the authorizer refuses at apply (the rule that counts), found in the
  // text first so that it never enters the log. The lexer is not SQLite's
  // parser: it may miss what the authorizer then refuses at apply (a
  // deterministic error result), never the other way round for these words.
  std::vector<std::string> statements;
  std::string ignored;
  if (!sqltext::split_statements(sql, sqltext::Dialect::kPostgres, &statements, &ignored)) {
    return true;  // SQLite reports its own syntax error at apply
  }
  for (const std::string& one : statements) {
    std::vector<sqltext::Token> tokens;
    if (!sqltext::lex(one, sqltext::Dialect::kPostgres, &tokens, &ignored) || tokens.empty()) {
      continue;
    }
    const sqltext::Words w = sqltext::words(tokens);
    static const char* kFirst[] = {"attach", "detach", "pragma", "begin", "commit",
                                   "end",    "rollback", "savepoint", "release"};
    std::string first(tokens.front().text);
    for (char& c : first) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (tokens.front().kind == sqltext::TokenKind::kWord) {
      for (const char* k : kFirst) {
        if (first == k) {
          std::string upper = first;
          for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
          *why = upper + " is refused: " +
                 (first == "attach" || first == "detach"
                      ? std::string("another database file is not replicated")
                  : first == "pragma"
                      ? std::string("it could change a node's database outside the log")
                      : std::string("every command is one transaction already"));
          return false;
        }
      }
    }
    for (const std::string& f : w.called) {
      if (f == "load_extension" || f == "total_changes" || f == "sqlite_version" ||
          f == "sqlite_source_id" || f.rfind("sqlite_compileoption_", 0) == 0) {
        *why = f + "() is refused: its value can differ between nodes";
        return false;
      }
    }
  }
  return true;
}

bool SqlStore::query(std::string_view request, std::string* result, std::string* error) {
  if (const json j = json::parse(request.begin(), request.end(), nullptr, false);
      j.is_object() && j.contains("checksum_at")) {
    if (!j["checksum_at"].is_number_unsigned()) {
      *result = json{{"error", "checksum_at must be a position"}}.dump();
      return true;
    }
    const uint64_t at = j["checksum_at"].get<uint64_t>();
    std::lock_guard lock(checksums_mu_);
    auto it = checksums_.find(at);
    if (it != checksums_.end()) {
      *result = json{{"position", at}, {"checksum", it->second}}.dump();
    } else {
      *result = json{{"error", "no checksum at position " + std::to_string(at) +
                                   (at > last_applied() ? " yet (not applied here)"
                                                        : " (not a checksum command, or too old)")},
                     {"applied", last_applied()}}
                    .dump();
    }
    return true;
  }
  // One read at a time on the read connection (its guard is per statement).
  std::lock_guard lock(read_mu_);
  json r = json::array();
  bool failed = false;
  json statements;
  bool transaction = true;
  std::string why;
  if (!parse_command(request, &statements, &transaction, &why)) {
    r.push_back({{"error", why}});
  } else if (!run(ro_, &state_->read_guard, statements, /*read_only=*/true, &r, &failed, error)) {
    return false;
  }
  *result = json{{"results", std::move(r)}}.dump(-1, ' ', false, json::error_handler_t::replace);
  return true;
}

bool SqlStore::sync(std::string* error) {
  return exec_internal("PRAGMA wal_checkpoint(FULL)", error);
}

}  // namespace synod::sql
