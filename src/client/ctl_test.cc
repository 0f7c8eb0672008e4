#include "client/ctl.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace synod::client {
namespace {

struct Parsed {
  CtlParse parse;
  CtlOptions options;
  CtlCommand command;
};

Parsed parse(std::vector<std::string> args) {
  args.insert(args.begin(), "synodctl");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  Parsed p;
  p.parse = parse_ctl_args(static_cast<int>(argv.size()), argv.data(), &p.options, &p.command);
  return p;
}

TEST(CtlArgs, EveryCommand) {
  Parsed p = parse({"--cluster", "a:1,b:2", "put", "k", "v"});
  ASSERT_EQ(p.parse.action, CtlParse::Action::kRun) << p.parse.err;
  EXPECT_EQ(p.options.cluster, "a:1,b:2");
  EXPECT_EQ(p.command.op, CtlCommand::Op::kPut);
  EXPECT_EQ(p.command.key, "k");
  EXPECT_EQ(p.command.value, "v");

  p = parse({"--cluster", "a:1", "get", "k", "--consistency", "linearizable"});
  ASSERT_EQ(p.parse.action, CtlParse::Action::kRun) << p.parse.err;
  EXPECT_EQ(p.command.op, CtlCommand::Op::kGet);
  EXPECT_EQ(p.command.consistency, Consistency::kLinearizable);

  p = parse({"--cluster", "a:1", "get", "k"});
  EXPECT_FALSE(p.command.consistency.has_value());

  p = parse({"--cluster", "a:1", "del", "k"});
  EXPECT_EQ(p.command.op, CtlCommand::Op::kDel);

  p = parse({"--cluster", "a:1", "cas", "k", "old", "new"});
  ASSERT_EQ(p.parse.action, CtlParse::Action::kRun) << p.parse.err;
  EXPECT_EQ(p.command.op, CtlCommand::Op::kCas);
  EXPECT_EQ(p.command.key, "k");
  EXPECT_EQ(p.command.expected, "old");
  EXPECT_EQ(p.command.value, "new");
  EXPECT_FALSE(p.command.absent);

  p = parse({"--cluster", "a:1", "cas", "--absent", "k", "new"});
  ASSERT_EQ(p.parse.action, CtlParse::Action::kRun) << p.parse.err;
  EXPECT_TRUE(p.command.absent);
  EXPECT_EQ(p.command.key, "k");
  EXPECT_EQ(p.command.value, "new");

  p = parse({"--cluster", "a:1", "incr", "k"});
  EXPECT_EQ(p.command.op, CtlCommand::Op::kIncr);
  EXPECT_EQ(p.command.delta, 1);
  p = parse({"--cluster", "a:1", "incr", "k", "-5"});
  ASSERT_EQ(p.parse.action, CtlParse::Action::kRun) << p.parse.err;
  EXPECT_EQ(p.command.delta, -5);

  p = parse({"--cluster", "a:1", "keys", "pre", "--limit", "3"});
  EXPECT_EQ(p.command.op, CtlCommand::Op::kKeys);
  EXPECT_EQ(p.command.prefix, "pre");
  EXPECT_EQ(p.command.limit, 3u);
  p = parse({"--cluster", "a:1", "keys"});
  ASSERT_EQ(p.parse.action, CtlParse::Action::kRun) << p.parse.err;
  EXPECT_EQ(p.command.prefix, "");

  p = parse({"--cluster", "a:1", "status"});
  EXPECT_EQ(p.command.op, CtlCommand::Op::kStatus);
}

TEST(CtlArgs, GlobalOptionsAnywhere) {
  Parsed p = parse({"--cluster", "a:1", "put", "k", "v", "--timeout", "2000", "--json"});
  ASSERT_EQ(p.parse.action, CtlParse::Action::kRun) << p.parse.err;
  EXPECT_EQ(p.options.timeout_ms, 2000);
  EXPECT_TRUE(p.options.json);
  EXPECT_EQ(p.command.value, "v");

  // The last of a repeated option wins (MultiOptionPolicy::TakeLast).
  p = parse({"--timeout", "10", "--cluster", "a:1", "--timeout", "20", "status"});
  EXPECT_EQ(p.options.timeout_ms, 20);

  p = parse({"--cluster", "a:1", "--cluster-name", "test", "--redirect", "status"});
  EXPECT_EQ(p.options.cluster_name, "test");
  EXPECT_TRUE(p.options.redirect);
}

TEST(CtlArgs, StdinMode) {
  Parsed p = parse({"--cluster", "a:1", "-"});
  ASSERT_EQ(p.parse.action, CtlParse::Action::kRun) << p.parse.err;
  EXPECT_TRUE(p.options.stdin_mode);
  p = parse({"--cluster", "a:1", "--json", "-"});
  EXPECT_TRUE(p.options.stdin_mode);
  EXPECT_TRUE(p.options.json);
  // A value that is "-" is just a value.
  p = parse({"--cluster", "a:1", "put", "k", "-"});
  ASSERT_EQ(p.parse.action, CtlParse::Action::kRun) << p.parse.err;
  EXPECT_FALSE(p.options.stdin_mode);
  EXPECT_EQ(p.command.value, "-");
}

TEST(CtlArgs, UsageErrorsExit2) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"put", "k", "v"},                  // no --cluster
           {"--cluster", "a:1"},               // no command
           {"--cluster", "a:1", "put", "k"},   // missing value
           {"--cluster", "a:1", "frob", "k"},  // unknown command
           {"--cluster", "a:1", "get", "k", "--consistency", "strong"},
           {"--cluster", "a:1", "cas", "k", "v"},  // 2 words without --absent
           {"--cluster", "a:1", "cas", "--absent", "k", "old", "new"},
           {"--cluster", "a:1", "incr", "k", "x"},
           {"--cluster", "a:1", "--timeout", "0", "status"},
           {"--cluster", "a:1", "whatever"},
       }) {
    Parsed p = parse(args);
    EXPECT_EQ(p.parse.action, CtlParse::Action::kExit) << args.back();
    EXPECT_EQ(p.parse.exit_code, 2) << args.back();
    EXPECT_FALSE(p.parse.err.empty()) << args.back();
  }
  Parsed help = parse({"--help"});
  EXPECT_EQ(help.parse.action, CtlParse::Action::kExit);
  EXPECT_EQ(help.parse.exit_code, 0);
  EXPECT_NE(help.parse.out.find("--cluster"), std::string::npos);
}

TEST(CtlLine, SplitsWords) {
  std::vector<std::string> w;
  std::string error;
  ASSERT_TRUE(split_words("  put  k   v ", &w, &error));
  EXPECT_EQ(w, (std::vector<std::string>{"put", "k", "v"}));
  ASSERT_TRUE(split_words(R"(put "a key" 'it''s' x\ y "q\"\n\x41")", &w, &error));
  EXPECT_EQ(w, (std::vector<std::string>{"put", "a key", "its", "x y", "q\"\nA"}));
  ASSERT_TRUE(split_words(R"(put k "")", &w, &error));
  EXPECT_EQ(w, (std::vector<std::string>{"put", "k", ""}));
  EXPECT_FALSE(split_words(R"(put "k)", &w, &error));
  EXPECT_FALSE(split_words("put 'k", &w, &error));
  EXPECT_FALSE(split_words("put k\\", &w, &error));
  EXPECT_FALSE(split_words("put \\x4", &w, &error));
}

TEST(CtlLine, ParsesCommands) {
  CtlCommand c;
  bool empty = false;
  std::string error;
  ASSERT_TRUE(parse_ctl_line("get k --consistency linearizable", &c, &empty, &error)) << error;
  EXPECT_FALSE(empty);
  EXPECT_EQ(c.op, CtlCommand::Op::kGet);
  EXPECT_EQ(c.key, "k");
  EXPECT_EQ(c.consistency, Consistency::kLinearizable);

  // Each line starts from scratch.
  ASSERT_TRUE(parse_ctl_line("get k2", &c, &empty, &error)) << error;
  EXPECT_FALSE(c.consistency.has_value());

  ASSERT_TRUE(parse_ctl_line("put \"a b\" 'c d'", &c, &empty, &error)) << error;
  EXPECT_EQ(c.key, "a b");
  EXPECT_EQ(c.value, "c d");

  ASSERT_TRUE(parse_ctl_line("incr n -2", &c, &empty, &error)) << error;
  EXPECT_EQ(c.delta, -2);

  ASSERT_TRUE(parse_ctl_line("   ", &c, &empty, &error));
  EXPECT_TRUE(empty);
  ASSERT_TRUE(parse_ctl_line("# a comment", &c, &empty, &error));
  EXPECT_TRUE(empty);

  EXPECT_FALSE(parse_ctl_line("frob k", &c, &empty, &error));
  EXPECT_FALSE(error.empty());
  EXPECT_FALSE(parse_ctl_line("put k", &c, &empty, &error));
  EXPECT_FALSE(parse_ctl_line("cas k v", &c, &empty, &error));
  EXPECT_FALSE(parse_ctl_line("put \"k v", &c, &empty, &error));
}

Result result(Code code, std::string message = {}) {
  Result r;
  r.code = code;
  r.message = std::move(message);
  return r;
}

CtlCommand command(CtlCommand::Op op, std::string key = "k") {
  CtlCommand c;
  c.op = op;
  c.key = std::move(key);
  return c;
}

TEST(CtlOutput, ExitCodes) {
  EXPECT_EQ(exit_code_of(Code::kOk), 0);
  EXPECT_EQ(exit_code_of(Code::kNotFound), 1);
  EXPECT_EQ(exit_code_of(Code::kCasFailed), 1);
  EXPECT_EQ(exit_code_of(Code::kNotANumber), 1);
  for (Code c : {Code::kTimeout, Code::kUnavailable, Code::kBadRequest, Code::kBackendError,
                 Code::kProtocolError, Code::kResultLost}) {
    EXPECT_EQ(exit_code_of(c), 2) << code_name(c);
  }
}

TEST(CtlOutput, Text) {
  Result got = result(Code::kOk);
  got.value = "hello world";
  CtlOutput o = format_result(command(CtlCommand::Op::kGet), got, false, false);
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.out, "hello world\n");
  EXPECT_EQ(o.err, "");

  o = format_result(command(CtlCommand::Op::kGet), result(Code::kNotFound, "not found"), false,
                    false);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(o.err, "not found\n");

  Result cas = result(Code::kCasFailed, "x");
  cas.found = true;
  cas.value = "now";
  o = format_result(command(CtlCommand::Op::kCas), cas, false, false);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.err.find("compare-and-set failed"), std::string::npos);
  EXPECT_NE(o.err.find("now"), std::string::npos);

  o = format_result(command(CtlCommand::Op::kPut), result(Code::kOk), false, false);
  EXPECT_EQ(o.out, "OK\n");

  Result incr = result(Code::kOk);
  incr.number = 42;
  EXPECT_EQ(format_result(command(CtlCommand::Op::kIncr), incr, false, false).out, "42\n");

  Result keys = result(Code::kOk);
  keys.keys = {"a", "b c"};
  EXPECT_EQ(format_result(command(CtlCommand::Op::kKeys), keys, false, false).out, "a\nb c\n");

  o = format_result(command(CtlCommand::Op::kPut),
                    result(Code::kUnavailable, "cluster unavailable for 2000 ms: refused"), false,
                    false);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(o.err, "error: cluster unavailable for 2000 ms: refused\n");
}

TEST(CtlOutput, LineModeIsOneLineOnStdout) {
  Result got = result(Code::kOk);
  got.value = "two\nlines";
  CtlOutput o = format_result(command(CtlCommand::Op::kGet), got, false, true);
  EXPECT_EQ(o.out, "two\\nlines\n");

  o = format_result(command(CtlCommand::Op::kGet), result(Code::kNotFound, "not found"), false,
                    true);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(o.out, "not found\n");
  EXPECT_EQ(o.err, "");

  o = format_result(command(CtlCommand::Op::kPut), result(Code::kTimeout, "timed out"), false,
                    true);
  EXPECT_EQ(o.out, "error: timed out\n");
  EXPECT_EQ(o.err, "");

  Result keys = result(Code::kOk);
  keys.keys = {"a", "b c", ""};
  o = format_result(command(CtlCommand::Op::kKeys), keys, false, true);
  EXPECT_EQ(o.out, "a \"b c\" \"\"\n");
  // The line reads back as the keys.
  std::vector<std::string> words;
  std::string error;
  ASSERT_TRUE(split_words(o.out, &words, &error));
  EXPECT_EQ(words, keys.keys);
}

TEST(CtlOutput, Json) {
  Result got = result(Code::kOk);
  got.value = "v";
  got.slot = 3;
  CtlOutput o = format_result(command(CtlCommand::Op::kGet), got, true, false);
  auto j = nlohmann::json::parse(o.out);
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["code"], "ok");
  EXPECT_EQ(j["key"], "k");
  EXPECT_EQ(j["value"], "v");
  EXPECT_EQ(o.out.find('\n'), o.out.size() - 1);  // one line

  o = format_result(command(CtlCommand::Op::kGet), result(Code::kNotFound, "not found"), true,
                    false);
  j = nlohmann::json::parse(o.out);
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["code"], "not_found");
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(o.err, "not found\n");  // still on stderr for humans

  Result incr = result(Code::kOk);
  incr.number = -4;
  j = nlohmann::json::parse(format_result(command(CtlCommand::Op::kIncr), incr, true, false).out);
  EXPECT_EQ(j["value"], -4);

  // Bytes that are not UTF-8 do not break the output.
  Result binary = result(Code::kOk);
  binary.value = "\xff\xfe";
  EXPECT_NO_THROW({
    const auto parsed =
        nlohmann::json::parse(format_result(command(CtlCommand::Op::kGet), binary, true, false).out);
    EXPECT_TRUE(parsed.is_object());
  });

  o = format_line_error("bad \"line\"\n", true);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(nlohmann::json::parse(o.out)["error"], "bad \"line\"\n");
}

std::vector<NodeStatus> three_nodes() {
  NodeStatus a;
  a.address = "127.0.0.1:7001";
  a.reachable = true;
  a.id = 1;
  a.role = "leader";
  a.ballot = Ballot{3, 1};
  a.commit = 10;
  a.applied = 9;
  NodeStatus b = a;
  b.address = "127.0.0.1:7002";
  b.id = 2;
  b.role = "follower";
  NodeStatus c;
  c.address = "127.0.0.1:7003";
  c.id = 3;
  c.error = "connect to 127.0.0.1:7003 failed: Connection refused";
  return {a, b, c};
}

TEST(CtlOutput, StatusTable) {
  CtlOutput o = format_status(three_nodes(), false, false);
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_NE(o.out.find("ID"), std::string::npos);
  EXPECT_NE(o.out.find("REACHABLE"), std::string::npos);
  EXPECT_NE(o.out.find("leader"), std::string::npos);
  EXPECT_NE(o.out.find("3.1"), std::string::npos);
  EXPECT_NE(o.out.find("Connection refused"), std::string::npos);
  EXPECT_EQ(std::count(o.out.begin(), o.out.end(), '\n'), 4);

  auto j = nlohmann::json::parse(format_status(three_nodes(), true, false).out);
  ASSERT_EQ(j["nodes"].size(), 3u);
  EXPECT_EQ(j["nodes"][0]["role"], "leader");
  EXPECT_EQ(j["nodes"][0]["ballot"]["round"], 3);
  EXPECT_EQ(j["nodes"][0]["commit"], 10);
  EXPECT_EQ(j["nodes"][0]["applied"], 9);
  EXPECT_EQ(j["nodes"][2]["reachable"], false);
  EXPECT_EQ(j["nodes"][2]["id"], 3);

  o = format_status(three_nodes(), false, true);
  EXPECT_EQ(std::count(o.out.begin(), o.out.end(), '\n'), 1);

  std::vector<NodeStatus> none(1);
  none[0].address = "x:1";
  none[0].error = "refused";
  o = format_status(none, false, false);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_FALSE(o.err.empty());
}

TEST(CtlOutput, EscapeWord) {
  EXPECT_EQ(escape_word("plain", true), "plain");
  EXPECT_EQ(escape_word("a b", true), "\"a b\"");
  EXPECT_EQ(escape_word("", true), "\"\"");
  EXPECT_EQ(escape_word("", false), "");
  EXPECT_EQ(escape_word(std::string_view("\x01\\", 2), false), "\\x01\\\\");
  EXPECT_EQ(escape_word("q\"", true), "\"q\\\"\"");
  for (std::string s : {std::string("a\"b c"), std::string("x\ny"), std::string("\x7f'z")}) {
    std::vector<std::string> words;
    std::string error;
    ASSERT_TRUE(split_words(escape_word(s, true), &words, &error)) << s;
    ASSERT_EQ(words.size(), 1u) << s;
    EXPECT_EQ(words[0], s);
  }
}

}  // namespace
}  // namespace synod::client

namespace synod::client {
namespace {

TEST(CtlSql, ParsesExecAndQuery) {
  Parsed p = parse({"--cluster", "a:1", "sql", "exec", "INSERT INTO t VALUES(?, ?, ?, ?)", "42",
                    "2.5", "null", "fiona"});
  ASSERT_EQ(p.parse.action, CtlParse::Action::kRun) << p.parse.err;
  EXPECT_EQ(p.command.op, CtlCommand::Op::kSqlExec);
  EXPECT_EQ(p.command.backend, "sqlite");
  EXPECT_EQ(sql_payload(p.command),
            R"j([["INSERT INTO t VALUES(?, ?, ?, ?)",42,2.5,null,"fiona"]])j");

  p = parse({"--cluster", "a:1", "sql", "--backend", "mysql", "query", "SELECT 1", "--consistency",
             "linearizable", "--json"});
  ASSERT_EQ(p.parse.action, CtlParse::Action::kRun) << p.parse.err;
  EXPECT_EQ(p.command.op, CtlCommand::Op::kSqlQuery);
  EXPECT_EQ(p.command.backend, "mysql");
  EXPECT_EQ(p.command.consistency, Consistency::kLinearizable);
  EXPECT_TRUE(p.options.json);

  // Words that only look like numbers stay text.
  CtlCommand c;
  c.sql = "S";
  c.params = {"007x", "1e3", "-", "", "nan"};
  EXPECT_EQ(sql_payload(c), R"([["S","007x",1000.0,"-","","nan"]])");

  EXPECT_EQ(parse({"--cluster", "a:1", "sql"}).parse.exit_code, 2);
  EXPECT_EQ(parse({"--cluster", "a:1", "sql", "exec"}).parse.exit_code, 2);

  bool empty = false;
  std::string error;
  ASSERT_TRUE(parse_ctl_line("sql query 'SELECT * FROM t WHERE a = ?' 3", &c, &empty, &error))
      << error;
  EXPECT_EQ(c.op, CtlCommand::Op::kSqlQuery);
  EXPECT_EQ(sql_payload(c), R"j([["SELECT * FROM t WHERE a = ?",3]])j");
}

Result answered(const std::string& json) {
  Result r;
  r.code = Code::kOk;
  r.value = json;
  return r;
}

TEST(CtlSql, FormatsResults) {
  CtlCommand exec;
  exec.op = CtlCommand::Op::kSqlExec;
  CtlOutput o =
      format_result(exec, answered(R"({"results":[{"last_insert_id":7,"rows_affected":1}]})"),
                    false, false);
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.out, "1 row(s) affected, last insert id 7\n");

  o = format_result(exec,
                    answered(R"({"results":[{"error":"UNIQUE constraint failed: t.v"}],)"
                             R"("rolled_back":true})"),
                    false, false);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(o.err, "SQL error: UNIQUE constraint failed: t.v (rolled back)\n");
  o = format_result(exec, answered(R"({"results":[{"error":"x"}],"rolled_back":true})"), true,
                    false);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(nlohmann::json::parse(o.out)["result"]["rolled_back"], true);

  CtlCommand query;
  query.op = CtlCommand::Op::kSqlQuery;
  o = format_result(query,
                    answered(R"({"results":[{"columns":["id","name"],"types":["integer","text"],)"
                             R"("values":[[1,"fiona"],[22,null]]}]})"),
                    false, false);
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.out, "id | name\n1  | fiona\n22 | NULL\n(2 rows)\n");
  o = format_result(query, answered("not json"), false, false);
  EXPECT_EQ(o.exit_code, 2);
}

}  // namespace
}  // namespace synod::client

namespace synod::client {
namespace {

TEST(CtlSql, ParsesChecksumAndShell) {
  Parsed p = parse({"--cluster", "a:1", "sql", "checksum"});
  ASSERT_EQ(p.parse.action, CtlParse::Action::kRun) << p.parse.err;
  EXPECT_EQ(p.command.op, CtlCommand::Op::kSqlChecksum);
  p = parse({"--cluster", "a:1", "sql", "--backend", "postgres", "shell", "--consistency",
             "linearizable"});
  ASSERT_EQ(p.parse.action, CtlParse::Action::kRun) << p.parse.err;
  EXPECT_EQ(p.command.op, CtlCommand::Op::kSqlShell);
  EXPECT_EQ(p.command.backend, "postgres");
  EXPECT_EQ(p.command.consistency, Consistency::kLinearizable);
}

TEST(CtlSql, ChecksumsNameTheNodesOutsideTheMajority) {
  const std::string a(64, 'a'), b(64, 'b');
  std::vector<NodeChecksum> nodes = {{1, "h:1", true, a, ""}, {2, "h:2", true, a, ""},
                                     {3, "h:3", true, a, ""}};
  CtlOutput o = format_checksums(9, nodes, false);
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_NE(o.out.find("all 3 nodes identical"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("position 9"), std::string::npos);

  nodes[1].checksum = b;
  o = format_checksums(9, nodes, false);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(o.err, "DIVERGED: node 2 (h:2) differ from the majority\n");
  EXPECT_NE(o.out.find(b + "  DIFFERS"), std::string::npos) << o.out;
  EXPECT_EQ(o.out.find(a + "  DIFFERS"), std::string::npos) << o.out;
  const auto j = nlohmann::json::parse(format_checksums(9, nodes, true).out);
  EXPECT_EQ(j["consistent"], false);
  EXPECT_EQ(j["nodes"][1]["differs"], true);
  EXPECT_EQ(j["nodes"][0]["differs"], false);

  // No majority: every group is named.
  nodes.pop_back();
  o = format_checksums(9, nodes, false);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.err.find("node 1 (h:1), node 2 (h:2)"), std::string::npos) << o.err;

  // Agreeing, but one node could not be asked: not a pass.
  nodes = {{1, "h:1", true, a, ""}, {2, "h:2", false, "", "connection refused"}};
  o = format_checksums(9, nodes, false);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.out.find("UNAVAILABLE: connection refused"), std::string::npos);
}

TEST(CtlSql, ShellCollectsStatementsToTheirSemicolon) {
  SqlShellBuffer b;
  std::string unit;
  EXPECT_FALSE(b.add_line("", &unit));
  EXPECT_FALSE(b.add_line("-- a comment", &unit));
  EXPECT_TRUE(b.add_line(".help", &unit));
  EXPECT_EQ(unit, ".help");
  EXPECT_FALSE(b.add_line("SELECT 'a;", &unit));
  EXPECT_TRUE(b.pending());
  EXPECT_FALSE(b.add_line("b' -- not the end;", &unit));
  EXPECT_TRUE(b.add_line("  FROM t;  ", &unit));
  EXPECT_EQ(unit, "SELECT 'a;\nb' -- not the end;\n  FROM t");
  EXPECT_FALSE(b.pending());
  EXPECT_TRUE(b.add_line("INSERT INTO t VALUES (1); INSERT INTO t VALUES (2);", &unit));
  EXPECT_EQ(unit, "INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)");
  EXPECT_FALSE(b.add_line("/* ; */ SELECT 1", &unit));
  EXPECT_TRUE(b.add_line(";", &unit));
  EXPECT_FALSE(b.add_line(";", &unit));  // an empty statement runs nothing

  EXPECT_TRUE(is_read_statement("select 1"));
  EXPECT_TRUE(is_read_statement("  -- c\n (SELECT 1) UNION SELECT 2"));
  EXPECT_TRUE(is_read_statement("WITH x AS (SELECT 1) SELECT * FROM x"));
  EXPECT_FALSE(is_read_statement("WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x"));
  EXPECT_FALSE(is_read_statement("INSERT INTO t VALUES (1)"));
  EXPECT_FALSE(is_read_statement("CREATE TABLE selections (a)"));
  EXPECT_FALSE(is_read_statement(""));
}

TEST(CtlLock, ParsesAcquireWithACommand) {
  Parsed p = parse({"--cluster", "a:1", "lock", "acquire", "backup", "--ttl", "5s", "--wait",
                    "1500ms", "--lock-delay", "0", "--shared", "--", "sh", "-c",
                    "echo $SYNOD_LOCK_TOKEN", "--json"});
  ASSERT_EQ(p.parse.action, CtlParse::Action::kRun) << p.parse.err;
  EXPECT_EQ(p.command.op, CtlCommand::Op::kLockAcquire);
  EXPECT_EQ(p.command.lock, "backup");
  EXPECT_EQ(p.command.ttl_ms, 5000);
  EXPECT_EQ(p.command.wait_ms, 1500);
  EXPECT_EQ(p.command.lock_delay_ms, 0);
  EXPECT_TRUE(p.command.shared);
  // Everything after -- is the command's, options that look like ours too.
  EXPECT_EQ(p.command.lock_command,
            (std::vector<std::string>{"sh", "-c", "echo $SYNOD_LOCK_TOKEN", "--json"}));
  EXPECT_FALSE(p.options.json);

  p = parse({"--cluster", "a:1", "lock", "acquire", "x"});
  ASSERT_EQ(p.parse.action, CtlParse::Action::kRun) << p.parse.err;
  EXPECT_EQ(p.command.ttl_ms, 10000);
  EXPECT_EQ(p.command.wait_ms, -1);  // waits without limit, like flock
  EXPECT_FALSE(p.command.shared);
  EXPECT_TRUE(p.command.lock_command.empty());
  EXPECT_EQ(p.command.lock_backend, "lock");

  p = parse({"--cluster", "a:1", "--json", "lock", "--backend", "locks2", "acquire", "x",
             "--wait", "0"});
  ASSERT_EQ(p.parse.action, CtlParse::Action::kRun) << p.parse.err;
  EXPECT_EQ(p.command.wait_ms, 0);
  EXPECT_EQ(p.command.lock_backend, "locks2");
  EXPECT_TRUE(p.options.json);
}

TEST(CtlLock, ParsesReleaseShowList) {
  Parsed p = parse({"--cluster", "a:1", "lock", "release", "x", "--session", "17"});
  ASSERT_EQ(p.parse.action, CtlParse::Action::kRun) << p.parse.err;
  EXPECT_EQ(p.command.op, CtlCommand::Op::kLockRelease);
  EXPECT_EQ(p.command.lock, "x");
  EXPECT_EQ(p.command.session, 17u);
  p = parse({"--cluster", "a:1", "lock", "release", "x"});
  EXPECT_EQ(p.command.session, 0u);
  p = parse({"--cluster", "a:1", "lock", "show", "x", "--consistency", "linearizable"});
  ASSERT_EQ(p.parse.action, CtlParse::Action::kRun) << p.parse.err;
  EXPECT_EQ(p.command.op, CtlCommand::Op::kLockShow);
  EXPECT_EQ(p.command.consistency, Consistency::kLinearizable);
  p = parse({"--cluster", "a:1", "lock", "list"});
  ASSERT_EQ(p.parse.action, CtlParse::Action::kRun) << p.parse.err;
  EXPECT_EQ(p.command.op, CtlCommand::Op::kLockList);

  CtlCommand c;
  bool empty = false;
  std::string error;
  ASSERT_TRUE(parse_ctl_line("lock show 'a b'", &c, &empty, &error)) << error;
  EXPECT_EQ(c.op, CtlCommand::Op::kLockShow);
  EXPECT_EQ(c.lock, "a b");
  ASSERT_TRUE(parse_ctl_line("lock list", &c, &empty, &error)) << error;
  EXPECT_EQ(c.op, CtlCommand::Op::kLockList);
}

TEST(CtlLock, UsageErrors) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--cluster", "a:1", "lock"},
           {"--cluster", "a:1", "lock", "acquire"},
           {"--cluster", "a:1", "lock", "acquire", "x", "--"},
           {"--cluster", "a:1", "lock", "acquire", "x", "--ttl", "500ms"},
           {"--cluster", "a:1", "lock", "acquire", "x", "--ttl", "forever"},
           {"--cluster", "a:1", "lock", "acquire", "x", "--lock-delay", "301s"},
           {"--cluster", "a:1", "lock", "acquire", "x", "--lock-delay", "forever"},
           {"--cluster", "a:1", "lock", "acquire", "x", "--wait", "soon"},
           {"--cluster", "a:1", "lock", "acquire", "x", "--wait", "-5"},
           {"--cluster", "a:1", "lock", "release", "x", "--session", "abc"},
           {"--cluster", "a:1", "lock", "frob", "x"}}) {
    Parsed p = parse(args);
    EXPECT_EQ(p.parse.action, CtlParse::Action::kExit) << args.back();
    EXPECT_EQ(p.parse.exit_code, 2) << args.back();
  }
}

TEST(CtlLock, Durations) {
  std::int64_t ms = 0;
  std::string error;
  ASSERT_TRUE(parse_duration("10s", &ms, false, &error));
  EXPECT_EQ(ms, 10000);
  ASSERT_TRUE(parse_duration("10", &ms, false, &error));
  EXPECT_EQ(ms, 10000);
  ASSERT_TRUE(parse_duration("250ms", &ms, false, &error));
  EXPECT_EQ(ms, 250);
  ASSERT_TRUE(parse_duration("1.5s", &ms, false, &error));
  EXPECT_EQ(ms, 1500);
  ASSERT_TRUE(parse_duration("2m", &ms, false, &error));
  EXPECT_EQ(ms, 120000);
  ASSERT_TRUE(parse_duration("1h", &ms, false, &error));
  EXPECT_EQ(ms, 3600000);
  ASSERT_TRUE(parse_duration("0", &ms, false, &error));
  EXPECT_EQ(ms, 0);
  ASSERT_TRUE(parse_duration("forever", &ms, true, &error));
  EXPECT_EQ(ms, -1);
  EXPECT_FALSE(parse_duration("forever", &ms, false, &error));
  EXPECT_FALSE(parse_duration("", &ms, false, &error));
  EXPECT_FALSE(parse_duration("s", &ms, false, &error));
  EXPECT_FALSE(parse_duration("10 s", &ms, false, &error));
  EXPECT_FALSE(parse_duration("1.2.3s", &ms, false, &error));
  EXPECT_FALSE(parse_duration("10d", &ms, false, &error));
  EXPECT_FALSE(parse_duration("-1s", &ms, false, &error));
}

TEST(CtlLock, FormatsAcquireAndRelease) {
  CtlCommand c;
  c.lock = "db";
  LockResult granted;
  granted.token = 42;
  CtlOutput o = format_lock_acquire(c, granted, 7, false);
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.out, "42\n");
  o = format_lock_acquire(c, granted, 7, true);
  EXPECT_EQ(nlohmann::json::parse(o.out),
            nlohmann::json::parse(R"({"ok":true,"code":"ok","lock":"db","session":7,"token":42})"));

  LockResult busy;
  busy.code = Code::kLockBusy;
  busy.message = "held by session 5";
  busy.holder_session = 5;
  o = format_lock_acquire(c, busy, 7, false);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(o.err, "lock db not acquired: held by session 5\n");
  o = format_lock_acquire(c, busy, 7, true);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(nlohmann::json::parse(o.out)["holder_session"], 5);

  LockResult timeout;
  timeout.code = Code::kTimeout;
  timeout.message = "no answer";
  o = format_lock_acquire(c, timeout, 7, false);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.err, "error: no answer\n");

  o = format_lock_release(c, LockResult{}, 7, false);
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.out, "OK\n");
  LockResult not_held;
  not_held.code = Code::kNotFound;
  o = format_lock_release(c, not_held, 7, false);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(o.err, "lock db is not held by session 7\n");
  LockResult lost;
  lost.code = Code::kSessionLost;
  lost.message = "session 7 expired";
  o = format_lock_release(c, lost, 7, true);
  EXPECT_EQ(o.exit_code, 1);  // a session that is gone holds nothing
  EXPECT_EQ(nlohmann::json::parse(o.out)["code"], "session_lost");
  o = format_lock_release(c, lost, 7, false);
  EXPECT_EQ(o.err, "lock db is not held by session 7: session 7 expired\n");
  // stdin mode: one line on stdout, whatever the outcome.
  o = format_lock_release(c, not_held, 7, false, true);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(o.out, "lock db is not held by session 7\n");
  EXPECT_EQ(o.err, "");
}

TEST(CtlLock, FormatsShowAndList) {
  const std::int64_t now = 1'800'000'000'000;  // 2027-01-15T08:00:00.000Z
  Result r;
  r.value = R"({"lock":"db","holders":[{"session":3,"token":40,"mode":"exclusive",
      "since_ms":1800000000000}],"waiters":[{"session":5,"mode":"shared"}],
      "unavailable_until_ms":0,"last_token":40})";
  CtlOutput o = format_lock_show(r, false, false, now);
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.out,
            "lock        db\n"
            "state       held\n"
            "holders     session 3  token 40  exclusive  since 2027-01-15T08:00:00.000Z\n"
            "waiters     1. session 5  shared\n"
            "last token  40\n");
  // JSON: the backend's object, on one line.
  o = format_lock_show(r, true, false, now);
  EXPECT_EQ(nlohmann::json::parse(o.out)["last_token"], 40);
  EXPECT_EQ(o.out.find('\n'), o.out.size() - 1);

  r.value = R"({"lock":"db","holders":[],"waiters":[],"unavailable_until_ms":1800000003500,
      "last_token":40})";
  o = format_lock_show(r, false, false, now);
  EXPECT_NE(o.out.find("state             lock-delay (3.5s left)\n"), std::string::npos) << o.out;
  // The log's own clock, when the answer has it, rather than this machine's.
  r.value = R"({"lock":"db","holders":[],"waiters":[],"unavailable_until_ms":1800000003500,
      "last_token":40,"now_ms":1800000003000})";
  o = format_lock_show(r, false, false, now);
  EXPECT_NE(o.out.find("lock-delay (0.5s left)"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("holders           (none)\n"), std::string::npos) << o.out;

  r.value = R"({"locks":[{"lock":"a","holders":[{"session":3,"token":9,"mode":"shared"},
      {"session":4,"token":9,"mode":"shared"}],"waiters":[{"session":6,"mode":"exclusive"}],
      "unavailable_until_ms":0,"last_token":9},
      {"lock":"b","holders":[],"waiters":[],"unavailable_until_ms":0,"last_token":2}],
      "sessions":[{"session":3,"ttl_ms":10000,"lock_delay_ms":5000,"expires_ms":1800000008300}]})";
  o = format_lock_list(r, false, false, now);
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.out,
            "LOCK  STATE        HOLDERS  WAITERS  LAST TOKEN\n"
            "a     held shared  3,4      1        9\n"
            "b     free         -        0        2\n"
            "\n"
            "SESSION  TTL    LOCK-DELAY  EXPIRES IN\n"
            "3        10.0s  5.0s        8.3s\n");
  r.value = R"({"locks":[],"sessions":[]})";
  EXPECT_EQ(format_lock_list(r, false, false, now).out, "no locks\n\nno sessions\n");

  Result bad;
  bad.value = R"({"locks":7})";
  EXPECT_EQ(format_lock_list(bad, false, false, now).exit_code, 2);
  Result down;
  down.code = Code::kUnavailable;
  down.message = "no node reachable";
  o = format_lock_show(down, false, false, now);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.err, "error: no node reachable\n");
  o = format_lock_show(down, false, true, now);  // stdin mode: one line on stdout
  EXPECT_EQ(o.out, "error: no node reachable\n");
}

}  // namespace
}  // namespace synod::client
