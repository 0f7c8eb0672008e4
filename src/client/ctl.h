// synodctl's logic without its I/O: parsing the command line and stdin lines,
// and turning a call's Result into output text and an exit code. tools/synodctl.cc
// wires it to a Client; ctl_test.cc tests it without a cluster.
//
// Exit codes: 0 success; 1 the command was answered but did not succeed (a
// missing key, a failed compare-and-set, a value that is not a number, a lock
// not granted or not held); 2 an error (bad usage, unreachable cluster,
// timeout, refused request).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "synod/client.hpp"

namespace synod::client {

struct CtlCommand {
  enum class Op {
    kPut, kGet, kDel, kCas, kIncr, kKeys, kStatus, kSqlExec, kSqlQuery, kSqlChecksum, kSqlShell,
    kLockAcquire, kLockRelease, kLockShow, kLockList
  };
  Op op = Op::kStatus;
  std::string key;
  std::string value;     // put, cas: the new value
  std::string expected;  // cas, unless absent
  bool absent = false;   // cas: the key must be absent
  std::int64_t delta = 1;
  std::string prefix;  // keys
  std::uint32_t limit = 0;
  std::optional<Consistency> consistency;  // get, keys, sql query
  // sql exec / sql query: one statement and its positional parameters (a word
  // that is a decimal integer or a number becomes one, "null" becomes NULL,
  // anything else a string), sent to `backend`.
  std::string sql;
  std::vector<std::string> params;
  std::string backend = "sqlite";
  // lock acquire / release / show: the lock's name; sent to lock_backend.
  std::string lock;
  std::string lock_backend = "lock";
  std::int64_t ttl_ms = 10000;  // acquire --ttl
  std::int64_t lock_delay_ms = 5000;  // acquire --lock-delay
  std::int64_t wait_ms = -1;    // acquire --wait: -1 without limit (default), 0 try once
  bool shared = false;          // acquire --shared
  std::vector<std::string> lock_command;  // acquire ... -- COMMAND ARGS...
  std::uint64_t session = 0;    // release --session (0: the lock's holder, whoever it is)
};

// A duration: a number with a unit (ms, s, m, h; "1.5s", "250ms") or without
// one (seconds, as flock -w), into milliseconds; "forever" is -1 when
// allow_forever. False with *error on anything else or a negative value.
bool parse_duration(std::string_view text, std::int64_t* ms, bool allow_forever,
                    std::string* error);

// The JSON payload of sql exec / sql query: [[SQL, params...]].
std::string sql_payload(const CtlCommand& command);

struct CtlOptions {
  std::string cluster;  // "H:P,H:P,..."
  std::string cluster_name = "synod";
  int timeout_ms = 5000;
  bool json = false;
  bool redirect = false;    // Options::prefer_redirect
  bool stdin_mode = false;  // "-": one command per line from stdin
};

struct CtlParse {
  enum class Action { kRun, kExit } action = Action::kRun;
  int exit_code = 0;
  std::string out;  // --help text
  std::string err;  // a usage error
};

// Parses synodctl's arguments into *options and, unless options->stdin_mode, *command.
CtlParse parse_ctl_args(int argc, const char* const* argv, CtlOptions* options,
                        CtlCommand* command);

// Splits a stdin line into words: blanks separate; '...' and "..." quote (a
// backslash escapes the next character inside "..." and outside quotes; \n, \t,
// \r, \\ and \xHH are understood). False with *error on an unterminated quote.
bool split_words(std::string_view line, std::vector<std::string>* words, std::string* error);

// Parses one stdin line (the same words as the arguments after the global
// options, e.g. `get k --consistency linearizable`). *empty is set for a blank
// line or a comment (#...), which the caller skips.
bool parse_ctl_line(std::string_view line, CtlCommand* command, bool* empty, std::string* error);

struct CtlOutput {
  int exit_code = 0;
  std::string out;  // for stdout, with its newline(s)
  std::string err;  // for stderr, with its newline; may be empty
};

// The output of a kv command. line_mode (stdin mode): exactly one line on
// stdout whatever the outcome (values escaped as in split_words, keys
// space-separated and quoted when needed), nothing on stderr.
CtlOutput format_result(const CtlCommand& command, const Result& result, bool json, bool line_mode);
// The output of status: a table (or one JSON object; one line in line mode).
// Exit 0 when some node answered, 2 when none did.
CtlOutput format_status(const std::vector<NodeStatus>& nodes, bool json, bool line_mode);

// sql checksum: one node's checksum at the position of the checksum command.
struct NodeChecksum {
  std::uint32_t id = 0;
  std::string address;
  bool ok = false;
  std::string checksum;  // when ok
  std::string error;     // when not
};
// The table (or JSON) of every node's checksum at `position`. Exit 0 when
// every node answered the same; 1 when some differ (those outside the largest
// group of equal checksums are named; a tie names every group); 2 when they
// agree but some node could not be asked.
CtlOutput format_checksums(std::uint64_t position, const std::vector<NodeChecksum>& nodes,
                           bool json);

// sql shell: statements end with ';' at the end of a line (outside quotes and
// comments); lines starting with '.' are shell commands (.help, .quit, ...).
class SqlShellBuffer {
 public:
  // Adds a line. True when a unit is complete: *unit is a whole statement
  // (without its final ';') or a dot command; the buffer starts over.
  bool add_line(std::string_view line, std::string* unit);
  // Whether a statement is waiting for more lines (the prompt says so).
  bool pending() const { return !text_.empty(); }
  void clear() { text_.clear(); }

 private:
  std::string text_;
};
// Whether the shell sends a statement as a read (query) rather than through
// the log (exec): SELECT, WITH ... SELECT, VALUES, EXPLAIN, SHOW, DESCRIBE.
bool is_read_statement(std::string_view sql);

// lock acquire: the grant (the token on its own line, or JSON with lock, token
// and session; exit 0), or why there is none (exit 1 busy / not granted in
// time, 2 errors).
CtlOutput format_lock_acquire(const CtlCommand& command, const LockResult& result,
                              std::uint64_t session, bool json);
// lock release: OK (exit 0), not held or the session gone (exit 1), errors (exit 2). `session` is
// the session it was released for.
// line_mode (stdin mode): one line on stdout whatever the outcome.
CtlOutput format_lock_release(const CtlCommand& command, const LockResult& result,
                              std::uint64_t session, bool json, bool line_mode = false);
// lock show / lock list: `result.value` is the backend's JSON (printed as is
// with json); else a table, with times relative to the answer's now_ms (the
// log's clock), or to now_ms (the wall clock, ms since the Unix epoch) when
// the answer has none.
CtlOutput format_lock_show(const Result& result, bool json, bool line_mode, std::int64_t now_ms);
CtlOutput format_lock_list(const Result& result, bool json, bool line_mode, std::int64_t now_ms);

// The result line of a stdin line that does not parse (exit code 2).
CtlOutput format_line_error(const std::string& error, bool json);

// The exit code of a Result (see the top of this file).
int exit_code_of(Code code);

// Text escaped for one line (backslash escapes; quoted when it holds blanks or
// quotes, or is empty, if quote_if_needed), readable back with split_words.
std::string escape_word(std::string_view text, bool quote_if_needed);

}  // namespace synod::client
