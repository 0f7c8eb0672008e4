// Helpers for C++ backends on the C ABI of synod/backend.h: buffers cross the
// ABI as malloc'd memory that the backend's free_buffer() releases with free().
// Header-only, no dependencies beyond the C++ standard library.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

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

}  // namespace synod::backend_util
