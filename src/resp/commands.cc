#include "resp/commands.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>

#include "resp/resp.h"

namespace synod::resp {

namespace {

using proto::KvCommand;
using proto::KvResult;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

Plan reply_plan(std::string reply) {
  Plan p;
  p.reply = std::move(reply);
  return p;
}

Plan error_plan(std::string_view message) {
  std::string out;
  error(&out, message);
  return reply_plan(std::move(out));
}

Plan wrong_arity(const std::string& name) {
  return error_plan("ERR wrong number of arguments for '" + name + "' command");
}

Plan request(Plan::Kind kind, const KvCommand& cmd,
             std::function<void(const KvResult&, std::string*)> render) {
  Plan p;
  p.kind = kind;
  p.payload = cmd.SerializeAsString();
  p.render = std::move(render);
  return p;
}

// A result the command did not expect: the backend's own words.
void backend_error(const KvResult& r, std::string* out) {
  if (r.code() == KvResult::NOT_A_NUMBER) {
    error(out, "ERR value is not an integer or out of range");
  } else {
    error(out, "ERR " + (r.error().empty() ? KvResult::Code_Name(r.code()) : r.error()));
  }
}

bool parse_int64(std::string_view s, std::int64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

Plan plan_set(const std::vector<std::string>& args) {
  bool nx = false, xx = false;
  for (std::size_t i = 3; i < args.size(); ++i) {
    const std::string opt = lower(args[i]);
    if (opt == "nx") {
      nx = true;
    } else if (opt == "xx") {
      xx = true;
    } else if (opt == "ex" || opt == "px" || opt == "exat" || opt == "pxat" ||
               opt == "keepttl") {
      std::string upper = opt;
      std::transform(upper.begin(), upper.end(), upper.begin(),
                     [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
      return error_plan("ERR SET option " + upper +
                        " is not supported: keys do not expire in Synod");
    } else if (opt == "get") {
      return error_plan("ERR SET option GET is not supported by Synod");
    } else {
      return error_plan("ERR syntax error");
    }
  }
  if (nx && xx) return error_plan("ERR syntax error");
  KvCommand c;
  c.set_key(args[1]);
  c.set_value(args[2]);
  if (nx) {
    c.set_op(KvCommand::CAS);
    c.set_expect_absent(true);
  } else if (xx) {
    c.set_op(KvCommand::PUT);
    c.set_require_present(true);
  } else {
    // A blind write: MPUT does not read the old value (PUT would, to report
    // `found`, which SET does not need): about a tenth of a leader's CPU.
    c.clear_key();
    c.clear_value();
    c.set_op(KvCommand::MPUT);
    c.add_keys(args[1]);
    c.add_values(args[2]);
  }
  return request(Plan::Kind::kWrite, c, [](const KvResult& r, std::string* out) {
    if (r.code() == KvResult::OK) {
      simple(out, "OK");
    } else if (r.code() == KvResult::CAS_FAILED) {
      null_bulk(out);  // NX or XX did not hold
    } else {
      backend_error(r, out);
    }
  });
}

Plan plan_incr(const std::vector<std::string>& args, std::int64_t sign, bool by) {
  std::int64_t delta = 1;
  if (by && !parse_int64(args[2], &delta)) {
    return error_plan("ERR value is not an integer or out of range");
  }
  if (sign < 0) {
    if (delta == std::numeric_limits<std::int64_t>::min()) {
      return error_plan("ERR decrement would overflow");
    }
    delta = -delta;
  }
  KvCommand c;
  c.set_op(KvCommand::INCREMENT);
  c.set_key(args[1]);
  c.set_delta(delta);
  return request(Plan::Kind::kWrite, c, [](const KvResult& r, std::string* out) {
    if (r.code() == KvResult::OK) {
      integer(out, r.number());
    } else if (r.code() == KvResult::NOT_A_NUMBER && r.error().rfind("overflow", 0) == 0) {
      error(out, "ERR increment or decrement would overflow");
    } else {
      backend_error(r, out);
    }
  });
}

Plan plan_config(const std::vector<std::string>& args) {
  if (args.size() < 2) return wrong_arity("config");
  const std::string sub = lower(args[1]);
  if (sub != "get") {
    return error_plan("ERR CONFIG " + args[1] + " is not supported by Synod (only CONFIG GET)");
  }
  if (args.size() < 3) return wrong_arity("config|get");
  // What tools ask for at start-up (redis-benchmark: save, appendonly),
  // answered truthfully for Synod: no snapshots to schedule, every write logged.
  std::vector<std::pair<std::string, std::string>> found;
  for (std::size_t i = 2; i < args.size(); ++i) {
    for (const auto& [k, v] : {std::pair<std::string, std::string>{"save", ""},
                               {"appendonly", "yes"},
                               {"appendfsync", "always"},
                               {"databases", "1"}}) {
      if (glob_match(lower(args[i]), k)) found.emplace_back(k, v);
    }
  }
  std::string out;
  array(&out, found.size() * 2);
  for (const auto& [k, v] : found) {
    bulk(&out, k);
    bulk(&out, v);
  }
  return reply_plan(std::move(out));
}

Plan plan_hello(const std::vector<std::string>& args) {
  if (args.size() >= 2) {
    std::int64_t version = 0;
    if (!parse_int64(args[1], &version)) {
      return error_plan("ERR Protocol version is not an integer or out of range");
    }
    if (version != 2) return error_plan("NOPROTO sorry, this protocol version is not supported");
    if (args.size() > 2) return error_plan("ERR HELLO options (AUTH, SETNAME) are not supported");
  }
  std::string out;
  array(&out, 14);
  bulk(&out, "server");
  bulk(&out, "synod");
  bulk(&out, "version");
  bulk(&out, "7.0.0");
  bulk(&out, "proto");
  integer(&out, 2);
  bulk(&out, "id");
  integer(&out, 0);
  bulk(&out, "mode");
  bulk(&out, "standalone");
  bulk(&out, "role");
  bulk(&out, "master");
  bulk(&out, "modules");
  array(&out, 0);
  return reply_plan(std::move(out));
}

}  // namespace

Plan plan_command(const std::vector<std::string>& args) {
  if (args.empty()) return error_plan("ERR empty command");
  const std::string name = lower(args[0]);
  const std::size_t n = args.size();

  if (name == "ping") {
    if (n == 1) return reply_plan("+PONG\r\n");
    if (n == 2) {
      std::string out;
      bulk(&out, args[1]);
      return reply_plan(std::move(out));
    }
    return wrong_arity(name);
  }
  if (name == "echo") {
    if (n != 2) return wrong_arity(name);
    std::string out;
    bulk(&out, args[1]);
    return reply_plan(std::move(out));
  }
  if (name == "quit") {
    Plan p = reply_plan("+OK\r\n");
    p.kind = Plan::Kind::kQuit;
    return p;
  }
  if (name == "select") {
    if (n != 2) return wrong_arity(name);
    if (args[1] == "0") return reply_plan("+OK\r\n");
    return error_plan("ERR DB index is out of range (Synod has one database, 0)");
  }
  if (name == "config") return plan_config(args);
  if (name == "command") return reply_plan("*0\r\n");  // no command table to offer
  if (name == "client") {
    const std::string sub = n >= 2 ? lower(args[1]) : "";
    if (sub == "setname" || sub == "setinfo") return reply_plan("+OK\r\n");
    if (sub == "getname") return reply_plan("$-1\r\n");
    if (sub == "id") return reply_plan(":0\r\n");
    return error_plan("ERR CLIENT " + (n >= 2 ? args[1] : std::string()) +
                      " is not supported by Synod");
  }
  if (name == "info") {
    std::string out;
    bulk(&out,
         "# Server\r\nredis_version:7.0.0\r\nsynod:1\r\nredis_mode:standalone\r\n"
         "# Persistence\r\naof_enabled:1\r\n# Replication\r\nrole:master\r\n");
    return reply_plan(std::move(out));
  }
  if (name == "hello") return plan_hello(args);

  if (name == "set") {
    if (n < 3) return wrong_arity(name);
    return plan_set(args);
  }
  if (name == "setnx") {
    if (n != 3) return wrong_arity(name);
    KvCommand c;
    c.set_op(KvCommand::CAS);
    c.set_key(args[1]);
    c.set_value(args[2]);
    c.set_expect_absent(true);
    return request(Plan::Kind::kWrite, c, [](const KvResult& r, std::string* out) {
      if (r.code() == KvResult::OK || r.code() == KvResult::CAS_FAILED) {
        integer(out, r.code() == KvResult::OK ? 1 : 0);
      } else {
        backend_error(r, out);
      }
    });
  }
  if (name == "get" || name == "strlen") {
    if (n != 2) return wrong_arity(name);
    KvCommand c;
    c.set_op(KvCommand::GET);
    c.set_key(args[1]);
    const bool strlen = name == "strlen";
    return request(Plan::Kind::kRead, c, [strlen](const KvResult& r, std::string* out) {
      if (r.code() == KvResult::OK) {
        if (strlen) {
          integer(out, static_cast<std::int64_t>(r.value().size()));
        } else {
          bulk(out, r.value());
        }
      } else if (r.code() == KvResult::NOT_FOUND) {
        if (strlen) {
          integer(out, 0);
        } else {
          null_bulk(out);
        }
      } else {
        backend_error(r, out);
      }
    });
  }
  if (name == "del" || name == "unlink") {
    if (n < 2) return wrong_arity(name);
    KvCommand c;
    c.set_op(KvCommand::MDELETE);
    for (std::size_t i = 1; i < n; ++i) c.add_keys(args[i]);
    return request(Plan::Kind::kWrite, c, [](const KvResult& r, std::string* out) {
      if (r.code() == KvResult::OK) {
        integer(out, r.number());
      } else {
        backend_error(r, out);
      }
    });
  }
  if (name == "exists" || name == "mget") {
    if (n < 2) return wrong_arity(name);
    KvCommand c;
    c.set_op(KvCommand::MGET);
    for (std::size_t i = 1; i < n; ++i) c.add_keys(args[i]);
    const bool exists = name == "exists";
    return request(Plan::Kind::kRead, c, [exists](const KvResult& r, std::string* out) {
      if (r.code() != KvResult::OK) return backend_error(r, out);
      if (exists) {
        integer(out, std::count_if(r.entries().begin(), r.entries().end(),
                                   [](const proto::KvEntry& e) { return e.found(); }));
        return;
      }
      array(out, static_cast<std::size_t>(r.entries_size()));
      for (const auto& e : r.entries()) {
        if (e.found()) {
          bulk(out, e.value());
        } else {
          null_bulk(out);
        }
      }
    });
  }
  if (name == "mset") {
    if (n < 3 || n % 2 == 0) return wrong_arity(name);
    KvCommand c;
    c.set_op(KvCommand::MPUT);
    for (std::size_t i = 1; i < n; i += 2) {
      c.add_keys(args[i]);
      c.add_values(args[i + 1]);
    }
    return request(Plan::Kind::kWrite, c, [](const KvResult& r, std::string* out) {
      if (r.code() == KvResult::OK) {
        simple(out, "OK");
      } else {
        backend_error(r, out);
      }
    });
  }
  if (name == "incr" || name == "decr") {
    if (n != 2) return wrong_arity(name);
    return plan_incr(args, name == "incr" ? 1 : -1, false);
  }
  if (name == "incrby" || name == "decrby") {
    if (n != 3) return wrong_arity(name);
    return plan_incr(args, name == "incrby" ? 1 : -1, true);
  }
  if (name == "keys") {
    if (n != 2) return wrong_arity(name);
    KvCommand c;
    c.set_op(KvCommand::LIST);
    c.set_prefix(glob_prefix(args[1]));
    std::string pattern = args[1];
    return request(Plan::Kind::kRead, c,
                   [pattern = std::move(pattern)](const KvResult& r, std::string* out) {
                     if (r.code() != KvResult::OK) return backend_error(r, out);
                     std::vector<const std::string*> keys;
                     for (const auto& k : r.keys()) {
                       if (glob_match(pattern, k)) keys.push_back(&k);
                     }
                     array(out, keys.size());
                     for (const auto* k : keys) bulk(out, *k);
                   });
  }
  if (name == "dbsize") {
    if (n != 1) return wrong_arity(name);
    KvCommand c;
    c.set_op(KvCommand::COUNT);
    return request(Plan::Kind::kRead, c, [](const KvResult& r, std::string* out) {
      if (r.code() != KvResult::OK) return backend_error(r, out);
      integer(out, r.number());
    });
  }

  // Redis's wording, so tools that parse it keep working.
  std::string msg = "ERR unknown command '" + args[0] + "', with args beginning with:";
  for (std::size_t i = 1; i < n && msg.size() < 128; ++i) msg += " '" + args[i] + "'";
  for (char& c : msg) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  return error_plan(msg);
}

std::string glob_prefix(std::string_view pattern) {
  std::string out;
  for (char c : pattern) {
    if (c == '*' || c == '?' || c == '[' || c == '\\') break;
    out.push_back(c);
  }
  return out;
}

bool glob_match(std::string_view p, std::string_view t) {
  // Iterative, with backtracking to the last '*' only: linear in practice and
  // never exponential, whatever the pattern.
  std::size_t pi = 0, ti = 0;
  std::size_t star_p = std::string_view::npos, star_t = 0;
  while (ti < t.size()) {
    bool matched = false;
    std::size_t next_p = pi;
    if (pi < p.size()) {
      const char c = p[pi];
      if (c == '*') {
        while (pi < p.size() && p[pi] == '*') ++pi;
        if (pi == p.size()) return true;
        star_p = pi;
        star_t = ti;
        continue;
      }
      if (c == '?') {
        matched = true;
        next_p = pi + 1;
      } else if (c == '[') {
        std::size_t j = pi + 1;
        const bool negate = j < p.size() && p[j] == '^';
        if (negate) ++j;
        bool in = false;
        bool closed = false;
        while (j < p.size()) {
          if (p[j] == ']') {
            closed = true;
            break;
          }
          if (p[j] == '\\' && j + 1 < p.size()) {
            if (p[j + 1] == t[ti]) in = true;
            j += 2;
          } else if (j + 2 < p.size() && p[j + 1] == '-' && p[j + 2] != ']') {
            char lo = p[j], hi = p[j + 2];
            if (lo > hi) std::swap(lo, hi);
            if (t[ti] >= lo && t[ti] <= hi) in = true;
            j += 3;
          } else {
            if (p[j] == t[ti]) in = true;
            ++j;
          }
        }
        matched = in != negate;
        next_p = closed ? j + 1 : j;
      } else if (c == '\\' && pi + 1 < p.size()) {
        matched = p[pi + 1] == t[ti];
        next_p = pi + 2;
      } else {
        matched = c == t[ti];
        next_p = pi + 1;
      }
    }
    if (matched) {
      pi = next_p;
      ++ti;
    } else if (star_p != std::string_view::npos) {
      pi = star_p;
      ti = ++star_t;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

}  // namespace synod::resp
