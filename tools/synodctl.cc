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
//   synodctl --cluster ... -        one command per line from stdin, one result line each
//
// Global options: --json, --timeout MS, --cluster-name NAME, --redirect.
// Exit codes: 0 success; 1 missing key / failed compare-and-set / not a number /
// an SQL error;
// 2 error (usage, unreachable cluster, timeout). In stdin mode the exit code is
// the highest of the commands'.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

#include "client/ctl.h"
#include "synod/client.hpp"

namespace {

using synod::client::CallOptions;
using synod::client::Client;
using synod::client::CtlCommand;
using synod::client::CtlOutput;
using synod::client::Result;

CtlOutput run(Client& client, const CtlCommand& c, const synod::client::CtlOptions& opt,
              bool line_mode) {
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

  if (!opt.stdin_mode) {
    const CtlOutput o = run(*client, command, opt, /*line_mode=*/false);
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
    const CtlOutput o = run(*client, c, opt, /*line_mode=*/true);
    emit(o);
    worst = std::max(worst, o.exit_code);
  }
  return worst;
}
