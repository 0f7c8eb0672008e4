#include "net/frame.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace synod::net {
namespace {

constexpr std::uint64_t kCluster = 0x0102030405060708;

proto::Envelope accept_envelope(std::uint64_t slot, std::size_t value_bytes = 10) {
  proto::Envelope e;
  auto* m = e.mutable_peer();
  m->set_from(1);
  m->set_to(2);
  auto* a = m->mutable_accept();
  a->mutable_ballot()->set_round(3);
  a->mutable_ballot()->set_node(1);
  a->set_slot(slot);
  a->set_commit(slot - 1);
  a->mutable_value()->set_kind(1);
  a->mutable_value()->add_commands(std::string(value_bytes, 'x'));
  return e;
}

// A header with the given fields, for the error cases.
std::string header(std::uint32_t magic, std::uint8_t version, std::uint8_t flags,
                   std::uint64_t cluster, std::uint32_t length) {
  std::string h;
  for (int i = 3; i >= 0; --i) h.push_back(static_cast<char>(magic >> (8 * i)));
  h.push_back(static_cast<char>(version));
  h.push_back(static_cast<char>(flags));
  h.append(2, '\0');
  for (int i = 7; i >= 0; --i) h.push_back(static_cast<char>(cluster >> (8 * i)));
  for (int i = 3; i >= 0; --i) h.push_back(static_cast<char>(length >> (8 * i)));
  return h;
}

std::string decode_error(const std::string& bytes, std::uint64_t cluster = kCluster,
                         std::size_t max = kDefaultMaxFrameBytes) {
  FrameDecoder d(cluster, max);
  d.feed(bytes.data(), bytes.size());
  proto::Envelope e;
  std::string error;
  auto status = d.next(&e, &error);
  EXPECT_EQ(status, FrameDecoder::Status::kError) << "bytes decoded without an error";
  return error;
}

TEST(FrameTest, HeaderLayout) {
  proto::Envelope e;
  e.mutable_hello()->set_node_id(3);
  const std::string frame = encode_frame(kCluster, e);
  ASSERT_EQ(frame.size(), kFrameHeaderBytes + e.ByteSizeLong());
  EXPECT_EQ(frame.substr(0, 4), "SYND");
  EXPECT_EQ(frame[4], 1);
  EXPECT_EQ(frame[5], 0);
  EXPECT_EQ(frame.substr(6, 2), std::string(2, '\0'));
  EXPECT_EQ(frame.substr(8, 8), std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  EXPECT_EQ(static_cast<unsigned char>(frame[19]), e.ByteSizeLong());
  EXPECT_EQ(frame.substr(kFrameHeaderBytes), e.SerializeAsString());
}

TEST(FrameTest, RoundTrip) {
  const proto::Envelope in = accept_envelope(42, 1000);
  const std::string frame = encode_frame(kCluster, in);
  FrameDecoder d(kCluster, kDefaultMaxFrameBytes);
  d.feed(frame.data(), frame.size());
  proto::Envelope out;
  std::string error;
  ASSERT_EQ(d.next(&out, &error), FrameDecoder::Status::kFrame) << error;
  EXPECT_EQ(out.SerializeAsString(), in.SerializeAsString());
  EXPECT_EQ(out.peer().accept().slot(), 42u);
  EXPECT_EQ(d.next(&out, &error), FrameDecoder::Status::kNeedMore);
  EXPECT_EQ(d.buffered_bytes(), 0u);
}

TEST(FrameTest, EmptyEnvelopeIsAFrame) {
  const std::string frame = encode_frame(kCluster, proto::Envelope());
  EXPECT_EQ(frame.size(), kFrameHeaderBytes);
  FrameDecoder d(kCluster, 16);
  d.feed(frame.data(), frame.size());
  proto::Envelope out;
  std::string error;
  ASSERT_EQ(d.next(&out, &error), FrameDecoder::Status::kFrame) << error;
  EXPECT_EQ(out.body_case(), proto::Envelope::BODY_NOT_SET);
}

TEST(FrameTest, AppendFrameMatchesEncodeFrame) {
  proto::Envelope hello;
  hello.mutable_hello()->set_node_id(5);
  proto::Envelope peer = accept_envelope(7, 300);  // a body over 127 bytes: 2-byte length varint
  proto::Envelope request;
  request.mutable_request()->set_request_id(9);
  request.mutable_request()->mutable_write()->set_payload(std::string(70000, 'p'));
  proto::Envelope response;
  response.mutable_response()->set_request_id(9);
  proto::Envelope empty_response;
  empty_response.mutable_response();  // a set field with an empty body

  std::string out = "prefix";
  append_frame(&out, kCluster, EnvelopeField::kHello, hello.hello());
  append_frame(&out, kCluster, EnvelopeField::kPeer, peer.peer());
  append_frame(&out, kCluster, EnvelopeField::kRequest, request.request());
  std::size_t payload = append_frame(&out, kCluster, EnvelopeField::kResponse, response.response());
  EXPECT_EQ(payload, response.ByteSizeLong());
  append_frame(&out, kCluster, EnvelopeField::kResponse, empty_response.response());
  EXPECT_EQ(out, "prefix" + encode_frame(kCluster, hello) + encode_frame(kCluster, peer) +
                     encode_frame(kCluster, request) + encode_frame(kCluster, response) +
                     encode_frame(kCluster, empty_response));
}

TEST(FrameTest, ByteByByteFeeding) {
  const std::string frame = encode_frame(kCluster, accept_envelope(1, 200)) +
                            encode_frame(kCluster, accept_envelope(2, 0));
  FrameDecoder d(kCluster, kDefaultMaxFrameBytes);
  proto::Envelope out;
  std::string error;
  std::vector<std::uint64_t> slots;
  for (char c : frame) {
    d.feed(&c, 1);
    FrameDecoder::Status s;
    while ((s = d.next(&out, &error)) == FrameDecoder::Status::kFrame) {
      slots.push_back(out.peer().accept().slot());
    }
    ASSERT_EQ(s, FrameDecoder::Status::kNeedMore) << error;
  }
  EXPECT_EQ(slots, (std::vector<std::uint64_t>{1, 2}));
}

TEST(FrameTest, TwoFramesInOneBuffer) {
  const std::string bytes =
      encode_frame(kCluster, accept_envelope(1)) + encode_frame(kCluster, accept_envelope(2));
  FrameDecoder d(kCluster, kDefaultMaxFrameBytes);
  d.feed(bytes.data(), bytes.size());
  proto::Envelope out;
  std::string error;
  ASSERT_EQ(d.next(&out, &error), FrameDecoder::Status::kFrame);
  EXPECT_EQ(out.peer().accept().slot(), 1u);
  ASSERT_EQ(d.next(&out, &error), FrameDecoder::Status::kFrame);
  EXPECT_EQ(out.peer().accept().slot(), 2u);
  EXPECT_EQ(d.next(&out, &error), FrameDecoder::Status::kNeedMore);
}

TEST(FrameTest, RandomSplitsDecodeTheSameFrames) {
  std::mt19937 rng(12345);
  std::string bytes;
  const int kFrames = 200;
  for (int i = 1; i <= kFrames; ++i) {
    bytes += encode_frame(kCluster, accept_envelope(i, rng() % 3000));
  }
  for (int round = 0; round < 20; ++round) {
    FrameDecoder d(kCluster, kDefaultMaxFrameBytes);
    proto::Envelope out;
    std::string error;
    std::uint64_t expected = 1;
    std::size_t pos = 0;
    while (pos < bytes.size()) {
      const std::size_t n = std::min<std::size_t>(bytes.size() - pos, 1 + rng() % 8000);
      d.feed(bytes.data() + pos, n);
      pos += n;
      FrameDecoder::Status s;
      while ((s = d.next(&out, &error)) == FrameDecoder::Status::kFrame) {
        ASSERT_EQ(out.peer().accept().slot(), expected++);
      }
      ASSERT_EQ(s, FrameDecoder::Status::kNeedMore) << error;
    }
    EXPECT_EQ(expected, static_cast<std::uint64_t>(kFrames + 1));
    EXPECT_EQ(d.buffered_bytes(), 0u);
  }
}

TEST(FrameTest, HttpRequestIsRefusedAsBadMagic) {
  // Shorter than a header: refused on its first four bytes, not left waiting.
  const std::string error = decode_error("GET / HTTP/1.1\r\n\r\n");
  EXPECT_NE(error.find("not a Synod peer: bad magic 0x47455420"), std::string::npos) << error;
  EXPECT_NE(error.find("\"GET \""), std::string::npos) << error;
}

TEST(FrameTest, BinaryBadMagic) {
  const std::string error = decode_error(std::string("\x16\x03\x01\x02", 4));
  EXPECT_NE(error.find("bad magic 0x16030102"), std::string::npos) << error;
}

TEST(FrameTest, UnsupportedVersion) {
  const std::string error = decode_error(header(kFrameMagic, 2, 0, kCluster, 0));
  EXPECT_NE(error.find("unsupported frame version 2"), std::string::npos) << error;
}

TEST(FrameTest, UnsupportedFlags) {
  const std::string error = decode_error(header(kFrameMagic, 1, 4, kCluster, 0));
  EXPECT_NE(error.find("unsupported frame flags 0x04"), std::string::npos) << error;
}

TEST(FrameTest, ReservedBytesAreIgnored) {
  std::string frame = encode_frame(kCluster, accept_envelope(1));
  frame[6] = 0x12;
  frame[7] = 0x34;
  FrameDecoder d(kCluster, kDefaultMaxFrameBytes);
  d.feed(frame.data(), frame.size());
  proto::Envelope out;
  std::string error;
  EXPECT_EQ(d.next(&out, &error), FrameDecoder::Status::kFrame) << error;
}

TEST(FrameTest, ClusterIdMismatch) {
  proto::Envelope e;
  e.mutable_hello()->set_node_id(1);
  const std::string error = decode_error(encode_frame(7, e), 8);
  EXPECT_NE(error.find("frame for cluster 7, this is cluster 8"), std::string::npos) << error;
}

TEST(FrameTest, OversizedFrameIsRefusedFromItsHeaderAlone) {
  const std::string error = decode_error(header(kFrameMagic, 1, 0, kCluster, 1000), kCluster, 999);
  EXPECT_NE(error.find("frame of 1000 bytes exceeds the maximum 999"), std::string::npos) << error;
  // Exactly at the bound is fine.
  FrameDecoder d(kCluster, 1000);
  const std::string h = header(kFrameMagic, 1, 0, kCluster, 1000);
  d.feed(h.data(), h.size());
  proto::Envelope out;
  std::string err;
  EXPECT_EQ(d.next(&out, &err), FrameDecoder::Status::kNeedMore) << err;
}

TEST(FrameTest, UnparsablePayload) {
  const std::string payload(8, '\xff');  // an invalid tag/varint sequence
  const std::string error = decode_error(header(kFrameMagic, 1, 0, kCluster, 8) + payload);
  EXPECT_NE(error.find("unparsable payload"), std::string::npos) << error;
}

TEST(FrameTest, ErrorsAreTerminal) {
  const std::string good = encode_frame(kCluster, accept_envelope(1));
  FrameDecoder d(kCluster, kDefaultMaxFrameBytes);
  d.feed("XXXX", 4);
  proto::Envelope out;
  std::string error;
  ASSERT_EQ(d.next(&out, &error), FrameDecoder::Status::kError);
  EXPECT_TRUE(d.failed());
  d.feed(good.data(), good.size());
  std::string again;
  EXPECT_EQ(d.next(&out, &again), FrameDecoder::Status::kError);
  EXPECT_EQ(again, error);
  EXPECT_EQ(d.buffered_bytes(), 0u);
}

TEST(FrameTest, GoodFramesBeforeABadOneAreDelivered) {
  std::string bytes = encode_frame(kCluster, accept_envelope(1)) + "GET / HTTP/1.1\r\n";
  FrameDecoder d(kCluster, kDefaultMaxFrameBytes);
  d.feed(bytes.data(), bytes.size());
  proto::Envelope out;
  std::string error;
  EXPECT_EQ(d.next(&out, &error), FrameDecoder::Status::kFrame);
  EXPECT_EQ(d.next(&out, &error), FrameDecoder::Status::kError);
}

}  // namespace
}  // namespace synod::net
