#include "backends/mysql/mysql_rules.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <vector>

#include "backends/sqlcommon/sql_text.h"

namespace synod::mysql {
namespace {

using sqltext::Token;
using sqltext::TokenKind;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool is_name(const Token& t) { return t.kind == TokenKind::kWord || t.kind == TokenKind::kQuoted; }

// A name token without its quotes, lowercased.
std::string name_of(const Token& t) {
  if (t.kind == TokenKind::kQuoted && t.text.size() >= 2) {
    return lower(t.text.substr(1, t.text.size() - 2));
  }
  return lower(t.text);
}

bool is_punct(const Token& t, std::string_view p) {
  return t.kind == TokenKind::kPunct && t.text == p;
}

// Functions whose value differs between nodes, or whose effect outlives the
// command, or reaches outside the database: name -> why.
const std::vector<std::pair<std::string_view, std::string_view>>& denied_functions() {
  static const std::vector<std::pair<std::string_view, std::string_view>> k = {
      {"uuid", "a fresh UUID on every node"},
      {"uuid_short", "a per-server counter"},
      {"sys_guid", "a fresh GUID on every node"},
      {"sysdate", "the server's clock (SET TIMESTAMP does not apply to it; use NOW())"},
      {"connection_id", "a per-connection number"},
      {"database", "each node has its own database name"},
      {"schema", "each node has its own database name"},
      {"version", "nodes may run different server versions"},
      {"user", "the connection's user and host"},
      {"current_user", "the connection's user and host"},
      {"session_user", "the connection's user and host"},
      {"system_user", "the connection's user and host"},
      {"current_role", "the connection's role"},
      {"sleep", "it waits on the node's clock"},
      {"benchmark", "it burns the node's time"},
      {"get_lock", "a lock that outlives the command"},
      {"release_lock", "locks that outlive the command"},
      {"release_all_locks", "locks that outlive the command"},
      {"is_free_lock", "locks held by other connections"},
      {"is_used_lock", "locks held by other connections"},
      {"load_file", "it reads the server's files"},
      {"master_pos_wait", "replication state of the node"},
      {"source_pos_wait", "replication state of the node"},
      {"master_gtid_wait", "replication state of the node"},
      {"binlog_gtid_pos", "replication state of the node"},
      {"found_rows", "it depends on the connection's previous SELECT"},
      {"random_bytes", "random bytes from the server's generator (use RAND())"},
      {"encrypt", "a random salt"},
      {"des_encrypt", "a key file on the server"},
      {"des_decrypt", "a key file on the server"},
      {"nextval", "sequences are not transactional"},
      {"lastval", "sequences are not transactional"},
      {"setval", "sequences are not transactional"},
  };
  return k;
}

// Words that put a table name next (for the db.table check), and words
// before a name followed by '(' that make it a table, not a function call.
const std::set<std::string, std::less<>> kTableWords = {
    "from", "join", "into", "update", "table", "references", "straight_join", "using", "to"};
const std::set<std::string, std::less<>> kNotACall = {
    "into", "table", "exists", "update", "from", "join", "references", "index", "key",
    "constraint", "view", "with", "unique", "fulltext", "spatial", "on", "to", "like"};
// Words that end a FROM list (after them a ',' no longer separates tables).
const std::set<std::string, std::less<>> kListEnd = {
    "where", "on", "set", "group", "order", "limit", "having", "values", "value", "select",
    "union", "window", "for", "lock", "into", "returning", "partition", "except", "intersect"};
const std::set<std::string, std::less<>> kSystemSchemas = {"information_schema", "mysql",
                                                           "performance_schema", "sys"};

bool refuse(std::string* why, std::string message) {
  *why = std::move(message);
  return false;
}

bool lex(std::string_view sql, std::vector<Token>* tokens, std::string* why) {
  return sqltext::lex(sql, sqltext::Dialect::kMySql, tokens, why);
}

// Checks shared by reads and writes. `write`: the stricter write rules.
bool check_tokens(const std::vector<Token>& t, bool write, bool create, std::string* why) {
  const auto& denied = denied_functions();
  bool expect_table = false;
  bool in_list = false;
  int depth = 0;
  int list_depth = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    const Token& tok = t[i];
    if (tok.kind == TokenKind::kPositional || tok.kind == TokenKind::kNamed) {
      // Parameters are bound before the statement runs; fine.
      expect_table = false;
      continue;
    }
    if (tok.kind == TokenKind::kPunct) {
      if (tok.text == "@") {
        const bool system = i + 1 < t.size() && is_punct(t[i + 1], "@");
        if (write || !system) {
          return refuse(why, std::string(system ? "system variables (@@name)" : "user variables (@name)") +
                                 " are refused: they live in the connection, outside the log"
                                 " (named parameters are written :name)");
        }
        ++i;  // @@name in a read
        continue;
      }
      if (tok.text == "(") ++depth;
      if (tok.text == ")") {
        --depth;
        if (in_list && depth < list_depth) in_list = false;
      }
      if (tok.text == "," && in_list && depth == list_depth) {
        expect_table = true;
        continue;
      }
      expect_table = false;
      continue;
    }
    if (!is_name(tok)) {
      expect_table = false;
      continue;
    }
    const std::string name = name_of(tok);
    if (name.rfind("_synod_", 0) == 0) {
      return refuse(why, "table " + name + " belongs to Synod and is not accessible");
    }
    const bool qualified = i + 2 < t.size() && is_punct(t[i + 1], ".") && is_name(t[i + 2]);
    if (qualified) {
      const bool three = i + 4 < t.size() && is_punct(t[i + 3], ".") && is_name(t[i + 4]);
      if (kSystemSchemas.count(name) != 0 || expect_table || three) {
        return refuse(why, "'" + name + "." + name_of(t[i + 2]) +
                               "' names another database: a command reaches only the node's own"
                               " database (each node has its own)");
      }
    }
    if (tok.kind == TokenKind::kWord && (name == "outfile" || name == "dumpfile")) {
      return refuse(why, "INTO " + upper(name) + " is refused: it writes a file on the server");
    }
    const bool call = i + 1 < t.size() && is_punct(t[i + 1], "(") &&
                      !(i > 0 && t[i - 1].kind == TokenKind::kWord &&
                        kNotACall.count(lower(t[i - 1].text)) != 0) &&
                      !expect_table;
    if (expect_table) {
      expect_table = false;  // this was the table; an alias may follow
      if (!in_list) {
        in_list = true;
        list_depth = depth;
      }
      if (qualified) i += 2;
      continue;
    }
    if (call && write) {
      for (const auto& [fn, reason] : denied) {
        if (name == fn) return refuse(why, upper(fn) + "() is refused: " + std::string(reason));
      }
      if (name.rfind("wsrep_", 0) == 0) {
        return refuse(why, upper(name) + "() is refused: cluster state of the node");
      }
    }
    if (tok.kind != TokenKind::kWord) continue;
    if (name == "current_user" || name == "current_role") {
      return refuse(why, upper(name) + " is refused: the connection's user and host");
    }
    if (kListEnd.count(name) != 0) in_list = false;
    if (kTableWords.count(name) != 0 && (name != "to" || write)) expect_table = true;
    if (create && name == "like") expect_table = true;
    if (!write && (name == "update" || name == "share")) {
      return refuse(why, "locking reads (FOR UPDATE, LOCK IN SHARE MODE) are refused in queries");
    }
  }
  return true;
}

// CREATE [OR REPLACE] [UNIQUE|FULLTEXT|SPATIAL] [ALGORITHM = x] [SQL SECURITY x]
// (TABLE|INDEX|VIEW); ALTER [ONLINE] [IGNORE] TABLE, ALTER [ALGORITHM = x]
// [SQL SECURITY x] VIEW; DROP (TABLE|INDEX|VIEW); RENAME TABLE; TRUNCATE.
// Returns the object word ("table", "index", "view") or "" with *why.
std::string schema_object(const std::vector<Token>& t, std::string* why) {
  const std::string verb = lower(t[0].text);
  size_t i = 1;
  auto word = [&](size_t k) { return k < t.size() && t[k].kind == TokenKind::kWord ? lower(t[k].text) : std::string(); };
  if (verb == "truncate") return "table";
  while (i < t.size()) {
    const std::string w = word(i);
    if (w == "or" && word(i + 1) == "replace") {
      i += 2;
    } else if (w == "unique" || w == "fulltext" || w == "spatial" || w == "online" ||
               w == "ignore") {
      ++i;
    } else if (w == "algorithm") {
      i += (i + 1 < t.size() && is_punct(t[i + 1], "=")) ? 3 : 2;
    } else if (w == "sql" && word(i + 1) == "security") {
      i += 3;
    } else if (w == "temporary") {
      *why = upper(verb) + " TEMPORARY TABLE is refused: a temporary table lives in the connection,"
                           " outside the log";
      return "";
    } else {
      break;
    }
  }
  const std::string object = word(i);
  if (object == "table" || object == "index" || object == "view") {
    if (verb == "rename" && object != "table") {
      *why = "RENAME " + upper(object) + " is refused";
      return "";
    }
    return object;
  }
  *why = upper(verb) + " " + (object.empty() ? std::string("...") : upper(object)) +
         " is refused: only TABLE, INDEX and VIEW are replicated";
  return "";
}

bool check_engine(const std::vector<Token>& t, std::string* why) {
  for (size_t i = 0; i + 1 < t.size(); ++i) {
    if (t[i].kind != TokenKind::kWord) continue;
    const std::string w = lower(t[i].text);
    if (w == "engine") {
      size_t k = i + 1;
      if (is_punct(t[k], "=")) ++k;
      if (k < t.size() && is_name(t[k]) && name_of(t[k]) != "innodb") {
        return refuse(why, "ENGINE=" + std::string(t[k].text) +
                               " is refused: only InnoDB tables are transactional (the applied"
                               " position is written in the same transaction as the data)");
      }
    }
    if (w == "directory" || w == "tablespace") {
      return refuse(why, upper(w) + " options are refused: they name the node's files");
    }
  }
  return true;
}

}  // namespace

bool check_write_statement(std::string_view sql, StatementKind* kind, std::string* why) {
  std::vector<Token> t;
  if (!lex(sql, &t, why)) return false;
  *kind = StatementKind::kData;
  if (t.empty()) return true;
  if (t[0].kind != TokenKind::kWord) {
    return refuse(why, "a statement starts with a keyword, not '" + std::string(t[0].text) + "'");
  }
  const std::string verb = lower(t[0].text);
  bool create = false;
  if (verb == "select" || verb == "insert" || verb == "replace" || verb == "update" ||
      verb == "delete" || verb == "with") {
    // LIMIT without ORDER BY picks rows in the order of the plan, which may
    // differ between nodes (InnoDB samples its statistics at random).
    if (verb != "select") {
      bool limit = false, order = false;
      for (const Token& tok : t) {
        if (tok.kind != TokenKind::kWord) continue;
        const std::string w = lower(tok.text);
        limit = limit || w == "limit";
        order = order || w == "order";
      }
      if (limit && !order) {
        return refuse(why, "LIMIT without ORDER BY in a write is refused: which rows it picks can"
                           " differ between nodes");
      }
    }
  } else if (verb == "create" || verb == "alter" || verb == "drop" || verb == "rename" ||
             verb == "truncate") {
    const std::string object = schema_object(t, why);
    if (object.empty()) return false;
    if (!check_engine(t, why)) return false;
    if (verb == "drop" && object == "table") {
      for (const Token& tok : t) {
        if (is_punct(tok, ",")) {
          return refuse(why, "DROP TABLE with several tables is refused: it is not atomic in"
                             " MariaDB; drop one table per command");
        }
      }
    }
    create = verb == "create";
    *kind = StatementKind::kSchema;
  } else if (verb == "begin" || verb == "start" || verb == "commit" || verb == "rollback" ||
             verb == "savepoint" || verb == "release" || verb == "xa" || verb == "lock" ||
             verb == "unlock") {
    return refuse(why, upper(verb) +
                           " is refused: transaction control belongs to the backend (every command"
                           " is one transaction already)");
  } else if (verb == "set") {
    return refuse(why, "SET is refused: session settings outlive a command (the backend sets the"
                       " time, the random seed, the time zone and sql_mode itself)");
  } else if (verb == "use") {
    return refuse(why, "USE is refused: each node works in its own database");
  } else if (verb == "load") {
    return refuse(why, "LOAD DATA/XML/INDEX is refused: it reads the server's or client's files");
  } else {
    return refuse(why, upper(verb) +
                           " is refused in a command (allowed: SELECT, INSERT, REPLACE, UPDATE,"
                           " DELETE, WITH, CREATE/ALTER/DROP TABLE|INDEX|VIEW, RENAME TABLE,"
                           " TRUNCATE)");
  }
  return check_tokens(t, /*write=*/true, create, why);
}

bool check_read_statement(std::string_view sql, std::string* why) {
  std::vector<Token> t;
  if (!lex(sql, &t, why)) return false;
  if (t.empty()) return true;
  const std::string verb = t[0].kind == TokenKind::kWord ? lower(t[0].text) : "";
  if (verb != "select" && verb != "with" && verb != "show" && verb != "describe" &&
      verb != "desc" && verb != "explain" && verb != "values") {
    return refuse(why, "not a read: writes go through the log (execute, not query)");
  }
  // Reads may look at the node (NOW(), VERSION(), @@vars), but not take locks,
  // touch files or keep state in the query connection.
  for (const char* fn : {"get_lock", "release_lock", "release_all_locks", "load_file", "sleep",
                         "benchmark", "nextval", "setval"}) {
    for (size_t i = 0; i + 1 < t.size(); ++i) {
      if (is_name(t[i]) && name_of(t[i]) == fn && is_punct(t[i + 1], "(")) {
        return refuse(why, upper(fn) + "() is refused in queries");
      }
    }
  }
  return check_tokens(t, /*write=*/false, /*create=*/false, why);
}

bool check_command(std::string_view payload, bool* schema, std::string* why, size_t* total) {
  *schema = false;
  if (total != nullptr) *total = 0;
  nlohmann::json j = nlohmann::json::parse(payload.begin(), payload.end(), nullptr, false);
  if (!j.is_discarded() && sqltext::is_checksum_command(j)) return true;
  nlohmann::json statements;
  bool transaction = true;
  if (!sqltext::parse_command(payload, &statements, &transaction, why)) return false;
  size_t count = 0;
  bool any_schema = false;
  std::string first_schema;
  for (const nlohmann::json& entry : statements) {
    std::string sql;
    nlohmann::json params;
    if (!sqltext::split_entry(entry, &sql, &params, why)) return false;
    std::vector<std::string> parts;
    if (!sqltext::split_statements(sql, sqltext::Dialect::kMySql, &parts, why)) return false;
    for (const std::string& part : parts) {
      StatementKind kind;
      if (!check_write_statement(part, &kind, why)) return false;
      ++count;
      if (kind == StatementKind::kSchema && !any_schema) {
        any_schema = true;
        first_schema = part.substr(0, 60);
      }
    }
  }
  if (any_schema && count > 1) {
    return refuse(why, "a schema statement (" + first_schema +
                           ") must be the only statement of its command: MariaDB commits it"
                           " implicitly, so it cannot share a transaction with other statements");
  }
  *schema = any_schema;
  if (total != nullptr) *total = count;
  return true;
}

}  // namespace synod::mysql
