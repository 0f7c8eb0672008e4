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
  EXPECT_FALSE(parse("GET", "/db/query", {{"q", "x"}, {"freshness", "1s"}}, "", &status, &error));
  EXPECT_EQ(status, 400);
  // Found by rqlite_fuzz: q= bytes that are not UTF-8 threw from dump().
  EXPECT_FALSE(parse("GET", "/db/query", {{"q", "SELECT '\xeb'"}}, "", &status, &error));
  EXPECT_EQ(status, 400);
  EXPECT_EQ(error, "the query is not valid UTF-8");
  EXPECT_FALSE(parse("GET", "/status", {}, "", &status, &error));
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
