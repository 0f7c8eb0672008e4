#include "net/address.h"

#include <gtest/gtest.h>

namespace synod::net {
namespace {

TEST(AddressTest, ParsesHostAndPort) {
  std::string error;
  auto a = parse_host_port("127.0.0.1:7000", &error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 7000);
  auto b = parse_host_port("node-1.example:0", &error);
  ASSERT_TRUE(b) << error;
  EXPECT_EQ(b->host, "node-1.example");
  EXPECT_EQ(b->port, 0);
  auto c = parse_host_port("[::1]:65535", &error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->port, 65535);
  EXPECT_EQ(format_host_port(c->host, c->port), "[::1]:65535");
  EXPECT_EQ(format_host_port("10.0.0.1", 80), "10.0.0.1:80");
}

TEST(AddressTest, RefusesMalformedAddresses) {
  for (const char* bad : {"", "7000", "host", ":7000", "host:", "host:70000", "host:-1", "host:7x",
                          "::1:7000", "[]:7000"}) {
    std::string error;
    EXPECT_FALSE(parse_host_port(bad, &error)) << bad;
    EXPECT_NE(error.find("bad address"), std::string::npos) << bad << ": " << error;
  }
}

}  // namespace
}  // namespace synod::net
