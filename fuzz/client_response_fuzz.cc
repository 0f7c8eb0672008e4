// client_response_fuzz: the client library's reading of a node's answer. The
// input is a serialized proto::ClientResponse (the body of an
// Envelope.response frame), as any server, or anything listening on a node's
// port, may send it.
//
// Covered: result_from_response and decode_kv_result (src/client/kv_ops.h) for
// every kv call. Not covered: Client::Impl's routing of responses (request id
// matching, redirects to leader_address, status discovery), which runs inside
// the client's I/O thread (src/client/client.cc).
//
// Checks: no crash; a final answer (OK, BAD_REQUEST, BACKEND_ERROR, unknown
// codes) maps to the matching client code; every kv call's Result is kOk with
// no message, or another code with a message (kTimeout / kUnavailable pass the
// node's text through, which may be empty: the client retries those).
#include "client/kv_ops.h"
#include "fuzz/fuzz.h"
#include "fuzz/quiet_protobuf.h"
#include "proto/synod.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace synod;
  using client::Code;
  fuzz::quiet_protobuf();
  proto::ClientResponse r;
  if (!r.ParseFromArray(data, static_cast<int>(size))) return 0;
  const client::Result raw = client::result_from_response(r, "10.0.0.1:7001");
  FUZZ_CHECK(raw.node == "10.0.0.1:7001" && raw.slot == r.slot(), "node or slot lost");
  switch (r.code()) {
    case proto::ClientResponse::OK:
      FUZZ_CHECK(raw.code == Code::kOk && raw.value == r.result(), "OK");
      break;
    case proto::ClientResponse::BAD_REQUEST:
      FUZZ_CHECK(raw.code == Code::kBadRequest && !raw.message.empty(), "BAD_REQUEST");
      break;
    case proto::ClientResponse::BACKEND_ERROR:
      FUZZ_CHECK(raw.code == Code::kBackendError && !raw.message.empty(), "BACKEND_ERROR");
      break;
    case proto::ClientResponse::TIMEOUT:
      FUZZ_CHECK(raw.code == Code::kTimeout, "TIMEOUT");
      break;
    case proto::ClientResponse::NOT_LEADER:
    case proto::ClientResponse::UNAVAILABLE:
      FUZZ_CHECK(raw.code == Code::kUnavailable, "NOT_LEADER / UNAVAILABLE");
      break;
    default:
      FUZZ_CHECK(raw.code == Code::kProtocolError && !raw.message.empty(), "unknown code %d",
                 static_cast<int>(r.code()));
      break;
  }
  for (client::KvOp op : {client::KvOp::kGet, client::KvOp::kPut, client::KvOp::kDelete,
                          client::KvOp::kCas, client::KvOp::kIncrement, client::KvOp::kList}) {
    const client::Result kv = client::decode_kv_result(op, raw);
    FUZZ_CHECK(kv.node == raw.node && kv.slot == raw.slot, "node or slot lost");
    if (kv.code == Code::kOk) {
      FUZZ_CHECK(kv.message.empty(), "kOk with message '%s'", kv.message.c_str());
    } else if (kv.code != Code::kTimeout && kv.code != Code::kUnavailable) {
      FUZZ_CHECK(!kv.message.empty(), "code %s without a message", client::code_name(kv.code));
    }
    if (raw.code != Code::kOk) {
      FUZZ_CHECK(kv.code == raw.code && kv.message == raw.message, "a failure changed in decoding");
    }
  }
  return 0;
}
