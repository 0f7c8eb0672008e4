#include "server/config.h"

#include <algorithm>

#include <CLI/CLI.hpp>

#include "net/frame.h"
#include <sstream>

namespace synod::server {

std::uint64_t cluster_id_of(const std::string& name) { return net::cluster_id_of(name); }

bool parse_peers(const std::string& text, std::map<std::uint32_t, std::string>* out,
                 std::string* error) {
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    const auto eq = item.find('=');
    const auto colon = item.rfind(':');
    if (eq == std::string::npos || colon == std::string::npos || colon < eq) {
      *error = "bad peer '" + item + "': expected ID=HOST:PORT";
      return false;
    }
    std::uint32_t id = 0;
    try {
      const unsigned long v = std::stoul(item.substr(0, eq));
      if (v == 0 || v > 0xffffffffUL) throw std::out_of_range("id");
      id = static_cast<std::uint32_t>(v);
    } catch (const std::exception&) {
      *error = "bad peer id in '" + item + "': expected a number from 1";
      return false;
    }
    if (out->contains(id)) {
      *error = "peer id " + std::to_string(id) + " given twice";
      return false;
    }
    (*out)[id] = item.substr(eq + 1);
  }
  return true;
}

bool parse_config(int argc, char** argv, Config* c, std::string* error, int* exit_code) {
  CLI::App app{"synod: a Multi-Paxos replicated state machine node"};
  app.set_config("--config", "", "TOML file with the same keys as the long flags");
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  std::string peers;
  std::vector<std::string> backend_options;
  app.add_option("--id", c->id, "This node's id (>= 1)")->required();
  app.add_option("--data-dir", c->data_dir, "Directory for the log and backends")->required();
  app.add_option("--listen", c->listen, "HOST:PORT for peers and clients")->required();
  app.add_option("--peers", peers, "Every member: 1=HOST:PORT,2=HOST:PORT,...")->required();
  app.add_option("--backend", c->backends, "Backend to load (repeatable), e.g. kv")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--backend-option", backend_options, "NAME.key=value (repeatable)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--plugin-dir", c->plugin_dir, "Where libsynod_backend_NAME.so live");
  app.add_option("--cluster", c->cluster, "Cluster name; nodes of other clusters are refused");
  app.add_option("--tick-ms", c->tick_ms, "Length of one consensus tick")->check(CLI::Range(1, 1000));
  app.add_option("--election-ticks", c->paxos.election_timeout_ticks, "Election timeout (ticks)");
  app.add_option("--heartbeat-ticks", c->paxos.heartbeat_ticks, "Heartbeat period (ticks)");
  app.add_option("--lease-ticks", c->paxos.lease_ticks, "Leader lease (ticks)");
  app.add_option("--window", c->paxos.window_slots, "Slots in flight");
  app.add_option("--batch", c->paxos.max_batch_commands, "Commands per slot");
  app.add_option("--request-timeout-ms", c->request_timeout_ms, "Default request timeout");
  app.add_option("--session-ttl-ms", c->session_ttl_ms, "Idle client sessions expire after");
  app.add_option("--lock-tick-ms", c->lock_tick_ms,
                 "With --backend lock: the leader stamps a tick into the log when no lock "
                 "command was proposed for this long, so lock sessions expire without traffic "
                 "(0: off)")
      ->check(CLI::Range(0, 3'600'000));
  app.add_option("--log-level", c->log_level, "trace, debug, info, warn, error");
  app.add_option("--redis-listen", c->redis_listen,
                 "HOST:PORT for Redis clients (RESP2) of the kv backend; off when not given");
  app.add_option("--redis-backend", c->redis_backend, "The kv backend Redis clients use");
  std::string redis_reads = "linearizable";
  app.add_option("--redis-reads", redis_reads,
                 "Consistency of Redis reads: linearizable (a follower forwards them to the "
                 "leader) or local (this node's state, possibly stale)")
      ->check(CLI::IsMember({"linearizable", "local"}));
  app.add_option("--http-listen", c->http_listen,
                 "HOST:PORT for the rqlite-compatible HTTP API of an SQL backend; off when not "
                 "given");
  app.add_option("--http-backend", c->http_backend, "The SQL backend HTTP clients use (sqlite)");
  app.add_flag("--unsafe-follower-reads", c->unsafe_follower_reads,
               "TEST ONLY: serve linearizable reads from a follower's state (breaks "
               "linearizability on purpose, for the checker's tests)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    *exit_code = app.exit(e);
    return false;
  } catch (const CLI::ParseError& e) {
    *error = e.what();
    *exit_code = 2;
    return false;
  }
  *exit_code = 2;
  c->redis_linearizable_reads = redis_reads == "linearizable";
  if (!parse_peers(peers, &c->peers, error)) return false;
  for (const std::string& o : backend_options) {
    const auto dot = o.find('.');
    const auto eq = o.find('=');
    if (dot == std::string::npos || eq == std::string::npos || eq < dot || dot == 0) {
      *error = "bad --backend-option '" + o + "': expected NAME.key=value";
      return false;
    }
    c->backend_options[o.substr(0, dot)][o.substr(dot + 1, eq - dot - 1)] = o.substr(eq + 1);
  }
  if (!validate(c, error)) return false;
  *exit_code = 0;
  return true;
}

bool validate(Config* c, std::string* error) {
  if (c->id == 0) {
    *error = "--id must be >= 1";
    return false;
  }
  if (!c->peers.contains(c->id)) {
    *error = "--peers does not list this node's id " + std::to_string(c->id);
    return false;
  }
  if (c->peers.size() > 64) {
    *error = "at most 64 members";
    return false;
  }
  if (c->backends.empty()) c->backends.push_back("kv");
  for (std::size_t i = 0; i < c->backends.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (c->backends[i] == c->backends[j]) {
        *error = "--backend " + c->backends[i] + " given twice";
        return false;
      }
    }
  }
  for (const auto& [name, opts] : c->backend_options) {
    bool known = false;
    for (const auto& b : c->backends) known = known || b == name;
    if (!known) {
      *error = "--backend-option for '" + name + "', which is not a loaded --backend";
      return false;
    }
  }
  if (!c->redis_listen.empty() &&
      std::find(c->backends.begin(), c->backends.end(), c->redis_backend) == c->backends.end()) {
    *error = "--redis-backend '" + c->redis_backend + "' is not a loaded --backend";
    return false;
  }
  if (!c->http_listen.empty() &&
      std::find(c->backends.begin(), c->backends.end(), c->http_backend) == c->backends.end()) {
    *error = "--http-backend '" + c->http_backend + "' is not a loaded --backend";
    return false;
  }
  if (c->paxos.lease_ticks >= c->paxos.election_timeout_ticks) {
    *error = "--lease-ticks must be below --election-ticks";
    return false;
  }
  c->cluster_id = cluster_id_of(c->cluster);
  return true;
}

}  // namespace synod::server
