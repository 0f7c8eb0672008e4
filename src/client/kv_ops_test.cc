#include "client/kv_ops.h"

#include <gtest/gtest.h>

#include "proto/kv.pb.h"

namespace synod::client {
namespace {

proto::KvCommand parse(const std::string& bytes) {
  proto::KvCommand c;
  EXPECT_TRUE(c.ParseFromString(bytes));
  return c;
}

Result ok_with(const proto::KvResult& kv) {
  Result r;
  r.code = Code::kOk;
  r.value = kv.SerializeAsString();
  r.node = "n1:1";
  r.slot = 7;
  return r;
}

TEST(KvOps, EncodesEveryCommand) {
  auto get = parse(encode_kv_get("k"));
  EXPECT_EQ(get.op(), proto::KvCommand::GET);
  EXPECT_EQ(get.key(), "k");

  auto put = parse(encode_kv_put(std::string_view("k\0x", 3), "v"));
  EXPECT_EQ(put.op(), proto::KvCommand::PUT);
  EXPECT_EQ(put.key(), std::string("k\0x", 3));
  EXPECT_EQ(put.value(), "v");

  EXPECT_EQ(parse(encode_kv_delete("k")).op(), proto::KvCommand::DELETE);

  auto cas = parse(encode_kv_cas("k", "old", "new"));
  EXPECT_EQ(cas.op(), proto::KvCommand::CAS);
  EXPECT_EQ(cas.expected(), "old");
  EXPECT_FALSE(cas.expect_absent());
  EXPECT_EQ(cas.value(), "new");

  auto absent = parse(encode_kv_cas("k", std::nullopt, "new"));
  EXPECT_TRUE(absent.expect_absent());
  EXPECT_EQ(absent.expected(), "");
  // "Expected the empty value" is not "expected absent".
  EXPECT_FALSE(parse(encode_kv_cas("k", std::string_view(), "new")).expect_absent());

  auto incr = parse(encode_kv_increment("k", -3));
  EXPECT_EQ(incr.op(), proto::KvCommand::INCREMENT);
  EXPECT_EQ(incr.delta(), -3);

  auto list = parse(encode_kv_list("p", 10));
  EXPECT_EQ(list.op(), proto::KvCommand::LIST);
  EXPECT_EQ(list.prefix(), "p");
  EXPECT_EQ(list.limit(), 10u);
}

TEST(KvOps, MapsFinalResponses) {
  proto::ClientResponse ok;
  ok.set_code(proto::ClientResponse::OK);
  ok.set_result("bytes");
  ok.set_slot(9);
  Result r = result_from_response(ok, "a:1");
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.value, "bytes");
  EXPECT_EQ(r.slot, 9u);
  EXPECT_EQ(r.node, "a:1");
  EXPECT_TRUE(r.message.empty());

  proto::ClientResponse bad;
  bad.set_code(proto::ClientResponse::BAD_REQUEST);
  bad.set_error("unknown backend 'x'");
  r = result_from_response(bad, "a:1");
  EXPECT_EQ(r.code, Code::kBadRequest);
  EXPECT_EQ(r.message, "unknown backend 'x'");

  proto::ClientResponse backend;
  backend.set_code(proto::ClientResponse::BACKEND_ERROR);
  r = result_from_response(backend, "a:1");
  EXPECT_EQ(r.code, Code::kBackendError);
  EXPECT_FALSE(r.message.empty());

  proto::ClientResponse timeout;
  timeout.set_code(proto::ClientResponse::TIMEOUT);
  EXPECT_EQ(result_from_response(timeout, "a:1").code, Code::kTimeout);
  proto::ClientResponse weird;
  weird.set_code(static_cast<proto::ClientResponse::Code>(42));
  EXPECT_EQ(result_from_response(weird, "a:1").code, Code::kProtocolError);
}

TEST(KvOps, DecodesGet) {
  proto::KvResult kv;
  kv.set_found(true);
  kv.set_value("v");
  Result r = decode_kv_result(KvOp::kGet, ok_with(kv));
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.value, "v");
  EXPECT_TRUE(r.found);
  EXPECT_EQ(r.slot, 7u);
  EXPECT_EQ(r.node, "n1:1");

  // An empty value that exists is not a miss.
  proto::KvResult empty;
  empty.set_found(true);
  EXPECT_EQ(decode_kv_result(KvOp::kGet, ok_with(empty)).code, Code::kOk);

  proto::KvResult missing;
  missing.set_code(proto::KvResult::NOT_FOUND);
  r = decode_kv_result(KvOp::kGet, ok_with(missing));
  EXPECT_EQ(r.code, Code::kNotFound);
  EXPECT_EQ(r.message, "not found");
  // OK without found is a miss too.
  EXPECT_EQ(decode_kv_result(KvOp::kGet, ok_with(proto::KvResult())).code, Code::kNotFound);
}

TEST(KvOps, DecodesWrites) {
  proto::KvResult put;  // OK, found = existed before: no field matters
  EXPECT_EQ(decode_kv_result(KvOp::kPut, ok_with(put)).code, Code::kOk);

  proto::KvResult del_missing;  // the kv backend: OK, found = false
  EXPECT_EQ(decode_kv_result(KvOp::kDelete, ok_with(del_missing)).code, Code::kNotFound);
  proto::KvResult del_found;
  del_found.set_found(true);
  EXPECT_EQ(decode_kv_result(KvOp::kDelete, ok_with(del_found)).code, Code::kOk);

  proto::KvResult cas_failed;
  cas_failed.set_code(proto::KvResult::CAS_FAILED);
  cas_failed.set_found(true);
  cas_failed.set_value("current");
  Result r = decode_kv_result(KvOp::kCas, ok_with(cas_failed));
  EXPECT_EQ(r.code, Code::kCasFailed);
  EXPECT_TRUE(r.found);
  EXPECT_EQ(r.value, "current");
  EXPECT_FALSE(r.message.empty());

  proto::KvResult incr;
  incr.set_number(-12);
  r = decode_kv_result(KvOp::kIncrement, ok_with(incr));
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.number, -12);

  proto::KvResult nan;
  nan.set_code(proto::KvResult::NOT_A_NUMBER);
  nan.set_error("value \"x\" is not an integer");
  r = decode_kv_result(KvOp::kIncrement, ok_with(nan));
  EXPECT_EQ(r.code, Code::kNotANumber);
  EXPECT_EQ(r.message, "value \"x\" is not an integer");

  proto::KvResult bad;
  bad.set_code(proto::KvResult::BAD_COMMAND);
  bad.set_error("empty key");
  r = decode_kv_result(KvOp::kPut, ok_with(bad));
  EXPECT_EQ(r.code, Code::kBackendError);
  EXPECT_EQ(r.message, "empty key");
}

TEST(KvOps, DecodesList) {
  proto::KvResult kv;
  kv.add_keys("a");
  kv.add_keys("b");
  Result r = decode_kv_result(KvOp::kList, ok_with(kv));
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.keys, (std::vector<std::string>{"a", "b"}));
}

TEST(KvOps, ErrorsPassThroughAndGarbageIsAProtocolError) {
  Result timeout;
  timeout.code = Code::kTimeout;
  timeout.message = "timed out";
  EXPECT_EQ(decode_kv_result(KvOp::kGet, timeout).message, "timed out");

  Result garbage;
  garbage.code = Code::kOk;
  garbage.value = "\xff\xff\xff";
  EXPECT_EQ(decode_kv_result(KvOp::kGet, garbage).code, Code::kProtocolError);
}

TEST(KvOps, ResultLostInARestart) {
  Result lost;
  lost.code = Code::kOk;
  lost.message = "applied; the result was lost in a restart";
  EXPECT_EQ(decode_kv_result(KvOp::kPut, lost).code, Code::kOk);
  EXPECT_TRUE(decode_kv_result(KvOp::kPut, lost).message.empty());
  EXPECT_EQ(decode_kv_result(KvOp::kCas, lost).code, Code::kResultLost);
  EXPECT_EQ(decode_kv_result(KvOp::kIncrement, lost).code, Code::kResultLost);
}

TEST(KvOps, CodeNames) {
  EXPECT_STREQ(code_name(Code::kOk), "ok");
  EXPECT_STREQ(code_name(Code::kNotFound), "not_found");
  EXPECT_STREQ(code_name(Code::kCasFailed), "cas_failed");
  EXPECT_STREQ(code_name(Code::kTimeout), "timeout");
  EXPECT_STREQ(code_name(Code::kUnavailable), "unavailable");
  EXPECT_STREQ(code_name(Code::kResultLost), "result_lost");
}

}  // namespace
}  // namespace synod::client
