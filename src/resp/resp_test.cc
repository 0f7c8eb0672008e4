#include "resp/resp.h"

#include <gtest/gtest.h>

namespace synod::resp {
namespace {

using namespace std::string_literals;
using Status = Parser::Status;
using Args = std::vector<std::string>;

// Every command in `bytes`, fed in pieces of `chunk` bytes.
std::vector<Args> parse_all(const std::string& bytes, std::size_t chunk, std::string* error,
                            Limits limits = {}) {
  Parser p(limits);
  std::vector<Args> out;
  Args args;
  for (std::size_t i = 0; i < bytes.size(); i += chunk) {
    p.feed(std::string_view(bytes).substr(i, chunk));
    while (true) {
      const Status s = p.next(&args, error);
      if (s == Status::kNeedMore) break;
      if (s == Status::kError) return out;
      out.push_back(args);
    }
  }
  return out;
}

TEST(RespParser, MultibulkCommandsInAnyChunking) {
  const std::string input =
      "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\r\n\0x\r\n*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$0\r\n\r\n"s;
  for (std::size_t chunk : {1u, 2u, 3u, 7u, 1000u}) {
    std::string error;
    auto cmds = parse_all(input, chunk, &error);
    ASSERT_EQ(cmds.size(), 3u) << "chunk " << chunk << ": " << error;
    EXPECT_EQ(cmds[0], (Args{"SET", "k", std::string("v\r\n\0x", 5)}));
    EXPECT_EQ(cmds[1], (Args{"PING"}));
    EXPECT_EQ(cmds[2], (Args{"GET", ""}));
    EXPECT_TRUE(error.empty());
  }
}

TEST(RespParser, InlineCommandsWithQuotes) {
  std::string error;
  auto cmds = parse_all("PING\r\nset  k \"a b\\n\" \r\n\r\nget 'x y'\nECHO \"\"\n", 5, &error);
  ASSERT_EQ(cmds.size(), 4u) << error;
  EXPECT_EQ(cmds[0], (Args{"PING"}));
  EXPECT_EQ(cmds[1], (Args{"set", "k", "a b\n"}));
  EXPECT_EQ(cmds[2], (Args{"get", "x y"}));
  EXPECT_EQ(cmds[3], (Args{"ECHO", ""}));
}

TEST(RespParser, EmptyAndNullArraysAreSkipped) {
  std::string error;
  auto cmds = parse_all("*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n", 3, &error);
  ASSERT_EQ(cmds.size(), 1u) << error;
}

TEST(RespParser, ProtocolErrorsAreFinal) {
  struct Case {
    std::string bytes;
    std::string error;
  };
  Limits small;
  small.max_bulk = 10;
  small.max_args = 4;
  small.max_inline = 16;
  small.max_command = 12;
  const std::vector<Case> cases = {
      {"*x\r\n", "Protocol error: invalid multibulk length"},
      {"*5\r\n", "Protocol error: invalid multibulk length"},  // > max_args
      {"*1\r\n+PING\r\n", "Protocol error: expected '$', got '+'"},
      {"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"},
      {"*1\r\n$11\r\n", "Protocol error: invalid bulk length"},  // > max_bulk
      {"*2\r\n$8\r\n12345678\r\n$8\r\n12345678\r\n", "Protocol error: command too large"},
      {"*1\r\n$4\r\nPINGxx", "Protocol error: bulk string not terminated by CRLF"},
      {"*1\r\n$1" + std::string(40, '1'), "Protocol error: invalid bulk length"},
      {std::string(40, '*'), "Protocol error: invalid multibulk length"},
      {"GET \"unt\r\n", "Protocol error: unbalanced quotes in request"},
      {std::string(20, 'a'), "Protocol error: too big inline request"},
  };
  for (const auto& c : cases) {
    std::string error;
    auto cmds = parse_all(c.bytes, 1, &error, small);
    EXPECT_TRUE(cmds.empty()) << c.bytes;
    EXPECT_EQ(error, c.error) << c.bytes;
    // And the parser stays in error.
    Parser p(small);
    p.feed(c.bytes);
    Args args;
    std::string e1, e2;
    EXPECT_EQ(p.next(&args, &e1), Status::kError) << c.bytes;
    p.feed("*1\r\n$4\r\nPING\r\n");
    EXPECT_EQ(p.next(&args, &e2), Status::kError);
    EXPECT_EQ(e1, e2);
  }
}

TEST(RespParser, ManyPipelinedCommandsKeepMemoryBounded) {
  Parser p;
  Args args;
  std::string error;
  std::size_t n = 0;
  for (int round = 0; round < 2000; ++round) {
    for (int i = 0; i < 50; ++i) p.feed("*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n");
    while (p.next(&args, &error) == Status::kCommand) ++n;
    EXPECT_EQ(p.buffered(), 0u);
  }
  EXPECT_EQ(n, 100000u);
}

TEST(RespEncode, Replies) {
  std::string out;
  simple(&out, "OK");
  error(&out, "ERR bad\r\nthing");
  integer(&out, -42);
  bulk(&out, std::string("a\0b", 3));
  null_bulk(&out);
  array(&out, 2);
  EXPECT_EQ(out, "+OK\r\n-ERR bad  thing\r\n:-42\r\n$3\r\na\0b\r\n$-1\r\n*2\r\n"s);
}

}  // namespace
}  // namespace synod::resp
