// libsynod_backend_sqlite.so: SqlStore (sql_store.h) behind the C ABI of
// include/synod/backend.h.
//
// Options:
//   data_dir  (required) the directory of the node's database (db.sqlite);
//             created if missing. It must belong to this backend alone.
// Any other option is refused, so a typo is an error, not a silent default.
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
      } else {
        fail(error, "unknown option '" + std::string(key) + "' (known: data_dir)");
        return nullptr;
      }
    }
    if (config.data_dir.empty()) {
      fail(error, "option data_dir is required");
      return nullptr;
    }
    std::string why;
    auto store = SqlStore::open(config, &why);
    if (!store) {
      fail(error, why);
      return nullptr;
    }
    return store.release();
  } catch (const std::exception& e) {
    fail(error, std::string("open: ") + e.what());
    return nullptr;
  }
}

int sql_apply_batch(void* self, size_t n, const synod_apply_context* ctxs,
                    const uint8_t* const* cmds, const size_t* lens, uint8_t** results,
                    size_t* result_lens, char** error) {
  if (self == nullptr || ctxs == nullptr || cmds == nullptr || lens == nullptr ||
      results == nullptr || result_lens == nullptr) {
    return fail(error, "apply_batch: NULL argument");
  }
  try {
    std::vector<std::string_view> views(n);
    for (size_t i = 0; i < n; ++i) {
      if (cmds[i] == nullptr && lens[i] != 0) return fail(error, "apply_batch: NULL command");
      views[i] = std::string_view(reinterpret_cast<const char*>(cmds[i]), lens[i]);
    }
    std::vector<std::string> out;
    std::string why;
    if (!static_cast<SqlStore*>(self)->apply_batch(n, ctxs, views.data(), &out, &why)) {
      return fail(error, why);
    }
    for (size_t i = 0; i < n; ++i) {
      if (!copy_out(out[i], &results[i], &result_lens[i])) {
        for (size_t j = 0; j < i; ++j) {
          backend_util::free_buffer(results[j]);
          results[j] = nullptr;
        }
        return fail(error, "apply_batch: out of memory for the results");
      }
    }
    return 0;
  } catch (const std::exception& e) {
    return fail(error, std::string("apply_batch: ") + e.what());
  }
}

int sql_apply(void* self, const synod_apply_context* ctx, const uint8_t* cmd, size_t len,
              uint8_t** out, size_t* out_len, char** error) {
  if (out == nullptr || out_len == nullptr) return fail(error, "apply: NULL argument");
  const uint8_t* cmds[] = {cmd};
  const size_t lens[] = {len};
  return sql_apply_batch(self, 1, ctx, cmds, lens, out, out_len, error);
}

int sql_query(void* self, const uint8_t* req, size_t len, uint8_t** out, size_t* out_len,
              char** error) {
  if (self == nullptr || out == nullptr || out_len == nullptr || (req == nullptr && len != 0)) {
    return fail(error, "query: NULL argument");
  }
  try {
    std::string result;
    std::string why;
    std::string_view bytes(reinterpret_cast<const char*>(req), len);
    if (!static_cast<SqlStore*>(self)->query(bytes, &result, &why)) return fail(error, why);
    if (!copy_out(result, out, out_len)) return fail(error, "query: out of memory for the result");
    return 0;
  } catch (const std::exception& e) {
    return fail(error, std::string("query: ") + e.what());
  }
}

uint64_t sql_last_applied(void* self) { return static_cast<SqlStore*>(self)->last_applied(); }

void sql_close(void* self) { delete static_cast<SqlStore*>(self); }

int sql_sync(void* self, char** error) {
  std::string message;
  if (static_cast<SqlStore*>(self)->sync(&message)) return 0;
  return fail(error, message);
}

constexpr synod_backend_api kApi = {
    SYNOD_BACKEND_ABI_VERSION,
    sizeof(synod_backend_api),
    "sqlite",
    sql_open,
    sql_apply,
    sql_query,
    sql_last_applied,
    nullptr,  // snapshot: a later issue
    nullptr,  // restore
    sql_close,
    backend_util::free_buffer,
    sql_sync,
    sql_apply_batch,
};

}  // namespace
}  // namespace synod::sql

extern "C" const synod_backend_api* synod_backend_entry(void) { return &synod::sql::kApi; }
