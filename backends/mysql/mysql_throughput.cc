// Throughput of the mysql backend for single-INSERT commands: 1,000 applied
// one per apply_batch call, then 1,000 in batches of 100. Prints the rates; a
// measurement, not a test.
//
//   mysql_throughput [HOST:PORT] [DATABASE]   (default 127.0.0.1:13306 synod_throughput)
#include <mysql.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "backends/mysql/mysql_store.h"

int main(int argc, char** argv) {
  using synod::mysql::MysqlStore;
  const std::string addr = argc > 1 ? argv[1] : "127.0.0.1:13306";
  MysqlStore::Config config;
  config.host = addr.substr(0, addr.rfind(':'));
  config.port = static_cast<unsigned>(std::stoul(addr.substr(addr.rfind(':') + 1)));
  config.database = argc > 2 ? argv[2] : "synod_throughput";
  {
    MYSQL* m = mysql_init(nullptr);
    if (mysql_real_connect(m, config.host.c_str(), "root", "", nullptr, config.port, nullptr, 0) ==
            nullptr ||
        mysql_query(m, ("DROP DATABASE IF EXISTS `" + config.database + "`").c_str()) != 0) {
      std::fprintf(stderr, "cannot reset %s: %s\n", config.database.c_str(), mysql_error(m));
      return 1;
    }
    mysql_close(m);
  }
  std::string error;
  auto store = MysqlStore::open(config, &error);
  if (!store) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  uint64_t slot = 0;
  auto run = [&](size_t total, size_t batch) {
    std::vector<synod_apply_context> ctxs(batch);
    std::vector<std::string> cmds(batch);
    std::vector<std::string_view> views(batch);
    std::vector<std::string> results;
    const auto start = std::chrono::steady_clock::now();
    for (size_t done = 0; done < total; done += batch) {
      for (size_t i = 0; i < batch; ++i) {
        ++slot;
        ctxs[i] = synod_apply_context{slot, 1700000000000 + static_cast<int64_t>(slot), slot};
        cmds[i] = "[[\"INSERT INTO t (name, n) VALUES (?, ?)\", \"row " + std::to_string(slot) +
                  "\", " + std::to_string(slot) + "]]";
        views[i] = cmds[i];
      }
      if (!store->apply_batch(batch, ctxs.data(), views.data(), &results, &error)) {
        std::fprintf(stderr, "apply: %s\n", error.c_str());
        return -1.0;
      }
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  std::string result;
  ++slot;
  if (!store->apply(synod_apply_context{slot, 1700000000000, 1},
                    R"j(["CREATE TABLE t (id BIGINT AUTO_INCREMENT PRIMARY KEY, name TEXT, n BIGINT)"])j",
                    &result, &error)) {
    std::fprintf(stderr, "create: %s\n", error.c_str());
    return 1;
  }
  const double one = run(1000, 1);
  const double hundred = run(1000, 100);
  if (one < 0 || hundred < 0) return 1;
  std::printf("1000 single-INSERT commands, one per apply_batch: %.3f s, %.0f commands/s\n", one,
              1000 / one);
  std::printf("1000 single-INSERT commands, batches of 100:      %.3f s, %.0f commands/s\n",
              hundred, 1000 / hundred);
  return 0;
}
