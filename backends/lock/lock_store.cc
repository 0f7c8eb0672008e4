#include "backends/lock/lock_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>

#include "synod/backend_util.hpp"

namespace synod::lock {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------- parsing

// A command or query, its fields checked.
struct Parsed {
  std::string op;
  std::uint64_t session = 0;
  std::int64_t ttl_ms = 0;
  std::int64_t lock_delay_ms = kDefaultLockDelayMs;
  std::string lock;
  bool shared = false;
  bool wait = true;
  bool keep_held = false;  // cancel: end a wait, never a hold
  std::uint64_t token = 0;
  std::uint64_t req = 0;  // acquire, cancel, release: the client's request number (0: none)
};

enum class Kind { kCommand, kQuery };

bool get_u64(const json& j, const char* key, std::uint64_t* out, std::string* why) {
  auto it = j.find(key);
  if (it == j.end()) {
    *why = std::string("missing \"") + key + "\"";
    return false;
  }
  if (!it->is_number_unsigned()) {
    *why = std::string("\"") + key + "\" must be a non-negative integer";
    return false;
  }
  *out = it->get<std::uint64_t>();
  return true;
}

bool get_session(const json& j, std::uint64_t* out, std::string* why) {
  if (!get_u64(j, "session", out, why)) return false;
  if (*out == 0 || *out > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    *why = "\"session\" must be a session id (>= 1)";
    return false;
  }
  return true;
}

bool get_lock(const json& j, std::string* out, std::string* why) {
  auto it = j.find("lock");
  if (it == j.end()) {
    *why = "missing \"lock\"";
    return false;
  }
  if (!it->is_string()) {
    *why = "\"lock\" must be a string";
    return false;
  }
  *out = it->get<std::string>();  // valid UTF-8: the JSON parser checked it
  if (out->empty() || out->size() > kMaxLockName) {
    *why = "a lock name has 1 to " + std::to_string(kMaxLockName) + " bytes";
    return false;
  }
  return true;
}

bool parse(std::string_view text, Kind kind, Parsed* p, std::string* why) {
  const json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    *why = "not JSON (a lock command is a JSON object such as {\"op\":\"tick\"})";
    return false;
  }
  if (!j.is_object()) {
    *why = "a lock command is a JSON object, not " + std::string(j.type_name());
    return false;
  }
  auto op = j.find("op");
  if (op == j.end() || !op->is_string()) {
    *why = "missing \"op\" (a string)";
    return false;
  }
  p->op = op->get<std::string>();
  static const std::set<std::string> kCommands = {"open",   "keepalive", "close", "acquire",
                                                  "cancel", "release",   "tick"};
  static const std::set<std::string> kQueries = {"status", "show", "list", "check", "idle"};
  if (kind == Kind::kCommand && !kCommands.contains(p->op)) {
    *why = kQueries.contains(p->op)
               ? "\"" + p->op + "\" is a query (read), not a command"
               : "unknown op \"" + p->op +
                     "\" (commands: open, keepalive, close, acquire, cancel, release, tick)";
    return false;
  }
  if (kind == Kind::kQuery && !kQueries.contains(p->op)) {
    *why = kCommands.contains(p->op)
               ? "\"" + p->op + "\" is a command (write through the log), not a query"
               : "unknown query op \"" + p->op + "\" (queries: status, show, list, check)";
    return false;
  }
  if (p->op == "open") {
    auto ttl = j.find("ttl_ms");
    if (ttl == j.end() || !ttl->is_number_integer()) {
      *why = "\"open\" needs \"ttl_ms\", an integer";
      return false;
    }
    const bool big = ttl->is_number_unsigned() &&
                     ttl->get<std::uint64_t>() > static_cast<std::uint64_t>(kMaxTtlMs);
    p->ttl_ms = big ? kMaxTtlMs + 1 : ttl->get<std::int64_t>();
    if (p->ttl_ms < kMinTtlMs || p->ttl_ms > kMaxTtlMs) {
      *why = "ttl_ms must be from " + std::to_string(kMinTtlMs) + " to " +
             std::to_string(kMaxTtlMs);
      return false;
    }
    if (auto d = j.find("lock_delay_ms"); d != j.end()) {
      const bool in_range = d->is_number_unsigned() &&
                            d->get<std::uint64_t>() <= static_cast<std::uint64_t>(kMaxLockDelayMs);
      if (!in_range) {
        *why = "lock_delay_ms must be an integer from 0 to " + std::to_string(kMaxLockDelayMs);
        return false;
      }
      p->lock_delay_ms = d->get<std::int64_t>();
    }
    return true;
  }
  if (p->op == "tick" || p->op == "list" || p->op == "idle") return true;
  if (p->op == "show") return get_lock(j, &p->lock, why);
  if (p->op == "check") {
    return get_lock(j, &p->lock, why) && get_u64(j, "token", &p->token, why);
  }
  if (!get_session(j, &p->session, why)) return false;
  if (p->op == "keepalive" || p->op == "close") return true;
  if (!get_lock(j, &p->lock, why)) return false;
  if (j.contains("req")) {
    if (!get_u64(j, "req", &p->req, why)) return false;
    if (p->req > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      *why = "\"req\" is too large";
      return false;
    }
  }
  if (p->op == "cancel") {
    if (auto k = j.find("keep_held"); k != j.end()) {
      if (!k->is_boolean()) {
        *why = "\"keep_held\" must be true or false";
        return false;
      }
      p->keep_held = k->get<bool>();
    }
  }
  if (p->op == "acquire") {
    if (auto m = j.find("mode"); m != j.end()) {
      if (!m->is_string() || (*m != "exclusive" && *m != "shared")) {
        *why = "\"mode\" must be \"exclusive\" or \"shared\"";
        return false;
      }
      p->shared = *m == "shared";
    }
    if (auto w = j.find("wait"); w != j.end()) {
      if (!w->is_boolean()) {
        *why = "\"wait\" must be true or false";
        return false;
      }
      p->wait = w->get<bool>();
    }
  }
  return true;
}

std::string error_result(const std::string& message) { return json{{"error", message}}.dump(); }

const char* mode_name(bool shared) { return shared ? "shared" : "exclusive"; }

// ---------------------------------------------------------------- SQLite

struct Finalizer {
  void operator()(sqlite3_stmt* st) const { sqlite3_finalize(st); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, Finalizer>;

// A prepared statement with its parameters bound, stepped to the end.
class Sql {
 public:
  Sql(sqlite3* db, const char* sql) : db_(db) {
    sqlite3_stmt* raw = nullptr;
    rc_ = sqlite3_prepare_v2(db, sql, -1, &raw, nullptr);
    st_.reset(raw);
  }
  Sql& i(std::int64_t v) {
    if (rc_ == SQLITE_OK) rc_ = sqlite3_bind_int64(st_.get(), ++n_, v);
    return *this;
  }
  Sql& u(std::uint64_t v) { return i(static_cast<std::int64_t>(v)); }
  Sql& s(const std::string& v) {
    if (rc_ == SQLITE_OK) {
      rc_ = sqlite3_bind_text64(st_.get(), ++n_, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    }
    return *this;
  }
  // Steps to the end; false with *error.
  bool run(std::string* error) {
    if (rc_ == SQLITE_OK) {
      while ((rc_ = sqlite3_step(st_.get())) == SQLITE_ROW) {
      }
      if (rc_ == SQLITE_DONE) return true;
    }
    *error = std::string("SQLite: ") + sqlite3_errmsg(db_);
    return false;
  }
  // One row at a time (reads); false at the end or on an error (see ok()).
  bool row() {
    if (rc_ != SQLITE_OK && rc_ != SQLITE_ROW) return false;
    rc_ = sqlite3_step(st_.get());
    return rc_ == SQLITE_ROW;
  }
  bool ok(std::string* error) const {
    if (rc_ == SQLITE_OK || rc_ == SQLITE_DONE || rc_ == SQLITE_ROW) return true;
    *error = std::string("SQLite: ") + sqlite3_errmsg(db_);
    return false;
  }
  std::int64_t col(int c) const { return sqlite3_column_int64(st_.get(), c); }
  std::string text(int c) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st_.get(), c));
    return p == nullptr ? std::string()
                        : std::string(p, static_cast<size_t>(sqlite3_column_bytes(st_.get(), c)));
  }

 private:
  sqlite3* db_;
  Stmt st_;
  int rc_ = SQLITE_OK;
  int n_ = 0;
};

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS _meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS sessions (id INTEGER PRIMARY KEY, ttl_ms INTEGER NOT NULL, "
    "  last_seen_ms INTEGER NOT NULL, lock_delay_ms INTEGER NOT NULL DEFAULT 5000, "
    "  fence_floor INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS ended (id INTEGER PRIMARY KEY, expired INTEGER NOT NULL, "
    "  at_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS locks (name TEXT PRIMARY KEY, unavailable_until_ms INTEGER "
    "  NOT NULL, last_token INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS holders (lock TEXT NOT NULL, session INTEGER NOT NULL, "
    "  shared INTEGER NOT NULL, token INTEGER NOT NULL, since_ms INTEGER NOT NULL, "
    "  ord INTEGER NOT NULL, req INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (lock, session));"
    "CREATE TABLE IF NOT EXISTS waiters (lock TEXT NOT NULL, session INTEGER NOT NULL, "
    "  shared INTEGER NOT NULL, seq INTEGER NOT NULL, req INTEGER NOT NULL DEFAULT 0, "
    "  PRIMARY KEY (lock, session));"
    "CREATE TABLE IF NOT EXISTS fences (session INTEGER NOT NULL, lock TEXT NOT NULL, "
    "  req INTEGER NOT NULL, PRIMARY KEY (session, lock));"
    "INSERT OR IGNORE INTO _meta VALUES ('format', 1), ('applied', 0), ('now_ms', 0);";

}  // namespace

// ---------------------------------------------------------------- open, load

std::unique_ptr<LockStore> LockStore::open(const Config& config, std::string* error) {
  if (!backend_util::make_data_dir(config.data_dir, error)) return nullptr;
  std::unique_ptr<LockStore> s(new LockStore());
  s->config_ = config;
  const std::string path = config.data_dir + "/lock.sqlite";
  const int rc = sqlite3_open_v2(path.c_str(), &s->db_,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    *error = "cannot open " + path + ": " + (s->db_ ? sqlite3_errmsg(s->db_) : sqlite3_errstr(rc));
    return nullptr;
  }
  sqlite3_extended_result_codes(s->db_, 1);
  sqlite3_busy_timeout(s->db_, 5000);
  if (!s->exec("PRAGMA journal_mode=WAL", error) ||
      !s->exec("PRAGMA synchronous=NORMAL", error) || !s->exec(kSchema, error) ||
      !s->upgrade_schema(error)) {
    *error = path + ": " + *error;
    return nullptr;
  }
  if (!s->load(error)) {
    *error = path + ": " + *error;
    return nullptr;
  }
  return s;
}

LockStore::~LockStore() {
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

bool LockStore::exec(const char* sql, std::string* error) {
  char* msg = nullptr;
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &msg);
  if (rc != SQLITE_OK) {
    *error = std::string("SQLite: ") + (msg != nullptr ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return false;
  }
  return true;
}

// A database of the first version had no per-session lock-delay (the node's
// option was used: its sessions get the default) and no request numbers
// (its holds and waits have none: 0).
bool LockStore::upgrade_schema(std::string* error) {
  const std::pair<const char*, const char*> added[] = {
      {"sessions", "lock_delay_ms INTEGER NOT NULL DEFAULT 5000"},
      {"sessions", "fence_floor INTEGER NOT NULL DEFAULT 0"},
      {"holders", "req INTEGER NOT NULL DEFAULT 0"},
      {"waiters", "req INTEGER NOT NULL DEFAULT 0"}};
  for (const auto& [table, column] : added) {
    const std::string name(column, std::string_view(column).find(' '));
    bool has = false;
    Sql q(db_, (std::string("SELECT name FROM pragma_table_info('") + table + "')").c_str());
    while (q.row()) has = has || q.text(0) == name;
    if (!q.ok(error)) return false;
    if (!has && !exec((std::string("ALTER TABLE ") + table + " ADD COLUMN " + column).c_str(),
                      error)) {
      return false;
    }
  }
  return true;
}

bool LockStore::load(std::string* error) {
  applied_ = 0;
  now_ms_ = 0;
  sessions_.clear();
  locks_.clear();
  ended_.clear();
  by_expiry_.clear();
  pending_.clear();
  dirty_sessions_.clear();
  dirty_locks_.clear();
  dirty_ended_.clear();
  dirty_fences_.clear();
  {
    Sql q(db_, "SELECT key, value FROM _meta");
    while (q.row()) {
      const std::string key = q.text(0);
      if (key == "format" && q.col(1) != 1) {
        *error = "unknown lock store format " + std::to_string(q.col(1));
        return false;
      }
      if (key == "applied") applied_ = static_cast<std::uint64_t>(q.col(1));
      if (key == "now_ms") now_ms_ = q.col(1);
    }
    if (!q.ok(error)) return false;
  }
  {
    Sql q(db_, "SELECT id, ttl_ms, last_seen_ms, lock_delay_ms, fence_floor FROM sessions");
    while (q.row()) {
      Session& s = sessions_[static_cast<std::uint64_t>(q.col(0))];
      s.ttl_ms = q.col(1);
      s.last_seen_ms = q.col(2);
      s.lock_delay_ms = q.col(3);
      s.fence_floor = static_cast<std::uint64_t>(q.col(4));
    }
    if (!q.ok(error)) return false;
  }
  {
    Sql q(db_, "SELECT id, expired, at_ms FROM ended");
    while (q.row()) ended_[static_cast<std::uint64_t>(q.col(0))] = Ended{q.col(1) != 0, q.col(2)};
    if (!q.ok(error)) return false;
  }
  {
    Sql q(db_, "SELECT name, unavailable_until_ms, last_token FROM locks");
    while (q.row()) {
      Lock& l = locks_[q.text(0)];
      l.unavailable_until_ms = q.col(1);
      l.last_token = static_cast<std::uint64_t>(q.col(2));
    }
    if (!q.ok(error)) return false;
  }
  {
    Sql q(db_,
          "SELECT lock, session, shared, token, since_ms, req FROM holders ORDER BY lock, ord");
    while (q.row()) {
      const std::string name = q.text(0);
      const auto session = static_cast<std::uint64_t>(q.col(1));
      locks_[name].holders.push_back(Holder{session, q.col(2) != 0,
                                            static_cast<std::uint64_t>(q.col(3)), q.col(4),
                                            static_cast<std::uint64_t>(q.col(5))});
      sessions_[session].held.insert(name);
    }
    if (!q.ok(error)) return false;
  }
  {
    Sql q(db_,
          "SELECT lock, session, shared, seq, req FROM waiters ORDER BY lock, seq, session");
    while (q.row()) {
      const std::string name = q.text(0);
      const auto session = static_cast<std::uint64_t>(q.col(1));
      locks_[name].waiters.push_back(Waiter{session, q.col(2) != 0,
                                            static_cast<std::uint64_t>(q.col(3)),
                                            static_cast<std::uint64_t>(q.col(4))});
      sessions_[session].waiting.insert(name);
    }
    if (!q.ok(error)) return false;
  }
  {
    Sql q(db_, "SELECT session, lock, req FROM fences");
    while (q.row()) {
      sessions_[static_cast<std::uint64_t>(q.col(0))].fences[q.text(1)] =
          static_cast<std::uint64_t>(q.col(2));
    }
    if (!q.ok(error)) return false;
  }
  for (const auto& [id, s] : sessions_) {
    if (s.ttl_ms == 0) {
      *error = "holder, waiter or fence of a session " + std::to_string(id) +
               " that does not exist";
      return false;
    }
    by_expiry_.insert({s.expires_ms(), id});
  }
  // Every lock with waiters is looked at by the next command due: a superset of
  // the locks the running store had pending, and looking is harmless.
  for (const auto& [name, l] : locks_) {
    if (!l.waiters.empty()) pending_.insert({l.unavailable_until_ms, name});
  }
  return true;
}

uint64_t LockStore::last_applied() const {
  std::shared_lock lock(mu_);
  return applied_;
}

bool LockStore::sync(std::string* error) { return exec("PRAGMA wal_checkpoint(FULL)", error); }

bool LockStore::validate(std::string_view command, std::string* why) const {
  Parsed p;
  return parse(command, Kind::kCommand, &p, why);
}

// ---------------------------------------------------------------- applying

bool LockStore::apply(const synod_apply_context& ctx, std::string_view command,
                      std::string* result, std::string* error) {
  std::vector<std::string> results;
  if (!apply_batch(1, &ctx, &command, &results, error)) return false;
  *result = std::move(results[0]);
  return true;
}

bool LockStore::apply_batch(size_t n, const synod_apply_context* ctxs,
                            const std::string_view* cmds, std::vector<std::string>* results,
                            std::string* error) {
  std::unique_lock lock(mu_);
  std::vector<std::string> out;
  out.reserve(n);
  const std::uint64_t before = applied_;
  std::uint64_t position = applied_;
  for (size_t i = 0; i < n; ++i) {
    const synod_apply_context& ctx = ctxs[i];
    if (ctx.slot <= position) {
      out.push_back(error_result("position " + std::to_string(ctx.slot) +
                                 " was already applied (last applied: " +
                                 std::to_string(position) + "); not applied again"));
      continue;
    }
    advance(ctx);
    out.push_back(apply_one(ctx, cmds[i]));
    position = ctx.slot;
  }
  if (position != before) {
    if (!persist(position, error)) {
      // The transaction is gone: back to what the database holds.
      std::string ignored;
      exec("ROLLBACK", &ignored);
      if (!load(&ignored)) *error += "; and reloading the state failed: " + ignored;
      return false;
    }
    applied_ = position;
  }
  *results = std::move(out);
  return true;
}

bool LockStore::persist(std::uint64_t position, std::string* error) {
  if (!exec("BEGIN IMMEDIATE", error)) return false;
  for (std::uint64_t id : dirty_sessions_) {
    auto it = sessions_.find(id);
    if (it == sessions_.end()) {
      if (!Sql(db_, "DELETE FROM sessions WHERE id = ?").u(id).run(error)) return false;
    } else if (!Sql(db_, "INSERT OR REPLACE INTO sessions (id, ttl_ms, last_seen_ms, "
                         "lock_delay_ms, fence_floor) VALUES (?, ?, ?, ?, ?)")
                    .u(id)
                    .i(it->second.ttl_ms)
                    .i(it->second.last_seen_ms)
                    .i(it->second.lock_delay_ms)
                    .u(it->second.fence_floor)
                    .run(error)) {
      return false;
    }
  }
  for (const auto& [id, name] : dirty_fences_) {
    auto it = sessions_.find(id);
    const auto f = it == sessions_.end() ? nullptr : &it->second.fences;
    if (f == nullptr || !f->contains(name)) {
      if (!Sql(db_, "DELETE FROM fences WHERE session = ? AND lock = ?").u(id).s(name).run(error)) {
        return false;
      }
    } else if (!Sql(db_, "INSERT OR REPLACE INTO fences VALUES (?, ?, ?)")
                    .u(id)
                    .s(name)
                    .u(f->at(name))
                    .run(error)) {
      return false;
    }
  }
  for (std::uint64_t id : dirty_ended_) {
    auto it = ended_.find(id);
    if (it == ended_.end()) {
      if (!Sql(db_, "DELETE FROM ended WHERE id = ?").u(id).run(error)) return false;
    } else if (!Sql(db_, "INSERT OR REPLACE INTO ended VALUES (?, ?, ?)")
                    .u(id)
                    .i(it->second.expired ? 1 : 0)
                    .i(it->second.at_ms)
                    .run(error)) {
      return false;
    }
  }
  for (const std::string& name : dirty_locks_) {
    if (!Sql(db_, "DELETE FROM holders WHERE lock = ?").s(name).run(error) ||
        !Sql(db_, "DELETE FROM waiters WHERE lock = ?").s(name).run(error)) {
      return false;
    }
    auto it = locks_.find(name);
    if (it == locks_.end()) {
      if (!Sql(db_, "DELETE FROM locks WHERE name = ?").s(name).run(error)) return false;
      continue;
    }
    const Lock& l = it->second;
    if (!Sql(db_, "INSERT OR REPLACE INTO locks VALUES (?, ?, ?)")
             .s(name)
             .i(l.unavailable_until_ms)
             .u(l.last_token)
             .run(error)) {
      return false;
    }
    for (size_t k = 0; k < l.holders.size(); ++k) {
      const Holder& h = l.holders[k];
      if (!Sql(db_, "INSERT INTO holders VALUES (?, ?, ?, ?, ?, ?, ?)")
               .s(name)
               .u(h.session)
               .i(h.shared ? 1 : 0)
               .u(h.token)
               .i(h.since_ms)
               .i(static_cast<std::int64_t>(k))
               .u(h.req)
               .run(error)) {
        return false;
      }
    }
    for (const Waiter& w : l.waiters) {
      if (!Sql(db_, "INSERT INTO waiters VALUES (?, ?, ?, ?, ?)")
               .s(name)
               .u(w.session)
               .i(w.shared ? 1 : 0)
               .u(w.seq)
               .u(w.req)
               .run(error)) {
        return false;
      }
    }
  }
  if (!Sql(db_, "UPDATE _meta SET value = ? WHERE key = 'applied'").u(position).run(error) ||
      !Sql(db_, "UPDATE _meta SET value = ? WHERE key = 'now_ms'").i(now_ms_).run(error) ||
      !exec("COMMIT", error)) {
    return false;
  }
  dirty_sessions_.clear();
  dirty_locks_.clear();
  dirty_ended_.clear();
  dirty_fences_.clear();
  return true;
}

void LockStore::advance(const synod_apply_context& ctx) {
  now_ms_ = std::max(now_ms_, ctx.timestamp_ms);
  expire(ctx.slot);
  // Locks whose lock-delay is over (or that wait for a later command).
  std::vector<std::string> due;
  while (!pending_.empty() && pending_.begin()->first <= now_ms_) {
    due.push_back(pending_.begin()->second);
    pending_.erase(pending_.begin());
  }
  for (const std::string& name : due) try_grant(name, ctx.slot);
}

void LockStore::expire(std::uint64_t slot) {
  std::vector<std::uint64_t> gone;
  for (auto it = by_expiry_.begin(); it != by_expiry_.end() && it->first < now_ms_; ++it) {
    gone.push_back(it->second);
  }
  if (gone.empty()) return;
  std::sort(gone.begin(), gone.end());
  // First every wait and hold of every expiring session, then the grants, so
  // that nothing is granted to a session that expires in the same command.
  std::set<std::string> touched;
  for (std::uint64_t id : gone) {
    Session& s = sessions_.at(id);
    for (const std::string& name : std::set<std::string>(s.waiting)) {
      remove_waiter(name, id);
      touched.insert(name);
    }
    for (const std::string& name : std::set<std::string>(s.held)) {
      remove_holder(name, id);
      Lock& l = locks_.at(name);
      l.unavailable_until_ms = std::max(l.unavailable_until_ms, now_ms_ + s.lock_delay_ms);
      touched.insert(name);
    }
    end_session(id, /*expired=*/true);
  }
  for (const std::string& name : touched) try_grant(name, slot);
}

void LockStore::end_session(std::uint64_t id, bool expired) {
  auto it = sessions_.find(id);
  if (it != sessions_.end()) {
    for (const auto& f : it->second.fences) dirty_fences_.insert({id, f.first});
    by_expiry_.erase({it->second.expires_ms(), id});
    sessions_.erase(it);
    dirty_sessions_.insert(id);
  }
  ended_[id] = Ended{expired, now_ms_};
  dirty_ended_.insert(id);
  while (ended_.size() > kEndedKept) {
    dirty_ended_.insert(ended_.begin()->first);
    ended_.erase(ended_.begin());
  }
}

void LockStore::touch(std::uint64_t id) {
  Session& s = sessions_.at(id);
  by_expiry_.erase({s.expires_ms(), id});
  s.last_seen_ms = now_ms_;
  by_expiry_.insert({s.expires_ms(), id});
  dirty_sessions_.insert(id);
}

void LockStore::remove_holder(const std::string& name, std::uint64_t session) {
  Lock& l = locks_.at(name);
  std::erase_if(l.holders, [&](const Holder& h) { return h.session == session; });
  if (auto s = sessions_.find(session); s != sessions_.end()) s->second.held.erase(name);
  dirty_locks_.insert(name);
}

void LockStore::remove_waiter(const std::string& name, std::uint64_t session) {
  Lock& l = locks_.at(name);
  std::erase_if(l.waiters, [&](const Waiter& w) { return w.session == session; });
  if (auto s = sessions_.find(session); s != sessions_.end()) s->second.waiting.erase(name);
  dirty_locks_.insert(name);
}

bool LockStore::grantable_now(const Lock& l, bool shared, std::uint64_t slot) const {
  if (now_ms_ < l.unavailable_until_ms) return false;
  // Freed and granted again within one command would repeat the token.
  if (l.holders.empty() && l.last_token >= slot) return false;
  if (!shared) return l.holders.empty();
  return std::none_of(l.holders.begin(), l.holders.end(), [](const Holder& h) { return !h.shared; });
}

void LockStore::grant(const std::string& name, Lock& l, std::uint64_t session, bool shared,
                      std::uint64_t slot, std::uint64_t req) {
  l.holders.push_back(Holder{session, shared, slot, now_ms_, req});
  l.last_token = std::max(l.last_token, slot);
  Session& s = sessions_.at(session);
  s.held.insert(name);
  s.waiting.erase(name);
  dirty_locks_.insert(name);
}

void LockStore::try_grant(const std::string& name, std::uint64_t slot) {
  auto it = locks_.find(name);
  if (it == locks_.end() || it->second.waiters.empty()) return;
  Lock& l = it->second;
  while (!l.waiters.empty()) {
    const Waiter w = l.waiters.front();
    if (!grantable_now(l, w.shared, slot)) break;
    l.waiters.pop_front();
    grant(name, l, w.session, w.shared, slot, w.req);
    if (!w.shared) break;
  }
  if (l.waiters.empty()) return;
  // Still waiting: because of the lock-delay, or a grant this command made and
  // undid; look again when the delay ends or at the next command. (Waiters
  // behind holders are looked at when a holder goes.)
  if (now_ms_ < l.unavailable_until_ms) {
    pending_.insert({l.unavailable_until_ms, name});
  } else if (l.holders.empty()) {
    pending_.insert({now_ms_, name});
  }
}

std::string LockStore::session_gone(std::uint64_t id) const {
  auto e = ended_.find(id);
  if (e == ended_.end()) return error_result("unknown session");
  if (e->second.expired) {
    return json{{"error", "session " + std::to_string(id) + " expired"}, {"expired", true}}.dump();
  }
  return json{{"error", "session " + std::to_string(id) + " closed"}, {"closed", true}}.dump();
}

std::string LockStore::apply_one(const synod_apply_context& ctx, std::string_view command) {
  Parsed p;
  std::string why;
  if (!parse(command, Kind::kCommand, &p, &why)) return error_result(why);
  if (p.op == "tick") return "{}";
  if (p.op == "open") {
    const std::uint64_t id = ctx.slot;
    Session& s = sessions_[id];
    s.ttl_ms = p.ttl_ms;
    s.lock_delay_ms = p.lock_delay_ms;
    s.last_seen_ms = now_ms_;
    by_expiry_.insert({s.expires_ms(), id});
    dirty_sessions_.insert(id);
    return json{{"session", id}, {"expires_ms", s.expires_ms()},
                {"lock_delay_ms", s.lock_delay_ms}}
        .dump();
  }
  auto sit = sessions_.find(p.session);
  if (sit == sessions_.end()) {
    if (p.op == "close") {
      auto e = ended_.find(p.session);
      if (e != ended_.end() && !e->second.expired) return json{{"closed", true}}.dump();
    }
    return session_gone(p.session);
  }
  touch(p.session);
  Session& s = sit->second;
  if (p.op == "keepalive") {
    return json{{"session", p.session}, {"expires_ms", s.expires_ms()}}.dump();
  }
  if (p.op == "close") {
    std::set<std::string> touched = s.held;
    touched.insert(s.waiting.begin(), s.waiting.end());
    for (const std::string& name : std::set<std::string>(s.waiting)) remove_waiter(name, p.session);
    for (const std::string& name : std::set<std::string>(s.held)) remove_holder(name, p.session);
    end_session(p.session, /*expired=*/false);
    for (const std::string& name : touched) try_grant(name, ctx.slot);
    return json{{"closed", true}}.dump();
  }
  // A release or cancel with a request number fences this session's acquires
  // of the lock up to it: one still on its way (a retry, a call that timed
  // out) is refused when it arrives, so it cannot leave a hold nobody knows of.
  if (p.op != "acquire" && p.req > s.fence_floor) {
    std::uint64_t& fence = s.fences[p.lock];
    if (p.req > fence) {
      fence = p.req;
      dirty_fences_.insert({p.session, p.lock});
    }
    while (s.fences.size() > kMaxFences) {
      auto lowest = std::min_element(s.fences.begin(), s.fences.end(),
                                     [](const auto& a, const auto& b) { return a.second < b.second; });
      s.fence_floor = std::max(s.fence_floor, lowest->second);
      dirty_fences_.insert({p.session, lowest->first});
      s.fences.erase(lowest);
    }
  }
  if (p.op != "acquire" && !locks_.contains(p.lock)) {
    return p.op == "cancel" ? json{{"cancelled", false}}.dump() : error_result("not held");
  }
  Lock& l = locks_[p.lock];  // a lock row exists from its first acquire on
  dirty_locks_.insert(p.lock);
  auto held = std::find_if(l.holders.begin(), l.holders.end(),
                           [&](const Holder& h) { return h.session == p.session; });
  auto waiting = std::find_if(l.waiters.begin(), l.waiters.end(),
                              [&](const Waiter& w) { return w.session == p.session; });
  if (p.op == "acquire") {
    if (p.req != 0) {
      auto f = s.fences.find(p.lock);
      const std::uint64_t fence = std::max(s.fence_floor, f != s.fences.end() ? f->second : 0);
      if (p.req <= fence) {
        return json{{"error", "request " + std::to_string(p.req) +
                                  " was superseded by a later release or cancel of this "
                                  "session (request " + std::to_string(fence) + ")"},
                    {"superseded", true}}
            .dump();
      }
    }
    if (held != l.holders.end()) {
      if (held->shared != p.shared) {
        return error_result(std::string("already held in ") + mode_name(held->shared) + " mode");
      }
      held->req = std::max(held->req, p.req);
      return json{{"granted", true}, {"token", held->token}, {"lock", p.lock},
                  {"mode", mode_name(p.shared)}}
          .dump();
    }
    if (waiting != l.waiters.end()) {
      if (waiting->shared != p.shared) {
        return error_result(std::string("already waiting in ") + mode_name(waiting->shared) +
                            " mode");
      }
      waiting->req = std::max(waiting->req, p.req);
      return json{{"granted", false}, {"waiting", true},
                  {"position", waiting - l.waiters.begin() + 1}}
          .dump();
    }
    if (l.waiters.empty() && grantable_now(l, p.shared, ctx.slot)) {
      grant(p.lock, l, p.session, p.shared, ctx.slot, p.req);
      return json{{"granted", true}, {"token", ctx.slot}, {"lock", p.lock},
                  {"mode", mode_name(p.shared)}}
          .dump();
    }
    if (p.wait) {
      l.waiters.push_back(Waiter{p.session, p.shared, ctx.slot, p.req});
      s.waiting.insert(p.lock);
      const std::size_t position = l.waiters.size();
      try_grant(p.lock, ctx.slot);  // registers a lock-delay's end (grants nothing)
      return json{{"granted", false}, {"waiting", true}, {"position", position}}.dump();
    }
    json r{{"granted", false},
           {"waiting", false},
           {"holder_session", l.holders.empty() ? 0 : l.holders.front().session}};
    if (now_ms_ < l.unavailable_until_ms) r["unavailable_until_ms"] = l.unavailable_until_ms;
    if (!l.waiters.empty()) r["waiters"] = l.waiters.size();
    return r.dump();
  }
  if (p.op == "cancel") {
    // With a request number: only what acquires up to it asked for.
    if (waiting != l.waiters.end() && (p.req == 0 || waiting->req <= p.req)) {
      remove_waiter(p.lock, p.session);
      try_grant(p.lock, ctx.slot);  // a waiter ahead of others may have blocked them
      return json{{"cancelled", true}}.dump();
    }
    if (held != l.holders.end()) {
      const std::uint64_t token = held->token;
      if (p.req != 0 && held->req <= p.req && !p.keep_held) {
        // Granted to an acquire the cancel covers: released (no lock-delay).
        remove_holder(p.lock, p.session);
        try_grant(p.lock, ctx.slot);
        return json{{"cancelled", true}, {"released", true}, {"token", token}}.dump();
      }
      return json{{"cancelled", false}, {"held", true}, {"token", token}}.dump();
    }
    if (waiting != l.waiters.end()) {
      return json{{"cancelled", false}, {"waiting", true}}.dump();  // a newer acquire's wait
    }
    return json{{"cancelled", false}}.dump();
  }
  // release
  if (held == l.holders.end()) return error_result("not held");
  if (p.req != 0 && held->req > p.req) {
    // A late release: a newer acquire of the session asked for the lock
    // since, and was told it holds it.
    return json{{"error", "request " + std::to_string(p.req) +
                              " was superseded by a newer acquire of this session (request " +
                              std::to_string(held->req) + ")"},
                {"superseded", true}}
        .dump();
  }
  remove_holder(p.lock, p.session);
  try_grant(p.lock, ctx.slot);
  return json{{"released", true}}.dump();
}

// ---------------------------------------------------------------- queries

std::string LockStore::show_json(const std::string& name, const Lock* l) const {
  json holders = json::array();
  json waiters = json::array();
  if (l != nullptr) {
    for (const Holder& h : l->holders) {
      holders.push_back({{"session", h.session}, {"token", h.token},
                         {"mode", mode_name(h.shared)}, {"since_ms", h.since_ms}});
    }
    for (const Waiter& w : l->waiters) {
      waiters.push_back({{"session", w.session}, {"mode", mode_name(w.shared)}});
    }
  }
  return json{{"lock", name},
              {"holders", std::move(holders)},
              {"waiters", std::move(waiters)},
              {"unavailable_until_ms", l != nullptr ? l->unavailable_until_ms : 0},
              {"last_token", l != nullptr ? l->last_token : 0},
              {"now_ms", now_ms_}}
      .dump();
}

bool LockStore::query(std::string_view request, std::string* result, std::string*) {
  Parsed p;
  std::string why;
  if (!parse(request, Kind::kQuery, &p, &why)) {
    *result = error_result(why);
    return true;
  }
  std::shared_lock lock(mu_);
  auto lit = locks_.find(p.lock);
  const Lock* l = lit == locks_.end() ? nullptr : &lit->second;
  if (p.op == "idle") {
    // No session: nothing can expire and nobody waits, so ticks change nothing.
    *result = sessions_.empty() ? R"({"idle":true})" : R"({"idle":false})";
  } else if (p.op == "show") {
    *result = show_json(p.lock, l);
  } else if (p.op == "check") {
    bool current = false;
    if (l != nullptr) {
      for (const Holder& h : l->holders) current = current || h.token == p.token;
    }
    *result = json{{"current", current}, {"newest_token", l != nullptr ? l->last_token : 0}}.dump();
  } else if (p.op == "list") {
    json locks = json::array();
    for (const auto& [name, lk] : locks_) {
      if (lk.holders.empty() && lk.waiters.empty() && lk.unavailable_until_ms <= now_ms_) continue;
      locks.push_back(json::parse(show_json(name, &lk)));
    }
    json sessions = json::array();
    for (const auto& [id, s] : sessions_) {
      sessions.push_back({{"session", id},
                          {"ttl_ms", s.ttl_ms},
                          {"lock_delay_ms", s.lock_delay_ms},
                          {"expires_ms", s.expires_ms()}});
    }
    *result = json{{"locks", std::move(locks)}, {"sessions", std::move(sessions)},
                   {"now_ms", now_ms_}}
                  .dump();
  } else {  // status
    auto sit = sessions_.find(p.session);
    if (sit == sessions_.end()) {
      auto e = ended_.find(p.session);
      if (e == ended_.end()) {
        *result = error_result("unknown session");
      } else if (e->second.expired) {
        *result = json{{"error", "session expired"}, {"expired", true}}.dump();
      } else {
        *result = json{{"error", "session closed"}, {"closed", true}}.dump();
      }
      return true;
    }
    json r{{"held", false}, {"waiting", false}};
    if (l != nullptr) {
      for (const Holder& h : l->holders) {
        if (h.session == p.session) {
          r = json{{"held", true}, {"token", h.token}, {"mode", mode_name(h.shared)},
                   {"req", h.req}};
        }
      }
      for (size_t k = 0; k < l->waiters.size(); ++k) {
        if (l->waiters[k].session == p.session) {
          r = json{{"held", false}, {"waiting", true}, {"position", k + 1},
                   {"req", l->waiters[k].req}};
        }
      }
    }
    *result = r.dump();
  }
  return true;
}

}  // namespace synod::lock
