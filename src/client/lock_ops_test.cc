#include "client/lock_ops.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace synod::client {
namespace {

using Json = nlohmann::json;

Result ok(std::string value) {
  Result r;
  r.value = std::move(value);
  return r;
}

TEST(LockOps, CommandsAreTheDocumentedJson) {
  EXPECT_EQ(Json::parse(encode_lock_open(10000, 2500)),
            Json::parse(R"({"op":"open","ttl_ms":10000,"lock_delay_ms":2500})"));
  EXPECT_EQ(Json::parse(encode_lock_keepalive(7)),
            Json::parse(R"({"op":"keepalive","session":7})"));
  EXPECT_EQ(Json::parse(encode_lock_close(7)), Json::parse(R"({"op":"close","session":7})"));
  EXPECT_EQ(Json::parse(encode_lock_acquire(7, "db", LockMode::kExclusive, true)),
            Json::parse(R"({"op":"acquire","session":7,"lock":"db","mode":"exclusive","wait":true})"));
  EXPECT_EQ(Json::parse(encode_lock_acquire(7, "db", LockMode::kShared, false)),
            Json::parse(R"({"op":"acquire","session":7,"lock":"db","mode":"shared","wait":false})"));
  EXPECT_EQ(Json::parse(encode_lock_cancel(7, "db")),
            Json::parse(R"({"op":"cancel","session":7,"lock":"db"})"));
  EXPECT_EQ(Json::parse(encode_lock_release(7, "db")),
            Json::parse(R"({"op":"release","session":7,"lock":"db"})"));
  // With the session's request numbers.
  EXPECT_EQ(Json::parse(encode_lock_acquire(7, "db", LockMode::kExclusive, true, 3)),
            Json::parse(
                R"({"op":"acquire","session":7,"lock":"db","mode":"exclusive","wait":true,"req":3})"));
  EXPECT_EQ(Json::parse(encode_lock_cancel(7, "db", 4)),
            Json::parse(R"({"op":"cancel","session":7,"lock":"db","req":4})"));
  EXPECT_EQ(Json::parse(encode_lock_cancel(7, "db", 4, true)),
            Json::parse(R"({"op":"cancel","session":7,"lock":"db","req":4,"keep_held":true})"));
  EXPECT_EQ(Json::parse(encode_lock_release(7, "db", 5)),
            Json::parse(R"({"op":"release","session":7,"lock":"db","req":5})"));
  EXPECT_EQ(Json::parse(encode_lock_status(7, "db")),
            Json::parse(R"({"op":"status","session":7,"lock":"db"})"));
  EXPECT_EQ(Json::parse(encode_lock_show("db")), Json::parse(R"({"op":"show","lock":"db"})"));
  EXPECT_EQ(Json::parse(encode_lock_list()), Json::parse(R"({"op":"list"})"));
  EXPECT_EQ(Json::parse(encode_lock_check("db", 42)),
            Json::parse(R"({"op":"check","lock":"db","token":42})"));
  // Names with quotes and non-ASCII UTF-8 are escaped, not mangled.
  EXPECT_EQ(Json::parse(encode_lock_show("a\"b\xc3\xa9"))["lock"], "a\"b\xc3\xa9");
  // Session ids are slots: the whole 64-bit range.
  EXPECT_EQ(Json::parse(encode_lock_keepalive(UINT64_MAX))["session"].get<std::uint64_t>(),
            UINT64_MAX);
}

TEST(LockOps, OpenAndKeepalive) {
  LockAnswer a = decode_lock_answer(LockOp::kOpen, ok(R"({"session":12})"));
  EXPECT_EQ(a.code, Code::kOk);
  EXPECT_EQ(a.session, 12u);
  a = decode_lock_answer(LockOp::kOpen, ok(R"({"error":"ttl_ms must be 1000..600000"})"));
  EXPECT_EQ(a.code, Code::kBackendError);
  EXPECT_EQ(a.message, "ttl_ms must be 1000..600000");
  a = decode_lock_answer(LockOp::kOpen, ok(R"({})"));
  EXPECT_EQ(a.code, Code::kProtocolError);

  a = decode_lock_answer(LockOp::kKeepalive, ok(R"({"session":12,"expires_ms":1700000010000})"));
  EXPECT_EQ(a.code, Code::kOk);
  EXPECT_EQ(a.expires_ms, 1700000010000);
  a = decode_lock_answer(LockOp::kKeepalive, ok(R"({"error":"session 12 expired"})"));
  EXPECT_EQ(a.code, Code::kSessionLost);
  EXPECT_EQ(a.message, "session 12 expired");
  a = decode_lock_answer(LockOp::kKeepalive, ok(R"({"error":"unknown session"})"));
  EXPECT_EQ(a.code, Code::kSessionLost);
  a = decode_lock_answer(LockOp::kKeepalive,
                         ok(R"({"error":"session 12 closed","closed":true})"));
  EXPECT_EQ(a.code, Code::kSessionLost);
  a = decode_lock_answer(LockOp::kStatus, ok(R"({"error":"session expired","expired":true})"));
  EXPECT_EQ(a.code, Code::kSessionLost);
}

TEST(LockOps, AcquireAndStatus) {
  LockAnswer a =
      decode_lock_answer(LockOp::kAcquire, ok(R"({"granted":true,"token":99,"lock":"db"})"));
  EXPECT_EQ(a.code, Code::kOk);
  EXPECT_EQ(a.token, 99u);
  a = decode_lock_answer(LockOp::kAcquire, ok(R"({"granted":false,"waiting":true,"position":2})"));
  EXPECT_EQ(a.code, Code::kLockBusy);
  EXPECT_TRUE(a.waiting);
  EXPECT_EQ(a.position, 2u);
  a = decode_lock_answer(LockOp::kAcquire,
                         ok(R"({"granted":false,"waiting":false,"holder_session":5})"));
  EXPECT_EQ(a.code, Code::kLockBusy);
  EXPECT_FALSE(a.waiting);
  EXPECT_EQ(a.holder_session, 5u);
  EXPECT_EQ(a.message, "held by session 5");
  a = decode_lock_answer(
      LockOp::kAcquire,
      ok(R"({"granted":false,"waiting":false,"holder_session":0,"unavailable_until_ms":9000})"));
  EXPECT_EQ(a.code, Code::kLockBusy);
  EXPECT_EQ(a.message, "in its lock-delay (a holder's session expired)");
  a = decode_lock_answer(LockOp::kAcquire,
                         ok(R"({"granted":false,"waiting":false,"holder_session":0,"waiters":2})"));
  EXPECT_EQ(a.message, "other sessions are waiting for it");
  a = decode_lock_answer(LockOp::kAcquire, ok(R"({"granted":true})"));
  EXPECT_EQ(a.code, Code::kProtocolError);  // a grant without its token
  a = decode_lock_answer(LockOp::kAcquire, ok(R"({"error":"lock name must be 1..256 bytes"})"));
  EXPECT_EQ(a.code, Code::kBackendError);

  a = decode_lock_answer(LockOp::kStatus, ok(R"({"held":true,"token":99,"req":7})"));
  EXPECT_EQ(a.code, Code::kOk);
  EXPECT_EQ(a.token, 99u);
  EXPECT_EQ(a.req, 7u);
  a = decode_lock_answer(LockOp::kStatus, ok(R"({"held":false,"waiting":true,"position":1})"));
  EXPECT_EQ(a.code, Code::kLockBusy);
  EXPECT_TRUE(a.waiting);
  a = decode_lock_answer(LockOp::kStatus, ok(R"({"held":false,"waiting":false})"));
  EXPECT_EQ(a.code, Code::kLockBusy);
  EXPECT_FALSE(a.waiting);
  a = decode_lock_answer(LockOp::kStatus, ok(R"({"error":"session expired"})"));
  EXPECT_EQ(a.code, Code::kSessionLost);
}

TEST(LockOps, ReleaseCheckAndFailures) {
  EXPECT_EQ(decode_lock_answer(LockOp::kRelease, ok(R"({"released":true})")).code, Code::kOk);
  EXPECT_EQ(decode_lock_answer(LockOp::kRelease, ok(R"({"error":"not held"})")).code,
            Code::kNotFound);
  EXPECT_EQ(decode_lock_answer(LockOp::kClose, ok(R"({"closed":true})")).code, Code::kOk);
  EXPECT_EQ(decode_lock_answer(LockOp::kCancel, ok(R"({"cancelled":true})")).token, 0u);
  EXPECT_EQ(decode_lock_answer(LockOp::kCancel, ok(R"({"cancelled":false})")).token, 0u);
  LockAnswer c =
      decode_lock_answer(LockOp::kCancel, ok(R"({"cancelled":false,"held":true,"token":77})"));
  EXPECT_EQ(c.code, Code::kOk);
  EXPECT_EQ(c.token, 77u);  // granted before the cancel
  EXPECT_FALSE(c.released);
  c = decode_lock_answer(LockOp::kCancel,
                         ok(R"({"cancelled":true,"released":true,"token":78})"));
  EXPECT_TRUE(c.cancelled);
  EXPECT_TRUE(c.released);
  EXPECT_EQ(c.token, 78u);
  c = decode_lock_answer(LockOp::kCancel, ok(R"({"cancelled":false,"waiting":true})"));
  EXPECT_FALSE(c.cancelled);
  EXPECT_TRUE(c.waiting);
  // A superseded acquire (a late copy, fenced by a release or cancel).
  const LockAnswer sup = decode_lock_answer(
      LockOp::kAcquire, ok(R"({"error":"request 3 was superseded","superseded":true})"));
  EXPECT_EQ(sup.code, Code::kBackendError);
  EXPECT_TRUE(sup.superseded);

  LockAnswer a = decode_lock_answer(LockOp::kCheck, ok(R"({"current":false,"newest_token":120})"));
  EXPECT_EQ(a.code, Code::kOk);
  EXPECT_FALSE(a.current);
  EXPECT_EQ(a.newest_token, 120u);

  // The call's own failures pass through; a lost result is kResultLost.
  Result timeout;
  timeout.code = Code::kTimeout;
  timeout.message = "no answer";
  a = decode_lock_answer(LockOp::kAcquire, timeout);
  EXPECT_EQ(a.code, Code::kTimeout);
  EXPECT_EQ(a.message, "no answer");
  Result lost;
  lost.message = "the node restarted";
  EXPECT_EQ(decode_lock_answer(LockOp::kRelease, lost).code, Code::kResultLost);
  // A retry answered from a node's record of a command applied in a replay:
  // OK with no bytes and no message. Still a lost result, not a bad answer.
  EXPECT_EQ(decode_lock_answer(LockOp::kKeepalive, ok("")).code, Code::kResultLost);
  EXPECT_EQ(decode_lock_answer(LockOp::kAcquire, ok("not json")).code, Code::kProtocolError);
  EXPECT_EQ(decode_lock_answer(LockOp::kAcquire, ok("[1]")).code, Code::kProtocolError);
}

TEST(LockOps, ShowAndList) {
  LockInfo info;
  std::string error;
  ASSERT_TRUE(parse_lock_info(
      R"({"lock":"db","holders":[{"session":3,"token":40,"mode":"shared","since_ms":1000},
          {"session":4,"token":40,"mode":"shared","since_ms":1000}],
          "waiters":[{"session":5,"mode":"exclusive"}],"unavailable_until_ms":0,"last_token":40})",
      &info, &error))
      << error;
  EXPECT_EQ(info.name, "db");
  ASSERT_EQ(info.holders.size(), 2u);
  EXPECT_EQ(info.holders[1].session, 4u);
  EXPECT_EQ(info.holders[1].token, 40u);
  EXPECT_EQ(info.holders[1].mode, LockMode::kShared);
  EXPECT_EQ(info.holders[1].since_ms, 1000);
  ASSERT_EQ(info.waiters.size(), 1u);
  EXPECT_EQ(info.waiters[0].mode, LockMode::kExclusive);
  EXPECT_EQ(info.last_token, 40u);

  EXPECT_FALSE(parse_lock_info(R"({"holders":[]})", &info, &error));
  EXPECT_FALSE(parse_lock_info(R"({"lock":"x","holders":[{"session":1,"mode":"sideways"}]})",
                               &info, &error));

  LockListing listing;
  ASSERT_TRUE(parse_lock_listing(
      R"({"locks":[{"lock":"a","holders":[],"waiters":[],"unavailable_until_ms":5000,
          "last_token":9}],"sessions":[{"session":9,"ttl_ms":10000,"expires_ms":20000,"lock_delay_ms":750}]})",
      &listing, &error))
      << error;
  ASSERT_EQ(listing.locks.size(), 1u);
  EXPECT_EQ(listing.locks[0].unavailable_until_ms, 5000);
  ASSERT_EQ(listing.sessions.size(), 1u);
  EXPECT_EQ(listing.sessions[0].ttl_ms, 10000);
  EXPECT_EQ(listing.sessions[0].expires_ms, 20000);
  EXPECT_EQ(listing.sessions[0].lock_delay_ms, 750);
  EXPECT_TRUE(parse_lock_listing(R"({"locks":[],"sessions":[]})", &listing, &error));
  EXPECT_FALSE(parse_lock_listing(R"({"locks":{}})", &listing, &error));
}

}  // namespace
}  // namespace synod::client
