#include "client/ctl.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "client/lock_ops.h"

namespace synod::client {
namespace {

using Json = nlohmann::ordered_json;

// The subcommands shared by the command line and stdin lines, and the values
// their parse leaves behind before they become a CtlCommand.
struct Commands {
  CLI::App* put = nullptr;
  CLI::App* get = nullptr;
  CLI::App* del = nullptr;
  CLI::App* cas = nullptr;
  CLI::App* incr = nullptr;
  CLI::App* keys = nullptr;
  CLI::App* status = nullptr;
  CLI::App* sql = nullptr;
  CLI::App* sql_exec = nullptr;
  CLI::App* sql_query = nullptr;
  CLI::App* sql_checksum = nullptr;
  CLI::App* sql_shell = nullptr;
  CLI::App* lock = nullptr;
  CLI::App* lock_acquire = nullptr;
  CLI::App* lock_release = nullptr;
  CLI::App* lock_show = nullptr;
  CLI::App* lock_list = nullptr;
  std::string ttl;
  std::string wait;
  std::string lock_delay;
  std::string consistency;
  std::vector<std::string> cas_args;
};

void add_commands(CLI::App& app, CtlCommand* c, Commands* s) {
  const auto consistency = CLI::IsMember({"local", "linearizable"});
  s->put = app.add_subcommand("put", "Set KEY to VALUE");
  s->put->add_option("key", c->key, "The key")->required();
  s->put->add_option("value", c->value, "The value")->required();

  s->get = app.add_subcommand("get", "Print KEY's value; a missing key exits 1");
  s->get->add_option("key", c->key, "The key")->required();
  s->get
      ->add_option("--consistency", s->consistency,
                   "local (a node's state, maybe stale; default) or linearizable")
      ->check(consistency);

  s->del = app.add_subcommand("del", "Delete KEY; a missing key exits 1");
  s->del->add_option("key", c->key, "The key")->required();

  s->cas = app.add_subcommand(
      "cas", "Compare-and-set: KEY EXPECTED NEW, or KEY NEW with --absent; a mismatch exits 1");
  s->cas->add_option("args", s->cas_args, "KEY EXPECTED NEW (KEY NEW with --absent)")
      ->required()
      ->expected(2, 3);
  s->cas->add_flag("--absent", c->absent, "Set only if KEY does not exist");

  s->incr = app.add_subcommand("incr", "Add N (default 1) to KEY's number; print the new value");
  s->incr->add_option("key", c->key, "The key")->required();
  s->incr->add_option("n", c->delta, "The increment (may be negative)");

  s->keys = app.add_subcommand("keys", "List the keys starting with PREFIX");
  s->keys->add_option("prefix", c->prefix, "The prefix (default: every key)");
  s->keys->add_option("--limit", c->limit, "At most this many keys (0: all)");
  s->keys->add_option("--consistency", s->consistency, "local (default) or linearizable")
      ->check(consistency);

  s->status = app.add_subcommand("status", "Show every node: id, address, role, ballot, slots");

  s->sql = app.add_subcommand("sql", "SQL backends (sqlite): exec a write, query a read");
  s->sql->add_option("--backend", c->backend, "The SQL backend (default sqlite)");
  s->sql->require_subcommand(1);
  s->sql_exec = s->sql->add_subcommand(
      "exec", "Run STATEMENT through the log on every node; print rows affected and last id");
  s->sql_query = s->sql->add_subcommand("query", "Run a read-only STATEMENT; print the rows");
  for (CLI::App* sub : {s->sql_exec, s->sql_query}) {
    sub->add_option("statement", c->sql, "One SQL statement")->required();
    sub->add_option("params", c->params,
                    "Its ? parameters: integers and numbers as such, null as NULL, else text");
  }
  s->sql_query
      ->add_option("--consistency", s->consistency, "local (default) or linearizable")
      ->check(consistency);
  s->sql_checksum = s->sql->add_subcommand(
      "checksum",
      "Checksum every node's database at the same log position; name any node that differs");
  s->sql_shell = s->sql->add_subcommand(
      "shell", "Interactive SQL: statements end with ';', .help lists the shell's commands");
  s->sql_shell
      ->add_option("--consistency", s->consistency, "for reads: local (default) or linearizable")
      ->check(consistency);

  s->lock = app.add_subcommand("lock", "Locks (the lock backend): acquire, release, show, list");
  s->lock->add_option("--backend", c->lock_backend, "The lock backend (default lock)");
  s->lock->require_subcommand(1);
  s->lock_acquire = s->lock->add_subcommand(
      "acquire",
      "Acquire NAME and print its fencing token, then hold it until Ctrl-C/SIGTERM/SIGHUP; with "
      "-- COMMAND ARGS..., hold it while COMMAND runs (SYNOD_LOCK_TOKEN in its environment) "
      "and exit with COMMAND's exit code. Not granted: exit 1");
  s->lock_acquire->add_option("name", c->lock, "The lock's name")->required();
  s->lock_acquire->add_option("--ttl", s->ttl,
                              "The session's TTL (10s default; 1s..600s; ms, s, m units)");
  s->lock_acquire->add_option("--lock-delay", s->lock_delay,
                              "How long the lock stays unavailable to others if the session "
                              "EXPIRES while holding it (5s default; 0..300s)");
  s->lock_acquire->add_option(
      "--wait", s->wait, "How long to wait for the lock (default: no limit; 0: try once)");
  s->lock_acquire->add_flag("--shared", c->shared, "A shared (reader) lock");
  s->lock_release = s->lock->add_subcommand(
      "release",
      "Release NAME for --session S (default: for its only holder, whoever it is: breaks the "
      "lock of a process that is gone)");
  s->lock_release->add_option("name", c->lock, "The lock's name")->required();
  s->lock_release->add_option("--session", c->session, "The session that holds it");
  s->lock_show = s->lock->add_subcommand("show", "Show NAME's holders, waiters and newest token");
  s->lock_show->add_option("name", c->lock, "The lock's name")->required();
  s->lock_list = s->lock->add_subcommand("list", "List every lock and session");
  for (CLI::App* sub : {s->lock_show, s->lock_list}) {
    sub->add_option("--consistency", s->consistency, "local (default) or linearizable")
        ->check(consistency);
  }
  for (CLI::App* sub : {s->put, s->get, s->del, s->cas, s->incr, s->keys, s->status, s->sql,
                        s->sql_exec, s->sql_query, s->sql_checksum, s->sql_shell, s->lock,
                        s->lock_acquire, s->lock_release, s->lock_show, s->lock_list}) {
    // Global options (--timeout, --json, ...) may follow the command's words.
    sub->fallthrough();
  }
}

// Which subcommand ran, and its words checked; false with *error.
bool finish_command(const Commands& s, CtlCommand* c, std::string* error) {
  if (s.put->parsed()) {
    c->op = CtlCommand::Op::kPut;
  } else if (s.get->parsed()) {
    c->op = CtlCommand::Op::kGet;
  } else if (s.del->parsed()) {
    c->op = CtlCommand::Op::kDel;
  } else if (s.cas->parsed()) {
    c->op = CtlCommand::Op::kCas;
    if (c->absent) {
      if (s.cas_args.size() != 2) {
        *error = "cas --absent takes KEY NEW";
        return false;
      }
      c->key = s.cas_args[0];
      c->value = s.cas_args[1];
    } else {
      if (s.cas_args.size() != 3) {
        *error = "cas takes KEY EXPECTED NEW (or KEY NEW with --absent)";
        return false;
      }
      c->key = s.cas_args[0];
      c->expected = s.cas_args[1];
      c->value = s.cas_args[2];
    }
  } else if (s.incr->parsed()) {
    c->op = CtlCommand::Op::kIncr;
  } else if (s.keys->parsed()) {
    c->op = CtlCommand::Op::kKeys;
  } else if (s.status->parsed()) {
    c->op = CtlCommand::Op::kStatus;
  } else if (s.sql_exec->parsed()) {
    c->op = CtlCommand::Op::kSqlExec;
  } else if (s.sql_query->parsed()) {
    c->op = CtlCommand::Op::kSqlQuery;
  } else if (s.sql_checksum->parsed()) {
    c->op = CtlCommand::Op::kSqlChecksum;
  } else if (s.sql_shell->parsed()) {
    c->op = CtlCommand::Op::kSqlShell;
  } else if (s.lock_acquire->parsed()) {
    c->op = CtlCommand::Op::kLockAcquire;
    if (!s.ttl.empty() && !parse_duration(s.ttl, &c->ttl_ms, false, error)) {
      *error = "--ttl: " + *error;
      return false;
    }
    if (c->ttl_ms < 1000 || c->ttl_ms > 600000) {
      *error = "--ttl must be 1s..600s";
      return false;
    }
    if (!s.lock_delay.empty() && !parse_duration(s.lock_delay, &c->lock_delay_ms, false, error)) {
      *error = "--lock-delay: " + *error;
      return false;
    }
    if (c->lock_delay_ms > 300000) {
      *error = "--lock-delay must be 0..300s";
      return false;
    }
    if (!s.wait.empty() && !parse_duration(s.wait, &c->wait_ms, true, error)) {
      *error = "--wait: " + *error;
      return false;
    }
  } else if (s.lock_release->parsed()) {
    c->op = CtlCommand::Op::kLockRelease;
  } else if (s.lock_show->parsed()) {
    c->op = CtlCommand::Op::kLockShow;
  } else if (s.lock_list->parsed()) {
    c->op = CtlCommand::Op::kLockList;
  } else {
    *error =
        "no command given (put, get, del, cas, incr, keys, status, sql, lock, or - for stdin)";
    return false;
  }
  if (c->op != CtlCommand::Op::kLockAcquire && !c->lock_command.empty()) {
    *error = "only lock acquire runs a command after --";
    return false;
  }
  if (s.consistency == "local") c->consistency = Consistency::kLocal;
  if (s.consistency == "linearizable") c->consistency = Consistency::kLinearizable;
  return true;
}

int hex_value(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

std::string human_error(const Result& r) {
  switch (r.code) {
    case Code::kNotFound:
      return "not found";
    case Code::kCasFailed:
      return r.found ? "compare-and-set failed: the current value is " + escape_word(r.value, true)
                     : "compare-and-set failed: the key is absent";
    case Code::kNotANumber:
      return "not a number: " + r.message;
    default:
      return "error: " + (r.message.empty() ? std::string(code_name(r.code)) : r.message);
  }
}

std::string dump(const Json& j) {
  // Binary values: invalid UTF-8 becomes U+FFFD rather than an exception.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Json ballot_json(const Ballot& b) { return Json{{"round", b.round}, {"node", b.node}}; }

std::string ballot_text(const Ballot& b) {
  return std::to_string(b.round) + "." + std::to_string(b.node);
}

// Log time (ms since the Unix epoch) as UTC, to the millisecond.
std::string utc_time(std::int64_t ms) {
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

// A span in ms as seconds with one decimal ("8.3s"; "-1.0s" in the past).
std::string seconds_text(std::int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1fs", static_cast<double>(ms) / 1000.0);
  return buf;
}

// Rows of cells as a table with columns padded to their widest cell.
std::string table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

std::string lock_state(const LockInfo& info, std::int64_t now_ms) {
  if (!info.holders.empty()) {
    return info.holders.size() == 1 && info.holders[0].mode == LockMode::kExclusive ? "held"
                                                                                     : "held shared";
  }
  if (info.unavailable_until_ms > now_ms) {
    return "lock-delay (" + seconds_text(info.unavailable_until_ms - now_ms) + " left)";
  }
  return "free";
}

std::string lock_human_error(const LockResult& r) {
  return "error: " + (r.message.empty() ? std::string(code_name(r.code)) : r.message);
}

}  // namespace

int exit_code_of(Code code) {
  switch (code) {
    case Code::kOk:
      return 0;
    case Code::kNotFound:
    case Code::kCasFailed:
    case Code::kNotANumber:
    case Code::kLockBusy:
      return 1;
    default:
      return 2;
  }
}

CtlParse parse_ctl_args(int argc, const char* const* argv, CtlOptions* options,
                        CtlCommand* command) {
  CLI::App app{
      "synodctl: the command-line client of a Synod cluster (key-value, SQL and lock "
      "backends).\n"
      "Exit 0 on success, 1 for a missing key, a failed compare-and-set or a lock not\n"
      "granted, 2 on errors (lock acquire -- COMMAND: COMMAND's exit code).\n"
      "`synodctl --cluster ... -` reads one command per line from stdin and prints one\n"
      "result line per command.",
      "synodctl"};
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  std::string marker;
  app.add_option("--cluster", options->cluster, "The nodes: HOST:PORT,HOST:PORT,...")
      ->required()
      ->envname("SYNOD_CLUSTER");
  app.add_option("--timeout", options->timeout_ms, "Timeout of each command in milliseconds")
      ->check(CLI::Range(1, 3600 * 1000));
  app.add_flag("--json", options->json, "Machine-readable output (one JSON object per command)");
  app.add_option("--cluster-name", options->cluster_name,
                 "The cluster's name (synod --cluster); default synod");
  app.add_flag("--redirect", options->redirect,
               "Ask followers to redirect writes instead of forwarding them");
  app.add_option("stdin", marker, "- : read one command per line from stdin");
  Commands s;
  add_commands(app, command, &s);
  app.require_subcommand(0, 1);

  // lock acquire NAME ... -- COMMAND ARGS...: the words after "--" are the
  // command's, whatever they look like; CLI11 sees only those before.
  std::vector<std::string> words;
  for (int i = 1; i < argc; ++i) words.emplace_back(argv[i]);
  bool has_command = false;
  for (std::size_t i = 0; i + 1 < words.size(); ++i) {
    if (words[i] != "lock" || words[i + 1] != "acquire") continue;
    auto dashes = std::find(words.begin() + static_cast<std::ptrdiff_t>(i) + 2, words.end(), "--");
    if (dashes != words.end()) {
      command->lock_command.assign(dashes + 1, words.end());
      words.erase(dashes, words.end());
      has_command = true;
    }
    break;
  }

  CtlParse result;
  try {
    std::reverse(words.begin(), words.end());  // CLI11 takes them last to first
    app.parse(words);
  } catch (const CLI::ParseError& e) {
    std::ostringstream out, err;
    result.action = CtlParse::Action::kExit;
    const int rc = app.exit(e, out, err);
    result.out = out.str();
    result.err = err.str();
    result.exit_code = rc == 0 ? 0 : 2;
    return result;
  }
  auto usage_error = [&](std::string message) {
    result.action = CtlParse::Action::kExit;
    result.exit_code = 2;
    result.err = "synodctl: " + message + "\nRun with --help for more information.\n";
    return result;
  };
  if (!marker.empty()) {
    if (marker != "-") return usage_error("unexpected argument \"" + marker + "\"");
    if (!app.get_subcommands().empty()) {
      return usage_error("give either a command or - (stdin), not both");
    }
    options->stdin_mode = true;
    return result;
  }
  std::string error;
  if (has_command && command->lock_command.empty()) {
    return usage_error("no command after --");
  }
  if (!finish_command(s, command, &error)) return usage_error(error);
  return result;
}

bool split_words(std::string_view line, std::vector<std::string>* words, std::string* error) {
  words->clear();
  std::size_t i = 0;
  const std::size_t n = line.size();
  auto blank = [](char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; };
  // One backslash escape starting at line[i] == '\\'; appends to *w.
  auto escape = [&](std::string* w) -> bool {
    if (i + 1 >= n) {
      *error = "a backslash at the end of the line";
      return false;
    }
    const char ch = line[i + 1];
    i += 2;
    switch (ch) {
      case 'n':
        w->push_back('\n');
        return true;
      case 't':
        w->push_back('\t');
        return true;
      case 'r':
        w->push_back('\r');
        return true;
      case 'x': {
        if (i + 2 > n || hex_value(line[i]) < 0 || hex_value(line[i + 1]) < 0) {
          *error = "\\x needs two hex digits";
          return false;
        }
        w->push_back(static_cast<char>(hex_value(line[i]) * 16 + hex_value(line[i + 1])));
        i += 2;
        return true;
      }
      default:
        w->push_back(ch);  // \\, \", \', \ , ...
        return true;
    }
  };
  while (true) {
    while (i < n && blank(line[i])) ++i;
    if (i >= n) return true;
    std::string w;
    while (i < n && !blank(line[i])) {
      const char ch = line[i];
      if (ch == '\\') {
        if (!escape(&w)) return false;
      } else if (ch == '\'') {
        const std::size_t end = line.find('\'', i + 1);
        if (end == std::string_view::npos) {
          *error = "unterminated '";
          return false;
        }
        w.append(line.substr(i + 1, end - i - 1));
        i = end + 1;
      } else if (ch == '"') {
        ++i;
        while (true) {
          if (i >= n) {
            *error = "unterminated \"";
            return false;
          }
          if (line[i] == '"') {
            ++i;
            break;
          }
          if (line[i] == '\\') {
            if (!escape(&w)) return false;
          } else {
            w.push_back(line[i++]);
          }
        }
      } else {
        w.push_back(ch);
        ++i;
      }
    }
    words->push_back(std::move(w));
  }
}

bool parse_ctl_line(std::string_view line, CtlCommand* command, bool* empty, std::string* error) {
  *empty = false;
  std::vector<std::string> words;
  if (!split_words(line, &words, error)) return false;
  if (words.empty() || words[0].starts_with("#")) {
    *empty = true;
    return true;
  }
  static const std::vector<std::string> kCommands = {"put",  "get",    "del", "cas", "incr",
                                                     "keys", "status", "sql", "lock"};
  if (std::find(kCommands.begin(), kCommands.end(), words[0]) == kCommands.end()) {
    *error = "unknown command \"" + words[0] +
             "\" (put, get, del, cas, incr, keys, status, sql, lock)";
    return false;
  }
  *command = CtlCommand{};
  CLI::App app{"synodctl command", "synodctl"};
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  Commands s;
  add_commands(app, command, &s);
  app.require_subcommand(1, 1);
  std::reverse(words.begin(), words.end());  // CLI11 takes them last to first
  try {
    app.parse(words);
  } catch (const CLI::ParseError& e) {
    *error = e.what();
    if (error->empty()) *error = "cannot parse the command";
    return false;
  }
  return finish_command(s, command, error);
}

std::string escape_word(std::string_view text, bool quote_if_needed) {
  std::string out;
  bool quote = quote_if_needed && text.empty();
  for (unsigned char ch : text) {
    switch (ch) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      case '"':
        if (quote_if_needed) {
          out += "\\\"";
          quote = true;
        } else {
          out.push_back('"');
        }
        break;
      case ' ':
      case '\'':
        out.push_back(static_cast<char>(ch));
        if (quote_if_needed) quote = true;
        break;
      default:
        if (ch < 0x20 || ch == 0x7f) {
          char buf[5];
          std::snprintf(buf, sizeof(buf), "\\x%02x", ch);
          out += buf;
        } else {
          out.push_back(static_cast<char>(ch));
        }
    }
  }
  return quote ? "\"" + out + "\"" : out;
}

std::string sql_payload(const CtlCommand& c) {
  Json statement = Json::array({c.sql});
  for (const std::string& p : c.params) {
    std::int64_t i = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), i);
    if (!p.empty() && ec == std::errc() && end == p.data() + p.size()) {
      statement.push_back(i);
      continue;
    }
    char* stop = nullptr;
    const double d = std::strtod(p.c_str(), &stop);
    if (!p.empty() && stop == p.c_str() + p.size() && std::isfinite(d) &&
        p.find_first_not_of("0123456789+-.eE") == std::string::npos) {
      statement.push_back(d);
    } else if (p == "null") {
      statement.push_back(nullptr);
    } else {
      statement.push_back(p);
    }
  }
  return Json::array({statement}).dump(-1, ' ', false, Json::error_handler_t::replace);
}

namespace {

// sql exec / sql query answered: a table of rows, or rows affected; an SQL
// error (the backend's result) exits 1 with the error on stderr.
CtlOutput format_sql(const CtlCommand& c, const Result& r, bool line_mode) {
  CtlOutput o;
  const Json answer = Json::parse(r.value, nullptr, false);
  if (answer.is_discarded() || !answer.contains("results") || !answer["results"].is_array() ||
      answer["results"].empty()) {
    o.exit_code = 2;
    (line_mode ? o.out : o.err) = "error: the backend's answer is not an SQL result\n";
    return o;
  }
  const Json& first = answer["results"].back();
  if (first.contains("error")) {
    o.exit_code = 1;
    std::string message = "SQL error: " + first["error"].get<std::string>();
    if (answer.value("rolled_back", false)) message += " (rolled back)";
    (line_mode ? o.out : o.err) = message + "\n";
    return o;
  }
  if (line_mode) {
    o.out = first.dump() + "\n";
    return o;
  }
  if (c.op == CtlCommand::Op::kSqlExec) {
    o.out = std::to_string(first.value("rows_affected", 0)) + " row(s) affected, last insert id " +
            std::to_string(first.value("last_insert_id", 0)) + "\n";
    return o;
  }
  // A table: column names, then one line per row, columns aligned.
  std::vector<std::vector<std::string>> cells;
  std::vector<std::string> header;
  for (const auto& name : first["columns"]) header.push_back(name.get<std::string>());
  cells.push_back(header);
  for (const auto& row : first["values"]) {
    std::vector<std::string> line;
    for (const auto& v : row) {
      line.push_back(v.is_null() ? "NULL" : v.is_string() ? v.get<std::string>() : v.dump());
    }
    cells.push_back(std::move(line));
  }
  std::vector<std::size_t> width(header.size(), 0);
  for (const auto& line : cells) {
    for (std::size_t i = 0; i < line.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], line[i].size());
    }
  }
  for (const auto& line : cells) {
    std::string text;
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (i > 0) text += " | ";
      text += line[i];
      if (i + 1 < line.size() && i < width.size()) text.append(width[i] - line[i].size(), ' ');
    }
    o.out += text + "\n";
  }
  o.out += "(" + std::to_string(cells.size() - 1) + " row" + (cells.size() == 2 ? "" : "s") + ")\n";
  return o;
}

}  // namespace

CtlOutput format_result(const CtlCommand& c, const Result& r, bool json, bool line_mode) {
  CtlOutput o;
  o.exit_code = exit_code_of(r.code);
  if (json) {
    Json j;
    j["ok"] = r.ok();
    j["code"] = code_name(r.code);
    switch (c.op) {
      case CtlCommand::Op::kPut:
      case CtlCommand::Op::kDel:
        j["key"] = c.key;
        break;
      case CtlCommand::Op::kGet:
        j["key"] = c.key;
        if (r.ok()) j["value"] = r.value;
        break;
      case CtlCommand::Op::kCas:
        j["key"] = c.key;
        if (r.code == Code::kCasFailed) {
          j["found"] = r.found;
          if (r.found) j["value"] = r.value;
        }
        break;
      case CtlCommand::Op::kIncr:
        j["key"] = c.key;
        if (r.ok()) j["value"] = r.number;
        break;
      case CtlCommand::Op::kKeys:
        if (r.ok()) j["keys"] = r.keys;
        break;
      case CtlCommand::Op::kStatus:
        break;
      case CtlCommand::Op::kSqlChecksum:
      case CtlCommand::Op::kSqlShell:
      case CtlCommand::Op::kLockAcquire:
      case CtlCommand::Op::kLockRelease:
      case CtlCommand::Op::kLockShow:
      case CtlCommand::Op::kLockList:
        break;
      case CtlCommand::Op::kSqlExec:
      case CtlCommand::Op::kSqlQuery:
        if (r.ok()) {
          Json answer = Json::parse(r.value, nullptr, false);
          if (!answer.is_discarded()) j["result"] = std::move(answer);
        }
        break;
    }
    if (r.ok() && r.slot != 0) j["slot"] = r.slot;
    if (!r.ok()) j["error"] = r.message.empty() ? human_error(r) : r.message;
    if (r.ok() && j.contains("result") && j["result"].contains("results") &&
        !j["result"]["results"].empty() && j["result"]["results"].back().contains("error")) {
      o.exit_code = 1;  // answered, but the statement failed
    }
    o.out = dump(j) + "\n";
    if (!r.ok() && !line_mode) o.err = human_error(r) + "\n";
    return o;
  }
  if (!r.ok()) {
    (line_mode ? o.out : o.err) = human_error(r) + "\n";
    return o;
  }
  switch (c.op) {
    case CtlCommand::Op::kSqlExec:
    case CtlCommand::Op::kSqlQuery:
      return format_sql(c, r, line_mode);
    case CtlCommand::Op::kSqlChecksum:
    case CtlCommand::Op::kSqlShell:
    case CtlCommand::Op::kPut:
    case CtlCommand::Op::kDel:
    case CtlCommand::Op::kCas:
    case CtlCommand::Op::kStatus:
    case CtlCommand::Op::kLockAcquire:
    case CtlCommand::Op::kLockRelease:
    case CtlCommand::Op::kLockShow:
    case CtlCommand::Op::kLockList:
      o.out = "OK\n";
      break;
    case CtlCommand::Op::kGet:
      o.out = (line_mode ? escape_word(r.value, false) : r.value) + "\n";
      break;
    case CtlCommand::Op::kIncr:
      o.out = std::to_string(r.number) + "\n";
      break;
    case CtlCommand::Op::kKeys:
      if (line_mode) {
        for (std::size_t i = 0; i < r.keys.size(); ++i) {
          if (i > 0) o.out += ' ';
          o.out += escape_word(r.keys[i], true);
        }
        o.out += "\n";
      } else {
        for (const std::string& k : r.keys) o.out += k + "\n";
      }
      break;
  }
  return o;
}

bool parse_duration(std::string_view text, std::int64_t* ms, bool allow_forever,
                    std::string* error) {
  if (allow_forever && text == "forever") {
    *ms = -1;
    return true;
  }
  std::size_t digits = 0;
  while (digits < text.size() &&
         ((text[digits] >= '0' && text[digits] <= '9') || text[digits] == '.')) {
    ++digits;
  }
  const std::string number(text.substr(0, digits));
  const std::string_view unit = text.substr(digits);
  double scale = 0;
  if (unit.empty() || unit == "s") {
    scale = 1000;
  } else if (unit == "ms") {
    scale = 1;
  } else if (unit == "m") {
    scale = 60000;
  } else if (unit == "h") {
    scale = 3600000;
  }
  char* end = nullptr;
  const double value = number.empty() ? -1 : std::strtod(number.c_str(), &end);
  if (scale == 0 || number.empty() || end != number.c_str() + number.size() ||
      !std::isfinite(value) || value * scale > 1e15) {
    *error = "\"" + std::string(text) + "\" is not a duration (like 500ms, 10s, 2m" +
             (allow_forever ? ", forever)" : ")");
    return false;
  }
  *ms = static_cast<std::int64_t>(std::llround(value * scale));
  return true;
}

CtlOutput format_lock_acquire(const CtlCommand& c, const LockResult& r, std::uint64_t session,
                              bool json) {
  CtlOutput o;
  o.exit_code = exit_code_of(r.code);
  if (json) {
    Json j;
    j["ok"] = r.ok();
    j["code"] = code_name(r.code);
    j["lock"] = c.lock;
    if (session != 0) j["session"] = session;
    if (r.ok()) j["token"] = r.token;
    if (r.holder_session != 0) j["holder_session"] = r.holder_session;
    if (!r.ok()) j["error"] = r.message.empty() ? std::string(code_name(r.code)) : r.message;
    o.out = dump(j) + "\n";
    return o;
  }
  if (r.ok()) {
    o.out = std::to_string(r.token) + "\n";
  } else if (r.code == Code::kLockBusy) {
    o.err = "lock " + escape_word(c.lock, true) + " not acquired: " +
            (r.message.empty() ? std::string("busy") : r.message) + "\n";
  } else {
    o.err = lock_human_error(r) + "\n";
  }
  return o;
}

CtlOutput format_lock_release(const CtlCommand& c, const LockResult& r, std::uint64_t session,
                              bool json, bool line_mode) {
  CtlOutput o;
  // Not held, or the session is gone (and holds nothing): answered, exit 1.
  o.exit_code = r.code == Code::kSessionLost ? 1 : exit_code_of(r.code);
  if (json) {
    Json j;
    j["ok"] = r.ok();
    j["code"] = code_name(r.code);
    j["lock"] = c.lock;
    if (session != 0) j["session"] = session;
    if (!r.ok()) j["error"] = r.message.empty() ? std::string(code_name(r.code)) : r.message;
    o.out = dump(j) + "\n";
    return o;
  }
  std::string& text = r.ok() || line_mode ? o.out : o.err;
  if (r.ok()) {
    text = "OK\n";
  } else if (r.code == Code::kNotFound) {
    text = "lock " + escape_word(c.lock, true) + " is not held by session " +
           std::to_string(session) + "\n";
  } else if (r.code == Code::kSessionLost) {
    text = "lock " + escape_word(c.lock, true) + " is not held by session " +
           std::to_string(session) + ": " + escape_word(r.message, false) + "\n";
  } else {
    text = lock_human_error(r) + "\n";
  }
  return o;
}

CtlOutput format_lock_show(const Result& r, bool json, bool line_mode, std::int64_t now_ms) {
  CtlOutput o;
  if (!r.ok()) {
    o.exit_code = exit_code_of(r.code);
    if (json) {
      o.out = dump(Json{{"ok", false}, {"code", code_name(r.code)}, {"error", r.message}}) + "\n";
    } else {
      (line_mode ? o.out : o.err) = human_error(r) + "\n";
    }
    return o;
  }
  LockInfo info;
  std::string error;
  if (!parse_lock_info(r.value, &info, &error)) {
    o.exit_code = 2;
    (line_mode || json ? o.out : o.err) = "error: the lock backend's answer: " + error + "\n";
    return o;
  }
  if (json || line_mode) {
    const Json j = Json::parse(r.value, nullptr, false);
    o.out = (j.is_discarded() ? r.value : dump(j)) + "\n";
    return o;
  }
  // Relative times against the log's clock when the answer gives it.
  if (info.now_ms > 0) now_ms = info.now_ms;
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"lock", escape_word(info.name, true)});
  rows.push_back({"state", lock_state(info, now_ms)});
  if (info.holders.empty()) rows.push_back({"holders", "(none)"});
  for (std::size_t i = 0; i < info.holders.size(); ++i) {
    const LockHolderInfo& h = info.holders[i];
    rows.push_back({i == 0 ? "holders" : "", "session " + std::to_string(h.session) + "  token " +
                                                 std::to_string(h.token) + "  " +
                                                 lock_mode_name(h.mode) + "  since " +
                                                 utc_time(h.since_ms)});
  }
  if (info.waiters.empty()) rows.push_back({"waiters", "(none)"});
  for (std::size_t i = 0; i < info.waiters.size(); ++i) {
    const LockWaiterInfo& w = info.waiters[i];
    rows.push_back({i == 0 ? "waiters" : "", std::to_string(i + 1) + ". session " +
                                                 std::to_string(w.session) + "  " +
                                                 lock_mode_name(w.mode)});
  }
  if (info.unavailable_until_ms > 0) {
    rows.push_back({"lock-delay until", utc_time(info.unavailable_until_ms)});
  }
  rows.push_back({"last token", std::to_string(info.last_token)});
  o.out = table(rows);
  return o;
}

CtlOutput format_lock_list(const Result& r, bool json, bool line_mode, std::int64_t now_ms) {
  CtlOutput o;
  if (!r.ok()) {
    o.exit_code = exit_code_of(r.code);
    if (json) {
      o.out = dump(Json{{"ok", false}, {"code", code_name(r.code)}, {"error", r.message}}) + "\n";
    } else {
      (line_mode ? o.out : o.err) = human_error(r) + "\n";
    }
    return o;
  }
  LockListing listing;
  std::string error;
  if (!parse_lock_listing(r.value, &listing, &error)) {
    o.exit_code = 2;
    (line_mode || json ? o.out : o.err) = "error: the lock backend's answer: " + error + "\n";
    return o;
  }
  if (json || line_mode) {
    const Json j = Json::parse(r.value, nullptr, false);
    o.out = (j.is_discarded() ? r.value : dump(j)) + "\n";
    return o;
  }
  if (listing.now_ms > 0) now_ms = listing.now_ms;
  std::vector<std::vector<std::string>> locks = {
      {"LOCK", "STATE", "HOLDERS", "WAITERS", "LAST TOKEN"}};
  for (const LockInfo& info : listing.locks) {
    std::string holders;
    for (const LockHolderInfo& h : info.holders) {
      holders += (holders.empty() ? "" : ",") + std::to_string(h.session);
    }
    locks.push_back({escape_word(info.name, true), lock_state(info, now_ms),
                     holders.empty() ? "-" : holders, std::to_string(info.waiters.size()),
                     std::to_string(info.last_token)});
  }
  std::vector<std::vector<std::string>> sessions = {
      {"SESSION", "TTL", "LOCK-DELAY", "EXPIRES IN"}};
  for (const LockSessionInfo& s : listing.sessions) {
    sessions.push_back({std::to_string(s.session), seconds_text(s.ttl_ms),
                        seconds_text(s.lock_delay_ms), seconds_text(s.expires_ms - now_ms)});
  }
  o.out = (listing.locks.empty() ? std::string("no locks\n") : table(locks)) + "\n" +
          (listing.sessions.empty() ? std::string("no sessions\n") : table(sessions));
  return o;
}

CtlOutput format_line_error(const std::string& error, bool json) {
  CtlOutput o;
  o.exit_code = 2;
  if (json) {
    Json j;
    j["ok"] = false;
    j["code"] = "usage";
    j["error"] = error;
    o.out = dump(j) + "\n";
  } else {
    o.out = "error: " + escape_word(error, false) + "\n";
  }
  return o;
}

CtlOutput format_status(const std::vector<NodeStatus>& nodes, bool json, bool line_mode) {
  CtlOutput o;
  const bool any =
      std::any_of(nodes.begin(), nodes.end(), [](const NodeStatus& n) { return n.reachable; });
  o.exit_code = any ? 0 : 2;
  if (json) {
    Json list = Json::array();
    for (const NodeStatus& n : nodes) {
      Json j;
      j["id"] = n.id;
      j["address"] = n.address;
      j["reachable"] = n.reachable;
      if (!n.reachable) {
        j["error"] = n.error;
      } else {
        j["role"] = n.role;
        j["ballot"] = ballot_json(n.ballot);
        j["promised"] = ballot_json(n.promised);
        j["leader"] = n.leader;
        j["commit"] = n.commit;
        j["applied"] = n.applied;
        j["known_commit"] = n.known_commit;
        j["catching_up"] = n.catching_up;
        Json peers = Json::array();
        for (const PeerStatus& p : n.peers) {
          peers.push_back(Json{{"id", p.id}, {"address", p.address}, {"connected", p.connected}});
        }
        j["peers"] = peers;
        j["syncs"] = n.syncs;
        j["bytes_synced"] = n.bytes_synced;
        j["backends"] = n.backends;
        if (!n.apply_error.empty()) j["apply_error"] = n.apply_error;
      }
      list.push_back(std::move(j));
    }
    Json j;
    j["ok"] = any;
    j["nodes"] = std::move(list);
    if (!any) j["error"] = "no node answered";
    o.out = dump(j) + "\n";
    if (!any && !line_mode) o.err = "error: no node answered\n";
    return o;
  }
  auto id_text = [](const NodeStatus& n) {
    return n.id == 0 ? std::string("?") : std::to_string(n.id);
  };
  if (line_mode) {
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      const NodeStatus& n = nodes[i];
      if (i > 0) o.out += "; ";
      o.out += id_text(n) + " " + n.address + " ";
      if (!n.reachable) {
        o.out += "unreachable (" + escape_word(n.error, false) + ")";
        continue;
      }
      o.out += n.role + " ballot=" + ballot_text(n.ballot) + " commit=" + std::to_string(n.commit) +
               " applied=" + std::to_string(n.applied) + " reachable";
      if (n.catching_up) o.out += " catching-up";
    }
    o.out += "\n";
    return o;
  }
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"ID", "ADDRESS", "ROLE", "BALLOT", "COMMIT", "APPLIED", "REACHABLE"});
  for (const NodeStatus& n : nodes) {
    if (!n.reachable) {
      rows.push_back({id_text(n), n.address, "-", "-", "-", "-", "no: " + n.error});
      continue;
    }
    std::string reach = "yes";
    if (n.catching_up) reach += " (catching up)";
    if (!n.apply_error.empty()) reach += " (apply stalled: " + n.apply_error + ")";
    rows.push_back({id_text(n), n.address, n.role, ballot_text(n.ballot), std::to_string(n.commit),
                    std::to_string(n.applied), reach});
  }
  std::vector<std::size_t> width(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    o.out += line + "\n";
  }
  if (!any) o.err = "error: no node answered\n";
  return o;
}

CtlOutput format_checksums(std::uint64_t position, const std::vector<NodeChecksum>& nodes,
                           bool json) {
  // The groups of equal checksums; the largest is the reference.
  std::map<std::string, std::size_t> count;
  for (const NodeChecksum& n : nodes) {
    if (n.ok) ++count[n.checksum];
  }
  std::size_t best = 0;
  for (const auto& [sum, k] : count) best = std::max(best, k);
  std::size_t with_best = 0;
  for (const auto& [sum, k] : count) with_best += k == best ? 1 : 0;
  const bool tie = with_best > 1;
  auto differs = [&](const NodeChecksum& n) {
    return n.ok && count.size() > 1 && (tie || count[n.checksum] != best);
  };
  const bool all_ok =
      std::all_of(nodes.begin(), nodes.end(), [](const NodeChecksum& n) { return n.ok; });
  CtlOutput o;
  o.exit_code = count.size() > 1 ? 1 : (all_ok && !nodes.empty() ? 0 : 2);
  std::vector<std::string> named;
  for (const NodeChecksum& n : nodes) {
    if (differs(n)) named.push_back("node " + std::to_string(n.id) + " (" + n.address + ")");
  }
  if (json) {
    Json j;
    j["position"] = position;
    j["consistent"] = count.size() <= 1;
    j["nodes"] = Json::array();
    for (const NodeChecksum& n : nodes) {
      Json e{{"id", n.id}, {"address", n.address}, {"ok", n.ok}};
      if (n.ok) {
        e["checksum"] = n.checksum;
        e["differs"] = differs(n);
      } else {
        e["error"] = n.error;
      }
      j["nodes"].push_back(std::move(e));
    }
    o.out = dump(j) + "\n";
    return o;
  }
  o.out = "checksum at log position " + std::to_string(position) + "\n";
  for (const NodeChecksum& n : nodes) {
    o.out += "node " + std::to_string(n.id) + "  " + n.address + "  ";
    if (!n.ok) {
      o.out += "UNAVAILABLE: " + n.error + "\n";
    } else {
      o.out += n.checksum + (differs(n) ? "  DIFFERS" : "") + "\n";
    }
  }
  if (count.size() > 1) {
    std::string list;
    for (const std::string& name : named) list += (list.empty() ? "" : ", ") + name;
    o.err = std::string("DIVERGED: ") + list +
            (tie ? " (no majority: every group is named)" : " differ from the majority") + "\n";
  } else if (!all_ok || nodes.empty()) {
    o.err = "not every node could be compared\n";
  } else {
    o.out += "all " + std::to_string(nodes.size()) + " nodes identical\n";
  }
  return o;
}

bool SqlShellBuffer::add_line(std::string_view line, std::string* unit) {
  auto trim = [](std::string_view t) {
    const auto b = t.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) return std::string_view();
    const auto e = t.find_last_not_of(" \t\r\n");
    return t.substr(b, e - b + 1);
  };
  const std::string_view t = trim(line);
  if (text_.empty()) {
    if (t.empty() || t.starts_with("--")) return false;
    if (t.starts_with(".")) {
      *unit = std::string(t);
      return true;
    }
  }
  if (!text_.empty()) text_ += "\n";
  text_ += line;
  // Complete when the text ends with ';' outside quotes and comments.
  char quote = 0;
  bool line_comment = false, block_comment = false;
  std::size_t last_semicolon = std::string::npos;
  std::size_t last_code = std::string::npos;
  for (std::size_t i = 0; i < text_.size(); ++i) {
    const char c = text_[i];
    const char next = i + 1 < text_.size() ? text_[i + 1] : '\0';
    if (line_comment) {
      if (c == '\n') line_comment = false;
      continue;
    }
    if (block_comment) {
      if (c == '*' && next == '/') {
        block_comment = false;
        ++i;
      }
      continue;
    }
    if (quote != 0) {
      if (c == quote) quote = 0;
      last_code = i;
      continue;
    }
    if (c == '-' && next == '-') {
      line_comment = true;
    } else if (c == '/' && next == '*') {
      block_comment = true;
      ++i;
    } else if (c == '\'' || c == '"' || c == '`') {
      quote = c;
      last_code = i;
    } else if (c == ';') {
      last_semicolon = i;
      last_code = i;
    } else if (!std::isspace(static_cast<unsigned char>(c))) {
      last_code = i;
    }
  }
  if (quote != 0 || block_comment || last_semicolon == std::string::npos ||
      last_semicolon != last_code) {
    return false;
  }
  *unit = std::string(trim(std::string_view(text_).substr(0, last_semicolon)));
  text_.clear();
  if (unit->empty()) return false;  // a lone ';'
  return true;
}

bool is_read_statement(std::string_view sql) {
  std::size_t i = 0;
  while (i < sql.size()) {  // skip blanks and comments before the first word
    if (std::isspace(static_cast<unsigned char>(sql[i])) || sql[i] == '(') {
      ++i;
    } else if (sql.substr(i).starts_with("--")) {
      i = sql.find('\n', i);
      if (i == std::string_view::npos) return false;
    } else if (sql.substr(i).starts_with("/*")) {
      i = sql.find("*/", i);
      if (i == std::string_view::npos) return false;
      i += 2;
    } else {
      break;
    }
  }
  std::string word;
  while (i < sql.size() && std::isalpha(static_cast<unsigned char>(sql[i]))) {
    word.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(sql[i++]))));
  }
  if (word == "with") {
    // WITH ... SELECT is a read; WITH ... INSERT/UPDATE/DELETE is not.
    std::string lowered(sql);
    for (char& c : lowered) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const char* w : {"insert", "update", "delete", "replace"}) {
      if (lowered.find(w) != std::string::npos) return false;
    }
    return true;
  }
  return word == "select" || word == "values" || word == "explain" || word == "show" ||
         word == "describe" || word == "desc" || word == "table";
}

}  // namespace synod::client
