// Framing of Synod's TCP connections: every frame is a fixed 20-byte header
// followed by one serialized proto::Envelope (proto/synod.proto).
//
// Header layout (all integers big-endian):
//
//   offset  size  field
//        0     4  magic        0x53594E44 ("SYND")
//        4     1  version      1
//        5     1  flags        0 (no flag is defined in version 1; nonzero is refused,
//                              because a flag may change how the payload is read)
//        6     2  reserved     0 on send, ignored on receipt
//        8     8  cluster_id   the cluster this frame belongs to
//       16     4  length       payload bytes that follow the header
//       20     N  payload      a serialized proto::Envelope
//
// Why a magic and a cluster id: a node that is pointed at the wrong port (an HTTP
// server, another cluster's node, a node of a test cluster) must fail loudly on the
// first frame, not misread bytes as peer messages. Why a length prefix instead of
// protobuf's own delimited format: the header is fixed-size, so a receiver knows
// how big a frame is (and refuses an oversized one) after 20 bytes, before it
// buffers anything.
//
// FrameDecoder is pure (no I/O, no clock): the transport feeds it what a socket
// read returned, and a fuzzer can drive it the same way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proto/synod.pb.h"

namespace synod::net {

inline constexpr std::uint32_t kFrameMagic = 0x53594E44;  // "SYND"
inline constexpr std::uint8_t kFrameVersion = 1;
inline constexpr std::size_t kFrameHeaderBytes = 20;
// The default bound on a frame's payload (a node refuses larger frames).
inline constexpr std::size_t kDefaultMaxFrameBytes = std::size_t{64} << 20;
// The largest bound a decoder accepts: protobuf parses at most 2 GiB - 1.
inline constexpr std::size_t kMaxFrameBytesLimit = (std::size_t{1} << 31) - 1;

// One frame carrying `envelope`. The envelope's serialized size must fit the
// header's u32 length (checked; a 4 GiB message is a bug in the caller).
std::string encode_frame(std::uint64_t cluster_id, const proto::Envelope& envelope);

// The cluster id every frame carries: FNV-1a 64 of the cluster's name, never 0.
// Nodes and clients of one cluster share the name (default "synod").
std::uint64_t cluster_id_of(std::string_view name);

// The Envelope field a frame carries (the numbers of Envelope's oneof).
enum class EnvelopeField : int { kHello = 1, kPeer = 2, kRequest = 3, kResponse = 4 };

// Appends to *out one frame whose Envelope holds `body` in `field`, byte for byte
// what encode_frame would produce for that Envelope, without copying `body` into
// an Envelope first. `body` must be the message type of `field` (Hello, PeerMessage,
// ClientRequest, ClientResponse). Returns the payload size (the Envelope's bytes,
// without the header) so the caller can enforce its frame bound.
std::size_t append_frame(std::string* out, std::uint64_t cluster_id, EnvelopeField field,
                         const google::protobuf::MessageLite& body);

// Splits a byte stream into Envelopes. Bytes may arrive split anywhere: feed()
// what was read, then call next() until it returns kNeedMore.
//
// Any error is terminal: the stream cannot be resynchronized (there is no frame
// boundary marker), so the owner closes the connection. After an error, feed()
// ignores its input and next() keeps returning kError with the same message.
// Header fields are checked as soon as their bytes arrive, so a stranger is
// refused after four bytes, not after a full header.
class FrameDecoder {
 public:
  enum class Status {
    kFrame,     // *out holds the next Envelope
    kNeedMore,  // no complete frame buffered; feed more bytes
    kError,     // *error says why; terminal
  };

  // max_frame_bytes bounds the payload of one frame; it must be in
  // [1, kMaxFrameBytesLimit] (checked).
  FrameDecoder(std::uint64_t cluster_id, std::size_t max_frame_bytes);

  void feed(const char* data, std::size_t size);

  // out and error must not be null. On kFrame, *out is overwritten (cleared
  // first); on kError, *error is set; on kNeedMore neither is touched.
  Status next(proto::Envelope* out, std::string* error);

  // Bytes fed but not yet returned as frames.
  std::size_t buffered_bytes() const { return buffer_.size() - offset_; }
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  Status fail(std::string message, std::string* error);
  // Checks the header fields whose bytes have arrived; false (error_ set) on a bad one.
  bool check_header(const unsigned char* p, std::size_t available);

  std::uint64_t cluster_id_;
  std::size_t max_frame_bytes_;
  std::string buffer_;      // bytes fed; frames before offset_ are consumed
  std::size_t offset_ = 0;  // start of the next frame in buffer_
  std::string error_;       // nonempty once failed
};

}  // namespace synod::net
