#include "backends/sqlcommon/sql_text.h"

#include <gtest/gtest.h>

namespace synod::sqltext {
namespace {

std::vector<std::string> kinds_and_texts(std::string_view sql, Dialect d) {
  std::vector<Token> tokens;
  std::string why;
  EXPECT_TRUE(lex(sql, d, &tokens, &why)) << why;
  std::vector<std::string> out;
  for (const Token& t : tokens) out.push_back(std::to_string(static_cast<int>(t.kind)) + ":" +
                                              std::string(t.text));
  return out;
}

TEST(SqlText, CommandShapes) {
  json statements;
  bool transaction = false;
  std::string why;
  ASSERT_TRUE(parse_command(R"(["SELECT 1", ["SELECT ?", 2]])", &statements, &transaction, &why));
  EXPECT_TRUE(transaction);
  EXPECT_EQ(statements.size(), 2u);
  ASSERT_TRUE(parse_command(R"({"statements": ["SELECT 1"], "transaction": false})", &statements,
                            &transaction, &why));
  EXPECT_FALSE(transaction);
  EXPECT_FALSE(parse_command(R"({"statements": [], "transaction": 1})", &statements, &transaction,
                             &why));
  EXPECT_FALSE(parse_command("nope", &statements, &transaction, &why));
  EXPECT_FALSE(parse_command(R"({"sql": 1})", &statements, &transaction, &why));

  std::string sql;
  json params;
  ASSERT_TRUE(split_entry(json::parse(R"(["INSERT ?", 1, "a"])"), &sql, &params, &why));
  EXPECT_EQ(sql, "INSERT ?");
  EXPECT_EQ(params, json::parse(R"([1, "a"])"));
  ASSERT_TRUE(split_entry(json::parse(R"(["INSERT :a", {"a": 1}])"), &sql, &params, &why));
  EXPECT_TRUE(params.is_object());
  EXPECT_FALSE(split_entry(json::parse("[1]"), &sql, &params, &why));
  EXPECT_FALSE(split_entry(json::parse("{}"), &sql, &params, &why));

  EXPECT_TRUE(is_checksum_command(json::parse(R"({"checksum": true})")));
  EXPECT_FALSE(is_checksum_command(json::parse(R"({"checksum": false})")));
  EXPECT_FALSE(is_checksum_command(json::parse(R"({"checksum": true, "x": 1})")));
  EXPECT_FALSE(is_checksum_command(json::parse(R"(["checksum"])")));
}

TEST(SqlText, Base64) {
  const unsigned char bytes[] = {'f', 'o', 'o', 'b', 'a', 'r'};
  EXPECT_EQ(base64(bytes, 0), "");
  EXPECT_EQ(base64(bytes, 1), "Zg==");
  EXPECT_EQ(base64(bytes, 2), "Zm8=");
  EXPECT_EQ(base64(bytes, 6), "Zm9vYmFy");
}

TEST(SqlText, LexesLiteralsCommentsAndPlaceholders) {
  // Words inside literals, quoted identifiers and comments are not words.
  auto w = words([] {
    std::vector<Token> t;
    std::string why;
    lex("SELECT 'now()', \"uuid\" , x -- random()\n /* sleep(1) */ FROM t WHERE a = now()",
        Dialect::kPostgres, &t, &why);
    return t;
  }());
  EXPECT_EQ(w.called, std::vector<std::string>{"now"});
  EXPECT_EQ(w.bare, (std::vector<std::string>{"select", "x", "from", "t", "where", "a"}));

  // PostgreSQL: casts are not named parameters, $1 and $tag$ strings.
  EXPECT_EQ(kinds_and_texts("a::text = :b AND c = $1 AND d = $x$ it's ; $x$", Dialect::kPostgres),
            (std::vector<std::string>{"0:a", "8:::", "0:text", "8:=", "6::b", "0:AND", "0:c",
                                      "8:=", "5:$1", "0:AND", "0:d", "8:=", "2:$x$ it's ; $x$"}));
  // E'' strings with backslash escapes; nested block comments.
  EXPECT_EQ(kinds_and_texts("E'a\\'b' /* x /* y */ z */ ?", Dialect::kPostgres),
            (std::vector<std::string>{"2:E'a\\'b'", "4:?"}));
  // MySQL: backslash escapes, "..." strings, `identifiers`, # comments.
  EXPECT_EQ(kinds_and_texts("'a\\'b' \"c\" `d``e` # x\n ?", Dialect::kMySql),
            (std::vector<std::string>{"2:'a\\'b'", "2:\"c\"", "1:`d``e`", "4:?"}));
  // MySQL needs a space after --; "1--1" is arithmetic.
  EXPECT_EQ(kinds_and_texts("1--1", Dialect::kMySql).size(), 4u);

  std::vector<Token> t;
  std::string why;
  EXPECT_FALSE(lex("SELECT 'open", Dialect::kMySql, &t, &why));
  EXPECT_NE(why.find("unterminated"), std::string::npos);
  EXPECT_FALSE(lex("SELECT /* open", Dialect::kPostgres, &t, &why));
  EXPECT_FALSE(lex("SELECT $$ open", Dialect::kPostgres, &t, &why));
  EXPECT_FALSE(lex("SELECT /*!50000 UUID() */", Dialect::kMySql, &t, &why));
  EXPECT_NE(why.find("executable comments"), std::string::npos);
}

TEST(SqlText, SplitsStatements) {
  std::vector<std::string> out;
  std::string why;
  ASSERT_TRUE(split_statements(" INSERT INTO t VALUES ('a;b'); -- c;\n ; SELECT 1 ;",
                               Dialect::kMySql, &out, &why));
  EXPECT_EQ(out, (std::vector<std::string>{"INSERT INTO t VALUES ('a;b')", "SELECT 1"}));
  ASSERT_TRUE(split_statements("  -- only a comment", Dialect::kPostgres, &out, &why));
  EXPECT_TRUE(out.empty());
}

TEST(SqlText, BindsPlaceholders) {
  std::string sql, why;
  std::vector<json> values;
  ASSERT_TRUE(bind_placeholders("INSERT INTO t VALUES (?, '?', ?)", Dialect::kPostgres,
                                json::parse(R"([1, "x"])"), &sql, &values, &why))
      << why;
  EXPECT_EQ(sql, "INSERT INTO t VALUES ($1, '?', $2)");
  EXPECT_EQ(values, (std::vector<json>{1, "x"}));

  ASSERT_TRUE(bind_placeholders("SELECT :a, :b::text, :a", Dialect::kPostgres,
                                json::parse(R"({"a": 1, "b": "two"})"), &sql, &values, &why));
  EXPECT_EQ(sql, "SELECT $1, $2::text, $1");
  EXPECT_EQ(values, (std::vector<json>{1, "two"}));

  ASSERT_TRUE(bind_placeholders("SELECT :a, :b, :a", Dialect::kMySql,
                                json::parse(R"({"a": 1, "b": "two"})"), &sql, &values, &why));
  EXPECT_EQ(sql, "SELECT ?, ?, ?");
  EXPECT_EQ(values, (std::vector<json>{1, "two", 1}));

  ASSERT_TRUE(bind_placeholders("SELECT $2, $1", Dialect::kPostgres, json::parse("[1, 2]"), &sql,
                                &values, &why));
  EXPECT_EQ(sql, "SELECT $2, $1");
  EXPECT_EQ(values, (std::vector<json>{1, 2}));

  ASSERT_TRUE(bind_placeholders("SELECT 1", Dialect::kMySql, json::array(), &sql, &values, &why));
  EXPECT_TRUE(values.empty());

  EXPECT_FALSE(bind_placeholders("SELECT ?, ?", Dialect::kMySql, json::parse("[1]"), &sql,
                                 &values, &why));
  EXPECT_FALSE(bind_placeholders("SELECT ?", Dialect::kMySql, json::parse("[1, 2]"), &sql,
                                 &values, &why));
  EXPECT_FALSE(bind_placeholders("SELECT :a", Dialect::kMySql, json::parse(R"({"b": 1})"), &sql,
                                 &values, &why));
  EXPECT_NE(why.find(":a"), std::string::npos);
  EXPECT_FALSE(bind_placeholders("SELECT :a", Dialect::kMySql, json::parse("[1]"), &sql, &values,
                                 &why));
  EXPECT_FALSE(bind_placeholders("SELECT ?", Dialect::kMySql, json::parse(R"({"a": 1})"), &sql,
                                 &values, &why));
  EXPECT_FALSE(bind_placeholders("SELECT ?, $1", Dialect::kPostgres, json::parse("[1]"), &sql,
                                 &values, &why));
  EXPECT_FALSE(bind_placeholders("SELECT $3", Dialect::kPostgres, json::parse("[1]"), &sql,
                                 &values, &why));
}

}  // namespace
}  // namespace synod::sqltext

#include "backends/sqlcommon/digest.h"

namespace synod::sqltext {
namespace {

TEST(SqlText, DigestIsSha256OfFramedFields) {
  Digest empty;
  EXPECT_EQ(empty.hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Digest a, b, c;
  a.field('t', "ab");
  a.field('t', "c");
  b.field('t', "a");
  b.field('t', "bc");
  c.field('t', "ab");
  c.field('t', "c");
  const std::string ha = a.hex();
  EXPECT_EQ(ha.size(), 64u);
  EXPECT_NE(ha, b.hex());
  EXPECT_EQ(ha, c.hex());
}

}  // namespace
}  // namespace synod::sqltext
