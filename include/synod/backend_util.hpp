// Helpers for C++ backends on the C ABI of synod/backend.h: buffers cross the
// ABI as malloc'd memory that the backend's free_buffer() releases with free(),
// and the table's functions for a store class with the usual member functions
// (apply_batch, query, last_applied, sync). No C++ exception crosses the ABI.
// Header-only, no dependencies beyond the C++ standard library.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "synod/backend.h"

namespace synod::backend_util {

// A NUL-terminated copy for *error; nullptr when out of memory.
inline char* copy_error(const std::string& message) {
  char* p = static_cast<char*>(std::malloc(message.size() + 1));
  if (p != nullptr) std::memcpy(p, message.c_str(), message.size() + 1);
  return p;
}

// Fills *out / *out_len (nullptr / 0 for empty bytes); false when out of memory.
inline bool copy_out(const std::string& bytes, uint8_t** out, size_t* out_len) {
  *out = nullptr;
  *out_len = 0;
  if (bytes.empty()) return true;
  auto* p = static_cast<uint8_t*>(std::malloc(bytes.size()));
  if (p == nullptr) return false;
  std::memcpy(p, bytes.data(), bytes.size());
  *out = p;
  *out_len = bytes.size();
  return true;
}

// Sets *error (when the host gave a place for it) and returns the failure code.
inline int fail(char** error, const std::string& message) {
  if (error != nullptr) *error = copy_error(message);
  return 1;
}

inline void free_buffer(void* p) { std::free(p); }

// The data_dir option: required, created with its parents when missing. False
// with *error saying which.
inline bool make_data_dir(const std::string& dir, std::string* error) {
  if (dir.empty()) {
    *error = "data_dir is empty";
    return false;
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    *error = "cannot create data_dir " + dir + ": " + ec.message();
    return false;
  }
  return true;
}

// synod_backend_api::apply_batch for a Store with
//   bool apply_batch(size_t n, const synod_apply_context*, const std::string_view*,
//                    std::vector<std::string>* results, std::string* error);
// If copying a result out fails, the batch is applied but its results lost: a
// retry gets "already applied" results, as for apply().
template <typename Store>
int apply_batch(void* self, size_t n, const synod_apply_context* ctxs, const uint8_t* const* cmds,
                const size_t* lens, uint8_t** results, size_t* result_lens, char** error) {
  if (self == nullptr || ctxs == nullptr || cmds == nullptr || lens == nullptr ||
      results == nullptr || result_lens == nullptr) {
    return fail(error, "apply: NULL argument");
  }
  try {
    std::vector<std::string_view> views(n);
    for (size_t i = 0; i < n; ++i) {
      if (cmds[i] == nullptr && lens[i] != 0) return fail(error, "apply: NULL command");
      views[i] = std::string_view(reinterpret_cast<const char*>(cmds[i]), lens[i]);
    }
    std::vector<std::string> out;
    std::string why;
    if (!static_cast<Store*>(self)->apply_batch(n, ctxs, views.data(), &out, &why)) {
      return fail(error, why);
    }
    for (size_t i = 0; i < n; ++i) {
      if (!copy_out(out[i], &results[i], &result_lens[i])) {
        for (size_t j = 0; j < i; ++j) {
          free_buffer(results[j]);
          results[j] = nullptr;
        }
        return fail(error, "apply: out of memory for the results");
      }
    }
    return 0;
  } catch (const std::exception& e) {
    return fail(error, std::string("apply: ") + e.what());
  } catch (...) {
    return fail(error, "apply: unknown exception");
  }
}

// synod_backend_api::apply: a batch of one.
template <typename Store>
int apply(void* self, const synod_apply_context* ctx, const uint8_t* cmd, size_t len,
          uint8_t** out, size_t* out_len, char** error) {
  if (ctx == nullptr || out == nullptr || out_len == nullptr) {
    return fail(error, "apply: NULL argument");
  }
  const uint8_t* cmds[] = {cmd};
  const size_t lens[] = {len};
  return apply_batch<Store>(self, 1, ctx, cmds, lens, out, out_len, error);
}

// synod_backend_api::query for a Store with
//   bool query(std::string_view request, std::string* result, std::string* error);
template <typename Store>
int query(void* self, const uint8_t* req, size_t len, uint8_t** out, size_t* out_len,
          char** error) {
  if (self == nullptr || out == nullptr || out_len == nullptr || (req == nullptr && len != 0)) {
    return fail(error, "query: NULL argument");
  }
  try {
    std::string result;
    std::string why;
    std::string_view bytes(reinterpret_cast<const char*>(req), len);
    if (!static_cast<Store*>(self)->query(bytes, &result, &why)) return fail(error, why);
    if (!copy_out(result, out, out_len)) return fail(error, "query: out of memory for the result");
    return 0;
  } catch (const std::exception& e) {
    return fail(error, std::string("query: ") + e.what());
  } catch (...) {
    return fail(error, "query: unknown exception");
  }
}

template <typename Store>
uint64_t last_applied(void* self) {
  return static_cast<Store*>(self)->last_applied();
}

template <typename Store>
void close(void* self) {
  delete static_cast<Store*>(self);
}

template <typename Store>
int sync(void* self, char** error) {
  std::string message;
  if (static_cast<Store*>(self)->sync(&message)) return 0;
  return fail(error, message);
}

// The end of a backend's open(): Store::open(config, &why) as the instance,
// or nullptr with *error.
template <typename Store, typename Config>
void* open_store(const Config& config, char** error) {
  std::string why;
  auto store = Store::open(config, &why);
  if (!store) {
    fail(error, why);
    return nullptr;
  }
  return store.release();
}

// synod_backend_api::validate for a Store with
//   bool validate(std::string_view command, std::string* why) const;
template <typename Store>
int validate(void* self, const uint8_t* cmd, size_t len, char** error) {
  if (self == nullptr || (cmd == nullptr && len != 0)) return fail(error, "validate: NULL argument");
  try {
    std::string why;
    std::string_view bytes(reinterpret_cast<const char*>(cmd), len);
    if (static_cast<const Store*>(self)->validate(bytes, &why)) return 0;
    return fail(error, why);
  } catch (const std::exception& e) {
    return fail(error, std::string("validate: ") + e.what());
  } catch (...) {
    return fail(error, "validate: unknown exception");
  }
}

// The whole table of a Store with every member above (apply_batch, query,
// last_applied, sync, validate) and no snapshots yet, for backend `name`
// whose open function is `open`.
template <typename Store>
constexpr synod_backend_api store_api(const char* name,
                                      void* (*open)(const char* const*, const char* const*,
                                                    size_t, char**)) {
  return synod_backend_api{SYNOD_BACKEND_ABI_VERSION,
                           sizeof(synod_backend_api),
                           name,
                           open,
                           apply<Store>,
                           query<Store>,
                           last_applied<Store>,
                           nullptr,  // snapshot: a later issue
                           nullptr,  // restore
                           close<Store>,
                           free_buffer,
                           sync<Store>,
                           apply_batch<Store>,
                           validate<Store>};
}

}  // namespace synod::backend_util
