// The lock calls of the client on top of its generic write/read: the JSON
// commands of the "lock" backend (docs/LOCKS.md) and the decoding of its
// answers. Pure functions, no I/O: unit-tested without a server (lock_ops_test.cc).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "synod/client.hpp"

namespace synod::client {

enum class LockOp { kOpen, kKeepalive, kClose, kAcquire, kCancel, kRelease, kStatus, kShow,
                    kList, kCheck };

std::string encode_lock_open(std::int64_t ttl_ms, std::int64_t lock_delay_ms);
std::string encode_lock_keepalive(std::uint64_t session);
std::string encode_lock_close(std::uint64_t session);
// req: the session's request number (0: none). A release or cancel with req R
// makes the backend refuse this session's acquires of the lock up to R that
// arrive later; a cancel with R also ends a wait or grant only they asked for.
std::string encode_lock_acquire(std::uint64_t session, std::string_view name, LockMode mode,
                                bool wait, std::uint64_t req = 0);
// keep_held: end a wait only, never a hold (the caller was told it holds it).
std::string encode_lock_cancel(std::uint64_t session, std::string_view name,
                               std::uint64_t req = 0, bool keep_held = false);
std::string encode_lock_release(std::uint64_t session, std::string_view name,
                                std::uint64_t req = 0);
std::string encode_lock_status(std::uint64_t session, std::string_view name);
std::string encode_lock_show(std::string_view name);
std::string encode_lock_list();
std::string encode_lock_check(std::string_view name, std::uint64_t token);

// One answer of the lock backend, decoded.
struct LockAnswer {
  Code code = Code::kOk;  // kOk, kLockBusy (not granted / not held), kNotFound
                          // (release: not held), kSessionLost, kBackendError
                          // (the backend's {"error": ...}), kResultLost, or the
                          // call's own failure passed through
  std::string message;
  std::uint64_t session = 0;  // open
  std::int64_t expires_ms = 0;  // keepalive
  std::uint64_t token = 0;    // acquire / status: granted / held; cancel: granted before it
  bool cancelled = false;     // cancel: the wait ended (or, with released, the grant)
  bool released = false;      // cancel with req: the grant it covered was released
  bool superseded = false;    // acquire / release: fenced by a newer request (kBackendError)
  std::uint64_t req = 0;      // status: the newest request number of the hold or wait
  bool waiting = false;       // acquire / status, kLockBusy: queued
  std::uint64_t position = 0;  // when waiting
  std::uint64_t holder_session = 0;  // acquire without wait, kLockBusy
  bool current = false;       // check
  std::uint64_t newest_token = 0;  // check
};

// Decodes the Result of a write/read of `op`. A result that is not kOk passes
// through (code and message). An OK answer with no bytes is a write applied
// whose result was lost in a node's restart: kResultLost.
LockAnswer decode_lock_answer(LockOp op, const Result& raw);

// The fields of a show answer / a list answer. False with *error when the
// JSON does not have the documented shape.
bool parse_lock_info(std::string_view json, LockInfo* info, std::string* error);
bool parse_lock_listing(std::string_view json, LockListing* listing, std::string* error);

const char* lock_mode_name(LockMode mode);  // "exclusive", "shared"

}  // namespace synod::client
