// The synod server's configuration: command-line flags, or the same keys in a
// TOML file given with --config (flags given on the command line win).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "paxos/options.h"

namespace synod::server {

struct Config {
  std::uint32_t id = 0;
  std::string data_dir;
  std::string listen;                         // HOST:PORT for peers and clients
  std::map<std::uint32_t, std::string> peers;  // every member, this node included
  std::vector<std::string> backends;           // names; e.g. "kv"
  // backend name -> option -> value, from --backend-option NAME.key=value
  std::map<std::string, std::map<std::string, std::string>> backend_options;
  std::string plugin_dir;  // empty: the built-in default
  std::string cluster = "synod";  // cluster name; its hash is the cluster id on the wire
  std::uint64_t cluster_id = 0;
  std::uint32_t tick_ms = 10;
  std::uint32_t request_timeout_ms = 5000;  // default per request
  std::uint64_t session_ttl_ms = 3'600'000;  // idle exactly-once sessions expire (log time)
  // With backend "lock" loaded, the leader proposes {"op":"tick"} to it when no
  // lock command has been proposed for this long and a lock session exists, so
  // that sessions expire without client traffic (docs/LOCKS.md). 0: never.
  std::uint32_t lock_tick_ms = 1000;
  std::string log_level = "info";
  // The Redis (RESP2) front end: off when empty.
  std::string redis_listen;
  std::string redis_backend = "kv";     // a kv-protocol backend it serves
  bool redis_linearizable_reads = true;  // false: reads from this node's state
  // The rqlite-compatible HTTP API: off when empty.
  std::string http_listen;
  std::string http_backend = "sqlite";
  // TEST ONLY, unsafe: a follower serves LINEARIZABLE reads from its own state.
  // Exists so the fault-injection suite can prove its checker catches stale reads.
  bool unsafe_follower_reads = false;
  paxos::Options paxos;
};

// Parses argv. On --help prints usage and sets *exit_code = 0; on an error sets
// *error (a sentence naming the bad flag) and *exit_code = 2. Returns true when
// the server should start.
bool parse_config(int argc, char** argv, Config* out, std::string* error, int* exit_code);

// Checks a Config for consistency (id among peers, listen matches, backends set).
bool validate(Config* c, std::string* error);

// "1=127.0.0.1:7001,2=..." -> map; false with *error on bad syntax.
bool parse_peers(const std::string& text, std::map<std::uint32_t, std::string>* out,
                 std::string* error);

// FNV-1a 64 of the cluster name (never 0).
std::uint64_t cluster_id_of(const std::string& name);

}  // namespace synod::server
