// The C API (include/synod/client.h) over the C++ client. Built into
// libsynod_client.so with hidden visibility and a version script, so the
// synod_* functions are its only exported symbols.
#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <string_view>

#include "synod/client.h"
#include "synod/client.hpp"

struct synod_client {
  std::unique_ptr<synod::client::Client> client;
};

struct synod_lock_session {
  std::unique_ptr<synod::client::LockSession> session;
};

namespace {

using synod::client::CallOptions;
using synod::client::Code;
using synod::client::Consistency;
using synod::client::Result;

// A malloc'd copy with a NUL after it; nullptr when out of memory.
char* copy_bytes(std::string_view bytes) {
  char* p = static_cast<char*>(std::malloc(bytes.size() + 1));
  if (p == nullptr) return nullptr;
  if (!bytes.empty()) std::memcpy(p, bytes.data(), bytes.size());
  p[bytes.size()] = '\0';
  return p;
}

void set_error(char** error, std::string_view message) {
  if (error != nullptr) *error = copy_bytes(message);
}

void clear_error(char** error) {
  if (error != nullptr) *error = nullptr;
}

synod_code to_c(Code code) {
  switch (code) {
    case Code::kOk:
      return SYNOD_OK;
    case Code::kNotFound:
      return SYNOD_NOT_FOUND;
    case Code::kCasFailed:
      return SYNOD_CAS_FAILED;
    case Code::kNotANumber:
      return SYNOD_NOT_A_NUMBER;
    case Code::kTimeout:
      return SYNOD_TIMEOUT;
    case Code::kUnavailable:
      return SYNOD_UNAVAILABLE;
    case Code::kBadRequest:
      return SYNOD_BAD_REQUEST;
    case Code::kBackendError:
      return SYNOD_BACKEND_ERROR;
    case Code::kProtocolError:
      return SYNOD_PROTOCOL_ERROR;
    case Code::kResultLost:
      return SYNOD_RESULT_LOST;
    case Code::kLockBusy:
      return SYNOD_LOCK_BUSY;
    case Code::kSessionLost:
      return SYNOD_SESSION_LOST;
  }
  return SYNOD_PROTOCOL_ERROR;
}

synod_code finish(const synod::client::LockResult& r, char** error) {
  if (r.ok()) {
    clear_error(error);
  } else {
    set_error(error, r.message.empty() ? synod::client::code_name(r.code) : r.message);
  }
  return to_c(r.code);
}

synod_code finish(const Result& r, char** error) {
  if (r.ok()) {
    clear_error(error);
  } else {
    set_error(error, r.message.empty() ? synod::client::code_name(r.code) : r.message);
  }
  return to_c(r.code);
}

synod_code bad(char** error, const char* message) {
  set_error(error, message);
  return SYNOD_BAD_REQUEST;
}

// A (pointer, length) argument: NULL is fine only with length 0.
bool bytes_ok(const char* p, std::size_t len) { return p != nullptr || len == 0; }

std::string_view view(const char* p, std::size_t len) {
  return len == 0 ? std::string_view() : std::string_view(p, len);
}

CallOptions call_options(int timeout_ms, synod_consistency consistency) {
  CallOptions c;
  if (timeout_ms > 0) c.timeout = std::chrono::milliseconds(timeout_ms);
  if (consistency == SYNOD_LOCAL) c.consistency = Consistency::kLocal;
  if (consistency == SYNOD_LINEARIZABLE) c.consistency = Consistency::kLinearizable;
  return c;
}

bool consistency_ok(synod_consistency c) {
  return c == SYNOD_DEFAULT_CONSISTENCY || c == SYNOD_LOCAL || c == SYNOD_LINEARIZABLE;
}

synod_code out_of_memory(char** error) {
  set_error(error, "out of memory");
  return SYNOD_BAD_REQUEST;
}

// Runs f (a C++ call) and turns any exception into an error: none may cross
// into C.
template <typename F>
synod_code guarded(char** error, F&& f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return out_of_memory(error);
  } catch (const std::exception& e) {
    set_error(error, std::string("internal error: ") + e.what());
    return SYNOD_PROTOCOL_ERROR;
  }
}

// The defaults d into a caller's struct of `size` bytes (its header's sizeof):
// no more than that is written, and struct_size says how much.
template <typename T>
void fill_defaults(T* out, std::size_t size, const T& d) {
  if (out == nullptr || size < sizeof(std::size_t)) return;
  size = std::min(size, sizeof(T));
  std::memcpy(static_cast<void*>(out), &d, size);
  out->struct_size = size;
}

}  // namespace

extern "C" {

void synod_options_init_sized(synod_options* options, size_t size) {
  synod_options d;
  std::memset(&d, 0, sizeof(d));
  d.struct_size = sizeof(d);
  d.timeout_ms = 5000;
  d.attempt_timeout_ms = 1000;
  fill_defaults(options, size, d);
}

// The function behind the macro, for bindings (ctypes, cgo) and function
// pointers: the library's own size.
#undef synod_options_init
void synod_options_init(synod_options* options) {
  synod_options_init_sized(options, sizeof(synod_options));
}

synod_client* synod_client_open_with(const char* nodes_csv, const synod_options* options,
                                     char** error) {
  clear_error(error);
  if (nodes_csv == nullptr) {
    set_error(error, "no node addresses given");
    return nullptr;
  }
  synod_options o;
  synod_options_init_sized(&o, sizeof(o));
  if (options != nullptr) {
    if (options->struct_size < sizeof(std::size_t) || options->struct_size > sizeof(o)) {
      set_error(error, "synod_options not initialized with synod_options_init");
      return nullptr;
    }
    std::memcpy(&o, options, options->struct_size);
  }
  if (o.timeout_ms <= 0 || o.attempt_timeout_ms <= 0) {
    set_error(error, "timeouts must be positive");
    return nullptr;
  }
  try {
    synod::client::Options opt;
    opt.timeout = std::chrono::milliseconds(o.timeout_ms);
    opt.attempt_timeout = std::chrono::milliseconds(o.attempt_timeout_ms);
    opt.read_consistency = o.linearizable_reads ? Consistency::kLinearizable : Consistency::kLocal;
    opt.prefer_redirect = o.prefer_redirect != 0;
    opt.client_id = o.client_id;
    if (o.cluster != nullptr) opt.cluster = o.cluster;
    if (o.kv_backend != nullptr) opt.kv_backend = o.kv_backend;
    std::string why;
    auto client = synod::client::Client::connect({nodes_csv}, std::move(opt), &why);
    if (!client) {
      set_error(error, why);
      return nullptr;
    }
    return new synod_client{std::move(client)};
  } catch (const std::exception& e) {
    set_error(error, std::string("cannot open the client: ") + e.what());
    return nullptr;
  }
}

synod_client* synod_client_open(const char* nodes_csv, int timeout_ms, char** error) {
  synod_options o;
  synod_options_init_sized(&o, sizeof(o));
  o.timeout_ms = timeout_ms;
  return synod_client_open_with(nodes_csv, &o, error);
}

void synod_client_close(synod_client* client) {
  if (client == nullptr) return;
  client->client->close();
  delete client;
}

void synod_free(void* p) { std::free(p); }

const char* synod_code_name(synod_code code) {
  switch (code) {
    case SYNOD_OK:
      return "ok";
    case SYNOD_NOT_FOUND:
      return "not_found";
    case SYNOD_CAS_FAILED:
      return "cas_failed";
    case SYNOD_NOT_A_NUMBER:
      return "not_a_number";
    case SYNOD_TIMEOUT:
      return "timeout";
    case SYNOD_UNAVAILABLE:
      return "unavailable";
    case SYNOD_BAD_REQUEST:
      return "bad_request";
    case SYNOD_BACKEND_ERROR:
      return "backend_error";
    case SYNOD_PROTOCOL_ERROR:
      return "protocol_error";
    case SYNOD_RESULT_LOST:
      return "result_lost";
    case SYNOD_LOCK_BUSY:
      return "lock_busy";
    case SYNOD_SESSION_LOST:
      return "session_lost";
  }
  return "unknown";
}

synod_code synod_put(synod_client* client, const char* key, size_t key_len, const char* value,
                     size_t value_len, int timeout_ms, char** error) {
  if (client == nullptr) return bad(error, "client is NULL");
  if (!bytes_ok(key, key_len) || !bytes_ok(value, value_len)) {
    return bad(error, "NULL pointer with a nonzero length");
  }
  return guarded(error, [&] {
    return finish(client->client->put(view(key, key_len), view(value, value_len),
                                      call_options(timeout_ms, SYNOD_DEFAULT_CONSISTENCY)),
                  error);
  });
}

synod_code synod_get(synod_client* client, const char* key, size_t key_len,
                     synod_consistency consistency, int timeout_ms, char** value, size_t* value_len,
                     char** error) {
  if (value != nullptr) *value = nullptr;
  if (value_len != nullptr) *value_len = 0;
  if (client == nullptr) return bad(error, "client is NULL");
  if (value == nullptr) return bad(error, "value (the out-parameter) is NULL");
  if (!bytes_ok(key, key_len)) return bad(error, "NULL key with a nonzero length");
  if (!consistency_ok(consistency)) return bad(error, "unknown consistency");
  return guarded(error, [&] {
    Result r = client->client->get(view(key, key_len), call_options(timeout_ms, consistency));
    if (r.ok()) {
      *value = copy_bytes(r.value);
      if (*value == nullptr) return out_of_memory(error);
      if (value_len != nullptr) *value_len = r.value.size();
    }
    return finish(r, error);
  });
}

synod_code synod_del(synod_client* client, const char* key, size_t key_len, int timeout_ms,
                     char** error) {
  if (client == nullptr) return bad(error, "client is NULL");
  if (!bytes_ok(key, key_len)) return bad(error, "NULL key with a nonzero length");
  return guarded(error, [&] {
    return finish(client->client->del(view(key, key_len),
                                      call_options(timeout_ms, SYNOD_DEFAULT_CONSISTENCY)),
                  error);
  });
}

synod_code synod_cas(synod_client* client, const char* key, size_t key_len, const char* expected,
                     size_t expected_len, const char* value, size_t value_len, int timeout_ms,
                     char** error) {
  if (client == nullptr) return bad(error, "client is NULL");
  if (!bytes_ok(key, key_len) || !bytes_ok(value, value_len)) {
    return bad(error, "NULL pointer with a nonzero length");
  }
  return guarded(error, [&] {
    std::optional<std::string_view> want;
    if (expected != nullptr) want = view(expected, expected_len);
    return finish(client->client->cas(view(key, key_len), want, view(value, value_len),
                                      call_options(timeout_ms, SYNOD_DEFAULT_CONSISTENCY)),
                  error);
  });
}

synod_code synod_incr(synod_client* client, const char* key, size_t key_len, int64_t delta,
                      int timeout_ms, int64_t* result, char** error) {
  if (client == nullptr) return bad(error, "client is NULL");
  if (!bytes_ok(key, key_len)) return bad(error, "NULL key with a nonzero length");
  return guarded(error, [&] {
    Result r = client->client->incr(view(key, key_len), delta,
                                    call_options(timeout_ms, SYNOD_DEFAULT_CONSISTENCY));
    if (r.ok() && result != nullptr) *result = r.number;
    return finish(r, error);
  });
}

synod_code synod_keys(synod_client* client, const char* prefix, size_t prefix_len, uint32_t limit,
                      synod_consistency consistency, int timeout_ms, synod_bytes** keys,
                      size_t* count, char** error) {
  if (keys != nullptr) *keys = nullptr;
  if (count != nullptr) *count = 0;
  if (client == nullptr) return bad(error, "client is NULL");
  if (keys == nullptr || count == nullptr) return bad(error, "keys or count is NULL");
  if (!bytes_ok(prefix, prefix_len)) return bad(error, "NULL prefix with a nonzero length");
  if (!consistency_ok(consistency)) return bad(error, "unknown consistency");
  return guarded(error, [&] {
    Result r = client->client->keys(view(prefix, prefix_len), limit,
                                    call_options(timeout_ms, consistency));
    if (r.ok() && !r.keys.empty()) {
      // One block: the array, then every key with its NUL.
      std::size_t bytes = r.keys.size() * sizeof(synod_bytes);
      for (const auto& k : r.keys) bytes += k.size() + 1;
      auto* block = static_cast<char*>(std::malloc(bytes));
      if (block == nullptr) return out_of_memory(error);
      auto* array = reinterpret_cast<synod_bytes*>(block);
      char* data = block + r.keys.size() * sizeof(synod_bytes);
      for (std::size_t i = 0; i < r.keys.size(); ++i) {
        const std::string& k = r.keys[i];
        if (!k.empty()) std::memcpy(data, k.data(), k.size());
        data[k.size()] = '\0';
        array[i].data = data;
        array[i].len = k.size();
        data += k.size() + 1;
      }
      *keys = array;
      *count = r.keys.size();
    }
    return finish(r, error);
  });
}

synod_code synod_write(synod_client* client, const char* backend, const char* payload,
                       size_t payload_len, int timeout_ms, char** result, size_t* result_len,
                       char** error) {
  if (result != nullptr) *result = nullptr;
  if (result_len != nullptr) *result_len = 0;
  if (client == nullptr) return bad(error, "client is NULL");
  if (backend == nullptr) return bad(error, "backend is NULL");
  if (!bytes_ok(payload, payload_len)) return bad(error, "NULL payload with a nonzero length");
  return guarded(error, [&] {
    Result r = client->client->write(backend, view(payload, payload_len),
                                     call_options(timeout_ms, SYNOD_DEFAULT_CONSISTENCY));
    if (r.ok() && result != nullptr) {
      *result = copy_bytes(r.value);
      if (*result == nullptr) return out_of_memory(error);
      if (result_len != nullptr) *result_len = r.value.size();
    }
    return finish(r, error);
  });
}

synod_code synod_read(synod_client* client, const char* backend, const char* payload,
                      size_t payload_len, synod_consistency consistency, int timeout_ms,
                      char** result, size_t* result_len, char** error) {
  if (result != nullptr) *result = nullptr;
  if (result_len != nullptr) *result_len = 0;
  if (client == nullptr) return bad(error, "client is NULL");
  if (backend == nullptr) return bad(error, "backend is NULL");
  if (!bytes_ok(payload, payload_len)) return bad(error, "NULL payload with a nonzero length");
  if (!consistency_ok(consistency)) return bad(error, "unknown consistency");
  return guarded(error, [&] {
    Result r = client->client->read(backend, view(payload, payload_len),
                                    call_options(timeout_ms, consistency));
    if (r.ok() && result != nullptr) {
      *result = copy_bytes(r.value);
      if (*result == nullptr) return out_of_memory(error);
      if (result_len != nullptr) *result_len = r.value.size();
    }
    return finish(r, error);
  });
}

void synod_lock_options_init_sized(synod_lock_options* options, size_t size) {
  synod_lock_options d;
  std::memset(&d, 0, sizeof(d));
  d.struct_size = sizeof(d);
  d.ttl_ms = 10000;
  d.lock_delay_ms = 5000;
  fill_defaults(options, size, d);
}

// The exported function fills only what the first version's struct had (it
// ended before lock_delay_ms): a program built against that header calls it
// with the smaller struct. Bindings call synod_lock_options_init_sized.
#undef synod_lock_options_init
void synod_lock_options_init(synod_lock_options* options) {
  synod_lock_options_init_sized(options, offsetof(synod_lock_options, lock_delay_ms));
}

synod_code synod_lock_session_open(synod_client* client, const synod_lock_options* options,
                                   synod_lock_session** session, char** error) {
  if (session != nullptr) *session = nullptr;
  if (client == nullptr) return bad(error, "client is NULL");
  if (session == nullptr) return bad(error, "session (the out-parameter) is NULL");
  synod_lock_options o;
  synod_lock_options_init_sized(&o, sizeof(o));
  if (options != nullptr) {
    if (options->struct_size < sizeof(std::size_t) || options->struct_size > sizeof(o)) {
      return bad(error, "synod_lock_options not initialized with synod_lock_options_init");
    }
    std::memcpy(&o, options, options->struct_size);
  }
  if (o.keepalive_ms < 0 || o.timeout_ms < 0) {
    return bad(error, "keepalive_ms and timeout_ms must not be negative");
  }
  return guarded(error, [&] {
    synod::client::LockSessionOptions so;
    so.ttl = std::chrono::milliseconds(o.ttl_ms);
    so.keepalive_interval = std::chrono::milliseconds(o.keepalive_ms);
    so.call_timeout = std::chrono::milliseconds(o.timeout_ms);
    so.lock_delay = std::chrono::milliseconds(o.lock_delay_ms);
    if (o.backend != nullptr) so.backend = o.backend;
    if (o.on_lost != nullptr) {
      so.on_lost = [fn = o.on_lost, arg = o.on_lost_arg](const std::string& reason) {
        fn(arg, reason.c_str());
      };
    }
    Result r;
    auto s = synod::client::LockSession::open(*client->client, std::move(so), &r);
    if (!s) return finish(r, error);
    *session = new synod_lock_session{std::move(s)};
    clear_error(error);
    return SYNOD_OK;
  });
}

void synod_lock_session_close(synod_lock_session* session) {
  if (session == nullptr) return;
  try {
    session->session->close();
  } catch (...) {
    // Nothing may cross into C; the session expires on the cluster by itself.
  }
  delete session;
}

uint64_t synod_lock_session_id(const synod_lock_session* session) {
  return session == nullptr ? 0 : session->session->id();
}

int synod_lock_session_lost(const synod_lock_session* session, char** reason) {
  if (reason != nullptr) *reason = nullptr;
  if (session == nullptr) return 0;
  try {
    if (!session->session->lost()) return 0;
    if (reason != nullptr) *reason = copy_bytes(session->session->lost_reason());
  } catch (...) {
  }
  return 1;
}

synod_code synod_lock_acquire(synod_lock_session* session, const char* name, int shared,
                              int wait_ms, uint64_t* token, char** error) {
  if (token != nullptr) *token = 0;
  if (session == nullptr) return bad(error, "session is NULL");
  if (name == nullptr) return bad(error, "name is NULL");
  return guarded(error, [&] {
    synod::client::AcquireOptions a;
    a.mode = shared != 0 ? synod::client::LockMode::kShared : synod::client::LockMode::kExclusive;
    a.wait = wait_ms < 0 ? synod::client::kWaitForever : std::chrono::milliseconds(wait_ms);
    const synod::client::LockResult r = session->session->acquire(name, a);
    if (r.ok() && token != nullptr) *token = r.token;
    return finish(r, error);
  });
}

synod_code synod_lock_release(synod_lock_session* session, const char* name, char** error) {
  if (session == nullptr) return bad(error, "session is NULL");
  if (name == nullptr) return bad(error, "name is NULL");
  return guarded(error, [&] { return finish(session->session->release(name), error); });
}

synod_code synod_lock_release_for(synod_client* client, const char* name, uint64_t session_id,
                                  int timeout_ms, char** error) {
  if (client == nullptr) return bad(error, "client is NULL");
  if (name == nullptr) return bad(error, "name is NULL");
  return guarded(error, [&] {
    return finish(synod::client::release_lock(*client->client, name, session_id,
                                              call_options(timeout_ms, SYNOD_DEFAULT_CONSISTENCY)),
                  error);
  });
}

synod_code synod_lock_show(synod_client* client, const char* name, synod_consistency consistency,
                           int timeout_ms, char** json, char** error) {
  if (json != nullptr) *json = nullptr;
  if (client == nullptr) return bad(error, "client is NULL");
  if (name == nullptr || json == nullptr) return bad(error, "name or json is NULL");
  if (!consistency_ok(consistency)) return bad(error, "unknown consistency");
  return guarded(error, [&] {
    Result r = synod::client::show_lock(*client->client, name, nullptr,
                                        call_options(timeout_ms, consistency));
    if (r.ok()) {
      *json = copy_bytes(r.value);
      if (*json == nullptr) return out_of_memory(error);
    }
    return finish(r, error);
  });
}

synod_code synod_lock_list(synod_client* client, synod_consistency consistency, int timeout_ms,
                           char** json, char** error) {
  if (json != nullptr) *json = nullptr;
  if (client == nullptr) return bad(error, "client is NULL");
  if (json == nullptr) return bad(error, "json is NULL");
  if (!consistency_ok(consistency)) return bad(error, "unknown consistency");
  return guarded(error, [&] {
    Result r =
        synod::client::list_locks(*client->client, nullptr, call_options(timeout_ms, consistency));
    if (r.ok()) {
      *json = copy_bytes(r.value);
      if (*json == nullptr) return out_of_memory(error);
    }
    return finish(r, error);
  });
}

synod_code synod_lock_check(synod_client* client, const char* name, uint64_t token,
                            synod_consistency consistency, int timeout_ms, int* current,
                            uint64_t* newest, char** error) {
  if (current != nullptr) *current = 0;
  if (newest != nullptr) *newest = 0;
  if (client == nullptr) return bad(error, "client is NULL");
  if (name == nullptr || current == nullptr) return bad(error, "name or current is NULL");
  if (!consistency_ok(consistency)) return bad(error, "unknown consistency");
  return guarded(error, [&] {
    bool is_current = false;
    std::uint64_t newest_token = 0;
    Result r = synod::client::check_lock_token(*client->client, name, token, &is_current,
                                               &newest_token, call_options(timeout_ms, consistency));
    if (r.ok()) {
      *current = is_current ? 1 : 0;
      if (newest != nullptr) *newest = newest_token;
    }
    return finish(r, error);
  });
}

}  // extern "C"
