#include "http/rqlite.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace synod::http {
namespace {

using nlohmann::json;
using Params = std::multimap<std::string, std::string>;

std::optional<ApiRequest> parse(const std::string& method, const std::string& path,
                                Params params, const std::string& body, int* status = nullptr,
                                std::string* error = nullptr) {
  int s = 0;
  std::string e;
  auto r = parse_request(method, path, params, body, status ? status : &s, error ? error : &e);
  return r;
}

TEST(Rqlite, ExecuteWithAndWithoutTransaction) {
  const std::string body = R"j(["CREATE TABLE t (a)", ["INSERT INTO t VALUES(?)", 1]])j";
  auto r = parse("POST", "/db/execute", {{"transaction", ""}}, body);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->write);
  EXPECT_EQ(json::parse(r->payload), json::parse(body));  // one transaction: the array itself
  r = parse("POST", "/db/execute", {{"timings", ""}}, body);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->timings);
  EXPECT_EQ(json::parse(r->payload),
            (json{{"statements", json::parse(body)}, {"transaction", false}}));
}

TEST(Rqlite, QueryByGetAndPostWithLevels) {
  auto r = parse("GET", "/db/query", {{"q", "SELECT * FROM t"}, {"level", "none"}}, "");
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->write);
  EXPECT_EQ(r->level, ReadLevel::kNone);
  EXPECT_EQ(json::parse(r->payload), json::array({"SELECT * FROM t"}));
  r = parse("POST", "/db/query", {{"associative", ""}}, R"j([["SELECT * FROM t WHERE a = ?", 1]])j");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->level, ReadLevel::kLinearizable);  // rqlite's default, weak, or stronger
  EXPECT_TRUE(r->associative);
  for (const char* level : {"weak", "linearizable", "strong"}) {
    r = parse("GET", "/db/query", {{"q", "SELECT 1"}, {"level", level}}, "");
    ASSERT_TRUE(r) << level;
    EXPECT_EQ(r->level, ReadLevel::kLinearizable);
  }
}

TEST(Rqlite, BadRequestsSayWhy) {
  int status = 0;
  std::string error;
  EXPECT_FALSE(parse("GET", "/db/execute", {}, "", &status, &error));
  EXPECT_EQ(status, 405);
  EXPECT_FALSE(parse("POST", "/db/execute", {}, "{not json", &status, &error));
  EXPECT_EQ(status, 400);
  EXPECT_EQ(error, "the request body is not JSON");
  EXPECT_FALSE(parse("POST", "/db/execute", {}, R"j({"a":1})j", &status, &error));
  EXPECT_EQ(error, "the request body must be a JSON array of statements");
  EXPECT_FALSE(parse("POST", "/db/execute", {}, "[]", &status, &error));
  EXPECT_EQ(error, "no statements");
  EXPECT_FALSE(parse("GET", "/db/query", {}, "", &status, &error));
  EXPECT_EQ(status, 400);
  EXPECT_FALSE(parse("GET", "/db/query", {{"q", "x"}, {"level", "eventual"}}, "", &status, &error));
  EXPECT_NE(error.find("unknown level"), std::string::npos);
  EXPECT_FALSE(parse("GET", "/db/query", {{"q", "x"}, {"freshness", "1 s"}}, "", &status, &error));
  EXPECT_EQ(status, 400);
  // Found by rqlite_fuzz: q= bytes that are not UTF-8 threw from dump().
  EXPECT_FALSE(parse("GET", "/db/query", {{"q", "SELECT '\xeb'"}}, "", &status, &error));
  EXPECT_EQ(status, 400);
  EXPECT_EQ(error, "the query is not valid UTF-8");
  EXPECT_FALSE(parse("GET", "/statistics", {}, "", &status, &error));
  EXPECT_EQ(status, 404);
}

TEST(Rqlite, ResultsInRqlitesShapes) {
  const std::string backend =
      R"j({"results":[{"columns":["id","name"],"types":["integer","text"],)j"
      R"j("values":[[1,"fiona"],[2,null]]}]})j";
  ApiRequest plain;
  EXPECT_EQ(json::parse(render_results(plain, backend, 0.5)), json::parse(backend));
  ApiRequest assoc;
  assoc.associative = true;
  assoc.timings = true;
  json a = json::parse(render_results(assoc, backend, 0.25));
  EXPECT_EQ(a["time"], 0.25);
  EXPECT_EQ(a["results"][0]["types"], (json{{"id", "integer"}, {"name", "text"}}));
  EXPECT_EQ(a["results"][0]["rows"][0], (json{{"id", 1}, {"name", "fiona"}}));
  EXPECT_EQ(a["results"][0]["rows"][1]["name"], nullptr);
  EXPECT_EQ(json::parse(render_results(plain, "garbage", 0))["error"],
            "the backend's answer is not an SQL result");
  EXPECT_EQ(render_error("x\"y"), R"j({"error":"x\"y"})j");
}

}  // namespace
}  // namespace synod::http

namespace synod::http {
namespace {

TEST(Rqlite, GoDurations) {
  EXPECT_EQ(parse_go_duration("1s"), 1000);
  EXPECT_EQ(parse_go_duration("500ms"), 500);
  EXPECT_EQ(parse_go_duration("1m30s"), 90000);
  EXPECT_EQ(parse_go_duration("1.5h"), 5400000);
  EXPECT_EQ(parse_go_duration("250us"), 1);  // rounded up: a bound, never 0
  EXPECT_EQ(parse_go_duration("0"), 0);
  for (const char* bad : {"", "1", "s", "1x", "1.2.3s", "-1s", "99999999999h"}) {
    EXPECT_FALSE(parse_go_duration(bad)) << bad;
  }
}

TEST(Rqlite, FreshnessBoundsOnlyLocalReads) {
  auto r = parse("GET", "/db/query", {{"q", "SELECT 1"}, {"level", "none"}, {"freshness", "1s"}},
                 "");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->freshness_ms, 1000);
  EXPECT_FALSE(r->freshness_strict);
  r = parse("GET", "/db/query",
            {{"q", "SELECT 1"}, {"level", "none"}, {"freshness", "1s"}, {"freshness_strict", ""}},
            "");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->freshness_strict);
  r = parse("GET", "/db/query", {{"q", "SELECT 1"}, {"freshness", "1s"}}, "");  // weak: ignored
  ASSERT_TRUE(r);
  EXPECT_EQ(r->freshness_ms, -1);
  int status = 0;
  std::string error;
  EXPECT_FALSE(parse("GET", "/db/query", {{"q", "SELECT 1"}, {"level", "none"}, {"freshness", "x"}},
                     "", &status, &error));
  EXPECT_EQ(status, 400);
  EXPECT_NE(error.find("not a duration"), std::string::npos);
}

TEST(Rqlite, StatusNodesAndReadyz) {
  proto::NodeStatus s;
  s.set_id(2);
  s.set_address("127.0.0.1:7002");
  s.set_role("follower");
  s.set_leader(1);
  s.set_applied(7);
  s.set_leader_contact_ms(12);
  auto* p = s.add_peers();
  p->set_id(1);
  p->set_address("127.0.0.1:7001");
  p->set_connected(true);
  p = s.add_peers();
  p->set_id(3);
  p->set_address("127.0.0.1:7003");
  p->set_connected(false);

  auto r = parse("GET", "/status", {}, "");
  ASSERT_TRUE(r);
  InfoAnswer a = render_info(*r, s);
  EXPECT_EQ(a.status, 200);
  const json st = json::parse(a.body);
  EXPECT_EQ(st["node"]["applied"], 7);
  EXPECT_EQ(st["node"]["leader_contact_ms"], 12);
  EXPECT_EQ(st["node"]["peers"].size(), 2u);

  r = parse("GET", "/nodes", {}, "");
  a = render_info(*r, s);
  const json nodes = json::parse(a.body);
  EXPECT_EQ(nodes["1"]["leader"], true);
  EXPECT_EQ(nodes["2"]["reachable"], true);
  EXPECT_EQ(nodes["3"]["reachable"], false);

  r = parse("GET", "/readyz", {}, "");
  a = render_info(*r, s);
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, "[+]node ok\n[+]leader ok\n[+]store ok\n");
  s.set_leader(0);
  EXPECT_EQ(render_info(*r, s).status, 503);
  r = parse("GET", "/readyz", {{"noleader", ""}}, "");
  EXPECT_EQ(render_info(*r, s).status, 200);
  s.set_apply_error("connection to MariaDB lost");
  a = render_info(*r, s);
  EXPECT_EQ(a.status, 503);
  EXPECT_NE(a.body.find("applying is stalled: connection to MariaDB lost"), std::string::npos);

  int status = 0;
  std::string error;
  EXPECT_FALSE(parse("POST", "/readyz", {}, "", &status, &error));
  EXPECT_EQ(status, 405);
}

}  // namespace
}  // namespace synod::http
