#include "backends/postgres/pg_store.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>

#include "backends/sqlcommon/digest.h"
#include "backends/sqlcommon/sql_text.h"

namespace synod::pg {
namespace {

using nlohmann::json;
using sqltext::Dialect;
using sqltext::Token;
using sqltext::TokenKind;

constexpr const char* kEngine = "postgres";

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// ---------------------------------------------------------------- what is refused

// The first word of a statement that is refused, and why.
const char* refused_first_word(const std::string& w) {
  static const std::pair<const char*, const char*> kRefused[] = {
      {"begin", "transaction control is refused: every command is one transaction already"},
      {"start", "transaction control is refused: every command is one transaction already"},
      {"commit", "transaction control is refused: every command is one transaction already"},
      {"end", "transaction control is refused: every command is one transaction already"},
      {"rollback", "transaction control is refused: every command is one transaction already"},
      {"abort", "transaction control is refused: every command is one transaction already"},
      {"savepoint", "transaction control is refused: every command is one transaction already"},
      {"release", "transaction control is refused: every command is one transaction already"},
      {"prepare",
       "PREPARE is refused: prepared statements and transactions are the connection's state"},
      {"execute", "EXECUTE is refused: prepared statements are the connection's state"},
      {"deallocate", "DEALLOCATE is refused: prepared statements are the connection's state"},
      {"set", "SET is refused: the backend fixes the session's settings on every node"},
      {"reset", "RESET is refused: the backend fixes the session's settings on every node"},
      {"discard", "DISCARD is refused: the backend owns the connection's state"},
      {"listen", "LISTEN is refused: notifications are not replicated"},
      {"unlisten", "UNLISTEN is refused: notifications are not replicated"},
      {"notify", "NOTIFY is refused: notifications are not replicated"},
      {"declare", "DECLARE is refused: cursors are the connection's state"},
      {"fetch", "FETCH is refused: cursors are the connection's state"},
      {"move", "MOVE is refused: cursors are the connection's state"},
      {"close", "CLOSE is refused: cursors are the connection's state"},
      {"copy", "COPY is refused: it reads or writes outside the replicated database"},
      {"load", "LOAD is refused: it loads a library into one server"},
      {"do", "DO is refused: its code escapes the determinism checks"},
      {"call", "CALL is refused: procedures escape the determinism checks"},
      {"vacuum", "VACUUM is refused: it cannot run in a transaction and changes nothing replicated"},
      {"checkpoint", "CHECKPOINT is refused: it concerns one server"},
      {"cluster", "CLUSTER is refused: it concerns one server's physical order"},
      {"grant", "GRANT is refused: roles are each server's own"},
      {"revoke", "REVOKE is refused: roles are each server's own"},
      {"reassign", "REASSIGN OWNED is refused: roles are each server's own"},
      {"security", "SECURITY LABEL is refused: it concerns one server"},
      {"import", "IMPORT FOREIGN SCHEMA is refused: foreign data is not replicated"},
  };
  for (const auto& [word, why] : kRefused) {
    if (w == word) return why;
  }
  return nullptr;
}

// Object kinds that CREATE / ALTER / DROP may not touch, and why.
const char* refused_object_kind(const std::string& w) {
  static const std::pair<const char*, const char*> kRefused[] = {
      {"database", "databases are each node's own (one per node)"},
      {"role", "roles are each server's own"},
      {"user", "roles are each server's own"},
      {"group", "roles are each server's own"},
      {"extension", "extensions are each server's own installation"},
      {"schema", "every command works in schema public"},
      {"function", "function bodies escape the determinism checks"},
      {"procedure", "procedure bodies escape the determinism checks"},
      {"routine", "function bodies escape the determinism checks"},
      {"aggregate", "aggregates run functions that escape the determinism checks"},
      {"operator", "operators run functions that escape the determinism checks"},
      {"language", "languages are each server's own installation"},
      {"trusted", "languages are each server's own installation"},
      {"procedural", "languages are each server's own installation"},
      {"event", "event triggers run functions that escape the determinism checks"},
      {"tablespace", "tablespaces are each server's own directories"},
      {"server", "foreign data is not replicated"},
      {"foreign", "foreign data is not replicated"},
      {"subscription", "logical replication is each server's own"},
      {"publication", "logical replication is each server's own"},
      {"collation", "a collation from the server's locale can differ between nodes"},
      {"conversion", "conversions run functions that escape the determinism checks"},
      {"transform", "transforms run functions that escape the determinism checks"},
      {"access", "access methods are each server's own installation"},
      {"cast", "casts run functions that escape the determinism checks"},
      {"default", "default privileges concern roles, each server's own"},
      {"system", "ALTER SYSTEM changes one server's configuration"},
      {"large", "large objects are not replicated"},
      {"owned", "it would drop or give away Synod's own objects; roles are each server's own"},
      {"text", "text search dictionaries may read files of one server"},
  };
  for (const auto& [word, why] : kRefused) {
    if (w == word) return why;
  }
  return nullptr;
}

// Functions refused in writes (their value differs between nodes, or they
// run SQL text the checks cannot see).
const char* refused_function(const std::string& f) {
  static const std::pair<const char*, const char*> kExact[] = {
      {"clock_timestamp", "the server's clock"},
      {"timeofday", "the server's clock"},
      {"gen_random_uuid", "the server's randomness (use random() or a UUID from the client)"},
      {"version", "the server's version can differ between nodes"},
      {"current_database", "each node has its own database"},
      {"current_setting", "settings can differ between servers"},
      {"set_config", "the backend fixes the session's settings on every node"},
      {"inet_client_addr", "the connection's address differs between nodes"},
      {"inet_client_port", "the connection's address differs between nodes"},
      {"inet_server_addr", "the connection's address differs between nodes"},
      {"inet_server_port", "the connection's address differs between nodes"},
      {"ts_stat", "it runs SQL text that escapes the determinism checks"},
  };
  for (const auto& [name, why] : kExact) {
    if (f == name) return why;
  }
  static const std::pair<const char*, const char*> kPrefix[] = {
      {"uuid_generate", "the server's clock or randomness"},
      {"txid_", "transaction ids differ between nodes"},
      {"dblink", "another database is not replicated"},
      {"lo_", "large objects are not replicated"},
      {"query_to_xml", "it runs SQL text that escapes the determinism checks"},
      {"cursor_to_xml", "cursors are the connection's state"},
      {"table_to_xml", "it runs SQL text that escapes the determinism checks"},
      {"schema_to_xml", "it runs SQL text that escapes the determinism checks"},
      {"database_to_xml", "it runs SQL text that escapes the determinism checks"},
  };
  for (const auto& [prefix, why] : kPrefix) {
    if (starts_with(f, prefix)) return why;
  }
  return nullptr;
}

// Bare words refused in writes.
const char* refused_bare_word(const std::string& w) {
  static const std::set<std::string> kRoles = {"current_user", "session_user", "current_role",
                                               "user", "system_user"};
  static const std::set<std::string> kSystemColumns = {"xmin", "xmax", "cmin",
                                                       "cmax", "ctid", "tableoid"};
  static const std::set<std::string> kOidTypes = {
      "regclass", "regproc",   "regprocedure", "regoper",    "regoperator", "regtype",
      "regrole",  "regnamespace", "regconfig", "regdictionary", "regcollation"};
  if (kRoles.count(w) != 0) return "the role can differ between servers";
  if (w == "current_catalog") return "each node has its own database";
  if (kSystemColumns.count(w) != 0) return "system columns differ between nodes";
  if (kOidTypes.count(w) != 0) return "object ids differ between nodes";
  return nullptr;
}

// The text of a '...' or E'...' literal (escapes are not undone: only short
// keywords are compared against it).
std::string literal_text(std::string_view t) {
  if (!t.empty() && (t[0] == 'E' || t[0] == 'e')) t.remove_prefix(1);
  if (t.size() >= 2 && t.front() == '\'' && t.back() == '\'') return std::string(t.substr(1, t.size() - 2));
  return std::string();
}

// 'now', 'today', 'tomorrow', 'yesterday' as date/time input are the server's
// clock (at the transaction's start).
bool is_clock_word(const std::string& s) {
  const std::string w = lower(trim(s));
  return w == "now" || w == "today" || w == "tomorrow" || w == "yesterday";
}

// The number of arguments of the call whose '(' is tokens[open].
size_t count_args(const std::vector<Token>& tokens, size_t open) {
  int depth = 0;
  size_t commas = 0;
  bool any = false;
  for (size_t i = open; i < tokens.size(); ++i) {
    const Token& t = tokens[i];
    if (t.kind == TokenKind::kPunct && (t.text == "(" || t.text == "[")) {
      ++depth;
      if (depth == 1) continue;
    } else if (t.kind == TokenKind::kPunct && (t.text == ")" || t.text == "]")) {
      if (--depth == 0) break;
    } else if (depth == 1 && t.kind == TokenKind::kPunct && t.text == ",") {
      ++commas;
    }
    any = true;
  }
  return any ? commas + 1 : 0;
}

bool is_punct(const std::vector<Token>& tokens, size_t i, std::string_view text) {
  return i < tokens.size() && tokens[i].kind == TokenKind::kPunct && tokens[i].text == text;
}

std::string word_at(const std::vector<Token>& tokens, size_t i) {
  return i < tokens.size() && tokens[i].kind == TokenKind::kWord ? lower(tokens[i].text)
                                                                  : std::string();
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// Checks that hold for reads and writes: Synod's own tables.
bool check_common(const std::vector<Token>& tokens, std::string* why) {
  for (const Token& t : tokens) {
    std::string name;
    if (t.kind == TokenKind::kWord) {
      name = lower(t.text);
    } else if (t.kind == TokenKind::kQuoted && t.text.size() >= 2) {
      name = lower(t.text.substr(1, t.text.size() - 2));
    } else {
      continue;
    }
    if (starts_with(name, "_synod_")) {
      *why = "table " + name + " belongs to Synod and is not accessible";
      return false;
    }
  }
  return true;
}

// A read: one of the statements that only read, no session state.
bool check_read(std::string_view sql, std::string* why) {
  std::vector<Token> tokens;
  if (!sqltext::lex(sql, Dialect::kPostgres, &tokens, why)) return false;
  if (tokens.empty()) return true;
  if (!check_common(tokens, why)) return false;
  static const std::set<std::string> kReads = {"select", "with", "values", "table", "show",
                                               "explain"};
  const std::string first = word_at(tokens, 0);
  if (kReads.count(first) == 0 && !is_punct(tokens, 0, "(")) {
    *why = "not a read: writes go through the log (execute, not query)";
    return false;
  }
  for (const std::string& f : sqltext::words(tokens).called) {
    if (f == "set_config" || starts_with(f, "pg_advisory") || starts_with(f, "pg_sleep") ||
        starts_with(f, "pg_read") || starts_with(f, "pg_ls_") || f == "pg_stat_file" ||
        f == "pg_terminate_backend" || f == "pg_cancel_backend" || f == "pg_reload_conf" ||
        f == "pg_notify" || starts_with(f, "dblink") || starts_with(f, "lo_")) {
      *why = f + "() is refused in queries";
      return false;
    }
  }
  return true;
}

// The command's time as a timestamptz literal's text, UTC, ms.
std::string time_text(std::int64_t ms) {
  std::int64_t secs = ms / 1000;
  std::int64_t rem = ms % 1000;
  if (rem < 0) {
    rem += 1000;
    secs -= 1;
  }
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%03d+00", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(rem));
  return buf;
}

// setseed()'s argument in [-1, 1] from the command's 64-bit seed: mixed first
// (splitmix64's finaliser), so that seeds that differ only in their low bits
// still differ in the 53 bits a double keeps.
std::string seed_text(std::uint64_t seed) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  const double x = static_cast<double>(z >> 11) / 9007199254740992.0 * 2.0 - 1.0;
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", std::clamp(x, -1.0, 1.0));
  return buf;
}

// A parameter value as libpq text; false with *why for a value PostgreSQL
// cannot take as text.
bool param_text(const json& v, size_t i, bool* is_null, std::string* text, std::string* why) {
  *is_null = false;
  if (v.is_null()) {
    *is_null = true;
  } else if (v.is_boolean()) {
    *text = v.get<bool>() ? "true" : "false";
  } else if (v.is_number_unsigned()) {
    *text = std::to_string(v.get<std::uint64_t>());
  } else if (v.is_number_integer()) {
    *text = std::to_string(v.get<std::int64_t>());
  } else if (v.is_number_float()) {
    *text = v.dump();
  } else if (v.is_string()) {
    *text = v.get<std::string>();
    if (text->find('\0') != std::string::npos) {
      *why = "parameter " + std::to_string(i + 1) +
             " contains a NUL character, which PostgreSQL text cannot hold";
      return false;
    }
  } else {
    *why = "parameter " + std::to_string(i + 1) +
           " must be null, a boolean, a number or a string, not " + v.type_name();
    return false;
  }
  return true;
}

// ---------------------------------------------------------------- libpq helpers

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

bool ok(const Result& r) {
  if (!r) return false;
  const ExecStatusType s = PQresultStatus(r.get());
  return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

std::string error_text(PGconn* c, const PGresult* r) {
  const char* primary = r != nullptr ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  std::string s = primary != nullptr ? primary : PQerrorMessage(c);
  return trim(s);
}

// SQLSTATE classes that are the server's trouble, not the statement's: the
// same command would succeed later (or elsewhere), so it is not a result.
bool is_server_trouble(const PGresult* r) {
  const char* state = r != nullptr ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  if (state == nullptr || std::strlen(state) != 5) return true;
  const std::string_view cls(state, 2);
  return cls == "08" || cls == "53" || cls == "57" || cls == "58" || cls == "XX" ||
         cls == "40" || cls == "F0" || cls == "HV" || std::string_view(state) == "55P03";
}

void ignore_notice(void*, const char*) {}

// The value of one result cell as JSON, by its type.
json cell(const PGresult* r, int row, int col) {
  if (PQgetisnull(r, row, col)) return nullptr;
  const char* v = PQgetvalue(r, row, col);
  switch (PQftype(r, col)) {
    case 20:  // int8
    case 21:  // int2
    case 23:  // int4
    case 26:  // oid
      return static_cast<std::int64_t>(std::strtoll(v, nullptr, 10));
    case 700:  // float4
    case 701: {  // float8
      const double d = std::strtod(v, nullptr);
      if (!std::isfinite(d)) return std::string(v);  // NaN, Infinity: not JSON numbers
      return d;
    }
    case 16:  // bool
      return v[0] == 't';
    case 17: {  // bytea, hex output: \x0a1b...
      size_t n = 0;
      unsigned char* bytes = PQunescapeBytea(reinterpret_cast<const unsigned char*>(v), &n);
      if (bytes == nullptr) return std::string(v);
      std::string b = sqltext::base64(bytes, n);
      PQfreemem(bytes);
      return b;
    }
    default:  // numeric (exact, as text), dates, text, json, ...
      return std::string(v, static_cast<size_t>(PQgetlength(r, row, col)));
  }
}

const char* static_type_name(unsigned oid) {
  switch (oid) {
    case 16: return "boolean";
    case 17: return "bytea";
    case 18: return "\"char\"";
    case 19: return "name";
    case 20: return "bigint";
    case 21: return "smallint";
    case 23: return "integer";
    case 25: return "text";
    case 26: return "oid";
    case 114: return "json";
    case 142: return "xml";
    case 700: return "real";
    case 701: return "double precision";
    case 790: return "money";
    case 869: return "inet";
    case 1042: return "character";
    case 1043: return "character varying";
    case 1082: return "date";
    case 1083: return "time without time zone";
    case 1114: return "timestamp without time zone";
    case 1184: return "timestamp with time zone";
    case 1186: return "interval";
    case 1266: return "time with time zone";
    case 1700: return "numeric";
    case 2950: return "uuid";
    case 3802: return "jsonb";
    default: return nullptr;
  }
}

}  // namespace

// ---------------------------------------------------------------- connections

struct PgStore::Conn {
  PGconn* pg = nullptr;
  std::map<unsigned, std::string> type_names;  // looked up once per connection
  ~Conn() {
    if (pg != nullptr) PQfinish(pg);
  }
  bool alive() const { return pg != nullptr && PQstatus(pg) == CONNECTION_OK; }
};

std::string PgStore::where() const { return config_.host + ":" + config_.port; }

bool PgStore::connect(std::unique_ptr<Conn>* out, bool for_writes, std::string* error) {
  // Everything that changes what a statement computes is fixed here, the same
  // on every node, whatever the server's configuration.
  std::string options =
      "-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=postgres -c extra_float_digits=3 "
      "-c standard_conforming_strings=on -c search_path=public,pg_catalog -c bytea_output=hex "
      "-c statement_timeout=0 -c lock_timeout=0 -c idle_in_transaction_session_timeout=0 "
      "-c lc_monetary=C -c lc_numeric=C -c lc_time=C "
      "-c default_text_search_config=pg_catalog.simple -c xmloption=content "
      "-c transform_null_equals=off -c array_nulls=on -c check_function_bodies=on "
      "-c default_transaction_isolation=read\\ committed";
  if (for_writes) {
    // Parallel plans may emit rows in another order: INSERT ... SELECT without
    // ORDER BY would number them differently on different nodes.
    options +=
        " -c synchronous_commit=on -c max_parallel_workers_per_gather=0 "
        "-c default_transaction_read_only=off";
  } else {
    options += " -c default_transaction_read_only=on";
  }
  std::vector<const char*> keys = {"host",   "port",        "user",           "dbname",
                                   "options", "client_encoding", "application_name",
                                   "connect_timeout", "keepalives", "keepalives_idle",
                                   "keepalives_interval", "keepalives_count"};
  std::vector<const char*> values = {config_.host.c_str(),
                                     config_.port.c_str(),
                                     config_.user.c_str(),
                                     config_.database.c_str(),
                                     options.c_str(),
                                     "UTF8",
                                     for_writes ? "synod-apply" : "synod-query",
                                     "10",
                                     "1",
                                     "10",
                                     "5",
                                     "3"};
  if (!config_.password.empty()) {
    keys.push_back("password");
    values.push_back(config_.password.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  auto conn = std::make_unique<Conn>();
  conn->pg = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/0);
  if (conn->pg == nullptr || PQstatus(conn->pg) != CONNECTION_OK) {
    *error = "cannot connect to postgres at " + where() + " (database " + config_.database +
             ", user " + config_.user + "): " +
             (conn->pg != nullptr ? trim(PQerrorMessage(conn->pg)) : "out of memory");
    return false;
  }
  PQsetNoticeProcessor(conn->pg, ignore_notice, nullptr);
  // English messages where the role may set them (a superuser): results carry
  // error messages, which should read the same on every node.
  Result(PQexec(conn->pg, "SET lc_messages TO 'C'"));
  *out = std::move(conn);
  return true;
}

namespace {

// Runs internal SQL (possibly several statements); false with *error. *lost:
// the connection is gone.
bool exec(PGconn* c, const std::string& sql, Result* keep, bool* lost, std::string* error) {
  Result r(PQexec(c, sql.c_str()));
  if (ok(r)) {
    if (keep != nullptr) *keep = std::move(r);
    return true;
  }
  *lost = PQstatus(c) != CONNECTION_OK;
  *error = error_text(c, r.get());
  return false;
}

}  // namespace

std::unique_ptr<PgStore> PgStore::open(const Config& config, std::string* error) {
  if (config.database.empty()) {
    *error = "option database is required";
    return nullptr;
  }
  std::unique_ptr<PgStore> s(new PgStore(config));
  std::string why;
  if (!s->connect(&s->writer_, /*for_writes=*/true, &why)) {
    if (why.find("does not exist") == std::string::npos) {
      *error = why;
      return nullptr;
    }
    // Create it from the maintenance database (CREATE DATABASE cannot run in
    // a transaction). Collation "C": text sorts the same on every node.
    Config maintenance = config;
    maintenance.database = "postgres";
    PgStore m(maintenance);
    std::unique_ptr<Conn> admin;
    if (!m.connect(&admin, /*for_writes=*/true, error)) return nullptr;
    char* ident = PQescapeIdentifier(admin->pg, config.database.c_str(), config.database.size());
    if (ident == nullptr) {
      *error = "bad database name " + config.database;
      return nullptr;
    }
    const std::string create = std::string("CREATE DATABASE ") + ident +
                               " TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'";
    PQfreemem(ident);
    Result r(PQexec(admin->pg, create.c_str()));
    const char* state = r ? PQresultErrorField(r.get(), PG_DIAG_SQLSTATE) : nullptr;
    if (!ok(r) && !(state != nullptr && std::string_view(state) == "42P04")) {  // raced: exists
      *error = "cannot create database " + config.database + " on postgres at " + s->where() +
               ": " + error_text(admin->pg, r.get());
      return nullptr;
    }
    if (!s->connect(&s->writer_, /*for_writes=*/true, error)) return nullptr;
  }
  PGconn* c = s->writer_->pg;
  bool lost = false;
  Result r;
  const std::string prefix = "postgres at " + s->where() + ", database " + config.database + ": ";
  if (!exec(c, "BEGIN", nullptr, &lost, &why) ||
      !exec(c,
            "SELECT count(*) FILTER (WHERE c.relname = '_synod_meta'), count(*) "
            "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')",
            &r, &lost, &why)) {
    *error = prefix + why;
    return nullptr;
  }
  if (std::string_view(PQgetvalue(r.get(), 0, 0)) == "0" &&
      std::string_view(PQgetvalue(r.get(), 0, 1)) != "0") {
    *error = prefix + "the database has tables but is not a Synod postgres store (no _synod_meta)";
    return nullptr;
  }
  if (!exec(c,
            "CREATE TABLE IF NOT EXISTS public._synod_meta (key text PRIMARY KEY, "
            "value bigint NOT NULL);"
            "INSERT INTO public._synod_meta VALUES ('format', 1), ('applied', 0) "
            "ON CONFLICT (key) DO NOTHING;"
            "CREATE TABLE IF NOT EXISTS public._synod_checksums (position bigint PRIMARY KEY, "
            "checksum text NOT NULL);"
            "CREATE TABLE IF NOT EXISTS public._synod_sequences (name text PRIMARY KEY, "
            "last_value bigint);"
            // The command's time (synod.now, set per command); outside an
            // apply (queries) the server's.
            "CREATE OR REPLACE FUNCTION public.now() RETURNS timestamptz LANGUAGE sql STABLE "
            "PARALLEL SAFE AS $$ SELECT COALESCE(NULLIF(pg_catalog.current_setting('synod.now', "
            "true), '')::pg_catalog.timestamptz, pg_catalog.now()) $$;"
            "COMMIT",
            nullptr, &lost, &why)) {
    *error = prefix + why;
    return nullptr;
  }
  if (!s->read_applied(error)) return nullptr;
  return s;
}

PgStore::PgStore(Config config) : config_(std::move(config)) {}

PgStore::~PgStore() = default;

bool PgStore::read_applied(std::string* error) {
  bool lost = false;
  Result r;
  std::string why;
  if (!exec(writer_->pg,
            "SELECT (SELECT value FROM public._synod_meta WHERE key = 'format'), "
            "(SELECT value FROM public._synod_meta WHERE key = 'applied')",
            &r, &lost, &why)) {
    *error = "postgres at " + where() + ": cannot read _synod_meta: " + why;
    writer_.reset();
    return false;
  }
  if (std::string_view(PQgetvalue(r.get(), 0, 0)) != "1") {
    *error = "postgres at " + where() + ": unknown store format " + PQgetvalue(r.get(), 0, 0);
    writer_.reset();
    return false;
  }
  const std::uint64_t applied = std::strtoull(PQgetvalue(r.get(), 0, 1), nullptr, 10);
  const std::uint64_t known = last_applied_.load(std::memory_order_relaxed);
  if (applied < known) {
    // Commits this node saw succeed are gone: the server lost them (fsync off,
    // a restored backup). Applying on would skip the lost commands.
    *error = "postgres at " + where() + ", database " + config_.database +
             ": the applied position is " + std::to_string(applied) + ", behind " +
             std::to_string(known) +
             " which this node applied: the server lost committed transactions; restart the "
             "node so that it replays its log";
    writer_.reset();
    return false;
  }
  last_applied_.store(applied, std::memory_order_release);
  return true;
}

bool PgStore::ensure_writer(std::string* error) {
  if (writer_ && writer_->alive()) return true;
  writer_.reset();
  if (!connect(&writer_, /*for_writes=*/true, error)) return false;
  restore_sequences_ = true;
  return read_applied(error);
}

// ---------------------------------------------------------------- checks

bool PgStore::check_write(std::string_view sql, std::string* rewritten, std::string* why) {
  std::vector<Token> tokens;
  if (!sqltext::lex(sql, Dialect::kPostgres, &tokens, why)) return false;
  rewritten->assign(sql);
  if (tokens.empty()) return true;
  if (!check_common(tokens, why)) return false;
  const std::string first = word_at(tokens, 0);
  if (const char* r = refused_first_word(first)) {
    *why = r;
    return false;
  }
  if (first == "create" || first == "alter" || first == "drop" || first == "comment") {
    size_t i = 1;
    if (word_at(tokens, i) == "or" && word_at(tokens, i + 1) == "replace") i += 2;
    if (word_at(tokens, i) == "global" || word_at(tokens, i) == "local") ++i;
    const std::string kind = word_at(tokens, i);
    if (kind == "temp" || kind == "temporary") {
      *why = "TEMP tables are refused: they die with the connection";
      return false;
    }
    if (kind == "unlogged") {
      *why = "UNLOGGED tables are refused: a crash of one server empties them";
      return false;
    }
    if (first != "comment") {
      if (const char* r = refused_object_kind(kind)) {
        *why = upper(first) + " " + upper(kind) + " is refused: " + r;
        return false;
      }
    }
  }
  for (size_t i = 0; i < tokens.size(); ++i) {
    const Token& t = tokens[i];
    const std::string w = word_at(tokens, i);
    // SELECT ... INTO TEMP t, ALTER TABLE ... SET UNLOGGED, OWNER TO.
    const bool select_into = w == "into" && (first == "select" || first == "with");
    const bool alter_set = w == "set" && first == "alter";
    if ((select_into || alter_set) && (word_at(tokens, i + 1) == "temp" ||
                                       word_at(tokens, i + 1) == "temporary" ||
                                       word_at(tokens, i + 1) == "unlogged")) {
      *why = "TEMP and UNLOGGED tables are refused: they do not survive like the others";
      return false;
    }
    if (w == "tablespace") {
      *why = "TABLESPACE is refused: tablespaces are each server's own directories";
      return false;
    }
    if (first == "alter" && w == "owner" && word_at(tokens, i + 1) == "to") {
      *why = "OWNER TO is refused: roles are each server's own";
      return false;
    }
    std::string name;
    if (t.kind == TokenKind::kWord) {
      name = w;
    } else if (t.kind == TokenKind::kQuoted && t.text.size() >= 2) {
      name = lower(t.text.substr(1, t.text.size() - 2));
    } else if (t.kind == TokenKind::kString) {
      if (is_clock_word(literal_text(t.text))) {
        *why = "the date/time input " + std::string(t.text) +
               " is the server's clock: use now() or CURRENT_DATE (the command's time)";
        return false;
      }
      continue;
    } else {
      continue;
    }
    if (starts_with(name, "pg_")) {
      *why = name +
             " is refused in writes: PostgreSQL's catalogs and pg_* functions differ between "
             "nodes (queries may read them)";
      return false;
    }
    if (name == "information_schema") {
      *why = "information_schema is refused in writes: the catalogs differ between nodes";
      return false;
    }
    const bool called = is_punct(tokens, i + 1, "(");
    if (called) {
      if (const char* r = refused_function(name)) {
        *why = name + "() is refused: " + r;
        return false;
      }
      if (name == "age" && count_args(tokens, i + 1) == 1) {
        *why = "age() with one argument is refused: it counts from the server's date "
               "(use age(now(), x))";
        return false;
      }
    } else if (t.kind == TokenKind::kWord) {
      if (const char* r = refused_bare_word(name)) {
        *why = upper(name) + " is refused in writes: " + r;
        return false;
      }
    }
  }

  // The time keywords into now(), which is the command's time (public.now()).
  std::string out;
  size_t copied = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const Token& t = tokens[i];
    if (t.kind != TokenKind::kWord) continue;
    if (i > 0 && is_punct(tokens, i - 1, ".")) continue;  // qualified: a column
    const std::string w = lower(t.text);
    std::string replacement;
    const char* cast = nullptr;
    if (w == "current_timestamp") {
      cast = "timestamptz";
    } else if (w == "current_time") {
      cast = "timetz";
    } else if (w == "localtimestamp") {
      cast = "timestamp";
    } else if (w == "localtime") {
      cast = "time";
    } else if (w == "current_date") {
      cast = "date";
    } else if ((w == "transaction_timestamp" || w == "statement_timestamp") &&
               is_punct(tokens, i + 1, "(")) {
      out.append(sql.substr(copied, t.offset - copied));
      out.append("now");
      copied = t.offset + t.text.size();
      continue;
    } else {
      continue;
    }
    size_t end = t.offset + t.text.size();
    std::string precision;
    if (w != "current_date" && is_punct(tokens, i + 1, "(") && i + 3 < tokens.size() &&
        tokens[i + 2].kind == TokenKind::kNumber && is_punct(tokens, i + 3, ")")) {
      precision = "(" + std::string(tokens[i + 2].text) + ")";
      end = tokens[i + 3].offset + 1;
      i += 3;
    }
    replacement = "(now())::" + std::string(cast) + precision;
    out.append(sql.substr(copied, t.offset - copied));
    out.append(replacement);
    copied = end;
  }
  if (copied != 0) {
    out.append(sql.substr(copied));
    *rewritten = std::move(out);
  }
  return true;
}

bool PgStore::validate(std::string_view command, std::string* why) const {
  const json j = json::parse(command.begin(), command.end(), nullptr, false);
  if (!j.is_discarded() && sqltext::is_checksum_command(j)) return true;
  json statements;
  bool transaction = true;
  std::string ignored;
  // A malformed command is not refused: applying it gives an error result.
  if (!sqltext::parse_command(command, &statements, &transaction, &ignored)) return true;
  for (const json& entry : statements) {
    std::string sql;
    json params;
    if (!sqltext::split_entry(entry, &sql, &params, &ignored)) continue;
    std::vector<std::string> parts;
    if (!sqltext::split_statements(sql, Dialect::kPostgres, &parts, why)) return false;
    for (const std::string& part : parts) {
      std::string rewritten;
      if (!check_write(part, &rewritten, why)) return false;
    }
    for (const json& v : params) {
      if (v.is_string() && is_clock_word(v.get<std::string>())) {
        *why = "the parameter '" + v.get<std::string>() +
               "' would be the server's clock as date/time input: use now()";
        return false;
      }
    }
  }
  return true;
}

// ---------------------------------------------------------------- applying

namespace {

struct Outcome {
  bool failed = false;  // a statement failed: its error is the last result
  bool trouble = false; // the server's trouble: nothing may be applied
  bool lost = false;
  std::string error;
};

// Runs one statement entry of a write command on c; appends its result.
// last_id: the command's last INSERT ... RETURNING id.
void run_write_entry(PGconn* c, const json& entry, std::int64_t* last_id, json* results,
                     Outcome* o) {
  auto fail_result = [&](const std::string& message) {
    results->push_back({{"error", message}});
    o->failed = true;
  };
  std::string sql, why;
  json params;
  if (!sqltext::split_entry(entry, &sql, &params, &why)) return fail_result(why);
  std::vector<std::string> parts;
  if (!sqltext::split_statements(sql, Dialect::kPostgres, &parts, &why)) return fail_result(why);
  if (parts.size() > 1 && !params.empty()) {
    return fail_result("parameters go with one statement per entry");
  }
  std::int64_t rows = 0;
  for (const std::string& part : parts) {
    std::string rewritten, bound;
    std::vector<json> values;
    if (!PgStore::check_write(part, &rewritten, &why)) return fail_result(why);
    if (!sqltext::bind_placeholders(rewritten, Dialect::kPostgres, params, &bound, &values,
                                    &why)) {
      return fail_result(why);
    }
    std::vector<std::string> texts(values.size());
    std::vector<const char*> ptrs(values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      bool is_null = false;
      if (!param_text(values[i], i, &is_null, &texts[i], &why)) return fail_result(why);
      if (values[i].is_string() && is_clock_word(texts[i])) {
        return fail_result("the parameter '" + texts[i] +
                           "' would be the server's clock as date/time input: use now()");
      }
      ptrs[i] = is_null ? nullptr : texts[i].c_str();
    }
    Result r(PQexecParams(c, bound.c_str(), static_cast<int>(ptrs.size()), nullptr, ptrs.data(),
                          nullptr, nullptr, 0));
    if (!ok(r)) {
      if (PQstatus(c) != CONNECTION_OK) {
        o->lost = o->trouble = true;
        o->error = error_text(c, r.get());
        return;
      }
      if (is_server_trouble(r.get())) {
        o->trouble = true;
        o->error = error_text(c, r.get());
        return;
      }
      return fail_result(error_text(c, r.get()));
    }
    const std::string_view tag = PQcmdStatus(r.get());
    const bool insert = starts_with(tag, "INSERT");
    if (insert || starts_with(tag, "UPDATE") || starts_with(tag, "DELETE") ||
        starts_with(tag, "MERGE")) {
      rows += std::strtoll(PQcmdTuples(r.get()), nullptr, 10);
    }
    // PostgreSQL has no rowid: INSERT ... RETURNING of one integer column
    // gives the id (its last row's value).
    if (insert && PQresultStatus(r.get()) == PGRES_TUPLES_OK && PQnfields(r.get()) == 1 &&
        PQntuples(r.get()) > 0) {
      const Oid type = PQftype(r.get(), 0);
      const int last = PQntuples(r.get()) - 1;
      if ((type == 20 || type == 21 || type == 23) && !PQgetisnull(r.get(), last, 0)) {
        *last_id = std::strtoll(PQgetvalue(r.get(), last, 0), nullptr, 10);
      }
    }
  }
  results->push_back({{"last_insert_id", *last_id}, {"rows_affected", rows}});
}

}  // namespace

bool PgStore::apply(const synod_apply_context& ctx, std::string_view command,
                    std::string* result, std::string* error) {
  std::vector<std::string> results;
  if (!apply_batch(1, &ctx, &command, &results, error)) return false;
  *result = std::move(results[0]);
  return true;
}

bool PgStore::apply_batch(size_t n, const synod_apply_context* ctxs, const std::string_view* cmds,
                          std::vector<std::string>* results, std::string* error) {
  if (!ensure_writer(error)) return false;
  std::vector<std::string> out;
  std::uint64_t position = 0;
  if (!run_batch(n, ctxs, cmds, &out, &position, error)) {
    // Sequences may have moved in the dead transaction.
    restore_sequences_ = true;
    if (writer_ && writer_->alive()) {
      Result(PQexec(writer_->pg, "ROLLBACK"));
    } else {
      writer_.reset();
    }
    return false;
  }
  restore_sequences_ = false;
  last_applied_.store(position, std::memory_order_release);
  *results = std::move(out);
  return true;
}

bool PgStore::run_batch(size_t n, const synod_apply_context* ctxs, const std::string_view* cmds,
                        std::vector<std::string>* out, std::uint64_t* position,
                        std::string* error) {
  PGconn* c = writer_->pg;
  bool lost = false;
  std::string why;
  auto fail = [&](const std::string& what) {
    if (lost || PQstatus(c) != CONNECTION_OK) {
      *error = "connection to postgres at " + where() + " lost: " + what + "; reconnecting";
    } else {
      *error = "postgres at " + where() + ": " + what + "; not applied";
    }
    return false;
  };
  std::string begin = "BEGIN";
  if (restore_sequences_) {
    // Every sequence back to its state at the last commit (a crash of the
    // server or a dead transaction may have moved it ahead).
    begin +=
        ";SELECT pg_catalog.setval(pg_catalog.format('public.%I', p.sequencename)::regclass, "
        "COALESCE(s.last_value, p.start_value), s.last_value IS NOT NULL) "
        "FROM pg_catalog.pg_sequences p LEFT JOIN public._synod_sequences s "
        "ON s.name = p.sequencename WHERE p.schemaname = 'public'";
  }
  if (!exec(c, begin, nullptr, &lost, &why)) return fail(why);
  const std::uint64_t last = last_applied_.load(std::memory_order_relaxed);
  *position = last;
  out->clear();
  out->reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const synod_apply_context& ctx = ctxs[i];
    if (ctx.slot <= *position) {
      out->push_back(dump(json{{"error", "position " + std::to_string(ctx.slot) +
                                             " was already applied (last applied: " +
                                             std::to_string(*position) + "); not applied again"}}));
      continue;
    }
    // The command's own time and seed; currval()/lastval() and sequence
    // caches start empty in every command, as on a fresh connection.
    const std::string prologue =
        "SAVEPOINT synod_command;SELECT pg_catalog.setseed(" + seed_text(ctx.random_seed) +
        ");SELECT pg_catalog.set_config('synod.now', '" + time_text(ctx.timestamp_ms) +
        "', true);DISCARD SEQUENCES";
    if (!exec(c, prologue, nullptr, &lost, &why)) return fail(why);
    json r = json::array();
    bool failed = false;
    const json whole = json::parse(cmds[i].begin(), cmds[i].end(), nullptr, false);
    if (!whole.is_discarded() && sqltext::is_checksum_command(whole)) {
      std::string hex;
      if (!checksum(ctx.slot, &hex, &why)) {
        lost = PQstatus(c) != CONNECTION_OK;
        return fail(why);
      }
      if (!exec(c, "RELEASE synod_command", nullptr, &lost, &why)) return fail(why);
      out->push_back(dump(json{{"position", ctx.slot}, {"checksum", hex}}));
      *position = ctx.slot;
      continue;
    }
    json statements;
    bool transaction = true;
    std::int64_t last_id = 0;
    Outcome o;
    if (!sqltext::parse_command(cmds[i], &statements, &transaction, &why)) {
      r.push_back({{"error", why}});
      failed = true;
    } else if (transaction) {
      for (const json& entry : statements) {
        run_write_entry(c, entry, &last_id, &r, &o);
        if (o.trouble) {
          lost = o.lost;
          return fail(o.error);
        }
        if (o.failed) break;
      }
      failed = o.failed;
    } else {
      // Each statement on its own: a failure rolls back that statement only.
      for (const json& entry : statements) {
        if (!exec(c, "SAVEPOINT synod_statement", nullptr, &lost, &why)) return fail(why);
        Outcome one;
        run_write_entry(c, entry, &last_id, &r, &one);
        if (one.trouble) {
          lost = one.lost;
          return fail(one.error);
        }
        const std::string end = one.failed
                                    ? "ROLLBACK TO SAVEPOINT synod_statement;RELEASE synod_statement"
                                    : "RELEASE synod_statement";
        if (!exec(c, end, nullptr, &lost, &why)) return fail(why);
      }
    }
    const std::string end =
        failed ? "ROLLBACK TO SAVEPOINT synod_command;RELEASE synod_command" : "RELEASE synod_command";
    if (!exec(c, end, nullptr, &lost, &why)) return fail(why);
    json result{{"results", std::move(r)}};
    if (failed) result["rolled_back"] = true;
    out->push_back(dump(result));
    *position = ctx.slot;
  }
  std::string commit;
  if (*position != last) {
    commit = "UPDATE public._synod_meta SET value = " + std::to_string(*position) +
             " WHERE key = 'applied';"
             // Every sequence's state as of this commit (see restore above).
             "INSERT INTO public._synod_sequences AS s (name, last_value) "
             "SELECT sequencename, last_value FROM pg_catalog.pg_sequences "
             "WHERE schemaname = 'public' ON CONFLICT (name) DO UPDATE "
             "SET last_value = EXCLUDED.last_value "
             "WHERE s.last_value IS DISTINCT FROM EXCLUDED.last_value;"
             "DELETE FROM public._synod_sequences WHERE name NOT IN (SELECT sequencename "
             "FROM pg_catalog.pg_sequences WHERE schemaname = 'public');";
  }
  commit += "COMMIT";
  if (!exec(c, commit, nullptr, &lost, &why)) return fail(why);
  return true;
}

// ---------------------------------------------------------------- checksum

bool PgStore::checksum(std::uint64_t position, std::string* hex, std::string* error) {
  PGconn* c = writer_->pg;
  bool lost = false;
  Result cols;
  if (!exec(c,
            "SELECT c.relname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) "
            "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
            "AND NOT a.attisdropped "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') "
            "AND c.relname NOT LIKE '\\_synod\\_%' "
            "ORDER BY c.relname COLLATE \"C\", a.attnum",
            &cols, &lost, error)) {
    return false;
  }
  sqltext::Digest d;
  std::vector<std::string> tables;
  for (int i = 0; i < PQntuples(cols.get()); ++i) {
    const std::string table = PQgetvalue(cols.get(), i, 0);
    if (tables.empty() || tables.back() != table) {
      tables.push_back(table);
      d.field('T', table);
    }
    if (!PQgetisnull(cols.get(), i, 1)) {
      d.field('c', PQgetvalue(cols.get(), i, 1));
      d.field('y', PQgetvalue(cols.get(), i, 2));
    }
  }
  // Rows as the row's text (stable with the fixed DateStyle and float digits),
  // in the byte order of that text: a total order for any column types.
  for (const std::string& table : tables) {
    char* ident = PQescapeIdentifier(c, table.c_str(), table.size());
    if (ident == nullptr) {
      *error = "cannot quote table name " + table;
      return false;
    }
    const std::string sql = std::string("SELECT t::text FROM public.") + ident +
                            " AS t ORDER BY t::text COLLATE \"C\"";
    PQfreemem(ident);
    d.field('T', table);
    if (PQsendQuery(c, sql.c_str()) != 1 || PQsetSingleRowMode(c) != 1) {
      *error = trim(PQerrorMessage(c));
      return false;
    }
    bool good = true;
    std::string why;
    while (PGresult* raw = PQgetResult(c)) {
      Result r(raw);
      const ExecStatusType s = PQresultStatus(raw);
      if (s == PGRES_SINGLE_TUPLE) {
        d.field('r', std::string_view(PQgetvalue(raw, 0, 0),
                                      static_cast<size_t>(PQgetlength(raw, 0, 0))));
      } else if (s != PGRES_TUPLES_OK) {
        good = false;
        why = error_text(c, raw);
      }
    }
    if (!good) {
      *error = "checksum of table " + table + ": " + why;
      return false;
    }
  }
  Result seqs;
  if (!exec(c,
            "SELECT sequencename, last_value FROM pg_catalog.pg_sequences "
            "WHERE schemaname = 'public' ORDER BY sequencename COLLATE \"C\"",
            &seqs, &lost, error)) {
    return false;
  }
  for (int i = 0; i < PQntuples(seqs.get()); ++i) {
    d.field('S', PQgetvalue(seqs.get(), i, 0));
    if (PQgetisnull(seqs.get(), i, 1)) {
      d.field('n', "");
    } else {
      d.field('i', PQgetvalue(seqs.get(), i, 1));
    }
  }
  *hex = d.hex();
  const std::string p = std::to_string(position);
  return exec(c,
              "INSERT INTO public._synod_checksums VALUES (" + p + ", '" + *hex +
                  "') ON CONFLICT (position) DO UPDATE SET checksum = EXCLUDED.checksum;"
                  "DELETE FROM public._synod_checksums WHERE position NOT IN (SELECT position "
                  "FROM public._synod_checksums ORDER BY position DESC LIMIT 100)",
              nullptr, &lost, error);
}

// ---------------------------------------------------------------- queries

bool PgStore::query(std::string_view request, std::string* result, std::string* error) {
  std::lock_guard<std::mutex> lock(read_mu_);
  if (!reader_ || !reader_->alive()) {
    reader_.reset();
    if (!connect(&reader_, /*for_writes=*/false, error)) return false;
  }
  PGconn* c = reader_->pg;
  auto lost_error = [&](const std::string& what) {
    *error = "connection to postgres at " + where() + " lost: " + what + "; reconnecting";
    reader_.reset();
    return false;
  };
  auto trouble = [&](const std::string& what) {
    if (PQstatus(c) != CONNECTION_OK) return lost_error(what);
    *error = "postgres at " + where() + ": " + what;
    Result(PQexec(c, "ROLLBACK"));
    return false;
  };

  const json whole = json::parse(request.begin(), request.end(), nullptr, false);
  if (!whole.is_discarded() && whole.is_object() && whole.size() == 1 &&
      whole.contains("checksum_at")) {
    const json& p = whole["checksum_at"];
    if (!p.is_number_unsigned() && !(p.is_number_integer() && p.get<std::int64_t>() >= 0)) {
      *result = dump(json{{"error", "checksum_at must be a position (an integer >= 0)"}});
      return true;
    }
    const std::string pos = std::to_string(p.get<std::uint64_t>());
    const char* values[] = {pos.c_str()};
    Result r(PQexecParams(c, "SELECT checksum FROM public._synod_checksums WHERE position = $1", 1,
                          nullptr, values, nullptr, nullptr, 0));
    if (!ok(r)) return trouble(error_text(c, r.get()));
    if (PQntuples(r.get()) == 1) {
      *result = dump(json{{"position", p}, {"checksum", PQgetvalue(r.get(), 0, 0)}});
    } else if (p.get<std::uint64_t>() > last_applied()) {
      *result = dump(json{{"error", "position " + pos + " is not applied yet (last applied: " +
                                        std::to_string(last_applied()) + ")"}});
    } else {
      *result = dump(json{{"error", "no checksum at position " + pos +
                                        " (a checksum command there? only the last 100 are kept)"}});
    }
    return true;
  }

  json r = json::array();
  json statements;
  bool transaction = true;
  std::string why;
  if (!sqltext::parse_command(request, &statements, &transaction, &why)) {
    r.push_back({{"error", why}});
    *result = dump(json{{"results", std::move(r)}});
    return true;
  }
  Result begin(PQexec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
  if (!ok(begin)) return trouble(error_text(c, begin.get()));
  bool failed = false;
  for (const json& entry : statements) {
    auto fail_result = [&](const std::string& message) {
      r.push_back({{"error", message}});
      failed = true;
    };
    std::string sql;
    json params;
    std::vector<std::string> parts;
    if (!sqltext::split_entry(entry, &sql, &params, &why) ||
        !sqltext::split_statements(sql, Dialect::kPostgres, &parts, &why)) {
      fail_result(why);
      break;
    }
    if (parts.size() > 1 && !params.empty()) {
      fail_result("parameters go with one statement per entry");
      break;
    }
    json out{{"columns", json::array()}, {"types", json::array()}, {"values", json::array()}};
    for (const std::string& part : parts) {
      std::string bound;
      std::vector<json> values;
      if (!check_read(part, &why) ||
          !sqltext::bind_placeholders(part, Dialect::kPostgres, params, &bound, &values, &why)) {
        fail_result(why);
        break;
      }
      std::vector<std::string> texts(values.size());
      std::vector<const char*> ptrs(values.size());
      bool bad = false;
      for (size_t i = 0; i < values.size() && !bad; ++i) {
        bool is_null = false;
        bad = !param_text(values[i], i, &is_null, &texts[i], &why);
        ptrs[i] = is_null ? nullptr : texts[i].c_str();
      }
      if (bad) {
        fail_result(why);
        break;
      }
      Result q(PQexecParams(c, bound.c_str(), static_cast<int>(ptrs.size()), nullptr, ptrs.data(),
                            nullptr, nullptr, 0));
      if (!ok(q)) {
        if (PQstatus(c) != CONNECTION_OK) return lost_error(error_text(c, q.get()));
        if (is_server_trouble(q.get())) return trouble(error_text(c, q.get()));
        fail_result(error_text(c, q.get()));
        break;
      }
      const int nf = PQnfields(q.get());
      if (out["columns"].empty()) {
        for (int col = 0; col < nf; ++col) {
          out["columns"].push_back(PQfname(q.get(), col));
          const unsigned oid = PQftype(q.get(), col);
          if (const char* name = static_type_name(oid)) {
            out["types"].push_back(name);
            continue;
          }
          auto it = reader_->type_names.find(oid);
          if (it == reader_->type_names.end()) {
            const std::string o = std::to_string(oid);
            const char* v[] = {o.c_str()};
            Result t(PQexecParams(c, "SELECT pg_catalog.format_type($1, NULL)", 1, nullptr, v,
                                  nullptr, nullptr, 0));
            if (!ok(t)) return trouble(error_text(c, t.get()));
            it = reader_->type_names.emplace(oid, PQgetvalue(t.get(), 0, 0)).first;
          }
          out["types"].push_back(it->second);
        }
      }
      for (int row = 0; row < PQntuples(q.get()); ++row) {
        json values_row = json::array();
        for (int col = 0; col < nf; ++col) values_row.push_back(cell(q.get(), row, col));
        out["values"].push_back(std::move(values_row));
      }
    }
    if (failed) break;
    r.push_back(std::move(out));
  }
  Result end(PQexec(c, failed ? "ROLLBACK" : "COMMIT"));
  if (!ok(end)) return trouble(error_text(c, end.get()));
  *result = dump(json{{"results", std::move(r)}});
  return true;
}

bool PgStore::sync(std::string*) {
  // Every apply commits with synchronous_commit = on: durable already.
  return true;
}

}  // namespace synod::pg
