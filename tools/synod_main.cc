// synod: one node of a Synod cluster.
//
//   synod --id 1 --data-dir d1 --listen 127.0.0.1:7001
//         --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 --backend kv
//
// or the same keys in a TOML file: synod --config node1.toml
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>

#include "server/config.h"
#include "server/node.h"

int main(int argc, char** argv) {
  synod::server::Config cfg;
  std::string error;
  int exit_code = 0;
  if (!synod::server::parse_config(argc, argv, &cfg, &error, &exit_code)) {
    if (!error.empty()) std::fprintf(stderr, "synod: %s\n", error.c_str());
    return exit_code;
  }
  auto logger = spdlog::stderr_color_mt("synod");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e [node " + std::to_string(cfg.id) + "] %^%l%$ %v");
  logger->set_level(spdlog::level::from_str(cfg.log_level));
  spdlog::set_default_logger(logger);

  synod::server::Node node(cfg);
  if (!node.start(&error)) {
    spdlog::critical("cannot start: {}", error);
    return 1;
  }
  node.run(/*handle_signals=*/true);
  return node.exit_code();
}
