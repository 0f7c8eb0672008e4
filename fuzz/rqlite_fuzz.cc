// rqlite_fuzz: the HTTP API's request translation (src/http/rqlite.h), which
// every HTTP request to --http-listen goes through, and its result rendering.
//
// Input: byte 0 picks the method and path and a few query parameters; the rest
// is the body (and, for GET /db/query, the q= text).
//
// Checks: no crash; a request is either refused with a 4xx status and a reason,
// or becomes a payload that is valid JSON in one of the two shapes the sqlite
// backend takes (an array, or {"statements": [...], "transaction": false});
// rendering any backend answer (the body itself, or a made-up result) gives
// JSON.
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "fuzz/fuzz.h"
#include "http/rqlite.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using nlohmann::json;
  if (size == 0) return 0;
  const std::uint8_t k = data[0];
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  static const char* kMethods[] = {"GET", "POST", "PUT", "DELETE"};
  static const char* kPaths[] = {"/db/execute", "/db/query", "/status", ""};
  std::multimap<std::string, std::string> params;
  if (k & 0x10) params.emplace("transaction", "");
  if (k & 0x20) params.emplace("associative", "");
  if (k & 0x40) params.emplace("level", (k & 0x80) ? "none" : body.substr(0, 8));
  if (k & 0x80) params.emplace("q", body);
  int status = 0;
  std::string error;
  auto r = synod::http::parse_request(kMethods[k & 3], kPaths[(k >> 2) & 3], params, body,
                                      &status, &error);
  if (!r) {
    FUZZ_CHECK(status >= 400 && status < 500 && !error.empty(), "refused without a 4xx reason");
    FUZZ_CHECK(json::accept(synod::http::render_error(error)), "an error body is not JSON");
    return 0;
  }
  if (r->info != synod::http::ApiRequest::Info::kNone) {
    // /status, /nodes, /readyz: answered from the node's status (a made-up
    // one here, with the body as its strings): JSON, or /readyz's text.
    synod::proto::NodeStatus s;
    s.set_id(k);
    s.set_address(body);
    s.set_role(body);
    s.set_apply_error(body);
    s.set_leader(k & 1);
    s.add_peers()->set_address(body);
    const synod::http::InfoAnswer a = synod::http::render_info(*r, s);
    FUZZ_CHECK(a.status == 200 || a.status == 503, "an info answer with status %d", a.status);
    FUZZ_CHECK(r->info == synod::http::ApiRequest::Info::kReady || json::accept(a.body),
               "an info answer that is not JSON");
    return 0;
  }
  const json payload = json::parse(r->payload, nullptr, false);
  FUZZ_CHECK(!payload.is_discarded(), "a payload that is not JSON");
  FUZZ_CHECK(payload.is_array() ||
                 (payload.is_object() && payload["statements"].is_array() &&
                  payload["transaction"] == false),
             "a payload of an unknown shape");
  FUZZ_CHECK(json::accept(synod::http::render_results(*r, body, 0.5)),
             "rendering the body as a result is not JSON");
  const std::string made_up =
      json{{"results", json::array({json{{"columns", json::array({"a", "b"})},
                                         {"types", json::array({"", "text"})},
                                         {"values", json::array({json::array({1, body})})}}})}}
          .dump(-1, ' ', false, json::error_handler_t::replace);
  FUZZ_CHECK(json::accept(synod::http::render_results(*r, made_up, 0.5)),
             "rendering a result is not JSON");
  return 0;
}
