// frame_fuzz: net::FrameDecoder, which every TCP connection of a node and of
// the client library runs on the bytes a socket read returned.
//
// Input: byte 0 = k (low 4 bits: how many chunk-length bytes follow) and the
// decoder's max_frame_bytes (high 4 bits, an index into kMaxFrame); then k
// chunk lengths (used in turn, over and over; 0 means "call next() without
// feeding"); the rest is the byte stream, for cluster_id_of("synod").
//
// Checks: no crash; the decoder's output does not depend on how the stream is
// cut into reads (every frame and the final status/error equal those of one
// feed of the whole stream); an error is terminal (same message, input
// ignored, nothing buffered); buffered_bytes() counts exactly the unconsumed
// bytes; every frame re-encodes (encode_frame) to a frame that decodes to the
// same Envelope, and append_frame writes the very bytes encode_frame does.
// Peer bodies also go through codec::from_proto.
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <algorithm>
#include <vector>

#include "codec/codec.h"
#include "fuzz/fuzz.h"
#include "fuzz/quiet_protobuf.h"
#include "net/frame.h"

namespace synod::fuzz {
namespace {

constexpr std::size_t kMaxFrame[16] = {
    net::kDefaultMaxFrameBytes, 1, 2, 7, 16, 20, 64, 100, 256, 1000, 4096, 65536, 1 << 20,
    (std::size_t{1} << 31) - 1, 3, 5};

std::string canonical(const proto::Envelope& e) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  e.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

struct Outcome {
  std::vector<std::string> frames;  // canonical Envelopes, in order
  net::FrameDecoder::Status last = net::FrameDecoder::Status::kNeedMore;
  std::string error;
  std::size_t buffered = 0;
};

// Calls next() until it stops returning frames.
void drain(net::FrameDecoder& d, Outcome& o) {
  for (;;) {
    proto::Envelope e;
    std::string error;
    const auto s = d.next(&e, &error);
    if (s == net::FrameDecoder::Status::kFrame) {
      FUZZ_CHECK(!d.failed(), "a frame from a failed decoder");
      o.frames.push_back(canonical(e));
      continue;
    }
    if (s == net::FrameDecoder::Status::kError) {
      FUZZ_CHECK(!error.empty() && d.failed() && error == d.error(), "error without a message");
      if (o.last == net::FrameDecoder::Status::kError) {
        FUZZ_CHECK(error == o.error, "the error changed from '%s' to '%s'", o.error.c_str(),
                   error.c_str());
      }
      o.error = error;
    }
    o.last = s;
    return;
  }
}

void check_frame(std::uint64_t cluster, const std::string& canonical_bytes) {
  proto::Envelope e;
  FUZZ_CHECK(e.ParseFromString(canonical_bytes), "a decoded Envelope does not reparse");
  const std::string frame = net::encode_frame(cluster, e);
  net::FrameDecoder d(cluster, net::kMaxFrameBytesLimit);
  d.feed(frame.data(), frame.size());
  proto::Envelope back;
  std::string error;
  FUZZ_CHECK(d.next(&back, &error) == net::FrameDecoder::Status::kFrame,
             "encode_frame's output does not decode: %s", error.c_str());
  FUZZ_CHECK(canonical(back) == canonical_bytes, "a frame changed in a re-encode");
  FUZZ_CHECK(
      d.next(&back, &error) == net::FrameDecoder::Status::kNeedMore && d.buffered_bytes() == 0,
      "encode_frame wrote more than one frame");

  // append_frame: the same bytes, when the Envelope holds only its body.
  const bool only_body = e.GetReflection()->GetUnknownFields(e).empty();
  const google::protobuf::MessageLite* body = nullptr;
  net::EnvelopeField field{};
  switch (e.body_case()) {
    case proto::Envelope::kHello:
      body = &e.hello();
      field = net::EnvelopeField::kHello;
      break;
    case proto::Envelope::kPeer:
      body = &e.peer();
      field = net::EnvelopeField::kPeer;
      break;
    case proto::Envelope::kRequest:
      body = &e.request();
      field = net::EnvelopeField::kRequest;
      break;
    case proto::Envelope::kResponse:
      body = &e.response();
      field = net::EnvelopeField::kResponse;
      break;
    case proto::Envelope::BODY_NOT_SET:
      break;
  }
  if (body != nullptr && only_body) {
    std::string appended = "prefix";
    const std::size_t payload = net::append_frame(&appended, cluster, field, *body);
    FUZZ_CHECK(appended.substr(6) == frame, "append_frame and encode_frame differ");
    FUZZ_CHECK(payload + net::kFrameHeaderBytes == frame.size(), "append_frame's size is wrong");
  }
  if (e.has_peer()) {
    paxos::Message m;
    std::string why;
    (void)codec::from_proto(e.peer(), &m, &why);
  }
}

}  // namespace
}  // namespace synod::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace synod;
  using fuzz::Outcome;
  fuzz::quiet_protobuf();
  if (size == 0) return 0;
  const std::size_t k = data[0] & 15;
  const std::size_t max_frame = fuzz::kMaxFrame[data[0] >> 4];
  if (size < 1 + k) return 0;
  const std::uint8_t* cuts = data + 1;
  const char* stream = reinterpret_cast<const char*>(data + 1 + k);
  const std::size_t n = size - 1 - k;
  const std::uint64_t cluster = net::cluster_id_of("synod");

  // The reference: the whole stream in one read.
  net::FrameDecoder whole(cluster, max_frame);
  whole.feed(stream, n);
  Outcome ref;
  fuzz::drain(whole, ref);

  // The same stream in reads cut where the input says.
  net::FrameDecoder d(cluster, max_frame);
  Outcome got;
  std::size_t pos = 0;
  for (std::size_t i = 0; pos < n; ++i) {
    std::size_t len = k == 0 ? n : cuts[i % k];
    len = std::min(len, n - pos);
    const std::size_t before = d.buffered_bytes();
    d.feed(stream + pos, len);
    if (d.failed()) {
      FUZZ_CHECK(d.buffered_bytes() == 0, "a failed decoder buffers %zu bytes", d.buffered_bytes());
    } else {
      FUZZ_CHECK(d.buffered_bytes() == before + len, "feed(%zu) took %zu bytes", len,
                 d.buffered_bytes() - before);
    }
    pos += len;
    fuzz::drain(d, got);
    if (i > 4 * n + 16) break;  // only zero-length cuts: enough
  }
  if (pos < n) {
    d.feed(stream + pos, n - pos);
    fuzz::drain(d, got);
  }

  FUZZ_CHECK(got.frames == ref.frames, "cutting the stream changed the frames (%zu vs %zu)",
             got.frames.size(), ref.frames.size());
  FUZZ_CHECK(got.last == ref.last && got.error == ref.error,
             "cutting the stream changed the outcome: '%s' vs '%s'", got.error.c_str(),
             ref.error.c_str());
  FUZZ_CHECK(d.buffered_bytes() == whole.buffered_bytes(), "buffered %zu vs %zu",
             d.buffered_bytes(), whole.buffered_bytes());

  // What was not consumed: the stream minus the frames' headers and payloads.
  if (!whole.failed()) {
    std::size_t consumed = 0;
    std::size_t frames = 0;
    while (n - consumed >= net::kFrameHeaderBytes) {
      const auto* h = reinterpret_cast<const unsigned char*>(stream + consumed);
      const std::size_t len = (std::size_t{h[16]} << 24) | (std::size_t{h[17]} << 16) |
                              (std::size_t{h[18]} << 8) | h[19];
      if (n - consumed - net::kFrameHeaderBytes < len) break;
      consumed += net::kFrameHeaderBytes + len;
      ++frames;
    }
    FUZZ_CHECK(frames == ref.frames.size(), "%zu complete frames in the stream, %zu decoded",
               frames, ref.frames.size());
    FUZZ_CHECK(whole.buffered_bytes() == n - consumed, "buffered %zu, expected %zu",
               whole.buffered_bytes(), n - consumed);
  } else {
    // Terminal: more input changes nothing.
    whole.feed(stream, n);
    Outcome after = ref;
    fuzz::drain(whole, after);
    FUZZ_CHECK(whole.buffered_bytes() == 0 && after.frames.size() == ref.frames.size(),
               "a failed decoder came back to life");
  }

  for (const std::string& frame : ref.frames) fuzz::check_frame(cluster, frame);
  return 0;
}
