#include "resp/commands.h"

#include <gtest/gtest.h>

namespace synod::resp {
namespace {

using proto::KvCommand;
using proto::KvResult;
using Kind = Plan::Kind;

Plan plan(std::vector<std::string> args) { return plan_command(args); }

KvCommand payload_of(const Plan& p) {
  KvCommand c;
  EXPECT_TRUE(c.ParseFromString(p.payload));
  return c;
}

std::string render(const Plan& p, const KvResult& r) {
  std::string out;
  p.render(r, &out);
  return out;
}

KvResult result(KvResult::Code code) {
  KvResult r;
  r.set_code(code);
  return r;
}

TEST(RedisCommands, ImmediateReplies) {
  EXPECT_EQ(plan({"PING"}).reply, "+PONG\r\n");
  EXPECT_EQ(plan({"ping", "hi"}).reply, "$2\r\nhi\r\n");
  EXPECT_EQ(plan({"ECHO", "x"}).reply, "$1\r\nx\r\n");
  EXPECT_EQ(plan({"echo"}).reply, "-ERR wrong number of arguments for 'echo' command\r\n");
  EXPECT_EQ(plan({"SELECT", "0"}).reply, "+OK\r\n");
  EXPECT_EQ(plan({"SELECT", "1"}).reply.substr(0, 26), "-ERR DB index is out of ra");
  EXPECT_EQ(plan({"QUIT"}).kind, Kind::kQuit);
  EXPECT_EQ(plan({"COMMAND", "DOCS"}).reply, "*0\r\n");
  // What redis-benchmark asks before it starts.
  EXPECT_EQ(plan({"CONFIG", "GET", "save"}).reply, "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
  EXPECT_EQ(plan({"CONFIG", "GET", "appendonly"}).reply,
            "*2\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n");
  EXPECT_EQ(plan({"CONFIG", "GET", "nothing"}).reply, "*0\r\n");
  EXPECT_EQ(plan({"CONFIG", "SET", "save", ""}).reply.substr(0, 4), "-ERR");
  EXPECT_EQ(plan({"HELLO", "3"}).reply.substr(0, 8), "-NOPROTO");
  EXPECT_EQ(plan({"HELLO"}).reply.substr(0, 5), "*14\r\n");
  EXPECT_EQ(plan({"FLUSHALL"}).reply,
            "-ERR unknown command 'FLUSHALL', with args beginning with:\r\n");
  EXPECT_EQ(plan({"foo", "a", "b\r\n"}).reply,
            "-ERR unknown command 'foo', with args beginning with: 'a' 'b  '\r\n");
}

TEST(RedisCommands, SetAndItsOptions) {
  Plan p = plan({"SET", "k", "v"});
  ASSERT_EQ(p.kind, Kind::kWrite);
  KvCommand c = payload_of(p);
  EXPECT_EQ(c.op(), KvCommand::MPUT);  // blind: no read of the old value
  ASSERT_EQ(c.keys_size(), 1);
  EXPECT_EQ(c.keys(0), "k");
  EXPECT_EQ(c.values(0), "v");
  EXPECT_EQ(render(p, result(KvResult::OK)), "+OK\r\n");

  p = plan({"set", "k", "v", "nx"});
  c = payload_of(p);
  EXPECT_EQ(c.op(), KvCommand::CAS);
  EXPECT_TRUE(c.expect_absent());
  EXPECT_EQ(render(p, result(KvResult::CAS_FAILED)), "$-1\r\n");
  EXPECT_EQ(render(p, result(KvResult::OK)), "+OK\r\n");

  p = plan({"SET", "k", "v", "XX"});
  c = payload_of(p);
  EXPECT_EQ(c.op(), KvCommand::PUT);
  EXPECT_TRUE(c.require_present());
  EXPECT_EQ(render(p, result(KvResult::CAS_FAILED)), "$-1\r\n");

  EXPECT_EQ(plan({"SET", "k", "v", "NX", "XX"}).reply, "-ERR syntax error\r\n");
  EXPECT_EQ(plan({"SET", "k", "v", "EX", "10"}).reply,
            "-ERR SET option EX is not supported: keys do not expire in Synod\r\n");
  EXPECT_EQ(plan({"SET", "k", "v", "px", "10"}).kind, Kind::kReply);
  EXPECT_EQ(plan({"SET", "k", "v", "GET"}).kind, Kind::kReply);
  EXPECT_EQ(plan({"SET", "k"}).reply, "-ERR wrong number of arguments for 'set' command\r\n");

  p = plan({"SETNX", "k", "v"});
  EXPECT_EQ(render(p, result(KvResult::OK)), ":1\r\n");
  EXPECT_EQ(render(p, result(KvResult::CAS_FAILED)), ":0\r\n");
}

TEST(RedisCommands, GetAndReads) {
  Plan p = plan({"GET", "k"});
  ASSERT_EQ(p.kind, Kind::kRead);
  EXPECT_EQ(payload_of(p).op(), KvCommand::GET);
  KvResult r = result(KvResult::OK);
  r.set_value("hello");
  EXPECT_EQ(render(p, r), "$5\r\nhello\r\n");
  EXPECT_EQ(render(p, result(KvResult::NOT_FOUND)), "$-1\r\n");
  EXPECT_EQ(render(plan({"STRLEN", "k"}), r), ":5\r\n");

  p = plan({"MGET", "a", "b"});
  ASSERT_EQ(p.kind, Kind::kRead);
  KvCommand c = payload_of(p);
  EXPECT_EQ(c.op(), KvCommand::MGET);
  ASSERT_EQ(c.keys_size(), 2);
  r = result(KvResult::OK);
  auto* e = r.add_entries();
  e->set_found(true);
  e->set_value("1");
  r.add_entries();
  EXPECT_EQ(render(p, r), "*2\r\n$1\r\n1\r\n$-1\r\n");
  EXPECT_EQ(render(plan({"EXISTS", "a", "b"}), r), ":1\r\n");

  p = plan({"DBSIZE"});
  EXPECT_EQ(payload_of(p).op(), KvCommand::COUNT);
  r = result(KvResult::OK);
  r.set_number(7);
  EXPECT_EQ(render(p, r), ":7\r\n");

  p = plan({"KEYS", "user:*:name"});
  c = payload_of(p);
  EXPECT_EQ(c.op(), KvCommand::LIST);
  EXPECT_EQ(c.prefix(), "user:");
  r = result(KvResult::OK);
  r.add_keys("user:1:name");
  r.add_keys("user:1:age");
  r.add_keys("user:22:name");
  EXPECT_EQ(render(p, r), "*2\r\n$11\r\nuser:1:name\r\n$12\r\nuser:22:name\r\n");
}

TEST(RedisCommands, MultiKeyWrites) {
  Plan p = plan({"MSET", "a", "1", "b", "2"});
  ASSERT_EQ(p.kind, Kind::kWrite);
  KvCommand c = payload_of(p);
  EXPECT_EQ(c.op(), KvCommand::MPUT);
  ASSERT_EQ(c.keys_size(), 2);
  EXPECT_EQ(c.values(1), "2");
  EXPECT_EQ(render(p, result(KvResult::OK)), "+OK\r\n");
  EXPECT_EQ(plan({"MSET", "a", "1", "b"}).reply,
            "-ERR wrong number of arguments for 'mset' command\r\n");

  p = plan({"DEL", "a", "b", "c"});
  c = payload_of(p);
  EXPECT_EQ(c.op(), KvCommand::MDELETE);
  EXPECT_EQ(c.keys_size(), 3);
  KvResult r = result(KvResult::OK);
  r.set_number(2);
  EXPECT_EQ(render(p, r), ":2\r\n");
}

TEST(RedisCommands, Counters) {
  Plan p = plan({"INCR", "n"});
  KvCommand c = payload_of(p);
  EXPECT_EQ(c.op(), KvCommand::INCREMENT);
  EXPECT_EQ(c.delta(), 1);
  KvResult r = result(KvResult::OK);
  r.set_number(-3);
  EXPECT_EQ(render(p, r), ":-3\r\n");
  EXPECT_EQ(render(p, result(KvResult::NOT_A_NUMBER)),
            "-ERR value is not an integer or out of range\r\n");
  r = result(KvResult::NOT_A_NUMBER);
  r.set_error("overflow: 1 + 9223372036854775807 does not fit in 64 bits");
  EXPECT_EQ(render(p, r), "-ERR increment or decrement would overflow\r\n");

  EXPECT_EQ(payload_of(plan({"DECR", "n"})).delta(), -1);
  EXPECT_EQ(payload_of(plan({"INCRBY", "n", "-5"})).delta(), -5);
  EXPECT_EQ(payload_of(plan({"DECRBY", "n", "5"})).delta(), -5);
  EXPECT_EQ(plan({"INCRBY", "n", "x"}).reply, "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(plan({"DECRBY", "n", "-9223372036854775808"}).reply,
            "-ERR decrement would overflow\r\n");
}

TEST(RedisCommands, BackendErrorsAreRedisErrors) {
  KvResult r = result(KvResult::BAD_COMMAND);
  r.set_error("GET needs a key");
  EXPECT_EQ(render(plan({"GET", ""}), r), "-ERR GET needs a key\r\n");
}

TEST(Glob, RedisPatterns) {
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("*", "anything"));
  EXPECT_TRUE(glob_match("h?llo", "hello"));
  EXPECT_FALSE(glob_match("h?llo", "hllo"));
  EXPECT_TRUE(glob_match("h*llo", "heeeello"));
  EXPECT_TRUE(glob_match("h[ae]llo", "hallo"));
  EXPECT_FALSE(glob_match("h[ae]llo", "hillo"));
  EXPECT_TRUE(glob_match("h[^e]llo", "hallo"));
  EXPECT_FALSE(glob_match("h[^e]llo", "hello"));
  EXPECT_TRUE(glob_match("h[a-b]llo", "hbllo"));
  EXPECT_TRUE(glob_match("a\\*b", "a*b"));
  EXPECT_FALSE(glob_match("a\\*b", "axb"));
  EXPECT_TRUE(glob_match("*a*b*c*", "xxaxxbxxcxx"));
  EXPECT_FALSE(glob_match("*a*b*c*", "xxaxxcxxbxx"));
  // No exponential blow-up on a hostile pattern.
  EXPECT_FALSE(glob_match(std::string(30, '*') + "a*a*a*a*a*a*a*b", std::string(5000, 'a')));
  EXPECT_EQ(glob_prefix("user:*"), "user:");
  EXPECT_EQ(glob_prefix("a\\*"), "a");
  EXPECT_EQ(glob_prefix("*"), "");
}

}  // namespace
}  // namespace synod::resp
