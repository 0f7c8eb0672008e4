// libsynod_backend_kv.so through the host: found in the build tree's default
// plugin directory, driven through the C ABI only. This binary also links the
// generated kv.pb.cc, which is what a host process with a kv client in it looks
// like: loading the library must not clash with it (see src/backend/wire.h).
#include <gtest/gtest.h>

#include "backend/host.h"
#include "backends/kv/kv_test_util.h"

namespace synod::kv {
namespace {

using backend::BackendHost;
using namespace synod::kv::testing;  // NOLINT
using proto::KvResult;

synod_apply_context at(uint64_t position) { return synod_apply_context{position, 0, 0}; }

TEST(KvBackend, LoadsFromTheBuildTreeAndApplies) {
  TempDir dir;
  BackendHost host;  // default plugin directories
  std::string error;
  ASSERT_TRUE(host.load("kv", {{"data_dir", dir.path()}}, &error)) << error;
  backend::Backend* kv = host.get("kv");
  ASSERT_NE(kv, nullptr);
  EXPECT_EQ(kv->name(), "kv");
  EXPECT_EQ(kv->path(), host.plugin_dirs().back() + "/libsynod_backend_kv.so");
  EXPECT_FALSE(kv->supports_snapshot());
  EXPECT_EQ(host.last_applied("kv"), 0u);

  auto apply = [&](uint64_t position, const proto::KvCommand& c) {
    backend::Result r = host.apply("kv", at(position), c.SerializeAsString());
    EXPECT_TRUE(r.ok) << r.error;
    return parse_result(r.bytes);
  };
  auto query = [&](const proto::KvCommand& c) {
    backend::Result r = host.query("kv", c.SerializeAsString());
    EXPECT_TRUE(r.ok) << r.error;
    return parse_result(r.bytes);
  };

  EXPECT_EQ(apply(1, Put("a", "1")).code(), KvResult::OK);
  EXPECT_EQ(apply(2, Increment("n", 41)).number(), 41);
  EXPECT_EQ(apply(3, Cas("a", "1", "2")).code(), KvResult::OK);
  EXPECT_EQ(host.last_applied("kv"), 3u);
  EXPECT_EQ(query(Get("a")).value(), "2");
  EXPECT_EQ(query(List("")).keys_size(), 2);

  // An old position: a result that says so, no change.
  KvResult r = apply(2, Put("a", "old"));
  EXPECT_NE(r.error().find("already applied"), std::string::npos) << r.error();
  EXPECT_EQ(query(Get("a")).value(), "2");

  // Garbage is a result, through the ABI too; an empty command is a GET of "".
  backend::Result raw = host.apply("kv", at(4), std::string("\xff\xff\xff", 3));
  ASSERT_TRUE(raw.ok) << raw.error;
  EXPECT_EQ(parse_result(raw.bytes).code(), KvResult::BAD_COMMAND);
  raw = host.apply("kv", at(5), "");
  ASSERT_TRUE(raw.ok) << raw.error;
  EXPECT_EQ(parse_result(raw.bytes).code(), KvResult::BAD_COMMAND);

  // Reloaded: the state and the last applied slot are still there.
  ASSERT_TRUE(host.unload("kv"));
  ASSERT_TRUE(host.load("kv", {{"data_dir", dir.path()}, {"sync", "true"}}, &error)) << error;
  EXPECT_EQ(host.last_applied("kv"), 5u);
  EXPECT_EQ(query(Get("n")).number(), 0);  // GET returns value, not number
  EXPECT_EQ(query(Get("n")).value(), "41");
}

TEST(KvBackend, OptionErrors) {
  BackendHost host;
  std::string error;
  EXPECT_FALSE(host.load("kv", {}, &error));
  EXPECT_EQ(error, "backend kv: open failed: option data_dir is required");
  TempDir dir;
  EXPECT_FALSE(host.load("kv", {{"data_dir", dir.path()}, {"data_dri", "x"}}, &error));
  EXPECT_EQ(error, "backend kv: open failed: unknown option 'data_dri' (known: data_dir, sync)");
  EXPECT_FALSE(host.load("kv", {{"data_dir", dir.path()}, {"sync", "yes"}}, &error));
  EXPECT_EQ(error, "backend kv: open failed: option sync must be true or false, not 'yes'");
  EXPECT_TRUE(host.names().empty());
}

TEST(KvBackend, TwoInstancesUnderTwoHostsAreIndependent) {
  TempDir a, b;
  BackendHost host_a, host_b;
  std::string error;
  ASSERT_TRUE(host_a.load("kv", {{"data_dir", a.path()}}, &error)) << error;
  ASSERT_TRUE(host_b.load("kv", {{"data_dir", b.path()}}, &error)) << error;
  ASSERT_TRUE(host_a.apply("kv", at(1), Put("k", "a").SerializeAsString()).ok);
  ASSERT_TRUE(host_b.apply("kv", at(1), Put("k", "b").SerializeAsString()).ok);
  EXPECT_EQ(parse_result(host_a.query("kv", Get("k").SerializeAsString()).bytes).value(), "a");
  EXPECT_EQ(parse_result(host_b.query("kv", Get("k").SerializeAsString()).bytes).value(), "b");
  // The same directory twice: RocksDB's lock refuses it.
  BackendHost host_c;
  EXPECT_FALSE(host_c.load("kv", {{"data_dir", a.path()}}, &error));
  EXPECT_NE(error.find("backend kv: open failed: cannot open RocksDB in " + a.path()),
            std::string::npos)
      << error;
}

}  // namespace
}  // namespace synod::kv
