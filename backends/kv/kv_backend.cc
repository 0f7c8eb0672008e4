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

constexpr synod_backend_api kApi = {
    SYNOD_BACKEND_ABI_VERSION,
    sizeof(synod_backend_api),
    "kv",
    kv_open,
    backend_util::apply<KvStore>,
    backend_util::query<KvStore>,
    backend_util::last_applied<KvStore>,
    nullptr,  // snapshot: a later issue
    nullptr,  // restore
    backend_util::close<KvStore>,
    backend_util::free_buffer,
    backend_util::sync<KvStore>,
    backend_util::apply_batch<KvStore>,
    nullptr,  // validate: a malformed kv command is a deterministic error result
};

}  // namespace
}  // namespace synod::kv

extern "C" const synod_backend_api* synod_backend_entry(void) { return &synod::kv::kApi; }
