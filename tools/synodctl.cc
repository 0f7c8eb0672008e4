// synodctl: the command-line client of a Synod cluster.
//
//   synodctl --cluster 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003 put KEY VALUE
//   synodctl --cluster ... get KEY [--consistency local|linearizable]
//   synodctl --cluster ... del KEY
//   synodctl --cluster ... cas KEY EXPECTED NEW      (cas --absent KEY NEW)
//   synodctl --cluster ... incr KEY [N]
//   synodctl --cluster ... keys PREFIX [--limit N]
//   synodctl --cluster ... status
//   synodctl --cluster ... sql exec "INSERT INTO t VALUES(?, ?)" 1 fiona
//   synodctl --cluster ... sql query "SELECT * FROM t" [--consistency linearizable]
//   synodctl --cluster ... sql checksum   every node's content checksum at one log position
//   synodctl --cluster ... sql shell      interactive (line editing, history, tables)
//   synodctl --cluster ... lock acquire NAME [--ttl 10s] [--lock-delay 5s] [--wait 30s] [--shared]
//            [-- COMMAND ARGS...]
//   synodctl --cluster ... lock release NAME [--session S]
//   synodctl --cluster ... lock show NAME | lock list
//   synodctl --cluster ... -        one command per line from stdin, one result line each
//
// lock acquire without a command prints the fencing token and holds the lock
// (keeping its session alive) until SIGINT/SIGTERM/SIGHUP, then releases it. With
// -- COMMAND it runs COMMAND while holding the lock (SYNOD_LOCK_NAME,
// SYNOD_LOCK_TOKEN and SYNOD_LOCK_SESSION in its environment; SIGINT/SIGTERM/SIGHUP
// are passed on to it; it gets SIGTERM should synodctl die), releases the lock
// when COMMAND exits and exits with COMMAND's exit code (128+N when a signal N
// ended it). Not granted (busy, --wait ran out): exit 1. The session lost while
// holding (the lock may be someone else's now): COMMAND gets SIGTERM, exit 2.
//
// Global options: --json, --timeout MS, --cluster-name NAME, --redirect.
// Exit codes: 0 success; 1 missing key / failed compare-and-set / not a number /
// an SQL error / nodes whose checksums differ / a lock not granted or not held;
// 2 error (usage, unreachable cluster, timeout). In stdin mode the exit code is
// the highest of the commands'.
#include <editline/readline.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "client/ctl.h"
#include "synod/client.hpp"

namespace {

using synod::client::CallOptions;
using synod::client::Client;
using synod::client::CtlCommand;
using synod::client::CtlOutput;
using synod::client::Result;

using Json = nlohmann::json;

extern "C" char** environ;

// sql checksum: a checksum command through the log (every node computes its
// database's checksum at that same position), then each node is asked, on
// its own connection, for its checksum at that position.
CtlOutput checksum(Client& client, const CtlCommand& c, const synod::client::CtlOptions& opt,
                   const synod::client::Options& options) {
  CallOptions call;
  call.timeout = std::chrono::milliseconds(opt.timeout_ms);
  const Result w = client.write(c.backend, R"({"checksum": true})", call);
  CtlOutput o;
  if (!w.ok()) {
    o.exit_code = synod::client::exit_code_of(w.code);
    o.err = "sql checksum: " + (w.message.empty() ? std::string("write failed") : w.message) + "\n";
    return o;
  }
  const Json answer = Json::parse(w.value, nullptr, false);
  if (answer.is_discarded() || !answer.contains("position") || !answer["position"].is_number()) {
    o.exit_code = 2;
    o.err = "sql checksum: backend '" + c.backend + "' does not support checksums: " + w.value +
            "\n";
    return o;
  }
  const std::uint64_t position = answer["position"].get<std::uint64_t>();
  const std::string request = Json{{"checksum_at", position}}.dump();
  std::vector<synod::client::NodeChecksum> nodes;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(opt.timeout_ms);
  for (const synod::client::NodeStatus& st : client.status(std::chrono::milliseconds(opt.timeout_ms))) {
    synod::client::NodeChecksum n;
    n.id = st.id;
    n.address = st.address;
    std::string error;
    synod::client::Options one = options;
    one.attempt_timeout = options.timeout;
    auto node = Client::connect({st.address}, one, &error);
    if (!node) {
      n.error = error;
      nodes.push_back(std::move(n));
      continue;
    }
    // A node behind the position answers "not applied here yet": ask again.
    for (;;) {
      CallOptions local;
      local.timeout = std::max(std::chrono::milliseconds(100),
                               std::chrono::duration_cast<std::chrono::milliseconds>(
                                   deadline - std::chrono::steady_clock::now()));
      local.consistency = synod::client::Consistency::kLocal;
      const Result r = node->read(c.backend, request, local);
      if (!r.ok()) {
        n.error = r.message.empty() ? "no answer" : r.message;
        break;
      }
      const Json j = Json::parse(r.value, nullptr, false);
      if (!j.is_discarded() && j.contains("checksum") && j["checksum"].is_string()) {
        n.ok = true;
        n.checksum = j["checksum"].get<std::string>();
        break;
      }
      n.error = !j.is_discarded() && j.contains("error") ? j["error"].get<std::string>() : r.value;
      const bool behind = !j.is_discarded() && j.value("applied", std::uint64_t{0}) < position;
      if (!behind || std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    nodes.push_back(std::move(n));
  }
  return synod::client::format_checksums(position, nodes, opt.json);
}

void emit(const CtlOutput& o);

// sql shell: statements to the end of ';', reads as queries, the rest through
// the log; line editing and history when stdin is a terminal.
int shell(Client& client, const CtlCommand& c, const synod::client::CtlOptions& opt,
          const synod::client::Options& options) {
  const bool tty = isatty(STDIN_FILENO) != 0;
  std::string history;
  if (tty) {
    if (const char* home = std::getenv("HOME")) history = std::string(home) + "/.synod_history";
    using_history();
    if (!history.empty()) read_history(history.c_str());
    std::printf("synodctl sql shell: backend %s; statements end with ';'. .help for more.\n",
                c.backend.c_str());
  }
  auto consistency = c.consistency.value_or(synod::client::Consistency::kLocal);
  bool timer = false;
  int worst = 0;
  synod::client::SqlShellBuffer buffer;
  for (;;) {
    std::string line;
    if (tty) {
      char* raw = readline(buffer.pending() ? "   ...> " : "synod> ");
      if (raw == nullptr) break;
      line = raw;
      if (!line.empty()) add_history(raw);
      std::free(raw);
    } else if (!std::getline(std::cin, line)) {
      break;
    }
    std::string unit;
    if (!buffer.add_line(line, &unit)) continue;
    if (unit.starts_with(".")) {
      std::vector<std::string> words;
      std::string error;
      synod::client::split_words(unit, &words, &error);
      const std::string cmd = words.empty() ? "" : words[0];
      if (cmd == ".quit" || cmd == ".exit") break;
      if (cmd == ".help") {
        std::printf(
            "SQL ending with ';' runs: SELECT/WITH/VALUES/EXPLAIN as a read, the rest through the "
            "log.\n"
            ".consistency [local|linearizable]  reads' consistency (now %s)\n"
            ".checksum                          every node's checksum at one log position\n"
            ".status                            the cluster's nodes\n"
            ".timer on|off                      print each statement's time\n"
            ".quit                              leave (also Ctrl-D)\n",
            consistency == synod::client::Consistency::kLocal ? "local" : "linearizable");
      } else if (cmd == ".consistency" && words.size() == 2 &&
                 (words[1] == "local" || words[1] == "linearizable")) {
        consistency = words[1] == "local" ? synod::client::Consistency::kLocal
                                          : synod::client::Consistency::kLinearizable;
      } else if (cmd == ".timer" && words.size() == 2 && (words[1] == "on" || words[1] == "off")) {
        timer = words[1] == "on";
      } else if (cmd == ".checksum") {
        const CtlOutput o = checksum(client, c, opt, options);
        emit(o);
        worst = std::max(worst, o.exit_code);
      } else if (cmd == ".status") {
        emit(synod::client::format_status(client.status(std::chrono::milliseconds(opt.timeout_ms)),
                                          opt.json, false));
      } else {
        std::fprintf(stderr, "unknown or malformed shell command \"%s\" (.help)\n", unit.c_str());
        worst = std::max(worst, 2);
      }
      std::fflush(stdout);
      continue;
    }
    CtlCommand statement = c;
    statement.sql = unit;
    statement.params.clear();
    statement.op = synod::client::is_read_statement(unit) ? CtlCommand::Op::kSqlQuery
                                                          : CtlCommand::Op::kSqlExec;
    CallOptions call;
    call.timeout = std::chrono::milliseconds(opt.timeout_ms);
    call.consistency = consistency;
    const auto start = std::chrono::steady_clock::now();
    const Result r = statement.op == CtlCommand::Op::kSqlQuery
                         ? client.read(c.backend, synod::client::sql_payload(statement), call)
                         : client.write(c.backend, synod::client::sql_payload(statement), call);
    const CtlOutput o = synod::client::format_result(statement, r, opt.json, false);
    emit(o);
    worst = std::max(worst, o.exit_code);
    if (timer) {
      std::printf("time: %.3f ms\n", std::chrono::duration<double, std::milli>(
                                          std::chrono::steady_clock::now() - start)
                                          .count());
      std::fflush(stdout);
    }
  }
  if (tty && !history.empty()) write_history(history.c_str());
  if (buffer.pending()) {
    std::fprintf(stderr, "sql shell: the last statement has no ';' and was not run\n");
    worst = std::max(worst, 2);
  }
  return worst;
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The signals lock acquire waits for. Blocked in every thread (before the
// client's thread starts) and taken with sigtimedwait.
sigset_t lock_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGCHLD);
  return set;
}

// A signal that ends lock acquire (passed on to its command first).
bool stop_signal(int sig) { return sig == SIGINT || sig == SIGTERM || sig == SIGHUP; }

// The next of lock_signals() within ms; 0 when none came.
int wait_signal(int ms) {
  const sigset_t set = lock_signals();
  timespec ts{ms / 1000, static_cast<long>(ms % 1000) * 1000000L};
  const int sig = sigtimedwait(&set, nullptr, &ts);
  return sig > 0 ? sig : 0;
}

// lock release without --session: the lock's only holder.
CtlOutput release(Client& client, const CtlCommand& c, const synod::client::CtlOptions& opt,
                  bool line_mode) {
  CallOptions call;
  call.timeout = std::chrono::milliseconds(opt.timeout_ms);
  std::uint64_t session = c.session;
  if (session == 0) {
    CallOptions lin = call;
    lin.consistency = synod::client::Consistency::kLinearizable;
    synod::client::LockInfo info;
    const Result r = synod::client::show_lock(client, c.lock, &info, lin, c.lock_backend);
    if (!r.ok()) return synod::client::format_lock_show(r, opt.json, line_mode, 0);
    if (info.holders.size() != 1) {
      CtlOutput o;
      o.exit_code = info.holders.empty() ? 1 : 2;
      const std::string why =
          info.holders.empty()
              ? "lock " + synod::client::escape_word(c.lock, true) + " is not held"
              : "lock " + synod::client::escape_word(c.lock, true) + " has " +
                    std::to_string(info.holders.size()) +
                    " (shared) holders: name one with --session";
      if (opt.json) {
        o.out = Json{{"ok", false},
                     {"code", info.holders.empty() ? "not_found" : "bad_request"},
                     {"lock", c.lock},
                     {"error", why}}
                    .dump(-1, ' ', false, Json::error_handler_t::replace) +
                "\n";
      } else {
        (line_mode ? o.out : o.err) = why + "\n";
      }
      return o;
    }
    session = info.holders[0].session;
  }
  const synod::client::LockResult r =
      synod::client::release_lock(client, c.lock, session, call, c.lock_backend);
  return synod::client::format_lock_release(c, r, session, opt.json, line_mode);
}

// Starts the command of lock acquire -- COMMAND with the lock's variables in
// its environment and the signal mask and dispositions of a fresh process.
pid_t spawn(const CtlCommand& c, std::uint64_t token, std::uint64_t session) {
  std::vector<std::string> env_strings = {"SYNOD_LOCK_NAME=" + c.lock,
                                          "SYNOD_LOCK_TOKEN=" + std::to_string(token),
                                          "SYNOD_LOCK_SESSION=" + std::to_string(session)};
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "SYNOD_LOCK_", 11) != 0) envp.push_back(*e);
  }
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = c.lock_command;
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string cant_run = "synodctl: cannot run " + c.lock_command[0] + ": ";
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid != 0) return pid;
  // The child: only async-signal-safe calls until exec.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGINT, SIG_DFL);
  signal(SIGHUP, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGPIPE, SIG_DFL);
  // The lock ends with synodctl: so does the command.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) _exit(128 + SIGTERM);
  execvpe(argv[0], argv.data(), envp.data());
  const int err = errno;
  const char* why = strerror(err);
  if (write(STDERR_FILENO, cant_run.data(), cant_run.size()) >= 0 &&
      write(STDERR_FILENO, why, std::strlen(why)) >= 0) {
    (void)!write(STDERR_FILENO, "\n", 1);
  }
  _exit(err == ENOENT ? 127 : 126);
}

// How long to wait for a signal before looking at the session again: 100 ms,
// or less so as to look right when its valid_until passes (a lost session's
// command is stopped then, not up to 100 ms later).
int until_check(const synod::client::LockSession& session) {
  if (session.lost()) return 100;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      session.valid_until() - std::chrono::steady_clock::now());
  return static_cast<int>(std::clamp<std::int64_t>(left.count() + 1, 1, 100));
}

// lock acquire: see the top of this file.
int acquire(Client& client, const CtlCommand& c, const synod::client::CtlOptions& opt) {
  synod::client::LockSessionOptions so;
  so.ttl = std::chrono::milliseconds(c.ttl_ms);
  so.lock_delay = std::chrono::milliseconds(c.lock_delay_ms);
  so.backend = c.lock_backend;
  so.call_timeout = std::chrono::milliseconds(opt.timeout_ms);
  Result opened;
  auto session = synod::client::LockSession::open(client, so, &opened);
  if (!session) {
    std::fprintf(stderr, "synodctl: %s\n", opened.message.c_str());
    return synod::client::exit_code_of(opened.code) == 0 ? 2
                                                          : synod::client::exit_code_of(opened.code);
  }
  synod::client::AcquireOptions ao;
  ao.mode = c.shared ? synod::client::LockMode::kShared : synod::client::LockMode::kExclusive;
  ao.wait = c.wait_ms < 0 ? synod::client::kWaitForever : std::chrono::milliseconds(c.wait_ms);

  // Acquire on a thread of its own, so that a signal can end a long wait.
  synod::client::LockResult got;
  std::atomic<bool> done{false};
  std::thread waiter([&] {
    got = session->acquire(c.lock, ao);
    done = true;
  });
  int interrupted = 0;
  while (!done) {
    const int sig = wait_signal(50);
    if (stop_signal(sig)) {
      interrupted = sig;
      session->close();  // ends the wait (and leaves the queue with the session)
      break;
    }
  }
  waiter.join();
  if (interrupted != 0) {
    std::fprintf(stderr, "synodctl: interrupted while waiting for lock %s\n", c.lock.c_str());
    return 128 + interrupted;
  }
  if (!got.ok()) {
    emit(synod::client::format_lock_acquire(c, got, session->id(), opt.json));
    session->close();
    return synod::client::exit_code_of(got.code);
  }

  auto finish = [&](int code) {
    const synod::client::LockResult r = session->release(c.lock);
    if (!r.ok() && r.code != synod::client::Code::kSessionLost) {
      std::fprintf(stderr, "synodctl: releasing lock %s: %s (closing the session releases it)\n",
                   c.lock.c_str(), r.message.c_str());
    }
    session->close();
    return code;
  };

  if (c.lock_command.empty()) {
    emit(synod::client::format_lock_acquire(c, got, session->id(), opt.json));
    while (true) {
      const int sig = wait_signal(until_check(*session));
      if (stop_signal(sig)) return finish(0);
      if (session->lost()) {
        std::fprintf(stderr, "synodctl: lock %s lost: %s\n", c.lock.c_str(),
                     session->lost_reason().c_str());
        session->close();
        return 2;
      }
    }
  }

  const pid_t pid = spawn(c, got.token, session->id());
  if (pid < 0) {
    std::fprintf(stderr, "synodctl: fork: %s\n", std::strerror(errno));
    return finish(2);
  }
  bool lost = false;
  int status = 0;
  while (true) {
    const int sig = wait_signal(until_check(*session));
    if (stop_signal(sig)) kill(pid, sig);
    const pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) {
      status = 2 << 8;
      break;
    }
    if (!lost && session->lost()) {
      lost = true;
      std::fprintf(stderr, "synodctl: lock %s lost (%s): stopping the command\n", c.lock.c_str(),
                   session->lost_reason().c_str());
      kill(pid, SIGTERM);
    }
  }
  const int code = WIFEXITED(status)     ? WEXITSTATUS(status)
                   : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                         : 2;
  return finish(lost ? 2 : code);
}

CtlOutput run(Client& client, const CtlCommand& c, const synod::client::CtlOptions& opt,
              bool line_mode, const synod::client::Options& options) {
  CallOptions call;
  call.timeout = std::chrono::milliseconds(opt.timeout_ms);
  call.consistency = c.consistency;
  Result r;
  switch (c.op) {
    case CtlCommand::Op::kPut:
      r = client.put(c.key, c.value, call);
      break;
    case CtlCommand::Op::kGet:
      r = client.get(c.key, call);
      break;
    case CtlCommand::Op::kDel:
      r = client.del(c.key, call);
      break;
    case CtlCommand::Op::kCas:
      r = client.cas(c.key, c.absent ? std::nullopt : std::optional<std::string_view>(c.expected),
                     c.value, call);
      break;
    case CtlCommand::Op::kIncr:
      r = client.incr(c.key, c.delta, call);
      break;
    case CtlCommand::Op::kKeys:
      r = client.keys(c.prefix, c.limit, call);
      break;
    case CtlCommand::Op::kSqlExec:
      r = client.write(c.backend, synod::client::sql_payload(c), call);
      break;
    case CtlCommand::Op::kSqlQuery:
      r = client.read(c.backend, synod::client::sql_payload(c), call);
      break;
    case CtlCommand::Op::kSqlChecksum:
      return checksum(client, c, opt, options);
    case CtlCommand::Op::kSqlShell: {
      CtlOutput o;
      o.exit_code = 2;
      o.out = "error: sql shell is interactive; it cannot run in stdin mode\n";
      return o;
    }
    case CtlCommand::Op::kStatus:
      return synod::client::format_status(client.status(std::chrono::milliseconds(opt.timeout_ms)),
                                          opt.json, line_mode);
    case CtlCommand::Op::kLockShow:
      return synod::client::format_lock_show(
          synod::client::show_lock(client, c.lock, nullptr, call, c.lock_backend), opt.json,
          line_mode, wall_ms());
    case CtlCommand::Op::kLockList:
      return synod::client::format_lock_list(
          synod::client::list_locks(client, nullptr, call, c.lock_backend), opt.json, line_mode,
          wall_ms());
    case CtlCommand::Op::kLockRelease:
      return release(client, c, opt, line_mode);
    case CtlCommand::Op::kLockAcquire: {
      CtlOutput o;
      o.exit_code = 2;
      o.out = "error: lock acquire holds the lock until it ends; it cannot run in stdin mode\n";
      return o;
    }
  }
  return synod::client::format_result(c, r, opt.json, line_mode);
}

void emit(const CtlOutput& o) {
  if (!o.out.empty()) std::fwrite(o.out.data(), 1, o.out.size(), stdout);
  std::fflush(stdout);
  if (!o.err.empty()) std::fwrite(o.err.data(), 1, o.err.size(), stderr);
  std::fflush(stderr);
}

}  // namespace

int main(int argc, char** argv) {
  synod::client::CtlOptions opt;
  CtlCommand command;
  const auto parsed = synod::client::parse_ctl_args(argc, argv, &opt, &command);
  if (parsed.action == synod::client::CtlParse::Action::kExit) {
    std::fputs(parsed.out.c_str(), stdout);
    std::fputs(parsed.err.c_str(), stderr);
    return parsed.exit_code;
  }

  const bool lock_acquire = !opt.stdin_mode && command.op == CtlCommand::Op::kLockAcquire;
  if (lock_acquire) {
    // Before any thread starts, so that every thread has them blocked.
    const sigset_t set = lock_signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
  }

  synod::client::Options options;
  options.timeout = std::chrono::milliseconds(opt.timeout_ms);
  // One node may stall a whole attempt; with a short overall timeout, give
  // every node a turn.
  options.attempt_timeout = std::min(options.timeout, std::chrono::milliseconds(1000));
  options.cluster = opt.cluster_name;
  options.prefer_redirect = opt.redirect;
  std::string error;
  auto client = Client::connect({opt.cluster}, options, &error);
  if (!client) {
    std::fprintf(stderr, "synodctl: %s\n", error.c_str());
    return 2;
  }

  if (lock_acquire) return acquire(*client, command, opt);
  if (!opt.stdin_mode && command.op == CtlCommand::Op::kSqlShell) {
    return shell(*client, command, opt, options);
  }
  if (!opt.stdin_mode) {
    const CtlOutput o = run(*client, command, opt, /*line_mode=*/false, options);
    emit(o);
    return o.exit_code;
  }

  int worst = 0;
  std::string line;
  while (std::getline(std::cin, line)) {
    CtlCommand c;
    bool empty = false;
    if (!synod::client::parse_ctl_line(line, &c, &empty, &error)) {
      const CtlOutput o = synod::client::format_line_error(error, opt.json);
      emit(o);
      worst = std::max(worst, o.exit_code);
      continue;
    }
    if (empty) continue;
    const CtlOutput o = run(*client, c, opt, /*line_mode=*/true, options);
    emit(o);
    worst = std::max(worst, o.exit_code);
  }
  return worst;
}
