// libsynod_backend_lock.so: LockStore (lock_store.h) behind the C ABI of
// include/synod/backend.h.
//
// Options:
//   data_dir       (required) the directory of the node's lock database
//                  (lock.sqlite); created if missing; this backend's alone.
//   lock_delay_ms  how long a lock whose holder's session EXPIRED stays
//                  unavailable to new grants (default 5000; 0: none). It is
//                  part of the replicated logic: every node must use the same.
// Any other option is refused, so a typo is an error, not a silent default.
#include <cstdlib>
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
        const std::string v = values[i];
        char* end = nullptr;
        const long long ms = std::strtoll(v.c_str(), &end, 10);
        if (v.empty() || *end != '\0' || ms < 0 || ms > 86'400'000) {
          fail(error, "option lock_delay_ms must be a number of ms from 0 to 86400000, not '" +
                          v + "'");
          return nullptr;
        }
        config.lock_delay_ms = ms;
      } else {
        fail(error,
             "unknown option '" + std::string(key) + "' (known: data_dir, lock_delay_ms)");
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
