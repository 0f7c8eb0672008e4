// A minimal reader and writer of the protobuf wire format, for backends.
//
// Why backends do not link the generated code (synod_proto): protobuf registers
// every generated .proto file in one process-wide pool inside libprotobuf.so,
// and aborts ("File already exists in database: kv.proto") when a second copy
// registers. A backend library that carried its own kv.pb.cc would crash any
// host process that also has kv.pb.cc linked in (a client in the same process, a
// test, a tool). Reading and writing the handful of fields of a backend's
// command and result by hand keeps a backend free of libprotobuf altogether: it
// cannot clash with the host's copy or version. Each backend's codec is tested
// against the generated classes, so the two cannot drift apart unnoticed.
//
// Semantics follow proto3 parsing: fields may come in any order and repeat
// (the last occurrence of a scalar wins), unknown fields are skipped, and a
// known field with an unexpected wire type is treated as unknown. Groups
// (wire types 3 and 4) are refused: no Synod schema uses them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace synod::backend::wire {

enum class WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// Reads fields from a serialized message. Every method returns false on
// malformed input and sets error(); the reader is then unusable.
class Reader {
 public:
  // `bytes` must outlive the reader (and every view it hands out).
  explicit Reader(std::string_view bytes) : in_(bytes) {}
  explicit Reader(std::string&&) = delete;

  bool done() const { return pos_ == in_.size(); }
  const std::string& error() const { return error_; }

  // The next field's number (>= 1) and wire type.
  bool next(uint32_t* field, uint32_t* wire_type) {
    uint64_t tag = 0;
    const size_t start = pos_;
    if (!varint(&tag)) return false;
    // protobuf reads a tag as at most 5 varint bytes (32 bits), padded or not.
    if (pos_ - start > 5 || tag > UINT32_MAX || (tag >> 3) == 0) {
      return fail("invalid field tag");
    }
    *field = static_cast<uint32_t>(tag >> 3);
    *wire_type = static_cast<uint32_t>(tag & 7);
    if (*wire_type == 3 || *wire_type == 4) return fail("groups are not supported");
    if (*wire_type == 6 || *wire_type == 7) return fail("invalid wire type");
    return true;
  }

  bool varint(uint64_t* value) {
    uint64_t result = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (pos_ >= in_.size()) return fail("truncated varint");
      auto byte = static_cast<uint8_t>(in_[pos_++]);
      result |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        *value = result;
        return true;
      }
    }
    return fail("varint longer than 10 bytes");
  }

  bool length_delimited(std::string_view* value) {
    uint64_t len = 0;
    if (!varint(&len)) return false;
    if (len > in_.size() - pos_) return fail("truncated length-delimited field");
    *value = in_.substr(pos_, static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return true;
  }

  // Skips the value of a field of this wire type.
  bool skip(uint32_t wire_type) {
    switch (wire_type) {
      case 0: {
        uint64_t ignored = 0;
        return varint(&ignored);
      }
      case 1:
        return fixed(8);
      case 2: {
        std::string_view ignored;
        return length_delimited(&ignored);
      }
      case 5:
        return fixed(4);
      default:
        return fail("invalid wire type");
    }
  }

 private:
  bool fixed(size_t n) {
    if (in_.size() - pos_ < n) return fail("truncated fixed-width field");
    pos_ += n;
    return true;
  }
  bool fail(const char* why) {
    error_ = why;
    pos_ = in_.size();
    return false;
  }

  std::string_view in_;
  size_t pos_ = 0;
  std::string error_;
};

// Appends fields to a string. Callers skip fields at their default value
// (proto3 does not encode those), so the output is canonical: one encoding per
// message, the same on every node.
class Writer {
 public:
  explicit Writer(std::string* out) : out_(out) {}

  void varint(uint64_t value) {
    while (value >= 0x80) {
      out_->push_back(static_cast<char>((value & 0x7f) | 0x80));
      value >>= 7;
    }
    out_->push_back(static_cast<char>(value));
  }
  void tag(uint32_t field, WireType type) {
    varint((static_cast<uint64_t>(field) << 3) | static_cast<uint32_t>(type));
  }
  // int32/int64/uint32/uint64/bool/enum fields (negative values as 10 bytes).
  void varint_field(uint32_t field, uint64_t value) {
    tag(field, WireType::kVarint);
    varint(value);
  }
  // bytes/string/embedded message fields.
  void bytes_field(uint32_t field, std::string_view value) {
    tag(field, WireType::kLengthDelimited);
    varint(value.size());
    out_->append(value);
  }

 private:
  std::string* out_;
};

}  // namespace synod::backend::wire
