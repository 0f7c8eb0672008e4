// client_request_fuzz: a client's request as the server takes it apart, up to
// the answer the client library makes of the server's response. The input is
// a serialized proto::ClientRequest (the body of an Envelope.request frame).
//
// It runs, in process, the pure steps of the server's path (src/server/node.cc)
// and of the client's (src/client/kv_ops.cc); the Node itself (its event loop,
// Replica, LogStore, transport, backend host) is not driven here:
//   write: the proto::Command the node proposes (client id, sequence, backend,
//          payload, timestamp, seed, tag) serializes and parses back whole, as
//          apply_slot needs; for backend "kv" the payload is decoded
//          (kv_codec vs protobuf) and applied to a KvStore;
//   read:  for backend "kv", the payload is decoded and served by KvStore::query;
//   other backends, requests without an operation: the BAD_REQUEST answer,
//          whose error text quotes the request's backend name;
// then every ClientResponse the node would send is serialized, parsed back as
// the client does, and mapped by the client's result_from_response and
// decode_kv_result. server_fuzz drives a real Node instead.
//
// Checks: no crash; the node's Command round-trips; results are valid
// KvResults (kv_checks.h); every response serializes and parses, and the
// client maps it to a Result whose code matches the response.
#include "client/kv_ops.h"
#include "fuzz/fuzz.h"
#include "fuzz/kv_checks.h"
#include "fuzz/kv_store_fixture.h"
#include "fuzz/quiet_protobuf.h"
#include "proto/synod.pb.h"

namespace synod::fuzz {
namespace {

using Code = proto::ClientResponse::Code;

client::KvOp kv_op_of(std::int32_t op) {
  switch (static_cast<kv::Op>(op)) {
    case kv::Op::kGet:
      return client::KvOp::kGet;
    case kv::Op::kPut:
      return client::KvOp::kPut;
    case kv::Op::kDelete:
      return client::KvOp::kDelete;
    case kv::Op::kCas:
      return client::KvOp::kCas;
    case kv::Op::kIncrement:
      return client::KvOp::kIncrement;
    case kv::Op::kList:
    case kv::Op::kMget:
    case kv::Op::kCount:
      return client::KvOp::kList;
    case kv::Op::kMput:
      return client::KvOp::kPut;
    case kv::Op::kMdelete:
      return client::KvOp::kDelete;
  }
  return client::KvOp::kGet;
}

// The response on the wire and back, then the client's reading of it.
void deliver(const proto::ClientResponse& r, client::KvOp op) {
  std::string bytes;
  FUZZ_CHECK(r.SerializeToString(&bytes), "the node cannot serialize its response");
  proto::ClientResponse got;
  FUZZ_CHECK(got.ParseFromString(bytes), "the client cannot parse the node's response");
  client::Result res = client::result_from_response(got, "127.0.0.1:7001");
  switch (r.code()) {
    case proto::ClientResponse::OK:
      FUZZ_CHECK(res.code == client::Code::kOk, "OK mapped");
      break;
    case proto::ClientResponse::BAD_REQUEST:
      FUZZ_CHECK(res.code == client::Code::kBadRequest && !res.message.empty(), "BAD_REQUEST");
      break;
    case proto::ClientResponse::BACKEND_ERROR:
      FUZZ_CHECK(res.code == client::Code::kBackendError && !res.message.empty(), "BACKEND_ERROR");
      break;
    default:
      break;
  }
  client::Result kv = client::decode_kv_result(op, res);
  if (res.code == client::Code::kOk && !res.value.empty()) {
    FUZZ_CHECK(kv.code != client::Code::kProtocolError,
               "the client cannot decode a KvResult the backend produced: %s", kv.message.c_str());
  }
}

void bad_request(std::uint64_t id, const std::string& error) {
  proto::ClientResponse r;
  r.set_request_id(id);
  r.set_code(Code::ClientResponse_Code_BAD_REQUEST);
  r.set_error(error);
  deliver(r, client::KvOp::kGet);
}

void write(const proto::ClientRequest& req) {
  const proto::WriteRequest& w = req.write();
  if (w.backend() != "kv") {
    bad_request(req.request_id(), "unknown backend '" + w.backend() + "'");
    return;
  }
  // The command the leader proposes (Node::handle_write), as apply_slot reads it.
  proto::Command cmd;
  cmd.set_client_id(w.client_id());
  cmd.set_sequence(w.sequence());
  cmd.set_backend(w.backend());
  cmd.set_payload(w.payload());
  cmd.set_timestamp_ms(1700000000000);
  cmd.set_random_seed(0x5eed);
  cmd.set_tag(0x1234567800000001ULL);
  proto::Command applied;
  FUZZ_CHECK(applied.ParseFromString(cmd.SerializeAsString()), "a proposed Command does not parse");
  FUZZ_CHECK(applied.payload() == w.payload() && applied.backend() == w.backend() &&
                 applied.client_id() == w.client_id() && applied.sequence() == w.sequence(),
             "a Command changed on its way through the log");

  kv::Command decoded;
  const bool ok = decode_and_compare(applied.payload(), &decoded);
  KvFixture& f = KvFixture::fresh();
  synod_apply_context ctx{f.next_position(), applied.timestamp_ms(), applied.random_seed()};
  std::string result, error;
  FUZZ_CHECK(f.store().apply(ctx, applied.payload(), &result, &error), "apply: %s", error.c_str());
  check_result_bytes(result);

  proto::ClientResponse r;  // Node::apply_slot's answer
  r.set_request_id(req.request_id());
  r.set_code(Code::ClientResponse_Code_OK);
  r.set_slot(7);
  r.set_result(result);
  deliver(r, ok ? kv_op_of(decoded.op) : client::KvOp::kPut);
  // After a restart the result is lost (Node::apply_slot, have_result == false).
  r.set_result("");
  r.set_error("applied; the result was lost in a restart");
  deliver(r, ok ? kv_op_of(decoded.op) : client::KvOp::kCas);
}

void read(const proto::ClientRequest& req) {
  const proto::ReadRequest& rd = req.read();
  if (rd.backend() != "kv") {
    bad_request(req.request_id(), "unknown backend '" + rd.backend() + "'");
    return;
  }
  kv::Command decoded;
  const bool ok = decode_and_compare(rd.payload(), &decoded);
  KvFixture& f = KvFixture::fresh();
  std::string result, error;
  FUZZ_CHECK(f.store().query(rd.payload(), &result, &error), "query: %s", error.c_str());
  check_result_bytes(result);
  proto::ClientResponse r;  // Node::serve_reads's answer
  r.set_request_id(req.request_id());
  r.set_code(Code::ClientResponse_Code_OK);
  r.set_result(result);
  r.set_slot(3);
  deliver(r, ok ? kv_op_of(decoded.op) : client::KvOp::kList);
}

}  // namespace
}  // namespace synod::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace synod;
  fuzz::quiet_protobuf();
  proto::ClientRequest req;
  if (!req.ParseFromArray(data, static_cast<int>(size))) return 0;
  switch (req.op_case()) {
    case proto::ClientRequest::kWrite:
      fuzz::write(req);
      break;
    case proto::ClientRequest::kRead:
      fuzz::read(req);
      break;
    case proto::ClientRequest::kStatus:
      break;  // answered from the node's state alone
    case proto::ClientRequest::OP_NOT_SET:
      fuzz::bad_request(req.request_id(), "request without an operation");
      break;
  }
  return 0;
}
