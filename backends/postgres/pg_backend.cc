// libsynod_backend_postgres.so: PgStore (pg_store.h) behind the C ABI of
// include/synod/backend.h.
//
// Options:
//   database  (required) this node's database on the server; created if
//             missing (UTF8, collation "C"). Each node needs its own.
//   host      the server's address (default 127.0.0.1)
//   port      the server's port (default 5432)
//   user      the role to log in as (default postgres)
//   password  its password (default none)
// Any other option is refused, so a typo is an error, not a silent default.
#include <exception>
#include <string>
#include <string_view>

#include "backends/postgres/pg_store.h"
#include "synod/backend.h"
#include "synod/backend_util.hpp"

namespace synod::pg {
namespace {

using backend_util::fail;

void* pg_open(const char* const* keys, const char* const* values, size_t n, char** error) {
  try {
    PgStore::Config config;
    for (size_t i = 0; i < n; ++i) {
      const std::string_view key = keys[i];
      if (key == "database") {
        config.database = values[i];
      } else if (key == "host") {
        config.host = values[i];
      } else if (key == "port") {
        config.port = values[i];
      } else if (key == "user") {
        config.user = values[i];
      } else if (key == "password") {
        config.password = values[i];
      } else if (key == "data_dir") {
        // The node gives every backend a directory of its own; the state of
        // this one lives on the server.
      } else {
        fail(error, "unknown option '" + std::string(key) +
                        "' (known: database, host, port, user, password)");
        return nullptr;
      }
    }
    if (config.database.empty()) {
      fail(error, "option database is required");
      return nullptr;
    }
    return backend_util::open_store<PgStore>(config, error);
  } catch (const std::exception& e) {
    fail(error, std::string("open: ") + e.what());
    return nullptr;
  }
}

constexpr synod_backend_api kApi = backend_util::store_api<PgStore>("postgres", pg_open);

}  // namespace
}  // namespace synod::pg

extern "C" const synod_backend_api* synod_backend_entry(void) { return &synod::pg::kApi; }
