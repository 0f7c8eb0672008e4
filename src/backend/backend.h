// One loaded backend: a dlopen'd library (include/synod/backend.h) and the
// instance it opened, behind a C++ interface that owns both.
//
// The host never sees a backend's memory: every buffer the backend returns is
// copied into a std::string and given back to the backend's own free_buffer().
//
// Unloading. Libraries are opened with RTLD_NODELETE, so dlclose() drops the
// handle but never unmaps the code. A backend built on a C++ library with
// background threads or thread-local destructors (RocksDB's thread pool, a
// database client's) cannot be unmapped safely while those may still run, and
// there is no portable way to know; keeping the code mapped costs nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "synod/backend.h"

namespace synod::backend {

// open() options: key = value, e.g. {"data_dir", "/var/lib/synod/kv"}.
using Options = std::map<std::string, std::string>;

// The outcome of one call into a backend.
// ok: `bytes` is the backend's result (for apply, the command was applied or
//     was already applied). Failures caused by the command itself (not found,
//     CAS failed, malformed) are encoded in `bytes`, not here.
// !ok: `error` says why the backend could not do it (I/O, a lost connection);
//     for apply nothing was applied and the same command must be retried.
struct Result {
  bool ok = false;
  std::string bytes;
  std::string error;
};

class Backend {
 public:
  // Loads the library at `path`, checks its function table and opens an
  // instance with `options`. When `expected_name` is not empty the library must
  // call itself that. Returns nullopt with *error saying what went wrong: the
  // dlopen error, a missing synod_backend_entry, an ABI version or table size
  // this host does not support, a missing function, or open()'s own message.
  static std::optional<Backend> load(const std::string& path, const Options& options,
                                     const std::string& expected_name, std::string* error);

  Backend(Backend&& other) noexcept;
  Backend& operator=(Backend&& other) noexcept;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;
  // Closes the instance, then drops the library handle.
  ~Backend();

  // The backend's own name (its table's `name`), e.g. "kv".
  const std::string& name() const { return name_; }
  // The file it was loaded from.
  const std::string& path() const { return path_; }

  // Applies one chosen command at position ctx.slot (see
  // synod_backend_api::apply). Calls must be serialised by the caller.
  Result apply(const synod_apply_context& ctx, std::string_view command);
  // Applies commands[i] at positions ctxs[i] in order, as apply() calls would.
  // Appends one result per applied command to *results and returns true when
  // all were applied. False with *error when command results->size() (of those
  // given) could not be: with the backend's apply_batch nothing of the batch
  // was applied; without it, the commands before that one were (one apply()
  // each). Calls must be serialised by the caller.
  bool apply_batch(const std::vector<synod_apply_context>& ctxs,
                   const std::vector<std::string_view>& commands, std::vector<Result>* results,
                   std::string* error);
  // Whether the backend would accept the command (synod_backend_api::validate):
  // ok, or the backend's reason in error. Always ok for backends without
  // validate. From any thread.
  Result validate(std::string_view command) const;
  // Whether the backend applies a batch in one step (apply_batch in its table).
  bool batches() const { return apply_batch_ != nullptr; }
  // A read-only request, from any thread.
  Result query(std::string_view request);
  // The position of the last applied command; 0 before the first.
  uint64_t last_applied() const;
  // Makes every apply so far durable (a no-op for backends without sync()).
  Result sync();

  // Snapshots (a later issue defines their format). False when the backend has
  // none; snapshot() and restore() then fail with a message saying so.
  bool supports_snapshot() const;
  // Streams the state to `write`, which returns false to abort.
  Result snapshot(const std::function<bool(std::span<const uint8_t>)>& write);
  // Replaces the state from `read`, which fills its buffer and returns the
  // number of bytes (0 = end), or nullopt to abort.
  Result restore(const std::function<std::optional<size_t>(std::span<uint8_t>)>& read);

 private:
  struct LibraryCloser {
    void operator()(void* handle) const;
  };
  using Library = std::unique_ptr<void, LibraryCloser>;

  Backend(Library library, const synod_backend_api* api, void* instance, std::string path);
  void close();
  // Copies a buffer the backend returned and hands it back to free_buffer().
  std::string take(uint8_t* data, size_t len) const;
  std::string take_error(char* error, std::string_view what) const;

  Library library_;
  const synod_backend_api* api_ = nullptr;
  // api_->apply_batch when the table has it (struct_size), else nullptr.
  decltype(synod_backend_api::apply_batch) apply_batch_ = nullptr;
  // api_->validate when the table has it, else nullptr.
  decltype(synod_backend_api::validate) validate_ = nullptr;
  void* instance_ = nullptr;
  std::string name_;
  std::string path_;
};

}  // namespace synod::backend
