#include "backends/mysql/mysql_store.h"

#include <mysql.h>
#include <mysqld_error.h>
#include <errmsg.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "backends/mysql/mysql_rules.h"
#include "backends/sqlcommon/digest.h"
#include "backends/sqlcommon/sql_text.h"

namespace synod::mysql {

using nlohmann::json;

// One MYSQL handle; closed with it.
struct Connection {
  MYSQL* m = nullptr;
  ~Connection() {
    if (m != nullptr) mysql_close(m);
  }
};

namespace {

// Every session setting that can change what a statement computes, pinned so
// that servers configured differently still agree.
constexpr const char* kSessionSettings =
    "SET SESSION time_zone = '+00:00', sql_mode = '"
    "STRICT_TRANS_TABLES,STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ZERO_DATE,"
    "NO_ZERO_IN_DATE,NO_ENGINE_SUBSTITUTION,NO_AUTO_CREATE_USER', "
    "default_storage_engine = InnoDB, enforce_storage_engine = InnoDB, autocommit = 1, "
    "tx_isolation = 'REPEATABLE-READ', div_precision_increment = 4, "
    "group_concat_max_len = 1048576, lc_time_names = 'en_US', "
    "explicit_defaults_for_timestamp = ON, sql_auto_is_null = 0, "
    "auto_increment_increment = 1, auto_increment_offset = 1, foreign_key_checks = 1, "
    "unique_checks = 1, sql_safe_updates = 0, max_statement_time = 0, "
    "collation_connection = 'utf8mb4_general_ci', sql_select_limit = DEFAULT";

constexpr const char* kCharset = "utf8mb4";
constexpr const char* kCollation = "utf8mb4_general_ci";

// Server errors that are this node's trouble, not the statement's: the same
// command would succeed on another node (or here later). The batch fails and
// is retried; it must not become a result.
bool is_node_error(unsigned e) {
  if (e >= 2000 && e < 3000) return true;  // client library: connection, protocol
  switch (e) {
    case ER_CON_COUNT_ERROR:
    case ER_OUT_OF_RESOURCES:
    case ER_OUTOFMEMORY:
    case ER_OUT_OF_SORTMEMORY:
    case ER_SERVER_SHUTDOWN:
    case ER_DISK_FULL:
    case ER_RECORD_FILE_FULL:
    case ER_LOCK_WAIT_TIMEOUT:
    case ER_LOCK_DEADLOCK:
    case ER_LOCK_TABLE_FULL:
    case ER_QUERY_INTERRUPTED:
    case ER_GET_ERRNO:
    case ER_ERROR_DURING_COMMIT:
    case ER_ERROR_DURING_ROLLBACK:
    case ER_OPTION_PREVENTS_STATEMENT:  // --read-only, and enforce_storage_engine
    case ER_READ_ONLY_MODE:
    case ER_ABORTING_CONNECTION:
    case ER_NET_READ_ERROR:
    case ER_NET_READ_INTERRUPTED:
    case ER_NET_ERROR_ON_WRITE:
    case ER_NET_WRITE_INTERRUPTED:
    case ER_NET_PACKET_TOO_LARGE:
    case ER_CONNECTION_KILLED:
    case ER_STATEMENT_TIMEOUT:
    case ER_FILSORT_ABORT:
    case ER_ERROR_ON_WRITE:
    case ER_ERROR_ON_READ:
    case ER_CANT_LOCK:
    case ER_CANT_CREATE_FILE:
    case ER_FILE_NOT_FOUND:
    case ER_CANT_OPEN_FILE:
    case ER_NOT_KEYFILE:
    case ER_CRASHED_ON_USAGE:
    case ER_CRASHED_ON_REPAIR:
    case ER_TABLE_DEF_CHANGED:
    case ER_TOO_MANY_CONCURRENT_TRXS:
    case ER_LOCK_ABORTED:
    case ER_UNKNOWN_ERROR:
    case 4031:  // ER_CLIENT_INTERACTION_TIMEOUT (10.6+)
      return true;
    default:
      return false;
  }
}

std::string quote_name(std::string_view name) {
  std::string out = "`";
  for (char c : name) {
    if (c == '`') out.push_back('`');
    out.push_back(c);
  }
  out.push_back('`');
  return out;
}

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

struct ResultFree {
  void operator()(MYSQL_RES* r) const { mysql_free_result(r); }
};
using Result = std::unique_ptr<MYSQL_RES, ResultFree>;

// What one server call came to.
enum class Outcome { kOk, kSqlError, kNodeError };

// Runs sql; a result set, if any, is stored in *res (or dropped when res is
// null). kSqlError / kNodeError with *message.
Outcome run_sql(MYSQL* m, std::string_view sql, Result* res, std::string* message) {
  if (mysql_real_query(m, sql.data(), sql.size()) != 0) {
    *message = mysql_error(m);
    return is_node_error(mysql_errno(m)) ? Outcome::kNodeError : Outcome::kSqlError;
  }
  if (mysql_field_count(m) == 0) {
    if (res != nullptr) res->reset();
    return Outcome::kOk;
  }
  Result r(mysql_store_result(m));
  if (!r) {
    *message = mysql_error(m);
    return is_node_error(mysql_errno(m)) || mysql_errno(m) == 0 ? Outcome::kNodeError
                                                                : Outcome::kSqlError;
  }
  if (res != nullptr) *res = std::move(r);
  return Outcome::kOk;
}

// The backend's own statements: any failure is the node's.
bool exec(MYSQL* m, std::string_view sql, std::string* error, Result* res = nullptr) {
  std::string message;
  if (run_sql(m, sql, res, &message) == Outcome::kOk) return true;
  *error = message + " (in: " + std::string(sql.substr(0, 120)) + ")";
  return false;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// ---------------------------------------------------------------- values

bool is_binary(const MYSQL_FIELD& f) { return f.charsetnr == 63; }

std::string type_name(const MYSQL_FIELD& f) {
  switch (f.type) {
    case MYSQL_TYPE_TINY: return "tinyint";
    case MYSQL_TYPE_SHORT: return "smallint";
    case MYSQL_TYPE_INT24: return "mediumint";
    case MYSQL_TYPE_LONG: return "int";
    case MYSQL_TYPE_LONGLONG: return "bigint";
    case MYSQL_TYPE_YEAR: return "year";
    case MYSQL_TYPE_FLOAT: return "float";
    case MYSQL_TYPE_DOUBLE: return "double";
    case MYSQL_TYPE_DECIMAL:
    case MYSQL_TYPE_NEWDECIMAL: return "decimal";
    case MYSQL_TYPE_DATE:
    case MYSQL_TYPE_NEWDATE: return "date";
    case MYSQL_TYPE_TIME:
    case MYSQL_TYPE_TIME2: return "time";
    case MYSQL_TYPE_DATETIME:
    case MYSQL_TYPE_DATETIME2: return "datetime";
    case MYSQL_TYPE_TIMESTAMP:
    case MYSQL_TYPE_TIMESTAMP2: return "timestamp";
    case MYSQL_TYPE_BIT: return "bit";
    case MYSQL_TYPE_NULL: return "null";
    case MYSQL_TYPE_JSON: return "json";
    case MYSQL_TYPE_ENUM: return "enum";
    case MYSQL_TYPE_SET: return "set";
    case MYSQL_TYPE_GEOMETRY: return "geometry";
    case MYSQL_TYPE_STRING:
      if ((f.flags & ENUM_FLAG) != 0) return "enum";
      if ((f.flags & SET_FLAG) != 0) return "set";
      return is_binary(f) ? "binary" : "char";
    case MYSQL_TYPE_VAR_STRING:
    case MYSQL_TYPE_VARCHAR: return is_binary(f) ? "varbinary" : "varchar";
    case MYSQL_TYPE_TINY_BLOB:
    case MYSQL_TYPE_MEDIUM_BLOB:
    case MYSQL_TYPE_LONG_BLOB:
    case MYSQL_TYPE_BLOB: return is_binary(f) ? "blob" : "text";
    default: return "";
  }
}

json value(const MYSQL_FIELD& f, const char* p, unsigned long len) {
  if (p == nullptr) return nullptr;
  const std::string text(p, len);
  switch (f.type) {
    case MYSQL_TYPE_TINY:
    case MYSQL_TYPE_SHORT:
    case MYSQL_TYPE_INT24:
    case MYSQL_TYPE_LONG:
    case MYSQL_TYPE_LONGLONG:
    case MYSQL_TYPE_YEAR:
      if ((f.flags & UNSIGNED_FLAG) != 0) return std::strtoull(text.c_str(), nullptr, 10);
      return static_cast<std::int64_t>(std::strtoll(text.c_str(), nullptr, 10));
    case MYSQL_TYPE_FLOAT:
    case MYSQL_TYPE_DOUBLE:
      return std::strtod(text.c_str(), nullptr);
    case MYSQL_TYPE_BIT: {
      std::uint64_t v = 0;
      for (unsigned long i = 0; i < len && i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
      return v;
    }
    case MYSQL_TYPE_NULL:
      return nullptr;
    case MYSQL_TYPE_STRING:
    case MYSQL_TYPE_VAR_STRING:
    case MYSQL_TYPE_VARCHAR:
    case MYSQL_TYPE_TINY_BLOB:
    case MYSQL_TYPE_MEDIUM_BLOB:
    case MYSQL_TYPE_LONG_BLOB:
    case MYSQL_TYPE_BLOB:
    case MYSQL_TYPE_GEOMETRY:
      if (is_binary(f)) return sqltext::base64(reinterpret_cast<const unsigned char*>(p), len);
      return text;
    default:  // DECIMAL (exact, as a string), dates, times, JSON, ENUM, SET
      return text;
  }
}

// One parameter as an SQL literal; false with *why.
bool literal(MYSQL* m, const json& v, size_t index, std::string* out, std::string* why) {
  if (v.is_null()) {
    *out = "NULL";
  } else if (v.is_boolean()) {
    *out = v.get<bool>() ? "1" : "0";
  } else if (v.is_number_unsigned()) {
    *out = std::to_string(v.get<std::uint64_t>());
  } else if (v.is_number_integer()) {
    *out = std::to_string(v.get<std::int64_t>());
  } else if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!std::isfinite(d)) {
      *why = "parameter " + std::to_string(index) + " is not a finite number";
      return false;
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", d);
    *out = buf;
    // 1.5 would be a DECIMAL literal; 1.5e0 is a DOUBLE, as the JSON value.
    if (out->find_first_of("eE") == std::string::npos) out->append("e0");
  } else if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    std::string buf(s.size() * 2 + 1, '\0');
    const unsigned long n = mysql_real_escape_string(m, buf.data(), s.data(), s.size());
    if (n == static_cast<unsigned long>(-1)) {
      *why = "parameter " + std::to_string(index) + " cannot be escaped";
      return false;
    }
    *out = "'" + buf.substr(0, n) + "'";
  } else {
    *why = "parameter " + std::to_string(index) +
           " must be null, a boolean, a number or a string, not " + v.type_name();
    return false;
  }
  return true;
}

// sql with its ? placeholders (from sqltext::bind_placeholders) replaced by
// the values' literals.
bool substitute(MYSQL* m, const std::string& sql, const std::vector<json>& values,
                std::string* out, std::string* why) {
  if (values.empty()) {
    *out = sql;
    return true;
  }
  std::vector<sqltext::Token> tokens;
  if (!sqltext::lex(sql, sqltext::Dialect::kMySql, &tokens, why)) return false;
  out->clear();
  size_t copied = 0, k = 0;
  for (const auto& t : tokens) {
    if (t.kind != sqltext::TokenKind::kPositional) continue;
    if (k >= values.size()) {
      *why = "more placeholders than values";
      return false;
    }
    std::string lit;
    if (!literal(m, values[k], k + 1, &lit, why)) return false;
    ++k;
    out->append(sql, copied, t.offset - copied);
    out->append(lit);
    copied = t.offset + 1;
  }
  out->append(sql, copied, std::string::npos);
  return true;
}

// ---------------------------------------------------------------- running statements

// Runs the statements of one command (writes) or request (reads), appending
// a result per entry. *failed: an entry failed (its error is the last
// result). False with *error on a node error.
bool run(MYSQL* m, const json& statements, bool read_only, json* results, bool* failed,
         std::int64_t* last_insert_id, std::string* error) {
  *failed = false;
  for (const json& entry : statements) {
    std::string sql, why;
    json params;
    auto fail_result = [&](const std::string& message) {
      results->push_back({{"error", message}});
      *failed = true;
      return true;
    };
    if (!sqltext::split_entry(entry, &sql, &params, &why)) return fail_result(why);
    std::vector<std::string> parts;
    if (!sqltext::split_statements(sql, sqltext::Dialect::kMySql, &parts, &why)) {
      return fail_result(why);
    }
    if (parts.size() > 1 && !params.empty()) {
      return fail_result("parameters go with one statement per entry");
    }
    json out = read_only ? json{{"columns", json::array()}, {"types", json::array()},
                                {"values", json::array()}}
                         : json::object();
    std::int64_t changes = 0;
    for (const std::string& part : parts) {
      if (read_only) {
        if (!check_read_statement(part, &why)) return fail_result(why);
      } else {
        StatementKind kind;
        if (!check_write_statement(part, &kind, &why)) return fail_result(why);
      }
      std::string bound, final_sql;
      std::vector<json> values;
      if (!sqltext::bind_placeholders(part, sqltext::Dialect::kMySql, params, &bound, &values,
                                      &why) ||
          !substitute(m, bound, values, &final_sql, &why)) {
        return fail_result(why);
      }
      Result res;
      std::string message;
      const Outcome o = run_sql(m, final_sql, &res, &message);
      if (o == Outcome::kNodeError) {
        *error = message;
        return false;
      }
      if (o == Outcome::kSqlError) return fail_result(message);
      if (!read_only) {
        if (!res) {
          const my_ulonglong affected = mysql_affected_rows(m);
          if (affected != static_cast<my_ulonglong>(-1)) changes += static_cast<std::int64_t>(affected);
          const my_ulonglong id = mysql_insert_id(m);
          if (id != 0) *last_insert_id = static_cast<std::int64_t>(id);
        }
        continue;  // rows of a SELECT in a write: not reported
      }
      if (!res) continue;
      const unsigned columns = mysql_num_fields(res.get());
      MYSQL_FIELD* fields = mysql_fetch_fields(res.get());
      if (out["columns"].empty()) {
        for (unsigned c = 0; c < columns; ++c) {
          out["columns"].push_back(std::string(fields[c].name, fields[c].name_length));
          out["types"].push_back(type_name(fields[c]));
        }
      }
      while (MYSQL_ROW row = mysql_fetch_row(res.get())) {
        const unsigned long* lengths = mysql_fetch_lengths(res.get());
        json r = json::array();
        for (unsigned c = 0; c < columns; ++c) r.push_back(value(fields[c], row[c], lengths[c]));
        out["values"].push_back(std::move(r));
      }
    }
    if (!read_only) {
      out["last_insert_id"] = *last_insert_id;
      out["rows_affected"] = changes;
    }
    results->push_back(std::move(out));
  }
  return true;
}

// ---------------------------------------------------------------- digests

// The user tables (and, with views, the views) of the current database,
// sorted by name, without _synod_*.
bool user_tables(MYSQL* m, bool views, std::vector<std::string>* out, std::string* error) {
  Result res;
  std::string sql =
      "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()";
  if (!views) sql += " AND TABLE_TYPE = 'BASE TABLE'";
  if (!exec(m, sql, error, &res)) return false;
  out->clear();
  while (MYSQL_ROW row = mysql_fetch_row(res.get())) {
    const unsigned long* len = mysql_fetch_lengths(res.get());
    std::string name(row[0], len[0]);
    if (lower(name).rfind("_synod_", 0) == 0) continue;
    out->push_back(std::move(name));
  }
  std::sort(out->begin(), out->end());
  return true;
}

// SHA-256 over every user table's and view's SHOW CREATE, AUTO_INCREMENT=N
// left out: what a schema statement changes.
bool schema_digest(MYSQL* m, std::string* out, std::string* error) {
  std::vector<std::string> tables;
  if (!user_tables(m, /*views=*/true, &tables, error)) return false;
  sqltext::Digest d;
  for (const std::string& t : tables) {
    Result res;
    if (!exec(m, "SHOW CREATE TABLE " + quote_name(t), error, &res)) return false;
    MYSQL_ROW row = mysql_fetch_row(res.get());
    if (row == nullptr || row[1] == nullptr) {
      *error = "SHOW CREATE TABLE " + t + " returned nothing";
      return false;
    }
    std::string create(row[1], mysql_fetch_lengths(res.get())[1]);
    const size_t at = create.find(" AUTO_INCREMENT=");
    if (at != std::string::npos) {
      size_t end = at + 16;
      while (end < create.size() && std::isdigit(static_cast<unsigned char>(create[end]))) ++end;
      create.erase(at, end - at);
    }
    d.field('t', t);
    d.field('s', create);
  }
  *out = d.hex();
  return true;
}

// The content checksum: every user table's name, columns (name, type) and
// rows (primary-key order; tables without one: rows sorted by their encoding).
bool content_checksum(MYSQL* m, std::string* out, std::string* error) {
  std::vector<std::string> tables;
  if (!user_tables(m, /*views=*/false, &tables, error)) return false;
  sqltext::Digest d;
  for (const std::string& t : tables) {
    d.field('T', t);
    std::string escaped(t.size() * 2 + 1, '\0');
    escaped.resize(mysql_real_escape_string(m, escaped.data(), t.data(), t.size()));
    Result cols;
    if (!exec(m,
              "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE "
              "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '" + escaped +
                  "' ORDER BY ORDINAL_POSITION",
              error, &cols)) {
      return false;
    }
    std::string select;
    while (MYSQL_ROW row = mysql_fetch_row(cols.get())) {
      const unsigned long* len = mysql_fetch_lengths(cols.get());
      const std::string name(row[0], len[0]);
      d.field('C', name);
      d.field('y', std::string(row[1], len[1]));
      select += (select.empty() ? "" : ", ") + quote_name(name);
    }
    Result keys;
    if (!exec(m,
              "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = "
              "DATABASE() AND TABLE_NAME = '" + escaped +
                  "' AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
              error, &keys)) {
      return false;
    }
    std::string order;
    while (MYSQL_ROW row = mysql_fetch_row(keys.get())) {
      order += (order.empty() ? "" : ", ") +
               quote_name(std::string(row[0], mysql_fetch_lengths(keys.get())[0]));
    }
    if (select.empty()) continue;
    std::string sql = "SELECT " + select + " FROM " + quote_name(t);
    if (!order.empty()) sql += " ORDER BY " + order;
    // mysql_use_result streams the rows: a large table is not held in memory.
    if (mysql_real_query(m, sql.data(), sql.size()) != 0) {
      *error = mysql_error(m);
      return false;
    }
    Result rows(mysql_use_result(m));
    if (!rows) {
      *error = mysql_error(m);
      return false;
    }
    const unsigned n = mysql_num_fields(rows.get());
    std::vector<std::string> unordered;
    while (MYSQL_ROW row = mysql_fetch_row(rows.get())) {
      const unsigned long* len = mysql_fetch_lengths(rows.get());
      std::string enc;
      for (unsigned c = 0; c < n; ++c) {
        if (row[c] == nullptr) {
          enc += 'n';
          continue;
        }
        enc += 'v';
        enc += std::to_string(len[c]);
        enc += ':';
        enc.append(row[c], len[c]);
      }
      if (order.empty()) {
        unordered.push_back(std::move(enc));
      } else {
        d.field('r', enc);
      }
    }
    if (mysql_errno(m) != 0) {
      *error = mysql_error(m);
      return false;
    }
    std::sort(unordered.begin(), unordered.end());
    for (const std::string& enc : unordered) d.field('r', enc);
  }
  *out = d.hex();
  return true;
}

std::string already_applied(uint64_t slot, uint64_t position) {
  return json{{"error", "position " + std::to_string(slot) + " was already applied (last applied: " +
                            std::to_string(position) + "); not applied again"}}
      .dump();
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Per command: the proposer's time and seed, and LAST_INSERT_ID() from 0.
std::string command_settings(const synod_apply_context& ctx) {
  // SET timestamp = 0 would mean "the real clock again": the earliest time
  // is 1 ms after the epoch.
  const std::int64_t ms = std::max<std::int64_t>(ctx.timestamp_ms, 1);
  const std::uint64_t seed = splitmix64(ctx.random_seed);
  char buf[200];
  std::snprintf(buf, sizeof buf,
                "SET timestamp = %" PRId64 ".%03" PRId64
                ", rand_seed1 = %" PRIu64 ", rand_seed2 = %" PRIu64 ", last_insert_id = 0",
                ms / 1000, ms % 1000, static_cast<std::uint64_t>(seed & 0x3FFFFFFFULL),
                static_cast<std::uint64_t>((seed >> 32) & 0x3FFFFFFFULL));
  return buf;
}

}  // namespace

// ---------------------------------------------------------------- MysqlStore

std::string MysqlStore::where() const {
  if (!config_.socket.empty()) return "mariadb at " + config_.socket;
  return "mariadb at " + config_.host + ":" + std::to_string(config_.port);
}

bool MysqlStore::connect(std::unique_ptr<Connection>* conn, bool first, std::string* error) {
  static std::once_flag once;
  std::call_once(once, [] { mysql_library_init(0, nullptr, nullptr); });
  auto c = std::make_unique<Connection>();
  c->m = mysql_init(nullptr);
  if (c->m == nullptr) {
    *error = "mysql_init: out of memory";
    return false;
  }
  const unsigned connect_timeout = 10;
  const unsigned io_timeout = 3600;  // a long ALTER TABLE must not look like a lost server
  const my_bool no = 0;
  mysql_options(c->m, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
  mysql_options(c->m, MYSQL_OPT_READ_TIMEOUT, &io_timeout);
  mysql_options(c->m, MYSQL_OPT_WRITE_TIMEOUT, &io_timeout);
  mysql_options(c->m, MYSQL_OPT_RECONNECT, &no);  // a reconnect is ours to do
  mysql_options(c->m, MYSQL_OPT_LOCAL_INFILE, &no);
  mysql_options(c->m, MYSQL_SET_CHARSET_NAME, kCharset);
  if (mysql_real_connect(c->m, config_.socket.empty() ? config_.host.c_str() : nullptr,
                         config_.user.c_str(), config_.password.c_str(), nullptr,
                         config_.port, config_.socket.empty() ? nullptr : config_.socket.c_str(),
                         CLIENT_FOUND_ROWS) == nullptr) {
    *error = "cannot connect to " + where() + " as " + config_.user + ": " + mysql_error(c->m);
    return false;
  }
  std::string why;
  const std::string db = quote_name(config_.database);
  if (first) {
    Result res;
    if (!exec(c->m, "SELECT SUPPORT FROM information_schema.ENGINES WHERE ENGINE = 'InnoDB'",
              &why, &res)) {
      *error = where() + ": " + why;
      return false;
    }
    MYSQL_ROW row = mysql_fetch_row(res.get());
    const std::string support = row != nullptr && row[0] != nullptr ? row[0] : "NO";
    if (support != "YES" && support != "DEFAULT") {
      *error = where() + " has no InnoDB storage engine (support: " + support +
               "): the mysql backend needs transactional tables";
      return false;
    }
    if (!exec(c->m,
              "CREATE DATABASE IF NOT EXISTS " + db + " CHARACTER SET " + kCharset + " COLLATE " +
                  kCollation,
              &why)) {
      *error = where() + ": cannot create database " + config_.database + ": " + why;
      return false;
    }
  }
  if (mysql_select_db(c->m, config_.database.c_str()) != 0) {
    *error = where() + ": cannot use database " + config_.database + ": " + mysql_error(c->m);
    return false;
  }
  if (!exec(c->m, kSessionSettings, &why)) {
    *error = where() + ": cannot set the session: " + why;
    return false;
  }
  if (first) {
    Result res;
    if (!exec(c->m,
              "SELECT @@session.default_storage_engine, @@global.innodb_flush_log_at_trx_commit, "
              "(SELECT CONCAT(DEFAULT_CHARACTER_SET_NAME, ' ', DEFAULT_COLLATION_NAME) FROM "
              "information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE())",
              &why, &res)) {
      *error = where() + ": " + why;
      return false;
    }
    MYSQL_ROW row = mysql_fetch_row(res.get());
    if (row == nullptr || row[0] == nullptr || lower(row[0]) != "innodb") {
      *error = where() + ": default_storage_engine is not InnoDB";
      return false;
    }
    flush_on_sync_ = row[1] == nullptr || std::string(row[1]) != "1";
    const std::string want = std::string(kCharset) + " " + kCollation;
    if (row[2] == nullptr || want != row[2]) {
      *error = where() + ": database " + config_.database + " has character set " +
               (row[2] != nullptr ? row[2] : "?") + ", not " + want +
               " (every node's database must compare strings the same way)";
      return false;
    }
  }
  *conn = std::move(c);
  return true;
}

std::unique_ptr<MysqlStore> MysqlStore::open(const Config& config, std::string* error) {
  if (config.database.empty()) {
    *error = "option database is required";
    return nullptr;
  }
  std::unique_ptr<MysqlStore> s(new MysqlStore());
  s->config_ = config;
  if (!s->connect(&s->writer_, /*first=*/true, error)) return nullptr;
  MYSQL* m = s->writer_->m;
  std::string why;
  // A database with tables but no _synod_meta is somebody else's.
  {
    Result res;
    if (!exec(m,
              "SELECT SUM(TABLE_NAME = '_synod_meta'), COUNT(*) FROM information_schema.TABLES "
              "WHERE TABLE_SCHEMA = DATABASE()",
              &why, &res)) {
      *error = s->where() + ": " + why;
      return nullptr;
    }
    MYSQL_ROW row = mysql_fetch_row(res.get());
    const bool has_meta = row != nullptr && row[0] != nullptr && std::string(row[0]) != "0";
    const bool has_tables = row != nullptr && row[1] != nullptr && std::string(row[1]) != "0";
    if (!has_meta && has_tables) {
      *error = "database " + config.database + " on " + s->where() +
               " has tables but no _synod_meta: it is not a Synod mysql store";
      return nullptr;
    }
  }
  for (const char* sql :
       {"CREATE TABLE IF NOT EXISTS _synod_meta (name VARCHAR(64) NOT NULL PRIMARY KEY, "
        "value BIGINT NOT NULL, text LONGTEXT NULL) ENGINE=InnoDB",
        "CREATE TABLE IF NOT EXISTS _synod_checksums (position BIGINT NOT NULL PRIMARY KEY, "
        "checksum TEXT NOT NULL) ENGINE=InnoDB",
        "CREATE TABLE IF NOT EXISTS _synod_autoinc (table_name VARCHAR(64) NOT NULL PRIMARY KEY, "
        "next BIGINT UNSIGNED NOT NULL) ENGINE=InnoDB",
        "INSERT IGNORE INTO _synod_meta VALUES ('format', 1, NULL), ('applied', 0, NULL), "
        "('ddl_pending', 0, NULL)"}) {
    if (!exec(m, sql, &why)) {
      *error = s->where() + ": cannot create Synod's tables: " + why;
      return nullptr;
    }
  }
  if (!s->recover(error)) return nullptr;
  return s;
}

MysqlStore::~MysqlStore() = default;

bool MysqlStore::lost(std::string* error) {
  *error = "connection to " + where() + " lost: " + *error + "; reconnecting";
  writer_.reset();
  return false;
}

bool MysqlStore::ensure_writer(std::string* error) {
  if (writer_) return true;
  std::string why;
  if (!connect(&writer_, /*first=*/false, &why) || !recover(&why)) {
    writer_.reset();
    *error = "connection to " + where() + " lost: " + why + "; reconnecting";
    return false;
  }
  return true;
}

// After (re)connecting: the applied position, a schema statement that may or
// may not have run, and the AUTO_INCREMENT counters of the last commit.
bool MysqlStore::recover(std::string* error) {
  MYSQL* m = writer_->m;
  std::uint64_t applied = 0, pending = 0;
  std::string pending_digest;
  {
    Result res;
    if (!exec(m, "SELECT name, value, text FROM _synod_meta", error, &res)) return false;
    std::int64_t format = 0;
    while (MYSQL_ROW row = mysql_fetch_row(res.get())) {
      const std::string name = row[0];
      const std::int64_t v = std::strtoll(row[1], nullptr, 10);
      if (name == "format") format = v;
      if (name == "applied") applied = static_cast<std::uint64_t>(v);
      if (name == "ddl_pending") {
        pending = static_cast<std::uint64_t>(v);
        if (row[2] != nullptr) pending_digest = row[2];
      }
    }
    if (format != 1) {
      *error = "database " + config_.database + ": unknown store format " + std::to_string(format);
      return false;
    }
  }
  bool landed = false;
  if (pending != 0) {
    std::string now;
    if (!schema_digest(m, &now, error)) return false;
    landed = pending > applied && now != pending_digest;
    std::string sql = "UPDATE _synod_meta SET value = CASE name WHEN 'ddl_pending' THEN 0 ELSE " +
                      std::to_string(landed ? pending : applied) +
                      " END, text = NULL WHERE name IN ('ddl_pending', 'applied')";
    if (!exec(m, "START TRANSACTION", error) || !exec(m, sql, error)) return false;
    if (landed && !exec(m, "DELETE FROM _synod_autoinc", error)) return false;
    if (landed && !exec(m,
                        "INSERT INTO _synod_autoinc SELECT TABLE_NAME, AUTO_INCREMENT FROM "
                        "information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND "
                        "AUTO_INCREMENT IS NOT NULL AND TABLE_NAME NOT LIKE '\\_synod\\_%'",
                        error)) {
      return false;
    }
    if (!exec(m, "COMMIT", error)) return false;
    if (landed) applied = pending;
  }
  if (!landed) {
    // Counters a lost transaction moved on: back to the last commit's.
    Result res;
    if (!exec(m,
              "SELECT a.table_name, a.next FROM _synod_autoinc a JOIN information_schema.TABLES t "
              "ON t.TABLE_SCHEMA = DATABASE() AND t.TABLE_NAME = a.table_name "
              "WHERE t.AUTO_INCREMENT <> a.next",
              error, &res)) {
      return false;
    }
    std::vector<std::pair<std::string, std::string>> fix;
    while (MYSQL_ROW row = mysql_fetch_row(res.get())) fix.emplace_back(row[0], row[1]);
    for (const auto& [table, next] : fix) {
      if (!exec(m, "ALTER TABLE " + quote_name(table) + " AUTO_INCREMENT = " + next, error)) {
        return false;
      }
    }
  }
  last_applied_.store(applied, std::memory_order_release);
  return true;
}

bool MysqlStore::apply(const synod_apply_context& ctx, std::string_view command,
                       std::string* result, std::string* error) {
  std::vector<std::string> results;
  if (!apply_batch(1, &ctx, &command, &results, error)) return false;
  *result = std::move(results[0]);
  return true;
}

bool MysqlStore::apply_batch(size_t n, const synod_apply_context* ctxs,
                             const std::string_view* cmds, std::vector<std::string>* results,
                             std::string* error) {
  if (!ensure_writer(error)) return false;
  MYSQL* m = writer_->m;
  uint64_t position = last_applied_.load(std::memory_order_relaxed);
  uint64_t committed = position;
  std::vector<std::string> out;
  out.reserve(n);
  size_t committed_count = 0;  // out[0, committed_count) are durable
  bool open = false;           // a transaction is open
  bool wrote = false;          // ... and user statements ran in it

  // On a node error: the transaction is gone with the connection; keep the
  // results of what was committed for the host's retry.
  auto fail = [&] {
    for (size_t i = 0; i < committed_count; ++i) committed_results_[ctxs[i].slot] = out[i];
    return lost(error);
  };
  auto begin = [&] {
    if (open) return true;
    open = exec(m, "START TRANSACTION", error);
    wrote = false;
    return open;
  };
  auto snapshot_autoinc = [&] {
    return exec(m, "DELETE FROM _synod_autoinc", error) &&
           exec(m,
                "INSERT INTO _synod_autoinc SELECT TABLE_NAME, AUTO_INCREMENT FROM "
                "information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND "
                "AUTO_INCREMENT IS NOT NULL AND TABLE_NAME NOT LIKE '\\_synod\\_%'",
                error);
  };
  auto commit = [&] {
    if (!open) return true;
    if (position != committed &&
        !exec(m, "UPDATE _synod_meta SET value = " + std::to_string(position) +
                     " WHERE name = 'applied'",
              error)) {
      return false;
    }
    if (wrote && !snapshot_autoinc()) return false;
    if (!exec(m, "COMMIT", error)) return false;
    open = false;
    committed = position;
    committed_count = out.size();
    last_applied_.store(position, std::memory_order_release);
    return true;
  };

  for (size_t i = 0; i < n; ++i) {
    const synod_apply_context& ctx = ctxs[i];
    if (ctx.slot <= position) {
      auto it = committed_results_.find(ctx.slot);
      if (it != committed_results_.end()) {
        out.push_back(std::move(it->second));
        committed_results_.erase(it);
      } else {
        out.push_back(already_applied(ctx.slot, position));
      }
      continue;
    }
    json command = json::parse(cmds[i].begin(), cmds[i].end(), nullptr, false);
    bool schema = false;
    std::string why;
    if (!command.is_discarded() && sqltext::is_checksum_command(command)) {
      if (!begin()) return fail();
      std::string sum;
      if (!content_checksum(m, &sum, error)) return fail();
      const std::string p = std::to_string(ctx.slot);
      if (!exec(m, "REPLACE INTO _synod_checksums VALUES (" + p + ", '" + sum + "')", error) ||
          !exec(m,
                "DELETE FROM _synod_checksums WHERE position <= " + p + " - 100",
                error)) {
        return fail();
      }
      out.push_back(dump(json{{"position", ctx.slot}, {"checksum", sum}}));
      position = ctx.slot;
      continue;
    }
    json r = json::array();
    bool failed = false;
    std::int64_t last_id = 0;
    size_t count = 0;
    if (!check_command(cmds[i], &schema, &why, &count)) {
      if (!begin()) return fail();  // the position still advances
      r.push_back({{"error", why}});
      failed = true;
    } else if (schema) {
      // Alone, in its own steps (mysql_store.h): the commands before it are
      // committed first.
      if (!commit()) return fail();
      std::string digest;
      if (!schema_digest(m, &digest, error)) return fail();
      if (!exec(m, "UPDATE _synod_meta SET value = " + std::to_string(ctx.slot) +
                       ", text = '" + digest + "' WHERE name = 'ddl_pending'",
                error)) {
        return fail();
      }
      if (!exec(m, command_settings(ctx), error)) return fail();
      json statements;
      bool transaction = true;
      sqltext::parse_command(cmds[i], &statements, &transaction, &why);
      if (!run(m, statements, /*read_only=*/false, &r, &failed, &last_id, error)) return fail();
      position = ctx.slot;
      if (!begin()) return fail();
      wrote = true;
      if (!exec(m, "UPDATE _synod_meta SET value = 0, text = NULL WHERE name = 'ddl_pending'",
                error) ||
          !commit()) {
        return fail();
      }
      json result{{"results", std::move(r)}};
      if (failed) result["rolled_back"] = true;
      out.push_back(dump(result));
      committed_count = out.size();
      continue;
    } else {
      if (!begin()) return fail();
      json statements;
      bool transaction = true;
      sqltext::parse_command(cmds[i], &statements, &transaction, &why);
      std::string message;
      const Outcome o = run_sql(m, command_settings(ctx), nullptr, &message);
      if (o == Outcome::kNodeError) {
        *error = message;
        return fail();
      }
      if (o == Outcome::kSqlError) {  // e.g. a timestamp out of TIMESTAMP's range
        r.push_back({{"error", "cannot set the command's time and seed: " + message}});
        failed = true;
      } else {
        // One statement needs no savepoint: InnoDB rolls a failed statement
        // back by itself (a savepoint costs two round trips per command).
        const bool savepoint = count > 1;
        if (savepoint && !exec(m, "SAVEPOINT synod_command", error)) return fail();
        wrote = true;
        if (transaction) {
          if (!run(m, statements, /*read_only=*/false, &r, &failed, &last_id, error)) {
            return fail();
          }
        } else {
          for (const json& one : statements) {
            bool this_failed = false;
            if (savepoint && !exec(m, "SAVEPOINT synod_statement", error)) return fail();
            if (!run(m, json::array({one}), /*read_only=*/false, &r, &this_failed, &last_id,
                     error)) {
              return fail();
            }
            if (this_failed && savepoint &&
                !exec(m, "ROLLBACK TO SAVEPOINT synod_statement", error)) {
              return fail();
            }
          }
        }
        if (failed && savepoint && !exec(m, "ROLLBACK TO SAVEPOINT synod_command", error)) {
          return fail();
        }
        if (savepoint && !exec(m, "RELEASE SAVEPOINT synod_command", error)) return fail();
      }
    }
    json result{{"results", std::move(r)}};
    if (failed) result["rolled_back"] = true;
    out.push_back(dump(result));
    position = ctx.slot;
  }
  if (!commit()) return fail();
  committed_results_.clear();
  *results = std::move(out);
  return true;
}

bool MysqlStore::query(std::string_view request, std::string* result, std::string* error) {
  std::lock_guard<std::mutex> lock(reader_mu_);
  if (!reader_) {
    std::string why;
    if (!connect(&reader_, /*first=*/false, &why)) {
      reader_.reset();
      *error = "connection to " + where() + " lost: " + why + "; reconnecting";
      return false;
    }
  }
  MYSQL* m = reader_->m;
  auto lost_reader = [&] {
    *error = "connection to " + where() + " lost: " + *error + "; reconnecting";
    reader_.reset();
    return false;
  };
  json j = json::parse(request.begin(), request.end(), nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.size() == 1 && j.contains("checksum_at")) {
    const json& p = j["checksum_at"];
    if (!p.is_number_unsigned() && !p.is_number_integer()) {
      *result = dump(json{{"error", "checksum_at must be a position (an integer)"}});
      return true;
    }
    const std::int64_t pos = p.get<std::int64_t>();
    Result res;
    if (!exec(m, "SELECT checksum FROM _synod_checksums WHERE position = " + std::to_string(pos),
              error, &res)) {
      return lost_reader();
    }
    MYSQL_ROW row = mysql_fetch_row(res.get());
    if (row == nullptr) {
      const bool future = pos > 0 && static_cast<uint64_t>(pos) > last_applied();
      *result = dump(json{{"error", "no checksum at position " + std::to_string(pos) +
                                        (future ? ": not applied yet"
                                                : ": no checksum command there, or older than"
                                                  " the last 100")}});
      return true;
    }
    *result = dump(json{{"position", pos}, {"checksum", row[0]}});
    return true;
  }
  json r = json::array();
  json statements;
  bool transaction = true, failed = false;
  std::string why;
  std::int64_t unused = 0;
  if (!sqltext::parse_command(request, &statements, &transaction, &why)) {
    r.push_back({{"error", why}});
  } else {
    if (!exec(m, "START TRANSACTION READ ONLY", error)) return lost_reader();
    if (!run(m, statements, /*read_only=*/true, &r, &failed, &unused, error)) return lost_reader();
    if (!exec(m, "COMMIT", error)) return lost_reader();
  }
  *result = dump(json{{"results", std::move(r)}});
  return true;
}

bool MysqlStore::sync(std::string* error) {
  if (!ensure_writer(error)) return false;
  if (!flush_on_sync_) return true;  // innodb_flush_log_at_trx_commit=1: COMMIT was durable
  if (!exec(writer_->m, "FLUSH ENGINE LOGS", error)) return lost(error);
  return true;
}

bool MysqlStore::validate(std::string_view command, std::string* why) const {
  bool schema = false;
  return check_command(command, &schema, why);
}

}  // namespace synod::mysql
