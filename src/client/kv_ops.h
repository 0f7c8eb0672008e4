// The key-value calls of the client on top of its generic write/read: the
// encoding of KvCommand (proto/kv.proto) and the mapping of a node's answer to
// a client::Result. Pure functions, no I/O: unit-tested without a server.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proto/synod.pb.h"
#include "synod/client.hpp"

namespace synod::client {

enum class KvOp { kGet, kPut, kDelete, kCas, kIncrement, kList };

// The serialized KvCommand of each call (Command.payload / ReadRequest.payload).
std::string encode_kv_get(std::string_view key);
std::string encode_kv_put(std::string_view key, std::string_view value);
std::string encode_kv_delete(std::string_view key);
// expected nullopt: the key must be absent.
std::string encode_kv_cas(std::string_view key, std::optional<std::string_view> expected,
                          std::string_view value);
std::string encode_kv_increment(std::string_view key, std::int64_t delta);
std::string encode_kv_list(std::string_view prefix, std::uint32_t limit);

// A node's answer as the result of a generic write or read, when the answer is
// final (the client does not retry it): OK (value = the backend's result
// bytes), BAD_REQUEST, BACKEND_ERROR. `node` is the address that answered. The
// other codes (NOT_LEADER, UNAVAILABLE, TIMEOUT) are retried by the client and
// map to kUnavailable / kTimeout with the response's error message, should the
// caller need them.
Result result_from_response(const proto::ClientResponse& response, const std::string& node);

// Turns the generic result of a kv call (value = serialized KvResult) into the
// kv call's Result. A result that is not kOk passes through unchanged. An OK
// answer with no result bytes and an error message means the command was
// applied but its result was lost in a restart: kOk for put, kResultLost for
// the others (their outcome is in the result).
Result decode_kv_result(KvOp op, Result raw);

}  // namespace synod::client
