// rqlite's HTTP API, translated to and from the sqlite backend's commands
// (backends/sqlite/sql_store.h). Pure: no I/O; the server is http_server.h.
//
//   POST /db/execute[?transaction][&timings][&pretty]   body: JSON array of statements
//   GET  /db/query?q=SELECT...[&level=none|weak|linearizable|strong][&associative]...
//   POST /db/query[?...]                                 body: JSON array of statements
//   GET  /status   the node's state (role, ballot, slots, peers, leader contact)
//   GET  /nodes    every member: id, address, reachable, leader
//   GET  /readyz   200 when the node can serve (a leader known, caught up,
//                  applying); 503 with the reason otherwise (?noleader: skip
//                  the leader check)
//
// Reads with level=none may add freshness=DURATION (Go syntax: 500ms, 1s,
// 1m30s): a follower that has not heard from the leader for longer answers
// 503 "stale read"; freshness_strict also requires it to have applied all it
// knows is chosen. The leader ignores both, as rqlite's does.
//
// Statements are rqlite's: a string, or [SQL, positional values...], or
// [SQL, {named values}]. Results are rqlite's shapes: {"results": [...],
// "time": seconds with ?timings}; ?associative turns query results into
// {"types": {col: type}, "rows": [{col: value}]}.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "proto/synod.pb.h"

namespace synod::http {

enum class ReadLevel { kNone, kLinearizable };

struct ApiRequest {
  bool write = false;
  std::string payload;  // the sqlite backend's command or read request
  ReadLevel level = ReadLevel::kLinearizable;
  bool associative = false;
  bool timings = false;
  bool pretty = false;
  std::int64_t freshness_ms = -1;  // -1: none given
  bool freshness_strict = false;
  // /status, /nodes, /readyz: answered from the node's status, not the backend.
  enum class Info { kNone, kStatus, kNodes, kReady } info = Info::kNone;
  bool ready_skip_leader = false;  // /readyz?noleader
};

// A Go duration ("1s", "500ms", "1m30s", "1.5h", "250us"), in milliseconds
// (rounded up, so that a bound under 1 ms is not 0); nullopt when malformed.
std::optional<std::int64_t> parse_go_duration(const std::string& text);

// The answer (HTTP status and JSON or text body) of an Info request.
struct InfoAnswer {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};
InfoAnswer render_info(const ApiRequest& request, const proto::NodeStatus& status);

// The HTTP request (method, path, query parameters, body) as an API request.
// nullopt with *status (400, 404, 405) and *error when it is not one.
std::optional<ApiRequest> parse_request(const std::string& method, const std::string& path,
                                        const std::multimap<std::string, std::string>& params,
                                        const std::string& body, int* status, std::string* error);

// The backend's answer (a JSON {"results": [...]}) as rqlite's response body.
std::string render_results(const ApiRequest& request, const std::string& backend_result,
                           double seconds);

// An error body: {"error": "..."}.
std::string render_error(const std::string& error);

}  // namespace synod::http
