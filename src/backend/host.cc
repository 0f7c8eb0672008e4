#include "backend/host.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#ifndef SYNOD_BUILD_BACKEND_DIR
#error "SYNOD_BUILD_BACKEND_DIR must be defined (src/backend/CMakeLists.txt)"
#endif

namespace synod::backend {

BackendHost::BackendHost() : BackendHost(default_plugin_dirs()) {}

BackendHost::BackendHost(std::vector<std::string> plugin_dirs)
    : plugin_dirs_(std::move(plugin_dirs)) {}

std::vector<std::string> BackendHost::default_plugin_dirs() {
  namespace fs = std::filesystem;
  std::vector<std::string> dirs;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) dirs.push_back((exe.parent_path() / ".." / "lib" / "synod").lexically_normal().string());
  std::string build_dir = fs::path(SYNOD_BUILD_BACKEND_DIR).lexically_normal().string();
  if (std::find(dirs.begin(), dirs.end(), build_dir) == dirs.end()) dirs.push_back(build_dir);
  return dirs;
}

std::string BackendHost::library_file_name(const std::string& name) {
  return "libsynod_backend_" + name + ".so";
}

bool BackendHost::load(const std::string& name, const Options& options, std::string* error) {
  if (name.empty()) {
    *error = "empty backend name";
    return false;
  }
  std::string path;
  std::string expected_name;
  if (name.find('/') != std::string::npos) {
    path = name;
  } else {
    if (backends_.contains(name)) {
      *error = "backend " + name + " is already loaded";
      return false;
    }
    std::string file = library_file_name(name);
    std::error_code ec;
    for (const auto& dir : plugin_dirs_) {
      std::filesystem::path candidate = std::filesystem::path(dir) / file;
      if (std::filesystem::exists(candidate, ec)) {
        path = candidate.string();
        break;
      }
    }
    if (path.empty()) {
      std::string where;
      for (const auto& dir : plugin_dirs_) where += (where.empty() ? "" : ", ") + dir;
      *error = "backend " + name + " not found: no " + file + " in " +
               (where.empty() ? "(no plugin directories)" : where);
      return false;
    }
    expected_name = name;
  }

  std::optional<Backend> backend = Backend::load(path, options, expected_name, error);
  if (!backend) return false;
  std::string registered = backend->name();
  if (backends_.contains(registered)) {
    // Only reachable through a path; the new instance is closed on return.
    *error = "backend " + registered + " is already loaded (" + path + ")";
    return false;
  }
  backends_.emplace(std::move(registered), std::move(*backend));
  return true;
}

bool BackendHost::unload(const std::string& name) { return backends_.erase(name) == 1; }

Backend* BackendHost::get(const std::string& name) {
  auto it = backends_.find(name);
  return it == backends_.end() ? nullptr : &it->second;
}

std::vector<std::string> BackendHost::names() const {
  std::vector<std::string> names;
  for (const auto& [name, backend] : backends_) names.push_back(name);
  return names;
}

Result BackendHost::apply(const std::string& name, const synod_apply_context& ctx,
                          std::string_view command) {
  Backend* backend = get(name);
  if (backend == nullptr) return Result{false, "", "backend " + name + " is not loaded"};
  return backend->apply(ctx, command);
}

Result BackendHost::query(const std::string& name, std::string_view request) {
  Backend* backend = get(name);
  if (backend == nullptr) return Result{false, "", "backend " + name + " is not loaded"};
  return backend->query(request);
}

uint64_t BackendHost::last_applied(const std::string& name) const {
  auto it = backends_.find(name);
  if (it == backends_.end()) return 0;
  return it->second.last_applied();
}

}  // namespace synod::backend
