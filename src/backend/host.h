// BackendHost: the backends a node has loaded, each under its name.
//
// A backend named NAME lives in libsynod_backend_NAME.so. The host looks for it
// in its plugin directories, in order; by default:
//   1. <directory of the running executable>/../lib/synod  (an installed tree:
//      bin/synod next to lib/synod/);
//   2. the build tree's backend directory, ${PROJECT_BINARY_DIR}/lib/synod,
//      where CMake puts every backend (so binaries run from the build tree,
//      tests included, find them without installing).
// A name containing '/' is a path to a library file instead, and the backend is
// registered under the name its table gives.
//
// Threads: load() and unload() must not run concurrently with any other call.
// Between them, apply()/query()/last_applied()/get() may be called from
// several threads, within the limits of synod/backend.h (one apply at a time
// per backend).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.h"

namespace synod::backend {

class BackendHost {
 public:
  // Uses default_plugin_dirs().
  BackendHost();
  // Searches `plugin_dirs`, in order (may be empty: then only paths load).
  explicit BackendHost(std::vector<std::string> plugin_dirs);

  // The default search path (see above), without duplicates.
  static std::vector<std::string> default_plugin_dirs();
  // The file name of backend `name`: "libsynod_backend_" + name + ".so".
  static std::string library_file_name(const std::string& name);

  const std::vector<std::string>& plugin_dirs() const { return plugin_dirs_; }

  // Loads backend `name` (or the library at a path, see above) and opens it
  // with `options`. False with *error when it is already loaded, not found
  // (the message names every place it looked), or Backend::load fails.
  bool load(const std::string& name, const Options& options, std::string* error);
  // Closes and unloads backend `name`; false when it is not loaded.
  bool unload(const std::string& name);

  // The loaded backend `name`, or nullptr. The pointer stays valid until that
  // backend is unloaded or the host is destroyed.
  Backend* get(const std::string& name);
  // The names of the loaded backends, sorted.
  std::vector<std::string> names() const;

  // Backend::apply / query on backend `name`; an unknown name is an error
  // result ("backend x is not loaded").
  Result apply(const std::string& name, const synod_apply_context& ctx, std::string_view command);
  Result query(const std::string& name, std::string_view request);
  // Backend::last_applied of backend `name`; 0 when it is not loaded.
  uint64_t last_applied(const std::string& name) const;

 private:
  std::vector<std::string> plugin_dirs_;
  std::map<std::string, Backend, std::less<>> backends_;
};

}  // namespace synod::backend
