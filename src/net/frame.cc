#include "net/frame.h"

#include <fmt/format.h>

#include <cctype>
#include <cstring>

#include "common/check.h"

namespace synod::net {
namespace {

void put_u16(unsigned char* p, std::uint16_t v) {
  p[0] = static_cast<unsigned char>(v >> 8);
  p[1] = static_cast<unsigned char>(v);
}
void put_u32(unsigned char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * (3 - i)));
}
void put_u64(unsigned char* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * (7 - i)));
}
std::uint32_t get_u32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}
std::uint64_t get_u64(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

void write_header(unsigned char* p, std::uint64_t cluster_id, std::size_t payload_size) {
  SYNOD_CHECK_MSG(payload_size <= 0xFFFFFFFFu, "frame payload does not fit a u32 length");
  put_u32(p, kFrameMagic);
  p[4] = kFrameVersion;
  p[5] = 0;  // flags
  put_u16(p + 6, 0);
  put_u64(p + 8, cluster_id);
  put_u32(p + 16, static_cast<std::uint32_t>(payload_size));
}

std::size_t varint_size(std::size_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

unsigned char* put_varint(unsigned char* p, std::size_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<unsigned char>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<unsigned char>(v);
  return p;
}

// The four bytes that arrived instead of the magic, readable when they are text
// (an HTTP client's "GET ", a TLS client's binary handshake).
std::string describe_magic(const unsigned char* p) {
  std::string text;
  for (int i = 0; i < 4; ++i) {
    if (!std::isprint(p[i])) return "";
    text.push_back(static_cast<char>(p[i]));
  }
  return fmt::format(" (\"{}\")", text);
}

}  // namespace

std::uint64_t cluster_id_of(std::string_view name) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : name) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h == 0 ? 1 : h;
}

std::string encode_frame(std::uint64_t cluster_id, const proto::Envelope& envelope) {
  const std::size_t size = envelope.ByteSizeLong();
  std::string out(kFrameHeaderBytes + size, '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  write_header(p, cluster_id, size);
  envelope.SerializeWithCachedSizesToArray(p + kFrameHeaderBytes);
  return out;
}

std::size_t append_frame(std::string* out, std::uint64_t cluster_id, EnvelopeField field,
                         const google::protobuf::MessageLite& body) {
  // The Envelope's wire form with one submessage field set: the field's tag
  // (field number, wire type 2 = length-delimited), the body's length, the body.
  const std::size_t body_size = body.ByteSizeLong();
  const auto tag = static_cast<std::size_t>(static_cast<int>(field) << 3 | 2);
  const std::size_t payload_size = varint_size(tag) + varint_size(body_size) + body_size;
  const std::size_t start = out->size();
  out->resize(start + kFrameHeaderBytes + payload_size);
  auto* p = reinterpret_cast<unsigned char*>(out->data()) + start;
  write_header(p, cluster_id, payload_size);
  p = put_varint(p + kFrameHeaderBytes, tag);
  p = put_varint(p, body_size);
  body.SerializeWithCachedSizesToArray(p);
  return payload_size;
}

FrameDecoder::FrameDecoder(std::uint64_t cluster_id, std::size_t max_frame_bytes)
    : cluster_id_(cluster_id), max_frame_bytes_(max_frame_bytes) {
  SYNOD_CHECK_MSG(max_frame_bytes >= 1 && max_frame_bytes <= kMaxFrameBytesLimit,
                  "max_frame_bytes must be in [1, 2 GiB - 1]");
}

void FrameDecoder::feed(const char* data, std::size_t size) {
  if (failed() || size == 0) return;
  // Drop consumed frames before growing, so the buffer holds at most one
  // partial frame plus what this read brought.
  if (offset_ > 0 && offset_ >= buffer_.size() / 2) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  buffer_.append(data, size);
}

FrameDecoder::Status FrameDecoder::fail(std::string message, std::string* error) {
  error_ = std::move(message);
  *error = error_;
  // The stream is dead; free what it buffered.
  std::string().swap(buffer_);
  offset_ = 0;
  return Status::kError;
}

bool FrameDecoder::check_header(const unsigned char* p, std::size_t available) {
  if (available >= 4 && get_u32(p) != kFrameMagic) {
    error_ = fmt::format("not a Synod peer: bad magic {:#010x}{}", get_u32(p), describe_magic(p));
    return false;
  }
  if (available >= 5 && p[4] != kFrameVersion) {
    error_ = fmt::format("unsupported frame version {} (this node speaks version {})", p[4],
                         kFrameVersion);
    return false;
  }
  if (available >= 6 && p[5] != 0) {
    error_ = fmt::format("unsupported frame flags {:#04x} (version {} defines none)", p[5],
                         kFrameVersion);
    return false;
  }
  if (available >= 16 && get_u64(p + 8) != cluster_id_) {
    error_ = fmt::format("frame for cluster {}, this is cluster {}", get_u64(p + 8), cluster_id_);
    return false;
  }
  if (available >= 20 && get_u32(p + 16) > max_frame_bytes_) {
    error_ =
        fmt::format("frame of {} bytes exceeds the maximum {}", get_u32(p + 16), max_frame_bytes_);
    return false;
  }
  return true;
}

FrameDecoder::Status FrameDecoder::next(proto::Envelope* out, std::string* error) {
  if (failed()) {
    *error = error_;
    return Status::kError;
  }
  const std::size_t available = buffered_bytes();
  if (available == 0) return Status::kNeedMore;
  const auto* p = reinterpret_cast<const unsigned char*>(buffer_.data()) + offset_;
  if (!check_header(p, available)) {
    std::string message = std::move(error_);
    return fail(std::move(message), error);
  }
  if (available < kFrameHeaderBytes) return Status::kNeedMore;
  const std::size_t payload_size = get_u32(p + 16);
  if (available - kFrameHeaderBytes < payload_size) return Status::kNeedMore;

  out->Clear();
  if (!out->ParseFromArray(p + kFrameHeaderBytes, static_cast<int>(payload_size))) {
    return fail(fmt::format("unparsable payload: {} bytes are not a Synod Envelope", payload_size),
                error);
  }
  offset_ += kFrameHeaderBytes + payload_size;
  if (offset_ == buffer_.size()) {
    // Fully drained: reset, and give back the memory of a large frame.
    offset_ = 0;
    if (buffer_.capacity() > (std::size_t{1} << 20)) {
      std::string().swap(buffer_);
    } else {
      buffer_.clear();
    }
  }
  return Status::kFrame;
}

}  // namespace synod::net
