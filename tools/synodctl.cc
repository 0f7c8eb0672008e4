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
//   synodctl --cluster ... -        one command per line from stdin, one result line each
//
// Global options: --json, --timeout MS, --cluster-name NAME, --redirect.
// Exit codes: 0 success; 1 missing key / failed compare-and-set / not a number /
// an SQL error / nodes whose checksums differ;
// 2 error (usage, unreachable cluster, timeout). In stdin mode the exit code is
// the highest of the commands'.
#include <editline/readline.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
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
