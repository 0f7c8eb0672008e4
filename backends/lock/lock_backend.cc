// libsynod_backend_lock.so: LockStore (lock_store.h) behind the C ABI of
// include/synod/backend.h.
//
// Options:
//   data_dir       (required) the directory of the node's lock database
//                  (lock.sqlite); created if missing; this backend's alone.
// The lock-delay is not an option: each session carries its own in the log
// ({"op":"open","lock_delay_ms":D}), so that every node applies the same one.
// Any other option is refused, so a typo is an error, not a silent default.
#include <exception>
#include <string>
#include <string_view>

#include "backends/lock/lock_store.h"
#include "synod/backend.h"
#include "synod/backend_util.hpp"

namespace synod::lock {
namespace {

using backend_util::fail;

void* lock_open(const char* const* keys, const char* const* values, size_t n, char** error) {
  try {
    LockStore::Config config;
    for (size_t i = 0; i < n; ++i) {
      std::string_view key = keys[i];
      if (key == "data_dir") {
        config.data_dir = values[i];
      } else if (key == "lock_delay_ms") {
        fail(error,
             "option lock_delay_ms is gone: the lock-delay is chosen per session by the client "
             "(LockSessionOptions::lock_delay, synodctl lock acquire --lock-delay, the open "
             "command's \"lock_delay_ms\"), so that every node applies the same one");
        return nullptr;
      } else {
        fail(error,
             "unknown option '" + std::string(key) + "' (known: data_dir)");
        return nullptr;
      }
    }
    if (config.data_dir.empty()) {
      fail(error, "option data_dir is required");
      return nullptr;
    }
    return backend_util::open_store<LockStore>(config, error);
  } catch (const std::exception& e) {
    fail(error, std::string("open: ") + e.what());
    return nullptr;
  }
}

constexpr synod_backend_api kApi = backend_util::store_api<LockStore>("lock", lock_open);

}  // namespace
}  // namespace synod::lock

extern "C" const synod_backend_api* synod_backend_entry(void) { return &synod::lock::kApi; }
