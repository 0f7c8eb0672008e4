#include "backend/backend.h"

#include <dlfcn.h>

#include <cstddef>
#include <filesystem>
#include <utility>
#include <vector>

namespace synod::backend {

// Every table has at least the functions of the first ABI 1 header (up to
// sync); the ones appended since are optional (struct_size says).
constexpr std::size_t kBaseTableSize =
    offsetof(synod_backend_api, sync) + sizeof(synod_backend_api::sync);
namespace {

// The functions every ABI-1 backend must have (snapshot/restore may be NULL).
std::string missing_function(const synod_backend_api& api) {
  if (api.open == nullptr) return "open";
  if (api.apply == nullptr) return "apply";
  if (api.query == nullptr) return "query";
  if (api.last_applied == nullptr) return "last_applied";
  if (api.close == nullptr) return "close";
  if (api.free_buffer == nullptr) return "free_buffer";
  return "";
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

// Trampolines for snapshot streams: the std::function travels as `arg`, and no
// exception may cross the backend's C frames.
using WriteFn = std::function<bool(std::span<const uint8_t>)>;
using ReadFn = std::function<std::optional<size_t>(std::span<uint8_t>)>;

int write_trampoline(void* arg, const uint8_t* data, size_t len) {
  try {
    return (*static_cast<const WriteFn*>(arg))(std::span<const uint8_t>(data, len)) ? 0 : 1;
  } catch (...) {
    return 1;
  }
}

int read_trampoline(void* arg, uint8_t* data, size_t cap, size_t* got) {
  try {
    auto n = (*static_cast<const ReadFn*>(arg))(std::span<uint8_t>(data, cap));
    if (!n || *n > cap) return 1;
    *got = *n;
    return 0;
  } catch (...) {
    return 1;
  }
}

}  // namespace

void Backend::LibraryCloser::operator()(void* handle) const {
  if (handle != nullptr) dlclose(handle);
}

std::optional<Backend> Backend::load(const std::string& path, const Options& options,
                                     const std::string& expected_name, std::string* error) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    *error = "backend library " + path + " does not exist";
    return std::nullopt;
  }
  // RTLD_LOCAL: backends' symbols never resolve each other's. RTLD_NODELETE:
  // see the header. RTLD_NOW: an unresolved symbol fails here, not mid-apply.
  dlerror();
  Library library(dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE));
  if (!library) {
    const char* why = dlerror();
    *error = "cannot load backend library " + path + ": " + (why ? why : "unknown dlopen error");
    return std::nullopt;
  }
  dlerror();
  void* symbol = dlsym(library.get(), SYNOD_BACKEND_ENTRY_SYMBOL);
  if (symbol == nullptr) {
    *error = "backend library " + path +
             " does not export " SYNOD_BACKEND_ENTRY_SYMBOL " (is it a Synod backend?)";
    return std::nullopt;
  }
  // POSIX guarantees a data pointer from dlsym converts to a function pointer.
  auto entry = reinterpret_cast<synod_backend_entry_fn>(symbol);
  const synod_backend_api* api = entry();
  if (api == nullptr) {
    *error = "backend library " + path + ": " SYNOD_BACKEND_ENTRY_SYMBOL "() returned NULL";
    return std::nullopt;
  }

  // abi_version, struct_size and name keep their place in every version, so
  // they are safe to read before the version is known to match.
  std::string label = !expected_name.empty() ? expected_name
                      : api->name != nullptr ? std::string(api->name)
                                             : path;
  if (api->abi_version != SYNOD_BACKEND_ABI_VERSION) {
    *error = "backend " + label + " has ABI version " + std::to_string(api->abi_version) +
             ", this host supports " + std::to_string(SYNOD_BACKEND_ABI_VERSION) + " (" + path +
             ")";
    return std::nullopt;
  }
  if (api->struct_size < kBaseTableSize) {
    *error = "backend " + label + " has a function table of " + std::to_string(api->struct_size) +
             " bytes, ABI version " + std::to_string(SYNOD_BACKEND_ABI_VERSION) +
             " needs at least " + std::to_string(kBaseTableSize) + " (" + path + ")";
    return std::nullopt;
  }
  if (api->name == nullptr || !valid_name(api->name)) {
    *error = "backend library " + path +
             " has no valid name (lowercase letters, digits and '_', at most 64)";
    return std::nullopt;
  }
  if (!expected_name.empty() && expected_name != api->name) {
    *error = "backend library " + path + " calls itself '" + api->name + "', expected '" +
             expected_name + "'";
    return std::nullopt;
  }
  if (std::string fn = missing_function(*api); !fn.empty()) {
    *error = "backend " + label + " does not implement " + fn + " (" + path + ")";
    return std::nullopt;
  }
  if ((api->snapshot == nullptr) != (api->restore == nullptr)) {
    *error = "backend " + label + " implements only one of snapshot and restore (" + path + ")";
    return std::nullopt;
  }

  std::vector<const char*> keys;
  std::vector<const char*> values;
  for (const auto& [k, v] : options) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  char* open_error = nullptr;
  void* instance = api->open(keys.data(), values.data(), options.size(), &open_error);
  if (instance == nullptr) {
    std::string why = open_error != nullptr ? open_error : "no reason given";
    api->free_buffer(open_error);
    *error = "backend " + label + ": open failed: " + why;
    return std::nullopt;
  }
  api->free_buffer(open_error);  // a backend may set it even on success
  return Backend(std::move(library), api, instance, path);
}

Backend::Backend(Library library, const synod_backend_api* api, void* instance, std::string path)
    : library_(std::move(library)),
      api_(api),
      apply_batch_(api->struct_size >= offsetof(synod_backend_api, apply_batch) +
                                            sizeof(api->apply_batch)
                       ? api->apply_batch
                       : nullptr),
      validate_(api->struct_size >= offsetof(synod_backend_api, validate) + sizeof(api->validate)
                    ? api->validate
                    : nullptr),
      instance_(instance),
      name_(api->name),
      path_(std::move(path)) {}

Backend::Backend(Backend&& other) noexcept
    : library_(std::move(other.library_)),
      api_(std::exchange(other.api_, nullptr)),
      apply_batch_(std::exchange(other.apply_batch_, nullptr)),
      validate_(std::exchange(other.validate_, nullptr)),
      instance_(std::exchange(other.instance_, nullptr)),
      name_(std::move(other.name_)),
      path_(std::move(other.path_)) {}

Backend& Backend::operator=(Backend&& other) noexcept {
  if (this != &other) {
    close();
    library_ = std::move(other.library_);
    api_ = std::exchange(other.api_, nullptr);
    apply_batch_ = std::exchange(other.apply_batch_, nullptr);
    validate_ = std::exchange(other.validate_, nullptr);
    instance_ = std::exchange(other.instance_, nullptr);
    name_ = std::move(other.name_);
    path_ = std::move(other.path_);
  }
  return *this;
}

Backend::~Backend() { close(); }

void Backend::close() {
  // The instance before the library that holds its code.
  if (instance_ != nullptr) api_->close(instance_);
  instance_ = nullptr;
  api_ = nullptr;
  library_.reset();
}

std::string Backend::take(uint8_t* data, size_t len) const {
  std::string bytes;
  if (data != nullptr) bytes.assign(reinterpret_cast<const char*>(data), len);
  api_->free_buffer(data);
  return bytes;
}

std::string Backend::take_error(char* error, std::string_view what) const {
  std::string message = "backend " + name_ + ": " + std::string(what) + " failed: ";
  message += error != nullptr ? error : "no reason given";
  api_->free_buffer(error);
  return message;
}

Result Backend::apply(const synod_apply_context& ctx, std::string_view command) {
  uint8_t* out = nullptr;
  size_t out_len = 0;
  char* error = nullptr;
  int rc = api_->apply(instance_, &ctx, reinterpret_cast<const uint8_t*>(command.data()),
                       command.size(), &out, &out_len, &error);
  Result result;
  if (rc != 0) {
    take(out, 0);
    result.error = take_error(error, "apply at position " + std::to_string(ctx.slot));
    return result;
  }
  api_->free_buffer(error);
  result.ok = true;
  result.bytes = take(out, out_len);
  return result;
}

bool Backend::apply_batch(const std::vector<synod_apply_context>& ctxs,
                          const std::vector<std::string_view>& commands,
                          std::vector<Result>* results, std::string* error) {
  const std::size_t n = ctxs.size();
  if (n == 0) return true;
  if (apply_batch_ == nullptr || n == 1) {
    for (std::size_t i = 0; i < n; ++i) {
      Result r = apply(ctxs[i], commands[i]);
      if (!r.ok) {
        *error = std::move(r.error);
        return false;
      }
      results->push_back(std::move(r));
    }
    return true;
  }
  std::vector<const uint8_t*> cmds(n);
  std::vector<size_t> lens(n);
  for (std::size_t i = 0; i < n; ++i) {
    cmds[i] = reinterpret_cast<const uint8_t*>(commands[i].data());
    lens[i] = commands[i].size();
  }
  std::vector<uint8_t*> outs(n, nullptr);
  std::vector<size_t> out_lens(n, 0);
  char* err = nullptr;
  const int rc = apply_batch_(instance_, n, ctxs.data(), cmds.data(), lens.data(), outs.data(),
                              out_lens.data(), &err);
  if (rc != 0) {
    for (uint8_t* p : outs) take(p, 0);
    *error = take_error(err, "apply of positions " + std::to_string(ctxs.front().slot) + "-" +
                                 std::to_string(ctxs.back().slot));
    return false;
  }
  api_->free_buffer(err);
  for (std::size_t i = 0; i < n; ++i) {
    Result r;
    r.ok = true;
    r.bytes = take(outs[i], out_lens[i]);
    results->push_back(std::move(r));
  }
  return true;
}

Result Backend::query(std::string_view request) {
  uint8_t* out = nullptr;
  size_t out_len = 0;
  char* error = nullptr;
  int rc = api_->query(instance_, reinterpret_cast<const uint8_t*>(request.data()), request.size(),
                       &out, &out_len, &error);
  Result result;
  if (rc != 0) {
    take(out, 0);
    result.error = take_error(error, "query");
    return result;
  }
  api_->free_buffer(error);
  result.ok = true;
  result.bytes = take(out, out_len);
  return result;
}

Result Backend::validate(std::string_view command) const {
  Result result;
  if (validate_ == nullptr) {
    result.ok = true;
    return result;
  }
  char* error = nullptr;
  if (validate_(instance_, reinterpret_cast<const uint8_t*>(command.data()), command.size(),
                &error) != 0) {
    result.error = error != nullptr ? error : "refused (no reason given)";
    api_->free_buffer(error);
    return result;
  }
  api_->free_buffer(error);
  result.ok = true;
  return result;
}

uint64_t Backend::last_applied() const { return api_->last_applied(instance_); }

Result Backend::sync() {
  Result result;
  if (api_->sync == nullptr) {
    result.ok = true;
    return result;
  }
  char* error = nullptr;
  if (api_->sync(instance_, &error) != 0) {
    result.error = take_error(error, "sync");
    return result;
  }
  api_->free_buffer(error);
  result.ok = true;
  return result;
}

bool Backend::supports_snapshot() const { return api_->snapshot != nullptr; }

Result Backend::snapshot(const std::function<bool(std::span<const uint8_t>)>& write) {
  Result result;
  if (!supports_snapshot()) {
    result.error = "backend " + name_ + " does not support snapshots";
    return result;
  }
  char* error = nullptr;
  WriteFn fn = write;
  if (api_->snapshot(instance_, write_trampoline, &fn, &error) != 0) {
    result.error = take_error(error, "snapshot");
    return result;
  }
  api_->free_buffer(error);
  result.ok = true;
  return result;
}

Result Backend::restore(const std::function<std::optional<size_t>(std::span<uint8_t>)>& read) {
  Result result;
  if (!supports_snapshot()) {
    result.error = "backend " + name_ + " does not support snapshots";
    return result;
  }
  char* error = nullptr;
  ReadFn fn = read;
  if (api_->restore(instance_, read_trampoline, &fn, &error) != 0) {
    result.error = take_error(error, "restore");
    return result;
  }
  api_->free_buffer(error);
  result.ok = true;
  return result;
}

}  // namespace synod::backend
