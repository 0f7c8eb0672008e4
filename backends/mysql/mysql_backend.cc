// libsynod_backend_mysql.so: MysqlStore (mysql_store.h) behind the C ABI of
// include/synod/backend.h.
//
// Options:
//   database  (required) this node's database; created if missing. It must
//             belong to this backend (and this node) alone.
//   host      the server's address (default 127.0.0.1)
//   port      its port (default 3306)
//   user      (default root)
//   password  (default empty)
//   socket    a Unix socket path, used instead of host and port
// Any other option is refused, so a typo is an error, not a silent default.
#include <exception>
#include <string>
#include <string_view>

#include "backends/mysql/mysql_store.h"
#include "synod/backend.h"
#include "synod/backend_util.hpp"

namespace synod::mysql {
namespace {

using backend_util::fail;

void* mysql_open(const char* const* keys, const char* const* values, size_t n, char** error) {
  try {
    MysqlStore::Config config;
    for (size_t i = 0; i < n; ++i) {
      const std::string_view key = keys[i];
      const std::string value = values[i];
      if (key == "database") {
        config.database = value;
      } else if (key == "host") {
        config.host = value;
      } else if (key == "port") {
        size_t used = 0;
        unsigned long port = 0;
        try {
          port = std::stoul(value, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used != value.size() || value.empty() || port == 0 || port > 65535) {
          fail(error, "option port must be a number from 1 to 65535, not '" + value + "'");
          return nullptr;
        }
        config.port = static_cast<unsigned>(port);
      } else if (key == "user") {
        config.user = value;
      } else if (key == "password") {
        config.password = value;
      } else if (key == "socket") {
        config.socket = value;
      } else if (key == "data_dir") {
        // The node gives every backend a directory of its own; the state of
        // this one lives on the server.
      } else {
        fail(error, "unknown option '" + std::string(key) +
                        "' (known: database, host, port, user, password, socket)");
        return nullptr;
      }
    }
    if (config.database.empty()) {
      fail(error, "option database is required");
      return nullptr;
    }
    return backend_util::open_store<MysqlStore>(config, error);
  } catch (const std::exception& e) {
    fail(error, std::string("open: ") + e.what());
    return nullptr;
  }
}

constexpr synod_backend_api kApi = backend_util::store_api<MysqlStore>("mysql", mysql_open);

}  // namespace
}  // namespace synod::mysql

extern "C" const synod_backend_api* synod_backend_entry(void) { return &synod::mysql::kApi; }
