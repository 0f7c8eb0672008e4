#include "client/kv_ops.h"

#include <utility>

#include "proto/kv.pb.h"

namespace synod::client {
namespace {

std::string serialize(const proto::KvCommand& command) {
  std::string out;
  command.SerializeToString(&out);
  return out;
}

proto::KvCommand command_of(proto::KvCommand::Op op) {
  proto::KvCommand c;
  c.set_op(op);
  return c;
}

const char* op_name(KvOp op) {
  switch (op) {
    case KvOp::kGet:
      return "get";
    case KvOp::kPut:
      return "put";
    case KvOp::kDelete:
      return "del";
    case KvOp::kCas:
      return "cas";
    case KvOp::kIncrement:
      return "incr";
    case KvOp::kList:
      return "keys";
  }
  return "?";
}

}  // namespace

const char* code_name(Code code) {
  switch (code) {
    case Code::kOk:
      return "ok";
    case Code::kNotFound:
      return "not_found";
    case Code::kCasFailed:
      return "cas_failed";
    case Code::kNotANumber:
      return "not_a_number";
    case Code::kTimeout:
      return "timeout";
    case Code::kUnavailable:
      return "unavailable";
    case Code::kBadRequest:
      return "bad_request";
    case Code::kBackendError:
      return "backend_error";
    case Code::kProtocolError:
      return "protocol_error";
    case Code::kResultLost:
      return "result_lost";
    case Code::kLockBusy:
      return "lock_busy";
    case Code::kSessionLost:
      return "session_lost";
  }
  return "unknown";
}

std::string encode_kv_get(std::string_view key) {
  proto::KvCommand c = command_of(proto::KvCommand::GET);
  c.set_key(std::string(key));
  return serialize(c);
}

std::string encode_kv_put(std::string_view key, std::string_view value) {
  proto::KvCommand c = command_of(proto::KvCommand::PUT);
  c.set_key(std::string(key));
  c.set_value(std::string(value));
  return serialize(c);
}

std::string encode_kv_delete(std::string_view key) {
  proto::KvCommand c = command_of(proto::KvCommand::DELETE);
  c.set_key(std::string(key));
  return serialize(c);
}

std::string encode_kv_cas(std::string_view key, std::optional<std::string_view> expected,
                          std::string_view value) {
  proto::KvCommand c = command_of(proto::KvCommand::CAS);
  c.set_key(std::string(key));
  c.set_value(std::string(value));
  if (expected) {
    c.set_expected(std::string(*expected));
  } else {
    c.set_expect_absent(true);
  }
  return serialize(c);
}

std::string encode_kv_increment(std::string_view key, std::int64_t delta) {
  proto::KvCommand c = command_of(proto::KvCommand::INCREMENT);
  c.set_key(std::string(key));
  c.set_delta(delta);
  return serialize(c);
}

std::string encode_kv_list(std::string_view prefix, std::uint32_t limit) {
  proto::KvCommand c = command_of(proto::KvCommand::LIST);
  c.set_prefix(std::string(prefix));
  c.set_limit(limit);
  return serialize(c);
}

Result result_from_response(const proto::ClientResponse& response, const std::string& node) {
  Result r;
  r.node = node;
  r.slot = response.slot();
  switch (response.code()) {
    case proto::ClientResponse::OK:
      r.code = Code::kOk;
      r.value = response.result();
      // An applied write whose result the node lost in a restart says so here.
      r.message = response.error();
      break;
    case proto::ClientResponse::BAD_REQUEST:
      r.code = Code::kBadRequest;
      r.message = response.error().empty() ? "the node refused the request" : response.error();
      break;
    case proto::ClientResponse::BACKEND_ERROR:
      r.code = Code::kBackendError;
      r.message = response.error().empty() ? "the backend refused the request" : response.error();
      break;
    case proto::ClientResponse::TIMEOUT:
      r.code = Code::kTimeout;
      r.message = response.error();
      break;
    case proto::ClientResponse::NOT_LEADER:
    case proto::ClientResponse::UNAVAILABLE:
      r.code = Code::kUnavailable;
      r.message = response.error();
      break;
    default:
      r.code = Code::kProtocolError;
      r.message = node + " answered with unknown code " + std::to_string(response.code());
      break;
  }
  return r;
}

Result decode_kv_result(KvOp op, Result raw) {
  if (raw.code != Code::kOk) return raw;
  if (raw.value.empty() && !raw.message.empty()) {
    // Applied, result lost (see result_from_response).
    if (op == KvOp::kPut) {
      raw.message.clear();
      return raw;
    }
    raw.code = Code::kResultLost;
    raw.message =
        std::string(op_name(op)) + " was applied, but its result was lost: " + raw.message;
    return raw;
  }
  proto::KvResult kv;
  if (!kv.ParseFromString(raw.value)) {
    raw.code = Code::kProtocolError;
    raw.message = "cannot decode the key-value result from " + raw.node;
    raw.value.clear();
    return raw;
  }
  Result r;
  r.node = std::move(raw.node);
  r.slot = raw.slot;
  r.found = kv.found();
  r.number = kv.number();
  r.value = kv.value();
  for (const std::string& k : kv.keys()) r.keys.push_back(k);
  switch (kv.code()) {
    case proto::KvResult::OK:
      r.code = Code::kOk;
      // A get or a delete that found nothing is a miss (the kv backend answers
      // a delete of a missing key OK with found = false).
      if ((op == KvOp::kGet || op == KvOp::kDelete) && !kv.found()) {
        r.code = Code::kNotFound;
        r.message = "not found";
      }
      break;
    case proto::KvResult::NOT_FOUND:
      r.code = Code::kNotFound;
      r.message = "not found";
      r.found = false;
      break;
    case proto::KvResult::CAS_FAILED:
      r.code = Code::kCasFailed;
      r.message = kv.found() ? "compare-and-set failed: the value differs"
                             : "compare-and-set failed: the key is absent";
      break;
    case proto::KvResult::NOT_A_NUMBER:
      r.code = Code::kNotANumber;
      r.message = kv.error().empty() ? "the value is not a number" : kv.error();
      break;
    case proto::KvResult::BAD_COMMAND:
      r.code = Code::kBackendError;
      r.message = kv.error().empty() ? "the key-value backend refused the command" : kv.error();
      break;
    default:
      r.code = Code::kProtocolError;
      r.message = "unknown key-value result code " + std::to_string(kv.code());
      break;
  }
  if (r.code != Code::kOk && r.code != Code::kNotFound && r.message.empty()) {
    r.message = kv.error();
  }
  return r;
}

}  // namespace synod::client
