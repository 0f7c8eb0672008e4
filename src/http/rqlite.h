// rqlite's HTTP API, translated to and from the sqlite backend's commands
// (backends/sqlite/sql_store.h). Pure: no I/O; the server is http_server.h.
//
//   POST /db/execute[?transaction][&timings][&pretty]   body: JSON array of statements
//   GET  /db/query?q=SELECT...[&level=none|weak|linearizable|strong][&associative]...
//   POST /db/query[?...]                                 body: JSON array of statements
//
// Statements are rqlite's: a string, or [SQL, positional values...], or
// [SQL, {named values}]. Results are rqlite's shapes: {"results": [...],
// "time": seconds with ?timings}; ?associative turns query results into
// {"types": {col: type}, "rows": [{col: value}]}.
#pragma once

#include <map>
#include <optional>
#include <string>

namespace synod::http {

enum class ReadLevel { kNone, kLinearizable };

struct ApiRequest {
  bool write = false;
  std::string payload;  // the sqlite backend's command or read request
  ReadLevel level = ReadLevel::kLinearizable;
  bool associative = false;
  bool timings = false;
  bool pretty = false;
};

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
