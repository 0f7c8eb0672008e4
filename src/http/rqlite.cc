#include "http/rqlite.h"

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
      *status = 400;
      *error = "freshness is not supported yet; use level=none for local reads";
      return std::nullopt;
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
  *status = 404;
  *error = "not found: " + path + " (the API has /db/execute and /db/query)";
  return std::nullopt;
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
