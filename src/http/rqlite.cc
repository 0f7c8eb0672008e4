#include "http/rqlite.h"

#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>

namespace synod::http {
namespace {

using nlohmann::json;

bool has(const std::multimap<std::string, std::string>& params, const std::string& key) {
  return params.find(key) != params.end();
}

std::string value_of(const std::multimap<std::string, std::string>& params,
                     const std::string& key) {
  auto it = params.find(key);
  return it == params.end() ? "" : it->second;
}

// The body as a statement array; false with *error.
bool statements_of(const std::string& body, json* out, std::string* error) {
  *out = json::parse(body, nullptr, false);
  if (out->is_discarded()) {
    *error = "the request body is not JSON";
    return false;
  }
  if (!out->is_array()) {
    *error = "the request body must be a JSON array of statements";
    return false;
  }
  if (out->empty()) {
    *error = "no statements";
    return false;
  }
  return true;
}

}  // namespace

std::optional<ApiRequest> parse_request(const std::string& method, const std::string& path,
                                        const std::multimap<std::string, std::string>& params,
                                        const std::string& body, int* status, std::string* error) {
  ApiRequest r;
  r.timings = has(params, "timings");
  r.pretty = has(params, "pretty");
  r.associative = has(params, "associative");
  if (path == "/db/execute") {
    if (method != "POST") {
      *status = 405;
      *error = "method not allowed: /db/execute takes POST";
      return std::nullopt;
    }
    json statements;
    if (!statements_of(body, &statements, error)) {
      *status = 400;
      return std::nullopt;
    }
    r.write = true;
    // Without ?transaction rqlite runs each statement on its own.
    r.payload = has(params, "transaction")
                    ? statements.dump()
                    : json{{"statements", statements}, {"transaction", false}}.dump();
    return r;
  }
  if (path == "/db/query") {
    json statements;
    if (method == "GET") {
      if (!has(params, "q")) {
        *status = 400;
        *error = "GET /db/query needs ?q=SELECT...";
        return std::nullopt;
      }
      statements = json::array({value_of(params, "q")});
    } else if (method == "POST") {
      if (!statements_of(body, &statements, error)) {
        *status = 400;
        return std::nullopt;
      }
    } else {
      *status = 405;
      *error = "method not allowed: /db/query takes GET or POST";
      return std::nullopt;
    }
    const std::string level = has(params, "level") ? value_of(params, "level") : "weak";
    if (level == "none") {
      r.level = ReadLevel::kNone;
    } else if (level == "weak" || level == "linearizable" || level == "strong") {
      // The leader under its lease: at least as strong as rqlite's weak.
      r.level = ReadLevel::kLinearizable;
    } else {
      *status = 400;
      *error = "unknown level '" + level + "' (none, weak, linearizable, strong)";
      return std::nullopt;
    }
    if (has(params, "freshness")) {
      auto ms = parse_go_duration(value_of(params, "freshness"));
      if (!ms) {
        *status = 400;
        *error = "freshness '" + value_of(params, "freshness") +
                 "' is not a duration (e.g. 500ms, 1s, 1m30s)";
        return std::nullopt;
      }
      // Like rqlite: it bounds level=none reads; the others are fresh anyway.
      if (r.level == ReadLevel::kNone) r.freshness_ms = *ms;
      r.freshness_strict = has(params, "freshness_strict");
    }
    try {
      r.payload = statements.dump();
    } catch (const json::type_error&) {  // q= straight from the URL
      *status = 400;
      *error = "the query is not valid UTF-8";
      return std::nullopt;
    }
    return r;
  }
  if (path == "/status" || path == "/nodes" || path == "/readyz") {
    if (method != "GET") {
      *status = 405;
      *error = "method not allowed: " + path + " takes GET";
      return std::nullopt;
    }
    r.info = path == "/status"  ? ApiRequest::Info::kStatus
             : path == "/nodes" ? ApiRequest::Info::kNodes
                                : ApiRequest::Info::kReady;
    r.ready_skip_leader = has(params, "noleader");
    return r;
  }
  *status = 404;
  *error = "not found: " + path +
           " (the API has /db/execute, /db/query, /status, /nodes and /readyz)";
  return std::nullopt;
}

std::optional<std::int64_t> parse_go_duration(const std::string& text) {
  if (text.empty()) return std::nullopt;
  if (text == "0") return 0;
  double ns = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
      ++i;
    }
    if (i == start) return std::nullopt;
    double number = 0;
    try {
      std::size_t used = 0;
      number = std::stod(text.substr(start, i - start), &used);
      if (used != i - start) return std::nullopt;
    } catch (const std::exception&) {
      return std::nullopt;
    }
    const std::size_t unit_start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    const std::string unit = text.substr(unit_start, i - unit_start);
    double scale = 0;
    if (unit == "ns") scale = 1;
    else if (unit == "us" || unit == "\u00b5s") scale = 1e3;
    else if (unit == "ms") scale = 1e6;
    else if (unit == "s") scale = 1e9;
    else if (unit == "m") scale = 60e9;
    else if (unit == "h") scale = 3600e9;
    else return std::nullopt;
    ns += number * scale;
  }
  if (ns > 1e18) return std::nullopt;
  return static_cast<std::int64_t>(std::ceil(ns / 1e6));
}

InfoAnswer render_info(const ApiRequest& request, const proto::NodeStatus& s) {
  InfoAnswer a;
  switch (request.info) {
    case ApiRequest::Info::kStatus: {
      json peers = json::array();
      for (const auto& p : s.peers()) {
        peers.push_back({{"id", p.id()}, {"address", p.address()}, {"connected", p.connected()}});
      }
      json backends = json::array();
      for (const auto& b : s.backends()) backends.push_back(b);
      json node{{"id", s.id()},
                {"address", s.address()},
                {"role", s.role()},
                {"leader", s.leader()},
                {"ballot", {{"round", s.ballot().round()}, {"node", s.ballot().node()}}},
                {"commit", s.commit()},
                {"applied", s.applied()},
                {"known_commit", s.known_commit()},
                {"catching_up", s.catching_up()},
                {"leader_contact_ms", s.leader_contact_ms()},
                {"apply_error", s.apply_error()},
                {"backends", backends},
                {"peers", peers},
                {"syncs", s.syncs()},
                {"bytes_synced", s.bytes_synced()}};
      a.body = json{{"node", std::move(node)}}.dump(request.pretty ? 4 : -1, ' ', false, json::error_handler_t::replace);
      return a;
    }
    case ApiRequest::Info::kNodes: {
      json nodes = json::object();
      nodes[std::to_string(s.id())] = {{"id", s.id()},
                                       {"addr", s.address()},
                                       {"reachable", true},
                                       {"leader", s.role() == "leader"}};
      for (const auto& p : s.peers()) {
        nodes[std::to_string(p.id())] = {{"id", p.id()},
                                         {"addr", p.address()},
                                         {"reachable", p.connected()},
                                         {"leader", p.id() == s.leader()}};
      }
      a.body = nodes.dump(request.pretty ? 4 : -1, ' ', false, json::error_handler_t::replace);
      return a;
    }
    case ApiRequest::Info::kReady: {
      a.content_type = "text/plain";
      a.body = "[+]node ok\n";
      bool ready = true;
      if (!request.ready_skip_leader) {
        const bool leader = s.leader() != 0;
        a.body += leader ? "[+]leader ok\n" : "[-]leader not ok: no leader known\n";
        ready = ready && leader;
      }
      if (s.catching_up()) {
        a.body += "[-]store not ok: catching up from the peers\n";
        ready = false;
      } else if (!s.apply_error().empty()) {
        a.body += "[-]store not ok: applying is stalled: " + s.apply_error() + "\n";
        ready = false;
      } else {
        a.body += "[+]store ok\n";
      }
      a.status = ready ? 200 : 503;
      return a;
    }
    case ApiRequest::Info::kNone:
      break;
  }
  a.status = 500;
  a.body = render_error("not an info request");
  return a;
}

std::string render_results(const ApiRequest& request, const std::string& backend_result,
                           double seconds) {
  json answer = json::parse(backend_result, nullptr, false);
  if (answer.is_discarded() || !answer.contains("results")) {
    return render_error("the backend's answer is not an SQL result");
  }
  json out;
  json results = json::array();
  for (auto& r : answer["results"]) {
    if (request.associative && r.contains("columns") && r.contains("values")) {
      json types = json::object();
      json rows = json::array();
      for (std::size_t c = 0; c < r["columns"].size(); ++c) {
        types[r["columns"][c].get<std::string>()] = r["types"][c];
      }
      for (const auto& v : r["values"]) {
        json row = json::object();
        for (std::size_t c = 0; c < r["columns"].size() && c < v.size(); ++c) {
          row[r["columns"][c].get<std::string>()] = v[c];
        }
        rows.push_back(std::move(row));
      }
      results.push_back(json{{"types", std::move(types)}, {"rows", std::move(rows)}});
    } else {
      results.push_back(std::move(r));
    }
  }
  out["results"] = std::move(results);
  if (request.timings) out["time"] = seconds;
  return out.dump(request.pretty ? 4 : -1, ' ', false, json::error_handler_t::replace);
}

std::string render_error(const std::string& error) {
  return json{{"error", error}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace synod::http
