// libsynod_backend_sqlite.so: SqlStore (sql_store.h) behind the C ABI of
// include/synod/backend.h.
//
// Options:
//   data_dir  (required) the directory of the node's database (db.sqlite);
//             created if missing. It must belong to this backend alone.
//   max_statement_steps  SQLite VM instructions a write statement may run
//             before it is stopped with an error result (default 2e9; 0: none).
// Any other option is refused, so a typo is an error, not a silent default.
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "backends/sqlite/sql_store.h"
#include "synod/backend.h"
#include "synod/backend_util.hpp"

namespace synod::sql {
namespace {

using backend_util::copy_out;
using backend_util::fail;

void* sql_open(const char* const* keys, const char* const* values, size_t n, char** error) {
  try {
    SqlStore::Config config;
    for (size_t i = 0; i < n; ++i) {
      std::string_view key = keys[i];
      if (key == "data_dir") {
        config.data_dir = values[i];
      } else if (key == "max_statement_steps") {
        const std::string v = values[i];
        char* end = nullptr;
        config.max_statement_steps = std::strtoull(v.c_str(), &end, 10);
        if (v.empty() || *end != '\0' || v[0] == '-') {
          fail(error, "option max_statement_steps must be a number (0: no limit), not '" + v + "'");
          return nullptr;
        }
      } else {
        fail(error, "unknown option '" + std::string(key) +
                        "' (known: data_dir, max_statement_steps)");
        return nullptr;
      }
    }
    if (config.data_dir.empty()) {
      fail(error, "option data_dir is required");
      return nullptr;
    }
    return backend_util::open_store<SqlStore>(config, error);
  } catch (const std::exception& e) {
    fail(error, std::string("open: ") + e.what());
    return nullptr;
  }
}

constexpr synod_backend_api kApi = backend_util::store_api<SqlStore>("sqlite", sql_open);

}  // namespace
}  // namespace synod::sql

extern "C" const synod_backend_api* synod_backend_entry(void) { return &synod::sql::kApi; }
