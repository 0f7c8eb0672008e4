// libsynod_backend_kv.so: KvStore behind the C ABI of include/synod/backend.h.
//
// Options:
//   data_dir  (required) the directory of the store's RocksDB database; created
//             if missing. It must belong to this backend alone.
//   sync      "true" or "false" (default): fsync every apply's write batch.
//             Not needed for correctness (the host replays from the node's
//             fsync'd log above last_applied), only to shorten that replay.
// Any other option is refused, so a typo is an error, not a silent default.
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "backends/kv/kv_store.h"
#include "synod/backend.h"
#include "synod/backend_util.hpp"

namespace synod::kv {
namespace {

using backend_util::copy_out;
using backend_util::fail;

void* kv_open(const char* const* keys, const char* const* values, size_t n, char** error) {
  try {
    KvStore::Config config;
    bool have_dir = false;
    for (size_t i = 0; i < n; ++i) {
      std::string_view key = keys[i];
      std::string_view value = values[i];
      if (key == "data_dir") {
        config.data_dir = value;
        have_dir = true;
      } else if (key == "sync") {
        if (value != "true" && value != "false") {
          fail(error, "option sync must be true or false, not '" + std::string(value) + "'");
          return nullptr;
        }
        config.sync = value == "true";
      } else {
        fail(error, "unknown option '" + std::string(key) + "' (known: data_dir, sync)");
        return nullptr;
      }
    }
    if (!have_dir) {
      fail(error, "option data_dir is required");
      return nullptr;
    }
    std::string why;
    std::unique_ptr<KvStore> store = KvStore::open(config, &why);
    if (!store) {
      fail(error, why);
      return nullptr;
    }
    return store.release();
  } catch (const std::exception& e) {
    fail(error, std::string("open: ") + e.what());
    return nullptr;
  } catch (...) {
    fail(error, "open: unknown exception");
    return nullptr;
  }
}

int kv_apply(void* self, const synod_apply_context* ctx, const uint8_t* cmd, size_t len,
             uint8_t** out, size_t* out_len, char** error) {
  if (self == nullptr || ctx == nullptr || out == nullptr || out_len == nullptr ||
      (cmd == nullptr && len != 0)) {
    return fail(error, "apply: NULL argument");
  }
  try {
    std::string result;
    std::string why;
    std::string_view bytes(reinterpret_cast<const char*>(cmd), len);
    // If copying the result out fails, the command is applied but its result
    // lost; a retry at the same position gets the "already applied" result.
    if (!static_cast<KvStore*>(self)->apply(*ctx, bytes, &result, &why)) return fail(error, why);
    if (!copy_out(result, out, out_len)) return fail(error, "apply: out of memory for the result");
    return 0;
  } catch (const std::exception& e) {
    return fail(error, std::string("apply: ") + e.what());
  } catch (...) {
    return fail(error, "apply: unknown exception");
  }
}

int kv_apply_batch(void* self, size_t n, const synod_apply_context* ctxs,
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
    if (!static_cast<KvStore*>(self)->apply_batch(n, ctxs, views.data(), &out, &why)) {
      return fail(error, why);
    }
    // As for apply: if copying a result out fails, the batch is applied but
    // its results lost; a retry gets "already applied" results.
    for (size_t i = 0; i < n; ++i) {
      if (!copy_out(out[i], &results[i], &result_lens[i])) {
        for (size_t j = 0; j < i; ++j) {
          std::free(results[j]);
          results[j] = nullptr;
        }
        return fail(error, "apply_batch: out of memory for the results");
      }
    }
    return 0;
  } catch (const std::exception& e) {
    return fail(error, std::string("apply_batch: ") + e.what());
  } catch (...) {
    return fail(error, "apply_batch: unknown exception");
  }
}

int kv_query(void* self, const uint8_t* req, size_t len, uint8_t** out, size_t* out_len,
             char** error) {
  if (self == nullptr || out == nullptr || out_len == nullptr || (req == nullptr && len != 0)) {
    return fail(error, "query: NULL argument");
  }
  try {
    std::string result;
    std::string why;
    std::string_view bytes(reinterpret_cast<const char*>(req), len);
    if (!static_cast<KvStore*>(self)->query(bytes, &result, &why)) return fail(error, why);
    if (!copy_out(result, out, out_len)) return fail(error, "query: out of memory for the result");
    return 0;
  } catch (const std::exception& e) {
    return fail(error, std::string("query: ") + e.what());
  } catch (...) {
    return fail(error, "query: unknown exception");
  }
}

uint64_t kv_last_applied(void* self) { return static_cast<KvStore*>(self)->last_applied(); }

void kv_close(void* self) { delete static_cast<KvStore*>(self); }


int kv_sync(void* self, char** error) {
  std::string message;
  if (static_cast<KvStore*>(self)->sync(&message)) return 0;
  return fail(error, message);
}

constexpr synod_backend_api kApi = {
    SYNOD_BACKEND_ABI_VERSION,
    sizeof(synod_backend_api),
    "kv",
    kv_open,
    kv_apply,
    kv_query,
    kv_last_applied,
    nullptr,  // snapshot: a later issue
    nullptr,  // restore
    kv_close,
    backend_util::free_buffer,
    kv_sync,
    kv_apply_batch,
};

}  // namespace
}  // namespace synod::kv

extern "C" const synod_backend_api* synod_backend_entry(void) { return &synod::kv::kApi; }
