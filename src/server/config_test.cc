#include "server/config.h"

#include <gtest/gtest.h>

#include <fstream>

namespace synod::server {
namespace {

bool parse(std::vector<std::string> args, Config* c, std::string* error) {
  args.insert(args.begin(), "synod");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  int code = 0;
  return parse_config(static_cast<int>(argv.size()), argv.data(), c, error, &code);
}

TEST(Config, ParsesFlags) {
  Config c;
  std::string error;
  ASSERT_TRUE(parse({"--id", "2", "--data-dir", "/tmp/x", "--listen", "127.0.0.1:7002", "--peers",
                     "1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003", "--backend", "kv",
                     "--backend-option", "kv.cache_mb=8"},
                    &c, &error))
      << error;
  EXPECT_EQ(c.id, 2u);
  EXPECT_EQ(c.peers.size(), 3u);
  EXPECT_EQ(c.peers.at(3), "127.0.0.1:7003");
  EXPECT_EQ(c.backend_options["kv"]["cache_mb"], "8");
  EXPECT_EQ(c.cluster_id, cluster_id_of("synod"));
}

TEST(Config, ReadsTomlAndFlagsWin) {
  const std::string path = ::testing::TempDir() + "/synod_config_test.toml";
  {
    std::ofstream f(path);
    f << "id = 1\ndata-dir = \"/tmp/n1\"\nlisten = \"127.0.0.1:7001\"\n"
         "peers = \"1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003\"\n"
         "backend = [\"kv\"]\ncluster = \"prod\"\ntick-ms = 20\n";
  }
  Config c;
  std::string error;
  ASSERT_TRUE(parse({"--config", path, "--tick-ms", "5"}, &c, &error)) << error;
  EXPECT_EQ(c.id, 1u);
  EXPECT_EQ(c.data_dir, "/tmp/n1");
  EXPECT_EQ(c.tick_ms, 5u);
  EXPECT_EQ(c.cluster, "prod");
  EXPECT_NE(c.cluster_id, cluster_id_of("synod"));
}

TEST(Config, RefusesInconsistentSettingsWithAClearMessage) {
  Config c;
  std::string error;
  EXPECT_FALSE(parse({"--id", "4", "--data-dir", "d", "--listen", "127.0.0.1:1", "--peers",
                      "1=127.0.0.1:1,2=127.0.0.1:2"},
                     &c, &error));
  EXPECT_NE(error.find("does not list this node's id 4"), std::string::npos) << error;

  Config d;
  EXPECT_FALSE(parse({"--id", "1", "--data-dir", "d", "--listen", "127.0.0.1:1", "--peers",
                      "1=127.0.0.1:1,x=127.0.0.1:2"},
                     &d, &error));
  EXPECT_NE(error.find("bad peer id"), std::string::npos) << error;

  Config e;
  EXPECT_FALSE(parse({"--id", "1", "--data-dir", "d", "--listen", "127.0.0.1:1", "--peers",
                      "1=127.0.0.1:1", "--backend-option", "sql.x=1"},
                     &e, &error));
  EXPECT_NE(error.find("not a loaded --backend"), std::string::npos) << error;

  Config f;
  EXPECT_FALSE(parse({"--id", "1", "--data-dir", "d", "--listen", "127.0.0.1:1", "--peers",
                      "1=127.0.0.1:1", "--backend", "kv", "--backend", "sqlite", "--backend",
                      "kv"},
                     &f, &error));
  EXPECT_EQ(error, "--backend kv given twice");
}

TEST(Config, LockTickMs) {
  const std::vector<std::string> base = {"--id", "1", "--data-dir", "d", "--listen",
                                         "127.0.0.1:1", "--peers", "1=127.0.0.1:1"};
  Config c;
  std::string error;
  ASSERT_TRUE(parse(base, &c, &error)) << error;
  EXPECT_EQ(c.lock_tick_ms, 1000u);  // the default
  auto with = [&](const std::string& value, Config* out) {
    auto args = base;
    args.insert(args.end(), {"--backend", "lock", "--lock-tick-ms", value});
    return parse(args, out, &error);
  };
  Config d;
  ASSERT_TRUE(with("250", &d)) << error;
  EXPECT_EQ(d.lock_tick_ms, 250u);
  Config off;
  ASSERT_TRUE(with("0", &off)) << error;
  EXPECT_EQ(off.lock_tick_ms, 0u);
  Config bad;
  EXPECT_FALSE(with("-5", &bad));
  EXPECT_NE(error.find("--lock-tick-ms"), std::string::npos) << error;
  Config big;
  EXPECT_FALSE(with("3600001", &big));
}

}  // namespace
}  // namespace synod::server
